r"""The gauge group of a block network (residual blocks, BatchNorm, LayerNorm) and samplers of its non-symmetries.

A :class:`BlockGauge` holds, for every *site* of ``spec.gauge_plan()`` (:mod:`.block_sites`: the hidden neurons of a
layer or a norm, a residual stream, a norm's input) and every network of a batch, a permutation ``perm [B, n]`` and a
scaling ``scale [B, n]``, acting as ``h'[i] = scale[i] h[perm[i]]``; a parameter with rows on site ``r`` and columns on
site ``c`` becomes ``T'[i, j] = q_r[i]^power T[p_r[i], p_c[j]] / q_c[j]`` (``running_var``: ``power = 2``; a norm's
``gamma`` also takes the sign of its input's scale). It preserves the network's function exactly (float64,
``eps = 0`` for norms) iff it is a symmetry (:meth:`BlockGauge.validate`):

* every hidden or stream site's scaling lies in the group of the activations applied to it (positive for ReLU,
  LeakyReLU and identity; ``+-1`` for tanh and sine; 1 otherwise), input and output sites are fixed;
* a residual stream has one permutation and one scaling for every block that reads or writes it: the identity
  shortcut is a constant edge of weight 1, so its two ends must transform alike (``split_streams=True`` gives each
  depth its own site, the plain twin's gauge, to show what breaks);
* a BatchNorm's input has a free per-channel scaling ``d != 0`` (``W, b, mu -> D W, D b, D mu``, ``var -> D^2 var``,
  ``gamma -> sign(D) gamma``), a LayerNorm's input one common ``c != 0``; both share the permutation of the norm's
  outputs, whose own scaling acts through ``gamma, beta`` as in an MLP.

The derivations are :mod:`scalegmn_lite.symbolic.residual`'s (sympy and float64); its ``apply_residual_gauge`` is
this action on a residual MLP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .block_sites import GaugePlan, ScaleKind
from .block_weights import BlockWeights
from .blocks import BlockNetworkSpec
from .gauge import NotASymmetryError

__all__ = ["BlockGauge", "NonSymmetry", "NON_SYMMETRY_KINDS", "sample_non_symmetry", "function_change",
           "block_invariance_error"]

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class BlockGauge:
    """A batch of gauge elements of a block network, one ``(perm, scale)`` pair ``[B, n]`` per site of
    ``spec.gauge_plan(split_streams)`` (see the module docstring)."""

    spec: BlockNetworkSpec
    perms: tuple[Tensor, ...]
    scales: tuple[Tensor, ...]
    split_streams: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "perms", tuple(self.perms))
        object.__setattr__(self, "scales", tuple(self.scales))
        sites = self.plan.sites
        if len(self.perms) != len(sites) or len(self.scales) != len(sites):
            raise ValueError(f"need one permutation and one scaling per site ({len(sites)}: "
                             f"{[s.label for s in sites]}), got {len(self.perms)} and {len(self.scales)}")
        for site, p, s in zip(sites, self.perms, self.scales):
            if p.dim() != 2 or p.shape != s.shape or p.shape[1] != site.width or p.shape[0] != self.batch_size:
                raise ValueError(f"site {site.label} ({site.role}): expected [B={self.batch_size}, {site.width}] "
                                 f"permutation and scaling, got {tuple(p.shape)} and {tuple(s.shape)}")

    @property
    def plan(self) -> GaugePlan:
        return self.spec.gauge_plan(self.split_streams)

    @property
    def batch_size(self) -> int:
        return self.perms[0].shape[0]

    # ------------------------------------------------------------------ constructors
    @classmethod
    def identity(cls, spec: BlockNetworkSpec, batch_size: int = 1, split_streams: bool = False, device=None,
                 dtype: torch.dtype = torch.float64) -> "BlockGauge":
        sites = spec.gauge_plan(split_streams).sites
        return cls(spec, [torch.arange(s.width, device=device).expand(batch_size, -1).clone() for s in sites],
                   [torch.ones(batch_size, s.width, device=device, dtype=dtype) for s in sites], split_streams)

    @classmethod
    def sample(cls, spec: BlockNetworkSpec, batch_size: int = 1, generator: torch.Generator | None = None, *,
               permute: bool = True, scale: bool = True, prenorm_sign: bool = False,
               max_log_scale: float = math.log(4.0), split_streams: bool = False, device=None,
               dtype: torch.dtype = torch.float64) -> "BlockGauge":
        """Random elements: uniform permutations (a norm's input follows its output's); scalings
        ``exp(U(-max_log_scale, max_log_scale))`` for positive sites and norm inputs (one value per LayerNorm),
        uniform ``+-1`` for sign sites, 1 otherwise; ``prenorm_sign`` also flips the sign of norm inputs (with
        ``gamma``). ``split_streams``: each depth of a stream drawn independently (no symmetry of the residual net)."""
        sites = spec.gauge_plan(split_streams).sites
        perms, scales = [], []
        for site in sites:
            n = site.width
            if permute and site.scaling is not ScaleKind.FIXED:
                perms.append(torch.argsort(torch.rand(batch_size, n, generator=generator), dim=1))
            else:
                perms.append(torch.arange(n).expand(batch_size, n).clone())
            log = (2 * torch.rand(batch_size, n, generator=generator, dtype=torch.float64) - 1) * max_log_scale
            sign = torch.randint(0, 2, (batch_size, n), generator=generator).to(torch.float64) * 2 - 1
            if site.scaling is ScaleKind.COMMON:
                log, sign = log[:, :1].expand(-1, n), sign[:, :1].expand(-1, n)
            if not scale or site.scaling in (ScaleKind.FIXED, ScaleKind.NONE):
                s = torch.ones(batch_size, n, dtype=torch.float64)
            elif site.scaling is ScaleKind.SIGN:
                s = sign
            else:
                s = torch.exp(log) * (sign if prenorm_sign and site.scaling in (ScaleKind.PRENORM, ScaleKind.COMMON)
                                      else 1)
            scales.append(s.to(device=device, dtype=dtype))
        perms = [perms[site.perm_site].to(device) for site in sites]
        return cls(spec, perms, scales, split_streams)

    def split(self) -> "BlockGauge":
        """The same element on the plain twin's sites (every stream depth its own copy of the stream's pair)."""
        if self.split_streams:
            return self
        source = _site_map(self.spec.gauge_plan(True), self.plan)
        return BlockGauge(self.spec, [self.perms[j] for j in source], [self.scales[j] for j in source], True)

    # ------------------------------------------------------------------ group laws
    def compose(self, first: "BlockGauge") -> "BlockGauge":
        """``self o first``: apply ``first``, then ``self``."""
        self._check_same(first)
        return BlockGauge(self.spec, [torch.gather(p1, 1, p2) for p1, p2 in zip(first.perms, self.perms)],
                          [s2 * torch.gather(s1, 1, p2) for s1, s2, p2 in zip(first.scales, self.scales, self.perms)],
                          self.split_streams)

    __matmul__ = compose

    def inverse(self) -> "BlockGauge":
        inv = [torch.argsort(p, dim=1) for p in self.perms]
        return BlockGauge(self.spec, inv, [1.0 / torch.gather(s, 1, i) for s, i in zip(self.scales, inv)],
                          self.split_streams)

    def _check_same(self, other: "BlockGauge") -> None:
        if other.spec != self.spec or other.split_streams != self.split_streams:
            raise ValueError("gauge elements of different networks (or split and unsplit streams)")

    # ------------------------------------------------------------------ symmetry
    def validate(self, atol: float = 1e-12) -> "BlockGauge":
        """Raise :class:`NotASymmetryError` naming the first site whose element is not in the gauge group."""
        for site, p, s in zip(self.plan.sites, self.perms, self.scales):
            where = f"site {site.label} ({site.role}, {site.scaling.value})"
            if not torch.equal(torch.sort(p, dim=1).values, torch.arange(site.width, device=p.device).expand_as(p)):
                raise ValueError(f"{where}: perms must be permutations of 0..{site.width - 1}")
            if not torch.equal(p, self.perms[site.perm_site]):
                raise NotASymmetryError(f"{where}: a norm's input must be permuted like its output (gamma, beta, mu, "
                                        "var move with the channels)")
            if not _allowed(site.scaling, p, s, atol):
                raise NotASymmetryError(f"{where} admits {_NEED[site.scaling]}, got {s.flatten()[:6].tolist()}...; "
                                        "use BlockGauge.sample(spec) for a symmetry, or apply(..., strict=False)")
        for edge in self.plan.shortcuts:
            a, b = edge.source, edge.target
            if not (torch.equal(self.perms[a], self.perms[b]) and torch.allclose(self.scales[a], self.scales[b],
                                                                                   rtol=atol, atol=0)):
                raise NotASymmetryError(f"block {edge.label}: the stream transforms differently before and after the "
                                        "identity shortcut, a constant edge of weight 1; a residual stream needs one "
                                        "permutation and one scaling for all its depths")
        return self

    def is_symmetry(self) -> bool:
        try:
            self.validate()
        except NotASymmetryError:
            return False
        return True

    def shortcut_edge_factors(self) -> tuple[Tensor, ...]:
        """Per identity shortcut ``[B, C]``: ``q_after / q_before``, the weight the constant shortcut edge would need
        for this (split) element to preserve the function (``forward(..., shortcut_weights=...)``); all ones iff the
        stream is shared. Needs the stream's permutation unchanged across the shortcut."""
        out = []
        for edge in self.plan.shortcuts:
            if not torch.equal(self.perms[edge.source], self.perms[edge.target]):
                raise ValueError(f"block {edge.label}: the stream is permuted differently before and after the "
                                 "shortcut, so no diagonal shortcut weight compensates")
            out.append(self.scales[edge.target] / self.scales[edge.source])
        return tuple(out)

    # ------------------------------------------------------------------ action
    def apply(self, bw: BlockWeights, strict: bool = True) -> BlockWeights:
        """Transform every network of ``bw`` (``B`` equal, or the element has ``B = 1``); ``strict`` first checks
        :meth:`validate`, ``strict=False`` applies any element (to show non-symmetries)."""
        if bw.spec != self.spec:
            raise ValueError(f"gauge element is for {self.spec.to_text()!r}, weights are {bw.spec.to_text()!r}")
        if self.batch_size not in (1, bw.batch_size):
            raise ValueError(f"gauge element has B={self.batch_size}, weights B={bw.batch_size}")
        if strict:
            self.validate()
        B = bw.batch_size
        perms = [p.to(bw.device).expand(B, -1) for p in self.perms]
        scales = [s.to(device=bw.device, dtype=bw.dtype).expand(B, -1) for s in self.scales]
        out = []
        for t, role in zip(bw.params, self.plan.params):
            t = _permute(t, 1, perms[role.rows]) * _along(scales[role.rows] ** role.power, 1, t)
            if role.sign_of is not None:
                t = t * _along(torch.sign(scales[role.sign_of]), 1, t)
            if role.cols is not None:
                t = _permute(t, 2, perms[role.cols]) / _along(scales[role.cols], 2, t)
            out.append(t)
        return BlockWeights(bw.spec, out)

    __call__ = apply


