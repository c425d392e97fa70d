"""Block networks (weightspace.blocks): text form, torch modules, the weights container, errors and dim G_scale."""

from __future__ import annotations

import random

import pytest
import torch
from block_specs import random_spec
from torch import nn

from scalegmn_lite.symbolic.residual import (
    ResidualSizes,
    gauge_dims_summary,
    layernorm_scaling_derivation,
    residual_scaling_dims,
)
from scalegmn_lite.weightspace import NetworkSpec, SpecError, Symmetry
from scalegmn_lite.weightspace.block_weights import BlockWeights
from scalegmn_lite.weightspace.blocks import (
    BlockNetworkSpec,
    LayerSpec,
    Norm,
    Residual,
    ResidualBlock,
    parse_network,
)

EXACT = 1e-10
F64 = torch.float64
EXAMPLES = {  # text -> (number of top-level elements, dim G_scale terms)
    "mlp 40-64-[64-64]x2-10 relu": (4, {"hidden": 128, "stream": 64, "batchnorm": 0, "layernorm": 0}),
    "mlp 40-64bn-[64ln-64]-10 tanh": (4, {"hidden": 0, "stream": 0, "batchnorm": 64, "layernorm": 1}),
    "mlp 8-16:identity-[32-16]x3:identity-4 relu": (5, {"hidden": 96, "stream": 16, "batchnorm": 0, "layernorm": 0}),
    "mlp 40-[64-128|proj]-10 relu": (2, {"hidden": 64, "stream": 128, "batchnorm": 0, "layernorm": 0}),
    "conv1d 1-16bn-[16bn-16bn]x2-[32s2bn-32bn|projs2bn]/10 k3 p1 relu 1x32":
        (6, {"hidden": 64, "stream": 48, "batchnorm": 176, "layernorm": 0}),
    "mlp 8-16bn-4 relu eps=0": (3, {"hidden": 16, "stream": 0, "batchnorm": 16, "layernorm": 0}),
}
CHAINS = ["mlp 64-32-10 relu", "mlp 4-8-8-2 relu,leaky_relu=0.2", "mlp 2-32-32-1 sine a=30",
          "conv1d 1-8-8/10 k3 tanh 1x40", "conv1d 1-8-16 k5,3 s1,2 p0,1 relu", "mlp 3-5-2 tanh out=sigmoid"]


def _x(spec: BlockNetworkSpec, gen: torch.Generator, n: int = 7) -> torch.Tensor:
    return torch.randn(n, *spec.input_shape, generator=gen, dtype=F64)


# ---------------------------------------------------------------- text form
def test_text_round_trips_for_random_specs():
    rng = random.Random(0)
    for _ in range(300):
        spec = random_spec(rng)
        text = spec.to_text()
        assert BlockNetworkSpec.from_text(text) == spec, text
        assert BlockNetworkSpec.from_text(text).to_text() == text


@pytest.mark.parametrize("text", list(EXAMPLES))
def test_documented_examples(text):
    spec = BlockNetworkSpec.from_text(text)
    n, terms = EXAMPLES[text]
    assert len(spec.blocks) == n and spec.to_text() == text
    assert spec.scale_dim_terms == terms and spec.scale_dim == sum(terms.values())
    assert isinstance(parse_network(text), BlockNetworkSpec)


def test_text_meaning():
    spec = BlockNetworkSpec.from_text("mlp 40-64-[64-64]x2-10 relu")
    stem, b1, b2, head = spec.blocks
    assert stem == LayerSpec("linear", 40, 64, activation="relu") and b1 == b2 and head.activation is None
    assert b1.is_identity and b1.activation == "relu"
    assert b1.branch == (LayerSpec("linear", 64, 64, activation="relu"), LayerSpec("linear", 64, 64))
    resnet = BlockNetworkSpec.from_text("conv1d 1-16bn-[16bn-16bn]x2-[32s2bn-32bn|projs2bn]/10 k3 p1 relu 1x32")
    down = resnet.blocks[4]
    assert down.shortcut == (LayerSpec("conv1d", 16, 32, (1,), stride=2), Norm("batchnorm", 32))
    assert down.branch[0] == LayerSpec("conv1d", 16, 32, (3,), stride=2, padding=1)
    assert down.branch[1] == Norm("batchnorm", 32, activation="relu") and down.branch[-1].activation is None
    eps = BlockNetworkSpec.from_text("mlp 4-8bn(eps=0.01)-8ln-2 tanh eps=0")
    assert [n.eps for n in eps.norms] == [0.01, 0.0] and eps.with_eps(0.5).norms[0].eps == 0.5


