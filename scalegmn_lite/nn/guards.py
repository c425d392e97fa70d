"""Entry checks shared by every metanetwork: bad input is never silent.

* :func:`check_weights`: weights on the ``meta`` device (no values) and NaN/inf weights raise,
  naming the networks (:class:`~scalegmn_lite.weightspace.weights.NonFiniteWeightsError`); a zoo may
  hold diverged networks (``WeightSpace.from_modules`` keeps them), a model never eats them.
* :func:`check_output`: a forward pass whose finite input overflowed the float range (weights of
  magnitude ~1e10 in deep float32 networks: equivariant features scale with the weights, so no
  exactly equivariant model can bound them) raises :class:`FloatingPointError` naming the networks
  and the fix (float64), instead of returning NaN/inf.
* :func:`check_mode`: a ScaleGMN ``mode`` that contradicts a hidden layer's symmetry (the spec
  knows it: ``"scale"`` on tanh/sine/sigmoid layers, ``"sign"`` on ReLU layers) raises and names
  the fix (``mode="auto"``).

Both accept a :class:`~scalegmn_lite.weightspace.weights.WeightSpace`, a list of them, or a
torch-geometric batch from :func:`~scalegmn_lite.nn.graphs.to_graph`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch_geometric.data import Batch

from ..weightspace.layer import Symmetry
from ..weightspace.weights import NonFiniteWeightsError, WeightSpace
from .graphs import HIDDEN, SYM_CODES

__all__ = ["check_weights", "check_mode", "check_output", "MODE_SYMMETRY"]

#: the symmetry a ScaleGMN mode assumes of every hidden layer (``None``: any, read from the spec)
MODE_SYMMETRY = {"scale": Symmetry.POSITIVE_SCALE, "sign": Symmetry.SIGN, "permutation": None, "auto": None}


def _items(inp) -> list[WeightSpace]:
    return [inp] if isinstance(inp, WeightSpace) else list(inp)


def check_weights(inp: WeightSpace | Sequence[WeightSpace] | Batch, what: str = "input") -> None:
    """Raise for ``meta`` tensors or NaN/inf weights; network indices count across a list in order
    (graph indices for a batch)."""
    if isinstance(inp, Batch):
        if inp.edge_attr.device.type == "meta":
            raise ValueError(f"{what}: the graph batch is on the 'meta' device (shapes only, no values); "
                             "build it from materialized weights")
        bad_v = ~torch.isfinite(inp.x).all(-1)
        bad_e = ~torch.isfinite(inp.edge_attr).all(-1)
        graphs = torch.cat([inp.batch[bad_v], inp.batch[inp.edge_index[1][bad_e]]]).unique().tolist()
        if graphs:
            raise NonFiniteWeightsError(
                f"{what}: graphs {graphs[:20]}{'...' if len(graphs) > 20 else ''} have NaN/inf vertex or edge "
                "features (weights); drop those networks before building the batch", graphs)
        return
    offset = 0
    for w in _items(inp):
        w.check_materialized(what)
        w.check_finite(what, offset=offset)
        offset += w.batch_size


def check_mode(mode: str, inp: WeightSpace | Sequence[WeightSpace] | Batch, what: str = "ScaleGMN") -> None:
    """Raise ``ValueError`` if ``mode`` assumes a symmetry some hidden layer does not have."""
    want = MODE_SYMMETRY.get(mode)
    if want is None:
        return
    if isinstance(inp, Batch):
        hidden = inp.vtype == HIDDEN
        wrong = hidden & (inp.sym != SYM_CODES[want])
        if bool(wrong.any()):
            codes = {v: k for k, v in SYM_CODES.items()}
            found = sorted({str(codes.get(int(c), "nonzero scaling (norm input)"))
                            for c in inp.sym[wrong].unique().tolist()})
            raise ValueError(f"{what}: mode={mode!r} assumes {want.value} symmetry in every hidden layer, but "
                             "the batch "
                             f"has hidden layers with {found} symmetry; use mode='auto' (each layer's own symmetry), "
                             "or ScaleGMNConfig(check_mode=False) for a deliberate ablation")
        return
    for w in _items(inp):
        wrong = [(l + 1, layer.activation, s) for l, (layer, s) in
                 enumerate(zip(w.spec.layers, w.spec.symmetries)) if s != want]
        if wrong:
            desc = ", ".join(f"hidden layer {l} ({act}: {s.value})" for l, act, s in wrong)
            raise ValueError(
                f"{what}: mode={mode!r} assumes {want.value} symmetry in every hidden layer, but "
                f"{w.spec.to_text()!r} has {desc}; use mode='auto' (each layer's own symmetry from the spec), "
                "or ScaleGMNConfig(check_mode=False) for a deliberate ablation")


def check_output(node_or_out: torch.Tensor, batch: Batch, edge_out: torch.Tensor | None, dtype: torch.dtype) -> None:
    """Raise :class:`FloatingPointError` if a forward pass on finite weights produced NaN/inf.

    ``node_or_out``: the invariant output ``[G, k]`` (``edge_out=None``), or the equivariant head's
    vertex output ``[V, 1]`` with its edge output ``[E, K]``."""
    if edge_out is None:
        bad = ~torch.isfinite(node_or_out).all(-1)
        if not bool(bad.any()):
            return
        graphs = torch.nonzero(bad).flatten().tolist()
    else:
        bad_v = ~torch.isfinite(node_or_out).all(-1)
        bad_e = ~torch.isfinite(edge_out).all(-1)
        if not bool(bad_v.any()) and not bool(bad_e.any()):
            return
        edge_graph = batch.batch[batch.edge_index[0]]
        graphs = sorted(set(batch.batch[bad_v].tolist()) | set(edge_graph[bad_e].tolist()))
    big = float(batch.edge_attr.abs().max()) if batch.edge_attr.numel() else 0.0
    raise FloatingPointError(
        f"ScaleGMN: the forward pass overflowed {dtype} on networks {graphs[:10]}{'...' if len(graphs) > 10 else ''} "
        f"(finite weights, largest |weight| {big:.3g}): features of an exactly equivariant model scale with the "
        "weights and compound over message-passing layers. Run the model in float64 (model.double(); inputs are "
        "converted), or use fewer message-passing layers (num_layers).")
