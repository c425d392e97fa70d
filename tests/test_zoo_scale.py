"""Zoos at the papers' scale (issue 20): sizes, the Small CNN Zoo checkpoint schedule, plateau zoos
(cosine decay), INR zoos with views split by image, and determinism / verification of every named
recipe on a subsample of its networks."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from zoo_checks import assert_refuses_corrupt_weights

from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.zoo import RecipeError, ZooError, ZooRecipe, build_zoo, get_recipe, list_recipes, load_zoo, save_zoo
from scalegmn_lite.zoo.data import load_dataset
from scalegmn_lite.zoo.recipes import RESIDUAL_RECIPES, TRAINED_RECIPES, checkpoint_schedule, get_reference_recipe
from scalegmn_lite.zoo.train import init_weights, lr_factor, train_batched, train_loop


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))


def test_trained_zoos_are_at_the_papers_scale():
    for name in TRAINED_RECIPES:
        assert get_recipe(name, full=False).num_networks >= 1024, name
        assert get_reference_recipe(name).num_networks >= 4096, name
        assert get_recipe(name, full=True).num_networks >= 4096, name
    assert set(TRAINED_RECIPES) <= set(list_recipes())


def test_checkpoint_schedule_is_the_small_cnn_zoos():
    assert checkpoint_schedule(20) == (0, 1, 2, 3, 4, 8, 12, 16, 20)  # nine checkpoints, as published
    assert checkpoint_schedule(86)[:4] == (0, 1, 2, 3) and checkpoint_schedule(86)[-1] == 86
    assert checkpoint_schedule(2) == (0, 1, 2)
    for name in ("cnn1d-hp-mnist1d", "mlp-hp-mnist1d", "cnn2d-digits"):
        r = get_recipe(name, full=False)
        assert r.checkpoint_epochs == checkpoint_schedule(r.epochs)
    with pytest.raises(RecipeError, match="epochs >= 1"):
        checkpoint_schedule(0)


def test_cosine_schedule_matches_torch_optim_and_ends_near_zero():
    assert lr_factor("cosine", 0, 10) == 1.0 and lr_factor("cosine", 10, 10) == 0.0
    assert lr_factor("constant", 7, 10) == 1.0 and abs(lr_factor("cosine", 5, 10) - 0.5) < 1e-12
    with pytest.raises(ValueError, match="unknown lr_schedule 'linear'"):
        lr_factor("linear", 0, 1)
    d = load_dataset("mnist1d").subset(300, 50)
    for arch, opt in (("mlp 40-16-10 tanh", "sgd"), ("conv1d 1-4-4/10 k3 s2 relu 1x40", "adam")):
        spec = NetworkSpec.from_text(arch)
        ws = init_weights(spec, [1, 2, 3], torch.tensor([0.5, 1.0, 2.0]))
        lr, wd = torch.tensor([0.02, 0.05, 0.1]) / (10 if opt == "adam" else 1), torch.tensor([0.0, 1e-4, 1e-3])
        a = train_batched(ws, d, 2, lr, wd, 100, seeds=[1, 2, 3], optimizer=opt, lr_schedule="cosine", progress=False)
        b = train_loop(ws, d, 2, lr, wd, 100, seeds=[1, 2, 3], optimizer=opt, lr_schedule="cosine")
        c = train_batched(ws, d, 2, lr, wd, 100, seeds=[1, 2, 3], optimizer=opt, progress=False)
        assert a.ws.max_abs_diff(b) <= 1e-5  # the schedule is torch.optim's, step by step
        assert a.ws.max_abs_diff(c.ws) > 1e-4  # and it is not the constant schedule
    with pytest.raises(RecipeError, match="lr_schedule must be one of"):
        replace(get_recipe("mlp-plateau-mnist1d"), lr_schedule="step")


def test_plateau_recipes_train_on_everything_with_cosine_decay():
    for name in ("cnn1d-plateau-mnist1d", "mlp-plateau-mnist1d"):
        r = get_recipe(name, full=False)
        assert r.lr_schedule == "cosine" and not r.train_fractions and r.epochs >= 30
        assert r.hash() != replace(r, lr_schedule="constant").hash()
    assert "lr_schedule" not in get_recipe("cnn1d-hp-mnist1d").to_dict()  # older recipes keep their keys
    assert "views" not in get_recipe("inr-digits").to_dict()


def _tiny_views(**kw) -> ZooRecipe:
    base = dict(name="tiny-views", dataset="digits", arch="siren 2-8-8-1", task="inr", optimizer="adam",
                lr=(1e-3, 1e-3), init_scale=(1, 1), weight_decay=(0, 0), image_size=8, num_networks=9, views=3,
                epochs=3, checkpoint_epochs=(0, 3), chunk_size=4)
    base.update(kw)
    return ZooRecipe(**base)


def test_inr_views_are_independent_fits_of_one_image_split_by_image():
    z = build_zoo(_tiny_views(), progress=False)
    md = z.metadata
    assert md["image_index"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and md["view"].tolist() == [0, 1, 2] * 3
    assert md["seed"].nunique() == 9 and md.groupby("image_index")["label"].nunique().eq(1).all()
    init = z.weights(checkpoint=0).flatten()
    assert not torch.equal(init[0], init[1])  # independent initialisations of the same image
    for seed in range(5):
        parts = z.split((0.34, 0.33, 0.33), seed=seed, by="image_index")
        images = [set(p.metadata["image_index"]) for p in parts]
        assert sum(map(len, images)) == len(set().union(*images)) == 3  # disjoint
        assert sum(len(p) for p in parts) == 9
    # without `by` the split is the same as before (by network)
    a, b = z.split((0.5, 0.5), seed=3), z.split((0.5, 0.5), seed=3, by=None)
    assert a[0].metadata["net"].tolist() == b[0].metadata["net"].tolist()
    with pytest.raises(ZooError, match="cannot split by 'img'"):
        z.split((0.5, 0.5), by="img")
    with pytest.raises(RecipeError, match="not a multiple of views=3"):
        _tiny_views(num_networks=10)
    with pytest.raises(RecipeError, match="only apply to INR recipes"):
        replace(get_recipe("mlp-hp-mnist1d"), views=2)
    with pytest.raises(ValueError, match="asks for 1798 images"):
        build_zoo(_tiny_views(num_networks=1798 * 3), progress=False, indices=[0])


def _parts_by_image(z, t) -> dict[int, set[str]]:
    """image -> the parts (train/val/test) its INRs landed in, found by matching every INR's weights
    to the zoo's rows (so the test sees where each image went, not just the sizes)."""
    flat = z.weights().flatten()
    images = z.metadata["image_index"].to_numpy()
    where: dict[int, set[str]] = {}
    for part in ("train", "val", "test"):
        for row in getattr(t, part)[0].flatten():
            hit = torch.nonzero((flat == row).all(dim=1)).flatten()
            assert len(hit) == 1, "every INR of a part is exactly one INR of the zoo"
            where.setdefault(int(images[hit[0]]), set()).add(part)
    return where


