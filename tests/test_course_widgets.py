"""The notebook widgets' logic and static figures (no browser, no kernel)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from scalegmn_lite.course.widgets import (  # noqa: E402
    merge_endpoints,
    merge_path_grid,
    merge_path_widget,
    neuron_scaling_frame,
    neuron_scaling_grid,
    neuron_scaling_widget,
    render_paths,
    scale_neuron,
)
from scalegmn_lite.weightspace.gauge import GaugeElement, NotASymmetryError  # noqa: E402
from scalegmn_lite.weightspace.spec import NetworkSpec  # noqa: E402
from scalegmn_lite.weightspace.weights import WeightSpace, batched_forward  # noqa: E402


def _net(text: str, seed: int = 0, batch: int = 1) -> WeightSpace:
    gen = torch.Generator().manual_seed(seed)
    return WeightSpace.randn(NetworkSpec.from_text(text), batch, generator=gen, dtype=torch.float64, bias_std=0.5)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_scale_neuron_moves_exactly_one_row_and_column_and_keeps_the_function():
    ws = _net("mlp 3-5-4-2 relu", batch=3)
    q = 2.7
    moved = scale_neuron(ws, layer=2, neuron=1, q=q)
    w2, w3 = ws.weights[1], ws.weights[2]
    m2, m3 = moved.weights[1], moved.weights[2]
    assert torch.allclose(m2[:, 1], q * w2[:, 1]) and torch.allclose(moved.biases[1][:, 1], q * ws.biases[1][:, 1])
    assert torch.allclose(m3[:, :, 1], w3[:, :, 1] / q)
    keep = [0, 2, 3]
    assert torch.equal(m2[:, keep], w2[:, keep]) and torch.equal(m3[:, :, keep], w3[:, :, keep])
    assert torch.equal(moved.weights[0], ws.weights[0])
    x = torch.randn(50, 3, dtype=torch.float64)
    assert torch.allclose(batched_forward(moved, x), batched_forward(ws, x), atol=1e-12)


def test_scale_neuron_rejects_non_symmetries_and_bad_indices():
    relu, tanh = _net("mlp 1-4-1 relu"), _net("mlp 1-4-1 tanh")
    with pytest.raises(NotASymmetryError, match="positive"):
        scale_neuron(relu, 1, 0, -1.0)
    with pytest.raises(NotASymmetryError, match="sign"):
        scale_neuron(tanh, 1, 0, 2.0)
    scale_neuron(tanh, 1, 0, -1.0)  # a sign flip is a symmetry of tanh
    with pytest.raises(ValueError, match="hidden layer"):
        scale_neuron(relu, 2, 0, 2.0)
    with pytest.raises(ValueError, match="4 neurons"):
        scale_neuron(relu, 1, 4, 2.0)
    with pytest.raises(ValueError, match="not invertible"):
        scale_neuron(relu, 1, 0, 0.0)


@pytest.mark.parametrize("q", [0.125, 0.5, 3.0, 8.0])
def test_frame_weights_move_function_does_not(q):
    fr = neuron_scaling_frame(_net("mlp 1-8-8-1 relu"), layer=1, neuron=3, q=q)
    assert fr.symmetry
    assert fr.function_moved < 1e-12
    assert fr.weights_moved > 0.05
    assert torch.allclose(fr.w_in_scaled, q * fr.w_in) and torch.allclose(fr.w_out_scaled, fr.w_out / q)


def test_frame_sign_flip_is_a_non_symmetry_for_relu_but_not_for_tanh():
    relu = neuron_scaling_frame(_net("mlp 1-8-1 relu", seed=1), 1, 0, -1.0)
    assert not relu.symmetry and relu.function_moved > 1e-3
    tanh = neuron_scaling_frame(_net("mlp 1-8-1 tanh", seed=1), 1, 0, -1.0)
    assert tanh.symmetry and tanh.function_moved < 1e-12


def test_frame_needs_a_one_dimensional_mlp():
    with pytest.raises(ValueError, match="1 -> ... -> 1"):
        neuron_scaling_frame(_net("mlp 2-4-1 relu"), 1, 0, 2.0)


def test_neuron_scaling_grid_has_a_row_per_q():
    fig = neuron_scaling_grid(_net("mlp 1-6-6-1 relu"), qs=(0.5, 2.0, -1.0))
    assert len(fig.axes) == 9
    titles = [ax.get_title() for ax in fig.axes[2::3]]
    assert titles[0].startswith("same function") and titles[1].startswith("same function")
    assert titles[2].startswith("function changed")


def test_neuron_scaling_widget_redraws_on_the_slider():
    pytest.importorskip("ipywidgets")
    ui = neuron_scaling_widget(_net("mlp 1-6-6-1 relu"), layer=1, neuron=2)
    q, neuron, flip = ui.children[:3]
    q.value = 4.0
    assert ui.last_frame.q == pytest.approx(4.0) and ui.last_frame.neuron == 2
    assert ui.last_frame.function_moved < 1e-12
    flip.value = True
    assert ui.last_frame.q == pytest.approx(-4.0) and ui.last_frame.function_moved > 1e-3
    neuron.value = 5
    assert ui.last_frame.neuron == 5


# ------------------------------------------------------------------------------------------- merge paths
GRID = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 6), torch.linspace(-1, 1, 6), indexing="ij"), -1)
COORDS = GRID.reshape(-1, 2).to(torch.float64)


def _render(ws: WeightSpace) -> torch.Tensor:
    return batched_forward(ws, COORDS).reshape(ws.batch_size, 6, 6)


class _Identity:
    """Stands in for a trained autoencoder: reconstruct returns the input (decoded path == naive)."""

    def reconstruct(self, ws):
        return ws


def _orbit_pair(seed: int = 0):
    ws0 = _net("mlp 2-8-8-1 tanh", seed=seed)
    g = GaugeElement.sample(ws0.spec, 1, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    return ws0, g.apply(ws0)


def test_render_paths_on_an_orbit_pair():
    """theta_1 = g.theta_0: weight matching undoes g (a flat path); the naive path leaves the orbit."""
    ws0, ws1 = _orbit_pair()
    ends = merge_endpoints(ws0, ws1, ae=_Identity())
    r = render_paths(ends, _render, alphas=11)
    assert r.alphas.shape == (11,) and r.images["naive"].shape == (11, 6, 6) and r.blend.shape == (11, 6, 6)
    assert float(r.mse["weight_matching"].max()) < 1e-20
    assert float(r.mse["naive"][5]) > 1e-4
    assert float(r.mse["naive"][0]) < 1e-24 and float(r.mse["naive"][-1]) < 1e-24  # ends are the networks
    assert torch.equal(r.mse["decoded"], r.mse["naive"])


def test_render_paths_between_different_networks_matches_the_blend_at_the_ends():
    ws0, ws1 = _net("mlp 2-8-1 relu", seed=3), _net("mlp 2-8-1 relu", seed=4)
    r = render_paths(merge_endpoints(ws0, ws1, methods=("naive", "weight_matching")), _render, alphas=[0.0, 0.5, 1.0])
    for m in ("naive", "weight_matching"):
        assert float(r.mse[m][0]) < 1e-20 and float(r.mse[m][2]) < 1e-20
    assert torch.allclose(r.blend[1], 0.5 * (_render(ws0)[0] + _render(ws1)[0]).double())


def test_merge_endpoints_errors():
    ws0, ws1 = _orbit_pair()
    with pytest.raises(ValueError, match="autoencoder"):
        merge_endpoints(ws0, ws1)
    with pytest.raises(ValueError, match="unknown method"):
        merge_endpoints(ws0, ws1, methods=("rebasin",))
    with pytest.raises(ValueError, match="naive"):
        render_paths(merge_endpoints(ws0, ws1, methods=("weight_matching",)), _render)


def test_merge_path_grid_and_widget():
    ws0, ws1 = _orbit_pair(seed=2)
    r = render_paths(merge_endpoints(ws0, ws1, ae=_Identity()), _render, alphas=21)
    fig = merge_path_grid(r, alphas=(0.0, 0.5, 1.0))
    assert len(fig.axes) == 4 * 3
    assert fig.axes[1].get_title() == "alpha = 0.50"
    pytest.importorskip("ipywidgets")
    ui = merge_path_widget(r)
    ui.children[0].value = 0.25
    assert ui.last_index == 5


def test_static_widgets_draw_their_default_state(monkeypatch):
    """What the notebook build runs (course.widgets.STATIC_ENV): one figure, no ipywidgets object."""
    import matplotlib.pyplot as plt
    import torch

    from scalegmn_lite import NetworkSpec, WeightSpace
    from scalegmn_lite.course import widgets

    monkeypatch.setenv(widgets.STATIC_ENV, "1")
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(plt.gcf()))
    ws = WeightSpace.randn(NetworkSpec.from_text("mlp 1-4-4-1 relu"), 1, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(0))
    assert widgets.neuron_scaling_widget(ws, layer=1, neuron=0) is None and len(shown) == 1
