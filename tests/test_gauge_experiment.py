"""The ``gauge`` experiment in quick mode on CPU: every claim holds and the JSON has the keys."""

from __future__ import annotations

import json

from scalegmn_lite.cli import reproduce
from scalegmn_lite.experiments.gauge import random_specs
from scalegmn_lite.weightspace.spec import ACTIVATIONS

REQUIRED = {"relu-positive-scaling", "tanh-sign-flips", "sigmoid-permutation-only",
            "gauge-preserves-function", "cnn-gauge-strictly-smaller",
            # block networks (experiments.gauge_blocks)
            "residual-gauge-smaller-than-plain", "batchnorm-free-scaling", "layernorm-single-scalar",
            "residual-scalegmn-exact", "norm-affine-construction-not-equivariant",
            "plain-twin-graph-blind-to-shortcut", "layernorm-per-vertex-over-invariant",
            "shortcut-edge-of-one-is-consistent"}


def test_gauge_experiment_quick(tmp_path):
    results = reproduce(tmp_path, quick=True, device="cpu", only=["gauge"], progress=False)
    data = json.loads((tmp_path / "gauge.json").read_text())
    assert (tmp_path / "REPORT.md").exists()
    ids = {c["id"] for c in data["claims"]}
    assert REQUIRED <= ids
    for c in data["claims"]:
        assert set(c) >= {"id", "statement", "measured", "target", "holds"}
        assert c["holds"] is True, c
        assert c["kind"] == "check", c  # every gauge claim is exact: counted among the checks, not the findings
    dims = {tuple(x[:1]): x[1:] for x in next(c for c in data["claims"]
                                                  if c["id"] == "cnn-gauge-strictly-smaller")["measured"]}
    assert dims[("conv1d 1-1-1/2 k2 relu 1x4",)] == [2, 5]
    assert all(v["invariant"] for v in data["symbolic_mlp"].values())
    assert results["gauge"]["claims"] == data["claims"]


def test_random_specs_cover_every_activation_and_family():
    specs = random_specs(16)
    assert {s.family for s in specs} == {"mlp", "conv1d", "conv2d"}
    acts = {s.layers[0].activation or "identity" for s in specs}
    assert acts == set(ACTIVATIONS)


def test_reproduce_jobs_runs_workers_and_matches_one_process(tmp_path):
    """``reproduce --jobs 2``: experiments in spawned workers give the same claims as one process, the
    manifest records the jobs and per-experiment times, and a bad --jobs is refused."""
    import pytest

    names = ["gauge", "distributed"]
    one = reproduce(tmp_path / "one", quick=True, device="cpu", only=names, progress=False)
    two = reproduce(tmp_path / "two", quick=True, device="cpu", only=names, progress=False, jobs=2)
    assert list(two) == names  # report order = the requested order, not the finishing order
    for name in names:
        assert [(c["id"], c["status"]) for c in one[name]["claims"]] == \
            [(c["id"], c["status"]) for c in two[name]["claims"]], name
        assert json.loads((tmp_path / "two" / f"{name}.json").read_text())["claims"] == two[name]["claims"]
    man = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert man["jobs"] == 2 and set(man["per_experiment"]) == set(names)
    assert all(v["torch_threads"] >= 1 for v in man["per_experiment"].values())
    assert not any(f.startswith("calegmn") for f in man["dirty_files"])  # status lines keep their first column
    with pytest.raises(SystemExit, match="--jobs must be at least 1"):
        reproduce(tmp_path / "bad", only=["gauge"], jobs=0)


def test_reproduce_workers_exit_when_their_parent_dies(tmp_path):
    """A killed ``reproduce --jobs`` must not leave orphaned workers training on."""
    import os
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import multiprocessing as mp, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from scalegmn_lite.cli import _worker_init\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=mp.get_context('spawn'), initializer=_worker_init,\n"
        "                               initargs=(os.getpid(),))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    pool.submit(time.sleep, 120)\n"
        "    time.sleep(0.5)\n"
        "    os._exit(0)  # the parent dies without shutting the pool down\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    worker = int(out.stdout.split()[0])
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.kill(worker, 9)
    raise AssertionError(f"worker {worker} outlived its parent by 20 s")


