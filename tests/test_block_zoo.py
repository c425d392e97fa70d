"""Zoos of block networks (issue 36): vectorized training of residual / BatchNorm / LayerNorm networks equals
torch.nn + torch.optim one network at a time (BatchNorm in training mode, running statistics included), does not
depend on the other networks of the batch, and block zoos build, save, load and verify like chain zoos."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from zoo_checks import assert_refuses_corrupt_weights

from scalegmn_lite.common.io import CorruptFileError
from scalegmn_lite.weightspace.block_weights import BlockWeights
from scalegmn_lite.weightspace.blocks import BlockNetworkSpec, parse_network
from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.weightspace.weights import WeightSpace
from scalegmn_lite.zoo import RecipeError, Zoo, ZooRecipe, build_zoo, get_recipe, list_recipes, load_zoo, save_zoo
from scalegmn_lite.zoo.block_train import (
    evaluate_blocks,
    forward_macs,
    init_block_weights,
    running_mask,
    train_block_batched,
)
from scalegmn_lite.zoo.data import load_dataset
from scalegmn_lite.zoo.recipes import (
    REFERENCE_RECIPES,
    RESIDUAL_RECIPES,
    USED_BY,
    block_with_activation,
    checkpoint_schedule,
)
from scalegmn_lite.zoo.train import _orders, lr_factor

MLP_BN = "mlp 40-8bn-[8bn-8bn]-10 relu"
MLP_LN = "mlp 40-8ln-[8ln-8]-10 relu"
CNN_BN = "conv1d 1-4k5s2p0bn-[4bn-4bn]/10 k3 p1 relu 1x40"


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))


def _data(dtype=torch.float64, n_train=200, n_test=60):
    return load_dataset("mnist1d", dtype=dtype).subset(n_train, n_test)


def _nets(text: str, B: int = 3, dtype=torch.float64):
    spec = BlockNetworkSpec.from_text(text)
    seeds = list(range(10, 10 + B))
    bw = init_block_weights(spec, seeds, torch.linspace(0.5, 2.0, B), dtype=dtype)
    return bw, seeds


def _loop(bw: BlockWeights, data, epochs, lr, wd, batch_size, seeds=None, generator=None, optimizer="sgd",
          lr_schedule="constant", max_steps=None) -> BlockWeights:
    """The reference: each network alone, an nn.Sequential in train() mode and torch.optim, the same data orders."""
    x, y = data.x_train.to(bw.dtype), data.y_train
    n = len(x)
    total = epochs * math.ceil(n / batch_size)
    shared = None if seeds is not None else [next(o) for o in [_orders(n, 1, None, generator)] for _ in range(epochs)]
    modules = []
    for b in range(bw.batch_size):
        module = bw.to_module(b).train()
        params = list(module.parameters())
        lr_b, wd_b = float(lr[b]), float(wd[b])
        opt = (torch.optim.SGD(params, lr=lr_b, momentum=0.9, weight_decay=wd_b) if optimizer == "sgd"
               else torch.optim.Adam(params, lr=lr_b, weight_decay=wd_b))
        orders = _orders(n, 1, [seeds[b]], None) if seeds is not None else iter(shared)
        step = 0
        for _ in range(epochs):
            order = next(orders).reshape(-1)
            for s in range(0, n, batch_size):
                if max_steps is not None and step >= max_steps:
                    break
                for group in opt.param_groups:
                    group["lr"] = lr_b * lr_factor(lr_schedule, step, total)
                idx = order[s:s + batch_size]
                loss = F.cross_entropy(module(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
        modules.append(module.eval())
    return BlockWeights.from_modules(modules, bw.spec)


def _noise_driven(spec: BlockNetworkSpec) -> set[str]:
    """The bias of a layer followed by BatchNorm (zero gradient in exact arithmetic) and that BatchNorm's running
    mean: under Adam they follow rounding noise, so two implementations cannot agree on them."""
    names = [n for n, _ in spec.param_shapes]
    out = set()
    for i, name in enumerate(names):
        if name.endswith(".gamma") and i >= 1 and names[i - 1].endswith(".bias") and names[i + 2].endswith(
                ".running_mean"):
            out |= {names[i - 1], names[i + 2]}
    return out


# ---------------------------------------------------------------- (a) equals torch.nn + torch.optim
@pytest.mark.parametrize("text", [MLP_BN, MLP_LN, CNN_BN])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batched_equals_torch_modules_in_train_mode(text, optimizer):
    d = _data()
    bw, seeds = _nets(text)
    lr = torch.tensor([0.02, 0.05, 0.1]) if optimizer == "sgd" else torch.tensor([1e-3, 3e-3, 1e-2])
    wd = torch.tensor([1e-5, 1e-3, 1e-2])
    res = train_block_batched(bw, d, 2, lr, wd, 64, seeds=seeds, optimizer=optimizer, progress=False,
                              lr_schedule="cosine")
    ref = _loop(bw, d, 2, lr, wd, 64, seeds=seeds, optimizer=optimizer, lr_schedule="cosine")
    assert bw.max_abs_diff(res.ws) > 1e-2  # the networks did move
    skip = _noise_driven(bw.spec) if optimizer == "adam" else set()
    for name, a, b in zip(res.ws.names, res.ws.params, ref.params):
        if name not in skip:
            assert float((a - b).abs().max()) <= 1e-10, name
    if "bn" in text:  # the running statistics moved (training mode) and match PyTorch's
        run = [n for n, r in zip(res.ws.names, running_mask(bw.spec)) if r]
        assert run and all(float((res.ws.param(n) - bw.param(n)).abs().max()) > 1e-3 for n in run)
    wrong = _loop(bw, d, 2, lr.flip(0), wd, 64, seeds=seeds, optimizer=optimizer, lr_schedule="cosine")
    assert res.ws.max_abs_diff(wrong) > 1e-3  # negative control: other learning rates land elsewhere


def test_float32_shared_order_equals_torch():
    d = _data(torch.float32)
    bw, _ = _nets(CNN_BN, B=4, dtype=torch.float32)
    lr, wd = torch.logspace(-2, -1, 4), torch.logspace(-5, -2, 4)
    res = train_block_batched(bw, d, 1, lr, wd, 50, generator=torch.Generator().manual_seed(3), progress=False)
    ref = _loop(bw, d, 1, lr, wd, 50, generator=torch.Generator().manual_seed(3))
    assert res.ws.max_abs_diff(ref) <= 1e-5 and bw.max_abs_diff(res.ws) > 1e-2


def test_metrics_are_eval_mode_with_running_statistics():
    d = _data()
    bw, seeds = _nets(CNN_BN)
    res = train_block_batched(bw, d, 2, 0.05, 1e-4, 50, seeds=seeds, checkpoint_epochs=(0, 1, 2), progress=False)
    assert res.checkpoint_epochs == (0, 1, 2) and res.metrics["test_acc"].shape == (3, 3)
    assert all(torch.equal(a, b) for a, b in zip(res.checkpoints[0].params, bw.params))
    assert all(torch.equal(a, b) for a, b in zip(res.checkpoints[2].params, res.ws.params))
    loss, acc = evaluate_blocks(res.ws, d.x_test, d.y_test, chunk=7)
    assert torch.allclose(loss, res.metrics["test_loss"][-1], atol=1e-10)
    for b in range(3):  # against torch.nn in eval mode
        out = res.ws.to_module(b)(d.x_test.double())
        assert abs(float(F.cross_entropy(out, d.y_test)) - float(loss[b])) < 1e-10
        assert abs(float((out.argmax(1) == d.y_test).double().mean()) - float(acc[b])) < 1e-12


# ---------------------------------------------------------------- (b) independent of the other networks
@pytest.mark.parametrize("text", [MLP_BN, CNN_BN])
def test_a_network_does_not_depend_on_its_neighbours(text):
    d = _data(torch.float32)
    bw, seeds = _nets(text, B=5, dtype=torch.float32)
    lr, wd = torch.logspace(-2, -0.5, 5), torch.logspace(-5, -2, 5)
    kw = dict(checkpoint_epochs=(0, 2), progress=False, optimizer="adam")
    whole = train_block_batched(bw, d, 2, lr / 10, wd, 64, seeds=seeds, **kw)
    for idx in ([1, 3], [3]):
        part = train_block_batched(bw[torch.tensor(idx)], d, 2, lr[idx] / 10, wd[idx], 64,
                                   seeds=[seeds[i] for i in idx], **kw)
        assert all(torch.equal(a[idx], b) for a, b in zip(whole.ws.params, part.ws.params))
        assert all(torch.equal(whole.metrics[k][:, idx], part.metrics[k]) for k in whole.metrics)


def test_divergent_network_is_frozen_and_flagged():
    d = _data(torch.float32)
    bw, seeds = _nets(MLP_BN, B=3, dtype=torch.float32)
    res = train_block_batched(bw, d, 2, torch.tensor([0.05, math.inf, 0.05]), 1e-4, 64, seeds=seeds,
                              progress=False)
    assert res.diverged.tolist() == [False, True, False]
    assert all(bool(torch.isfinite(t).all()) for t in res.ws.params)
    keep = torch.tensor([0, 2])
    alone = train_block_batched(bw[keep], d, 2, 0.05, 1e-4, 64, seeds=[seeds[0], seeds[2]], progress=False)
    assert all(torch.equal(a[keep], b) for a, b in zip(res.ws.params, alone.ws.params))


# ---------------------------------------------------------------- (c) build, save, load
def _tiny(**kw) -> ZooRecipe:
    base = dict(name="tiny-block", dataset="mnist1d", arch=("mlp 40-8-10 relu", MLP_BN, CNN_BN), num_networks=7,
                epochs=2, checkpoint_epochs=(0, 1, 2), train_size=200, batch_size=50, chunk_size=2,
                lr=(1e-2, 0.2), adam_lr=(1e-3, 1e-2), init_scale=(0.5, 2.0), weight_decay=(1e-5, 1e-2),
                optimizers=("sgd", "adam"))
    base.update(kw)
    return ZooRecipe(**base)


def test_block_zoo_builds_saves_loads_and_verifies(tmp_path):
    r = _tiny()
    zoo = build_zoo(r, device="cpu", progress=False)
    kinds = {s.to_text(): type(s) for s in zoo.specs}
    assert kinds == {"mlp 40-8-10 relu": NetworkSpec, MLP_BN: BlockNetworkSpec, CNN_BN: BlockNetworkSpec}
    save_zoo(zoo, tmp_path / "z")
    man = json.loads((tmp_path / "z" / "zoo.json").read_text())
    assert sorted(man["block_groups"]) == [g for g, s in enumerate(zoo.specs) if isinstance(s, BlockNetworkSpec)]
    back = load_zoo(tmp_path / "z")
    assert back.specs == zoo.specs and back.metadata.equals(zoo.metadata)
    assert all(torch.equal(a, b) for a, b in zip(zoo.flat, back.flat))
    for text in (MLP_BN, CNN_BN):
        built, loaded = zoo.where(arch=text), back.where(arch=text)
        w = loaded.weights()
        assert isinstance(w, BlockWeights) and w.spec == parse_network(text)
        assert all(torch.equal(a, b) for a, b in zip(w.params, built.weights().params))
        assert all(torch.equal(a, b) for a, b in zip(loaded.weights(1).params, built.weights(1).params))
        assert isinstance(loaded.network(0), BlockWeights) and loaded.network(0).batch_size == 1
    assert isinstance(back.where(arch="mlp 40-8-10 relu").weights(), WeightSpace)
    # one network again, alone, from its recipe row: the zoo holds exactly it
    i = int(zoo.metadata.index[zoo.metadata["arch"] == CNN_BN][0])
    row = r.sample(int(zoo.metadata["net"][i]))
    data = load_dataset("mnist1d").subset(n_train=200)
    data = data.subset(n_train=r.train_count(row, 200))
    spec = parse_network(CNN_BN)
    one = [torch.tensor([row[k]]) for k in ("init_scale", "lr", "weight_decay")]  # float32, as build_zoo passes them
    res = train_block_batched(init_block_weights(spec, [row["seed"]], one[0]), data, 2, one[1], one[2], 50,
                              seeds=[row["seed"]], optimizer=r.optimizer_of(row), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(zoo.network(i).params, res.ws.params))
    # concat / select keep block groups
    both = Zoo.concat([zoo.select([0, 1]), zoo.select(list(range(2, len(zoo))))])
    assert set(both.specs) == set(zoo.specs) and len(both.specs) == len(zoo.specs)
    nets = both.metadata["net"].tolist()  # concat keeps groups together: find each network by its index
    assert sorted(nets) == list(range(len(zoo)))
    assert all(torch.equal(both.network(j).flatten(), zoo.network(net).flatten()) for j, net in enumerate(nets))
    # a corrupted file is refused, naming it
    assert_refuses_corrupt_weights(tmp_path / "z")


def test_chain_zoo_manifest_is_unchanged_and_bad_arch_text_is_corrupt(tmp_path):
    zoo = build_zoo(_tiny(arch="mlp 40-8-10 relu", num_networks=2, epochs=1, checkpoint_epochs=(0, 1)),
                    device="cpu", progress=False)
    save_zoo(zoo, tmp_path / "c")
    assert "block_groups" not in json.loads((tmp_path / "c" / "zoo.json").read_text())
    assert isinstance(load_zoo(tmp_path / "c").spec, type(zoo.spec))
    # a block network without blocks or norms (its text is a chain's) stays a block network
    spec = BlockNetworkSpec.from_text("mlp 40-8-10 relu")
    bw = init_block_weights(spec, [1, 2])
    md = zoo.metadata.drop(columns=["group", "row"])
    chainlike = Zoo.from_weight_spaces([([bw, bw], md)], (0, 1))
    save_zoo(chainlike, tmp_path / "b")
    assert load_zoo(tmp_path / "b").spec == spec
    man_path = tmp_path / "b" / "zoo.json"
    man = json.loads(man_path.read_text())
    man["specs"] = ["mlp 40-8-[8-9]-10 relu"]
    man_path.write_text(json.dumps(man))
    with pytest.raises(CorruptFileError, match="cannot read the architecture"):
        load_zoo(tmp_path / "b")


# ---------------------------------------------------------------- (d) the named recipes
def test_residual_recipes_are_named_listed_and_parse():
    assert set(RESIDUAL_RECIPES) == {"resmlp-hp-mnist1d", "resmlp-bn-hp-mnist1d", "resmlp-ln-hp-mnist1d",
                                     "rescnn1d-hp-mnist1d", "rescnn1d-bn-hp-mnist1d"}
    assert set(RESIDUAL_RECIPES) <= set(list_recipes())
    norms = {"resmlp-hp-mnist1d": set(), "resmlp-bn-hp-mnist1d": {"batchnorm"}, "resmlp-ln-hp-mnist1d": {"layernorm"},
             "rescnn1d-hp-mnist1d": set(), "rescnn1d-bn-hp-mnist1d": {"batchnorm"}}
    for name in RESIDUAL_RECIPES:
        quick, full = get_recipe(name, full=False), get_recipe(name, full=True)
        assert (quick.num_networks, quick.epochs, quick.train_size) == (1024, 20, 2000)
        assert quick.checkpoint_epochs == checkpoint_schedule(20) and full.num_networks == 4096
        assert REFERENCE_RECIPES[name].num_networks == 4096 and "residual study" in USED_BY[name]
        ref = REFERENCE_RECIPES[name]  # the reference zoos: quick's recipe with 4x the networks
        assert (ref.epochs, ref.train_size, ref.checkpoint_epochs) == (20, 2000, checkpoint_schedule(20))
        assert quick.activations == ("relu",) and quick.optimizers == ("sgd", "adam")
        (spec,) = quick.specs()
        assert isinstance(spec, BlockNetworkSpec) and spec.residual_blocks and not spec.is_chain
        assert parse_network(spec.to_text()) == spec and spec.to_text() == quick.arch[0]
        assert {n.kind for n in spec.norms} == norms[name]
        assert quick.sample(0)["activation"] == "relu" and quick.sample(0)["arch"] == spec.to_text()
        assert spec.family == ("conv1d" if "cnn" in name else "mlp")
    # the cost figure of a block network: weights x output positions (40 -> 12 positions after the k5 s3 stem)
    assert forward_macs(get_recipe("rescnn1d-hp-mnist1d").specs()[0]) == 8 * 5 * 12 + 2 * 8 * 8 * 3 * 12 + 8 * 10
    assert forward_macs(get_recipe("resmlp-ln-hp-mnist1d").specs()[0]) == 40 * 16 + 4 * 16 * 16 + 16 * 10


def test_block_recipe_mixes_activations_and_a_subsample_builds():
    r = replace(get_recipe("rescnn1d-bn-hp-mnist1d", full=False), activations=("relu", "tanh"))
    assert [s.to_text() for s in r.specs()] == ["conv1d 1-8k5s3p0bn-[8bn-8bn]/10 k3 p1 relu 1x40",
                                                "conv1d 1-8k5s3p0bn-[8bn-8bn]/10 k3 p1 tanh 1x40"]
    spec = parse_network("mlp 40-16-[16-16]:identity-10 relu out=sigmoid")  # the linear stream and output keep theirs
    assert block_with_activation(spec, "tanh") == parse_network("mlp 40-16-[16-16]:identity-10 tanh out=sigmoid")
    small = replace(get_recipe("resmlp-bn-hp-mnist1d", full=False), epochs=1, checkpoint_epochs=(0, 1),
                    train_size=200)
    z = build_zoo(small, device="cpu", progress=False, indices=[0, 3])
    assert isinstance(z.weights(), BlockWeights) and z.weights().batch_size == 2
    assert z.metadata["test_acc@1"].notna().all() and not z.metadata["diverged"].any()


# ---------------------------------------------------------------- (e) bad input
def test_bad_input_is_a_clear_error():
    with pytest.raises(RecipeError, match="block network.*classifiers"):
        ZooRecipe(name="x", dataset="digits", arch="mlp 2-8bn-[8-8]-1 relu", task="inr", num_networks=2,
                  epochs=1, checkpoint_epochs=(0, 1), optimizer="adam", lr=(1e-3, 1e-3), init_scale=(1, 1),
                  weight_decay=(0, 0))
    with pytest.raises(RecipeError, match="batch_size=1"):
        _tiny(arch=MLP_BN, batch_size=1)
    with pytest.raises(RecipeError, match="bad arch"):
        _tiny(arch="mlp 40-8-[8-9]-10 relu")
    d = _data(torch.float32, n_train=129)
    bw, seeds = _nets(MLP_BN, B=2, dtype=torch.float32)
    with pytest.raises(ValueError, match="minibatch of one sample"):
        train_block_batched(bw, d, 1, 0.1, 0.0, 64, seeds=seeds, progress=False)
    with pytest.raises(ValueError, match="lr must be a scalar or a \\[B=2\\]"):
        train_block_batched(bw, _data(torch.float32), 1, torch.ones(3), 0.0, 64, progress=False)
    with pytest.raises(ValueError, match="got 3 seeds for B=2"):
        train_block_batched(bw, _data(torch.float32), 1, 0.1, 0.0, 64, seeds=[1, 2, 3], progress=False)
    with pytest.raises(TypeError, match="train_batched"):
        train_block_batched(WeightSpace.randn(parse_network("mlp 40-8-10 relu"), 2), _data(), 1, 0.1, 0.0, 64,
                            progress=False)
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        train_block_batched(bw, _data(torch.float32), 1, 0.1, 0.0, 64, lr_schedule="step", progress=False)
