"""Interactive widgets for the notebooks, each with a static fallback figure for the course website.

Two explorations where moving a slider teaches more than reading a table:

* **Scale one hidden neuron** (notebook 01). For a hidden neuron ``i`` of layer ``l`` and ``q > 0``, the
  gauge element ``g`` with ``Q_l = diag(1, .., q, .., 1)`` (no permutation) acts as

      W_l[i, :] -> q W_l[i, :],   b_l[i] -> q b_l[i],   W_{l+1}[:, i] -> W_{l+1}[:, i] / q,

  and for ReLU ``relu(q z) = q relu(z)``, so ``f_{g.theta} = f_theta``: the weights move, the function
  does not. Flipping the sign (``q -> -q``) is *not* a symmetry of a ReLU layer: the function changes.
  :func:`neuron_scaling_frame` computes one state, :func:`plot_neuron_scaling` draws it,
  :func:`neuron_scaling_grid` is the static figure, :func:`neuron_scaling_widget` the slider.
* **Slide along a merge path** (notebook 08). For a pair of networks ``(theta_0, theta_1)`` and a method
  (naive: the pair itself; weight matching: ``(theta_0, g.theta_1)`` with ``g`` from Git Re-Basin-style
  matching; decoded: ``(D(E(theta_0)), D(E(theta_1)))``), the network at ``alpha`` is
  ``theta_alpha = (1 - alpha) e_0 + alpha e_1``. Its rendering is compared with the pixel blend
  ``(1 - alpha) f_{theta_0} + alpha f_{theta_1}`` (MSE, the loss of notebook 08's pair study).
  :func:`render_paths` precomputes every rendering (so the slider is instant), :func:`merge_path_grid`
  is the static figure and :func:`merge_path_widget` the slider.

The widgets need ``ipywidgets`` (in the ``dev`` extra) and a live kernel; the computations and the
figures need neither, and are what the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from ..tasks.merging.matching import align
from ..tasks.merging.paths import interpolate
from ..weightspace.gauge import GaugeElement
from ..weightspace.layer import Symmetry
from ..weightspace.weights import WeightSpace, batched_forward

__all__ = [
    "NeuronScaling", "scale_neuron", "neuron_scaling_frame", "plot_neuron_scaling", "neuron_scaling_grid",
    "neuron_scaling_widget", "PathRenderings", "merge_endpoints", "render_paths", "plot_paths_at",
    "merge_path_grid", "merge_path_widget", "MERGE_STYLE", "plot_merge_curves",
]

PATH_LABELS = {"naive": "naive", "weight_matching": "weight-matched", "decoded": "decoded", "latent": "latent"}

#: how notebook 08 draws each merging method: overlapping curves stay apart by line style and marker
#: (and the colour-blind-safe Okabe-Ito colours)
MERGE_STYLE = {
    "naive": dict(label="naive", color="#000000", ls="-", marker="o"),
    "weight_matching_P": dict(label="weight matching, P only (Git Re-Basin)", color="#E69F00", ls="--", marker="s"),
    "weight_matching_D": dict(label="weight matching, D only", color="#56B4E9", ls=":", marker="v"),
    "weight_matching": dict(label="weight matching, P and D", color="#009E73", ls="-.", marker="^"),
    "decoded": dict(label="decoded (autoencoder)", color="#D55E00", ls=(0, (5, 1, 1, 1, 1, 1)), marker="D"),
    "latent": dict(label="latent", color="#CC79A7", ls=(0, (1, 1)), marker="x"),
}


def plot_merge_curves(ax, curves: Mapping[str, Sequence[float]], alphas: Sequence[float] | None = None,
                      ylabel: str = "loss", title: str | None = None, legend: bool = True, markevery: int = 4):
    """Mean loss along each method's path on ``ax``, one style per method (:data:`MERGE_STYLE`), so
    curves that lie on top of each other stay distinguishable. ``curves``: method -> values per alpha."""
    for m, v in curves.items():
        v = list(v)
        a = list(alphas) if alphas is not None else [i / (len(v) - 1) for i in range(len(v))]
        st = MERGE_STYLE.get(m, dict(label=m))
        ax.plot(a, v, lw=1.6, ms=4, markevery=markevery, **st)
    ax.set(xlabel=r"$\alpha$", ylabel=ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(fontsize=8)
    return ax


#: set by ``tools/build_notebooks.py``: widgets draw their default state as a static figure instead (nbclient
#: can block forever on an ipywidgets ``interactive`` cell, jupyter/nbclient#312); a live kernel never sets it
STATIC_ENV = "SCALEGMN_LITE_STATIC_WIDGETS"


def _static() -> bool:
    import os

    return os.environ.get(STATIC_ENV) == "1"


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as e:  # pragma: no cover - ipywidgets is in the dev extra
        raise ImportError("the interactive widgets need ipywidgets: "
                          ".venv/bin/pip install -c constraints.txt -e \".[dev]\"") from e
    return ipywidgets


# ----------------------------------------------------------------------------------- one neuron, scaled
def scale_neuron(ws: WeightSpace, layer: int, neuron: int, q: float, strict: bool = True) -> WeightSpace:
    """``g.apply(ws)`` for the gauge element that scales neuron ``neuron`` of hidden layer ``layer`` by ``q``.

    Args:
        ws: ``B`` networks.
        layer: hidden layer, 1-based (``1 .. L-1``).
        neuron: index in ``0 .. n_layer - 1``.
        q: the scaling. With ``strict=True`` it must be allowed by the layer's activation
            (``NotASymmetryError`` otherwise); ``strict=False`` applies it anyway (a non-symmetry).
    """
    hidden = ws.spec.hidden_widths
    if not 1 <= layer <= len(hidden):
        raise ValueError(f"layer must be a hidden layer in 1..{len(hidden)}, got {layer}")
    if not 0 <= neuron < hidden[layer - 1]:
        raise ValueError(f"hidden layer {layer} has {hidden[layer - 1]} neurons, got neuron={neuron}")
    if q == 0:
        raise ValueError("q = 0 is not invertible: a gauge scaling must be non-zero")
    g = GaugeElement.identity(ws.spec, ws.batch_size, device=ws.device, dtype=ws.dtype)
    scales = [s.clone() for s in g.scales]
    scales[layer - 1][:, neuron] = q
    return GaugeElement(ws.spec, g.perms, scales).apply(ws, strict=strict)


@dataclass(frozen=True)
class NeuronScaling:
    """One state of the neuron-scaling exploration (network 0 of the batch).

    Attributes:
        q: the scaling applied; ``symmetry``: whether it is in the layer's gauge group.
        w_in, w_in_scaled: incoming weights of the neuron and its bias (last entry), ``[n_{l-1} + 1]``.
        w_out, w_out_scaled: outgoing weights ``W_{l+1}[:, i]``, ``[n_{l+1}]``.
        x: ``[N]`` inputs; f, f_scaled: ``[N]`` outputs of the original and the transformed network.
        weights_moved: ``max |g.theta - theta|``; function_moved: ``max |f_{g.theta} - f_theta|``.
    """

    layer: int
    neuron: int
    q: float
    symmetry: bool
    w_in: torch.Tensor
    w_in_scaled: torch.Tensor
    w_out: torch.Tensor
    w_out_scaled: torch.Tensor
    x: torch.Tensor
    f: torch.Tensor
    f_scaled: torch.Tensor
    weights_moved: float
    function_moved: float


def neuron_scaling_frame(ws: WeightSpace, layer: int, neuron: int, q: float, x: torch.Tensor | None = None
                         ) -> NeuronScaling:
    """Scale one neuron of ``ws[0]`` (an MLP ``1 -> ... -> 1``) by ``q`` and compare weights and functions.

    ``q`` outside the layer's gauge group (e.g. ``q < 0`` under ReLU) is applied as a non-symmetry and
    reported with ``symmetry=False``. ``x``: ``[N]`` inputs (default 200 points in ``[-2, 2]``).
    """
    spec = ws.spec
    if spec.family != "mlp" or spec.widths[0] != 1 or spec.widths[-1] != 1:
        raise ValueError(f"the neuron-scaling view plots f(x) for an MLP 1 -> ... -> 1, got {spec.to_text()!r}")
    one = ws[:1]
    sym = spec.symmetries[layer - 1] if 1 <= layer <= len(spec.symmetries) else None
    allowed = {Symmetry.POSITIVE_SCALE: q > 0, Symmetry.SIGN: abs(q) == 1}.get(sym, q == 1)
    moved = scale_neuron(one, layer, neuron, q, strict=False)
    if x is None:
        x = torch.linspace(-2, 2, 200, dtype=one.dtype, device=one.device)
    f, f_scaled = (batched_forward(w, x[:, None])[0, :, 0] for w in (one, moved))

    def incoming(w: WeightSpace) -> torch.Tensor:
        return torch.cat([w.weights[layer - 1][0, neuron].flatten(), w.biases[layer - 1][0, neuron:neuron + 1]])

    return NeuronScaling(
        layer, neuron, float(q), bool(allowed), incoming(one), incoming(moved),
        one.weights[layer][0, :, neuron].flatten(), moved.weights[layer][0, :, neuron].flatten(),
        x, f.detach(), f_scaled.detach(), float(moved.max_abs_diff(one)), float((f_scaled - f).abs().max()),
    )


def plot_neuron_scaling(fr: NeuronScaling, axes) -> None:
    """Three panels on ``axes``: incoming weights and bias, outgoing weights, and ``f(x)`` before and after."""
    import numpy as np

    a_in, a_out, a_f = axes
    for ax, before, after, labels in (
        (a_in, fr.w_in, fr.w_in_scaled, [f"w{j}" for j in range(fr.w_in.numel() - 1)] + ["b"]),
        (a_out, fr.w_out, fr.w_out_scaled, [f"w{j}" for j in range(fr.w_out.numel())]),
    ):
        pos = np.arange(before.numel())
        ax.bar(pos - 0.2, before.cpu().numpy(), 0.4, color="0.6", label="original")
        ax.bar(pos + 0.2, after.cpu().numpy(), 0.4, color="C0", label=f"q = {fr.q:g}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(pos, labels if len(labels) <= 10 else [""] * len(labels), fontsize=8)
    a_in.set_title(f"into neuron {fr.neuron} of layer {fr.layer} (x q)", fontsize=9)
    a_out.set_title("out of it (/ q)", fontsize=9)
    a_in.legend(fontsize=8)
    x = fr.x.cpu().numpy()
    a_f.plot(x, fr.f.cpu().numpy(), color="0.6", lw=3, label="original")
    a_f.plot(x, fr.f_scaled.cpu().numpy(), color="C0" if fr.symmetry else "C3", ls="--", label="transformed")
    verdict = "same function" if fr.function_moved < 1e-9 else "function changed"
    a_f.set_title(f"{verdict}: max|f' - f| = {fr.function_moved:.1e}", fontsize=9,
                  color="k" if fr.symmetry else "C3")
    a_f.set_xlabel("x", fontsize=8)
    a_f.legend(fontsize=8)


def neuron_scaling_grid(ws: WeightSpace, layer: int = 1, neuron: int = 0,
                        qs: Sequence[float] = (0.25, 1.0, 4.0, -1.0)):
    """The static version of the widget: one row per ``q`` (a matplotlib ``Figure``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(qs), 3, figsize=(10, 2.2 * len(qs)), squeeze=False)
    for row, q in zip(axes, qs):
        fr = neuron_scaling_frame(ws, layer, neuron, q)
        plot_neuron_scaling(fr, row)
        row[0].set_ylabel(f"q = {q:g}" + ("" if fr.symmetry else "\n(not a symmetry)"), fontsize=9)
    fig.tight_layout()
    return fig


