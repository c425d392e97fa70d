"""Zoo recipes, building, the Zoo object, storage and the cache (tiny recipes in tmp dirs)."""

import json
import time

import numpy as np
import pytest
import torch

from scalegmn_lite.common.io import CorruptFileError
from scalegmn_lite.zoo import (
    RecipeError,
    Zoo,
    ZooError,
    ZooRecipe,
    build_zoo,
    get_recipe,
    list_recipes,
    load_or_build,
    load_zoo,
    save_zoo,
    zoo_path,
)


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tiny(**kw) -> ZooRecipe:
    base = dict(name="tiny", dataset="digits", arch="mlp 64-8-10 relu", activations=("relu", "tanh"),
                num_networks=6, epochs=2, checkpoint_epochs=(0, 1, 2), train_size=200, batch_size=50,
                lr=(1e-2, 0.3), init_scale=(0.5, 2.0), weight_decay=(1e-5, 1e-2), chunk_size=4)
    base.update(kw)
    return ZooRecipe(**base)


@pytest.fixture(scope="module")
def zoo():
    return build_zoo(tiny(), device="cpu", progress=False)


def test_deterministic_bit_identical(zoo):
    again = build_zoo(tiny(), device="cpu", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(zoo.flat, again.flat))
    other = build_zoo(tiny(seed=1), device="cpu", progress=False)
    assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(zoo.flat, other.flat))


def test_chunking_does_not_change_networks(zoo):
    one_chunk = build_zoo(tiny(chunk_size=64), device="cpu", progress=False)
    for a, b in zip(zoo.flat, one_chunk.flat):
        assert torch.allclose(a, b, atol=1e-6)


def test_metadata_and_hyperparameters(zoo):
    md = zoo.metadata
    assert len(zoo) == 6 and list(md["net"]) == list(range(6))
    assert set(md["activation"]) <= {"relu", "tanh"} and len(zoo.specs) == len(set(md["activation"]))
    for col in ["lr", "init_scale", "weight_decay", "train_acc@0", "test_acc@2", "test_loss@1", "test_acc", "seed"]:
        assert col in md
    assert ((md["lr"] >= 1e-2) & (md["lr"] <= 0.3)).all()
    assert np.allclose(md["test_acc"], md["test_acc@2"])
    assert md["test_acc@2"].mean() > md["test_acc@0"].mean()
    # hyperparameters are a function of (seed, index) only
    assert tiny(num_networks=3).sample(2) == tiny().sample(2)


def test_weights_checkpoints_and_metrics_agree(zoo):
    from scalegmn_lite.zoo import evaluate
    from scalegmn_lite.zoo.data import load_dataset

    d = load_dataset("digits")
    for act, sub in [("relu", zoo.where(activation="relu")), ("tanh", zoo.where(activation="tanh"))]:
        if len(sub) == 0:
            continue
        ws = sub.weights()
        assert ws.batch_size == len(sub) and ws.spec.layers[0].activation == act
        _, acc = evaluate(ws, d.x_test, d.y_test)
        assert np.allclose(acc.double().numpy(), sub.metadata["test_acc"].to_numpy(), atol=1e-6)
        assert sub.weights(checkpoint=0).max_abs_diff(ws) > 0
    with pytest.raises(ZooError, match="mixes 2 specs"):
        zoo.weights()
    with pytest.raises(ZooError, match="no checkpoint at epoch 7"):
        zoo.where(activation="relu").weights(checkpoint=7)


def test_indexing_filter_split(zoo):
    assert len(zoo[0]) == 1 and len(zoo[1:4]) == 3 and len(zoo[[0, 5]]) == 2
    assert zoo.network(3).max_abs_diff(zoo[3].weights()) == 0
    good = zoo.filter(lambda df: df["test_acc"] > df["test_acc"].median())
    assert len(good) == int((zoo.metadata["test_acc"] > zoo.metadata["test_acc"].median()).sum())
    parts = zoo.split((0.5, 0.25, 0.25), seed=0)
    nets = [set(p.metadata["net"]) for p in parts]
    assert sum(len(n) for n in nets) == 6 and set.union(*nets) == set(range(6))
    assert all(not (a & b) for i, a in enumerate(nets) for b in nets[i + 1:])
    assert [set(p.metadata["net"]) for p in zoo.split((0.5, 0.25, 0.25), seed=0)] == nets
    with pytest.raises(ZooError, match="sum to 1"):
        zoo.split((0.5, 0.1))
    with pytest.raises(ZooError, match="no metadata column 'colour'"):
        zoo.where(colour="red")
    joined = Zoo.concat(list(zoo.by_spec().values()))
    assert len(joined) == 6 and len(joined.specs) == len(zoo.specs)


def test_storage_roundtrip(zoo, tmp_path):
    save_zoo(zoo, tmp_path / "z")
    back = load_zoo(tmp_path / "z")
    assert back.specs == zoo.specs and back.checkpoints == zoo.checkpoints
    assert all(torch.equal(a, b) for a, b in zip(zoo.flat, back.flat))
    assert back.metadata.equals(zoo.metadata) and ZooRecipe.from_dict(back.recipe) == tiny()


