"""Model merging, part 2: weight matching (Git Re-Basin)
extended to sign flips and positive scalings, on :class:`~scalegmn_lite.weightspace.weights.WeightSpace`.

Interpolation path between two networks with the same structure::

    theta_alpha = (1 - alpha) theta_0 + alpha theta_1,        alpha in [0, 1]

Loss barrier (issue 6) of a curve ``L(alpha)`` sampled at ``alpha_0 = 0 < ... < alpha_{A-1} = 1``::

    barrier = max_a  L(theta_{alpha_a}) - ((1 - alpha_a) L(theta_0) + alpha_a L(theta_1))      (>= 0)

Weight matching aligns ``theta_1`` to ``theta_0`` with an element ``g`` of the gauge group
(:mod:`scalegmn_lite.weightspace.gauge`), so ``g.apply(theta_1)`` computes the same function as ``theta_1``
but lies close to ``theta_0`` in weight space. Per hidden layer, by ``spec.symmetries``:

- ``PERMUTATION``: a permutation maximising ``sum_i <f0_i, f1_perm[i]>``, where ``f_i`` stacks neuron
  ``i``'s incoming weights (all kernel positions), bias and outgoing weights;
- ``SIGN``: a signed permutation maximising ``sum_i |<f0_i, f1_perm[i]>|``, with the sign of the
  correlation as the flip;
- ``POSITIVE_SCALE``: both networks are first brought to a canonical scale (:func:`canonicalize_scale`:
  each neuron's incoming weights and bias get unit norm, the factor moves into the outgoing weights),
  then permuted as above.

Each assignment problem is solved with :func:`scipy.optimize.linear_sum_assignment`; layers are
updated by coordinate descent until a sweep changes nothing.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ...weightspace.gauge import GaugeElement
from ...weightspace.spec import SpecError, Symmetry
from ...weightspace.weights import WeightSpace

__all__ = ["GROUPS", "canonicalize_scale", "weight_matching", "align"]


# ---------------------------------------------------------------------- scale canonicalization
def canonicalize_scale(ws: WeightSpace, eps: float = 1e-12) -> GaugeElement:
    """The positive scaling that normalises every ``POSITIVE_SCALE`` hidden neuron (channel):

        ``q_l[i] = 1 / ||(W'_l[i, :, ...], b_l[i])||_2``   with ``W'_l`` the incoming weights after
        the previous layers' factors were pushed in (``W'_l[i, j] = W_l[i, j] / q_{l-1}[j]``),

    so that ``g.apply(ws)`` has unit-norm incoming rows (weights over all inputs and kernel positions,
    plus bias) on those layers and the factor ``1/q`` moved into the outgoing weights: a genuine gauge
    transform (ReLU/LeakyReLU/identity commute with ``q > 0``), batched over the ``B`` networks.
    Neurons whose row norm is below ``eps`` (dead neurons) keep ``q = 1``. Other layers get ``q = 1``.
    The result is scale invariant and permutation equivariant: ``canon(g ws) = P canon(ws)``.

    Returns:
        a :class:`GaugeElement` with identity permutations (``B`` elements).
    """
    spec = ws.spec
    B = ws.batch_size
    scales = []
    prev = None  # scale of the previous hidden layer, [B, n]
    for l, sym in enumerate(spec.symmetries):  # hidden layer l+1 = output of layer l
        w, b = ws.weights[l], ws.biases[l]
        if prev is not None:
            w = w / prev.view(B, 1, -1, *([1] * (w.dim() - 3)))
        n = spec.hidden_widths[l]
        if sym is Symmetry.POSITIVE_SCALE:
            norm = torch.sqrt(w.reshape(B, n, -1).pow(2).sum(-1) + b.pow(2))
            q = torch.where(norm > eps, 1.0 / norm.clamp_min(eps), torch.ones_like(norm))
        else:
            q = torch.ones(B, n, device=ws.device, dtype=ws.dtype)
        scales.append(q)
        prev = q
    perms = [torch.arange(n, device=ws.device).expand(B, n).clone() for n in spec.hidden_widths]
    return GaugeElement(spec, perms, scales)


# ---------------------------------------------------------------------- weight matching
def _neuron_features(ws: WeightSpace, l: int, incoming_only: bool) -> np.ndarray:
    """``[n_l, F]`` features of hidden layer ``l`` (1-based) of network 0: incoming weights (all inputs
    and kernel positions), bias, and (unless ``incoming_only``) outgoing weights."""
    w_in = ws.weights[l - 1][0]  # [n_l, n_{l-1}, *k]
    n = w_in.shape[0]
    parts = [w_in.reshape(n, -1), ws.biases[l - 1][0].reshape(n, 1)]
    if not incoming_only:
        w_out = ws.weights[l][0]  # [n_{l+1}, n_l, *k]
        parts.append(w_out.transpose(0, 1).reshape(n, -1))
    return torch.cat(parts, 1).detach().to(torch.float64).cpu().numpy()


def _layer_element(spec, l: int, perm: np.ndarray, sign: np.ndarray, device, dtype) -> GaugeElement:
    g = GaugeElement.identity(spec, 1, device=device, dtype=dtype)
    perms, scales = list(g.perms), list(g.scales)
    perms[l - 1] = torch.as_tensor(perm, device=device).view(1, -1)
    scales[l - 1] = torch.as_tensor(sign, device=device, dtype=dtype).view(1, -1)
    return GaugeElement(spec, perms, scales)


def _match_pair(ws0: WeightSpace, ws1: WeightSpace, max_sweeps: int, generator: np.random.Generator,
                group: str = "PD"):
    """Coordinate descent for one pair (``B = 1``) in the canonical scale; returns (element, sweeps).
    ``group``: which part of the gauge group is searched (see :func:`weight_matching`)."""
    permute, diagonal = "P" in group, "D" in group
    spec = ws0.spec
    L = spec.num_layers
    g = GaugeElement.identity(spec, 1, device=ws0.device, dtype=ws0.dtype)
    hidden = list(range(1, L))

    def solve(l: int, incoming_only: bool) -> bool:
        nonlocal g
        cur = g.apply(ws1, strict=False)
        f0 = _neuron_features(ws0, l, incoming_only)
        f1 = _neuron_features(cur, l, incoming_only)
        corr = f0 @ f1.T  # [n, n]: <f0_i, f1_k>
        signed = diagonal and spec.symmetries[l - 1] is Symmetry.SIGN
        if permute:
            rows, cols = linear_sum_assignment(np.abs(corr) if signed else corr, maximize=True)
            perm = cols[np.argsort(rows)]
        else:  # D only: neurons stay where they are, only their signs may flip
            perm = np.arange(corr.shape[0])
        sign = np.where(corr[np.arange(len(perm)), perm] < 0, -1.0, 1.0) if signed else np.ones(len(perm))
        if np.array_equal(perm, np.arange(len(perm))) and np.all(sign > 0):
            return False
        g = _layer_element(spec, l, perm, sign, ws0.device, ws0.dtype).compose(g)
        return True

    # initialisation: one forward sweep on incoming weights only (exact when theta_1 is a gauge
    # transform of theta_0, since layer l-1 has just been aligned)
    for l in hidden:
        solve(l, incoming_only=True)
    sweeps = 0
    for sweeps in range(1, max_sweeps + 1):
        changed = False
        for l in generator.permutation(hidden):
            changed |= solve(int(l), incoming_only=False)
        if not changed:
            break
    return g, sweeps


GROUPS = ("P", "D", "PD")

#: candidate log-scales of the positive-scale refinement (:func:`_refine_scales`): factors 1/20 .. 20
_LOG_SCALES = torch.linspace(-3.0, 3.0, 1201, dtype=torch.float64)


def _refine_scales(ws0: WeightSpace, ws1: WeightSpace, sweeps: int = 5) -> GaugeElement:
    """The positive scaling ``d`` (identity permutations, 1 on non-``POSITIVE_SCALE`` layers) that
    brings ``d.apply(ws1)`` closest to ``ws0`` in weight space, by coordinate descent over layers.

    For neuron ``i`` of a positive-scale layer with incoming row (weights and bias) ``a`` and outgoing
    column ``c`` (``a0, c0`` in ``ws0``), the factor ``s > 0`` minimises
    ``||a0 - s a1||^2 + ||c0 - c1 / s||^2``, solved on a grid of ``log s`` (batched over networks and
    neurons). Permutations leave norms unchanged, so Git Re-Basin's "maximise the correlation" and
    "minimise the distance" agree; scalings do not, so the distance is minimised directly.
    """
    spec = ws0.spec
    B = ws0.batch_size
    total = GaugeElement.identity(spec, B, device=ws0.device, dtype=ws0.dtype)
    layers = [l for l, sym in enumerate(spec.symmetries) if sym is Symmetry.POSITIVE_SCALE]
    if not layers:
        return total
    t = _LOG_SCALES.to(ws0.device).view(1, 1, -1)
    cur = ws1
    for _ in range(sweeps):
        for l in layers:
            n = spec.hidden_widths[l]
            a0 = torch.cat([ws0.weights[l].reshape(B, n, -1), ws0.biases[l].reshape(B, n, 1)], -1)
            a1 = torch.cat([cur.weights[l].reshape(B, n, -1), cur.biases[l].reshape(B, n, 1)], -1)
            c0 = ws0.weights[l + 1].transpose(1, 2).reshape(B, n, -1)
            c1 = cur.weights[l + 1].transpose(1, 2).reshape(B, n, -1)
            A, C = a1.pow(2).sum(-1, keepdim=True), (a0 * a1).sum(-1, keepdim=True)
            Bo, D = c1.pow(2).sum(-1, keepdim=True), (c0 * c1).sum(-1, keepdim=True)
            f = (2 * t).exp() * A - 2 * t.exp() * C + (-2 * t).exp() * Bo - 2 * (-t).exp() * D
            s = t.view(-1)[f.argmin(-1)].exp()  # [B, n]
            scales = [torch.ones(B, m, device=ws0.device, dtype=ws0.dtype) for m in spec.hidden_widths]
            scales[l] = s.to(ws0.dtype)
            d = GaugeElement(spec, total.perms, scales)
            cur = d.apply(cur)
            total = d.compose(total)
    return total


def weight_matching(
    ws0: WeightSpace,
    ws1: WeightSpace,
    max_sweeps: int = 100,
    seed: int = 0,
    return_sweeps: bool = False,
    group: str = "PD",
) -> GaugeElement | tuple[GaugeElement, list[int]]:
    """Align ``ws1`` to ``ws0`` by weight matching (Git Re-Basin, Ainsworth et al. 2023), extended to
    signed permutations (``SIGN`` layers) and positive scalings (``POSITIVE_SCALE`` layers).

    ``group`` says which part of the gauge group is searched, as in the autoencoder paper's P, D and
    PD variants:

    - ``"PD"`` (default): permutations and the diagonal part (sign flips on ``SIGN`` layers,
      positive scalings on ``POSITIVE_SCALE`` layers);
    - ``"P"``: permutations only, plain Git Re-Basin (no sign flips, no rescaling);
    - ``"D"``: the diagonal part only (neurons keep their places).

    Per pair ``b`` it finds ``g_b`` in the gauge group with ``g_b.apply(ws1[b]) ~ ws0[b]``:

    1. canonical scale: ``c0 = k0 ws0``, ``c1 = k1 ws1`` with ``k = canonicalize_scale(.)``;
    2. one forward sweep matching each hidden layer by its incoming weights and bias, then
       coordinate-descent sweeps over the hidden layers (random order, seeded) matching incoming
       weights, bias and outgoing weights (conv kernels summed over kernel positions) with
       ``linear_sum_assignment``, until a sweep changes nothing (or ``max_sweeps``);
    3. ``g = k0^{-1} o p o k1``: the alignment expressed for the original scales;
    4. (``D`` in ``group``) positive-scale layers: per-neuron factors that minimise the weight-space
       distance to ``ws0`` (:func:`_refine_scales`); sign layers already have theirs.

    ``g`` is a symmetry (``g.validate()`` passes), so ``g.apply(ws1)`` computes the same function as
    ``ws1``. If ``ws1 = h.apply(ws0)`` for a gauge element ``h``, then ``g.apply(ws1) == ws0`` up to
    float error (``g = h^{-1}``), barring ties between neurons.

    The assignment problems are solved pair by pair on the CPU (a Python loop over the ``B`` pairs;
    each solve is small), in float64.

    Args:
        ws0, ws1: ``B`` networks each, same structure.
        max_sweeps: upper bound on coordinate-descent sweeps.
        seed: seeds the order in which layers are visited.
        return_sweeps: also return the number of sweeps used per pair.
    Returns:
        a :class:`GaugeElement` of batch size ``B`` (and the sweeps per pair).
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS} (P: permutations, D: sign flips / scalings, PD: both), "
                         f"got {group!r}")
    ws0._check_compatible(ws1)
    if ws0.batch_size != ws1.batch_size:
        raise SpecError(f"weight_matching needs pairs: {ws0.batch_size} vs {ws1.batch_size} networks")
    spec = ws0.spec
    if spec.num_layers < 2:
        g = GaugeElement.identity(spec, ws0.batch_size, device=ws0.device, dtype=ws0.dtype)
        return (g, [0] * ws0.batch_size) if return_sweeps else g
    dev, dtype = ws0.device, ws0.dtype
    w0 = ws0.detach().to(dtype=torch.float64)
    w1 = ws1.detach().to(dtype=torch.float64)
    if "D" in group:
        k0, k1 = canonicalize_scale(w0), canonicalize_scale(w1)
    else:  # plain permutation matching compares the networks in the scales they come in
        k0 = k1 = GaugeElement.identity(spec, ws0.batch_size, device=w0.device, dtype=torch.float64)
    c0, c1 = k0.apply(w0), k1.apply(w1)
    rng = np.random.default_rng(seed)
    perms, scales, sweeps = [[] for _ in spec.hidden_widths], [[] for _ in spec.hidden_widths], []
    for b in range(ws0.batch_size):
        p, n = _match_pair(c0[b], c1[b], max_sweeps, rng, group)
        for i, (pp, ss) in enumerate(zip(p.perms, p.scales)):
            perms[i].append(pp)
            scales[i].append(ss)
        sweeps.append(n)
    p = GaugeElement(spec, [torch.cat(t) for t in perms], [torch.cat(t) for t in scales])
    g = k0.inverse().compose(p.compose(k1))
    if "D" in group:  # positive-scale layers: the scales closest to ws0, not merely ws0's row norms
        g = _refine_scales(w0, g.apply(w1)).compose(g)
    g = GaugeElement(spec, [t.to(dev) for t in g.perms], [t.to(device=dev, dtype=dtype) for t in g.scales])
    return (g, sweeps) if return_sweeps else g


def align(ws0: WeightSpace, ws1: WeightSpace, **kwargs) -> WeightSpace:
    """``weight_matching(ws0, ws1).apply(ws1)``: ``ws1`` moved to ``ws0``'s basin (same function)."""
    return weight_matching(ws0, ws1, **kwargs).apply(ws1)