def test_invariant_inr_task_never_splits_an_image(monkeypatch):
    """Every INR of an image lands in one part. The check can fail: splitting by network (the bug it
    guards against) puts some image's views in two parts, and it is caught below."""
    import numpy as np

    from scalegmn_lite.tasks.invariant import study

    z = build_zoo(_tiny_views(num_networks=30, views=3), progress=False)
    t = study.inr_task(z, seed=0)
    where = _parts_by_image(z, t)
    assert len(where) == 10 and all(len(parts) == 1 for parts in where.values())
    assert sum(t.sizes().values()) == 30
    test_images = {i for i, parts in where.items() if parts == {"test"}}
    assert set(np.unique(t.test_groups).tolist()) == test_images  # the clusters of the intervals are the images
    # the bug: a split that ignores the image (by network) sends some image to two parts
    real_split = type(z).split
    monkeypatch.setattr(type(z), "split", lambda self, fr, seed=0, by=None: real_split(self, fr, seed=seed, by=None))
    buggy = _parts_by_image(z, study.inr_task(z, seed=0))
    assert any(len(parts) > 1 for parts in buggy.values())


def _small(name: str) -> ZooRecipe:
    """The reference recipe of ``name`` with the training cut short (same hyperparameter draws)."""
    r = get_reference_recipe(name)
    kw = dict(epochs=2, checkpoint_epochs=(0, 1, 2))
    if r.task == "classify":
        kw["train_size"] = 400
    return replace(r, **kw)


