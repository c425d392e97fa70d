"""Notebook 03's story of the study zoos: the spread table, the strip figure, and the INR refits that
explain the PSNR of Sitzmann's init against the DWSNets one."""

import math
from dataclasses import replace
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from scalegmn_lite.course.zoo_story import (  # noqa: E402
    PSNR_CEILING,
    STUDY_ZOOS,
    accuracy_spread,
    draw_accuracy_strips,
    draw_init_contrast,
    first_layer_frequencies,
    layer_change,
    psnr_by_step,
    refit_inrs,
    study_zoo_table,
)
from scalegmn_lite.zoo import build_zoo, get_recipe  # noqa: E402
from scalegmn_lite.zoo.inr import psnr  # noqa: E402


def tiny_inr(init="dwsnets", n=4, steps=12):
    """A few 8x8 INRs of the inr-dws-digits recipe (seconds on one core)."""
    return replace(get_recipe("inr-dws-digits", full=False), num_networks=n, image_size=8, epochs=steps,
                   checkpoint_epochs=(0, steps), inr_init=init)


def test_study_zoos_are_recipes_the_later_notebooks_use():
    names = [z.name for z in STUDY_ZOOS]
    assert names == ["cnn1d-hp-mnist1d", "cnn1d-plateau-mnist1d", "mlp-plateau-mnist1d", "inr-dws-digits"]
    for n in names:
        get_recipe(n, full=False)  # raises for an unknown recipe
    from scalegmn_lite.tasks.amortized.protocol import CNN_PLATEAU_ZOO, CNN_ZOO, MLP_PLATEAU_ZOO

    assert {CNN_ZOO, CNN_PLATEAU_ZOO, MLP_PLATEAU_ZOO} <= set(names)


def test_accuracy_spread_is_the_quantiles_per_activation():
    md = pd.DataFrame({"activation": ["relu"] * 11 + ["tanh"] * 3,
                       "test_acc": list(np.linspace(0, 1, 11)) + [0.2, 0.3, 0.4]})
    t = accuracy_spread(md).set_index("activation")
    assert t.loc["relu", "networks"] == 11
    np.testing.assert_allclose(t.loc["relu", ["10%", "median", "90%", "spread 10-90%", "max"]],
                               [0.1, 0.5, 0.9, 0.8, 1.0])
    np.testing.assert_allclose(t.loc["tanh", "median"], 0.3)
    with pytest.raises(ValueError, match="no column 'test_acc'"):
        accuracy_spread(md.drop(columns="test_acc"))


def test_accuracy_strips_draw_every_network_and_keep_the_legend_outside():
    rng = np.random.default_rng(0)
    hp = pd.DataFrame({"activation": ["relu", "tanh"] * 20, "test_acc": rng.uniform(0.1, 0.9, 40),
                       "train_fraction": [0.1, 0.5, 1.0, 0.25] * 10})
    pl = pd.DataFrame({"activation": ["relu"] * 5, "test_acc": rng.uniform(0.5, 0.9, 5)})
    fig = draw_accuracy_strips({"hp": hp, "plateau": pl})
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 45
    assert [t.get_text() for t in ax.get_yticklabels()] == ["hp\nrelu", "hp\ntanh", "plateau\nrelu"]
    leg = ax.get_legend()
    assert leg.get_bbox_to_anchor().x0 > ax.get_window_extent().x1  # right of the axes, not over the dots
    assert min(t.get_fontsize() for t in leg.get_texts()) >= 8
    assert any("10%" in t.get_text() for t in leg.get_texts()) and any("all the data" in t.get_text()
                                                                       for t in leg.get_texts())
    plt.close(fig)
    with pytest.raises(ValueError, match="no metadata column 'activation'"):
        draw_accuracy_strips({"x": pd.DataFrame({"test_acc": [0.5]})})