_NEED = {ScaleKind.FIXED: "the identity (input/output neurons)", ScaleKind.POSITIVE: "q > 0",
         ScaleKind.SIGN: "q = +-1", ScaleKind.NONE: "q = 1 (permutations only)",
         ScaleKind.PRENORM: "q != 0 per channel",
         ScaleKind.COMMON: "one common q != 0 for all features (LayerNorm is not invariant to per-neuron scalings of "
                           "its input)"}


def _allowed(kind: ScaleKind, p: Tensor, s: Tensor, atol: float) -> bool:
    """Is ``(p, s)`` in the group of a site of this kind (``p`` already checked against its ``perm_site``)?"""
    if kind is ScaleKind.FIXED:
        return torch.equal(p, torch.arange(p.shape[1], device=p.device).expand_as(p)) and bool(((s - 1).abs() <= atol)
                                                                                                .all())
    if kind is ScaleKind.POSITIVE:
        return bool((s > 0).all())
    if kind is ScaleKind.SIGN:
        return bool(((s.abs() - 1).abs() <= atol).all())
    if kind is ScaleKind.NONE:
        return bool(((s - 1).abs() <= atol).all())
    common = kind is ScaleKind.PRENORM or bool(((s - s[:, :1]).abs() <= atol * s[:, :1].abs()).all())
    return bool((s != 0).all()) and common


