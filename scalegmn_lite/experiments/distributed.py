"""``distributed``: sharded zoo builds and data-parallel training on ``torch.distributed`` (gloo, CPU).

One 2-process gloo job (:func:`~scalegmn_lite.common.distributed.launch_local`, the environment
torchrun would set) builds shard ``r`` of 2 of a small zoo recipe on rank ``r`` and trains each of the
three trainers (invariant fit, amortized operator, autoencoder) for ``k`` steps data-parallel; the
same trainers then run as one plain process. Claims:

* ``sharded-zoo-equals-whole``: the merged shards have the same ``weights.pt`` and ``metadata.json``
  SHA-256 as the unsharded build (bit identity).
* ``ddp-matches-single-process``: ``max |theta_P=2 - theta_P=1|`` over every parameter and buffer of
  the three trained models, after ``k`` steps on the same global batches, in float64: <= 1e-9 (the
  only difference is the order of the gradient sum). The float32 figures are reported too: there
  AdamW turns rounding noise in gradients that are zero in exact arithmetic (e.g. a bias in front of
  a BatchNorm) into steps of size ~lr, so they reach ~1e-4 on such parameters.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from ..common.claims import claim
from . import RunContext, experiment

KINDS = ("invariant", "operator", "autoencoder")
TOLERANCE = 1e-9  # float64


def small_recipe():
    from ..zoo import ZooRecipe

    return ZooRecipe(name="distributed-demo", dataset="digits", arch="mlp 64-8-10 relu", activations=("relu", "tanh"),
                     num_networks=24, epochs=2, checkpoint_epochs=(0, 2), train_size=300, batch_size=50,
                     description="small mixed relu/tanh zoo for the distributed checks")


def jobs(zoo_dir: Path, out: Path, world: int, steps: int) -> list:
    from ..tasks.launch import TrainJob

    return [TrainJob(kind, out / f"{kind}-{dtype}-p{world}", zoo_dir=zoo_dir,
                     steps=steps if kind != "invariant" else 2, batch=6, hidden=8, layers=2, dtype=dtype,
                     progress=False) for dtype in ("float64", "float32") for kind in KINDS]


def _rank_job(ctx, recipe_dict: dict, root: str, steps: int) -> None:
    """One rank of the 2-process job: build shard ``rank``/``world``, then run the three trainers."""
    from ..tasks.launch import run_training
    from ..zoo import ZooRecipe
    from ..zoo.shards import build_shard, save_shard

    root_p = Path(root)
    recipe = ZooRecipe.from_dict(recipe_dict)
    save_shard(build_shard(recipe, ctx.rank, ctx.world_size, progress=False), root_p / f"shard{ctx.rank}",
               recipe, ctx.rank, ctx.world_size)
    for job in jobs(root_p / "whole", root_p, ctx.world_size, steps):
        run_training(job)


def max_param_difference(a: Path, b: Path) -> float:
    """``max |a_k - b_k|`` over the floating-point tensors of two ``model.pt`` files."""
    from ..common.io import load_tensors

    ta, _ = load_tensors(a)
    tb, _ = load_tensors(b)
    if set(ta) != set(tb):
        raise ValueError(f"{a} and {b} hold different tensors")
    return max(float((ta[k].double() - tb[k].double()).abs().max()) for k in ta if ta[k].is_floating_point())


@experiment("distributed")
def run(ctx: RunContext) -> dict:
    import torch

    t0, cpu0, kids0 = time.perf_counter(), time.process_time(), _children_cpu()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: tiny models, and no idle OpenMP threads spinning on 2 cores
    try:
        return _run(ctx, t0, cpu0, kids0)
    finally:
        torch.set_num_threads(threads)


def _run(ctx: RunContext, t0: float, cpu0: float, kids0: float) -> dict:
    from ..common.distributed import launch_local
    from ..tasks.launch import run_training
    from ..zoo import build_zoo, save_zoo
    from ..zoo.shards import merge_shards

    steps = 5
    recipe = small_recipe()
    with tempfile.TemporaryDirectory(prefix="scalegmn-dist-") as tmp:
        root = Path(tmp)
        whole = root / "whole"
        save_zoo(build_zoo(recipe, device="cpu", progress=False), whole)
        t_job = time.perf_counter()
        launch_local(_rank_job, 2, args=(recipe.to_dict(), str(root), steps))
        job_seconds = time.perf_counter() - t_job
        merge_shards([root / "shard1", root / "shard0"], out=root / "merged")
        a, b = (json.loads((d / "zoo.json").read_text()) for d in (whole, root / "merged"))
        same = {"weights_sha256_equal": a["weights_sha256"] == b["weights_sha256"],
                "metadata_sha256_equal": a["metadata_sha256"] == b["metadata_sha256"]}
        diffs = {"float64": {}, "float32": {}}
        for job in jobs(whole, root, 1, steps):
            run_training(job)
            diffs[job.dtype][job.kind] = max_param_difference(Path(job.out) / "model.pt",
                                                              Path(str(job.out)[:-1] + "2") / "model.pt")
        summaries = {k: json.loads((root / f"{k}-float64-p2" / "summary.json").read_text()) for k in KINDS}
    worst = max(diffs["float64"].values())
    claims = [
        claim("sharded-zoo-equals-whole",
              f"a {recipe.num_networks}-network zoo built as 2 shards in 2 processes and merged is bit-identical "
              "to the unsharded build", {**same, "networks": recipe.num_networks, "shards": 2},
              holds=all(same.values()), target="equal SHA-256 of weights.pt and metadata.json"),
        claim("ddp-matches-single-process",
              f"2-process gloo data-parallel training equals one process on the same global batches: max "
              f"parameter difference (float64) over the invariant, operator and autoencoder models after {steps} "
              "steps (invariant: 2 epochs)", worst, "<=", TOLERANCE),
    ]
    return {"claims": claims, "max_param_difference": diffs, "job_seconds": round(job_seconds, 2),
            "rank_difference_p2": {k: s["max_rank_difference"] for k, s in summaries.items()},
            "seconds_total": round(time.perf_counter() - t0, 2),
            "cpu_seconds": round(time.process_time() - cpu0 + _children_cpu() - kids0, 2)}


def _children_cpu() -> float:
    """CPU seconds of finished child processes (the ranks), user + system (0 where unsupported)."""
    try:
        import resource

        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime
    except (ImportError, OSError):
        return 0.0