def test_a_failed_experiment_keeps_the_others_and_resume_runs_only_the_rest(tmp_path, monkeypatch):
    import pytest

    from scalegmn_lite.common.claims import claim
    from scalegmn_lite.experiments import EXPERIMENTS

    def boom(ctx):
        raise KeyError("optimizer")

    monkeypatch.setitem(EXPERIMENTS, "boom", boom)
    with pytest.raises(SystemExit, match="boom.*--resume"):
        reproduce(tmp_path, quick=True, device="cpu", only=["gauge", "boom"], progress=False)
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert "KeyError" in man["failed"]["boom"] and (tmp_path / "gauge.json").exists()
    assert (tmp_path / "REPORT.md").exists() and not (tmp_path / "boom.json").exists()
    before = (tmp_path / "gauge.json").read_bytes()
    monkeypatch.setitem(EXPERIMENTS, "boom", lambda ctx: {"claims": [claim("fixed", "s", 1.0, "==", 1.0)]})
    res = reproduce(tmp_path, quick=True, device="cpu", only=["gauge", "boom"], progress=False, resume=True)
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["resumed"] == ["gauge"] and man["failed"] == {} and set(res) == {"gauge", "boom"}
    assert man["per_experiment"]["gauge"]["reused"] and not man["per_experiment"]["boom"]["reused"]
    assert man["per_experiment"]["boom"]["source"]["commit"] == man["commit"]
    assert (tmp_path / "gauge.json").read_bytes() == before  # reused, not rewritten
    # a result of another mode is not reused
    res = reproduce(tmp_path, quick=True, reference=True, device="cpu", only=["boom"], progress=False, resume=True)
    assert json.loads((tmp_path / "manifest.json").read_text())["resumed"] == []


def test_resume_keeps_the_provenance_of_reused_results(tmp_path, monkeypatch):
    """A resumed run keeps the previous manifest's record of where reused results came from: its
    ``first_invocation`` and, for a result file that records no source itself, the source it had."""
    from scalegmn_lite.common.claims import claim
    from scalegmn_lite.experiments import EXPERIMENTS

    monkeypatch.setitem(EXPERIMENTS, "one", lambda ctx: {"claims": [claim("a", "s", 1.0, "==", 1.0)]})
    monkeypatch.setitem(EXPERIMENTS, "two", lambda ctx: {"claims": [claim("b", "s", 1.0, "==", 1.0)]})
    reproduce(tmp_path, quick=True, device="cpu", only=["one", "two"], progress=False)
    data = json.loads((tmp_path / "one.json").read_text())
    data.pop("source")  # a result written before results recorded their source
    (tmp_path / "one.json").write_text(json.dumps(data))
    man = json.loads((tmp_path / "manifest.json").read_text())
    man["per_experiment"]["one"]["source"] = {"commit": "c0ffee", "recorded_by": "hand"}
    man["first_invocation"] = {"commit": "abc123", "started": "2026-01-01T00:00:00"}
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    (tmp_path / "two.json").unlink()
    reproduce(tmp_path, quick=True, device="cpu", only=["one", "two"], progress=False, resume=True)
    new = json.loads((tmp_path / "manifest.json").read_text())
    assert new["first_invocation"] == {"commit": "abc123", "started": "2026-01-01T00:00:00"}
    assert new["per_experiment"]["one"]["reused"] and new["per_experiment"]["one"]["source"]["commit"] == "c0ffee"
    two = new["per_experiment"]["two"]
    assert not two["reused"] and two["source"]["commit"] == new["commit"]
    # --only with --resume reruns what it names and is missing; the manifest and report keep the rest
    (tmp_path / "two.json").unlink()
    reproduce(tmp_path, quick=True, device="cpu", only=["two"], progress=False, resume=True)
    new = json.loads((tmp_path / "manifest.json").read_text())
    assert set(new["per_experiment"]) >= {"one", "two"} and new["per_experiment"]["one"]["reused"]
    assert not new["per_experiment"]["two"]["reused"] and "`a`" in (tmp_path / "REPORT.md").read_text()
    # a run that reuses nothing starts a new record
    reproduce(tmp_path, quick=True, device="cpu", only=["one", "two"], progress=False)
    assert "first_invocation" not in json.loads((tmp_path / "manifest.json").read_text())