def _along(v: Tensor, axis: int, t: Tensor) -> Tensor:
    """``v [B, n]`` viewed to broadcast along ``axis`` of ``t``."""
    shape = [v.shape[0]] + [1] * (t.dim() - 1)
    shape[axis] = v.shape[1]
    return v.reshape(shape)


def _permute(t: Tensor, axis: int, perm: Tensor) -> Tensor:
    """``t`` with index ``i`` of ``axis`` taken from ``perm[b, i]`` (per network ``b``)."""
    return torch.gather(t, axis, _along(perm, axis, t).expand(*t.shape[:axis], perm.shape[1], *t.shape[axis + 1:]))


def _site_map(split: GaugePlan, plan: GaugePlan) -> list[int]:
    """For every site of the split plan, the site of ``plan`` its parameters use (same parameters, same roles)."""
    source = {0: 0}
    for a, b in zip(split.params, plan.params):
        source[a.rows] = b.rows
        if a.cols is not None:
            source[a.cols] = b.cols
    return [source[i] for i in range(len(split.sites))]


# ---------------------------------------------------------------- non-symmetries and the checker
NON_SYMMETRY_KINDS = ("layernorm_neuron_scale", "unshared_stream_scale", "batchnorm_sign_without_gamma",
                      "shortcut_edge_rescaled")


