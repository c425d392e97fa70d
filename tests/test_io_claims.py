"""Atomic verified storage, computed claims, the reproduce command's report."""

from __future__ import annotations

import json
import math

import pytest
import torch

from scalegmn_lite.cli import write_report
from scalegmn_lite.common.claims import claim
from scalegmn_lite.common.io import CorruptFileError, atomic_write_json, load_tensors, save_tensors


def test_save_load_round_trip(tmp_path):
    t = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    save_tensors(tmp_path / "x.pt", t, meta={"recipe": "r"})
    back, meta = load_tensors(tmp_path / "x.pt")
    assert meta == {"recipe": "r"} and torch.equal(back["a"], t["a"]) and torch.equal(back["b"], t["b"])
    assert not list(tmp_path.glob("*.tmp"))  # no temporary files left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_sidecar", "bad_sidecar"])
def test_damaged_files_are_named(tmp_path, damage):
    path = tmp_path / "zoo.pt"
    save_tensors(path, {"w": torch.randn(100)})
    side = tmp_path / "zoo.pt.json"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    elif damage == "delete_sidecar":
        side.unlink()
    else:
        side.write_text("{not json")
    with pytest.raises(CorruptFileError, match="zoo.pt"):
        load_tensors(path)


def test_claims_compute_holds():
    assert claim("a", "x", 0.5, "<=", 1.0).holds
    assert not claim("a", "x", 1.5, "<=", 1.0).holds
    assert not claim("a", "x", math.nan, "<=", 1.0).holds  # NaN never holds
    assert claim("a", "x", {"k": 1}, holds=True, target="all").target == "all"
    with pytest.raises(ValueError):
        claim("a", "x", 1.0)  # neither a comparison nor a computed holds
    with pytest.raises(ValueError):
        claim("a", "x", 1.0, "~", 1.0)


def test_report_table(tmp_path):
    results = {"demo": {"claims": [claim("c1", "works", 0.1, "<", 1).to_dict(),
                                   claim("c2", "fails", 3.0, "<", 1).to_dict()],
                        "quick": True, "device": "cpu", "seconds": 1.0}}
    report = write_report(tmp_path, results).read_text()
    assert "1 of 2 exact checks hold" in report and "| demo | `c2` |" in report and "**refuted**" in report
    atomic_write_json(tmp_path / "demo.json", results["demo"])
    data = json.loads((tmp_path / "demo.json").read_text())
    assert {"id", "statement", "measured", "target", "holds", "status", "ci", "seeds"} <= set(data["claims"][0])
