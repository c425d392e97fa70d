r"""The ``gauge`` experiment's exact claims on block networks: residual blocks, BatchNorm and LayerNorm.

Every figure is computed, none typed: sympy nullities of the scaling constraints that a network's
:meth:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec.gauge_plan` implies (one row per identity-shortcut
coordinate, the rows of each norm's derived Lie algebra), the closed forms of
:mod:`scalegmn_lite.symbolic.residual`, float64 output changes under gauge elements and non-symmetries (norms with
``eps = 0``), and the block ScaleGMN's invariance and equivariance errors (:mod:`scalegmn_lite.nn.checks`). Every
claim is a *check* (``kind="check"``): it holds by derivation or construction when the code is right, and it can
fail: each one compares against a threshold or a second derivation (``tests/test_gauge_blocks.py`` breaks each).

Claims (:func:`block_claims`):
    ``residual-gauge-smaller-than-plain``: ``dim G_scale`` of residual networks (sympy nullity) equals
        ``sum h_i + d_s`` per stream, the plain twin's ``sum h_i + (n + 1) d_s``, and residual < plain.
    ``batchnorm-free-scaling``: BatchNorm's pre-norm per-channel scaling is a symmetry, adds its width to the
        dimension, and a sign flip without ``gamma`` is none.
    ``layernorm-single-scalar``: LayerNorm's pre-norm scaling algebra has dimension 1 (one common scalar).
    ``residual-scalegmn-exact``: ScaleGMN on block graphs is exactly invariant/equivariant under every gauge part.
    ``norm-affine-construction-not-equivariant``, ``plain-twin-graph-blind-to-shortcut``,
    ``layernorm-per-vertex-over-invariant``: the ablations of :data:`~scalegmn_lite.nn.block_graphs.VARIANTS`,
        measured where they fail; ``shortcut-edge-of-one-is-consistent``: the constant shortcut edge, which does not.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace
from typing import Sequence

import sympy as sp
import torch

from ..common.claims import Claim, claim
from ..nn.block_checks import gauge_parts_of, sample_gauge_part
from ..nn.block_graphs import EDGE_SHORTCUT, to_block_graph
from ..nn.block_scalegmn import BlockScaleGMN
from ..nn.checks import check_equivariance, check_invariance, check_sensitivity, default_tolerance
from ..nn.scalegmn import ScaleGMN
from ..symbolic.residual import (
    BN_CASES,
    LN_CASES,
    ResidualSizes,
    check_norm_symbolic,
    eps_invariance_error,
    gauge_dims_summary,
    layernorm_scaling_derivation,
    norm_forward,
    plain_dim_formula,
    prenorm_scaling,
    prenorm_sign_flip,
    random_norm_net,
    residual_dim_formula,
    residual_scaling_dims,
)
from ..weightspace.block_gauge import BlockGauge, NonSymmetry, function_change, sample_non_symmetry
from ..weightspace.block_parts import Norm, ResidualBlock
from ..weightspace.block_sites import ScaleKind
from ..weightspace.block_weights import BlockWeights
from ..weightspace.blocks import BlockNetworkSpec

__all__ = ["RESIDUAL_SPECS", "prenorm_scaling_algebra", "scaling_constraints", "derived_dims", "closed_form_dims",
           "strip_norms", "residual_dims_claim", "batchnorm_claim", "layernorm_claim", "scalegmn_exact_claim",
           "norm_affine_claim", "plain_twin_claim", "layernorm_per_vertex_claim", "shortcut_edge_claim",
           "block_claims"]

F64 = torch.float64
EXACT_FN = 1e-10  # relative output change of a network under a symmetry (float64, eps = 0)
CHANGED_FN = 1e-3  # ... under a non-symmetry: clearly nonzero
EXACT_GMN = default_tolerance(F64)  # 1e-9: ScaleGMN's relative invariance/equivariance error
DETECTED = 1e-6  # a ScaleGMN output change this large is no rounding (1000 x EXACT_GMN)
BROKEN_GMN = 1e-4  # the norm_affine ablation's error must be large, not merely nonzero
#: residual-scalegmn-exact's negative control: a non-symmetry must move the output by more than the tolerance that
#: calls it exact. Not DETECTED: an untrained invariant readout is weakly sensitive (down to ~1e-6 relative to its
#: output over seeds 0-3 and the reference specs), its equivariant updates move by O(1)
SEPARATES = EXACT_GMN

#: residual networks whose scaling dims are counted: identity streams (linear or with post-addition ReLU), a
#: projection shortcut starting a second stream, a conv1d ResNet; reference adds deeper and wider ones
RESIDUAL_SPECS = {
    "quick": [ResidualSizes(3, 2, (4,), 2), ResidualSizes(2, 1, (3, 2), 1, post_relu=True),
              ResidualSizes(4, 3, (2, 5, 3), 2, post_relu=True), "mlp 5-6-[7-6]x2-[8-4|proj]-[5-4]-3 relu",
              "conv1d 2-4-[3-4]x2-[5-6|proj]/3 k3 p1 relu 2x8"],
    "reference": [ResidualSizes(3, 5, (6, 6, 6, 6), 2), ResidualSizes(2, 2, (1, 4, 2, 3, 1), 3, post_relu=True),
                  "mlp 5-6-[7-6]x3-[8-4|proj]-[5-4]x2-[3-2|proj]-3 relu",
                  "conv1d 3-5-[4-5]x3-[6s2-2|projs2]-[3-2]/4 k3 p1 relu 3x16"],
}
BN_SPECS = {"quick": ["mlp 5-6bn-[7bn-6]-[5-4bn|projbn]-3 relu"],
            "reference": ["conv1d 2-4bn-[4bn-4bn]x2-[6s2bn-6bn|projs2bn]/5-3 k3 p1 relu 2x16"]}
LN_SPECS = {"quick": ["mlp 5-4ln-[3ln-4]-[3-3ln|projbn]-2 relu"], "reference": ["mlp 4-[4-4]-3ln-[4ln-3]x2-2 relu"]}
#: the block ScaleGMN is checked on these (residual + BatchNorm + LayerNorm), with ``{a}`` in relu, tanh
GMN_TEMPLATES = {"quick": ["mlp 5-6bn-[7ln-6bn]-[5-4ln|projbn]-3 {a}"],
                 "reference": ["mlp 4-[6-4]:identity-5ln-[3bn-5]x2-2 {a}",
                               "conv1d 2-4bn-[4bn-4bn]x2-[6s2bn-6bn|projs2bn]/5-3 k3 p1 {a} 2x16"]}
_CONTINUOUS = (ScaleKind.POSITIVE, ScaleKind.PRENORM, ScaleKind.COMMON)


def _specs(table: dict, reference: bool) -> list:
    return table["quick"] + (table["reference"] if reference else [])


# ---------------------------------------------------------------- derivations
@functools.lru_cache(maxsize=None)
def prenorm_scaling_algebra(kind: str, n: int) -> tuple[int, sp.Matrix, int]:
    """``(dim, basis [n, dim], n_equations)`` of the diagonal log-scalings ``u`` of a norm's input that leave its
    output unchanged to first order: ``d/dt norm(exp(t u) * z)|_{t=0} = 0`` identically in ``z`` (and ``mu``,
    ``var > 0`` for BatchNorm, whose statistics scale with it), the numerator's coefficients as linear equations
    in ``u``. BatchNorm: no equation, ``dim = n``. LayerNorm (``n >= 3``): ``u`` a multiple of ``1``; for ``n = 2``
    the identity is vacuous (use :func:`~scalegmn_lite.symbolic.residual.layernorm_scaling_derivation`)."""
    t = sp.Symbol("t", real=True)
    z, u = sp.symbols(f"z0:{n}", real=True), sp.symbols(f"u0:{n}", real=True)
    zt = [sp.exp(t * ui) * zi for ui, zi in zip(u, z)]
    if kind == "batchnorm":
        mu, var = sp.symbols(f"mu0:{n}", real=True), sp.symbols(f"var0:{n}", positive=True)
        out = [(zt[i] - sp.exp(t * u[i]) * mu[i]) / sp.sqrt(sp.exp(2 * t * u[i]) * var[i]) for i in range(n)]
        gens = (*z, *mu)
    elif kind == "layernorm":
        c = [zi - sum(zt) / n for zi in zt]
        out = [ci / sp.sqrt(sum(cj ** 2 for cj in c) / n) for ci in c]
        gens = z
    else:
        raise ValueError(f"kind must be 'batchnorm' or 'layernorm', got {kind!r}")
    eqs = []
    for o in out:
        num = sp.expand(sp.fraction(sp.together(sp.diff(o, t).subs(t, 0)))[0])
        eqs += sp.Poly(num, *gens).coeffs() if num != 0 else []
    if not eqs:
        return n, sp.eye(n), 0
    basis = sp.Matrix.hstack(*sp.linear_eq_to_matrix(eqs, u)[0].nullspace())
    return basis.shape[1], basis, len(eqs)


@functools.lru_cache(maxsize=None)
def _norm_rows(kind: str, n: int) -> sp.Matrix:
    """Equations ``R u = 0`` cutting a norm input's log-scalings down to its derived algebra (complement of the
    basis): BatchNorm from :func:`prenorm_scaling_algebra`, LayerNorm from ``layernorm_scaling_derivation``."""
    basis = prenorm_scaling_algebra(kind, n)[1] if kind == "batchnorm" else layernorm_scaling_derivation(n).basis
    comp = sp.Matrix(basis.T).nullspace()
    return sp.Matrix.vstack(*[v.T for v in comp]) if comp else sp.zeros(0, n)


def scaling_constraints(spec: BlockNetworkSpec, shortcuts: bool = True) -> tuple[sp.Matrix, list[tuple[int, int]]]:
    """``A u = 0`` on the log-scales ``u`` of every neuron of the plain twin's sites (``gauge_plan(split_streams=
    True)``) with continuous scalings (``units``: ``(site, index)``): per identity-shortcut coordinate ``k``
    (``shortcuts``) ``u_{after,k} - u_{before,k} = 0`` (a constant edge of weight 1), per norm input the rows of its
    derived algebra. ``dim G_scale = nullity(A)``; ``shortcuts=False``: the plain twin's."""
    plan = spec.gauge_plan(split_streams=True)
    units = [(i, k) for i, s in enumerate(plan.sites) if s.scaling in _CONTINUOUS for k in range(s.width)]
    col = {unit: j for j, unit in enumerate(units)}
    rows: list[dict[int, int]] = []
    for e in plan.shortcuts if shortcuts else ():
        for k in range(plan.sites[e.source].width):
            row = {col[(e.target, k)]: 1} if (e.target, k) in col else {}
            if (e.source, k) in col:
                row[col[(e.source, k)]] = row.get(col[(e.source, k)], 0) - 1
            rows.append(row)
    for i, site in enumerate(plan.sites):
        if site.scaling in (ScaleKind.PRENORM, ScaleKind.COMMON):
            R = _norm_rows(site.role, site.width)
            rows += [{col[(i, k)]: R[r, k] for k in range(site.width) if R[r, k] != 0} for r in range(R.rows)]
    A = sp.zeros(len(rows), len(units))
    for r, row in enumerate(rows):
        for j, v in row.items():
            A[r, j] = v
    return A, units