@pytest.mark.parametrize("name", [n for n in list_recipes()
                                  if n in TRAINED_RECIPES or n in RESIDUAL_RECIPES or "plateau" in n])
def test_every_trained_recipe_is_deterministic_and_verified_on_a_subsample(name, tmp_path):
    r = _small(name)
    idx = [0, 1, 7, r.num_networks // 2 + 1, r.num_networks - 1]
    a = build_zoo(r, progress=False, indices=idx)
    b = build_zoo(r, progress=False, indices=idx)
    assert all(torch.equal(x, y) for x, y in zip(a.flat, b.flat)) and a.metadata.equals(b.metadata)
    assert a.metadata["net"].tolist() == idx
    part = build_zoo(r, progress=False, indices=idx[1:3])  # other neighbours, same networks
    for i in (1, 2):
        assert torch.equal(part.network(i - 1).flatten(), a.network(i).flatten())
    if r.task == "classify":  # the hyperparameters vary as in the Small CNN Zoo
        assert {"lr", "init_scale", "weight_decay", "optimizer"} <= set(a.metadata)
    save_zoo(a, tmp_path / "z")
    back = load_zoo(tmp_path / "z")
    assert all(torch.equal(x, y) for x, y in zip(a.flat, back.flat))
    assert back.metadata.attrs["build_seconds"] > 0
    assert_refuses_corrupt_weights(tmp_path / "z")


def test_sgd150_difference_interval():
    from scalegmn_lite.experiments.zoo import sgd150_difference

    rng = np.random.default_rng(0)
    d = sgd150_difference(rng.normal(0.02, 0.01, 64), rng.normal(0.10, 0.01, 64))
    assert d["ci"][0] <= d["difference"] <= d["ci"][1] < 0
    d = sgd150_difference(rng.normal(0.05, 0.01, 64), rng.normal(0.05, 0.01, 64))
    assert d["ci"][0] < 0 < d["ci"][1]
    from scalegmn_lite.common.stats import bootstrap_difference

    iv = bootstrap_difference(np.ones(5), np.zeros(7))  # unequal sizes, no spread: the exact difference
    assert iv["mean"] == 1.0 and iv["ci"] == [1.0, 1.0] and iv["n"] == 12


def test_sgd150_gain_from_final_networks():
    from scalegmn_lite.experiments.zoo import sgd150_gain

    r = ZooRecipe(name="tiny-sgd", dataset="mnist1d", arch="mlp 40-8-10 relu", activations=("relu", "tanh"),
                  num_networks=8, epochs=1, checkpoint_epochs=(0, 1), train_size=300, batch_size=100)
    z = build_zoo(r, progress=False)
    out = sgd150_gain(z, r, per_activation=3, seed=0, device="cpu", epochs=3)
    assert set(out) == {"relu", "tanh"}
    for v in out.values():
        assert v["networks"] == 3 and v["gain_ci"][0] <= v["gain"] <= v["gain_ci"][1]
        assert abs(v["end"] - v["start"] - v["gain"]) < 1e-3 and len(v["_gains"]) == 3
