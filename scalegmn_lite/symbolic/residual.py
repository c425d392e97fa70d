r"""Beyond MLP and CNN: the gauge of residual ReLU networks, BatchNorm and LayerNorm (notebook 09).

Every claim below is checked twice: symbolically (sympy, no ``simplify``: positive factors are pulled out of
:class:`~scalegmn_lite.symbolic.activations.ReLU`, sums are put in ``expand`` normal form) and numerically in
float64 torch (function preserved to ``<= 1e-10``; non-symmetries change it by a clearly nonzero amount).

**1. Residual ReLU MLP.** ``y_0 = E x + e``; block ``i = 1..n``: ``y_i = y_{i-1} + W2_i relu(W1_i y_{i-1} + b1_i)
+ b2_i`` (``W1_i``: ``h_i x d_s``, ``W2_i``: ``d_s x h_i``; optionally ``y_i = relu(...)`` after the addition);
output ``H y_n + c``. As in :mod:`.conv`, give every free neuron a log-scale ``u`` (stream coordinate ``k`` at
depth ``t = 0..n``: ``u_{t,k}``; inner unit ``j`` of block ``i``: ``v_{i,j}``; input and output fixed). A weight
edge ``i <- j`` transforms as ``e -> exp(u_i - u_j) e``; each weight and bias is its own parameter, so these
edges impose nothing. The identity shortcut is an edge of *fixed* weight 1, so it must keep factor 1:

    ``u_{t+1,k} - u_{t,k} = 0``   for ``t = 0..n-1``, ``k = 1..d_s``   (``n d_s`` independent rows ``A u = 0``).

Hence ``dim G_scale = nullity(A)``, and (theorem verified by :func:`residual_scaling_dims`, exactly and
numerically, against the closed forms)

    ``dim G_scale(residual) = sum_i h_i + d_s``,   ``dim G_scale(plain twin) = sum_i h_i + (n + 1) d_s``,

where the plain twin drops the shortcuts (``y_i = W2_i relu(W1_i y_{i-1} + b1_i) + b2_i``), so its ``n + 1``
stream copies are independent layers. The difference is ``n d_s``: the residual gauge is strictly smaller
whenever ``n >= 1`` and ``d_s >= 1`` (equal for ``n = 0``). A post-addition ReLU adds no constraint (it is
positively homogeneous) and the same count holds. Permutations likewise: one stream permutation ``P_s`` shared
by every depth, one permutation per block's inner layer. The group element (:class:`ResidualGauge`) acts by
``E -> M_s E``, ``W1_i -> M_i W1_i M_s^{-1}``, ``W2_i -> M_s W2_i M_i^{-1}``, ``b2_i -> M_s b2_i``,
``H -> H M_s^{-1}`` with ``M = Q P`` (:func:`apply_residual_gauge`; convention of :mod:`.mlp`,
``h'[i] = q[i] h[p[i]]``). Unshared stream scalings (different per depth) and sign flips of a ReLU unit are not
symmetries. *Caveat:* this counts diagonal (neuron-wise) scalings, the part a ScaleGMN can represent. Without
the post-addition ReLU the stream is linear and any ``A in GL(d_s)`` shared by all depths preserves the function
(likewise ``GL(d_s)`` per depth in the plain twin); with the post-addition ReLU a generic ``A`` fails and the
positive monomials ``P D_+`` survive (both checked in the tests; maximality is not claimed).

**2. BatchNorm1d (eval) after a linear layer, then ReLU.** ``bn(z) = gamma (z - mu) / sqrt(var + eps) + beta``
per channel. With ``eps = 0``, the *pre-norm* rescaling ``W, b -> D W, D b``, ``mu -> D mu``, ``var -> D^2 var``
(any ``D = diag(d) > 0``) leaves ``bn`` unchanged: a free positive scale per channel that nothing downstream
compensates (``width`` extra dimensions per BN layer). The *post-norm* neuron keeps its ordinary ReLU gauge:
``gamma, beta -> q gamma, q beta`` and the next layer's columns divided by ``q``. A neuron sign flip
(``q = -1``) is not a symmetry (the ReLU breaks). Note, against a common phrasing: flipping the sign of the
*BN input* (``W, b, mu -> -W, -b, -mu``) together with ``gamma -> -gamma`` is an **exact** symmetry, for every
``eps``: the BN output itself is unchanged, so the following ReLU never sees the flip. The pre-norm group per
channel is therefore ``R^* = R_+ x {+-1}`` (with ``gamma -> sign(d) gamma``): the sign part is discrete and does
not change the dimension. The input flip *alone* (``gamma`` kept) is not a symmetry.

**3. LayerNorm** ``ln(z) = gamma * (z - mean(z)) / sqrt(var(z) + eps) + beta`` over the ``n`` features. Exact
symmetries (``eps = 0``): one common positive scalar ``W, b -> c W, c b``; a shift along ``1``
(``W -> W + 1 v^T``, ``b -> b + c0 1``, exact for every ``eps``); a permutation of the features if ``gamma`` and
``beta`` are permuted with them. Not a per-neuron scaling: the Lie algebra of pre-norm scalings is
``{u : P (u * z) || P z for all z}`` (``P = I - 11^T / n``), i.e. the polynomial identity
``|Pz|^2 P(u * z) - Pz <Pz, u * z> = 0``, whose coefficients in ``z`` are linear equations in ``u`` with
nullity 1 (``u`` a multiple of ``1``), derived by :func:`layernorm_scaling_derivation` for ``n >= 3``. For ``n = 2``
``ln`` is a step function of ``sign(z_1 - z_2)`` (the identity is vacuous); ``z = (d_1 + d_2, 2 d_1)`` has
``(z_1 - z_2)(d_1 z_1 - d_2 z_2) = -d_1 (d_1 - d_2)^2 < 0``, so any ``d_1 != d_2`` flips the output: dim 1 again.

**epsilon (the course's convention).** ``x / sqrt(var + eps)`` is not scale-free for ``eps > 0``: under a pre-norm
scale ``d`` the normalized value is multiplied by ``r = d sqrt(var + eps) / sqrt(d^2 var + eps)``, and
``|r - 1| <= |d^2 - 1| eps / ((d^2 var + eps)(1 + min(1, d)))`` (about ``|d^2 - 1| eps / (2 d^2 var)``), which
:func:`eps_invariance_error` measures and bounds. Rescaling ``eps -> d^2 eps`` makes it exact, but we do **not**
adopt that: ``eps`` is a hyperparameter, not a weight (a transformed network would leave the weight space), and
torch's BatchNorm has one ``eps`` per layer, so a per-channel ``d`` would need a per-channel ``eps``. **Exact
claims use ``eps = 0``**; for ``eps > 0`` the course reports the measured, bounded deviation (first order in
``eps / var``). The ``eps -> d^2 eps`` variant is still verified here (per-channel ``eps``
tensors in :func:`batchnorm`) so a learner can see why it works.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import sympy as sp
import torch

from ..weightspace.block_gauge import BlockGauge
from ..weightspace.block_parts import ResidualBlock, batchnorm, layernorm
from ..weightspace.block_weights import BlockWeights
from ..weightspace.blocks import BlockNetworkSpec
from ..weightspace.layer import LayerSpec
from .activations import ReLU
from .mlp import GaugeCheck, gauge_matrices, numeric_difference

__all__ = [
    "ResidualSizes",
    "init_residual_params",
    "check_residual_params",
    "residual_forward",
    "ResidualGauge",
    "sample_residual_gauge",
    "log_scales_to_gauge",
    "apply_residual_gauge",
    "flip_inner_sign",
    "residual_invariance_error",
    "residual_scaling_constraints",
    "nullity",
    "residual_scaling_basis",
    "residual_dim_formula",
    "plain_dim_formula",
    "ResidualScalingDims",
    "residual_scaling_dims",
    "SymbolicResidual",
    "symbolic_residual",
    "check_residual_symbolic",
    "NORM_KINDS",
    "NormNet",
    "random_norm_net",
    "batchnorm",
    "layernorm",
    "norm_forward",
    "prenorm_scaling",
    "prenorm_sign_flip",
    "neuron_scaling",
    "neuron_sign_flip",
    "permute_features",
    "layernorm_shift",
    "BN_CASES",
    "LN_CASES",
    "check_norm_symbolic",
    "NormScalingDerivation",
    "layernorm_scaling_derivation",
    "layernorm_counterexample",
    "EpsError",
    "eps_invariance_error",
    "gauge_dims_summary",
]

Tensor = torch.Tensor


# ---------------------------------------------------------------- helpers
def _perm(perm, n: int, what: str, device=None) -> Tensor:
    p = torch.as_tensor(perm, dtype=torch.long, device=device).reshape(-1)
    if p.numel() != n or not torch.equal(torch.sort(p).values.cpu(), torch.arange(n)):
        raise ValueError(f"{what} must be a permutation of 0..{n - 1}, got {p.tolist()}; "
                         f"use torch.randperm({n}) or torch.arange({n}) for no permutation")
    return p


def _positive(scale, n: int, what: str, like: Tensor) -> Tensor:
    s = torch.as_tensor(scale, dtype=like.dtype, device=like.device)
    if s.ndim == 0:
        s = s.expand(n)
    if s.shape != (n,):
        raise ValueError(f"{what} must be a scalar or have shape ({n},), got {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()) or not bool((s > 0).all()):
        raise ValueError(f"{what} must be finite and > 0, got {s.tolist()}; the ReLU/normalization gauge allows only "
                         "positive scalings (sign flips have their own functions: flip_inner_sign, neuron_sign_flip, "
                         "prenorm_sign_flip)")
    return s


def _rows(x: Tensor, d: int, what: str = "x") -> Tensor:
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"{what} must have shape [batch, {d}] or [{d}], got {tuple(x.shape)}")
    return x


def _relu(z: sp.Expr, expanded: bool = False) -> sp.Expr:
    """``ReLU(z)`` for ``z`` in ``expand`` normal form, with the positive symbol powers common to all its terms pulled
    out (``ReLU(c r) = c ReLU(r)``, ``c > 0``: the rule :class:`ReLU` applies itself, here without its recursive
    ``factor_terms`` pass, which descends into ``1 / sqrt(var)`` and costs seconds)."""
    z = z if expanded else sp.expand(z)
    if z.is_number:
        return ReLU(z)
    terms = [dict(a.as_base_exp() for a in sp.Mul.make_args(t)) for t in sp.Add.make_args(z)]
    c = sp.S.One
    for base in terms[0]:
        if base.is_Symbol and base.is_positive and all(base in t for t in terms):
            exps = [t[base] for t in terms]
            if all(e.is_Rational for e in exps):
                c *= base ** min(exps)
    rest = sp.Add(*[t / c for t in sp.Add.make_args(z)]) if c != 1 else z
    return c * ReLU(rest, evaluate=False)


def _reduce(diff: sp.Matrix, seed: int = 0) -> GaugeCheck:
    """``f' - f`` as in :func:`.mlp.check_gauge_invariance`: zero as built, else random points, else ``expand``."""
    if all(e == 0 for e in diff):
        return GaugeCheck(diff, True, 0.0)
    num = numeric_difference(diff, sorted(diff.free_symbols, key=str), seed=seed)
    if num < 1e-12:
        diff = diff.applyfunc(sp.expand)
        return GaugeCheck(diff, all(e == 0 for e in diff), num)
    return GaugeCheck(diff, False, num)


