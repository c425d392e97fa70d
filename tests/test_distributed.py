"""Sharded zoos and data-parallel training on torch.distributed (gloo on CPU, processes on localhost).

Shards: merged shards are bit-identical to the whole build; a missing, duplicated, corrupt or foreign
shard is an error naming the fix. Training: 2 processes (and 4 processes from 2 "node" launchers,
and real torchrun with --nnodes 2) give the single-process parameters to float64 rounding, for every
trainer; a different global batch (other seed) does not, so the comparison can fail.
"""

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scalegmn_lite.cli import main
from scalegmn_lite.common.distributed import (
    DistContext,
    DistError,
    free_port,
    init_from_env,
    launch_local,
    shard_slice,
    single,
)
from scalegmn_lite.common.io import load_tensors
from scalegmn_lite.tasks.launch import TrainJob, run_training
from scalegmn_lite.zoo import ZooRecipe, build_zoo, save_zoo
from scalegmn_lite.zoo.shards import ShardError, build_shard, merge_shards, parse_shard, save_shard

KINDS = ("invariant", "operator", "autoencoder")
TOL64 = 1e-9


def tiny(**kw) -> ZooRecipe:
    base = dict(name="tiny-dist", dataset="digits", arch=("mlp 64-8-10 relu", "mlp 64-6-10 relu"),
                activations=("relu", "tanh"), num_networks=13, epochs=2, checkpoint_epochs=(0, 1, 2),
                train_size=200, batch_size=50, chunk_size=4)
    base.update(kw)
    return ZooRecipe(**base)


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "zoo.json").read_text())


# ---------------------------------------------------------------------- shards
@pytest.mark.parametrize("kind", ["classify", "inr"])
def test_merged_shards_are_bit_identical_to_whole_build(tmp_path, kind):
    recipe = tiny() if kind == "classify" else ZooRecipe(
        name="tiny-inr", dataset="digits", arch="siren 2-8-8-1", task="inr", optimizer="adam", lr=(1e-3, 1e-3),
        init_scale=(1.0, 1.0), weight_decay=(0.0, 0.0), num_networks=7, epochs=6, checkpoint_epochs=(0, 3, 6),
        image_size=8, chunk_size=3)
    (tmp_path / "r.json").write_text(json.dumps(recipe.to_dict()))
    save_zoo(build_zoo(recipe, device="cpu", progress=False), tmp_path / "whole")
    for k in range(3):  # through the CLI, as separate machines would run it
        assert main(["zoo", "--recipe", str(tmp_path / "r.json"), "--shard", f"{k}/3", "--out",
                     str(tmp_path / f"s{k}"), "--device", "cpu"]) == 0
    shard1 = json.loads((tmp_path / "s1" / "shard.json").read_text())
    assert shard1["networks"] == list(range(1, recipe.num_networks, 3))
    assert main(["zoo", "merge", str(tmp_path / "s2"), str(tmp_path / "s0"), str(tmp_path / "s1"),
                 "--out", str(tmp_path / "merged")]) == 0
    whole, merged = _manifest(tmp_path / "whole"), _manifest(tmp_path / "merged")
    assert merged["weights_sha256"] == whole["weights_sha256"]
    assert merged["metadata_sha256"] == whole["metadata_sha256"]
    assert merged == whole
    # a shard holds different networks, so the comparison above is not vacuous
    assert _manifest(tmp_path / "s0")["weights_sha256"] != whole["weights_sha256"]


