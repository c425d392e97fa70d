"""``scalegmn-lite train {invariant,operator,autoencoder}``: one trainer on a zoo, plainly or data-parallel.

The same command runs as one process or under ``torchrun`` (one process per rank, gloo on CPU, NCCL
on CUDA)::

    scalegmn-lite train operator --recipe mlp-digits --out runs/op
    torchrun --nproc-per-node 4 -m scalegmn_lite.cli train operator --recipe mlp-digits --out runs/op
    torchrun --nnodes 2 --node-rank R --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m scalegmn_lite.cli train operator --recipe mlp-digits --full --out runs/op

Every rank loads the same zoo (the local rank 0 of a machine builds the cache first), builds the same
model (rank 0's parameters are broadcast) and runs the trainer with the process group's
:class:`~scalegmn_lite.common.distributed.DistContext`: each step's global batch of networks is split
over the ranks and the gradients are summed, so the result is that of one process on the same global
batch. Rank 0 writes ``<out>/model.pt`` (+ ``.json``, atomic and hashed) and ``<out>/summary.json``.

Models (small, for the course's zoos): an invariant ScaleGMN predicting test accuracy (classifier
zoos, Kendall tau) or the digit (INR zoos, accuracy); the amortized operator of
:mod:`scalegmn_lite.tasks.amortized.operator`; the weight autoencoder of
:mod:`scalegmn_lite.tasks.merging.autoencoder` (function-space loss: distillation or INR rendering).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..common.config import resolve_device
from ..common.distributed import DistContext, init_from_env
from ..common.io import atomic_write_json, save_tensors
from ..zoo import ZooRecipe, get_recipe, load_or_build, load_zoo
from ..zoo.zoo import Zoo

__all__ = ["KINDS", "TrainJob", "recipe_from_arg", "run_training"]

KINDS = ("invariant", "operator", "autoencoder")


def recipe_from_arg(value: str, full: bool = False) -> ZooRecipe:
    """A recipe name (``scalegmn-lite zoo --list``) or the path of a recipe JSON file (``ZooRecipe.to_dict``)."""
    path = Path(value)
    if value.endswith(".json") and path.exists():
        return ZooRecipe.from_dict(json.loads(path.read_text()))
    return get_recipe(value, full=full)


@dataclass
class TrainJob:
    """What ``scalegmn-lite train`` runs. ``steps``: optimizer steps (invariant: epochs); ``batch``:
    networks per global batch; ``networks``: use only the first ``networks`` networks of the zoo;
    ``dtype``: ``"float32"`` or ``"float64"`` (models, weights and data)."""

    kind: str
    out: Path
    recipe: ZooRecipe | None = None
    zoo_dir: Path | None = None
    steps: int = 50
    batch: int = 16
    networks: int | None = None
    hidden: int = 16
    layers: int = 2
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    progress: bool = True


def _zoo(job: TrainJob, ctx: DistContext) -> Zoo:
    if job.zoo_dir is not None:
        zoo = load_zoo(job.zoo_dir)
    else:
        if ctx.local_rank == 0:  # one build per machine; the other ranks then read the cache
            load_or_build(job.recipe, device="cpu", progress=job.progress and ctx.is_main)
        ctx.barrier()
        zoo = load_or_build(job.recipe, device="cpu", progress=False)
    groups = sorted(zoo.by_spec().values(), key=len, reverse=True)
    zoo = groups[0]  # the largest single-spec part: every trainer here takes one architecture
    return zoo[:job.networks] if job.networks else zoo


def run_training(job: TrainJob) -> dict:
    """Run ``job`` in this process (joining the torchrun process group if there is one); returns the
    summary that rank 0 also writes to ``<out>/summary.json``."""
    if job.kind not in KINDS:
        raise ValueError(f"unknown trainer {job.kind!r}; choose from {KINDS}")
    if (job.recipe is None) == (job.zoo_dir is None):
        raise ValueError("give exactly one of a recipe (--recipe) or a saved zoo (--zoo DIR)")
    ctx = init_from_env()
    if ctx.enabled and torch.distributed.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = resolve_device(job.device)
    if job.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {job.dtype!r}")
    torch.manual_seed(job.seed)
    zoo = _zoo(job, ctx)
    out = Path(job.out)
    t0 = time.perf_counter()
    model, extra = _TRAINERS[job.kind](job, zoo, device, getattr(torch, job.dtype), ctx)
    seconds = time.perf_counter() - t0
    flat = torch.cat([p.detach().reshape(-1).double().cpu() for p in model.parameters()])
    summary = {"kind": job.kind, "world_size": ctx.world_size, "recipe": (zoo.recipe or {}).get("name"),
               "spec": zoo.spec.to_text(), "networks": len(zoo), "steps": job.steps, "batch": job.batch,
               "seed": job.seed, "device": str(device), "dtype": job.dtype, "seconds": round(seconds, 3),
               "param_norm": float(flat.norm()), "max_rank_difference": ctx.max_abs_diff_across_ranks(model), **extra}

    def save() -> None:
        save_tensors(out / "model.pt", model.state_dict(), {"kind": job.kind, "summary": summary})
        atomic_write_json(out / "summary.json", summary)

    ctx.on_main(save)
    return summary



def _split(zoo: Zoo, seed: int) -> tuple[Zoo, Zoo]:
    train, val = zoo.split((0.8, 0.2), seed=seed)
    return train, val


def _invariant(job: TrainJob, zoo: Zoo, device, dtype, ctx: DistContext):
    from ..nn.scalegmn import ScaleGMN, ScaleGMNConfig
    from .invariant.fit import FitConfig, fit

    inr = (zoo.recipe or {}).get("task") == "inr"
    task, col = ("classification", "label") if inr else ("regression", "test_acc")
    train, val = _split(zoo, job.seed)
    k = max(1, max(layer.kernel_numel for layer in zoo.spec.layers))
    model = ScaleGMN(ScaleGMNConfig(hidden_dim=job.hidden, num_layers=job.layers, head="invariant",
                                    out_dim=10 if inr else 1, max_kernel=k)).to(device, dtype)
    ys = [torch.tensor(z.metadata[col].to_numpy()).to(device) for z in (train, val)]
    if not inr:
        ys = [y.to(dtype) for y in ys]
    res = fit(model, train.weights(device=device, dtype=dtype), ys[0], val.weights(device=device, dtype=dtype), ys[1],
              task,
              FitConfig(epochs=job.steps, batch_size=job.batch, seed=job.seed, warmup_epochs=1),
              progress=job.progress and ctx.is_main, dist=ctx)
    return model, {"final_loss": res.history[-1]["train_loss"], "val_score": res.best_val}


def _data(zoo: Zoo, device):
    from ..zoo.data import load_dataset

    rec = zoo.recipe or {}
    data = load_dataset(rec.get("dataset", "digits"), device=device)
    if rec.get("train_size"):
        data = data.subset(n_train=rec["train_size"])
    return data


def _operator(job: TrainJob, zoo: Zoo, device, dtype, ctx: DistContext):
    from .amortized.operator import AmortizedOperator, OperatorTrainConfig, train_operator

    if (zoo.recipe or {}).get("task") == "inr":
        raise ValueError("the amortized operator trains on classifier zoos; pick a classifier recipe")
    data = _data(zoo, device)
    train, _ = _split(zoo, job.seed)
    k = max(1, max(layer.kernel_numel for layer in zoo.spec.layers))
    op = AmortizedOperator(hidden_dim=job.hidden, num_layers=job.layers, max_kernel=k).to(device, dtype)
    hist = train_operator(op, train.weights(device=device, dtype=dtype), data.x_train, data.y_train,
                          OperatorTrainConfig(steps=job.steps, batch_networks=job.batch, data_batch=128,
                                              warmup_steps=min(5, job.steps), seed=job.seed),
                          progress=job.progress and ctx.is_main, dist=ctx)
    return op, {"final_loss": hist.accepted_losses[-1] if hist.accepted_losses else float("nan"),
                "rollbacks": len(hist.rollbacks)}


def _autoencoder(job: TrainJob, zoo: Zoo, device, dtype, ctx: DistContext):
    from .losses import coordinate_grid
    from .merging.autoencoder import AutoencoderConfig, DistillationLoss, INRLoss, WeightAutoencoder, train_autoencoder

    train, _ = _split(zoo, job.seed)
    ws = train.weights(device=device, dtype=dtype)
    cfg = AutoencoderConfig(latent_dim=8, hidden_dim=job.hidden, num_layers=job.layers, decoder_hidden=(64,))
    model = WeightAutoencoder(zoo.spec, cfg, reference=ws, device=device, dtype=dtype)
    rec = zoo.recipe or {}
    if rec.get("task") == "inr":
        size = int(rec.get("image_size", 8))
        loss = INRLoss(coordinate_grid(size, size, device=device, dtype=dtype))
    else:
        loss = DistillationLoss(_data(zoo, device).x_train, batch=128,
                                generator=torch.Generator().manual_seed(job.seed))
    hist = train_autoencoder(model, ws, loss, steps=job.steps, batch_size=job.batch, warmup_steps=min(5, job.steps),
                             seed=job.seed, progress=job.progress and ctx.is_main,
                             checkpoint_path=Path(job.out) / "autoencoder.pt", dist=ctx)
    return model, {"final_loss": hist.accepted_losses[-1] if hist.accepted_losses else float("nan"),
                   "rollbacks": len(hist.rollbacks)}


_TRAINERS = {"invariant": _invariant, "operator": _operator, "autoencoder": _autoencoder}