@pytest.mark.parametrize("text", CHAINS)
def test_chain_text_gives_todays_network_spec(text):
    chain = NetworkSpec.from_text(text)
    block = BlockNetworkSpec.from_text(text)
    assert block.is_chain and block.to_chain() == chain and block.to_text() == chain.to_text()
    assert parse_network(text) == chain and type(parse_network(text)) is NetworkSpec
    with pytest.raises(SpecError, match="BlockNetworkSpec.from_text"):
        NetworkSpec.from_text("mlp 4-[4-4]-2 relu")


# ---------------------------------------------------------------- modules and the container
def test_module_round_trips_and_forward_match_torch():
    rng, gen = random.Random(1), torch.Generator().manual_seed(1)
    for _ in range(25):
        spec = random_spec(rng)
        module = spec.to_module()
        assert not module.training and BlockNetworkSpec.from_module(module, spec.input_shape) == spec
        bw = BlockWeights.randn(spec, 2, gen, dtype=F64)
        x = _x(spec, gen)
        out = bw(x)
        assert out.shape == (2, 7, spec.out_dim)
        mods = bw.to_modules()
        for i, m in enumerate(mods):
            assert (m(x) - out[i]).abs().max() <= EXACT
        back = BlockWeights.from_modules(mods, input_shape=spec.input_shape)
        assert back.spec == spec and back.max_abs_diff(bw) == 0
        zero = spec.with_eps(0.0)
        assert (BlockWeights(zero, bw.params).to_module(1)(x) - bw(x, eps=0.0)[1]).abs().max() <= EXACT


def test_hand_built_resnet_module():
    torch.manual_seed(0)

    def bn(c):
        m = nn.BatchNorm1d(c)
        m.running_mean.normal_()
        m.running_var.uniform_(0.5, 2)
        return m

    def basic(c):
        return Residual(nn.Sequential(nn.Conv1d(c, c, 3, padding=1), bn(c), nn.ReLU(), nn.Conv1d(c, c, 3, padding=1),
                                      bn(c)), activation=nn.ReLU())

    model = nn.Sequential(
        nn.Conv1d(2, 8, 3, padding=1), bn(8), nn.ReLU(), basic(8),
        Residual(nn.Sequential(nn.Conv1d(8, 16, 3, stride=2, padding=1), bn(16), nn.ReLU(),
                               nn.Conv1d(16, 16, 3, padding=1), bn(16)),
                 nn.Sequential(nn.Conv1d(8, 16, 1, stride=2), bn(16))),
        nn.ReLU(),  # after the block: its post-addition activation
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(0.1),
        nn.Sequential(nn.Linear(16, 12), nn.LayerNorm(12), nn.Tanh(), nn.Linear(12, 3)),
    ).double().eval()
    spec = BlockNetworkSpec.from_module(model, (2, 20))
    assert spec.to_text() == "conv1d 2-8bn-[8bn-8bn]-[16s2bn-16bn|projs2bn]/12ln:tanh-3 k3 p1 relu 2x20"
    bw = BlockWeights.from_module(model, (2, 20))
    x = torch.randn(5, 2, 20, dtype=F64)
    assert (model(x) - bw(x)[0]).abs().max() <= EXACT
    assert bw.param("1.running_var").shape == (1, 8)
    assert bw.param("3.shortcut.1.gamma").shape == (1, 16)