@dataclass(frozen=True, eq=False)
class NonSymmetry:
    """Transformed weights (and, for ``shortcut_edge_rescaled``, the rescaled constant shortcut weights to evaluate
    them with) that are *not* in the gauge group; :meth:`forward` evaluates them."""

    kind: str
    weights: BlockWeights
    shortcut_weights: tuple[Tensor, ...] | None = None

    def forward(self, x: Tensor, eps: float | None = None) -> Tensor:
        return self.weights.forward(x, eps=eps, shortcut_weights=self.shortcut_weights)


def _away_from_one(shape, generator, like: Tensor) -> Tensor:
    """Factors ``2^(+-1) * exp(U(-0.2, 0.2))``: positive, never close to 1."""
    sign = torch.randint(0, 2, shape, generator=generator).to(torch.float64) * 2 - 1
    noise = (2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1) * 0.2
    return torch.exp(sign * math.log(2.0) + noise).to(device=like.device, dtype=like.dtype)


def sample_non_symmetry(bw: BlockWeights, kind: str, generator: torch.Generator | None = None) -> NonSymmetry:
    """Transform ``bw`` by something that is *not* in its gauge group (on top of a random symmetry).

    Kinds:
        ``"layernorm_neuron_scale"``: a LayerNorm's input rescaled per neuron instead of by one common scalar.
        ``"unshared_stream_scale"``: one depth of a residual stream scaled differently from the others (its identity
            shortcut keeps its constant weight 1).
        ``"batchnorm_sign_without_gamma"``: channels of a BatchNorm's input negated (``W, b, mu``) with ``gamma``
            kept (flipping ``gamma`` too is a symmetry).
        ``"shortcut_edge_rescaled"``: every identity shortcut's constant edge rescaled (``shortcut_weights != 1``),
            as if it were an ordinary weight.
    """
    spec, B = bw.spec, bw.batch_size
    g = BlockGauge.sample(spec, B, generator, device=bw.device, dtype=bw.dtype)
    sites = g.plan.sites
    if kind == "layernorm_neuron_scale":
        idx = [i for i, s in enumerate(sites) if s.scaling is ScaleKind.COMMON]
        if not idx:
            raise ValueError(f"{spec.to_text()!r} has no LayerNorm")
        scales = list(g.scales)
        scales[idx[0]] = scales[idx[0]] * _away_from_one(scales[idx[0]].shape, generator, bw.params[0])
        return NonSymmetry(kind, BlockGauge(spec, g.perms, scales).apply(bw, strict=False))
    if kind == "unshared_stream_scale":
        g = g.split()
        targets = [e.target for e in g.plan.shortcuts if g.plan.sites[e.target].scaling is not ScaleKind.FIXED]
        if not targets:
            raise ValueError(f"{spec.to_text()!r} has no identity shortcut into a hidden stream")
        scales = list(g.scales)
        scales[targets[0]] = scales[targets[0]] * _away_from_one(scales[targets[0]].shape, generator, bw.params[0])
        return NonSymmetry(kind, BlockGauge(spec, g.perms, scales, True).apply(bw, strict=False))
    if kind == "batchnorm_sign_without_gamma":
        idx = [i for i, s in enumerate(sites) if s.scaling is ScaleKind.PRENORM]
        if not idx:
            raise ValueError(f"{spec.to_text()!r} has no BatchNorm")
        flip = BlockGauge.identity(spec, B, device=bw.device, dtype=bw.dtype)
        signs = torch.randint(0, 2, (B, sites[idx[0]].width), generator=generator).to(bw.dtype) * 2 - 1
        signs[:, 0] = -1
        scales = list(flip.scales)
        scales[idx[0]] = signs.to(bw.device)
        flipped = BlockGauge(spec, flip.perms, scales).apply(bw)  # W, b, mu and gamma negated: a symmetry
        gamma = next(r.name for r in g.plan.params if r.sign_of == idx[0])
        return NonSymmetry(kind, g.apply(flipped.replace_params({gamma: flipped.param(gamma) * scales[idx[0]]})))
    if kind == "shortcut_edge_rescaled":
        edges = g.plan.shortcuts
        if not edges:
            raise ValueError(f"{spec.to_text()!r} has no identity shortcut")
        factors = tuple(_away_from_one((B, sites[e.source].width), generator, bw.params[0]) for e in edges)
        return NonSymmetry(kind, g.apply(bw), factors)
    raise ValueError(f"unknown non-symmetry kind {kind!r}; choose from {NON_SYMMETRY_KINDS}")


