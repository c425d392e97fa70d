"""Memorization controls of the amortized study (issue 33): what a one-shot operator's held-out gain is
worth against answers that need no learning of an *update* at all (arXiv 2506.07998 shows weight
generators often lose to them).

Every control proposes, for each held-out test network, a network of the same architecture; it is
scored exactly as the operator's output (:func:`~scalegmn_lite.tasks.amortized.operator.network_metrics`
accuracy on the held-out *test images*), on the same test networks, so operator minus control is a
paired per-network difference:

* ``best-training-network``: the single training network with the best accuracy on the *training*
  images, the same output for every input;
* ``nearest-training-network``: per input network, the training network nearest in function space
  (squared distance of the logits on a fixed probe set of the first ``probe_images`` training images);
* ``mean-of-k-best``: the weight average of the ``k`` training networks best on the training images,
  ``k`` from ``k_grid`` chosen by the validation protocol of operator selection (mean accuracy gain over
  the validation networks on the first ``val_images`` training images); test networks and test
  images play no part in the choice;
* ``noise-perturbed-input``: the input network plus an isotropic Gaussian direction scaled to the
  operator's own update norm ``||theta_out - theta_in||`` for that network and seed (seeded), so the
  operator is compared with an update of the same size in a random direction.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...weightspace.weights import WeightSpace
from ..losses import logits
from .operator import network_metrics

__all__ = ["CONTROLS", "K_GRID", "memorization_controls", "training_accuracy", "function_distances",
           "noise_perturbed", "noise_of_norm"]

#: the controls, in the order they are reported
CONTROLS = ("best-training-network", "nearest-training-network", "mean-of-k-best", "noise-perturbed-input")
#: the candidate k of ``mean-of-k-best``
K_GRID = (1, 2, 4, 8, 16)


def _chunks(ws: WeightSpace, chunk: int):
    for i in range(0, ws.batch_size, chunk):
        yield ws[i:i + chunk]


@torch.no_grad()
def _acc(ws: WeightSpace, x: torch.Tensor, y: torch.Tensor, chunk: int = 128) -> np.ndarray:
    """Per-network accuracy (the study's :func:`network_metrics`), in chunks of networks."""
    return np.concatenate([network_metrics(w, x, y)["acc"].double().cpu().numpy() for w in _chunks(ws, chunk)])


def training_accuracy(train: WeightSpace, x: torch.Tensor, y: torch.Tensor, chunk: int = 128) -> np.ndarray:
    """``[N]``: accuracy of every training network on the training images ``(x, y)``."""
    return _acc(train, x, y, chunk)


@torch.no_grad()
def function_distances(a: WeightSpace, b: WeightSpace, x_probe: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """``[A, B]``: mean squared distance of the logits of every network of ``a`` and of ``b`` on ``x_probe``."""
    za = torch.cat([logits(w, x_probe).flatten(1).double() for w in _chunks(a, chunk)])  # [A, n*C]
    zb = torch.cat([logits(w, x_probe).flatten(1).double() for w in _chunks(b, chunk)])
    return torch.cdist(za, zb).pow(2) / za.shape[1]


def noise_of_norm(inputs: WeightSpace, norm: torch.Tensor | np.ndarray, seed: int) -> WeightSpace:
    """``inputs`` plus a random direction (standard normal, normalised per network; ``seed``) scaled to
    ``norm[b]`` for network ``b``: an update of a given size in a random direction."""
    a = inputs.flatten().double()
    norm = torch.as_tensor(norm, dtype=torch.float64).to(a.device)
    if norm.shape != (a.shape[0],):
        raise ValueError(f"noise_of_norm: {a.shape[0]} networks but {tuple(norm.shape)} norms; "
                         "pass one norm per network")
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    eps = torch.randn(a.shape, generator=g, dtype=torch.float64).to(a.device)
    eps = eps / eps.norm(dim=1, keepdim=True).clamp_min(1e-30)
    return WeightSpace.unflatten(inputs.spec, (a + eps * norm[:, None]).to(inputs.dtype))


def noise_perturbed(inputs: WeightSpace, outputs: WeightSpace, seed: int) -> tuple[WeightSpace, np.ndarray]:
    """:func:`noise_of_norm` at ``||outputs - inputs||`` of each network (the operator's own update size).
    Returns the perturbed networks and the update norms ``[B]``."""
    norm = (outputs.flatten().double() - inputs.flatten().double()).norm(dim=1)  # [B]
    return noise_of_norm(inputs, norm, seed), norm.cpu().numpy()


def memorization_controls(train: WeightSpace, val: WeightSpace | None, test: WeightSpace, x: torch.Tensor,
                          y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                          outputs: Sequence[WeightSpace], seed: int = 0, probe_images: int = 512,
                          val_images: int = 1000, val_networks: int = 64, k_grid: Sequence[int] = K_GRID,
                          chunk: int = 128) -> dict:
    """The controls of the module docstring for the ``B`` networks of ``test``.

    ``train``/``val``: the study's training and validation networks; ``(x, y)``: the training images
    (ranking and the validation protocol); ``(x_test, y_test)``: the held-out test images (scoring
    only); ``outputs``: the operator's output for ``test``, one per seed (for the noise control).
    Returns ``{control: {"acc": [S or 1, B] test accuracy, "detail": {...}}}`` (1 row for the
    controls that do not depend on the operator's seed)."""
    if train.batch_size == 0:
        raise ValueError("memorization_controls needs training networks")
    B = test.batch_size
    out: dict = {}
    # ranking by accuracy on the training images
    tr_acc = training_accuracy(train, x, y, chunk)
    order = np.argsort(-tr_acc, kind="stable")
    best = int(order[0])
    acc_best = float(_acc(train[best:best + 1], x_test, y_test)[0])
    out["best-training-network"] = {
        "acc": np.full((1, B), acc_best),
        "detail": {"train_index": best, "train_images_acc": float(tr_acc[best]), "train_images": int(len(y)),
                   "candidates": int(train.batch_size)}}
    # nearest training network in function space
    probe = x[:probe_images]
    dist = function_distances(test, train, probe, chunk)  # [B, N]
    nearest = dist.argmin(1).cpu().numpy()
    acc_train_test = _acc(train[list(map(int, np.unique(nearest)))], x_test, y_test, chunk)
    lookup = dict(zip(np.unique(nearest).tolist(), acc_train_test.tolist()))
    out["nearest-training-network"] = {
        "acc": np.array([[lookup[int(i)] for i in nearest]]),
        "detail": {"train_index": nearest.astype(int).tolist(),
                   "distance": dist.min(1).values.cpu().numpy().round(6).tolist(), "probe_images": int(len(probe)),
                   "metric": "mean squared logit distance on the first probe_images training images"}}
    # mean of the k best, k chosen on the validation protocol (validation networks, training images)
    grid = sorted({int(k) for k in k_grid if 1 <= k <= train.batch_size}) or [1]
    xv, yv = x[:val_images], y[:val_images]
    va = val[:val_networks] if val is not None and val.batch_size else None
    base = float(_acc(va, xv, yv, chunk).mean()) if va is not None else 0.0
    avgs, scores = {}, {}
    for k in grid:
        idx = [int(i) for i in order[:k]]
        avgs[k] = WeightSpace.unflatten(train.spec, train[idx].flatten().double().mean(0, keepdim=True)
                                        .to(train.dtype))
        scores[k] = float(_acc(avgs[k], xv, yv)[0]) - base  # mean gain of the validation networks
    k_best = max(grid, key=lambda k: (scores[k], -k))  # ties: the smaller k
    acc_k = float(_acc(avgs[k_best], x_test, y_test)[0])
    out["mean-of-k-best"] = {
        "acc": np.full((1, B), acc_k),
        "detail": {"k": int(k_best), "k_grid": grid, "val_gain_by_k": {str(k): round(v, 5) for k, v in scores.items()},
                   "val_networks": 0 if va is None else int(va.batch_size), "val_images": int(len(yv)),
                   "train_index": [int(i) for i in order[:k_best]]}}
    # the input plus noise of the operator's own update norm
    accs, norms, applied = [], [], []
    for s, o in enumerate(outputs):
        noisy, norm = noise_perturbed(test, o, seed * 1000 + s)
        accs.append(_acc(noisy, x_test, y_test, chunk))
        norms.append(norm)
        applied.append((noisy.flatten().double() - test.flatten().double()).norm(dim=1).cpu().numpy())
    out["noise-perturbed-input"] = {
        "acc": np.stack(accs) if accs else np.full((1, B), np.nan),
        "detail": {"update_norm": np.round(np.stack(norms), 6).tolist() if norms else [],
                   "perturbation_norm": np.round(np.stack(applied), 6).tolist() if applied else [],
                   "seed": int(seed)}}
    return out