# ---------------------------------------------------------------- 1. residual ReLU MLP
@dataclass(frozen=True)
class ResidualSizes:
    """Sizes of ``x -> E -> n residual blocks -> H``: input ``d_in``, stream width ``d_s``, inner widths
    ``hidden = (h_1, ..., h_n)``, output ``d_out``; ``post_relu``: ``y_i = relu(y_{i-1} + block_i(y_{i-1}))``.

    Parameters are two lists in the order ``[E, W1_1, W2_1, ..., W1_n, W2_n, H]`` (weights ``[out, in]``,
    biases ``[out]``)."""

    d_in: int
    d_s: int
    hidden: tuple[int, ...]
    d_out: int
    post_relu: bool = False

    def __post_init__(self):
        hidden = tuple(int(h) for h in self.hidden)
        object.__setattr__(self, "hidden", hidden)
        for name in ("d_in", "d_s", "d_out"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(h < 1 for h in hidden):
            raise ValueError(f"every inner width must be >= 1, got hidden={hidden}; drop a block instead of width 0")

    @property
    def n_blocks(self) -> int:
        return len(self.hidden)

    def layer_shapes(self) -> list[tuple[int, int]]:
        shapes = [(self.d_s, self.d_in)]
        for h in self.hidden:
            shapes += [(h, self.d_s), (self.d_s, h)]
        return shapes + [(self.d_out, self.d_s)]

    def layer_names(self) -> list[str]:
        names = ["E"]
        for i in range(1, self.n_blocks + 1):
            names += [f"W1_{i}", f"W2_{i}"]
        return names + ["H"]

    def unit_labels(self) -> list[str]:
        """Free neurons, in the order of :func:`residual_scaling_constraints`' unknowns: stream ``s{t}_{k}``
        (depth ``t = 0..n``), then inner ``h{i}_{j}``."""
        stream = [f"s{t}_{k}" for t in range(self.n_blocks + 1) for k in range(self.d_s)]
        return stream + [f"h{i}_{j}" for i, h in enumerate(self.hidden, start=1) for j in range(h)]

    def block_spec(self) -> BlockNetworkSpec:
        """The same network as a :class:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec` (text
        ``mlp d_in-d_s:identity-[h_1-d_s]:identity-...-d_out relu``, ``:relu`` after the additions if ``post_relu``)."""
        post = "relu" if self.post_relu else None
        blocks = [ResidualBlock((LayerSpec("linear", self.d_s, h, activation="relu"), LayerSpec("linear", h, self.d_s)),
                                activation=post) for h in self.hidden]
        return BlockNetworkSpec((LayerSpec("linear", self.d_in, self.d_s), *blocks,
                                 LayerSpec("linear", self.d_s, self.d_out)))

    def to_text(self) -> str:
        post = " post-relu" if self.post_relu else ""
        return f"residual {self.d_in}->{self.d_s} blocks {list(self.hidden)} ->{self.d_out}{post}"


def init_residual_params(sizes: ResidualSizes, generator: torch.Generator | None = None, *,
                         dtype: torch.dtype = torch.float64, device=None) -> tuple[list[Tensor], list[Tensor]]:
    """Random weights (``N(0, 1 / fan_in)``, ``W2`` halved to keep the stream tame) and biases ``N(0, 0.1^2)``."""
    ws, bs = [], []
    for name, (o, i) in zip(sizes.layer_names(), sizes.layer_shapes()):
        w = torch.randn(o, i, generator=generator, dtype=dtype) / i ** 0.5
        ws.append((0.5 * w if name.startswith("W2") else w).to(device))
        bs.append((0.1 * torch.randn(o, generator=generator, dtype=dtype)).to(device))
    return ws, bs


def check_residual_params(sizes: ResidualSizes, weights: Sequence[Tensor], biases: Sequence[Tensor]) -> None:
    """Raise ``ValueError`` unless ``weights``/``biases`` match ``sizes`` (order ``[E, W1_1, W2_1, ..., H]``)."""
    shapes, names = sizes.layer_shapes(), sizes.layer_names()
    if len(weights) != len(shapes) or len(biases) != len(shapes):
        raise ValueError(f"{sizes.to_text()} needs {len(shapes)} weights and biases in the order {names}, got "
                         f"{len(weights)} weights and {len(biases)} biases; build them with init_residual_params")
    for k, (name, shape, w, b) in enumerate(zip(names, shapes, weights, biases)):
        if tuple(w.shape) != shape or tuple(b.shape) != shape[:1]:
            raise ValueError(f"weights[{k}] ({name}) has shape {tuple(w.shape)} and its bias {tuple(b.shape)}, "
                             f"expected {shape} and {shape[:1]} for {sizes.to_text()} (layer order {names})")


def residual_forward(sizes: ResidualSizes, weights: Sequence[Tensor], biases: Sequence[Tensor], x: Tensor,
                     shortcut: bool = True) -> Tensor:
    """``f(x)``, ``x``: ``[batch, d_in]`` -> ``[batch, d_out]``. ``shortcut=False``: the plain twin."""
    check_residual_params(sizes, weights, biases)
    y = _rows(x, sizes.d_in) @ weights[0].T + biases[0]
    for i in range(sizes.n_blocks):
        w1, b1, w2, b2 = weights[1 + 2 * i], biases[1 + 2 * i], weights[2 + 2 * i], biases[2 + 2 * i]
        out = torch.relu(y @ w1.T + b1) @ w2.T + b2
        y = y + out if shortcut else out
        if sizes.post_relu:
            y = torch.relu(y)
    return y @ weights[-1].T + biases[-1]


@dataclass(frozen=True)
class ResidualGauge:
    """A permutation and positive scaling per stream depth ``t = 0..n`` and per block's inner layer.

    A symmetry of the residual network iff every stream depth carries the same ``(perm, scale)``
    (:attr:`shared`); any such element (shared or not) is a symmetry of the plain twin."""

    stream_perms: tuple[Tensor, ...]
    stream_scales: tuple[Tensor, ...]
    inner_perms: tuple[Tensor, ...]
    inner_scales: tuple[Tensor, ...]

    @property
    def shared(self) -> bool:
        p0, s0 = self.stream_perms[0], self.stream_scales[0]
        return all(torch.equal(p, p0) and torch.equal(s, s0) for p, s in zip(self.stream_perms, self.stream_scales))


def sample_residual_gauge(sizes: ResidualSizes, generator: torch.Generator | None = None, *, shared: bool = True,
                          permute: bool = True, log_std: float = 0.5, dtype: torch.dtype = torch.float64,
                          device=None) -> ResidualGauge:
    """Random element: scales ``exp(N(0, log_std^2))``; ``shared=False`` draws the stream's scaling (and
    permutation) afresh at every depth (a non-symmetry of the residual network when ``n >= 1``)."""
    n, d = sizes.n_blocks, sizes.d_s

    def perm(m):
        return torch.randperm(m, generator=generator) if permute else torch.arange(m)

    def scale(m):
        return torch.exp(log_std * torch.randn(m, generator=generator, dtype=dtype))

    if shared:
        p, s = perm(d), scale(d)
        sp_, ss = [p] * (n + 1), [s] * (n + 1)
    else:
        sp_, ss = [perm(d) for _ in range(n + 1)], [scale(d) for _ in range(n + 1)]
    ip, is_ = [perm(h) for h in sizes.hidden], [scale(h) for h in sizes.hidden]
    to = lambda ts: tuple(t.to(device) for t in ts)
    return ResidualGauge(to(sp_), to(ss), to(ip), to(is_))


def log_scales_to_gauge(sizes: ResidualSizes, u: Sequence[float] | Tensor, *, dtype: torch.dtype = torch.float64,
                        device=None) -> ResidualGauge:
    """The pure scaling ``exp(u)`` for log-scales ``u`` ordered as :meth:`ResidualSizes.unit_labels`."""
    u = torch.as_tensor(u, dtype=dtype, device=device).reshape(-1)
    n_units = (sizes.n_blocks + 1) * sizes.d_s + sum(sizes.hidden)
    if u.numel() != n_units:
        raise ValueError(f"u must have one log-scale per free neuron ({n_units} for {sizes.to_text()}: "
                         f"(n + 1) d_s stream + sum(hidden) inner), got {u.numel()}")
    q = torch.exp(u)
    ds = sizes.d_s
    stream = tuple(q[t * ds:(t + 1) * ds] for t in range(sizes.n_blocks + 1))
    inner, off = [], (sizes.n_blocks + 1) * ds
    for h in sizes.hidden:
        inner.append(q[off:off + h])
        off += h
    ident = lambda m: torch.arange(m, device=device)
    return ResidualGauge(tuple(ident(ds) for _ in stream), stream, tuple(ident(h) for h in sizes.hidden),
                         tuple(inner))


def apply_residual_gauge(sizes: ResidualSizes, weights: Sequence[Tensor], biases: Sequence[Tensor],
                         gauge: ResidualGauge) -> tuple[list[Tensor], list[Tensor]]:
    """``E -> M_0 E``, ``W1_i -> M_i W1_i M_{i-1}^{-1}``, ``W2_i -> M_{s,i} W2_i M_i^{-1}``, ``b2_i -> M_{s,i} b2_i``,
    ``H -> H M_{s,n}^{-1}`` (``M = Q P``, ``(M y)[k] = q[k] y[p[k]]``; stream depth ``t`` uses
    ``gauge.stream_*[t]``). The shortcut keeps weight 1, so only a shared stream element is a symmetry. Computed by
    :class:`~scalegmn_lite.weightspace.block_gauge.BlockGauge` on :meth:`ResidualSizes.block_spec` (split streams)."""
    check_residual_params(sizes, weights, biases)
    n, ds = sizes.n_blocks, sizes.d_s
    if len(gauge.stream_perms) != n + 1 or len(gauge.stream_scales) != n + 1 or len(gauge.inner_perms) != n \
            or len(gauge.inner_scales) != n:
        raise ValueError(f"{sizes.to_text()} needs {n + 1} stream and {n} inner (perm, scale) pairs; "
                         "use sample_residual_gauge(sizes)")
    w0 = weights[0]
    sp_ = [_perm(p, ds, f"stream perm at depth {t}", w0.device) for t, p in enumerate(gauge.stream_perms)]
    ss = [_positive(s, ds, f"stream scale at depth {t}", w0) for t, s in enumerate(gauge.stream_scales)]
    ip = [_perm(p, h, f"inner perm of block {i + 1}", w0.device) for i, (p, h) in
          enumerate(zip(gauge.inner_perms, sizes.hidden))]
    is_ = [_positive(s, h, f"inner scale of block {i + 1}", w0) for i, (s, h) in
           enumerate(zip(gauge.inner_scales, sizes.hidden))]
    # the action of weightspace.block_gauge on the plain twin's sites (one site per stream depth)
    pairs = {"0": (sp_[0], ss[0])}
    for i in range(n):
        pairs[f"{i + 1}"] = (sp_[i + 1], ss[i + 1])
        pairs[f"{i + 1}.branch.0"] = (ip[i], is_[i])
    spec = sizes.block_spec()
    sites = spec.gauge_plan(split_streams=True).sites
    ident = [(torch.arange(site.width, device=w0.device), torch.ones(site.width, dtype=w0.dtype, device=w0.device))
             for site in sites]
    perms, scales = zip(*[pairs.get(site.label, fixed) for site, fixed in zip(sites, ident)])
    bw = BlockWeights(spec, [t[None] for pair in zip(weights, biases) for t in pair])
    out = BlockGauge(spec, [p[None] for p in perms], [q[None] for q in scales], split_streams=True)
    params = [t[0] for t in out.apply(bw, strict=False).params]
    return params[0::2], params[1::2]


def flip_inner_sign(sizes: ResidualSizes, weights: Sequence[Tensor], biases: Sequence[Tensor], block: int,
                    unit: int) -> tuple[list[Tensor], list[Tensor]]:
    """The would-be gauge ``q = -1`` on inner unit ``unit`` of ``block`` (1-based): row of ``W1``, ``b1`` entry and
    column of ``W2`` negated. Not a symmetry: ``relu(-z) != -relu(z)``."""
    check_residual_params(sizes, weights, biases)
    if not 1 <= block <= sizes.n_blocks or not 0 <= unit < sizes.hidden[block - 1]:
        raise ValueError(f"block must be in 1..{sizes.n_blocks} and unit in 0..h_block - 1 (hidden={sizes.hidden}), "
                         f"got block={block}, unit={unit}")
    ws, bs = [w.clone() for w in weights], [b.clone() for b in biases]
    k = 2 * block - 1
    ws[k][unit] *= -1
    bs[k][unit] *= -1
    ws[k + 1][:, unit] *= -1
    return ws, bs


def residual_invariance_error(sizes: ResidualSizes, gauge: ResidualGauge | None = None, *, shortcut: bool = True,
                              seed: int = 0, batch: int = 64, dtype: torch.dtype = torch.float64,
                              device=None) -> float:
    """The shipped checker: ``max |f_{g.theta}(x) - f_theta(x)|`` for random ``theta``, ``x`` (and ``g``:
    :func:`sample_residual_gauge` if ``None``)."""
    gen = torch.Generator().manual_seed(seed)
    ws, bs = init_residual_params(sizes, gen, dtype=dtype, device=device)
    x = torch.randn(batch, sizes.d_in, generator=gen, dtype=dtype).to(device)
    gauge = sample_residual_gauge(sizes, gen, dtype=dtype, device=device) if gauge is None else gauge
    ws2, bs2 = apply_residual_gauge(sizes, ws, bs, gauge)
    f = residual_forward(sizes, ws, bs, x, shortcut)
    return float((residual_forward(sizes, ws2, bs2, x, shortcut) - f).abs().max())


def residual_scaling_constraints(sizes: ResidualSizes, shortcut: bool = True) -> np.ndarray:
    """``A`` (``[n d_s, n_units]`` integers, unknowns :meth:`ResidualSizes.unit_labels`): one row
    ``u_{t+1,k} - u_{t,k}`` per identity shortcut edge (fixed weight 1); no rows for the free weight and bias
    edges. ``shortcut=False`` (plain twin): no rows at all."""
    n, ds = sizes.n_blocks, sizes.d_s
    n_units = (n + 1) * ds + sum(sizes.hidden)
    if not shortcut:
        return np.zeros((0, n_units), dtype=np.int64)
    A = np.zeros((n * ds, n_units), dtype=np.int64)
    for t in range(n):
        for k in range(ds):
            A[t * ds + k, (t + 1) * ds + k] = 1
            A[t * ds + k, t * ds + k] = -1
    return A


def nullity(A: np.ndarray, exact: bool = False) -> int:
    """``n_columns - rank(A)``: sympy's rational rank (``exact``) or numpy's SVD rank."""
    A = np.asarray(A)
    if A.shape[0] == 0:
        return A.shape[1]
    rank = sp.Matrix(A.astype(int)).rank() if exact else int(np.linalg.matrix_rank(A.astype(np.float64)))
    return A.shape[1] - rank


def residual_scaling_basis(sizes: ResidualSizes, shortcut: bool = True) -> np.ndarray:
    """Integer basis ``[n_units, dim]`` (exact, sympy) of the admissible log-scales ``{u : A u = 0}``; map a
    combination to a group element with :func:`log_scales_to_gauge`."""
    A = residual_scaling_constraints(sizes, shortcut)
    if A.shape[0] == 0:
        return np.eye(A.shape[1], dtype=np.int64)
    return np.array(sp.Matrix.hstack(*sp.Matrix(A).nullspace()).tolist(), dtype=np.int64)


def residual_dim_formula(d_s: int, hidden: Sequence[int]) -> int:
    """Closed form ``sum(hidden) + d_s``."""
    return sum(int(h) for h in hidden) + int(d_s)


def plain_dim_formula(d_s: int, hidden: Sequence[int]) -> int:
    """Closed form ``sum(hidden) + (n + 1) d_s`` of the plain twin."""
    return sum(int(h) for h in hidden) + (len(hidden) + 1) * int(d_s)


@dataclass(frozen=True)
class ResidualScalingDims:
    """``dim G_scale`` (nullity) of a residual network and its plain twin, with the closed forms."""

    size: str
    dim_residual: int
    dim_plain: int
    formula_residual: int
    formula_plain: int
    n_blocks: int
    d_s: int

    @property
    def matches_formula(self) -> bool:
        return self.dim_residual == self.formula_residual and self.dim_plain == self.formula_plain

    @property
    def strictly_smaller(self) -> bool:
        return self.dim_residual < self.dim_plain

    @property
    def theorem_holds(self) -> bool:
        """Closed forms hold, and ``dim_residual < dim_plain`` iff ``n >= 1`` (``d_s >= 1`` always)."""
        return self.matches_formula and self.strictly_smaller == (self.n_blocks >= 1)


def residual_scaling_dims(sizes: ResidualSizes, exact: bool = False) -> ResidualScalingDims:
    """Nullities of :func:`residual_scaling_constraints` with and without shortcuts, and the closed forms."""
    return ResidualScalingDims(
        sizes.to_text(),
        nullity(residual_scaling_constraints(sizes), exact),
        nullity(residual_scaling_constraints(sizes, shortcut=False), exact),
        residual_dim_formula(sizes.d_s, sizes.hidden),
        plain_dim_formula(sizes.d_s, sizes.hidden),
        sizes.n_blocks,
        sizes.d_s,
    )


@dataclass(frozen=True)
class SymbolicResidual:
    """Residual network with symbolic parameters (sympy Matrices in the order ``[E, W1_1, W2_1, ..., H]``)."""

    sizes: ResidualSizes
    weights: tuple[sp.Matrix, ...]
    biases: tuple[sp.Matrix, ...]
    x: sp.Matrix

    def forward(self, shortcut: bool = True) -> sp.Matrix:
        relu = lambda m: m.applyfunc(_relu)
        y = self.weights[0] * self.x + self.biases[0]
        for i in range(self.sizes.n_blocks):
            w1, b1, w2, b2 = self.weights[1 + 2 * i], self.biases[1 + 2 * i], self.weights[2 + 2 * i], \
                self.biases[2 + 2 * i]
            out = w2 * relu(w1 * y + b1) + b2
            y = y + out if shortcut else out
            if self.sizes.post_relu:
                y = relu(y)
        return self.weights[-1] * y + self.biases[-1]

    def replace(self, weights: Sequence[sp.Matrix], biases: Sequence[sp.Matrix]) -> "SymbolicResidual":
        return SymbolicResidual(self.sizes, tuple(weights), tuple(biases), self.x)


def symbolic_residual(sizes: ResidualSizes) -> SymbolicResidual:
    """Symbols ``{name}_{i}{j}`` for the weights of :meth:`ResidualSizes.layer_names`, ``b{name}_{i}``, ``x_{j}``."""
    ws, bs = [], []
    for name, (o, i) in zip(sizes.layer_names(), sizes.layer_shapes()):
        ws.append(sp.Matrix(o, i, lambda r, c, name=name: sp.Symbol(f"{name}_{r}{c}", real=True)))
        bs.append(sp.Matrix(o, 1, lambda r, c, name=name: sp.Symbol(f"b{name}_{r}", real=True)))
    x = sp.Matrix(sizes.d_in, 1, lambda r, c: sp.Symbol(f"x_{r}", real=True))
    return SymbolicResidual(sizes, tuple(ws), tuple(bs), x)


def check_residual_symbolic(sizes: ResidualSizes, *, shared: bool = True, sign_flip: bool = False,
                            shortcut: bool = True, seed: int = 0) -> GaugeCheck:
    """``f_{g.theta} - f_theta`` for a symbolic element: random permutations (one stream permutation for all
    depths) and positive-symbol scales, ``q_{k}`` shared by the stream depths (``shared``) or ``q{t}_{k}`` per depth;
    ``sign_flip`` sets inner unit 0 of block 1 to ``-1``. Proved 0 exactly iff a symmetry."""
    if sign_flip and sizes.n_blocks == 0:
        raise ValueError("sign_flip needs at least one block (an inner ReLU unit to flip)")
    rng = random.Random(seed)
    net = symbolic_residual(sizes)
    n, ds = sizes.n_blocks, sizes.d_s
    p = list(range(ds))
    rng.shuffle(p)
    stream = []
    for t in range(n + 1):
        q = [sp.Symbol(f"q{'' if shared else t}_{k}", positive=True) for k in range(ds)]
        stream.append(gauge_matrices(p, q))
    inner = []
    for i, h in enumerate(sizes.hidden, start=1):
        pi = list(range(h))
        rng.shuffle(pi)
        r = [sp.Symbol(f"r{i}_{j}", positive=True) for j in range(h)]
        if sign_flip and i == 1:
            r[0] = sp.Integer(-1)
        inner.append(gauge_matrices(pi, r))
    M = lambda PQ: PQ[1] * PQ[0]
    Minv = lambda PQ: PQ[0].T * PQ[1].inv()
    ws, bs = [M(stream[0]) * net.weights[0]], [M(stream[0]) * net.biases[0]]
    for i in range(n):
        ws.append(M(inner[i]) * net.weights[1 + 2 * i] * Minv(stream[i]))
        bs.append(M(inner[i]) * net.biases[1 + 2 * i])
        ws.append(M(stream[i + 1]) * net.weights[2 + 2 * i] * Minv(inner[i]))
        bs.append(M(stream[i + 1]) * net.biases[2 + 2 * i])
    ws.append(net.weights[-1] * Minv(stream[n]))
    bs.append(net.biases[-1])
    return _reduce(net.replace(ws, bs).forward(shortcut) - net.forward(shortcut), seed)


# ---------------------------------------------------------------- 2./3. BatchNorm and LayerNorm
NORM_KINDS = ("batchnorm", "layernorm")


@dataclass(frozen=True)
class NormNet:
    """``x -> z = W x + b -> norm(z) -> ReLU -> V h + c`` (one normalized hidden layer of ``width`` features).

    ``kind``: ``"batchnorm"`` (eval mode: ``running_mean``, ``running_var`` are parameters) or ``"layernorm"``.
    Shapes: ``weight [width, d_in]``, ``bias, gamma, beta [width]``, ``head_weight [d_out, width]``,
    ``head_bias [d_out]``."""

    kind: str
    weight: Tensor
    bias: Tensor
    gamma: Tensor
    beta: Tensor
    head_weight: Tensor
    head_bias: Tensor
    running_mean: Tensor | None = None
    running_var: Tensor | None = None

    def __post_init__(self):
        if self.kind not in NORM_KINDS:
            raise ValueError(f"kind must be one of {NORM_KINDS}, got {self.kind!r}")
        n = self.weight.shape[0]
        shapes = {"bias": (n,), "gamma": (n,), "beta": (n,), "head_bias": (self.head_weight.shape[0],)}
        if self.weight.ndim != 2 or self.head_weight.ndim != 2 or self.head_weight.shape[1] != n:
            raise ValueError(f"weight must be [width, d_in] and head_weight [d_out, width]; got "
                             f"{tuple(self.weight.shape)} and {tuple(self.head_weight.shape)}")
        if self.kind == "batchnorm":
            if self.running_mean is None or self.running_var is None:
                raise ValueError("a batchnorm NormNet needs running_mean and running_var (eval mode); "
                                 "build one with random_norm_net('batchnorm', ...)")
            shapes.update(running_mean=(n,), running_var=(n,))
            if bool((self.running_var < 0).any()):
                raise ValueError(f"running_var must be >= 0, got {self.running_var.tolist()}")
        elif n < 2:
            raise ValueError(f"layernorm needs width >= 2 (with one feature z - mean(z) = 0), got {n}")
        for name, shape in shapes.items():
            if tuple(getattr(self, name).shape) != shape:
                got = tuple(getattr(self, name).shape)
                raise ValueError(f"{name} must have shape {shape} for width {n}, got {got}")

    @property
    def width(self) -> int:
        return self.weight.shape[0]


def random_norm_net(kind: str, d_in: int, width: int, d_out: int, generator: torch.Generator | None = None, *,
                    dtype: torch.dtype = torch.float64, device=None) -> NormNet:
    """Random parameters; BatchNorm's running statistics are those of ``z`` on a calibration batch of 256 inputs
    ``N(0, I)`` (as after training), so ``(z - mu) / sqrt(var)`` is roughly standard."""
    g = lambda *s: torch.randn(*s, generator=generator, dtype=dtype)
    w, b = g(width, d_in) / d_in ** 0.5, 0.1 * g(width)
    mean = var = None
    if kind == "batchnorm":
        z = g(256, d_in) @ w.T + b
        mean, var = z.mean(0), z.var(0, unbiased=False)
    gamma, beta = 1 + 0.3 * g(width), 0.3 * g(width)
    head_w, head_b = g(d_out, width) / width ** 0.5, 0.1 * g(d_out)
    to = lambda t: None if t is None else t.to(device)
    return NormNet(kind, to(w), to(b), to(gamma), to(beta), to(head_w), to(head_b), to(mean), to(var))


def norm_forward(net: NormNet, x: Tensor, eps: float | Tensor = 0.0) -> Tensor:
    """``V relu(norm(W x + b)) + c``, ``x [batch, d_in]`` -> ``[batch, d_out]``."""
    z = _rows(x, net.weight.shape[1]) @ net.weight.T + net.bias
    if net.kind == "batchnorm":
        h = batchnorm(z, net.running_mean, net.running_var, net.gamma, net.beta, eps)
    else:
        h = layernorm(z, net.gamma, net.beta, float(eps))
    return torch.relu(h) @ net.head_weight.T + net.head_bias


def prenorm_scaling(net: NormNet, d: float | Tensor) -> NormNet:
    """``W, b -> D W, D b`` (and ``mu -> D mu``, ``var -> D^2 var`` for BatchNorm), ``d > 0`` a scalar or ``[width]``.
    A symmetry (``eps = 0``) for any ``d`` under BatchNorm; under LayerNorm only for a common scalar."""
    d = _positive(d, net.width, "pre-norm scale d", net.weight)
    new = replace(net, weight=d[:, None] * net.weight, bias=d * net.bias)
    if net.kind == "batchnorm":
        new = replace(new, running_mean=d * net.running_mean, running_var=d * d * net.running_var)
    return new


def prenorm_sign_flip(net: NormNet, signs: Sequence[int] | Tensor, flip_gamma: bool = True) -> NormNet:
    """BatchNorm only: ``W, b, mu -> S W, S b, S mu`` (``S = diag(signs)``, ``var`` unchanged), and
    ``gamma -> S gamma`` if ``flip_gamma``. With ``flip_gamma`` an exact symmetry for every ``eps``; without, not."""
    if net.kind != "batchnorm":
        raise ValueError("prenorm_sign_flip is for batchnorm; for layernorm a sign flip of all features is "
                         "prenorm_scaling's scalar c = -1 case and is not provided")
    s = torch.as_tensor(signs, dtype=net.weight.dtype, device=net.weight.device)
    if s.shape != (net.width,) or not bool((s.abs() == 1).all()):
        raise ValueError(f"signs must be {net.width} entries of +-1, got {s.tolist()}")
    new = replace(net, weight=s[:, None] * net.weight, bias=s * net.bias, running_mean=s * net.running_mean)
    return replace(new, gamma=s * net.gamma) if flip_gamma else new


def neuron_scaling(net: NormNet, q: float | Tensor) -> NormNet:
    """The post-norm neuron's ReLU gauge: ``gamma, beta -> q gamma, q beta``, head columns divided by ``q > 0``."""
    q = _positive(q, net.width, "neuron scale q", net.weight)
    return replace(net, gamma=q * net.gamma, beta=q * net.beta, head_weight=net.head_weight / q[None, :])


def neuron_sign_flip(net: NormNet, unit: int) -> NormNet:
    """``q = -1`` on one post-norm neuron (``gamma, beta`` and the head column negated): not a symmetry."""
    if not 0 <= unit < net.width:
        raise ValueError(f"unit must be in 0..{net.width - 1}, got {unit}")
    q = torch.ones(net.width, dtype=net.weight.dtype, device=net.weight.device)
    q[unit] = -1
    return replace(net, gamma=q * net.gamma, beta=q * net.beta, head_weight=net.head_weight * q[None, :])


def permute_features(net: NormNet, perm: Sequence[int] | Tensor, with_affine: bool = True) -> NormNet:
    """Rows of ``W, b`` (and running stats), head columns, and (``with_affine``) ``gamma, beta`` permuted.
    ``with_affine=False`` leaves ``gamma, beta`` in place: not a symmetry."""
    p = _perm(perm, net.width, "perm", net.weight.device)
    new = replace(net, weight=net.weight[p], bias=net.bias[p], head_weight=net.head_weight[:, p])
    if net.kind == "batchnorm":
        new = replace(new, running_mean=net.running_mean[p], running_var=net.running_var[p])
    return replace(new, gamma=net.gamma[p], beta=net.beta[p]) if with_affine else new


def layernorm_shift(net: NormNet, v: Tensor, c0: float) -> NormNet:
    """``W -> W + 1 v^T``, ``b -> b + c0 1``: every feature shifted by ``v.x + c0``; LayerNorm is blind to it."""
    if net.kind != "layernorm":
        raise ValueError("layernorm_shift is for layernorm (BatchNorm's analogue is b, mu -> b + c, mu + c)")
    v = torch.as_tensor(v, dtype=net.weight.dtype, device=net.weight.device)
    if v.shape != (net.weight.shape[1],):
        raise ValueError(f"v must have shape ({net.weight.shape[1]},) (one entry per input), got {tuple(v.shape)}")
    return replace(net, weight=net.weight + v[None, :], bias=net.bias + c0)


#: symbolic cases and whether each is a symmetry (``eps`` is a positive symbol in the ``*_eps`` cases)
BN_CASES: dict[str, bool] = {
    "input_scale": True,  # D W, D b, D mu, D^2 var, eps = 0
    "input_scale_eps": False,  # same with eps > 0 kept
    "input_scale_scaled_eps": True,  # same with eps -> d^2 eps (per channel)
    "neuron_scale": True,  # gamma, beta -> q gamma, q beta; head columns / q
    "input_sign_gamma": True,  # W, b, mu -> -W, -b, -mu and gamma -> -gamma (exact, even with eps)
    "input_sign": False,  # the same without gamma -> -gamma
    "neuron_sign": False,  # gamma, beta -> -gamma, -beta; head column negated (ReLU breaks)
}
LN_CASES: dict[str, bool] = {
    "common_scale": True,
    "common_scale_eps": False,
    "common_scale_scaled_eps": True,
    "shift": True,  # W + 1 v^T, b + c0 1, eps > 0 kept: exact
    "permutation": True,  # with gamma, beta
    "permutation_without_affine": False,
    "per_neuron_scale": False,
    "neuron_scale": True,
    "neuron_sign": False,
}


def _sym_norm_forward(kind, w, b, gamma, beta, head_w, head_b, x, mean=None, var=None, eps=sp.S.Zero) -> sp.Matrix:
    n = w.shape[0]
    z = [sp.expand((w[i, :] * x)[0] + b[i]) for i in range(n)]
    if kind == "batchnorm":
        eps = [eps] * n if not isinstance(eps, (list, tuple)) else eps
        h = [sp.expand(gamma[i] * sp.expand(z[i] - mean[i]) * sp.factor_terms(var[i] + eps[i]) ** sp.Rational(-1, 2)
                       + beta[i]) for i in range(n)]
    else:
        m = sum(z) / n
        c = [sp.expand(zi - m) for zi in z]
        v = sp.factor_terms(sp.expand(sum(ci ** 2 for ci in c) / n + eps))
        # expand with a placeholder for 1 / sqrt(v): expand would otherwise recurse into the polynomial v
        s = sp.Dummy("s", positive=True)
        h = [sp.expand(gamma[i] * c[i] * s + beta[i]).xreplace({s: v ** sp.Rational(-1, 2)}) for i in range(n)]
    return head_w * sp.Matrix([_relu(hi, expanded=kind == "layernorm") for hi in h]) + head_b


def check_norm_symbolic(kind: str, case: str, *, d_in: int = 2, width: int = 3, seed: int = 0) -> GaugeCheck:
    """Build the symbolic :class:`NormNet` (symbols ``w_{ij}``, ``b_i``, ``g_i``, ``be_i``, ``mu_i``, ``var_i > 0``,
    ``V_{ji}``, ``x_j``), apply ``case`` (:data:`BN_CASES` / :data:`LN_CASES`) with positive-symbol scales and
    reduce ``f' - f``; ``.preserved`` must equal the table's verdict."""
    cases = {"batchnorm": BN_CASES, "layernorm": LN_CASES}.get(kind)
    if cases is None or case not in cases:
        raise ValueError(f"unknown (kind, case) ({kind!r}, {case!r}); kinds {NORM_KINDS}, cases "
                         f"{list(BN_CASES)} for batchnorm and {list(LN_CASES)} for layernorm")
    if kind == "layernorm" and width < 2:
        raise ValueError(f"layernorm needs width >= 2, got {width}")
    rng = random.Random(seed)
    n, d_out = width, 1
    vec = lambda name, m, **kw: sp.Matrix(m, 1, lambda i, j: sp.Symbol(f"{name}_{i}", **kw))
    w = sp.Matrix(n, d_in, lambda i, j: sp.Symbol(f"w_{i}{j}", real=True))
    b, g, be, x = vec("b", n, real=True), vec("g", n, real=True), vec("be", n, real=True), vec("x", d_in, real=True)
    mu, var = vec("mu", n, real=True), vec("var", n, positive=True)
    hw, hb = sp.Matrix(d_out, n, lambda i, j: sp.Symbol(f"V_{i}{j}", real=True)), vec("c", d_out, real=True)
    d, q, c = vec("d", n, positive=True), vec("q", n, positive=True), sp.Symbol("c", positive=True)
    eps = sp.Symbol("eps", positive=True) if case.endswith("eps") or case == "shift" else sp.S.Zero
    orig = dict(kind=kind, w=w, b=b, gamma=g, beta=be, head_w=hw, head_b=hb, x=x, mean=mu, var=var, eps=eps)
    new = dict(orig)
    D = lambda v: sp.diag(*v)
    if case.startswith("input_scale"):
        new.update(w=D(d) * w, b=D(d) * b, mean=D(d) * mu, var=D(d) ** 2 * var)
        if case == "input_scale_scaled_eps":
            new.update(eps=[d[i] ** 2 * eps for i in range(n)])
    elif case.startswith("input_sign"):
        s = D([-1 if rng.random() < 0.5 or i == 0 else 1 for i in range(n)])
        new.update(w=s * w, b=s * b, mean=s * mu)
        if case == "input_sign_gamma":
            new.update(gamma=s * g)
    elif case == "neuron_scale":
        new.update(gamma=D(q) * g, beta=D(q) * be, head_w=hw * D(q).inv())
    elif case == "neuron_sign":
        s = D([-1] + [1] * (n - 1))
        new.update(gamma=s * g, beta=s * be, head_w=hw * s)
    elif case.startswith("common_scale"):
        new.update(w=c * w, b=c * b, eps=c ** 2 * eps if case.endswith("scaled_eps") else eps)
    elif case == "shift":
        v, c0 = vec("v", d_in, real=True).T, sp.Symbol("c0", real=True)
        new.update(w=w + sp.ones(n, 1) * v, b=b + c0 * sp.ones(n, 1))
    elif case.startswith("permutation"):
        p = list(range(n))
        while p == list(range(n)):
            rng.shuffle(p)
        P, _ = gauge_matrices(p, [1] * n)
        new.update(w=P * w, b=P * b, head_w=hw * P.T)
        if case == "permutation":
            new.update(gamma=P * g, beta=P * be)
    elif case == "per_neuron_scale":
        new.update(w=D(d) * w, b=D(d) * b)
    return _reduce(_sym_norm_forward(**new) - _sym_norm_forward(**orig), seed)


@dataclass(frozen=True)
class NormScalingDerivation:
    """Lie algebra of pre-norm diagonal scalings ``u`` (``D = diag(exp(u))``) that leave LayerNorm unchanged.

    ``basis``: columns spanning it; ``n_equations``: linear equations in ``u`` from the polynomial identity."""

    width: int
    dim: int
    basis: sp.Matrix
    n_equations: int
    method: str


def layernorm_scaling_derivation(n: int) -> NormScalingDerivation:
    """Solve ``|Pz|^2 P(u * z) - Pz <Pz, u * z> = 0`` identically in symbolic ``z`` (``n >= 3``; about a second at
    ``n = 5``). ``n = 2``: the sign separation of the module docstring, checked symbolically."""
    n = int(n)
    if n < 2:
        raise ValueError(f"layernorm needs n >= 2 features, got {n}")
    if n == 2:
        d1, d2 = sp.symbols("d1 d2", positive=True)
        z = (d1 + d2, 2 * d1)
        product = sp.expand((z[0] - z[1]) * (d1 * z[0] - d2 * z[1]) + d1 * (d1 - d2) ** 2)
        if product != 0:  # pragma: no cover - an algebra slip would land here
            raise AssertionError(f"sign separation failed: {product}")
        return NormScalingDerivation(2, 1, sp.ones(2, 1), 0, "sign separation (n = 2: layernorm is a step function)")
    z = sp.symbols(f"z0:{n}", real=True)
    u = sp.symbols(f"u0:{n}", real=True)
    mean = sum(z) / n
    pz = [zi - mean for zi in z]
    v = [ui * zi for ui, zi in zip(u, z)]
    vm = sum(v) / n
    pv = [vi - vm for vi in v]
    s = sum(p * p for p in pz)
    dot = sum(p * vi for p, vi in zip(pz, v))
    eqs = []
    for i in range(n):
        eqs += sp.Poly(sp.expand(s * pv[i] - pz[i] * dot), *z).coeffs()
    A, _ = sp.linear_eq_to_matrix(eqs, u)
    basis = sp.Matrix.hstack(*A.nullspace())
    return NormScalingDerivation(n, basis.shape[1], basis, len(eqs), "polynomial identity in z (Lie algebra)")


def layernorm_counterexample(n: int) -> sp.Matrix:
    """Exact ``ln(D z) - ln(z)`` (``gamma = 1``, ``beta = 0``, ``eps = 0``) for ``z = (2, 1, 0, ..., 0)`` and
    ``D = diag(1, 4, 1, ..., 1)``: nonzero for every ``n >= 2``, so a per-neuron scaling is no LN symmetry."""
    if int(n) < 2:
        raise ValueError(f"layernorm needs n >= 2 features, got {n}")
    n = int(n)

    def ln(z):
        m = sum(z) / n
        c = [zi - m for zi in z]
        return sp.Matrix([ci / sp.sqrt(sum(cj ** 2 for cj in c) / n) for ci in c])

    z = [sp.Integer(2), sp.Integer(1)] + [sp.Integer(0)] * (n - 2)
    dz = [z[0], 4 * z[1]] + z[2:]
    return (ln(dz) - ln(z)).applyfunc(sp.radsimp)


@dataclass(frozen=True)
class EpsError:
    """:func:`eps_invariance_error`: ``measured = max |f' - f|`` under a pre-norm scale with ``eps`` kept,
    ``bound`` the a-priori bound (``>= measured``), ``scaled_eps`` the error when ``eps -> d^2 eps`` instead,
    ``output_scale = max |f|`` for reference."""

    kind: str
    eps: float
    scale: float
    measured: float
    bound: float
    scaled_eps: float
    output_scale: float


def eps_invariance_error(kind: str, eps: float, scale: float, *, d_in: int = 4, width: int = 8, d_out: int = 3,
                         batch: int = 256, seed: int = 0, dtype: torch.dtype = torch.float64,
                         device=None) -> EpsError:
    """Measure the ``eps > 0`` deviation of the pre-norm scaling ``d = scale`` (all channels for BatchNorm; the
    common scalar for LayerNorm) on a random :class:`NormNet` and random inputs, with the bound
    ``|f'_j - f_j| <= sum_i |V_ji| |gamma_i| |zhat_i| rho``, ``rho = |d^2 - 1| eps / ((d^2 var + eps)(1 + min(1, d)))``
    (``zhat`` the normalized input; ``var`` per channel for BN, per sample for LN; the ReLU is 1-Lipschitz)."""
    if kind not in NORM_KINDS:
        raise ValueError(f"kind must be one of {NORM_KINDS}, got {kind!r}")
    if not eps >= 0 or not scale > 0:
        raise ValueError(f"need eps >= 0 and scale > 0, got eps={eps}, scale={scale}")
    gen = torch.Generator().manual_seed(seed)
    net = random_norm_net(kind, d_in, width, d_out, gen, dtype=dtype, device=device)
    x = torch.randn(batch, d_in, generator=gen, dtype=dtype).to(device)
    new = prenorm_scaling(net, scale)
    f = norm_forward(net, x, eps)
    measured = float((norm_forward(new, x, eps) - f).abs().max())
    scaled = float((norm_forward(new, x, eps * scale ** 2) - f).abs().max())
    z = x @ net.weight.T + net.bias
    if kind == "batchnorm":
        var = net.running_var[None, :]
        zhat = (z - net.running_mean) / torch.sqrt(var + eps)
    else:
        c = z - z.mean(-1, keepdim=True)
        var = (c * c).mean(-1, keepdim=True)
        zhat = c / torch.sqrt(var + eps)
    rho = abs(scale ** 2 - 1) * eps / ((scale ** 2 * var + eps) * (1 + min(1.0, scale)))
    per_feature = net.gamma.abs() * zhat.abs() * rho  # [batch, width]
    bound = float((per_feature @ net.head_weight.abs().T).max())
    return EpsError(kind, float(eps), float(scale), measured, bound, scaled, float(f.abs().max()))


def gauge_dims_summary(d_s: int, hidden: Sequence[int], norm_width: int, *, derive_layernorm: bool = False
                       ) -> dict[str, int]:
    """Dimensions for the notebook's table. Residual vs plain twin are the nullities (:func:`residual_scaling_dims`);
    ``batchnorm_free_scales`` = ``norm_width`` (every channel's pre-norm scale, proved by :func:`check_norm_symbolic`
    with independent per-channel symbols) and ``layernorm_free_scales`` = 1 (derived by
    :func:`layernorm_scaling_derivation` when ``derive_layernorm``, a few seconds for ``norm_width <= 5``). The
    ``*_layer`` entries add the post-norm neuron scalings (one per feature) that BN and LN layers keep, next to a
    plain ReLU layer's ``norm_width``."""
    if int(norm_width) < 2:
        raise ValueError(f"norm_width must be >= 2 (layernorm of one feature is degenerate), got {norm_width}")
    dims = residual_scaling_dims(ResidualSizes(1, d_s, tuple(hidden), 1))
    ln = layernorm_scaling_derivation(norm_width).dim if derive_layernorm else 1
    w = int(norm_width)
    return {
        "residual": dims.dim_residual,
        "plain_twin": dims.dim_plain,
        "residual_deficit": dims.dim_plain - dims.dim_residual,
        "batchnorm_free_scales": w,
        "layernorm_free_scales": ln,
        "plain_relu_layer": w,
        "batchnorm_layer": 2 * w,
        "layernorm_layer": w + ln,
    }
