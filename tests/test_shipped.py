"""The trained models shipped with the reference run (issue 25): every one loads, is verified by its
SHA-256, and recomputes on its held-out networks what the reference run recorded; altered, truncated or
missing files are refused with a message that says what to do."""

import json
import shutil

import pytest
import torch

from scalegmn_lite.common.io import CorruptFileError, save_tensors
from scalegmn_lite.course.reference import claims_table, load_reference, readable_number
from scalegmn_lite.course.shipped import KINDS, check_shipped, load_shipped, models_dir, recompute, shipped_index

INDEX = shipped_index()
NAMES = sorted(INDEX)


def test_the_models_the_notebooks_load_are_shipped():
    assert {"operator-cnn1d-tanh", "accuracy-predictor-scalegmn", "inr-classifier-scalegmn",
            "autoencoder-inr", "residual-accuracy-predictor-scalegmn"} <= set(NAMES)
    assert {e["kind"] for e in INDEX.values()} == set(KINDS)
    for name, e in INDEX.items():
        for part in ("model", "heldout"):
            path = models_dir() / e[part]["file"]
            assert path.stat().st_size == e[part]["bytes"] < 4_000_000, f"{name}: {part} file missing or too big"
        assert len(e["commit"]) == 40 and e["notebook"] in ("06", "07", "08", "09")


@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_reproduces_the_reference_figures(name):
    s = load_shipped(name)
    assert s.heldout.batch_size == len(s.target) == len(s.reference) >= 32
    r = check_shipped(s)
    assert r["agrees"], r
    assert all(not p.requires_grad or p.dtype == torch.float32 for p in s.model.parameters())
    assert name in s.describe() and s.info["experiment"] in s.describe()


def test_shipped_models_work_on_networks_they_never_saw():
    """What notebooks 06-08 show: the shipped models do their task on the held-out sample."""
    from scalegmn_lite.tasks.invariant.fit import score

    op = load_shipped("operator-cnn1d-tanh")
    gain = recompute(op) - op.target.double()
    assert gain.mean() > 0.05  # reference run: +10 points on these 64 networks
    acc = load_shipped("accuracy-predictor-scalegmn")
    assert score("regression", recompute(acc), acc.target) > 0.7
    inr = load_shipped("inr-classifier-scalegmn")
    assert (recompute(inr) == inr.target.double()).double().mean() > 0.8
    ae = load_shipped("autoencoder-inr")
    assert recompute(ae).mean() > 18  # dB; the mean-image floor is 13.7
    res = load_shipped("residual-accuracy-predictor-scalegmn")
    assert score("regression", recompute(res), res.target) > 0.5


def test_the_shipped_residual_model_passes_the_gauge_test():
    """Notebook 09's gauge test on the shipped sample: gauge transforms of the held-out residual networks get the same
    predictions (up to BatchNorm's eps), a non-symmetry moves them."""
    from scalegmn_lite.tasks.invariant.blocks import gauge_transform, non_symmetry_transform
    from scalegmn_lite.tasks.invariant.fit import predict

    s = load_shipped("residual-accuracy-predictor-scalegmn")
    p = predict(s.model, s.heldout)
    assert (predict(s.model, gauge_transform(s.heldout, 1)) - p).abs().max() < 1e-3
    assert (predict(s.model, non_symmetry_transform(s.heldout, "wrong_scaling", 1)) - p).abs().max() > 1e-2


@pytest.fixture()
def copy(tmp_path):
    dst = tmp_path / "models"
    shutil.copytree(models_dir(), dst)
    return dst


def test_altered_file_is_refused(copy):
    e = INDEX["inr-classifier-scalegmn"]
    path = copy / e["model"]["file"]
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="SHA-256 differs.*restore it from git"):
        load_shipped("inr-classifier-scalegmn", copy)


def test_consistent_replacement_is_refused_by_the_index(copy):
    """A file rewritten with a matching sidecar (someone retrained and saved over it) still fails: the
    committed index holds the hash."""
    e = INDEX["accuracy-predictor-scalegmn"]
    meta = json.loads((copy / (e["heldout"]["file"] + ".json")).read_text())["meta"]
    save_tensors(copy / e["heldout"]["file"], {"flat": torch.zeros(2, 3), "target": torch.zeros(2),
                                               "reference": torch.zeros(2)}, meta)
    with pytest.raises(CorruptFileError, match="SHA-256 differs"):
        load_shipped("accuracy-predictor-scalegmn", copy)


def test_missing_pieces_say_what_to_do(copy, tmp_path):
    (copy / INDEX["autoencoder-inr"]["model"]["file"]).unlink()
    with pytest.raises(CorruptFileError, match="missing; restore it from git"):
        load_shipped("autoencoder-inr", copy)
    with pytest.raises(KeyError, match="no shipped model 'nope'; shipped: .*operator-cnn1d-tanh"):
        load_shipped("nope", copy)
    with pytest.raises(FileNotFoundError, match="tools/ship_models.py"):
        load_shipped("autoencoder-inr", tmp_path / "empty")
    (copy / "index.json").write_text("{}")
    with pytest.raises(CorruptFileError, match="not an index of shipped models"):
        load_shipped("autoencoder-inr", copy)


def test_readable_numbers_never_use_e_notation_or_nan():
    assert readable_number(3e-7) == "< 0.001" and readable_number(-3e-7) == "> -0.001"
    assert readable_number(0.0) == "0.000" and readable_number(1234.5678, 1) == "1234.6"
    assert readable_number(float("nan")) == "" and readable_number(None) == ""
    for name in ("invariant", "amortized", "gscale", "merging", "residual"):
        table = claims_table(load_reference(name)).to_string()
        assert "nan" not in table.lower() and not any(t in table for t in ("e-0", "e+0", "e-1")), name