def test_container_operations():
    spec = BlockNetworkSpec.from_text("mlp 5-6bn-[7ln-6|proj]x2-3 relu")
    gen = torch.Generator().manual_seed(2)
    a, b = BlockWeights.randn(spec, 3, gen, dtype=F64), BlockWeights.randn(spec, 2, gen, dtype=F64)
    both = BlockWeights.stack([a, b])
    assert len(both) == 5 and both[3].max_abs_diff(b[0]) == 0 and both[-1].max_abs_diff(b[1]) == 0
    flat = both.flatten()
    assert flat.shape == (5, spec.num_params) and BlockWeights.unflatten(spec, flat).max_abs_diff(both) == 0
    assert (a + a - a).allclose(a) and (2 * a).max_abs_diff(a * 2.0) == 0
    assert a.names[:6] == ("0.weight", "0.bias", "1.gamma", "1.beta", "1.running_mean", "1.running_var")
    assert a.replace_params({"0.bias": torch.zeros(3, 6, dtype=F64)}).param("0.bias").abs().max() == 0
    assert a.to(dtype=torch.float32).dtype == torch.float32 and a.detach().clone().max_abs_diff(a) == 0
    x = torch.randn(4, 5, dtype=F64)
    per = a(x.expand(3, 4, 5), per_network=True)
    assert (per - a(x)).abs().max() == 0
    # a zero constant shortcut weight is the plain twin
    res = BlockNetworkSpec.from_text("mlp 5-6-[7-6]-3 relu")
    w = BlockWeights.randn(res, 1, gen, dtype=F64)
    twin = BlockWeights(BlockNetworkSpec.from_text("mlp 5-6-7-6:relu-3 relu"), w.params)
    assert (w(x, shortcut_weights=[0.0]) - twin(x)).abs().max() <= EXACT


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("make,match", [
    (lambda: ResidualBlock((LayerSpec("linear", 4, 6),)), "identity shortcut needs the same width.*projection"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-[8-6]-2 relu"), "identity shortcut.*'\\|proj'"),
    (lambda: BlockNetworkSpec.from_text("conv1d 1-4ln/2 k3 relu"), "LayerNorm after a conv1d"),
    (lambda: BlockNetworkSpec((LayerSpec("linear", 4, 4, activation="relu"), Norm("batchnorm", 4))),
     "after an activation.*Layer -> batchnorm -> relu"),
    (lambda: Norm("layernorm", 1), "degenerate"),
    (lambda: Norm("groupnorm", 4), "unknown norm kind"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-8-2 relu foo"), "cannot parse token 'foo'"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-8bx-2 relu"), "cannot parse"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-[4-4-2 relu"), "expected '-', '\\|' or '\\]'"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-[4-[4]]-2 relu"), "cannot be nested"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-8:foo-2 relu"), "unknown activation 'foo'"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-8k3-2 relu"), "dense layer has no kernel"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-8bn-2 k3 relu"), "an mlp has no kernel"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-8bn-2 relu,tanh"), "one hidden activation"),
    (lambda: BlockNetworkSpec.from_text("conv1d 1-4-[4]/2 k3 p1 relu"), "needs its input shape"),
    (lambda: BlockNetworkSpec.from_text("conv1d 1-4-[4p0-4]/2 k3 p1 relu 1x16"), "'same' convolutions"),
    (lambda: BlockNetworkSpec.from_text("mlp 4-[8|projs2]-2 relu"), "dense projection shortcut has no stride"),
    (lambda: BlockNetworkSpec((LayerSpec("conv2d", 1, 4, (3, 3)),)), "conv2d"),
    (lambda: BlockNetworkSpec((LayerSpec("conv1d", 1, 4, (3,), pool_after=True),)), "pool implicitly"),
    (lambda: ResidualBlock((LayerSpec("linear", 4, 6),), (LayerSpec("linear", 4, 6, activation="relu"),)),
     "no activation"),
    (lambda: ResidualBlock((LayerSpec("conv1d", 4, 6, (3,), padding=1),), (LayerSpec("conv1d", 4, 6, (3,)),)),
     "1x1 convolution"),
])
def test_bad_specs_are_explained(make, match):
    with pytest.raises(SpecError, match=match):
        make()


