"""Exercise checks of the course (scalegmn_lite.course): the reference solutions (the same code as the
notebooks' <details> blocks) pass, typical wrong answers fail, unanswered stubs are "not attempted"."""

import math

import matplotlib
import pandas as pd
import sympy as sp
import torch

from scalegmn_lite import AmortizedOperator, NetworkSpec, WeightSpace, batched_forward
from scalegmn_lite.course.feedback import Feedback
from scalegmn_lite.course.gauge import (
    EXERCISE_02_4_NETWORK,
    LEAKY_CANDIDATES,
    check_bias_dims,
    check_circular_dims,
    check_composition,
    check_conv_dims_formula,
    check_cubic_and_abs,
    check_flatten_dims,
    check_leaky_slopes,
    check_siren_shift,
)
from scalegmn_lite.course.layers import (
    check_backward_message,
    check_edge_rescaling,
    check_edge_width,
    check_flattened_inputs,
    check_invariant_view,
    check_sign_linear_maps,
)
from scalegmn_lite.course.metanets import (
    check_invariant_features,
    check_loss_barrier,
    check_operator_equivariance,
    check_tanh_cnn_symmetry,
)
from scalegmn_lite.course.zoos import check_accuracy_spread, check_batched_mlp, check_psnr
from scalegmn_lite.nn.baselines import layer_statistics
from scalegmn_lite.symbolic.conv import dense_index, network_index, scaling_dimension

matplotlib.use("Agg")


def stub(*args, **kwargs):
    raise NotImplementedError


# ----------------------------------------------------------------- reference solutions (as in the notebooks)
def siren_shift(ws, layer, neuron):
    w0 = ws.spec.layers[layer - 1].activation_param
    weights, biases = [t.clone() for t in ws.weights], [t.clone() for t in ws.biases]
    biases[layer - 1][:, neuron] += math.pi / w0
    weights[layer][:, :, neuron] *= -1
    return WeightSpace(ws.spec, weights, biases)


def conv_dims(c, n, stride, padding):
    n1 = (n + 2 * padding - 3) // stride + 1
    n2 = (n1 + 2 * padding - 3) // stride + 1
    return 2 * c, c * (n1 + n2)


def flattened_dims():
    spec = NetworkSpec.from_text(EXERCISE_02_4_NETWORK)
    dims = []
    for dense in (False, True):
        idx, _, _ = network_index(spec, dense=dense)
        flat = dense_index(*idx[-1].shape) + int(max(m.max() for m in idx))
        dims.append(scaling_dimension(idx[:-1] + [flat]))
    return tuple(dims)


def batched_mlp(W1, b1, W2, b2, x):
    h = torch.relu(torch.baddbmm(b1[:, None], x.expand(W1.shape[0], -1, -1), W1.transpose(1, 2)))
    return torch.baddbmm(b2[:, None], h, W2.transpose(1, 2))


def edges_after_gauge(graph, g):
    widths = graph.spec[0].widths
    dt = graph.edge_attr.dtype
    perms = [torch.arange(widths[0])] + [p[0] for p in g.perms] + [torch.arange(widths[-1])]
    scales = [torch.ones(widths[0], dtype=dt)] + [s[0].to(dt) for s in g.scales] + [torch.ones(widths[-1], dtype=dt)]
    out, off = [], 0
    for l in range(1, len(widths)):
        E = graph.edge_attr[off:off + widths[l] * widths[l - 1], 0].reshape(widths[l], widths[l - 1])
        out.append((scales[l][:, None] * E[perms[l]][:, perms[l - 1]] / scales[l - 1][None, :]).reshape(-1, 1))
        off += widths[l] * widths[l - 1]
    return torch.cat(out)


def probe_features(ws):
    x = torch.linspace(-1, 1, 16 * ws.spec.widths[0], dtype=ws.dtype).reshape(16, -1).sin()
    return batched_forward(ws, x).flatten(1)


def spread(metadata, checkpoints):
    pooled = pd.concat([metadata[f"test_acc@{e}"] for e in checkpoints])
    return float(pooled.quantile(0.9) - pooled.quantile(0.1))


def barrier(alphas, losses):
    line = losses[:, :1] * (1 - alphas) + losses[:, -1:] * alphas
    return (losses - line).max(1).values


# ----------------------------------------------------------------- tests
def test_feedback_prints_one_line_and_stub_is_not_attempted():
    fb = check_psnr(stub)
    assert isinstance(fb, Feedback) and fb.ok is None and not fb
    assert str(fb).startswith("exercise 03.3: not attempted") and "\n" not in str(fb)
    crashed = check_psnr(lambda a, b: 1 / 0)
    assert crashed.ok is False and "ZeroDivisionError" in crashed.message


