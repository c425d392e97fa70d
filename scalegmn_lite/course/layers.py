"""Exercise checks for notebooks 04 (networks as graphs) and 05 (scale-equivariant layers)."""

from __future__ import annotations

import itertools
from typing import Callable

import sympy as sp
import torch

from ..nn.graphs import to_graph
from ..symbolic.conv import network_index
from ..weightspace.gauge import GaugeElement
from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace
from .feedback import Feedback, require, run_check

__all__ = ["check_edge_rescaling", "check_edge_width", "check_flattened_inputs", "check_sign_linear_maps",
           "check_invariant_view", "check_backward_message", "EXERCISE_04_2_NETWORKS", "EXERCISE_04_3_NETWORK"]

EXERCISE_04_2_NETWORKS = ("conv1d 1-4-4/3 k5 relu 1x16", "conv2d 1-4-4/3 k3 relu 1x8x8")
#: notebook 04, exercise 3: the CNN whose last conv layer would be flattened into its dense layer
EXERCISE_04_3_NETWORK = "conv2d 1-4-4/3 k3 relu 1x8x8"


def check_edge_rescaling(predict: Callable) -> Feedback:
    """Notebook 04, exercise 1. ``predict(graph, g)`` takes the graph of one ReLU MLP and a gauge
    element ``g`` (batch size 1) and returns the ``edge_attr`` ``[E, 1]`` of the graph of ``g . theta``
    (edges in the library's order), without calling ``g.apply``."""

    def body():
        spec = NetworkSpec.from_text("mlp 3-4-5-2 relu")
        gen = torch.Generator().manual_seed(2)
        for _ in range(2):
            ws = WeightSpace.randn(spec, 1, generator=gen, dtype=torch.float64)
            g = GaugeElement.sample(spec, 1, gen, dtype=torch.float64)
            want = to_graph(g.apply(ws)).edge_attr
            got = torch.as_tensor(predict(to_graph(ws), g))
            if got.shape != want.shape:
                return False, f"expected edge_attr of shape {tuple(want.shape)}, got {tuple(got.shape)}"
            err = float((got - want).abs().max())
            if err > 1e-9:
                return False, f"largest edge difference {err:.2e}: permute the edges, then scale by q_t / q_s"
        return True, "edges of g . theta = q_t / q_s times the permuted edges of theta"

    return run_check("04.1", body)


def check_edge_width(width: int, masked: int) -> Feedback:
    """Notebook 04, exercise 2. One network of each of :data:`EXERCISE_04_2_NETWORKS` in one batch:
    ``width`` is the edge feature size, ``masked`` the number of padded (masked-out) edge entries."""

    def body():
        require(width, masked)
        items = [WeightSpace.randn(NetworkSpec.from_text(s), 1) for s in EXERCISE_04_2_NETWORKS]
        batch = to_graph(items)
        want_w, want_m = batch.edge_attr.shape[1], int((~batch.edge_mask).sum())
        if int(width) != want_w:
            return False, f"edge width {width} is not right: which kernel has the most entries?"
        if int(masked) != want_m:
            return False, f"{masked} masked entries is not right: count edges per layer times the padding"
        return True, f"width {want_w}, {want_m} padded entries"

    return run_check("04.2", body)


def check_flattened_inputs(inputs: int, factors: int) -> Feedback:
    """Notebook 04, exercise 3. :data:`EXERCISE_04_3_NETWORK` with its last conv layer flattened into
    the dense layer: ``inputs`` is the number of the dense layer's input neurons, ``factors`` the number
    of independent scale factors the gauge group has on them."""

    def body():
        require(inputs, factors)
        spec = NetworkSpec.from_text(EXERCISE_04_3_NETWORK)
        i_last = max(i for i, layer in enumerate(spec.layers) if layer.is_conv)
        last, npos = spec.layers[i_last], network_index(spec)[2][i_last]
        want_in, want_f = last.out_dim * npos, last.out_dim
        if int(inputs) != want_in:
            return False, f"{inputs} inputs is not right: channels x positions of the last conv layer's output"
        if int(factors) != want_f:
            return False, f"{factors} factors is not right: does each position of a channel get its own q?"
        return True, (f"{want_in} dense inputs, but only {want_f} scale factors (one per channel, shared by "
                      f"its {npos} positions)")

    return run_check("04.3", body)


