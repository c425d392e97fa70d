"""Experiment ``gauge``: the gauge group derived in sympy and checked numerically.

Claims:
    ``relu-positive-scaling``, ``tanh-sign-flips``, ``sigmoid-permutation-only``: the solution sets
        of ``sigma(q x) = q sigma(x)`` derived in sympy, and the symmetry they imply equals the spec's.
    ``gauge-preserves-function``: max relative output change of random networks (MLP, conv1d,
        conv2d, SIREN; every activation; float64) under random gauge elements.
    ``non-symmetries-change-function``: the smallest relative output change under non-symmetries
        (uncoupled permutations, mismatched and wrong scalings): the check above is not vacuous.
    ``cnn-gauge-strictly-smaller``: ``(size, dim G_scale(CNN), dim G_scale(MLP))`` per size; holds
        when every non-degenerate size is strictly smaller.
    Block networks (:mod:`.gauge_blocks`): ``residual-gauge-smaller-than-plain``, ``batchnorm-free-scaling``,
        ``layernorm-single-scalar``, ``residual-scalegmn-exact``, the ablations
        ``norm-affine-construction-not-equivariant``, ``plain-twin-graph-blind-to-shortcut``,
        ``layernorm-per-vertex-over-invariant`` and ``shortcut-edge-of-one-is-consistent``.

Every claim is a check (``kind="check"``): exact by derivation or construction when the code is right.
"""

from __future__ import annotations

import math
import random

import sympy as sp
import torch

from ..common.claims import claim
from ..symbolic.activations import derive_all
from ..symbolic.conv import (
    check_conv_scaling_numerically,
    conv_output_size,
    network_index,
    network_scaling_dims,
)
from ..symbolic.mlp import check_gauge_invariance, sample_symbolic_gauge
from ..weightspace.gauge import GaugeElement, sample_non_symmetry
from ..weightspace.spec import ACTIVATIONS, NetworkSpec, Symmetry, symmetry_of
from ..weightspace.weights import WeightSpace, batched_forward
from . import RunContext, experiment
from .gauge_blocks import block_claims

__all__ = ["run", "random_specs", "CNN_SIZES_QUICK", "CNN_SIZES_FULL"]

#: network layouts (with input shapes) whose scaling-gauge dimensions are counted
CNN_SIZES_QUICK = [
    "conv1d 1-1-1/2 k2 relu 1x4",
    "conv1d 1-4-4/3 k3 relu 1x16",
    "conv1d 1-4-4/3 k3 s2 p1 relu 1x16",
    "conv1d 1-8-8/10 k3 relu 1x40",
    "conv1d 1-4-4/3 k3 relu 1x5",
    "conv2d 1-4-4/3 k3 relu 1x8x8",
    "conv2d 1-8-8/10 k3 p1 relu 1x8x8",
    "conv1d 2-4/3 k4 relu 2x4",  # degenerate: the kernel covers the input, one position
]
CNN_SIZES_FULL = CNN_SIZES_QUICK + [
    "conv1d 1-16-16-16/10 k5 relu 1x64",
    "conv2d 1-8-16/10 k3 s2 p1 relu 1x28x28",
    "conv2d 3-16-16/10 k3 relu 3x16x16",
    "conv2d 1-4-4-4/2 k2 relu 1x4x4",
]


def random_specs(n: int, seed: int = 0, min_width: int = 1, max_width: int = 8) -> list[NetworkSpec]:
    """``n`` random layouts cycling through mlp / conv1d / conv2d / siren and every activation:
    depth 2-4, widths ``min_width..max_width``, kernels 1-3 (with input shapes)."""
    rng = random.Random(seed)
    acts = list(ACTIVATIONS)
    out, j = [], 0
    for i in range(n):
        family = ("mlp", "conv1d", "conv2d", "siren")[i % 4]
        act = "sine" if family == "siren" else acts[j % len(acts)]
        j += family != "siren"
        depth = rng.randint(2, 4)
        widths = [rng.randint(min_width, max_width) for _ in range(depth + 1)]
        w = "-".join(map(str, widths))
        if family in ("mlp", "siren"):
            text = f"{family} {w} {act}" if family == "mlp" else f"siren {w}"
        else:
            k = rng.randint(1, 3)
            n_conv = rng.randint(1, depth - 1)
            conv_w, dense_w = widths[: n_conv + 1], widths[n_conv + 1:]
            size = rng.randint(k + 2, 10)
            shape = f"{conv_w[0]}x{size}" if family == "conv1d" else f"{conv_w[0]}x{size}x{size}"
            text = (f"{family} {'-'.join(map(str, conv_w))}/{'-'.join(map(str, dense_w))} k{k} "
                    f"p{rng.randint(0, 1)} {act} {shape}")
        out.append(NetworkSpec.from_text(text))
    return out