def derived_dims(spec: BlockNetworkSpec) -> tuple[int, int]:
    """``(dim G_scale, dim G_scale of the plain twin)``: exact sympy nullities of :func:`scaling_constraints`."""
    out = []
    for shortcuts in (True, False):
        A, units = scaling_constraints(spec, shortcuts)
        out.append(len(units) - (A.rank() if A.rows else 0))
    return out[0], out[1]


def closed_form_dims(spec: BlockNetworkSpec) -> tuple[int, int]:
    """``(residual, plain twin)`` from the closed forms, per stream ``sum h_i + d_s`` and ``sum h_i + (n + 1) d_s``
    (:func:`~scalegmn_lite.symbolic.residual.residual_dim_formula`, ``plain_dim_formula``), read off the spec's
    elements: a hidden layer starts a stream (``n = 0`` until an identity block reads it), an identity block adds
    its inner width ``h_i`` to the current stream, a projection block starts a new one (its inner widths count
    once in both). Networks of ReLU/identity layers and residual blocks with one inner layer, no norms."""
    streams: list[tuple[int, list[int]]] = []
    extra = 0
    for j, el in enumerate(spec.blocks):
        if isinstance(el, ResidualBlock):
            if any(isinstance(e, Norm) for e in el.elements):
                raise ValueError("closed_form_dims: networks without norms only")
            inner = [e.out_dim for e in el.branch[:-1]]
            if el.is_identity:
                if not streams or len(inner) != 1:
                    raise ValueError("closed_form_dims: an identity block needs a stream before it and one inner layer")
                streams[-1][1].append(inner[0])
            else:
                extra += sum(inner)
                streams.append((el.out_dim, []))
        elif isinstance(el, Norm):
            raise ValueError("closed_form_dims: networks without norms only")
        elif j < len(spec.blocks) - 1:
            streams.append((el.out_dim, []))
    return (sum(residual_dim_formula(d, h) for d, h in streams) + extra,
            sum(plain_dim_formula(d, h) for d, h in streams) + extra)


