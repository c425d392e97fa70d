"""Public checkers: is a metanetwork invariant or equivariant to the gauge group, and does it react
to transformations that are *not* symmetries?

``model`` is any callable on weight spaces: ``model(list_of_ws)`` returning a tensor
``[num_networks, ...]`` (invariant models) or a list of :class:`WeightSpace` (equivariant models,
outputs transforming like the inputs' weights and biases). Checks run on a float64 deep copy of
``model`` (``model.double()`` when it is a module) so that the errors measure the model and not
float32 rounding; pass ``dtype=torch.float32`` to check a model as it runs.

    err = check_invariance(model, ws).max_error      # ~1e-13 for a correct model in float64

Block networks (:class:`~scalegmn_lite.weightspace.block_weights.BlockWeights`: residual blocks, BatchNorm,
LayerNorm) are checked by the same functions: the samples are
:class:`~scalegmn_lite.weightspace.block_gauge.BlockGauge` elements (norm-input sign flips included), or, with
``part=``, elements of one part of the group (:mod:`.block_checks`); equivariant models return ``BlockWeights``
updates; :func:`check_sensitivity` uses the block non-symmetries
(:func:`~scalegmn_lite.weightspace.block_gauge.sample_non_symmetry`), whose ``NonSymmetry`` objects the model must
accept (``ScaleGMN`` does: a rescaled shortcut becomes the value of its constant edges). Exact checks of block
networks need norms with ``eps = 0`` (``spec.with_eps(0.0)``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from ..weightspace import block_gauge
from ..weightspace.block_gauge import BlockGauge
from ..weightspace.block_weights import BlockWeights
from ..weightspace.gauge import NON_SYMMETRY_KINDS, GaugeElement, sample_non_symmetry
from ..weightspace.weights import WeightSpace
from .block_checks import sample_gauge_part

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
    return [ws] if isinstance(ws, (WeightSpace, BlockWeights)) else list(ws)


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
    if isinstance(out, (WeightSpace, BlockWeights)):
        return out.flatten().reshape(-1)
    return torch.cat([_flat(o).reshape(-1) for o in out])


def _sample(items: list, generator, permute: bool, scale: bool, part: str | None = None) -> list:
    out = []
    for w in items:
        if isinstance(w, BlockWeights):
            if part is not None:
                out.append(sample_gauge_part(w.spec, part, w.batch_size, generator, device=w.device, dtype=w.dtype))
            else:
                out.append(BlockGauge.sample(w.spec, w.batch_size, generator, permute=permute, scale=scale,
                                             prenorm_sign=True, device=w.device, dtype=w.dtype))
        elif part is not None:
            raise ValueError("part= selects a part of a block network's gauge; chain networks have none")
        else:
            out.append(GaugeElement.sample(w.spec, w.batch_size, generator, permute=permute, scale=scale,
                                           device=w.device, dtype=w.dtype))
    return out


@torch.no_grad()
def check_invariance(model: Callable, ws: WeightSpace | Sequence[WeightSpace], n_samples: int = 4,
                     generator: torch.Generator | None = None, *, permute: bool = True, scale: bool = True,
                     dtype: torch.dtype = torch.float64, part: str | None = None) -> CheckResult:
    """``max |f(g . theta) - f(theta)|`` over ``n_samples`` random gauge elements ``g`` (one per
    network, each layer's scaling drawn from its own symmetry; ``scale=False``: permutations only;
    ``part``: block networks only, one part of the group, :data:`~.block_checks.GAUGE_PARTS`)."""
    model, items = _prepare(model, ws, dtype)
    ref = _flat(model(items))
    scale_ref = float(ref.abs().max()) or 1.0
    errors = []
    for _ in range(n_samples):
        gs = _sample(items, generator, permute, scale, part)
        out = _flat(model([g.apply(w) for g, w in zip(gs, items)]))
        errors.append(float((out - ref).abs().max()))
    return CheckResult(max(errors), max(errors) / scale_ref, errors, dtype)


@torch.no_grad()
def check_equivariance(model: Callable, ws: WeightSpace | Sequence[WeightSpace], n_samples: int = 4,
                       generator: torch.Generator | None = None, *, permute: bool = True, scale: bool = True,
                       dtype: torch.dtype = torch.float64, part: str | None = None) -> CheckResult:
    """``max |f(g . theta) - g . f(theta)|`` for a model returning weight spaces (one per input
    weight space, or one for one), e.g. ``ScaleGMN(head="equivariant")`` or ``model.update``; for block
    networks ``BlockWeights`` (``part`` as in :func:`check_invariance`)."""
    model, items = _prepare(model, ws, dtype)
    out = model(items)
    out = [out] if isinstance(out, (WeightSpace, BlockWeights)) else list(out)
    if not all(isinstance(o, (WeightSpace, BlockWeights)) for o in out):
        raise TypeError("check_equivariance needs a model that returns weight spaces; use check_invariance")
    scale_ref = max(float(o.flatten().abs().max()) for o in out) or 1.0
    errors = []
    for _ in range(n_samples):
        gs = _sample(items, generator, permute, scale, part)
        got = model([g.apply(w) for g, w in zip(gs, items)])
        got = [got] if isinstance(got, (WeightSpace, BlockWeights)) else list(got)
        want = [g.apply(o) for g, o in zip(gs, out)]
        errors.append(max(float((a.flatten() - b.flatten()).abs().max()) for a, b in zip(got, want)))
    return CheckResult(max(errors), max(errors) / scale_ref, errors, dtype)


@torch.no_grad()
def check_sensitivity(model: Callable, ws: WeightSpace | Sequence[WeightSpace],
                      kinds: Sequence[str] | None = None, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float64) -> dict[str, float]:
    """Relative change ``max |f(T theta) - f(theta)| / max |f(theta)|`` for each non-symmetry ``T``
    (:func:`~scalegmn_lite.weightspace.gauge.sample_non_symmetry`; for block networks
    :func:`~scalegmn_lite.weightspace.block_gauge.sample_non_symmetry`, by default every kind the networks have).
    A useful model changes its output (values well above :func:`default_tolerance`); for equivariant models the
    raw outputs are compared."""
    model, items = _prepare(model, ws, dtype)
    ref = _flat(model(items))
    scale_ref = float(ref.abs().max()) or 1.0
    blocks = isinstance(items[0], BlockWeights)
    sampler = block_gauge.sample_non_symmetry if blocks else sample_non_symmetry
    result = {}
    defaults = kinds is None
    for kind in (block_gauge.NON_SYMMETRY_KINDS if blocks else NON_SYMMETRY_KINDS) if defaults else kinds:
        try:
            moved = [sampler(w, kind, generator) for w in items]
        except ValueError:
            if not (defaults and blocks):
                raise
            continue  # a default block kind the networks do not have (no LayerNorm, no shortcut, ...)
        out = _flat(model(moved))
        result[kind] = float((out - ref).abs().max()) / scale_ref
    return result