def test_truncated_or_altered_files_are_named(zoo, tmp_path):
    folder = tmp_path / "z"
    save_zoo(zoo, folder)
    w = folder / "weights.pt"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="weights.pt"):
        load_zoo(folder)
    altered = bytearray(data)
    altered[len(altered) // 2] ^= 0xFF
    w.write_bytes(bytes(altered))
    with pytest.raises(CorruptFileError, match="weights.pt"):
        load_zoo(folder)
    w.write_bytes(data)
    load_zoo(folder)
    md = folder / "metadata.json"
    md.write_text(md.read_text().replace("relu", "tanh", 1))
    with pytest.raises(CorruptFileError, match="metadata.json"):
        load_zoo(folder)
    (folder / "zoo.json").unlink()
    with pytest.raises(CorruptFileError, match="zoo.json"):
        load_zoo(folder)


def test_load_or_build_uses_cache(tmp_cache):
    r = tiny(num_networks=3, activations=())
    z1 = load_or_build(r, device="cpu", progress=False)
    path = zoo_path(r)
    assert str(path).startswith(str(tmp_cache)) and (path / "zoo.json").exists()
    man = json.loads((path / "zoo.json").read_text())
    man["recipe"]["note"] = "loaded from cache"
    (path / "zoo.json").write_text(json.dumps(man))
    z2 = load_or_build(r, device="cpu", progress=False)
    assert z2.recipe.get("note") == "loaded from cache" and torch.equal(z1.flat[0], z2.flat[0])
    assert zoo_path(tiny(num_networks=4)) != zoo_path(r)


def test_processes_sharing_a_cache_build_each_zoo_once(tmp_cache, monkeypatch):
    """Notebooks tested side by side ask for the same zoo at once: one builds, the other waits for the
    lock and loads what the first saved (flock locks conflict between threads too)."""
    import threading

    from scalegmn_lite.zoo import build as build_mod

    calls = []
    real = build_mod.build_zoo

    def slow_build(*a, **kw):
        calls.append(1)
        time.sleep(0.5)
        return real(*a, **kw)

    monkeypatch.setattr(build_mod, "build_zoo", slow_build)
    r = tiny(num_networks=3, activations=())
    out = [None, None]

    def ask(k):
        out[k] = load_or_build(r, device="cpu", progress=False)

    threads = [threading.Thread(target=ask, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(calls) == 1 and torch.equal(out[0].flat[0], out[1].flat[0])
    assert (zoo_path(r).parent / f"{zoo_path(r).name}.lock").exists()


@pytest.mark.parametrize("kw,msg", [
    (dict(dataset="cifar10"), "unknown dataset"),
    (dict(lr=(0.1, 0.01)), "lr range"),
    (dict(init_scale=(0.0, 1.0)), "init_scale range"),
    (dict(checkpoint_epochs=(0, 1)), "must lie in \\[0, epochs\\] and end"),
    (dict(arch="mlp 64-8-10 swish"), "bad arch"),
    (dict(arch="mlp 64-8-7 relu"), "must end in 10 outputs"),
    (dict(activations=("mish",)), "unknown activation"),
    (dict(optimizer="lbfgs"), "optimizer must be"),
])
def test_bad_recipes_are_clear_errors(kw, msg):
    with pytest.raises(RecipeError, match=msg):
        tiny(**kw)


def test_named_recipes():
    assert {"mlp-mnist1d", "cnn1d-mnist1d", "cnn2d-digits", "inr-digits"} <= set(list_recipes())
    for name in list_recipes():
        quick, full = get_recipe(name, full=False), get_recipe(name, full=True)
        assert 128 <= quick.num_networks <= 2048 and full.num_networks >= 1797
        assert quick.hash() != full.hash()
    with pytest.raises(RecipeError, match="unknown recipe 'nope'"):
        get_recipe("nope")


def test_inr_zoo_fits_digits():
    r = ZooRecipe(name="tiny-inr", dataset="digits", arch="siren 2-16-16-1", task="inr", num_networks=3,
                  epochs=60, checkpoint_epochs=(0, 60), optimizer="adam", lr=(1e-3, 1e-3), init_scale=(1, 1),
                  weight_decay=(0, 0), image_size=12)
    z = build_zoo(r, device="cpu", progress=False)
    from scalegmn_lite.zoo.inr import digit_images, render

    imgs, labels = digit_images(12)
    assert list(z.metadata["label"]) == labels[:3].tolist()
    assert (z.metadata["psnr"] > z.metadata["psnr@0"] + 5).all()
    mse = (render(z.weights(), 12) - imgs[:3]).square().mean((1, 2)).double()
    assert np.allclose(-10 * np.log10(mse.numpy()), z.metadata["psnr"].to_numpy(), atol=1e-3)


@pytest.mark.parametrize("task", ["classify", "inr"])
def test_shared_init_starts_every_network_from_one_draw(task):
    if task == "inr":
        kw = dict(arch="siren 2-8-1 a=10", task="inr", activations=(), optimizer="adam", lr=(1e-3, 1e-3),
                  init_scale=(1, 1), weight_decay=(0, 0), image_size=8, num_networks=4, epochs=3,
                  checkpoint_epochs=(0, 3))
    else:
        kw = dict(activations=(), init_scale=(1.0, 1.0), num_networks=4)
    independent = build_zoo(tiny(**kw), device="cpu", progress=False)
    shared = build_zoo(tiny(shared_init=True, **kw), device="cpu", progress=False)
    first = shared.weights(checkpoint=0).flatten()
    assert torch.equal(first, first[:1].expand_as(first))  # one initial draw for all
    final = shared.weights().flatten()
    assert not torch.equal(final[0], final[1])  # trained on different data / images, they move apart
    ind = independent.weights(checkpoint=0).flatten()
    assert not torch.equal(ind[0], ind[1])
    assert (shared.metadata["init_seed"] == shared.metadata["init_seed"].iloc[0]).all()
    assert "init_seed" not in independent.metadata


def test_shared_init_enters_the_hash_only_when_set():
    assert "shared_init" not in tiny().to_dict()  # existing recipes keep their cache keys
    assert tiny(shared_init=True).hash() != tiny().hash()
    assert ZooRecipe.from_dict(tiny(shared_init=True).to_dict()) == tiny(shared_init=True)
