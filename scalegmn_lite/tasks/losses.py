"""Objectives on batches of networks (:class:`~scalegmn_lite.weightspace.weights.WeightSpace`), evaluated for all
``B`` networks in one batched computation (no Python loop over networks).

Every function returns one value per network, ``Tensor[B]``, and keeps the autograd graph to the
weight tensors, so the same functions serve as training objectives (issue 5: the amortized
objective of the *proposed* networks; issue 6: distillation and INR reconstruction losses) and as
metrics (accuracy, L1 norm, fraction of near-zero weights, PSNR).

Data conventions (``N`` samples):
    ``x``: ``[N, *input_shape]`` shared by all networks, or ``[B, N, *input_shape]`` with
    ``per_network=True``; ``y``: ``[N]`` (or ``[B, N]``) integer class labels in ``0..n_out-1``.

All functions here are invariant under the gauge group (:mod:`scalegmn_lite.weightspace.gauge`) except the
weight norms (:func:`l1_norm`, :func:`near_zero_fraction`), which are permutation invariant but
change under scalings: that is why an L1 penalty can pick a point on a scaling orbit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..weightspace.spec import SpecError
from ..weightspace.weights import WeightSpace, batched_forward

__all__ = [
    "check_inputs",
    "check_labels",
    "logits",
    "logits_cross_entropy",
    "classification_loss",
    "accuracy",
    "l1_norm",
    "l1_reduction",
    "near_zero_fraction",
    "amortized_objective",
    "distillation_kl",
    "coordinate_grid",
    "render_inr",
    "inr_mse",
    "psnr",
]


# ---------------------------------------------------------------------- input checks
def check_inputs(ws: WeightSpace, x: torch.Tensor, per_network: bool = False) -> None:
    """Raise :class:`SpecError` (what is wrong, how to fix it) if ``x`` does not fit ``ws.spec``.

    Checks the batch axis (``per_network=True``: ``x.shape[0] == B``) and the per-sample shape: an
    MLP accepts any sample shape with ``n_0`` entries (it flattens), unless ``spec.input_shape`` is
    set, in which case the shape must match it; a convolution needs ``[C, *spatial]`` with the right
    ``C`` (and exactly ``spec.input_shape`` when it is set).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(x).__name__}")
    spec = ws.spec
    lead = 2 if per_network else 1
    if per_network and (x.dim() < 2 or x.shape[0] != ws.batch_size):
        raise SpecError(
            f"per_network=True needs inputs [B={ws.batch_size}, N, *input_shape], got {tuple(x.shape)}; "
            "pass per_network=False to share one data batch across all networks"
        )
    sample = tuple(x.shape[lead:])
    first = spec.layers[0]
    if spec.input_shape is not None and sample != spec.input_shape:
        if not (first.kind == "linear" and math.prod(sample) == first.in_dim):
            raise SpecError(
                f"inputs have sample shape {sample} but {spec.to_text()!r} expects {spec.input_shape}; "
                f"reshape x to [N, {', '.join(map(str, spec.input_shape))}]"
            )
    if first.kind == "linear":
        if math.prod(sample) != first.in_dim:
            raise SpecError(
                f"inputs have sample shape {sample} ({math.prod(sample)} features) but the network's "
                f"first layer takes {first.in_dim} features; check the data set matches {spec.to_text()!r}"
            )
    else:
        ndim = 1 if first.kind == "conv1d" else 2
        if len(sample) != ndim + 1 or sample[0] != first.in_dim:
            raise SpecError(
                f"{first.kind} networks take samples [C={first.in_dim}, {'L' if ndim == 1 else 'H, W'}], "
                f"got sample shape {sample}; add a channel axis with x.unsqueeze({lead}) if it is missing"
            )


def check_labels(y: torch.Tensor, num_classes: int, n: int, batch: int | None = None) -> torch.Tensor:
    """Validate integer labels ``[N]`` (or ``[B, N]``) in ``0..num_classes-1``; return them as long."""
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise SpecError(f"labels must be integer class indices, got dtype {y.dtype}; use y.long()")
    shape_ok = (y.dim() == 1 and y.shape[0] == n) or (
        batch is not None and y.dim() == 2 and y.shape == (batch, n)
    )
    if not shape_ok:
        want = f"[N={n}]" + (f" or [B={batch}, N={n}]" if batch is not None else "")
        raise SpecError(f"labels have shape {tuple(y.shape)}, expected {want} (one label per input sample)")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise SpecError(
            f"labels range over [{int(y.min())}, {int(y.max())}] but the networks have {num_classes} "
            f"outputs (classes 0..{num_classes - 1}); check the data set matches the zoo"
        )
    return y.long()


def logits(ws: WeightSpace, x: torch.Tensor, per_network: bool = False) -> torch.Tensor:
    """``[B, N, n_out]``: outputs of all networks, after :func:`check_inputs`."""
    check_inputs(ws, x, per_network)
    return batched_forward(ws, x, per_network)