def test_study_zoo_table_names_size_architecture_and_users():
    spec = SimpleNamespace(to_text=lambda: "mlp 40-32-10 relu")
    zoo = type("Z", (), {"specs": [spec], "checkpoints": [0, 1, 30], "__len__": lambda self: 3})()
    t = study_zoo_table({"mlp-plateau-mnist1d": zoo})
    assert t.to_dict("records")[0] | {"what it is": None, "used in notebook": None} == {
        "zoo": "mlp-plateau-mnist1d", "networks": 3, "architecture": "mlp 40-32-10 relu", "checkpoints": "0, 1, 30",
        "what it is": None, "used in notebook": None}
    assert "07" in t.loc[0, "used in notebook"]
    with pytest.raises(ValueError, match="none of the zoos"):
        study_zoo_table({"other": zoo})


def test_refit_gives_the_zoo_its_own_inrs_with_more_checkpoints():
    r = tiny_inr()
    zoo = build_zoo(r, device="cpu", progress=False)
    again = refit_inrs(r, 3, (0, 5, 12))
    assert list(again.checkpoints) == [0, 5, 12] and len(again) == 3
    np.testing.assert_allclose(again.metadata["psnr@12"], zoo.metadata["psnr"][:3], atol=1e-4)
    np.testing.assert_allclose(again.weights(12).flatten(), zoo.weights().flatten()[:3], atol=1e-5)
    long = psnr_by_step(again)
    assert len(long) == 9 and sorted(long["step"].unique()) == [0, 5, 12]
    # the refit keeps fitting: PSNR at the last step beats the start for every INR
    wide = long.pivot(index="net", columns="step", values="psnr")
    assert (wide[12] > wide[0]).all()
    with pytest.raises(ValueError, match="INR recipe"):
        refit_inrs(get_recipe("mlp-mnist1d", full=False), 2, (0, 1))
    with pytest.raises(ValueError, match="networks must lie"):
        refit_inrs(r, 5, (0, 1))


def test_the_two_inits_start_the_first_layer_at_different_frequencies():
    r = tiny_inr()
    dws, sitz = refit_inrs(r, 4, (0, 12)), refit_inrs(r, 4, (0, 12), inr_init="siren")
    w0 = 30.0
    f_d, f_s = first_layer_frequencies(dws, 0), first_layer_frequencies(sitz, 0)
    assert f_d.shape == (4, 32, 2)
    np.testing.assert_allclose(f_d, dws.weights(0).weights[0].double().numpy() * w0 / math.pi)
    # bounds of the two inits (fan-in 2): sqrt(6/2)/w0 and 1/2, in cycles across [-1, 1]
    assert np.abs(f_d).max() <= math.sqrt(3) / w0 * w0 / math.pi + 1e-6
    assert np.abs(f_s).max() <= 0.5 * w0 / math.pi + 1e-6 and np.abs(f_s).max() > 1
    ch_d, ch_s = layer_change(dws), layer_change(sitz)
    assert len(ch_d) == len(ch_s) == 3 and all(c > 0 for c in ch_d + ch_s)
    assert ch_s[0] < ch_d[0]  # Sitzmann's first layer moves least


def test_psnr_ceiling_is_the_one_the_zoo_reports():
    assert float(psnr(torch.tensor([0.0], dtype=torch.float64))[0]) == PSNR_CEILING


def test_init_contrast_figure():
    curves = {k: pd.DataFrame({"step": [0, 0, 10, 10], "net": [0, 1, 0, 1], "psnr": v})
              for k, v in [("a", [5.0, 6.0, 30.0, 40.0]), ("b", [5.0, 5.0, 20.0, 21.0])]}
    rng = np.random.default_rng(0)
    freqs = {k: (rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 4, 2))) for k in curves}
    fig = draw_init_contrast(curves, freqs, stops={10: "zoo x stops"})
    assert len(fig.axes) == 3
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "zoo x stops after 10 steps" in labels and "ceiling of the PSNR computation" in labels
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [5.5, 35.0])  # the median per step
    plt.close(fig)
    with pytest.raises(ValueError, match="same inits"):
        draw_init_contrast(curves, {"a": freqs["a"]})
    with pytest.raises(ValueError, match=r"\[B, hidden, 2\]"):
        draw_init_contrast(curves, {"a": freqs["a"], "b": (np.zeros((2, 4, 2)), np.zeros((2, 4, 3)))})