def _inputs(spec: NetworkSpec, n: int, generator: torch.Generator, device) -> torch.Tensor:
    shape = spec.input_shape if spec.family != "mlp" else (spec.widths[0],)
    return torch.randn(n, *shape, generator=generator, dtype=torch.float64).to(device)


def _rel_change(ws_a: WeightSpace, ws_b: WeightSpace, x: torch.Tensor) -> torch.Tensor:
    """Per network: ``max |f_b(x) - f_a(x)| / max |f_a(x)|`` (``[B]``)."""
    ya, yb = batched_forward(ws_a, x), batched_forward(ws_b, x)
    return (yb - ya).flatten(1).abs().max(1).values / ya.flatten(1).abs().max(1).values.clamp_min(1e-300)


@experiment("gauge")
def run(ctx: RunContext) -> dict:
    device = ctx.device
    gen = torch.Generator().manual_seed(ctx.seed)

    # (a) which scalings commute with each activation
    derived = derive_all()
    sets = {name: str(sol.solutions) for name, sol in derived.items()}
    spec_ok = {name: sol.matches_spec for name, sol in derived.items()}

    def group_claim(cid: str, names: list[str], want: sp.Set, text: str):
        measured = {n: sets[n] for n in names}
        holds = all(derived[n].solutions == want and spec_ok[n] for n in names)
        return claim(cid, text, measured, holds=holds, target=f"{want} and spec.symmetry_of agrees")

    claims = [
        group_claim("relu-positive-scaling", ["relu", "leaky_relu"], sp.Interval.open(0, sp.oo),
                    "sympy: relu(qx) = q relu(x) for all x iff q > 0 (also LeakyReLU)"),
        group_claim("tanh-sign-flips", ["tanh", "sine"], sp.FiniteSet(-1, 1),
                    "sympy: tanh(qx) = q tanh(x) for all x iff q = +-1 (also SIREN sin(w0 x), w0 = 30)"),
        group_claim("sigmoid-permutation-only", ["sigmoid", "gelu", "silu"], sp.FiniteSet(1),
                    "sympy: sigmoid/GELU/SiLU commute with no scaling but q = 1 (permutations only)"),
    ]

    # (b) symbolic MLP: the action preserves the function, a non-symmetry does not
    symbolic = {}
    for act in ACTIVATIONS:
        spec = NetworkSpec.from_text(f"mlp 3-3-3-2 {act}")
        perms, scales = sample_symbolic_gauge(spec, seed=ctx.seed)
        ok = check_gauge_invariance(spec, perms, scales)
        bad_q = 2 if symmetry_of(act) is Symmetry.SIGN else -1
        wrong = [[sp.Integer(bad_q), *s[1:]] for s in scales]
        neg = check_gauge_invariance(spec, perms, wrong)
        unc = check_gauge_invariance(spec, perms, scales, uncoupled=True)
        symbolic[act] = {"invariant": ok.is_zero, "wrong_scaling_zero": neg.is_zero,
                         "wrong_scaling_numeric": neg.numeric_max_abs, "uncoupled_zero": unc.is_zero}

    # gauge-preserves-function / non-symmetries on random architectures (float64, batched)
    n_archs, B, N = (16, 4, 32) if ctx.quick else (64, 8, 128)
    worst, per_arch = 0.0, []
    for spec in random_specs(n_archs, seed=ctx.seed):
        ws = WeightSpace.randn(spec, B, generator=gen, dtype=torch.float64, device=device)
        g = GaugeElement.sample(spec, B, generator=gen, dtype=torch.float64, device=device)
        x = _inputs(spec, N, gen, device)
        err = float(_rel_change(ws, g.apply(ws), x).max())
        worst = max(worst, err)
        per_arch.append({"spec": spec.to_text(), "rel_err": err})
    sens, sens_min = [], math.inf
    for spec in random_specs(n_archs // 2, seed=ctx.seed + 1, min_width=2):
        ws = WeightSpace.randn(spec, B, generator=gen, dtype=torch.float64, device=device)
        x = _inputs(spec, N, gen, device)
        row = {"spec": spec.to_text()}
        for kind in ("uncoupled_permutation", "mismatched_scaling", "wrong_scaling"):
            if kind == "wrong_scaling" and spec.layers[0].activation is None:
                continue  # q = -1 *is* a symmetry of the identity activation
            row[kind] = float(_rel_change(ws, sample_non_symmetry(ws, kind, gen), x).max())
            sens_min = min(sens_min, row[kind])
        sens.append(row)
    claims.append(claim("gauge-preserves-function",
                        f"max relative output change of {n_archs} random float64 networks (mlp, conv1d, "
                        f"conv2d, siren; all activations) under random gauge elements, on {device.type}",
                        worst, "<=", 1e-10))
    claims.append(claim("non-symmetries-change-function",
                        "smallest relative output change under uncoupled permutations, mismatched or "
                        "wrong scalings (largest over each batch of networks)", sens_min, ">=", 1e-3))

    # (c) conv vs dense scaling gauge
    sizes = CNN_SIZES_QUICK if ctx.quick else CNN_SIZES_FULL
    dims, closed_form_ok = [], True
    for text in sizes:
        spec = NetworkSpec.from_text(text)
        d = network_scaling_dims(spec)
        _, _, pos = network_index(spec)
        hidden_units = sum(w * p for w, p in zip(spec.hidden_widths, pos[:-1]))
        closed_form_ok &= d.dim_cnn == sum(spec.hidden_widths) and d.dim_mlp == hidden_units
        dims.append(d)
    numeric = []
    for c_out, c_in, k, n, s, p in [(3, 2, 3, 8, 1, 0), (4, 1, 3, 10, 2, 1), (2, 2, 8, 8, 1, 0)]:
        r = check_conv_scaling_numerically(c_out, c_in, k, n, s, p, generator=gen, device=device)
        one_position = conv_output_size(n, k, s, p) == 1  # then any per-position scaling is per channel
        numeric.append({"size": f"conv1d {c_in}->{c_out} n={n} k={k} s={s} p={p}", "one_position": one_position, **r})
    measured = [list(d.as_tuple()) for d in dims]
    numeric_ok = all(r["per_channel_is_conv"] and r["unrolled_matches_conv"] < 1e-10
                     and r["per_position_is_conv"] == r["one_position"] for r in numeric)
    holds = closed_form_ok and numeric_ok and all(d.strictly_smaller for d in dims if not d.degenerate) and all(
        d.dim_cnn == d.dim_mlp for d in dims if d.degenerate)
    claims.append(claim("cnn-gauge-strictly-smaller",
                        "dim G_scale of a conv net (input/output fixed) < that of the MLP of the same unrolled "
                        "sizes, for every non-degenerate size (equal when one position per hidden layer; "
                        "confirmed by the closed forms and on torch convs); [size, dim_cnn, dim_mlp]",
                        measured, holds=holds, target="dim_cnn < dim_mlp unless one position per hidden layer"))

    # (d) block networks: residual streams, BatchNorm, LayerNorm, and ScaleGMN on their graphs
    blocks, block_seconds = block_claims(ctx.reference, ctx.seed, device)
    claims += blocks
    return {
        "claims": claims,
        "derived_scalings": sets,
        "derived_matches_spec": spec_ok,
        "symbolic_mlp": symbolic,
        "gauge_preservation": per_arch,
        "non_symmetry_sensitivity": sens,
        "cnn_dims": [{"size": d.size, "dim_cnn": d.dim_cnn, "dim_mlp": d.dim_mlp, "degenerate": d.degenerate}
                     for d in dims],
        "cnn_dims_closed_form": closed_form_ok,
        "conv_scaling_numeric": numeric,
        "block_claims_seconds": block_seconds,
    }