def strip_norms(spec: BlockNetworkSpec, kinds: Sequence[str] = ("batchnorm", "layernorm")) -> BlockNetworkSpec:
    """The same network without its norms of ``kinds`` (each one's activation moved onto the layer before it)."""
    def strip(elements):
        out = []
        for el in elements:
            if isinstance(el, Norm) and el.kind in kinds:
                out.append(replace(out.pop(), activation=el.activation, activation_param=el.activation_param))
            elif isinstance(el, ResidualBlock):
                out.append(replace(el, branch=strip(el.branch), shortcut=strip(el.shortcut)))
            else:
                out.append(el)
        return tuple(out)
    return BlockNetworkSpec(strip(spec.blocks), spec.input_shape)


def _log_scale_gauge(spec: BlockNetworkSpec, units, u: torch.Tensor) -> BlockGauge:
    """The pure scaling ``exp(u)`` on the plain twin's sites (``u [B, len(units)]``), identity elsewhere."""
    ident = BlockGauge.identity(spec, u.shape[0], split_streams=True, dtype=u.dtype)
    scales = [s.clone() for s in ident.scales]
    for j, (site, k) in enumerate(units):
        scales[site][:, k] = torch.exp(u[:, j])
    return BlockGauge(spec, ident.perms, scales, split_streams=True)


# ---------------------------------------------------------------- helpers
def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _weights(spec: BlockNetworkSpec, seed: int, batch: int = 2, device=None) -> BlockWeights:
    return BlockWeights.randn(spec.with_eps(0.0), batch, _gen(seed), device=device, dtype=F64)


def _inputs(spec: BlockNetworkSpec, seed: int, n: int = 16, device=None) -> torch.Tensor:
    return torch.randn(n, *spec.input_shape, generator=_gen(seed), dtype=F64).to(device)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _model(head: str, bidirectional: bool, seed: int, device=None) -> ScaleGMN:
    torch.manual_seed(seed)
    return ScaleGMN(hidden_dim=8, num_layers=2, head=head, bidirectional=bidirectional, max_layers=32,
                    max_kernel=3).double().to(device)