def test_notebook_01_checks():
    assert check_cubic_and_abs({-1, 1}, "positive_scale")
    assert not check_cubic_and_abs({-1, 0, 1}, "positive_scale")  # q = 0 is not invertible
    assert not check_cubic_and_abs({-1, 1}, "sign")
    assert check_siren_shift(siren_shift)

    def pi_shift(ws, layer, neuron):  # the exercise's wrong variant: pi instead of pi / w0
        out = siren_shift(ws, layer, neuron)
        out.biases[layer - 1][:, neuron] += math.pi - math.pi / ws.spec.layers[layer - 1].activation_param
        return out

    assert not check_siren_shift(pi_shift)
    assert not check_siren_shift(lambda ws, layer, neuron: ws)
    assert check_composition(lambda g1, g2: g2 @ g1)
    assert not check_composition(lambda g1, g2: g1 @ g2)
    assert check_leaky_slopes(set(LEAKY_CANDIDATES), {0.5, 1, 2})
    assert not check_leaky_slopes({0.5, 1, 2}, {0.5, 1, 2})  # a = 1 is linear: negative q work too
    assert not check_leaky_slopes(set(LEAKY_CANDIDATES), {-1, 0.5, 1, 2})  # |x| is not odd
    assert not check_leaky_slopes({0, 1}, {1})  # not among the candidates
    assert check_leaky_slopes(None, None).ok is None
    assert check_siren_shift(stub).ok is None and check_composition(stub).ok is None


def test_notebook_02_check():
    assert check_conv_dims_formula(conv_dims)
    assert not check_conv_dims_formula(lambda c, n, s, p: (2 * c, 2 * c * n))  # ignores stride and padding
    assert check_conv_dims_formula(stub).ok is None
    assert check_bias_dims((2 * 4, 4 * (8 + 4)))
    assert not check_bias_dims((0, 48))  # the biases do not fix the channels
    assert not check_bias_dims((8, 4 * (14 + 12)))  # positions without stride and padding
    assert check_bias_dims(None).ok is None
    assert check_circular_dims(lambda c_out, c_in, k, n: c_out + c_in)
    assert not check_circular_dims(lambda c_out, c_in, k, n: c_out + c_in + 1)  # kept the ramp
    assert not check_circular_dims(lambda c_out, c_in, k, n: 2)  # one channel each only
    assert check_circular_dims(stub).ok is None
    assert flattened_dims() == (8, 104) and check_flatten_dims(flattened_dims())
    assert not check_flatten_dims((4 + 4 * 12, 104))  # the last conv layer's positions are still tied
    assert not check_flatten_dims((8, 8))
    assert check_flatten_dims(None).ok is None


def test_notebook_03_checks():
    assert check_batched_mlp(batched_mlp)
    assert not check_batched_mlp(lambda W1, b1, W2, b2, x: batched_mlp(W1, b1, W2, b2, x).transpose(0, 1))
    assert check_psnr(lambda img, t: 10 * torch.log10(1 / (img - t).pow(2).flatten(1).mean(1)))
    assert not check_psnr(lambda img, t: 10 * torch.log10(1 / (img - t).pow(2).mean()).expand(img.shape[0]))
    assert check_psnr(stub).ok is None
    assert check_accuracy_spread(spread)
    final_only = lambda md, cps: md["test_acc"].quantile(0.9) - md["test_acc"].quantile(0.1)
    assert not check_accuracy_spread(final_only)  # ignores the checkpoints
    per_checkpoint = lambda md, cps: sum(spread(md, [e]) for e in cps) / len(cps)
    assert not check_accuracy_spread(per_checkpoint)  # the mean of per-checkpoint spreads
    assert check_accuracy_spread(stub).ok is None and check_batched_mlp(stub).ok is None


def test_notebook_04_checks():
    assert check_edge_rescaling(edges_after_gauge)
    assert not check_edge_rescaling(lambda graph, g: graph.edge_attr)  # forgot the gauge
    # conv1d k5: 4*1 + 4*4 edges of 5 entries padded to 9; conv2d k3: 9 entries; dense 4*3 edges of 1 entry
    masked = (4 + 16) * 4 + 4 * 3 * 8 + 4 * 3 * 8
    assert check_edge_width(9, masked)
    assert not check_edge_width(5, masked) and not check_edge_width(9, 0)
    assert check_edge_rescaling(stub).ok is None
    assert check_flattened_inputs(4 * 4 * 4, 4)
    assert not check_flattened_inputs(4 * 6 * 6, 4)  # positions of the first conv layer
    assert not check_flattened_inputs(64, 64)  # one q per position: not a symmetry of the conv layers
    assert check_flattened_inputs(None, None).ok is None


