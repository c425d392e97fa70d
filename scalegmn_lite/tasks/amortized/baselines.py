"""Baselines of the amortized study started from the *same* held-out networks on the *same* objective
``lam ||theta||_1 + CE`` over the zoo's training images (issue 13, the one-shot paper's protocol):

* **SGD-k**: ``k`` epochs of plain SGD over the training images, per network (the published
  baseline). Setting, documented in :class:`~scalegmn_lite.tasks.amortized.protocol.StudyConfig`:
  learning rate ``sgd_lr``, momentum ``sgd_momentum`` (0: plain SGD), minibatch ``sgd_batch``, no
  weight decay, one shared data order. Vectorized over the networks
  (:func:`~scalegmn_lite.zoo.train.train_batched`), the same update as ``torch.optim.SGD`` one by one.
* **Adam-k (tuned)**: Adam with the learning rate chosen from ``adam_lrs`` on the *validation*
  networks: each candidate trains them ``adam_tune_epochs`` epochs on the first 80% of the training
  images and is scored by mean accuracy on the last 20% (neither test networks nor test images are
  used for tuning); the chosen rate then trains the test networks on every training image.

Timing (:func:`one_at_a_time_seconds`): the published setting runs SGD one network at a time; we time
one epoch of ``torch.nn`` + ``torch.optim`` training per network for a few networks and scale by
``k`` (an epoch costs the same every time), and the vectorized run's wall time divided by ``B``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...common.config import cache_dir
from ...common.io import CorruptFileError, load_tensors, save_tensors
from ...weightspace.weights import WeightSpace
from ...zoo.train import train_batched, train_loop
from ..losses import l1_norm
from .operator import network_metrics

__all__ = ["run_baseline", "cached_baseline", "tune_adam_lr", "one_at_a_time_seconds", "digest"]


def digest(ws: WeightSpace) -> str:
    return hashlib.sha256(ws.flatten().detach().cpu().double().numpy().tobytes()).hexdigest()[:16]


def _sync(ws: WeightSpace) -> None:
    if ws.device.type == "cuda":
        torch.cuda.synchronize(ws.device)


def run_baseline(ws: WeightSpace, x: torch.Tensor, y: torch.Tensor, epochs: Sequence[int], lam: float, lr,
                 batch_size: int, optimizer: str = "sgd", momentum: float = 0.0, seed: int = 0,
                 progress: bool = True) -> tuple[dict[int, WeightSpace], float]:
    """``optimizer`` (``"sgd"`` with ``momentum``, or ``"adam"``) from ``ws`` on ``lam ||theta||_1 + CE``
    over ``(x, y)``, vectorized over the ``B`` networks; returns the weights after each of ``epochs``
    and the wall time of the whole run per network (``seconds / B``)."""
    extra = (lambda w: lam * l1_norm(w)) if lam > 0 else None
    _sync(ws)
    t0 = time.perf_counter()
    res = train_batched(ws, (x, y), max(epochs), lr, 0.0, batch_size, generator=torch.Generator().manual_seed(seed),
                        extra_loss=extra, checkpoint_epochs=list(epochs), progress=progress, optimizer=optimizer,
                        momentum=momentum, desc=optimizer.upper())
    _sync(ws)
    return {e: res.checkpoints[e] for e in epochs}, (time.perf_counter() - t0) / ws.batch_size


def cached_baseline(te: WeightSpace, x: torch.Tensor, y: torch.Tensor, epochs: Sequence[int], lam: float, lr: float,
                    batch_size: int, optimizer: str, momentum: float, seed: int, data_tag: str, fmt: int,
                    progress: bool = True, cache: str | Path | None = None) -> tuple[dict[int, WeightSpace], float]:
    """:func:`run_baseline`, cached in ``cache_dir()/sgd`` by a hash of the starting networks, the
    settings and the data (the stored time per network is the one measured by the run that computed it)."""
    blob = json.dumps({"nets": digest(te), "epochs": list(epochs), "lam": lam, "lr": lr, "batch": batch_size,
                       "opt": optimizer, "momentum": momentum, "seed": seed, "data": data_tag,
                       "device": te.device.type, "format": fmt}, sort_keys=True)
    path = Path(cache or cache_dir()) / "sgd" / f"{hashlib.sha256(blob.encode()).hexdigest()[:16]}.pt"
    if path.exists():
        try:
            tensors, meta = load_tensors(path, map_location=te.device)
            return {int(e): WeightSpace.unflatten(te.spec, tensors[str(e)]) for e in epochs}, meta["seconds"]
        except (CorruptFileError, KeyError) as exc:
            print(f"cached baseline unusable, recomputing: {exc}")
    out, sec = run_baseline(te, x, y, epochs, lam, lr, batch_size, optimizer, momentum, seed, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(path, {str(e): w.flatten() for e, w in out.items()}, {"seconds": sec})
    return out, sec


def tune_adam_lr(val: WeightSpace, x: torch.Tensor, y: torch.Tensor, lrs: Sequence[float], epochs: int, lam: float,
                 batch_size: int, seed: int = 0, progress: bool = True) -> tuple[float, dict[str, float]]:
    """The Adam learning rate among ``lrs`` with the best mean accuracy of the validation networks
    ``val`` on the last 20% of ``(x, y)`` after ``epochs`` epochs on the first 80% (all candidates
    train together: ``val`` repeated once per rate). Returns ``(best lr, {lr: accuracy})``."""
    if val.batch_size == 0 or not lrs:
        raise ValueError("tune_adam_lr needs validation networks and at least one learning rate")
    n = int(0.8 * len(y))
    reps = WeightSpace.stack([val] * len(lrs))
    lr = torch.tensor([v for v in lrs for _ in range(val.batch_size)], dtype=torch.float64)
    out, _ = run_baseline(reps, x[:n], y[:n], (epochs,), lam, lr, batch_size, "adam", 0.0, seed, progress)
    acc = network_metrics(out[epochs], x[n:], y[n:])["acc"].reshape(len(lrs), val.batch_size)
    acc = torch.nan_to_num(acc.double(), nan=0.0).mean(1)
    scores = {f"{v:g}": float(a) for v, a in zip(lrs, acc)}
    return float(lrs[int(acc.argmax())]), scores


def one_at_a_time_seconds(ws: WeightSpace, x: torch.Tensor, y: torch.Tensor, lam: float, lr: float, batch_size: int,
                          optimizer: str = "sgd", momentum: float = 0.0, networks: int = 2) -> float:
    """Seconds of *one epoch* of training for one network trained alone (``torch.nn`` modules and
    ``torch.optim``, :func:`~scalegmn_lite.zoo.train.train_loop`), mean over ``networks`` networks."""
    k = max(1, min(networks, ws.batch_size))
    extra = (lambda w: lam * l1_norm(w)) if lam > 0 else None
    _sync(ws)
    t0 = time.perf_counter()
    train_loop(ws, (x, y), 1, lr, 0.0, batch_size, generator=torch.Generator().manual_seed(0), extra_loss=extra,
               optimizer=optimizer, momentum=momentum, networks=list(range(k)))
    _sync(ws)
    return (time.perf_counter() - t0) / k


def per_network(before: WeightSpace, after: WeightSpace, x: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """Per network: test ``acc``, test ``loss``, ``l1_red`` (L1-norm reduction in percent) and ``near_zero``."""
    from ..losses import l1_reduction

    m = network_metrics(after, x, y)
    return {"acc": m["acc"].double().cpu().numpy(), "loss": m["loss"].double().cpu().numpy(),
            "l1_red": l1_reduction(before, after).double().cpu().numpy(),
            "near_zero": m["near_zero"].double().cpu().numpy()}


__all__.append("per_network")