def _net(model, variant: str):
    return model if variant == "exact" else BlockScaleGMN(model, variant)


def _check(head: str):
    return check_invariance if head == "invariant" else check_equivariance


def _part_errors(net, bw, head: str, seed: int, n_samples: int = 2) -> dict[str, float]:
    return {p: _check(head)(net, bw, n_samples, _gen(seed), part=p).max_relative for p in gauge_parts_of(bw.spec)}


def _sym_verdicts(kind: str, cases: dict[str, bool]) -> tuple[dict[str, bool], bool]:
    got = {case: bool(check_norm_symbolic(kind, case).is_zero) for case in cases}
    return got, got == cases


# ---------------------------------------------------------------- 1. residual vs plain
def residual_dims_claim(specs: Sequence, seed: int = 0, device=None) -> Claim:
    """``residual-gauge-smaller-than-plain`` on ``specs`` (:class:`ResidualSizes` or block texts without norms)."""
    dims, agree, keep, twin_keep, moves = [], True, 0.0, 0.0, math.inf
    for i, item in enumerate(specs):
        spec = item.block_spec() if isinstance(item, ResidualSizes) else BlockNetworkSpec.from_text(item)
        res, plain = derived_dims(spec)
        forms = closed_form_dims(spec)
        agree &= (res, plain) == forms == (spec.scale_dim, spec.gauge_plan(split_streams=True).scale_dim)
        if isinstance(item, ResidualSizes):  # symbolic.residual's own constraint matrix over its unit labels
            d = residual_scaling_dims(item, exact=True)
            agree &= (d.dim_residual, d.dim_plain, d.formula_residual, d.formula_plain) == (res, plain, *forms)
        dims.append([spec.to_text(), res, plain])
        # the nullities are the function's: a random element of each null space, exponentiated
        bw, x, gen = _weights(spec, seed + i, device=device), _inputs(spec, seed + i, device=device), _gen(seed + i)
        for shortcuts in (True, False):
            A, units = scaling_constraints(spec, shortcuts)
            basis = torch.tensor(sp.Matrix.hstack(*A.nullspace()).tolist() if A.rows else
                                 torch.eye(len(units)).tolist(), dtype=F64)
            u = (2 * torch.rand(bw.batch_size, basis.shape[1], generator=gen, dtype=F64) - 1) @ basis.T
            moved = _log_scale_gauge(spec, units, u).apply(bw, strict=False)
            if shortcuts:
                keep = max(keep, function_change(bw, moved, x))
            else:  # a plain-twin element keeps the twin (shortcut weights 0) and changes the residual network
                zero = (0.0,) * len(spec.gauge_plan().shortcuts)
                twin_keep = max(twin_keep, function_change(NonSymmetry("plain twin", bw, zero),
                                                           NonSymmetry("plain twin", moved, zero), x))
                moves = min(moves, function_change(bw, moved, x))
    holds = agree and all(r < p for _, r, p in dims) and max(keep, twin_keep) <= EXACT_FN and moves >= CHANGED_FN
    return claim(
        "residual-gauge-smaller-than-plain",
        "dim G_scale of residual networks (identity streams, post-addition ReLU, a projection shortcut, conv1d) as "
        "the exact sympy nullity of the scaling constraints (one row per identity-shortcut coordinate) equals sum "
        "h_i + d_s per stream and spec.scale_dim; the plain twin's (no shortcut rows) equals sum h_i + (n+1) d_s; "
        "residual < plain. A random element of each null space keeps the network's (resp. the twin's) function; "
        "a plain-twin element changes the residual network's; dims: [spec, residual, plain]",
        {"dims": dims, "closed_forms_agree": agree, "residual_element_max_change": keep,
         "twin_element_on_twin_max_change": twin_keep, "twin_element_on_residual_min_change": moves},
        holds=holds, target=f"nullity = closed form = scale_dim, residual < plain, kept <= {EXACT_FN:g}, "
                            f"moved >= {CHANGED_FN:g}")


# ---------------------------------------------------------------- 2./3. BatchNorm and LayerNorm
def _norm_dims(kind: str, specs: Sequence[str]) -> tuple[list, bool]:
    """Per spec ``[text, sum of BN widths (or #LN), gain]``: the gain of the sympy nullity over the same network
    without its norms of ``kind`` must equal that count, the gain of ``spec.scale_dim`` and its ``kind`` term."""
    rows, ok = [], True
    for text in specs:
        spec = BlockNetworkSpec.from_text(text)
        bare = strip_norms(spec, (kind,))
        want = sum(n.width if kind == "batchnorm" else 1 for n in spec.norms if n.kind == kind)
        gain = derived_dims(spec)[0] - derived_dims(bare)[0]
        ok &= gain == want == spec.scale_dim - bare.scale_dim == spec.scale_dim_terms[kind]
        rows.append([spec.to_text(), want, gain])
    return rows, ok


