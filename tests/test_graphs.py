"""Graphs: exact round trips for random architectures and heterogeneous batches; gauge action."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalegmn_lite import GaugeElement, LayerSpec, NetworkSpec, SpecError, WeightSpace
from scalegmn_lite.nn.graphs import HIDDEN, INPUT, OUTPUT, SYM_CODES, from_graph, graph_to_weights, to_graph

torch.set_num_threads(1)

ACTS = ["relu", "tanh", "sine", "sigmoid", "identity"]


@st.composite
def specs(draw):
    act = draw(st.sampled_from(ACTS))
    if draw(st.booleans()):
        widths = draw(st.lists(st.integers(1, 5), min_size=2, max_size=5))
        return NetworkSpec.from_text(f"mlp {'-'.join(map(str, widths))} {act}")
    fam = draw(st.sampled_from(["conv1d", "conv2d"]))
    chans = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    dense = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    k = draw(st.integers(1, 3))
    widths = "-".join(map(str, chans)) + ("/" + "-".join(map(str, dense)) if dense else "")
    return NetworkSpec.from_text(f"{fam} {widths} k{k} {act}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(specs(), st.integers(1, 3)), min_size=1, max_size=4), st.integers(0, 2**31 - 1))
def test_round_trip_exact_heterogeneous(items, seed):
    g = torch.Generator().manual_seed(seed)
    wss = [WeightSpace.randn(s, b, g) for s, b in items]
    batch = to_graph(wss)
    assert batch.num_graphs == sum(b for _, b in items)
    back = from_graph(batch)
    assert len(back) == len(wss)
    for a, b in zip(wss, back):
        assert a.spec == b.spec and all(torch.equal(x, y) for x, y in zip(a.params(), b.params()))


def test_structure_of_a_tiny_mlp():
    spec = NetworkSpec.from_text("mlp 2-3-1 relu")
    ws = WeightSpace.randn(spec, 1, torch.Generator().manual_seed(0))
    g = to_graph(ws)
    assert g.num_nodes == 6 and g.num_edges == 2 * 3 + 3 * 1
    assert g.vtype.tolist() == [INPUT] * 2 + [HIDDEN] * 3 + [OUTPUT]
    assert g.sym.tolist() == [0, 0] + [SYM_CODES[spec.symmetries[0]]] * 3 + [0]
    assert g.x[:2].abs().sum() == 0 and torch.equal(g.x[2:5, 0], ws.biases[0][0])
    # edge s -> t of layer 1 carries W_1[t, s]
    for e in range(6):
        s, t = g.edge_index[:, e].tolist()
        assert g.edge_attr[e, 0] == ws.weights[0][0, t - 2, s]


def test_conv_kernels_padded_with_mask():
    wss = [WeightSpace.randn(NetworkSpec.from_text("conv2d 1-2/3 k3 relu"), 2),
           WeightSpace.randn(NetworkSpec.from_text("conv1d 1-2/3 k2 tanh"), 1)]
    g = to_graph(wss)
    assert g.edge_attr.shape[1] == 9
    assert int(g.edge_mask.sum()) == 2 * (2 * 9 + 6) + (2 * 2 + 6)
    assert bool((g.edge_attr[~g.edge_mask] == 0).all())
    back = from_graph(to_graph(wss, kernel_dim=12))
    assert all(torch.equal(a, b) for a, b in zip(wss[1].params(), back[1].params()))
    try:
        to_graph(wss, kernel_dim=4)
    except SpecError as err:
        assert "kernel_dim" in str(err)
    else:
        raise AssertionError("kernel_dim smaller than a kernel must fail")


def test_gauge_action_on_graph_features():
    """Hidden vertex features scale by q (after permutation), edges by q_t / q_s."""
    spec = NetworkSpec.from_text("mlp 3-4-2 relu")
    gen = torch.Generator().manual_seed(1)
    ws = WeightSpace.randn(spec, 1, gen, dtype=torch.float64)
    g = GaugeElement.sample(spec, 1, gen, dtype=torch.float64)
    a, b = to_graph(ws), to_graph(g.apply(ws))
    p, q = g.perms[0][0], g.scales[0][0]
    assert torch.allclose(b.x[3:7, 0], q * a.x[3:7, 0][p])
    W = a.edge_attr[:12, 0].reshape(4, 3)
    assert torch.allclose(b.edge_attr[:12, 0].reshape(4, 3), q[:, None] * W[p])
    assert not torch.allclose(a.x, b.x)


def test_graph_to_weights_shapes_and_errors():
    ws = WeightSpace.randn(NetworkSpec.from_text("mlp 2-3-1 relu"), 2)
    g = to_graph(ws)
    out = graph_to_weights(g, torch.ones(g.num_nodes), torch.ones(g.num_edges))
    assert bool((out[0].flatten() == 1).all())
    try:
        graph_to_weights(g, torch.ones(g.num_nodes + 1), torch.ones(g.num_edges))
    except ValueError as err:
        assert "rows" in str(err)
    else:
        raise AssertionError


def test_flatten_without_pooling_is_rejected():
    try:
        NetworkSpec((LayerSpec("conv1d", 1, 2, (3,), activation="relu"), LayerSpec("linear", 2, 3)))
    except SpecError as err:
        assert "pool" in str(err).lower()
    else:
        raise AssertionError


@pytest.mark.parametrize("texts", [("conv1d 1-16-16/10 k5 s2 tanh 1x40",),
                                   ("mlp 4-6-6-2 relu,tanh", "conv2d 1-4-4/10 k3 relu 1x8x8"), ("siren 2-8-8-1",)])
def test_reused_structure_equals_the_collated_batch(texts):
    """Issue 21: ``to_graph`` reuses the collated structure of a (specs, batch sizes) it has seen and
    only rebuilds the features; the batch equals PyG's collation of one ``Data`` per network, on the
    first call and on later ones with other weights, and gradients reach the weights."""
    from scalegmn_lite.nn.graphs import _to_graph_collate

    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        items = [WeightSpace.randn(NetworkSpec.from_text(t), n, g, dtype=torch.float64) for t, n in zip(texts, (3, 1))]
        a, b = to_graph(items, 9), _to_graph_collate(items, 9, None, None)
        assert set(a.keys()) == set(b.keys()) and a.num_graphs == b.num_graphs and torch.equal(a.ptr, b.ptr)
        for k in b.keys():
            if isinstance(b[k], torch.Tensor):
                assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
            else:
                assert a[k] == b[k], k
    w = items[0].map(lambda t: t.clone().requires_grad_())
    to_graph([w, *items[1:]], 9).edge_attr.sum().backward()
    assert all(t.grad is not None and bool((t.grad == 1).all()) for t in w.weights)