def neuron_scaling_widget(ws: WeightSpace, layer: int = 1, neuron: int = 0):
    """Sliders for ``q`` (log scale, 1/8 .. 8), the neuron, and a sign flip; redraws the three panels.

    Returns an ``ipywidgets.interactive``; its ``last_frame`` attribute holds the latest
    :class:`NeuronScaling` (the state the figure shows).
    """
    import matplotlib.pyplot as plt

    W = _ipywidgets()
    width = ws.spec.hidden_widths[layer - 1]

    state: dict = {}  # interactive() may call show() before it returns, i.e. before ``ui`` exists

    def show(q: float, neuron: int, flip_sign: bool) -> None:
        fr = neuron_scaling_frame(ws, layer, neuron, -q if flip_sign else q)
        state["last_frame"] = fr
        if "ui" in state:
            state["ui"].last_frame = fr
        fig, axes = plt.subplots(1, 3, figsize=(10, 2.6))
        plot_neuron_scaling(fr, axes)
        fig.suptitle(f"weights moved by {fr.weights_moved:.2f}", fontsize=9, y=1.02)
        plt.show()
        plt.close(fig)

    if _static():  # the committed notebook: the default state, drawn once
        show(1.0, neuron, False)
        return None
    ui = W.interactive(
        show,
        q=W.FloatLogSlider(value=1.0, base=2, min=-3, max=3, step=0.05, description="q"),
        neuron=W.IntSlider(value=neuron, min=0, max=width - 1, description="neuron"),
        flip_sign=W.Checkbox(value=False, description="flip the sign (q -> -q)"),
    )
    state["ui"] = ui
    if "last_frame" in state:
        ui.last_frame = state["last_frame"]
    return ui