def _block_norm_changes(specs, symmetry, non_symmetry: str, seed: int, device, n_samples: int = 3):
    """Max change under ``symmetry(bw, gen)`` and min change under the non-symmetry kind, over specs and samples."""
    keep, moves = 0.0, math.inf
    for i, text in enumerate(specs):
        spec = BlockNetworkSpec.from_text(text)
        bw, x = _weights(spec, seed + i, device=device), _inputs(spec, seed + i, device=device)
        gen = _gen(seed + 100 + i)
        for _ in range(n_samples):
            keep = max(keep, function_change(bw, symmetry(bw, gen), x))
            moves = min(moves, function_change(bw, sample_non_symmetry(bw, non_symmetry, gen), x))
    return keep, moves


def _parts(*parts: str):
    """``(bw, gen) ->`` ``bw`` moved by a random element of each gauge part in turn (each one validated)."""
    def move(bw: BlockWeights, gen: torch.Generator) -> BlockWeights:
        for part in parts:
            bw = sample_gauge_part(bw.spec, part, bw.batch_size, gen, device=bw.device).apply(bw)
        return bw
    return move


def batchnorm_claim(specs: Sequence[str], widths: Sequence[int] = (2, 3, 5), seed: int = 0, device=None,
                    symmetry=None) -> Claim:
    """``batchnorm-free-scaling``; ``symmetry(bw, gen)``: the transformation checked to keep the function
    (default: the ``batchnorm_scale`` and ``batchnorm_sign`` parts, :mod:`~scalegmn_lite.nn.block_checks`)."""
    algebra = {str(w): prenorm_scaling_algebra("batchnorm", w)[0] for w in widths}  # str keys: as in the JSON
    summary = {str(w): gauge_dims_summary(2, [3], w) for w in widths}
    summary_ok = all(s["batchnorm_free_scales"] == s["batchnorm_layer"] - s["plain_relu_layer"] == algebra[w]
                     for w, s in summary.items())
    rows, dims_ok = _norm_dims("batchnorm", specs)
    verdicts, sym_ok = _sym_verdicts("batchnorm", BN_CASES)
    keep, moves = _block_norm_changes(specs, symmetry or _parts("batchnorm_scale", "batchnorm_sign"),
                                      "batchnorm_sign_without_gamma", seed, device)
    gen = _gen(seed + 7)  # the one-layer NormNet of symbolic.residual: per-channel d > 0, signs without gamma
    net = random_norm_net("batchnorm", 4, 6, 3, gen, device=device)
    x = torch.randn(64, 4, generator=gen, dtype=F64).to(device)
    f = norm_forward(net, x)
    d = torch.exp(2 * torch.rand(6, generator=gen, dtype=F64) - 1).to(device)
    keep = max(keep, _rel(norm_forward(prenorm_scaling(net, d), x), f))
    signs = [-1, 1, -1, 1, 1, -1]
    keep = max(keep, _rel(norm_forward(prenorm_sign_flip(net, signs, flip_gamma=True), x), f))
    moves = min(moves, _rel(norm_forward(prenorm_sign_flip(net, signs, flip_gamma=False), x), f))
    eps = eps_invariance_error("batchnorm", 1e-3, 2.0, seed=seed)
    holds = (all(algebra[str(w)] == w for w in widths) and summary_ok and dims_ok and sym_ok and keep <= EXACT_FN
             and moves >= CHANGED_FN and 0 < eps.measured <= eps.bound)
    return claim(
        "batchnorm-free-scaling",
        "BatchNorm (eval, eps = 0): the pre-norm per-channel scaling W, b, mu -> D W, D b, D mu, var -> D^2 var "
        "(D > 0, and sign flips D < 0 with gamma -> sign(D) gamma) keeps the function (float64, block networks and "
        "the one-layer NormNet); its sympy algebra (d/dt bn(e^{tu} z) = 0) has dimension = width, so it adds the BN "
        "width to dim G_scale (nullity gain over the network without norms = spec term = gauge_dims_summary); sympy "
        "verdicts of every BN case match; negating channels without gamma changes the function; with eps > 0 the "
        "deviation stays within its a-priori bound",
        {"algebra_dim_by_width": algebra, "dims": rows, "sympy_cases": verdicts, "symmetry_max_change": keep,
         "sign_without_gamma_min_change": moves, "eps_1e-3_deviation": eps.measured, "eps_1e-3_bound": eps.bound},
        holds=holds, target=f"algebra dim = width, gain = BN width, sympy verdicts as BN_CASES, kept <= "
                            f"{EXACT_FN:g}, sign without gamma >= {CHANGED_FN:g}, eps deviation <= bound")


