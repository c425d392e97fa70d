"""The ``gauge`` experiment in quick mode on CPU: every claim holds and the JSON has the keys."""

from __future__ import annotations

import json

from scalegmn_lite.cli import reproduce
from scalegmn_lite.experiments.gauge import random_specs
from scalegmn_lite.weightspace.spec import ACTIVATIONS

REQUIRED = {"relu-positive-scaling", "tanh-sign-flips", "sigmoid-permutation-only",
            "gauge-preserves-function", "cnn-gauge-strictly-smaller"}


def test_gauge_experiment_quick(tmp_path):
    results = reproduce(tmp_path, quick=True, device="cpu", only=["gauge"], progress=False)
    data = json.loads((tmp_path / "gauge.json").read_text())
    assert (tmp_path / "REPORT.md").exists()
    ids = {c["id"] for c in data["claims"]}
    assert REQUIRED <= ids
    for c in data["claims"]:
        assert set(c) >= {"id", "statement", "measured", "target", "holds"}
        assert c["holds"] is True, c
    dims = {tuple(x[:1]): x[1:] for x in next(c for c in data["claims"]
                                                  if c["id"] == "cnn-gauge-strictly-smaller")["measured"]}
    assert dims[("conv1d 1-1-1/2 k2 relu 1x4",)] == [2, 5]
    assert all(v["invariant"] for v in data["symbolic_mlp"].values())
    assert results["gauge"]["claims"] == data["claims"]


def test_random_specs_cover_every_activation_and_family():
    specs = random_specs(16)
    assert {s.family for s in specs} == {"mlp", "conv1d", "conv2d"}
    acts = {s.layers[0].activation or "identity" for s in specs}
    assert acts == set(ACTIVATIONS)
