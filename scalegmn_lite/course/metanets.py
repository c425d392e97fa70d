"""Exercise checks for notebooks 06 (invariant metanetworks), 07 (amortized optimization) and 08
(autoencoders and merging). Invariance and equivariance are measured with the library's own checkers
(:mod:`scalegmn_lite.nn.checks`), in float64, with random gauge elements and non-symmetries."""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from ..nn.checks import check_equivariance, check_invariance, check_sensitivity, default_tolerance
from ..tasks.merging.paths import loss_barrier
from ..weightspace.layer import Symmetry
from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace
from .feedback import Feedback, require, run_check

__all__ = ["check_tanh_cnn_symmetry", "check_invariant_features", "check_operator_equivariance",
           "check_loss_barrier", "TANH_CNN"]

TANH_CNN = "conv2d 1-8-8/10 k3 tanh 1x8x8"


def check_tanh_cnn_symmetry(answer: Symmetry | str) -> Feedback:
    """Notebook 06, exercise 1. The scaling group ScaleGMN (``mode="auto"``) uses for the hidden
    layers of :data:`TANH_CNN`."""

    def body():
        require(answer)
        want = set(NetworkSpec.from_text(TANH_CNN).symmetries)
        got = Symmetry(answer) if not isinstance(answer, Symmetry) else answer
        if {got} != want:
            return False, f"{got.value} is not it: which q satisfy tanh(q x) = q tanh(x)?"
        return True, f"{got.value}: the views become rho(x) + rho(-x) instead of x / |x|"

    return run_check("06.1", body)


def check_invariant_features(features: Callable[[WeightSpace], torch.Tensor],
                             spec: str = "mlp 6-5-5-3 relu") -> Feedback:
    """Notebook 06, exercise 2. ``features(ws)`` maps ``B`` networks to ``[B, F]`` features that are
    invariant to the gauge group (permutations and positive scalings of hidden ReLU neurons) but change
    under non-symmetries (uncoupled permutations, mismatched or wrong scalings)."""

    def body():
        s = NetworkSpec.from_text(spec)
        gen = torch.Generator().manual_seed(0)
        ws = WeightSpace.randn(s, 3, generator=gen, dtype=torch.float64)

        def model(items):
            return torch.cat([torch.as_tensor(features(w)).reshape(w.batch_size, -1) for w in items])

        inv = check_invariance(model, ws, n_samples=3, generator=gen)
        if not inv.ok(1e-6):
            return False, f"moved by a gauge element: relative change {inv.max_relative:.2e}"
        sens = check_sensitivity(model, ws, generator=gen)
        blind = [k for k, v in sens.items() if v < 1e-6]
        if blind:
            return False, f"invariant, but blind to non-symmetries {blind}: the features lose information"
        return True, "invariant to the gauge group and sensitive to every non-symmetry"

    return run_check("06.2", body)


def check_operator_equivariance(operator: Callable[[WeightSpace], WeightSpace],
                                spec: str = "mlp 6-5-5-3 tanh") -> Feedback:
    """Notebook 07, exercise 1. ``operator(ws)`` returns updated weights; checked: ``h(g . theta) =
    g . h(theta)`` for random gauge elements of ``spec`` (float64 copy of a module), and the update is
    not zero."""

    def body():
        s = NetworkSpec.from_text(spec)
        gen = torch.Generator().manual_seed(0)
        ws = WeightSpace.randn(s, 3, generator=gen, dtype=torch.float64)
        op = copy.deepcopy(operator).double().eval() if isinstance(operator, nn.Module) else operator
        with torch.no_grad():
            moved = op(ws).max_abs_diff(ws)
        if moved < 1e-9:
            return False, "the operator returns its input unchanged: equivariant, but it does nothing"
        res = check_equivariance(lambda items: [op(w) for w in items], ws, n_samples=3, generator=gen)
        if not res.ok():
            return False, f"h(g . theta) != g . h(theta): relative error {res.max_relative:.2e} for {spec}"
        return True, f"equivariant on {spec} (relative error {res.max_relative:.0e} < "\
                     f"{default_tolerance(torch.float64):.0e})"

    return run_check("07.1", body)


def check_loss_barrier(barrier: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Notebook 08, exercise 1. ``barrier(alphas, losses)`` with ``alphas [A]`` (from 0 to 1) and
    ``losses [B, A]`` returns ``[B]``: the largest gap between the loss and the straight line joining
    its endpoints; compared with :func:`~scalegmn_lite.tasks.merging.paths.loss_barrier`."""

    def body():
        gen = torch.Generator().manual_seed(0)
        a = torch.linspace(0, 1, 11, dtype=torch.float64)
        ends = torch.rand(6, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 3.0], dtype=torch.float64)
        line = ends[:, :1] * (1 - a) + ends[:, 1:] * a
        bump = torch.randn(6, 1, generator=gen, dtype=torch.float64) * torch.sin(torch.pi * a)
        losses = line + bump  # some curves dip below the line, some rise above it
        want = loss_barrier((a, losses))
        got = torch.as_tensor(barrier(a, losses), dtype=torch.float64)
        if got.shape != want.shape:
            return False, f"return one barrier per curve, shape {tuple(want.shape)}; got {tuple(got.shape)}"
        err = float((got - want).abs().max())
        if err > 1e-9:
            return False, f"off by up to {err:.3g}: the reference is the line between the endpoints, not their max"
        return True, "barrier = max over alpha of the loss minus the straight line between the endpoints"

    return run_check("08.1", body)