def test_notebook_05_checks():
    assert check_sign_linear_maps(sp.diag(*sp.symbols("a b c")))
    assert not check_sign_linear_maps(sp.Matrix(3, 3, sp.symbols("l0:9")))
    assert not check_sign_linear_maps(sp.zeros(3, 3))  # commutes, but is not the most general map
    assert check_invariant_view(lambda x: x / x.norm(dim=-1, keepdim=True).clamp(min=1e-6))
    assert not check_invariant_view(lambda x: x / (x.norm(dim=-1, keepdim=True) + 1e-3))  # exercise 2's guard
    assert check_invariant_view(lambda x: x.abs(), "sign")
    assert not check_invariant_view(lambda x: x / x.norm(dim=-1, keepdim=True), "sign")
    assert not check_invariant_view(lambda x: torch.ones_like(x), "sign")
    published = check_backward_message(lambda x, e, ei: x[ei[1]] / e)
    assert published and "infinite" in published.message
    assert not check_backward_message(lambda x, e, ei: x[ei[1]] / e, zero_edge_ok=True)
    assert not check_backward_message(lambda x, e, ei: x[ei[1]] * e)  # scales like q_t^2 / q_s


def test_notebook_06_checks():
    assert check_tanh_cnn_symmetry("sign") and not check_tanh_cnn_symmetry("positive_scale")
    assert check_invariant_features(probe_features)
    assert not check_invariant_features(layer_statistics)  # StatNN's features move under scalings
    assert not check_invariant_features(lambda ws: torch.ones(ws.batch_size, 1, dtype=ws.dtype))


def test_notebook_07_check():
    torch.manual_seed(0)
    op = AmortizedOperator(hidden_dim=8, num_layers=1)
    with torch.no_grad():
        op.gmn.update_scales.fill_(0.5)
    assert check_operator_equivariance(op)
    gmn = AmortizedOperator(hidden_dim=8, num_layers=1, mode="permutation")
    with torch.no_grad():
        gmn.gmn.update_scales.fill_(0.5)
    assert not check_operator_equivariance(gmn)  # blind to the sign flips of tanh layers
    assert not check_operator_equivariance(lambda ws: ws)  # equivariant but does nothing


def test_notebook_08_check():
    assert check_loss_barrier(barrier)
    assert not check_loss_barrier(lambda a, L: L.max(1).values - L[:, [0, -1]].max(1).values)


def test_graph_plot_shares_one_colour_scale():
    import matplotlib.pyplot as plt

    from scalegmn_lite import GaugeElement, NetworkSpec, to_graph
    from scalegmn_lite.course.plots import draw_network_graph, shared_norm, vertex_labels

    spec = NetworkSpec.from_text("mlp 2-3-1 relu")
    ws = WeightSpace.randn(spec, 1, torch.Generator().manual_seed(0))
    g0, g1 = to_graph(ws), to_graph(GaugeElement.sample(spec, 1, torch.Generator().manual_seed(1)).apply(ws))
    norm = shared_norm(g0.x, g1.x)
    assert norm.vmin == -norm.vmax and norm.vmax >= float(g1.x.abs().max())
    assert vertex_labels(g0) == ["in0", "in1", "h1.0", "h1.1", "h1.2", "out0"]
    fig, axes = plt.subplots(1, 2)
    mappable = draw_network_graph(g0, axes[0], norm, 1.0, notes={2: "q=2.00"})
    assert mappable.norm is norm
    plt.close(fig)


def test_value_answers_left_at_none_are_not_attempted():
    assert check_sign_linear_maps(None).ok is None
    assert check_edge_width(None, None).ok is None
    assert check_cubic_and_abs(None, None).ok is None
    assert check_tanh_cnn_symmetry(None).ok is None


def test_ranking_sentences_follow_the_numbers():
    from scalegmn_lite.course.narrate import overlaps, ranking

    res = {"scalegmn": {"mean": 0.05, "ci": [0.0, 0.1]}, "gmn": {"mean": 0.3, "ci": [0.2, 0.4]},
           "statnn": {"mean": 0.1, "ci": [0.05, 0.2]}}
    text = ranking(res, "accuracy", focus="scalegmn", chance=0.1)
    assert "scalegmn ranks 3 of 3 on accuracy (last)." in text
    assert "does not overlap gmn's: gmn is better here" in text
    assert "not distinguishable from chance" in text
    res["scalegmn"] = {"mean": 0.25, "ci": [0.15, 0.35]}
    text = ranking(res, "accuracy", focus="scalegmn", chance=0.1)
    assert "ranks 2 of 3" in text and "overlaps gmn's" in text and "above chance" in text
    assert overlaps({"ci": [0, 1]}, {"ci": [1, 2]}) and not overlaps({"ci": [0, 1]}, {"ci": [1.5, 2]})