def layernorm_claim(specs: Sequence[str], widths: Sequence[int] = (3, 4), seed: int = 0, device=None,
                    symmetry=None) -> Claim:
    """``layernorm-single-scalar``; ``symmetry(bw, gen)`` as in :func:`batchnorm_claim` (default: the common
    scalar and sign, the ``layernorm_scale`` and ``layernorm_sign`` parts)."""
    derivation = {str(w): layernorm_scaling_derivation(w) for w in widths}  # str keys: as in the JSON
    by_identity = {w: d.dim for w, d in derivation.items()}
    by_derivative = {str(w): prenorm_scaling_algebra("layernorm", w)[0] for w in widths}
    ones = all(d.basis.shape[1] == 1 and len(set(d.basis)) == 1 for d in derivation.values())
    summary_ok = all(gauge_dims_summary(2, [3], w, derive_layernorm=True)["layernorm_free_scales"] == 1
                     for w in widths[:1])
    rows, dims_ok = _norm_dims("layernorm", specs)
    verdicts, sym_ok = _sym_verdicts("layernorm", LN_CASES)
    keep, moves = _block_norm_changes(specs, symmetry or _parts("layernorm_scale", "layernorm_sign"),
                                      "layernorm_neuron_scale", seed, device)
    gen = _gen(seed + 8)
    net = random_norm_net("layernorm", 4, 5, 3, gen, device=device)
    x = torch.randn(64, 4, generator=gen, dtype=F64).to(device)
    f = norm_forward(net, x)
    keep = max(keep, _rel(norm_forward(prenorm_scaling(net, 2.7), x), f))
    d = torch.tensor([1.0, 4.0, 0.5, 1.0, 2.0], dtype=F64, device=device)
    moves = min(moves, _rel(norm_forward(prenorm_scaling(net, d), x), f))
    eps = eps_invariance_error("layernorm", 1e-3, 2.0, seed=seed)
    holds = (all(v == 1 for v in by_identity.values()) and by_derivative == by_identity and ones and summary_ok
             and dims_ok and sym_ok and keep <= EXACT_FN and moves >= CHANGED_FN and 0 < eps.measured <= eps.bound)
    return claim(
        "layernorm-single-scalar",
        "LayerNorm (eps = 0): the Lie algebra of pre-norm diagonal scalings has dimension 1, spanned by (1, ..., 1) "
        "(sympy, two derivations: the polynomial identity |Pz|^2 P(u*z) = Pz <Pz, u*z> and d/dt ln(e^{tu} z) = 0), "
        "so each LayerNorm adds 1 to dim G_scale (nullity gain = #LayerNorms = spec term); sympy verdicts of every "
        "LN case match; one common scalar (with its sign on gamma) keeps the function (float64), a per-neuron "
        "scaling changes it; with eps > 0 the deviation stays within its a-priori bound",
        {"algebra_dim_by_width": by_identity, "algebra_dim_by_derivative": by_derivative, "dims": rows,
         "sympy_cases": verdicts, "common_scalar_max_change": keep, "per_neuron_min_change": moves,
         "eps_1e-3_deviation": eps.measured, "eps_1e-3_bound": eps.bound},
        holds=holds, target=f"dim 1 by both derivations, gain = #LN, sympy verdicts as LN_CASES, kept <= "
                            f"{EXACT_FN:g}, per-neuron >= {CHANGED_FN:g}, eps deviation <= bound")


# ---------------------------------------------------------------- 4. the block ScaleGMN
@torch.no_grad()
def scalegmn_exact_claim(templates: Sequence[str], acts: Sequence[str] = ("relu", "tanh"),
                         bidirectional: Sequence[bool] = (True,), seed: int = 0, device=None,
                         variant: str = "exact") -> Claim:
    """``residual-scalegmn-exact``: every gauge part (:func:`~scalegmn_lite.nn.block_checks.gauge_parts_of`) and
    full random elements, invariant and equivariant heads; ``variant``: the graph construction measured."""
    parts: dict[str, float] = {}
    full, sens, specs, by_head = 0.0, {}, [], {"invariant": math.inf, "equivariant": math.inf}
    for i, template in enumerate(templates):
        for act in acts:
            spec = BlockNetworkSpec.from_text(template.format(a=act))
            bw = _weights(spec, seed + i, device=device)
            specs.append(spec.to_text())
            for head in ("invariant", "equivariant"):
                for bid in bidirectional:
                    net = _net(_model(head, bid, seed, device), variant)
                    for part, err in _part_errors(net, bw, head, seed + 1).items():
                        parts[part] = max(parts.get(part, 0.0), err)
                    full = max(full, _check(head)(net, bw, 2, _gen(seed + 2)).max_relative)
                    for kind, change in check_sensitivity(net, bw, generator=_gen(seed + 3)).items():
                        sens[kind] = min(sens.get(kind, math.inf), change)
                        by_head[head] = min(by_head[head], change)
    worst = max(full, *parts.values())
    holds = worst <= EXACT_GMN and min(sens.values()) > SEPARATES
    return claim(
        "residual-scalegmn-exact",
        "ScaleGMN on block graphs (invariant and equivariant heads, bidirectional) is exactly invariant / "
        "equivariant, float64 relative error <= 1e-9, under every part of the gauge group (stream and hidden "
        "permutations and scalings, BatchNorm scales and signs, LayerNorm scalar and sign) and under full random "
        "elements, on residual networks with BatchNorm and LayerNorm (relu and tanh, eps = 0); every non-symmetry "
        "(per-neuron LayerNorm scaling, unshared stream scaling, BatchNorm sign without gamma, rescaled shortcut "
        "edge) changes its output by more than that tolerance, so the check tells them apart (an untrained "
        "invariant readout moves little: see the smallest change per head)",
        {"specs": specs, "max_rel_error": worst, "per_part_max": parts, "full_element_max": full,
         "non_symmetry_min_change": sens, "non_symmetry_min_change_by_head": by_head},
        holds=holds, target=f"errors <= {EXACT_GMN:g} < every non-symmetry's change")


