"""Public checkers: is a metanetwork invariant or equivariant to the gauge group, and does it react
to transformations that are *not* symmetries?

``model`` is any callable on weight spaces: ``model(list_of_ws)`` returning a tensor
``[num_networks, ...]`` (invariant models) or a list of :class:`WeightSpace` (equivariant models,
outputs transforming like the inputs' weights and biases). Checks run on a float64 deep copy of
``model`` (``model.double()`` when it is a module) so that the errors measure the model and not
float32 rounding; pass ``dtype=torch.float32`` to check a model as it runs.

    err = check_invariance(model, ws).max_error      # ~1e-13 for a correct model in float64
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from ..weightspace.gauge import NON_SYMMETRY_KINDS, GaugeElement, sample_non_symmetry
from ..weightspace.weights import WeightSpace

__all__ = ["CheckResult", "check_invariance", "check_equivariance", "check_sensitivity", "default_tolerance"]


@dataclass
class CheckResult:
    """Largest error over all samples: ``max_error`` (absolute) and ``max_relative`` (divided by the
    largest output magnitude); ``errors`` per sample."""

    max_error: float
    max_relative: float
    errors: list[float] = field(default_factory=list)
    dtype: torch.dtype = torch.float64

    def ok(self, rtol: float | None = None) -> bool:
        return self.max_relative <= (default_tolerance(self.dtype) if rtol is None else rtol)


def default_tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance for equivariance errors of a few-layer metanetwork in ``dtype``."""
    return {torch.float64: 1e-9, torch.float32: 1e-3, torch.float16: 5e-2, torch.bfloat16: 5e-2}.get(dtype, 1e-3)


def _items(ws: WeightSpace | Sequence[WeightSpace]) -> list[WeightSpace]:
    return [ws] if isinstance(ws, WeightSpace) else list(ws)


def _prepare(model: Callable, ws, dtype: torch.dtype):
    items = _items(ws)
    if isinstance(model, torch.nn.Module):
        model = copy.deepcopy(model).to(dtype=dtype).eval()
        device = next(model.parameters()).device if any(True for _ in model.parameters()) else items[0].device
    else:
        device = items[0].device
    return model, [w.detach().to(device=device, dtype=dtype) for w in items]


def _flat(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.reshape(out.shape[0], -1) if out.dim() else out.reshape(1, 1)
    if isinstance(out, WeightSpace):
        return out.flatten().reshape(-1)
    return torch.cat([_flat(o).reshape(-1) for o in out])


def _sample(items: list[WeightSpace], generator, permute: bool, scale: bool) -> list[GaugeElement]:
    return [GaugeElement.sample(w.spec, w.batch_size, generator, permute=permute, scale=scale,
                                device=w.device, dtype=w.dtype) for w in items]


@torch.no_grad()
def check_invariance(model: Callable, ws: WeightSpace | Sequence[WeightSpace], n_samples: int = 4,
                     generator: torch.Generator | None = None, *, permute: bool = True, scale: bool = True,
                     dtype: torch.dtype = torch.float64) -> CheckResult:
    """``max |f(g . theta) - f(theta)|`` over ``n_samples`` random gauge elements ``g`` (one per
    network, each layer's scaling drawn from its own symmetry; ``scale=False``: permutations only)."""
    model, items = _prepare(model, ws, dtype)
    ref = _flat(model(items))
    scale_ref = float(ref.abs().max()) or 1.0
    errors = []
    for _ in range(n_samples):
        gs = _sample(items, generator, permute, scale)
        out = _flat(model([g.apply(w) for g, w in zip(gs, items)]))
        errors.append(float((out - ref).abs().max()))
    return CheckResult(max(errors), max(errors) / scale_ref, errors, dtype)


@torch.no_grad()
def check_equivariance(model: Callable, ws: WeightSpace | Sequence[WeightSpace], n_samples: int = 4,
                       generator: torch.Generator | None = None, *, permute: bool = True, scale: bool = True,
                       dtype: torch.dtype = torch.float64) -> CheckResult:
    """``max |f(g . theta) - g . f(theta)|`` for a model returning weight spaces (one per input
    weight space, or one for one), e.g. ``ScaleGMN(head="equivariant")`` or ``model.update``."""
    model, items = _prepare(model, ws, dtype)
    out = model(items)
    out = [out] if isinstance(out, WeightSpace) else list(out)
    if not all(isinstance(o, WeightSpace) for o in out):
        raise TypeError("check_equivariance needs a model that returns weight spaces; use check_invariance")
    scale_ref = max(float(o.flatten().abs().max()) for o in out) or 1.0
    errors = []
    for _ in range(n_samples):
        gs = _sample(items, generator, permute, scale)
        got = model([g.apply(w) for g, w in zip(gs, items)])
        got = [got] if isinstance(got, WeightSpace) else list(got)
        want = [g.apply(o) for g, o in zip(gs, out)]
        errors.append(max(float((a.flatten() - b.flatten()).abs().max()) for a, b in zip(got, want)))
    return CheckResult(max(errors), max(errors) / scale_ref, errors, dtype)


@torch.no_grad()
def check_sensitivity(model: Callable, ws: WeightSpace | Sequence[WeightSpace],
                      kinds: Sequence[str] = NON_SYMMETRY_KINDS, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float64) -> dict[str, float]:
    """Relative change ``max |f(T theta) - f(theta)| / max |f(theta)|`` for each non-symmetry ``T``
    (:func:`~scalegmn_lite.weightspace.gauge.sample_non_symmetry`). A useful model changes its output (values
    well above :func:`default_tolerance`); for equivariant models the raw outputs are compared."""
    model, items = _prepare(model, ws, dtype)
    ref = _flat(model(items))
    scale_ref = float(ref.abs().max()) or 1.0
    result = {}
    for kind in kinds:
        out = _flat(model([sample_non_symmetry(w, kind, generator) for w in items]))
        result[kind] = float((out - ref).abs().max()) / scale_ref
    return result