def test_shard_errors_name_the_fix(tmp_path):
    r = tiny()
    for k in range(3):
        save_shard(build_shard(r, k, 3, progress=False), tmp_path / f"s{k}", r, k, 3)
    s = [tmp_path / f"s{k}" for k in range(3)]
    with pytest.raises(ShardError, match=r"missing shard\(s\) 1/3.*--shard 1/3|missing shard\(s\) 1/3"):
        merge_shards([s[0], s[2]])
    with pytest.raises(ShardError, match="given twice"):
        merge_shards([s[0], s[1], s[1], s[2]])
    other = tiny(seed=1)
    save_shard(build_shard(other, 1, 3, progress=False), tmp_path / "o1", other, 1, 3)
    with pytest.raises(ShardError, match="one recipe only"):
        merge_shards([s[0], tmp_path / "o1", s[2]])
    bad = tmp_path / "bad1"
    shutil.copytree(s[1], bad)
    data = (bad / "weights.pt").read_bytes()
    (bad / "weights.pt").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ShardError, match=r"shard 1/3 .* corrupt.*Rebuild it"):
        merge_shards([s[0], bad, s[2]])
    (s[2] / "shard.json").unlink()  # an unfinished build
    with pytest.raises(ShardError, match="not a finished zoo shard"):
        merge_shards([s[0], s[1], s[2]])
    with pytest.raises(SystemExit, match="missing shard"):
        main(["zoo", "merge", str(s[0]), "--out", str(tmp_path / "m")])
    assert not (tmp_path / "m" / "zoo.json").exists()
    for text in ("3/3", "a/b", "1", "-1/2"):
        with pytest.raises(ShardError, match="K/N|0 <= K < N"):
            parse_shard(text)
    with pytest.raises(ShardError, match="fewer than"):
        build_shard(r, 0, 20)


# ---------------------------------------------------------------------- the context
def test_single_process_context_is_the_identity(monkeypatch):
    ctx = init_from_env()
    assert ctx == single() and not ctx.enabled and ctx.is_main
    x = torch.arange(5)
    assert ctx.local(x) is x and ctx.share(5) == 1.0 and ctx.sum_scalar(2.5) == 2.5
    assert shard_slice(10, 1, 3) == [1, 4, 7]
    two = DistContext(rank=1, world_size=2)
    assert two.local_positions(5) == [1, 3] and two.share(5) == pytest.approx(0.4)
    with pytest.raises(DistError, match="at least 2 networks"):
        two.require_batch(1, "train_operator")
    with pytest.raises(DistError, match="not in"):
        shard_slice(4, 2, 2)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DistError, match="torchrun"):
        init_from_env()


# ---------------------------------------------------------------------- data-parallel training
def _jobs(zoo_dir: Path, out: Path, tag: str, seed: int = 0) -> list[TrainJob]:
    return [TrainJob(kind, out / f"{kind}-{tag}", zoo_dir=zoo_dir, steps=2 if kind == "invariant" else 4, batch=5,
                     hidden=8, layers=1, seed=seed, dtype="float64", progress=False) for kind in KINDS]


def _train_all(ctx, zoo_dir: str, out: str, tag: str) -> None:
    assert ctx.enabled
    for job in _jobs(Path(zoo_dir), Path(out), tag):
        summary = run_training(job)
        assert summary["world_size"] == ctx.world_size and summary["max_rank_difference"] == 0.0


def _max_diff(a: Path, b: Path) -> float:
    ta, _ = load_tensors(a / "model.pt")
    tb, _ = load_tensors(b / "model.pt")
    assert set(ta) == set(tb)
    return max(float((ta[k].double() - tb[k].double()).abs().max()) for k in ta if ta[k].is_floating_point())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    r = tiny(arch="mlp 64-8-10 relu", activations=(), num_networks=16)
    save_zoo(build_zoo(r, device="cpu", progress=False), root / "zoo")
    for job in _jobs(root / "zoo", root, "p1") + _jobs(root / "zoo", root, "seed1", seed=1):
        run_training(job)
    launch_local(_train_all, 2, args=(str(root / "zoo"), str(root), "p2"))
    return root


@pytest.mark.parametrize("kind", KINDS)
def test_two_processes_match_one(runs, kind):
    assert _max_diff(runs / f"{kind}-p1", runs / f"{kind}-p2") <= TOL64
    # the same comparison on a different global batch order is far off: the check can fail
    assert _max_diff(runs / f"{kind}-p1", runs / f"{kind}-seed1") > 1e-4
    s1 = json.loads((runs / f"{kind}-p1" / "summary.json").read_text())
    s2 = json.loads((runs / f"{kind}-p2" / "summary.json").read_text())
    assert (s1["world_size"], s2["world_size"]) == (1, 2)
    assert s2["final_loss"] == pytest.approx(s1["final_loss"], rel=1e-9)
    if kind == "autoencoder":  # rank 0's periodic checkpoint, verified on load
        from scalegmn_lite.tasks.merging.autoencoder import load_autoencoder

        load_autoencoder(runs / f"{kind}-p2" / "autoencoder.pt")


