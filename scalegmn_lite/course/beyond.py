r"""Figures and exercise checks for notebook 09, sections 0-4 (residual blocks, BatchNorm, LayerNorm, epsilon).

Section 5 (the graphs ScaleGMN reads for these networks, the checker's figures and exercise 5) lives in
:mod:`.block_figures`, which draws with the colours and the axes helper of this module.

Figures (each draws on ``ax`` if given, else on a new figure, and returns the figure; legends sit outside the data,
text is at least 8 pt):

* :func:`draw_residual_block`: one residual block as a graph: the stream's vertices at depth ``t`` and ``t + 1``,
  the block's inner ReLU units, the weight edges ``W_1``, ``W_2`` and the identity shortcut edges of fixed weight 1
  that tie the stream's scale across depths;
* :func:`plot_residual_functions`: ``f(x)`` of a 1-D residual network, gauge-transformed copies overlaid;
* :func:`plot_dim_counts`: ``dim G_scale`` of residual networks against their plain twins over the number of blocks;
* :func:`plot_function_changes`: the relative change of a network's outputs under a list of transformations, on a
  log axis, coloured by whether each is a symmetry;
* :func:`draw_layernorm_two_features`: LayerNorm of two features as a step function of ``sign(z_1 - z_2)``, and a
  per-neuron scaling that crosses the step;
* :func:`plot_eps_errors`: the measured ``eps > 0`` deviation of a pre-norm scaling and its bound, against ``eps``.

Exercise checks (every right answer is recomputed with the library, never stored): :func:`check_block_dims`,
:func:`check_symmetries` (with :data:`SYMMETRY_CANDIDATES` and :func:`symmetry_verdicts`),
:func:`check_layernorm_counterexample` and :func:`check_scaled_eps`.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Patch

from ..symbolic.residual import (
    ResidualSizes,
    apply_residual_gauge,
    flip_inner_sign,
    init_residual_params,
    layernorm_shift,
    norm_forward,
    prenorm_scaling,
    prenorm_sign_flip,
    random_norm_net,
    residual_forward,
    sample_residual_gauge,
)
from ..weightspace.blocks import BlockNetworkSpec
from .diagrams import _canvas
from .feedback import Feedback, require, run_check

__all__ = ["draw_residual_block", "plot_residual_functions", "plot_dim_counts", "plot_function_changes",
           "draw_layernorm_two_features", "plot_eps_errors", "EXERCISE_09_1_NETWORK", "SYMMETRY_CANDIDATES",
           "symmetry_verdicts", "check_block_dims", "check_symmetries", "check_layernorm_counterexample",
           "check_scaled_eps", "ZERO_FLOOR"]

#: exact zeros are drawn at this value on log axes
ZERO_FLOOR = 1e-18
_STREAM, _INNER, _SHORTCUT, _EDGE = "#9ecae1", "#fdae6b", "#cb181d", "#969696"
_SYMMETRY, _BROKEN = "#2171b5", "#cb181d"


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    return ax.figure, ax


# ------------------------------------------------------------------------------------------------ the block
def draw_residual_block(ax: Axes | None = None, *, d_s: int = 3, hidden: int = 4) -> Figure:
    r"""One residual block ``y_{t+1} = y_t + W_2 relu(W_1 y_t + b_1) + b_2`` drawn as a graph.

    Left and right columns: the ``d_s`` stream vertices at depth ``t`` and ``t + 1``, each labelled with its scale
    ``q_k``; middle (lower): the ``hidden`` inner ReLU units with their own scales ``r_j``. Grey edges are the free
    weights (``W_1``: stream -> inner, ``W_2``: inner -> stream); the red dashed edges are the identity shortcut,
    one per stream coordinate, of *fixed* weight 1. A weight edge ``i <- j`` is rescaled by ``q_i / q_j``; the
    shortcut cannot be, so its two ends carry the same ``q_k``.

    Args:
        ax: the axes to draw on (default: a new ``(10, 4.4)`` figure whose axes fill it, in inches).
        d_s, hidden: the stream width and the number of inner units (1 to 5 each, to stay readable).
    Returns:
        the figure. Vertices are circles with gid ``stream-t:k``, ``stream-t+1:k`` and ``inner:j``; shortcut edges
        are lines with gid ``shortcut:k``, weight edges lines with gid ``w1:k,j`` and ``w2:j,k``.
    """
    if not (1 <= d_s <= 5 and 1 <= hidden <= 5):
        raise ValueError(f"draw_residual_block draws 1 to 5 stream and inner units, got d_s={d_s}, hidden={hidden}")
    width, height = 10.0, 4.4
    _, ax = _canvas(ax, width, height)
    xl, xm, xr, rad = 1.7, 5.0, 8.3, 0.19
    ys = [3.45 - 0.5 * k for k in range(d_s)]
    yh = [2.0 - 1.3 * j / max(hidden - 1, 1) for j in range(hidden)] if hidden > 1 else [1.25]
    for k, y in enumerate(ys):
        for j, z in enumerate(yh):
            ax.plot([xl, xm], [y, z], color=_EDGE, lw=0.8, zorder=1, gid=f"w1:{k},{j}")
            ax.plot([xm, xr], [z, y], color=_EDGE, lw=0.8, zorder=1, gid=f"w2:{j},{k}")
        ax.plot([xl, xr], [y, y], color=_SHORTCUT, lw=1.8, ls="--", zorder=1, gid=f"shortcut:{k}")
        for x, side in ((xl, "t"), (xr, "t+1")):
            ax.add_patch(Circle((x, y), rad, fc=_STREAM, ec="#404040", lw=1.0, zorder=2, gid=f"stream-{side}:{k}"))
            ax.text(x, y, f"$q_{k + 1}$", ha="center", va="center", fontsize=9, zorder=3)
    for j, z in enumerate(yh):
        ax.add_patch(Circle((xm, z), rad, fc=_INNER, ec="#404040", lw=1.0, zorder=2, gid=f"inner:{j}"))
        ax.text(xm, z, f"$r_{j + 1}$", ha="center", va="center", fontsize=9, zorder=3)
    top = ys[0] + 0.3
    ax.text(xl, top, "stream at depth $t$", ha="center", va="bottom", fontsize=10)
    ax.text(xr, top, "stream at depth $t+1$", ha="center", va="bottom", fontsize=10)
    ax.text(xm, top, "shortcut: fixed weight 1 $\\Rightarrow$ $q_{t+1,k} = q_{t,k}$", ha="center", va="bottom",
            fontsize=9, color=_SHORTCUT)
    ax.text(width / 2, height - 0.1, r"$y_{t+1} = y_t + W_2\,\mathrm{ReLU}(W_1 y_t + b_1) + b_2$", ha="center",
            va="top", fontsize=11)
    ax.text(xm, yh[-1] - 0.3, "inner ReLU units, own scales $r_j$", ha="center", va="top", fontsize=9)
    ax.text(xl + 0.5, 1.2, "free weights $W_1$:\n" + r"$W_1 \mapsto R\,W_1\,Q^{-1}$, $b_1 \mapsto R\,b_1$",
            ha="center", va="center", fontsize=9, color="#525252")
    ax.text(xr - 0.5, 1.2, "free weights $W_2$:\n" + r"$W_2 \mapsto Q\,W_2\,R^{-1}$, $b_2 \mapsto Q\,b_2$",
            ha="center", va="center", fontsize=9, color="#525252")
    return ax.figure


# ------------------------------------------------------------------------------------------------ section 1
def plot_residual_functions(x: torch.Tensor, curves: Mapping[str, torch.Tensor], ax: Axes | None = None, *,
                            title: str = "") -> Figure:
    """``f(x)`` of 1-D networks, one line per entry of ``curves`` (``x`` and each curve of shape ``[N]``); the
    first curve is solid and wide, the others narrower and dashed so overlapping curves stay visible."""
    fig, ax = _figure(ax, (7.5, 3.0))
    styles = [dict(lw=3.0, alpha=0.45), dict(lw=1.4, ls="--"), dict(lw=1.4, ls=":")]
    for i, (name, y) in enumerate(curves.items()):
        ax.plot(x.detach().cpu().numpy(), y.detach().cpu().numpy(), label=name, **styles[min(i, len(styles) - 1)])
    ax.set(xlabel="input $x$", ylabel="output $f(x)$", title=title)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


def plot_dim_counts(rows: Sequence[Mapping[str, int]], ax: Axes | None = None, *, title: str = "") -> Figure:
    """``dim G_scale`` of residual networks (``rows[i]["residual"]``) and their plain twins (``"plain"``) against the
    number of blocks ``"n"``, with the gap ``n d_s`` shaded."""
    fig, ax = _figure(ax, (7.5, 3.0))
    n = [r["n"] for r in rows]
    res, plain = [r["residual"] for r in rows], [r["plain"] for r in rows]
    ax.fill_between(n, res, plain, color="#d9d9d9", alpha=0.6, label=r"gap $n\,d_s$ (stream tied by shortcuts)")
    ax.plot(n, plain, "o-", color="#6a51a3", label=r"plain twin: $\sum_i h_i + (n+1)\,d_s$")
    ax.plot(n, res, "s-", color=_SYMMETRY, label=r"residual: $\sum_i h_i + d_s$")
    ax.set(xlabel="number of residual blocks $n$", ylabel=r"$\dim G_\mathrm{scale}$", title=title)
    ax.set_xticks(n)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ sections 2-3
def plot_function_changes(changes: Mapping[str, float], symmetric: Mapping[str, bool], ax: Axes | None = None, *,
                          title: str = "") -> Figure:
    """Horizontal bars of the relative output change under each transformation (log axis, exact zeros drawn at
    :data:`ZERO_FLOOR`), blue for the symmetries and red for the rest (``symmetric[name]``)."""
    names = list(changes)
    fig, ax = _figure(ax, (8.5, 0.9 + 0.42 * len(names)))
    vals = [max(float(changes[k]), ZERO_FLOOR) for k in names]
    colors = [_SYMMETRY if symmetric[k] else _BROKEN for k in names]
    ax.barh(range(len(names)), vals, color=colors, left=ZERO_FLOOR)
    for i, v in enumerate(vals):
        ax.text(v * 1.6, i, f"{v:.0e}" if v > ZERO_FLOOR else "0", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(ZERO_FLOOR, 1e3)
    ax.set(xlabel="relative change of the outputs (log scale; exact 0 drawn at 1e-18)", title=title)
    ax.legend(handles=[Patch(color=_SYMMETRY, label="a symmetry: rounding only"),
                       Patch(color=_BROKEN, label="not a symmetry")],
              fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


def _ln2(z: Sequence[float]) -> tuple[float, float]:
    """LayerNorm of two features (``gamma = 1``, ``beta = 0``, ``eps = 0``): ``+-(1, -1)``."""
    c = (z[0] - z[1]) / 2
    if c == 0:
        raise ValueError(f"z = {tuple(z)} has equal features: LayerNorm is 0/0 there (eps = 0)")
    s = 1.0 if c > 0 else -1.0
    return s, -s


def draw_layernorm_two_features(z: Sequence[float] = (2.0, 1.0), d: Sequence[float] = (1.0, 4.0),
                                ax: Axes | None = None) -> Figure:
    """LayerNorm of two features is ``(1, -1)`` below the diagonal ``z_1 = z_2`` and ``(-1, 1)`` above it; a
    per-neuron scaling ``D = diag(d)`` (``d > 0``) can carry ``z`` across the diagonal, a common scalar cannot."""
    fig, ax = _figure(ax, (7.5, 3.6))
    lim = 1.25 * max(max(z), max(a * b for a, b in zip(d, z)), 1.0)
    ax.fill_between([0, lim], [0, lim], [0, 0], color="#c6dbef", label=r"$z_1 > z_2$: $\mathrm{ln}(z) = (1, -1)$")
    ax.fill_between([0, lim], [0, lim], [lim, lim], color="#fdd0a2", label=r"$z_1 < z_2$: $\mathrm{ln}(z) = (-1, 1)$")
    ax.plot([0, lim], [0, lim], color="#404040", lw=1)
    dz = (d[0] * z[0], d[1] * z[1])
    ax.annotate("", xy=dz, xytext=tuple(z), arrowprops=dict(arrowstyle="-|>", color=_BROKEN, lw=1.5))
    ax.plot(*z, "o", color="k")
    ax.plot(*dz, "o", color=_BROKEN)
    ax.text(z[0] + 0.12, z[1] - 0.1, f"$z = ({z[0]:g}, {z[1]:g})$", va="top", fontsize=9)
    ax.text(dz[0] + 0.12, dz[1], f"$Dz = ({dz[0]:g}, {dz[1]:g})$", va="center", fontsize=9, color=_BROKEN)
    ax.plot([0, z[0] * lim / max(z)], [0, z[1] * lim / max(z)], ls=":", color="k", lw=1,
            label="common scale $cz$, $c > 0$: stays on its side")
    ax.set(xlim=(0, lim), ylim=(0, lim), xlabel="$z_1$", ylabel="$z_2$", aspect="equal",
           title=f"per-neuron scaling D = diag({d[0]:g}, {d[1]:g}) crosses the step")
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ section 4
def plot_eps_errors(rows: Sequence[Mapping[str, float]], ax: Axes | None = None, *, title: str = "") -> Figure:
    """Measured deviation (solid) and bound (dashed) of a pre-norm scaling against ``eps`` (log-log), one colour per
    ``row["kind"]``; rows need ``eps > 0``, ``measured``, ``bound`` and ``scaled_eps`` (drawn dotted, floored at
    :data:`ZERO_FLOOR`: the deviation when ``eps`` is rescaled too)."""
    fig, ax = _figure(ax, (7.5, 3.4))
    colors = {"batchnorm": "#2171b5", "layernorm": "#d94801"}
    for kind in dict.fromkeys(r["kind"] for r in rows):
        sel = [r for r in rows if r["kind"] == kind and r["eps"] > 0]
        eps = [r["eps"] for r in sel]
        c = colors.get(kind, "k")
        ax.plot(eps, [max(r["measured"], ZERO_FLOOR) for r in sel], "o-", color=c, label=f"{kind}: measured")
        ax.plot(eps, [r["bound"] for r in sel], "--", color=c, label=f"{kind}: bound")
        ax.plot(eps, [max(r["scaled_eps"], ZERO_FLOOR) for r in sel], ":", color=c,
                label=rf"{kind}: with $\epsilon \to d^2 \epsilon$")
    ax.set(xscale="log", yscale="log", xlabel=r"$\epsilon$", ylabel=r"$\max |f_{g\cdot\theta} - f_\theta|$",
           title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ exercises
#: notebook 09, exercise 1: the network whose scaling gauge dimension is asked for
EXERCISE_09_1_NETWORK = "mlp 8-16bn-[16bn-16]x2-[32-32|proj]-4 relu"

#: notebook 09, exercise 2: transformations to sort into symmetries and non-symmetries (``eps = 0`` unless stated)
SYMMETRY_CANDIDATES: dict[str, str] = {
    "a": "residual MLP: scale stream coordinate k by 2 at every depth (embedding row, W1 columns, W2 rows, b2, "
         "head column)",
    "b": "BatchNorm: negate one channel of its input (row of W, entry of b and running_mean), gamma kept",
    "c": "LayerNorm: add one vector v to every row of the weight before it and c0 to every bias entry "
         "(eps = 1e-5 kept)",
    "d": "residual MLP: scale stream coordinate k by 2 only after block 1 (the depths before keep scale 1)",
    "e": "residual MLP: negate one inner ReLU unit of block 1 (row of W1, entry of b1, column of W2)",
    "f": "BatchNorm: negate one channel of its input and its gamma (eps = 1e-5 kept)",
    "g": "post-addition ReLU residual MLP: scale the stream by one positive diagonal D at every depth",
    "h": "BatchNorm: scale every channel of its input by 3 (W, b, running_mean; running_var by 9), eps = 1e-5 kept",
}


def symmetry_verdicts(seed: int = 0, tol: float = 1e-10) -> dict[str, tuple[bool, float]]:
    """``{key: (is_symmetry, relative change of the outputs)}`` for :data:`SYMMETRY_CANDIDATES`, measured in float64
    on random networks (``scalegmn_lite.symbolic.residual``); a symmetry changes the outputs by rounding only."""
    gen = torch.Generator().manual_seed(seed)
    x_res = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    x_norm = torch.randn(64, 4, generator=gen, dtype=torch.float64)

    def rel(new, old):
        return float((new - old).abs().max() / old.abs().max())

    def residual(post_relu: bool, transform) -> float:
        sizes = ResidualSizes(3, 4, (5, 5), 2, post_relu=post_relu)
        ws, bs = init_residual_params(sizes, gen)
        ws2, bs2 = transform(sizes, ws, bs)
        return rel(residual_forward(sizes, ws2, bs2, x_res), residual_forward(sizes, ws, bs, x_res))

    def stream(only_after_block_1: bool):
        def transform(sizes, ws, bs):
            g = sample_residual_gauge(sizes, gen, permute=False, log_std=0.0)
            q = torch.ones(sizes.d_s, dtype=torch.float64)
            q[0] = 2.0
            scales = [torch.ones_like(q) if (only_after_block_1 and t == 0) else q for t in range(sizes.n_blocks + 1)]
            g = type(g)(g.stream_perms, tuple(scales), g.inner_perms, g.inner_scales)
            return apply_residual_gauge(sizes, ws, bs, g)
        return transform

    def shared_diag(sizes, ws, bs):
        return apply_residual_gauge(sizes, ws, bs, sample_residual_gauge(sizes, gen, permute=False))

    bn = random_norm_net("batchnorm", 4, 6, 2, gen)
    ln = random_norm_net("layernorm", 4, 6, 2, gen)
    signs = [-1, 1, 1, 1, 1, 1]
    v = torch.randn(4, generator=gen, dtype=torch.float64)
    changes = {
        "a": residual(False, stream(False)),
        "b": rel(norm_forward(prenorm_sign_flip(bn, signs, flip_gamma=False), x_norm), norm_forward(bn, x_norm)),
        "c": rel(norm_forward(layernorm_shift(ln, v, 0.7), x_norm, 1e-5), norm_forward(ln, x_norm, 1e-5)),
        "d": residual(False, stream(True)),
        "e": residual(False, lambda sizes, ws, bs: flip_inner_sign(sizes, ws, bs, 1, 0)),
        "f": rel(norm_forward(prenorm_sign_flip(bn, signs), x_norm, 1e-5), norm_forward(bn, x_norm, 1e-5)),
        "g": residual(True, shared_diag),
        "h": rel(norm_forward(prenorm_scaling(bn, 3.0), x_norm, 1e-5), norm_forward(bn, x_norm, 1e-5)),
    }
    return {k: (c < tol, c) for k, c in changes.items()}


def check_block_dims(answer: int | None) -> Feedback:
    """Notebook 09, exercise 1: ``dim G_scale`` of :data:`EXERCISE_09_1_NETWORK` (an integer), compared with
    ``BlockNetworkSpec.from_text(EXERCISE_09_1_NETWORK).scale_dim``."""

    def body():
        require(answer)
        spec = BlockNetworkSpec.from_text(EXERCISE_09_1_NETWORK)
        terms, want = spec.scale_dim_terms, spec.scale_dim
        got = int(answer)
        if got == want:
            return True, (f"{want} = {terms['hidden']} inner + {terms['stream']} stream + {terms['batchnorm']} "
                          "BatchNorm inputs")
        per_depth = BlockNetworkSpec.from_text(EXERCISE_09_1_NETWORK).gauge_plan(split_streams=True).scale_dim
        if got == per_depth:
            return False, "you counted the stream once per depth: the shortcuts tie all depths of a stream to one scale"
        if got == want - terms["batchnorm"]:
            return False, "each BatchNorm adds a free scale per channel of its input (W, b, mu -> D W, D b, D mu)"
        if got == want - terms["stream"] + 16:
            return False, "the projection shortcut starts a new stream with its own scales"
        return False, f"{got} is not the dimension; count inner units, streams (once each) and BatchNorm inputs"

    return run_check("09.1", body)


def check_symmetries(answer: Iterable[str] | None) -> Feedback:
    """Notebook 09, exercise 2: the keys of :data:`SYMMETRY_CANDIDATES` that are symmetries (a set of letters),
    compared with :func:`symmetry_verdicts`."""

    def body():
        require(answer)
        got = {str(a).strip().lower() for a in answer}
        unknown = got - set(SYMMETRY_CANDIDATES)
        if unknown:
            return False, f"unknown keys {sorted(unknown)}; choose among {sorted(SYMMETRY_CANDIDATES)}"
        verdicts = symmetry_verdicts()
        want = {k for k, (ok, _) in verdicts.items() if ok}
        if got == want:
            return True, f"symmetries: {', '.join(sorted(want))}; the others change the outputs"
        extra, missing = sorted(got - want), sorted(want - got)
        parts = [f"{k} changes the outputs by {verdicts[k][1]:.0e} (relative)" for k in extra[:1]]
        parts += [f"{k} is a symmetry (change {verdicts[k][1]:.0e}, rounding)" for k in missing[:1]]
        return False, f"{len(extra) + len(missing)} of {len(SYMMETRY_CANDIDATES)} wrong; e.g. " + "; ".join(parts)

    return run_check("09.2", body)


def check_layernorm_counterexample(z: Sequence[float] | None, d: Sequence[float] | None) -> Feedback:
    """Notebook 09, exercise 3: two features ``z`` and positive scales ``d`` with ``ln(D z) != ln(z)``
    (``gamma = 1``, ``beta = 0``, ``eps = 0``)."""

    def body():
        require(z, d)
        zz, dd = [float(v) for v in z], [float(v) for v in d]
        if len(zz) != 2 or len(dd) != 2:
            return False, f"give two features and two scales, got {len(zz)} and {len(dd)}"
        if not all(math.isfinite(v) for v in zz + dd) or min(dd) <= 0:
            return False, f"the scales must be finite and positive (a ReLU-side gauge), got d = {dd}"
        if zz[0] == zz[1] or dd[0] * zz[0] == dd[1] * zz[1]:
            return False, "LayerNorm of two equal features is 0/0 (eps = 0): pick z (and D z) with distinct features"
        if dd[0] == dd[1]:
            return False, "a common scale d_1 = d_2 is a symmetry of LayerNorm; scale the two features differently"
        before, after = _ln2(zz), _ln2([dd[0] * zz[0], dd[1] * zz[1]])
        if before == after:
            return False, (f"ln(z) = ln(Dz) = {before}: z and D z lie on the same side of z_1 = z_2; choose d so that "
                           "D z crosses the diagonal")
        return True, f"ln(z) = {before} but ln(Dz) = {after}: a per-neuron scaling is no LayerNorm symmetry"

    return run_check("09.3", body)


def check_scaled_eps(scaled_eps: Callable[[float, torch.Tensor | float], torch.Tensor | float]) -> Feedback:
    """Notebook 09, exercise 4: ``scaled_eps(eps, d)``, the ``eps`` that makes a pre-norm scaling by ``d`` exact
    (``d`` a per-channel tensor for BatchNorm, a float for LayerNorm's common scale); checked in float64."""

    def body():
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(64, 4, generator=gen, dtype=torch.float64)
        worst = 0.0
        for kind, d in (("batchnorm", torch.exp(torch.randn(6, generator=gen, dtype=torch.float64))),
                        ("layernorm", 3.0)):
            net = random_norm_net(kind, 4, 6, 2, gen)
            for eps in (1e-5, 1e-2):
                new_eps = scaled_eps(eps, d)
                f = norm_forward(net, x, eps)
                err = float((norm_forward(prenorm_scaling(net, d), x, new_eps) - f).abs().max() / f.abs().max())
                if err > 1e-10:
                    return False, (f"{kind}, eps = {eps:g}: the scaled network still differs by {err:.1e} (relative); "
                                   "the pre-norm scale multiplies the variance by d^2")
                worst = max(worst, err)
        return True, f"exact for BatchNorm (per channel) and LayerNorm (common scale): worst change {worst:.0e}"

    return run_check("09.4", body)