def function_change(bw: BlockWeights, other: BlockWeights | NonSymmetry, x: Tensor, eps: float | None = 0.0) -> float:
    """``max |f_other(x) - f_bw(x)| / max |f_bw(x)|`` (``eps=0``: norms without ``eps``, for exact claims)."""
    f = bw.forward(x, eps=eps)
    g = other.forward(x, eps=eps)
    return float((g - f).abs().max() / f.abs().max().clamp_min(1e-300))


def block_invariance_error(spec: BlockNetworkSpec, gauge: BlockGauge | None = None, *, batch: int = 2,
                           n_inputs: int = 16, seed: int = 0, prenorm_sign: bool = True,
                           dtype: torch.dtype = torch.float64, device=None) -> float:
    """The shipped checker: :func:`function_change` under ``gauge`` (default: :meth:`BlockGauge.sample`) for random
    networks and inputs, with ``eps = 0``; about ``1e-15`` in float64 for a symmetry."""
    gen = torch.Generator().manual_seed(seed)
    bw = BlockWeights.randn(spec, batch, gen, device=device, dtype=dtype)
    shape = spec.input_shape or (spec.in_dim, 16)
    x = torch.randn(n_inputs, *shape, generator=gen, dtype=dtype).to(device)
    gauge = gauge or BlockGauge.sample(spec, batch, gen, prenorm_sign=prenorm_sign, device=device, dtype=dtype)
    return function_change(bw, gauge.apply(bw), x)