def _node(node_rank: int, port: int, zoo_dir: str, out: str) -> None:
    launch_local(_train_operator, 2, args=(zoo_dir, out), port=port, nnodes=2, node_rank=node_rank)


def _train_operator(ctx, zoo_dir: str, out: str) -> None:
    assert ctx.world_size == 4 and ctx.local_rank == ctx.rank % 2
    run_training(_jobs(Path(zoo_dir), Path(out), "p4")[1])


def test_two_node_launchers_form_one_group_of_four(runs):
    port = free_port()
    nodes = [multiprocessing.get_context("fork").Process(target=_node, args=(r, port, str(runs / "zoo"), str(runs)))
             for r in (0, 1)]
    for p in nodes:
        p.start()
    for p in nodes:
        p.join(120)
    assert [p.exitcode for p in nodes] == [0, 0]
    assert _max_diff(runs / "operator-p1", runs / "operator-p4") <= TOL64


@pytest.mark.slow
def test_torchrun_multi_node_command(runs, tmp_path):
    """The README's multi-node command, two "nodes" on localhost (static rendezvous), vs. the plain CLI."""
    args = ["train", "operator", "--zoo", str(runs / "zoo"), "--steps", "3", "--batch", "4", "--hidden", "8",
            "--layers", "1", "--dtype", "float64", "--device", "cpu", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    torchrun = Path(sys.executable).with_name("torchrun")
    port = str(free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([str(torchrun), "--nnodes", "2", "--node-rank", str(r), "--nproc-per-node", "1",
                               "--master-addr", "127.0.0.1", "--master-port", port, "-m", "scalegmn_lite.cli",
                               *args, "--out", str(tmp_path / "tr")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    summary = json.loads((tmp_path / "tr" / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert _max_diff(tmp_path / "plain", tmp_path / "tr") <= TOL64


@pytest.mark.slow
def test_reproduce_distributed_experiment_writes_both_claims(tmp_path):
    """``scalegmn-lite reproduce --only distributed``: the 2-process gloo job runs on CPU and both
    claims hold (computed in the run, read back from its JSON and REPORT.md)."""
    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-m", "scalegmn_lite.cli", "reproduce", "--quick", "--only", "distributed",
                           "--out", str(out), "--strict"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SCALEGMN_LITE_PROGRESS": "0"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((out / "distributed.json").read_text())
    claims = {c["id"]: c for c in result["claims"]}
    assert set(claims) == {"sharded-zoo-equals-whole", "ddp-matches-single-process"}
    assert all(c["holds"] for c in claims.values()), claims
    assert claims["ddp-matches-single-process"]["measured"] <= 1e-9
    assert "ddp-matches-single-process" in (out / "REPORT.md").read_text()


def test_train_command_runs_its_own_processes_and_matches_one(runs, tmp_path):
    """Issue 21: ``scalegmn-lite train --nproc 2`` starts the data-parallel processes itself (no
    torchrun) and gives the one-process model up to the order of the gradient sum."""
    args = ["train", "operator", "--zoo", str(runs / "zoo"), "--steps", "3", "--batch", "4", "--hidden", "8",
            "--layers", "1", "--dtype", "float64", "--device", "cpu", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "one"), "--nproc", "1"]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--nproc", "2"]) == 0
    s1, s2 = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "two"))
    assert (s1["world_size"], s2["world_size"]) == (1, 2)
    assert _max_diff(tmp_path / "one", tmp_path / "two") <= TOL64
    with pytest.raises(ValueError, match="number of processes or 'auto'"):
        main([*args, "--out", str(tmp_path / "bad"), "--nproc", "many"])


def test_worker_plans(monkeypatch):
    """How many processes the studies and ``train`` use: explicit numbers win; ``auto`` follows the
    idle cores, stays serial for short or single jobs and inside a worker, and takes data
    parallelism only from the measured crossover (hidden x batch >= DP_MIN_WORK)."""
    from scalegmn_lite.common import parallel

    monkeypatch.delenv(parallel.ENV, raising=False)
    monkeypatch.setattr(parallel, "idle_cores", lambda sample_seconds=0.2: 2)
    assert parallel.plan_workers(6) == 2 and parallel.plan_workers(1) == 1
    assert parallel.plan_workers(6, est_seconds=5.0) == 1  # worker start-up would not pay off
    assert parallel.plan_workers(6, workers=3) == 3 and parallel.plan_workers(2, workers=8) == 2
    monkeypatch.setenv(parallel.ENV, "1")
    assert parallel.plan_workers(6) == 1
    monkeypatch.setenv(parallel.ENV, "lots")
    with pytest.raises(ValueError, match="SCALEGMN_LITE_WORKERS"):
        parallel.plan_workers(6)
    monkeypatch.setenv(parallel.ENV, "auto")
    monkeypatch.setattr(parallel, "idle_cores", lambda sample_seconds=0.2: 0)
    assert parallel.plan_workers(6) == 1  # the other core is busy (e.g. reproduce --jobs 2)
    monkeypatch.setattr(parallel, "idle_cores", lambda sample_seconds=0.2: 2)
    monkeypatch.setenv("SCALEGMN_LITE_IN_WORKER", "1")
    assert parallel.plan_workers(6) == 1 and parallel.plan_data_parallel(64, 32) == 1  # no nesting
    monkeypatch.delenv("SCALEGMN_LITE_IN_WORKER")
    assert parallel.plan_data_parallel(64, 32) == 2 and parallel.plan_data_parallel(32, 16) == 2
    assert parallel.plan_data_parallel(16, 8) == 1 and parallel.plan_data_parallel(64, 32, device="cuda") == 1
    assert parallel.plan_data_parallel(16, 8, 3) == 3
    with pytest.raises(ValueError, match=">= 1"):
        parallel.plan_data_parallel(16, 8, 0)


def test_idle_cores_sees_a_busy_core():
    """``idle_cores`` measures other processes' load: a spinning child takes a core away."""
    from scalegmn_lite.common.parallel import _cpu_count, idle_cores

    n = _cpu_count()
    quiet = idle_cores(0.3)
    assert 0 <= quiet <= n
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        busy = idle_cores(0.5)
    finally:
        p.kill()
        p.wait()
    assert busy < n  # a core is taken, whatever else runs


def test_workers_are_cpu_processes(monkeypatch):
    """Jobs on another device run here, in order, whatever the idle cores."""
    from scalegmn_lite.common import parallel

    monkeypatch.delenv(parallel.ENV, raising=False)
    monkeypatch.setattr(parallel, "idle_cores", lambda sample_seconds=0.2: 2)
    assert parallel.plan_workers(6, device="cuda") == 1
    assert parallel.plan_workers(6, device=torch.device("cuda", 0)) == 1
    assert parallel.plan_workers(6, device="cpu") == 2 and parallel.plan_workers(6, device=torch.device("cpu")) == 2


def test_notebooks_tested_side_by_side_share_the_cores(monkeypatch):
    """nbval under pytest-xdist (`-n 2 --dist loadscope`): each kernel takes its share of the cores and
    no worker pool, so two notebooks do not oversubscribe a 2-core machine."""
    import warnings

    import matplotlib

    from scalegmn_lite.common.config import notebook_setup

    before, rc = torch.get_num_threads(), matplotlib.rcParams.copy()
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    for var in ("SCALEGMN_LITE_WORKERS", "SCALEGMN_LITE_PROGRESS"):  # restored after the test
        monkeypatch.delenv(var, raising=False)
    try:
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
        notebook_setup()
        assert torch.get_num_threads() == 2 and os.environ["SCALEGMN_LITE_WORKERS"] == "1"
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "8")
        notebook_setup()
        assert torch.get_num_threads() == 1
        monkeypatch.delenv("SCALEGMN_LITE_WORKERS")
        monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
        torch.set_num_threads(3)
        notebook_setup()  # alone: leaves threads and workers as they are
        assert torch.get_num_threads() == 3 and "SCALEGMN_LITE_WORKERS" not in os.environ
    finally:
        torch.set_num_threads(before)
        matplotlib.rcParams.update(rc)
        warnings.resetwarnings()