def check_sign_linear_maps(L: sp.Matrix) -> Feedback:
    """Notebook 05, exercise 1. ``L``: the most general ``3 x 3`` sympy matrix with ``L S = S L`` for
    every sign matrix ``S = diag(+-1, +-1, +-1)`` (free entries as symbols)."""

    def body():
        require(L)
        M = sp.Matrix(L)
        if M.shape != (3, 3):
            return False, f"expected a 3 x 3 matrix, got {M.shape}"
        for signs in itertools.product((1, -1), repeat=3):
            S = sp.diag(*signs)
            if (M * S - S * M).applyfunc(sp.expand) != sp.zeros(3, 3):
                return False, f"L does not commute with S = diag{signs}"
        n_free = len(M.free_symbols)
        if n_free < 3:
            return False, f"commutes, but has {n_free} free parameters: is it the most general such map?"
        return True, "only diagonal maps survive, as for positive scalings"

    return run_check("05.1", body)


def check_invariant_view(view: Callable[[torch.Tensor], torch.Tensor], group: str = "positive") -> Feedback:
    """Notebook 05, exercise 2. ``view(x)`` maps ``[N, d]`` rows to invariant features: unchanged by
    ``x -> q x`` (``q > 0`` for ``group="positive"``, ``q = +-1`` for ``"sign"``), checked in float64
    for norms from ``1e-2`` to ``1e2``, and not constant (different directions give different views)."""

    def body():
        if group not in ("positive", "sign"):
            raise ValueError(f"group must be 'positive' or 'sign', got {group!r}")
        gen = torch.Generator().manual_seed(0)
        d = 4
        x = torch.randn(64, d, generator=gen, dtype=torch.float64)
        x = x / x.norm(dim=-1, keepdim=True) * torch.logspace(-2, 2, 64, dtype=torch.float64)[:, None]
        if group == "positive":
            q = torch.exp(torch.rand(64, 1, generator=gen, dtype=torch.float64) * 4 - 2)
        else:
            q = torch.randint(0, 2, (64, 1), generator=gen).to(torch.float64) * 2 - 1
        v, vq = view(x), view(q * x)
        err = float(((vq - v).abs().max(-1).values / v.abs().max(-1).values.clamp(min=1e-300)).max())
        if err > 1e-9:
            worst = float(x.norm(dim=-1)[((vq - v).abs().max(-1).values).argmax()])
            return False, f"not invariant: relative change {err:.2e} (worst at |x| = {worst:.2g})"
        if float((v[1:] - v[:1]).abs().max()) < 1e-9:
            return False, "the view is constant: it is invariant but tells the network nothing"
        return True, f"invariant to {group} scalings and not constant"

    return run_check("05.2", body)


def check_backward_message(message: Callable, zero_edge_ok: bool = False) -> Feedback:
    """Notebook 05, exercise 3. ``message(x, e, edge_index)`` with ``x [V, d]``, ``e [E, d]`` returns
    ``[E, d]``: the message from the receiver ``t`` back to the sender ``s`` of every edge ``s -> t``,
    which must scale like ``q_s`` when ``x_v -> q_v x_v``, ``e_st -> (q_t / q_s) e_st``. The feedback
    also says whether the message stays finite when a weight is zero (with ``zero_edge_ok=True`` a
    message that becomes infinite there counts as wrong)."""

    def body():
        gen = torch.Generator().manual_seed(0)
        ei = torch.tensor([[0, 0, 1, 2], [1, 2, 3, 3]])
        d = 3
        x = torch.randn(4, d, generator=gen, dtype=torch.float64)
        e = torch.randn(4, d, generator=gen, dtype=torch.float64)
        q = torch.exp(torch.rand(4, 1, generator=gen, dtype=torch.float64) * 3 - 1.5)
        qe = q[ei[1]] / q[ei[0]]
        out, out_q = message(x, e, ei), message(q * x, qe * e, ei)
        if tuple(out.shape) != (4, d):
            return False, f"return one message per edge, shape (4, {d}); got {tuple(out.shape)}"
        err = float((out_q - q[ei[0]] * out).abs().max() / out.abs().max())
        if err > 1e-9:
            return False, f"does not scale like the sender q_s (relative error {err:.2e})"
        e0 = e.clone()
        e0[1] = 0.0
        finite = bool(torch.isfinite(message(x, e0, ei)).all())
        if zero_edge_ok and not finite:
            return False, "scales like q_s, but is infinite or NaN where a weight is zero"
        return True, "scales like the sender q_s; " + ("finite at a zero weight" if finite
                                                       else "infinite or NaN at a zero weight")

    return run_check("05.3", body)
