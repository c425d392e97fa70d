"""Loaders for public zoo formats, on small fixtures written in those exact formats."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from scalegmn_lite.weightspace.modules import Sine
from scalegmn_lite.zoo.loaders import LoaderError, load_dwsnets_inrs, load_small_cnn_zoo


def _write_small_cnn_zoo(folder, n=5, acts=("relu", "tanh", "relu", "relu", "tanh")):
    """TF layout: conv kernels HWIO, dense kernel [in, out], flattened per network in layout order."""
    rng = np.random.default_rng(0)
    shapes = [("sequential/conv2d/kernel:0", (3, 3, 1, 4)), ("sequential/conv2d/bias:0", (4,)),
              ("sequential/conv2d_1/kernel:0", (3, 3, 4, 4)), ("sequential/conv2d_1/bias:0", (4,)),
              ("sequential/dense/kernel:0", (4, 10)), ("sequential/dense/bias:0", (10,))]
    rows, start = [], 0
    for name, shape in shapes:
        size = int(np.prod(shape))
        rows.append(dict(varname=name, start_idx=start, end_idx=start + size, size=size, shape=str(shape)))
        start += size
    weights = rng.standard_normal((n, start)).astype(np.float32)
    np.save(folder / "weights.npy", weights)
    pd.DataFrame(rows).to_csv(folder / "layout.csv", index=False)
    pd.DataFrame({"test_accuracy": rng.uniform(0.1, 0.9, n), "test_loss": rng.uniform(0.5, 2, n),
                  "train_accuracy": rng.uniform(0.1, 0.9, n), "config.activation": list(acts[:n]),
                  "config.learning_rate": rng.uniform(1e-3, 1e-1, n)}).to_csv(folder / "metrics.csv", index=False)
    return weights, rows


def _tf_forward(flat, rows, act, x_nhwc):
    """Reference forward in TF conventions (NHWC input, HWIO kernels), written independently."""
    def var(i):
        r = rows[i]
        return torch.from_numpy(flat[r["start_idx"]:r["end_idx"]]).reshape(eval(r["shape"]))
    h = x_nhwc.permute(0, 3, 1, 2)
    for i in (0, 2):
        k = var(i).permute(3, 2, 0, 1)  # HWIO -> OIHW, only to call torch's conv
        h = F.conv2d(h, k, var(i + 1), stride=2, padding=1)
        h = torch.relu(h) if act == "relu" else torch.tanh(h)
    h = h.mean((2, 3))
    return h @ var(4) + var(5)


def test_small_cnn_zoo_loads_and_computes_the_same_function(tmp_path):
    weights, rows = _write_small_cnn_zoo(tmp_path)
    zoo = load_small_cnn_zoo(tmp_path, input_shape=(1, 12, 12))
    assert len(zoo) == 5 and len(zoo.specs) == 2
    assert list(zoo.metadata["net"]) == list(range(5)) and "test_acc" in zoo.metadata
    x = torch.randn(7, 12, 12, 1)
    for i in range(5):
        act = zoo.metadata["activation"][i]
        out = zoo.network(i)(x.permute(0, 3, 1, 2))[0]
        assert torch.allclose(out, _tf_forward(weights[i], rows, act, x), atol=1e-5)
    # negative control: reading kernels as OIHW directly (no HWIO conversion) gives another function
    bad = zoo.network(0).map(lambda t: t.reshape(t.shape[0], -1).flip(1).reshape(t.shape))
    assert not torch.allclose(bad(x.permute(0, 3, 1, 2))[0], _tf_forward(weights[0], rows, "relu", x), atol=1e-3)


def test_small_cnn_zoo_mismatches_are_clear(tmp_path):
    _write_small_cnn_zoo(tmp_path)
    np.save(tmp_path / "weights.npy", np.zeros((5, 10), np.float32))
    with pytest.raises(LoaderError, match="layout.csv: covers"):
        load_small_cnn_zoo(tmp_path)
    np.save(tmp_path / "weights.npy", np.zeros((3, 10), np.float32))
    with pytest.raises(LoaderError, match="does not match 5 rows"):
        load_small_cnn_zoo(tmp_path)
    (tmp_path / "metrics.csv").unlink()
    with pytest.raises(LoaderError, match="metrics.csv: missing"):
        load_small_cnn_zoo(tmp_path)


def _siren_state_dict(g, widths=(2, 8, 8, 1)):
    sd = {}
    for l, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        key = f"seq.{l}" + (".linear" if l < len(widths) - 2 else "")
        sd[f"{key}.weight"] = torch.randn(b, a, generator=g)
        sd[f"{key}.bias"] = torch.randn(b, generator=g)
    return sd


def test_dwsnets_inrs_folder_and_splits(tmp_path):
    g = torch.Generator().manual_seed(0)
    root = tmp_path / "mnist-inrs"
    paths, labels, sds = [], [], []
    for i, (split, label) in enumerate([("training", 3), ("training", 7), ("testing", 1)]):
        p = root / f"mnist_png_{split}_{label}_{i}" / "checkpoints" / "model_final.pth"
        p.parent.mkdir(parents=True)
        sd = _siren_state_dict(g)
        torch.save(sd, p)
        paths.append(p.as_posix()), labels.append(label), sds.append(sd)
    zoo = load_dwsnets_inrs(root)
    assert sorted(zoo.metadata["label"]) == [1, 3, 7] and set(zoo.metadata["split"]) == {"train", "test"}
    splits = {"train": {"path": paths[:2], "label": [str(v) for v in labels[:2]]},
              "test": {"path": paths[2:], "label": [str(labels[2])]}}
    (tmp_path / "mnist_splits.json").write_text(json.dumps(splits))
    z = load_dwsnets_inrs(root, tmp_path / "mnist_splits.json", split="train")
    assert list(z.metadata["label"]) == [3, 7]
    coords = torch.rand(5, 2) * 2 - 1
    lin = torch.nn.Linear
    ref = torch.nn.Sequential(lin(2, 8), Sine(30.0), lin(8, 8), Sine(30.0), lin(8, 1))
    ref.load_state_dict({k: v for k, v in zip(ref.state_dict(), sds[1].values())})
    assert torch.allclose(z.network(1)(coords)[0], ref(coords), atol=1e-3)
    # NFN layout ([in, out]) is detected and transposed back
    nfn = [{k: v.T if v.dim() == 2 else v for k, v in sd.items()} for sd in sds]
    from scalegmn_lite.zoo.loaders import load_inr_state_dicts

    zn = load_inr_state_dicts(nfn, labels)
    assert torch.equal(zn.weights().flatten(), load_inr_state_dicts(sds, labels).weights().flatten())


def test_dwsnets_errors_name_the_file(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"train": {"path": ["nope.pth"], "label": [1]}}))
    with pytest.raises(LoaderError, match="nope.pth: listed in the splits but missing"):
        load_dwsnets_inrs(tmp_path, tmp_path / "s.json")
    with pytest.raises(LoaderError, match="no split 'val'"):
        load_dwsnets_inrs(tmp_path, tmp_path / "s.json", split="val")
    with pytest.raises(LoaderError, match="no INR checkpoints found"):
        load_dwsnets_inrs(tmp_path / "empty")
    bad = tmp_path / "mnist_png_training_2_0" / "checkpoints" / "model_final.pth"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(LoaderError, match="model_final.pth: cannot be loaded"):
        load_dwsnets_inrs(tmp_path)