# ---------------------------------------------------------------- 5. ablations, measured
_ALL_KINDS = "mlp 5-6bn-[7ln-6bn]-[5-4ln|projbn]-3 relu"  # every gauge part and every non-symmetry


@torch.no_grad()
def norm_affine_claim(text: str = _ALL_KINDS, seed: int = 0, device=None, variant: str = "norm_affine") -> Claim:
    """``norm-affine-construction-not-equivariant``: norms fed as elementwise affine layers."""
    bw = _weights(BlockNetworkSpec.from_text(text), seed, device=device)
    errors = {head: _part_errors(_net(_model(head, True, seed, device), variant), bw, head, seed + 1, n_samples=3)
              for head in ("invariant", "equivariant")}
    norm_parts = [p for p in errors["invariant"] if p.startswith(("batchnorm", "layernorm"))]
    per_part = {p: max(e[p] for e in errors.values()) for p in norm_parts}  # the larger of the two heads
    chain_max = max(err for e in errors.values() for p, err in e.items() if p not in norm_parts)
    invariant_min = min(errors["invariant"][p] for p in norm_parts)
    return claim(
        "norm-affine-construction-not-equivariant",
        "ablation: a norm fed to ScaleGMN as an elementwise affine layer (edge gamma, statistics ignored, its input "
        "an ordinary hidden layer) is not equivariant to the norms' free scalings and sign flips: under every "
        "BatchNorm and LayerNorm part its relative error (the larger of the invariant and equivariant heads') is "
        "large, while the stream and hidden parts stay exact; the invariant head alone errs less (smallest shown)",
        {"norm_parts_min_rel_error": min(per_part.values()), "per_norm_part": per_part,
         "invariant_head_min_rel_error": invariant_min, "stream_hidden_max_rel_error": chain_max},
        holds=min(per_part.values()) > BROKEN_GMN and chain_max <= EXACT_GMN,
        target=f"every norm part > {BROKEN_GMN:g}, stream/hidden parts <= {EXACT_GMN:g}")


@torch.no_grad()
def plain_twin_claim(texts: Sequence[str] = ("mlp 5-6-[7-6]x2-3 relu",), seed: int = 0, device=None,
                     variant: str = "plain_twin") -> Claim:
    """``plain-twin-graph-blind-to-shortcut``: the graph without the identity shortcuts."""
    same, differ, exact_sep, equiv = 0.0, math.inf, math.inf, 0.0
    for i, text in enumerate(texts):
        spec = BlockNetworkSpec.from_text(text)
        bw, x = _weights(spec, seed + i, device=device), _inputs(spec, seed + i, device=device)
        plain = NonSymmetry("the plain twin", bw, (0.0,) * len(spec.gauge_plan().shortcuts))  # same weights
        twin, exact = _net(_model("invariant", True, seed, device), variant), _model("invariant", True, seed, device)
        same = max(same, _rel(twin(plain), twin(bw)))
        differ = min(differ, function_change(bw, plain, x))
        exact_sep = min(exact_sep, _rel(exact(plain), exact(bw)))
        equiv = max(equiv, *_part_errors(twin, bw, "invariant", seed + 1).values())
    return claim(
        "plain-twin-graph-blind-to-shortcut",
        "ablation: the graph without the identity shortcut edges (the plain twin's graph) is exactly invariant to "
        "the gauge but blind to the shortcut: a residual network and its plain twin (same weights, shortcuts "
        "removed), whose functions differ, get the same output; the exact graph separates them",
        {"twin_graph_rel_output_diff": same, "function_rel_diff": differ, "exact_graph_rel_output_diff": exact_sep,
         "twin_graph_gauge_max_rel_error": equiv},
        holds=same <= EXACT_GMN and differ > 0.1 and exact_sep >= DETECTED and equiv <= EXACT_GMN,
        target=f"same output <= {EXACT_GMN:g} for functions differing > 0.1; exact graph >= {DETECTED:g}")


@torch.no_grad()
def layernorm_per_vertex_claim(text: str = "mlp 4-6-[6ln-6]x2-3 relu", seed: int = 0, device=None,
                               variant: str = "layernorm_per_vertex") -> Claim:
    """``layernorm-per-vertex-over-invariant``: per-vertex views of a LayerNorm's input."""
    spec = BlockNetworkSpec.from_text(text)
    bw, x = _weights(spec, seed, batch=3, device=device), _inputs(spec, seed, device=device)
    other = sample_non_symmetry(bw, "layernorm_neuron_scale", _gen(seed + 14))  # gamma kept: another function
    per_vertex, exact = _net(_model("invariant", True, seed, device), variant), _model("invariant", True, seed, device)
    same, differ = _rel(per_vertex(other), per_vertex(bw)), function_change(bw, other, x)
    pooled = _rel(exact(other), exact(bw))
    equiv = max(_part_errors(per_vertex, bw, "invariant", seed + 1).values())
    return claim(
        "layernorm-per-vertex-over-invariant",
        "ablation: per-vertex views of a LayerNorm's input (each neuron normalised alone) stay invariant to the "
        "gauge but are over-invariant: two LayerNorm networks with different functions (the input rescaled per "
        "neuron, gamma kept) get the same output; the exact pooled (layer-level) views separate them",
        {"per_vertex_rel_output_diff": same, "function_rel_diff": differ, "pooled_rel_output_diff": pooled,
         "per_vertex_gauge_max_rel_error": equiv},
        holds=same <= EXACT_GMN and differ >= CHANGED_FN and pooled >= DETECTED and equiv <= EXACT_GMN,
        target=f"same output <= {EXACT_GMN:g} for functions differing >= {CHANGED_FN:g}; pooled >= {DETECTED:g}")