# ----------------------------------------------------------------------------------------- merge paths
@dataclass(frozen=True)
class PathRenderings:
    """Renderings along the merge paths of one pair of networks.

    Attributes:
        alphas: ``[A]``; images: ``{method: [A, H, W]}``; blend: ``[A, H, W]``, the pixel blend
        ``(1 - alpha) f_0 + alpha f_1`` of the two original networks; mse: ``{method: [A]}``, the MSE of
        each rendering to the blend.
    """

    alphas: torch.Tensor
    images: Mapping[str, torch.Tensor]
    blend: torch.Tensor
    mse: Mapping[str, torch.Tensor]


def merge_endpoints(ws0: WeightSpace, ws1: WeightSpace, ae=None,
                    methods: Sequence[str] = ("naive", "weight_matching", "decoded"), seed: int = 0
                    ) -> dict[str, tuple[WeightSpace, WeightSpace]]:
    """The two ends of each method's linear path for the pairs ``(ws0[b], ws1[b])``.

    ``decoded`` needs ``ae`` (anything with ``reconstruct(ws) -> WeightSpace``, e.g. a trained
    ``WeightAutoencoder``).
    """
    out: dict[str, tuple[WeightSpace, WeightSpace]] = {}
    for m in methods:
        if m == "naive":
            out[m] = (ws0, ws1)
        elif m == "weight_matching":
            out[m] = (ws0, align(ws0, ws1, seed=seed))
        elif m == "decoded":
            if ae is None:
                raise ValueError("the 'decoded' path needs a trained autoencoder: merge_endpoints(..., ae=ae)")
            with torch.no_grad():
                out[m] = (ae.reconstruct(ws0).to(dtype=ws0.dtype), ae.reconstruct(ws1).to(dtype=ws0.dtype))
        else:
            raise ValueError(f"unknown method {m!r}; choose from 'naive', 'weight_matching', 'decoded'")
    return out