def test_bad_modules_are_explained():
    with pytest.raises(SpecError, match=r"module 1 \(BatchNorm1d\) is in training mode.*model.eval\(\)"):
        BlockNetworkSpec.from_module(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(SpecError, match="affine=True"):
        BlockNetworkSpec.from_module(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, affine=False)).eval())
    with pytest.raises(SpecError, match="elementwise_affine=True"):
        BlockNetworkSpec.from_module(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4, elementwise_affine=False)))
    with pytest.raises(SpecError, match="LayerNorm after a conv1d"):
        BlockNetworkSpec.from_module(nn.Sequential(nn.Conv1d(1, 4, 3), nn.LayerNorm(4)))
    with pytest.raises(SpecError, match=r"module 1\.branch\.0 .*nested"):
        inner = Residual(nn.Linear(4, 4))
        BlockNetworkSpec.from_module(nn.Sequential(nn.Linear(4, 4), Residual(nn.Sequential(inner))))
    with pytest.raises(SpecError, match=r"module 1 \(Residual\): an identity shortcut.*projection"):
        BlockNetworkSpec.from_module(nn.Sequential(nn.Linear(4, 4), Residual(nn.Linear(4, 6))))
    with pytest.raises(SpecError, match="global average pooling"):
        BlockNetworkSpec.from_module(nn.Sequential(nn.Conv1d(1, 4, 3), nn.Linear(4, 2)))
    with pytest.raises(SpecError, match=r"module 1\.branch\.0 \(Conv1d\).*grouped"):
        BlockNetworkSpec.from_module(nn.Sequential(nn.Conv1d(2, 4, 1), Residual(nn.Conv1d(4, 4, 1, groups=2))))
    spec = BlockNetworkSpec.from_text("mlp 4-8bn-2 relu")
    with pytest.raises(SpecError, match=r"1.gamma has shape \(2, 7\), expected \[B=2, 8\]"):
        bw = BlockWeights.randn(spec, 2)
        BlockWeights(spec, [t[:, :7] if i == 2 else t for i, t in enumerate(bw.params)])
    with pytest.raises(SpecError, match="shortcut_weights needs one entry"):
        res = BlockNetworkSpec.from_text("mlp 4-[4]-2 relu")
        BlockWeights.randn(res, 1)(torch.zeros(1, 4), shortcut_weights=[])


# ---------------------------------------------------------------- dim G_scale
@pytest.mark.parametrize("sizes", [ResidualSizes(2, 1, (1,), 1), ResidualSizes(3, 2, (3, 1), 2),
                                   ResidualSizes(2, 3, (2, 4, 1), 1, post_relu=True), ResidualSizes(1, 2, (), 3)],
                         ids=lambda s: s.to_text())
def test_scale_dim_matches_sympy_nullity_for_residual_mlps(sizes):
    spec = sizes.block_spec()
    dims = residual_scaling_dims(sizes, exact=True)
    assert spec.scale_dim == dims.dim_residual == sum(sizes.hidden) + sizes.d_s
    assert spec.gauge_plan(split_streams=True).scale_dim == dims.dim_plain  # the plain twin
    assert BlockNetworkSpec.from_text(spec.to_text()) == spec


@pytest.mark.parametrize("width", [2, 3])
def test_scale_dim_of_norm_layers_matches_the_derivation(width):
    summary = gauge_dims_summary(2, (3,), width, derive_layernorm=True)
    assert layernorm_scaling_derivation(width).dim == 1
    bn = BlockNetworkSpec.from_text(f"mlp 3-{width}bn-2 relu")
    ln = BlockNetworkSpec.from_text(f"mlp 3-{width}ln-2 relu")
    assert bn.scale_dim == summary["batchnorm_layer"] and ln.scale_dim == summary["layernorm_layer"]
    assert BlockNetworkSpec.from_text(f"mlp 3-{width}-2 relu").scale_dim == summary["plain_relu_layer"]


def test_scale_dim_of_chains_counts_positive_hidden_neurons():
    rng = random.Random(3)
    for _ in range(50):
        spec = random_spec(rng, norms=False)
        if not spec.is_chain:
            continue
        chain = spec.to_chain()
        expect = sum(n for n, s in zip(chain.hidden_widths, chain.symmetries) if s is Symmetry.POSITIVE_SCALE)
        assert spec.scale_dim == expect