@torch.no_grad()
def shortcut_edge_claim(text: str = "mlp 5-6-[7-6]x2-3 relu", seed: int = 0, device=None) -> Claim:
    """``shortcut-edge-of-one-is-consistent``: the identity shortcut as an ordinary edge of constant weight 1."""
    spec = BlockNetworkSpec.from_text(text)
    bw, x = _weights(spec, seed, device=device), _inputs(spec, seed, device=device)
    g = BlockGauge.sample(spec, bw.batch_size, _gen(seed + 8), device=device)
    graph = to_block_graph(g.apply(bw))
    edge_dev = float((graph.edge_attr[graph.edge_type == EDGE_SHORTCUT, 0] - 1).abs().max())
    split = BlockGauge.sample(spec, bw.batch_size, _gen(seed + 9), permute=False, split_streams=True, device=device)
    moved = split.apply(bw, strict=False)  # one scaling per depth: no symmetry of the residual network
    compensated = NonSymmetry("per-depth scaling, shortcut edge q_{t+1}/q_t", moved, split.shortcut_edge_factors())
    fn = function_change(bw, compensated, x)
    inv, eq = _model("invariant", True, seed, device), _model("equivariant", True, seed, device)
    inv_err = _rel(inv(compensated), inv(bw))
    want = split.apply(eq(bw), strict=False)
    eq_err = float((eq(compensated).flatten() - want.flatten()).abs().max() / want.flatten().abs().max())
    detected = _rel(inv(moved), inv(bw))
    holds = (edge_dev == 0 and not split.is_symmetry() and fn <= EXACT_FN and max(inv_err, eq_err) <= EXACT_GMN
             and detected >= DETECTED)
    return claim(
        "shortcut-edge-of-one-is-consistent",
        "the identity shortcut fed to ScaleGMN as an ordinary edge of constant weight 1 is consistent, not a "
        "failure: under the true gauge (one scaling per stream) the edge stays exactly 1; under per-depth stream "
        "scalings with the edge rescaled to q_{t+1}/q_t (function kept) ScaleGMN stays exactly invariant and "
        "equivariant; without the rescaling (no symmetry) its output changes",
        {"shortcut_edge_max_dev_from_1": edge_dev, "compensated_function_change": fn,
         "invariant_rel_error": inv_err, "equivariant_rel_error": eq_err, "uncompensated_rel_change": detected},
        holds=holds, target=f"edge = 1, errors <= {EXACT_GMN:g}, uncompensated >= {DETECTED:g}")


# ---------------------------------------------------------------- all of them
def block_claims(reference: bool = False, seed: int = 0, device=None) -> tuple[list[Claim], dict[str, float]]:
    """The claims above (quick sizes; ``reference`` adds specs) and the seconds each took."""
    import time

    mode = "reference" if reference else "quick"
    jobs = [
        ("residual-gauge-smaller-than-plain", lambda: residual_dims_claim(_specs(RESIDUAL_SPECS, reference), seed,
                                                                          device)),
        ("batchnorm-free-scaling", lambda: batchnorm_claim(_specs(BN_SPECS, reference),
                                                           (2, 3, 5, 8) if reference else (2, 3, 5), seed, device)),
        ("layernorm-single-scalar", lambda: layernorm_claim(_specs(LN_SPECS, reference),
                                                            (3, 4, 5) if reference else (3, 4), seed, device)),
        ("residual-scalegmn-exact", lambda: scalegmn_exact_claim(
            _specs(GMN_TEMPLATES, reference), bidirectional=(True, False) if reference else (True,), seed=seed,
            device=device)),
        ("norm-affine-construction-not-equivariant", lambda: norm_affine_claim(seed=seed, device=device)),
        ("plain-twin-graph-blind-to-shortcut", lambda: plain_twin_claim(
            ("mlp 5-6-[7-6]x2-3 relu",) + ((_ALL_KINDS,) if mode == "reference" else ()), seed, device)),
        ("layernorm-per-vertex-over-invariant", lambda: layernorm_per_vertex_claim(seed=seed, device=device)),
        ("shortcut-edge-of-one-is-consistent", lambda: shortcut_edge_claim(seed=seed, device=device)),
    ]
    claims, seconds = [], {}
    for name, job in jobs:
        t0 = time.perf_counter()
        claims.append(job())
        seconds[name] = round(time.perf_counter() - t0, 2)
    return claims, seconds