# ---------------------------------------------------------------------- classification
def logits_cross_entropy(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per network. ``z``: ``[B, N, C]``, ``y``: ``[N]`` or ``[B, N]`` -> ``[B]``."""
    B, N, C = z.shape
    y = check_labels(y, C, N, B).to(z.device)
    yy = y.expand(B, N) if y.dim() == 1 else y
    return F.cross_entropy(z.reshape(B * N, C), yy.reshape(B * N), reduction="none").view(B, N).mean(1)


def classification_loss(ws: WeightSpace, x: torch.Tensor, y: torch.Tensor, per_network: bool = False) -> torch.Tensor:
    """Mean cross-entropy of each network: ``CE_b = (1/N) sum_n -log softmax(f_b(x_n))[y_n]``.

    Args:
        ws: ``B`` classifiers with ``n_out`` classes.
        x: ``[N, *input_shape]`` (or ``[B, N, *input_shape]`` with ``per_network``).
        y: ``[N]`` (or ``[B, N]``) labels in ``0..n_out-1``.
    Returns:
        ``[B]``, differentiable with respect to the weight tensors.
    """
    return logits_cross_entropy(logits(ws, x, per_network), y)


@torch.no_grad()
def accuracy(ws: WeightSpace, x: torch.Tensor, y: torch.Tensor, per_network: bool = False) -> torch.Tensor:
    """``[B]``: fraction of samples whose argmax output equals the label (same shapes as
    :func:`classification_loss`)."""
    z = logits(ws, x, per_network)
    B, N, C = z.shape
    y = check_labels(y, C, N, B).to(z.device)
    return (z.argmax(-1) == y).to(z.dtype).mean(1)


# ---------------------------------------------------------------------- weight norms
def _abs_tensors(ws: WeightSpace, include_biases: bool):
    ts = ws.params() if include_biases else ws.weights
    return [t.reshape(ws.batch_size, -1) for t in ts]


def l1_norm(ws: WeightSpace, include_biases: bool = True) -> torch.Tensor:
    """``[B]``: ``||theta_b||_1 = sum_l (sum |W_l| + sum |b_l|)`` (biases optional); differentiable."""
    return sum(t.abs().sum(1) for t in _abs_tensors(ws, include_biases))


def l1_reduction(ws_before: WeightSpace, ws_after: WeightSpace, include_biases: bool = True) -> torch.Tensor:
    """``[B]``: reduction of the L1 norm in percent, ``100 (1 - ||theta'||_1 / ||theta||_1)``."""
    before = l1_norm(ws_before, include_biases)
    return 100.0 * (1.0 - l1_norm(ws_after, include_biases) / before.clamp_min(torch.finfo(before.dtype).tiny))


@torch.no_grad()
def near_zero_fraction(ws: WeightSpace, tol: float = 1e-3, include_biases: bool = True) -> torch.Tensor:
    """``[B]``: fraction of parameters with ``|theta| < tol``."""
    ts = _abs_tensors(ws, include_biases)
    small = sum((t.abs() < tol).sum(1) for t in ts)
    total = sum(t.shape[1] for t in ts)
    return small.to(ws.dtype) / total


# ---------------------------------------------------------------------- amortized optimization
def amortized_objective(
    ws_proposed: WeightSpace,
    x: torch.Tensor,
    y: torch.Tensor,
    lam: float,
    include_biases: bool = True,
    per_network: bool = False,
) -> torch.Tensor:
    """The fully-amortized objective of issue 5 for each *proposed* network ``theta' = h(G, theta)``:

        ``L_b = lam * ||theta'_b||_1 + (1/N) sum_n CE(f_{theta'_b}(x_n), y_n)``

    Args:
        ws_proposed: ``B`` networks output by the operator (gradients flow back into its tensors).
        x, y: a data batch ``[N, *input_shape]``, ``[N]`` (see :func:`classification_loss`).
        lam: L1 weight (``>= 0``; the published runs use 5e-4 .. 1.5e-3).
    Returns:
        ``[B]``; average it (``.mean()``) for the operator's training loss.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    ce = classification_loss(ws_proposed, x, y, per_network)
    if lam == 0:
        return ce
    return lam * l1_norm(ws_proposed, include_biases) + ce


# ---------------------------------------------------------------------- distillation
def distillation_kl(
    student: WeightSpace,
    teacher: WeightSpace | torch.Tensor,
    x: torch.Tensor,
    temperature: float = 1.0,
    per_network: bool = False,
) -> torch.Tensor:
    """Knowledge-distillation loss per network (Hinton et al.), teacher detached:

        ``T^2 * (1/N) sum_n KL( softmax(z^t_n / T) || softmax(z^s_n / T) )``

    The ``T^2`` factor keeps gradient magnitudes comparable across temperatures (the usual
    convention). The loss is zero iff the student's outputs equal the teacher's up to a constant
    shift per sample.

    Args:
        student: ``B`` networks (e.g. decoded by an autoencoder).
        teacher: ``B`` (or 1) networks with the same number of outputs, or their logits
            ``[B, N, C]`` / ``[N, C]`` precomputed on ``x``.
        x: ``[N, *input_shape]`` (or ``[B, N, ...]`` with ``per_network``).
        temperature: ``T > 0``.
    Returns:
        ``[B]``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    zs = logits(student, x, per_network)
    if isinstance(teacher, WeightSpace):
        if teacher.batch_size not in (1, student.batch_size):
            raise SpecError(
                f"teacher has {teacher.batch_size} networks, student {student.batch_size}: pass one teacher "
                "per student network (or a single teacher)"
            )
        with torch.no_grad():
            zt = logits(teacher, x, per_network)
    else:
        zt = teacher.detach()
        if zt.dim() == 2:
            zt = zt.unsqueeze(0)
    zt = zt.to(device=zs.device, dtype=zs.dtype)
    if zt.shape[1:] != zs.shape[1:] or zt.shape[0] not in (1, zs.shape[0]):
        raise SpecError(
            f"teacher outputs {tuple(zt.shape)} do not match student outputs {tuple(zs.shape)}: both need "
            "the same number of samples and classes"
        )
    T = float(temperature)
    log_ps = F.log_softmax(zs / T, dim=-1)
    log_pt = F.log_softmax(zt / T, dim=-1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1)  # [B, N]
    return kl.mean(1) * T * T


# ---------------------------------------------------------------------- INRs
def coordinate_grid(*sizes: int, low: float = -1.0, high: float = 1.0, device=None,
                    dtype=torch.float32) -> torch.Tensor:
    """``[prod(sizes), len(sizes)]``: a regular grid in ``[low, high]^d`` in row-major order,
    e.g. ``coordinate_grid(28, 28)`` for a 28x28 image INR (rows first: coordinates ``(y, x)``)."""
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    axes = [torch.linspace(low, high, s, device=device, dtype=dtype) for s in sizes]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


def render_inr(ws: WeightSpace, coords: torch.Tensor, per_network: bool = False) -> torch.Tensor:
    """Render ``B`` implicit neural representations at ``coords``.

    Args:
        ws: ``B`` MLPs (e.g. SIRENs) mapping ``d`` coordinates to ``out`` channels.
        coords: ``[N, d]`` (or ``[B, N, d]`` with ``per_network``), see :func:`coordinate_grid`.
    Returns:
        ``[B, N, out]``.
    """
    if ws.spec.family != "mlp":
        raise SpecError(f"an INR is an MLP on coordinates, got a {ws.spec.family} ({ws.spec.to_text()!r})")
    d = ws.spec.layers[0].in_dim
    if coords.dim() != (3 if per_network else 2) or coords.shape[-1] != d:
        raise SpecError(
            f"coords have shape {tuple(coords.shape)}, expected [N, {d}]"
            + (f" per network [B={ws.batch_size}, N, {d}]" if per_network else "")
            + " (one row per point, one column per input coordinate of the INR)"
        )
    return batched_forward(ws, coords, per_network)


def _render_or_target(other: WeightSpace | torch.Tensor, coords: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    if isinstance(other, WeightSpace):
        out = render_inr(other, coords)
    else:
        out = other if other.dim() == 3 else other.unsqueeze(0)
    out = out.to(device=ref.device, dtype=ref.dtype)
    if out.shape[1:] != ref.shape[1:] or out.shape[0] not in (1, ref.shape[0]):
        raise SpecError(
            f"target signal {tuple(out.shape)} does not match the rendered signal {tuple(ref.shape)}: "
            "pass B (or 1) networks of the same output size, or a tensor [B, N, out] / [N, out]"
        )
    return out


def inr_mse(ws_a: WeightSpace, target: WeightSpace | torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """``[B]``: ``(1 / (N out)) sum_{n,c} (f_a(x_n)_c - f_b(x_n)_c)^2`` in function space.

    ``target`` is a second batch of INRs (``B`` or 1 networks) or a signal ``[B, N, out]``/``[N, out]``.
    Gradients flow into ``ws_a`` (and into ``target`` if it requires them).
    """
    a = render_inr(ws_a, coords)
    b = _render_or_target(target, coords, a)
    return (a - b).pow(2).flatten(1).mean(1)


def psnr(ws_a: WeightSpace, target: WeightSpace | torch.Tensor, coords: torch.Tensor,
         data_range: float = 1.0, eps: float = 1e-12) -> torch.Tensor:
    """``[B]``: peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` (MSE from
    :func:`inr_mse`, floored at ``eps``). ``data_range`` is the signal's peak-to-peak range (1 for
    images in ``[0, 1]``, 2 for ``[-1, 1]``)."""
    with torch.no_grad():
        mse = inr_mse(ws_a, target, coords)
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(eps))