def render_paths(endpoints: Mapping[str, tuple[WeightSpace, WeightSpace]],
                 render: Callable[[WeightSpace], torch.Tensor], alphas: int | Sequence[float] = 21
                 ) -> PathRenderings:
    """Render every method's path at every ``alpha`` for the first pair (``render(ws) -> [B, H, W]``).

    The blend is made from the ``naive`` endpoints (the original networks), which must be present.
    """
    if "naive" not in endpoints:
        raise ValueError("render_paths needs the 'naive' endpoints (the original pair) for the pixel blend")
    a = torch.linspace(0, 1, alphas, dtype=torch.float64) if isinstance(alphas, int) else \
        torch.as_tensor(alphas, dtype=torch.float64)
    images, mse = {}, {}
    with torch.no_grad():
        f0, f1 = (render(w[:1])[0].to(torch.float64) for w in endpoints["naive"])
        aa = a.view(-1, *([1] * f0.dim()))
        blend = (1 - aa) * f0 + aa * f1
        for m, (e0, e1) in endpoints.items():
            img = render(interpolate(e0[:1], e1[:1], a)).to(torch.float64)  # alpha-major, one pair: [A, H, W]
            images[m] = img.cpu()
            mse[m] = (img - blend).pow(2).flatten(1).mean(1).cpu()
    return PathRenderings(a, images, blend.cpu(), mse)


