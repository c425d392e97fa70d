"""``reproduce --jobs``: the zoos the experiments load are built first, as tasks of their own, longest first,
each once, and recorded in the manifest (issue 34: the main job's wait)."""

from __future__ import annotations

import json

import pytest

from scalegmn_lite.cli import reproduce
from scalegmn_lite.experiments import ZOOS, RunContext, load_all, needed_zoos
from scalegmn_lite.zoo import ZooRecipe, get_recipe, list_recipes
from scalegmn_lite.zoo.build import zoo_path
from scalegmn_lite.zoo.recipes import RESIDUAL_RECIPES, build_work


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALEGMN_LITE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_needed_zoos_of_the_quick_run(empty_cache):
    ctx = RunContext(quick=True)
    names = {e: {r.name for r in needed_zoos([e], ctx)} for e in load_all()}
    assert names["zoo"] == set(list_recipes()) - set(RESIDUAL_RECIPES)  # every named recipe but the residual ones
    assert names["amortized"] == {"cnn1d-hp-mnist1d", "cnn1d-plateau-mnist1d", "mlp-plateau-mnist1d"}
    assert names["invariant"] == {"cnn1d-hp-mnist1d", "inr-dws-digits"}  # the twin zoo: reference size only
    assert {"inr-dws-digits", "cnn1d-hp-mnist1d", "ae-inr-digits"} <= names["merging"]
    assert names["gauge"] == names["distributed"] == set()
    assert names["residual"] == {"rescnn1d-bn-hp-mnist1d"}  # the residual zoos are the residual study's
    every = needed_zoos(list(load_all()), ctx)
    keys = [zoo_path(r) for r in every]
    assert len(keys) == len(set(keys))  # each zoo once, whoever loads it
    work = [build_work(r) for r in every]
    assert work == sorted(work, reverse=True) and every[0].name == "cnn1d-hp-mnist1d"  # longest first


def test_needed_zoos_follow_the_run_size(empty_cache):
    quick = {r.name: r.num_networks for r in needed_zoos(["invariant"], RunContext(quick=True))}
    ref = {r.name: r.num_networks for r in needed_zoos(["invariant"], RunContext(quick=True, reference=True))}
    assert ref["cnn1d-hp-mnist1d"] == 4096 > quick["cnn1d-hp-mnist1d"]


def test_cached_zoos_are_not_rebuilt(empty_cache):
    recipe = get_recipe("mlp-mnist1d", full=False)
    folder = zoo_path(recipe)
    folder.mkdir(parents=True)
    (folder / "zoo.json").write_text("{}")
    assert recipe.name not in {r.name for r in needed_zoos(["zoo"], RunContext(quick=True))}


def test_build_work_weights_convolutions():
    """Ordered like the measured quick builds: cnn1d-hp-mnist1d 160 s, inr-dws-digits 102 s, mlp-hp-mnist1d 24 s."""
    assert build_work("cnn1d-hp-mnist1d") > build_work("inr-dws-digits") > build_work("mlp-hp-mnist1d")


def test_reproduce_jobs_builds_declared_zoos_first(empty_cache, tmp_path, monkeypatch, capsys):
    tiny = ZooRecipe(name="prebuild-check", dataset="mnist1d", arch="mlp 40-4-10 relu", num_networks=4, epochs=1,
                     checkpoint_epochs=(0, 1), train_size=200, batch_size=100)
    monkeypatch.setitem(ZOOS, "gauge", lambda ctx: [tiny])
    reproduce(tmp_path / "out", quick=True, device="cpu", only=["gauge", "distributed"], progress=False, jobs=2)
    assert (zoo_path(tiny) / "zoo.json").exists()  # built by a worker, ahead of the experiments
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert set(man["zoo_builds"]) == {"prebuild-check"} and man["zoo_build_seconds_total"] >= 0
    assert "building 1 zoos first: prebuild-check" in capsys.readouterr().out
