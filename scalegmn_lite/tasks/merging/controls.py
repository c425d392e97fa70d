"""Controls that every merging claim must beat (issue 33), and the clusters of dependent pairs.

A decoder that ignores its input can look good on merging figures: a decoder that outputs one fixed
network for every input has a *flat* path between any two inputs, so its barrier is 0 by construction
and its path loss is that network's loss. The controls:

* ``constant-decoder``: the floor network (the training network a decoder that ignores its input
  would do best to output; see ``experiments.merging.floor_network``) for every input;
* ``mean-network``: the weight mean of the autoencoder's training networks, for every input;
* ``shuffled-codes``: the trained autoencoder decoding the code of *another* input (a seeded
  derangement: no input keeps its own code, nor, for INRs, the code of another view of its own image).

Each control gives one output network per held-out input (:func:`constant_outputs`,
:func:`mean_network`, :func:`shuffled_outputs`); its path between the inputs ``i`` and ``j`` of a pair is
the decoded path's construction, ``(1 - alpha) out_i + alpha out_j``, scored against the *original*
networks like the decoded path (:func:`output_path_figures`); for a constant control that is the
constant network at every alpha.

Pairs that share a network (or, for INRs, an image: several INRs fit one image) are not independent:
:func:`pair_clusters` labels every pair with its connected component of the graph that joins pairs
sharing a unit, so a clustered bootstrap resamples dependent pairs together.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...weightspace.weights import WeightSpace
from .paths import _alphas, loss_curve
from .study import path_figures

__all__ = ["CONTROLS", "derangement", "pair_clusters", "constant_outputs", "mean_network", "shuffled_outputs",
           "output_path_figures", "ConstantDecoder"]

#: the controls, in the order claims name them
CONTROLS = ("constant-decoder", "mean-network", "shuffled-codes")


def derangement(n: int, seed: int = 0, units: Sequence | None = None) -> np.ndarray:
    """``perm [n]`` with ``perm[i] != i`` for every ``i`` (input ``i`` gets the code of input ``perm[i]``).

    With ``units`` (one label per input, e.g. the image of each INR), ``units[perm[i]] != units[i]``
    too, whenever that is possible: the inputs are put in a random order with each unit's members
    contiguous, and shifted cyclically by the largest unit's size."""
    if n < 2:
        raise ValueError(f"a derangement needs >= 2 inputs, got {n}")
    rng = np.random.default_rng(seed)
    if units is None:
        units = np.arange(n)
    units = np.asarray(units)
    if len(units) != n:
        raise ValueError(f"units must give one label per input ({n}), got {len(units)}")
    labels, inv = np.unique(units, return_inverse=True)
    rank = rng.permutation(len(labels))[inv.reshape(-1)]
    order = np.lexsort((rng.random(n), rank))  # random unit order, members of a unit contiguous
    shift = int(np.bincount(inv.reshape(-1)).max())
    if 2 * shift > n:  # too few units to avoid them all: avoid only the input itself
        shift = 1
    perm = np.empty(n, dtype=np.int64)
    perm[order] = order[(np.arange(n) + shift) % n]
    return perm


def pair_clusters(pairs, units: Sequence | None = None) -> list[int]:
    """One cluster label per pair: pairs ``(i, j)`` are in one cluster when they are connected through
    shared units (``units[i]``: the unit of network ``i``, e.g. its image; default: the network
    itself). Labels are ``0 .. C-1`` in order of first appearance; every pair that shares no unit
    with another pair is its own cluster."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    unit = (lambda i: int(i)) if units is None else (lambda i: units[int(i)])
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        a, b = find(("u", unit(i))), find(("u", unit(j)))
        if a != b:
            parent[a] = b
    roots = [find(("u", unit(i))) for i, _ in pairs]
    first: dict = {}
    return [first.setdefault(r, len(first)) for r in roots]


def constant_outputs(net: WeightSpace, n: int) -> WeightSpace:
    """``net`` (one network) repeated ``n`` times: a decoder that outputs it for every input."""
    if net.batch_size != 1:
        raise ValueError(f"a constant decoder outputs one network, got {net.batch_size}")
    return WeightSpace.unflatten(net.spec, net.flatten().expand(n, -1).clone())


def mean_network(ws: WeightSpace) -> WeightSpace:
    """The weight mean of ``ws``'s networks, as one network."""
    return WeightSpace.unflatten(ws.spec, ws.flatten().mean(0, keepdim=True))


def shuffled_outputs(ae, ws: WeightSpace, perm: Sequence[int]) -> WeightSpace:
    """``D(E(ws)[perm])``: input ``i`` decoded from the code of input ``perm[i]``."""
    z = ae.encode_all(ws)
    p = torch.as_tensor(np.asarray(perm), dtype=torch.long, device=z.device)
    with torch.no_grad():
        return ae.decode(z[p]).to(dtype=ws.dtype)


class ConstantDecoder:
    """Duck-typed stand-in for a :class:`~scalegmn_lite.tasks.merging.autoencoder.WeightAutoencoder`
    that outputs ``net`` for every input (``reconstruct``, ``encode_all``, ``decode``), so it can be
    passed wherever the trained autoencoder is (``merge_curves``, ``evaluate``-like code, tests)."""

    def __init__(self, net: WeightSpace) -> None:
        self.net = net

    def reconstruct(self, ws: WeightSpace) -> WeightSpace:
        return constant_outputs(self.net, ws.batch_size).to(device=ws.device, dtype=ws.dtype)

    def encode_all(self, ws: WeightSpace) -> torch.Tensor:
        return torch.zeros(ws.batch_size, 1, dtype=ws.dtype, device=ws.device)

    def decode(self, z: torch.Tensor) -> WeightSpace:
        return constant_outputs(self.net, z.shape[0])


def output_path_figures(out: WeightSpace, ws: WeightSpace, pairs, task, alphas=21) -> dict[str, list[float]]:
    """Per pair ``(i, j)`` of ``pairs`` the path figures (barrier, max_loss, mean_loss, endpoint_loss;
    :func:`~scalegmn_lite.tasks.merging.study.path_figures`) of ``(1 - alpha) out[i] + alpha out[j]``,
    scored by ``task`` against the originals ``ws[i], ws[j]`` (the decoded path's construction, with
    ``out`` one output network per input of ``ws``)."""
    idx = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    i0, i1 = (torch.as_tensor(idx[:, k]).to(ws.device) for k in (0, 1))
    a = _alphas(alphas)
    fn = task.loss_fn(ws[i0], ws[i1], a)
    out = out.to(device=ws.device, dtype=ws.dtype)
    curve = loss_curve(out[i0], out[i1], fn, a)
    return {k: v.tolist() for k, v in path_figures({"c": curve})["c"].items()}