def _nearest(alphas: torch.Tensor, alpha: float) -> int:
    return int((alphas - alpha).abs().argmin())


def plot_paths_at(r: PathRenderings, k: int, axes, vmin: float = 0.0, vmax: float = 1.0) -> None:
    """One row: each method's rendering at ``alphas[k]`` (MSE to the blend in the title), then the blend."""
    for ax, (m, img) in zip(axes, list(r.images.items()) + [("blend", r.blend)]):
        ax.imshow(img[k].clamp(vmin, vmax).numpy(), cmap="gray", vmin=vmin, vmax=vmax)
        title = "pixel blend (ideal)" if m == "blend" else f"{PATH_LABELS.get(m, m)}\nMSE {float(r.mse[m][k]):.4f}"
        ax.set_title(title, fontsize=8)
        ax.axis("off")


def merge_path_grid(r: PathRenderings, alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0)):
    """The static version of the widget: rows = methods and the blend, columns = ``alphas``."""
    import matplotlib.pyplot as plt

    rows = list(r.images) + ["blend"]
    fig, axes = plt.subplots(len(rows), len(alphas), figsize=(1.5 * len(alphas) + 1, 1.6 * len(rows)),
                             squeeze=False)
    for j, alpha in enumerate(alphas):
        k = _nearest(r.alphas, alpha)
        for i, m in enumerate(rows):
            img = r.blend if m == "blend" else r.images[m]
            ax = axes[i, j]
            ax.imshow(img[k].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"alpha = {float(r.alphas[k]):.2f}", fontsize=9)
            if m != "blend":
                ax.set_xlabel(f"MSE {float(r.mse[m][k]):.4f}", fontsize=8)
            if j == 0:
                ax.set_ylabel("pixel blend" if m == "blend" else PATH_LABELS.get(m, m), fontsize=9)
    fig.tight_layout()
    return fig


def merge_path_widget(r: PathRenderings):
    """A slider over ``alpha``: the renderings of every path at ``alpha`` and the MSE curves with a marker.

    Returns an ``ipywidgets.interactive``; ``last_index`` holds the index into ``r.alphas`` on show.
    """
    import matplotlib.pyplot as plt

    W = _ipywidgets()
    step = float(r.alphas[1] - r.alphas[0]) if r.alphas.numel() > 1 else 1.0

    state: dict = {}  # interactive() may call show() before it returns, i.e. before ``ui`` exists

    def show(alpha: float) -> None:
        k = _nearest(r.alphas, alpha)
        state["last_index"] = k
        if "ui" in state:
            state["ui"].last_index = k
        n = len(r.images) + 1
        fig, axes = plt.subplots(1, n + 1, figsize=(2.1 * n + 3.5, 2.4),
                                 gridspec_kw={"width_ratios": [1] * n + [2.2]})
        plot_paths_at(r, k, axes[:n])
        ax = axes[n]
        for m, v in r.mse.items():
            ax.plot(r.alphas.numpy(), v.numpy(), label=PATH_LABELS.get(m, m))
        ax.axvline(float(r.alphas[k]), color="k", lw=0.8)
        # linear axis: the naive and weight-matched MSEs are exactly 0 at the endpoints (a log axis
        # would drop those points and exaggerate the rest)
        ax.set(xlabel="alpha", ylabel="MSE", title="MSE to the pixel blend")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
        fig.tight_layout()
        plt.show()
        plt.close(fig)

    if _static():  # the committed notebook: the default state, drawn once
        show(0.5)
        return None
    ui = W.interactive(show, alpha=W.FloatSlider(value=0.5, min=float(r.alphas.min()), max=float(r.alphas.max()),
                                                 step=step, description="alpha"))
    state["ui"] = ui
    if "last_index" in state:
        ui.last_index = state["last_index"]
    return ui
