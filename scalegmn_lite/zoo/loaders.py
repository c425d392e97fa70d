"""Loaders for public zoo formats (for users who have the real downloads; tested on fixtures).

Small CNN Zoo (Unterthiner et al. 2020, "Predicting Neural Network Accuracy from Weights")
    folder with ``weights.npy`` (``[N, P]`` float, every network flattened in TF layout),
    ``layout.csv`` (one row per variable: ``varname, start_idx, end_idx, size, shape``; conv
    kernels ``HWIO``, dense kernels ``[in, out]``, in order kernel, bias per layer) and
    ``metrics.csv`` (one row per network: ``test_accuracy``, ``test_loss``, ``train_accuracy``,
    ``train_loss``, ``config.*`` hyperparameters, ...). Kernels are converted to PyTorch layout
    (``OIHW`` / ``[out, in]``). The conv stride/padding are not in the files: pass them (the
    published zoo uses 3x3 stride-2 convolutions; check against your copy).
DWSNets / NFN MNIST-INRs
    a folder per image (``mnist_png_<split>_<label>_<idx>/checkpoints/model_final.pth``) holding a
    SIREN ``state_dict`` (weights ``[out, in]``, or ``[in, out]`` in NFN's converted copies: give
    ``transposed=True``), and optionally a splits JSON (``{"train": {"path": [...], "label":
    [...]}, "val": ..., "test": ...}``) as written by DWSNets' ``generate_data_splits.py``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..weightspace.spec import LayerSpec, NetworkSpec
from ..weightspace.weights import WeightSpace
from .zoo import Zoo

__all__ = ["LoaderError", "load_small_cnn_zoo", "load_inr_state_dicts", "load_dwsnets_inrs"]


class LoaderError(ValueError):
    """Files that do not match the expected public format (names the file and what is wrong)."""


def _shape(text) -> tuple[int, ...]:
    try:
        v = ast.literal_eval(str(text).strip())
    except (ValueError, SyntaxError) as exc:
        raise LoaderError(f"cannot parse shape {text!r}") from exc
    return tuple(int(s) for s in (v if isinstance(v, (tuple, list)) else (v,)))


def load_small_cnn_zoo(folder: str | Path, activation: str | None = None, stride: int = 2, padding: int = 1,
                       input_shape: tuple[int, ...] | None = None, max_networks: int | None = None) -> Zoo:
    """Load a Small CNN Zoo folder into a :class:`Zoo` (one checkpoint, the final weights).

    Args:
        activation: hidden activation; default: the ``config.activation`` column of metrics.csv
            (a zoo mixing activations becomes a mixed zoo, one group per activation).
        stride, padding: of every convolution (not stored in the files).
    """
    folder = Path(folder)
    paths = {k: folder / f for k, f in (("w", "weights.npy"), ("l", "layout.csv"), ("m", "metrics.csv"))}
    for p in paths.values():
        if not p.exists():
            raise LoaderError(f"{p}: missing; a Small CNN Zoo folder has weights.npy, layout.csv and metrics.csv")
    layout = pd.read_csv(paths["l"])
    need = {"varname", "start_idx", "end_idx", "shape"}
    if not need <= set(layout.columns):
        raise LoaderError(f"{paths['l']}: needs columns {sorted(need)}, has {list(layout.columns)}")
    weights = np.load(paths["w"], mmap_mode="r")
    metrics = pd.read_csv(paths["m"])
    if weights.ndim != 2 or len(metrics) != weights.shape[0]:
        raise LoaderError(f"{paths['w']}: shape {weights.shape} does not match {len(metrics)} rows of {paths['m']}")
    if int(layout["end_idx"].max()) != weights.shape[1]:
        raise LoaderError(f"{paths['l']}: covers {int(layout['end_idx'].max())} parameters but {paths['w']} "
                          f"has {weights.shape[1]} per network")
    n = weights.shape[0] if max_networks is None else min(max_networks, weights.shape[0])
    flat = torch.from_numpy(np.asarray(weights[:n], dtype=np.float32))
    rows = list(layout.itertuples(index=False))
    if len(rows) % 2:
        raise LoaderError(f"{paths['l']}: expected kernel/bias pairs, got {len(rows)} variables")
    ws, bs, layers = [], [], []
    for kern, bias in zip(rows[0::2], rows[1::2]):
        ks, bsz = _shape(kern.shape), _shape(bias.shape)
        if "bias" not in str(bias.varname) or len(bsz) != 1 or bsz[0] != ks[-1]:
            raise LoaderError(f"{paths['l']}: {kern.varname!r} {ks} is not followed by its bias "
                              f"(got {bias.varname!r} {bsz})")
        k = flat[:, int(kern.start_idx):int(kern.end_idx)].reshape(n, *ks)
        if len(ks) == 4:  # HWIO -> OIHW
            w = k.permute(0, 4, 3, 1, 2)
            layers.append(LayerSpec("conv2d", ks[2], ks[3], (ks[0], ks[1]), stride, padding, "relu"))
        elif len(ks) == 2:  # [in, out] -> [out, in]
            w = k.transpose(1, 2)
            layers.append(LayerSpec("linear", ks[0], ks[1], activation="relu"))
        else:
            raise LoaderError(f"{paths['l']}: variable {kern.varname!r} has unsupported shape {ks}")
        ws.append(w.contiguous())
        bs.append(flat[:, int(bias.start_idx):int(bias.end_idx)].clone())
    convs = [i for i, layer in enumerate(layers) if layer.is_conv]
    if convs:
        last = convs[-1]
        layers[last] = replace(layers[last], pool_after=True)
    layers[-1] = replace(layers[-1], activation=None)
    md = metrics.iloc[:n].reset_index(drop=True).rename(columns={
        "test_accuracy": "test_acc", "train_accuracy": "train_acc"})
    md.insert(0, "net", np.arange(n))
    acts = md["config.activation"].astype(str).tolist() if activation is None and "config.activation" in md \
        else [activation or "relu"] * n
    md["activation"] = acts
    groups = []
    for act in sorted(set(acts)):
        idx = torch.as_tensor([i for i, a in enumerate(acts) if a == act])
        base = NetworkSpec(tuple(layers), input_shape)
        spec = base.with_activation(act)
        wsp = WeightSpace(spec, [w[idx] for w in ws], [b[idx] for b in bs])
        groups.append(([wsp], md.iloc[idx.numpy()].reset_index(drop=True)))
    return Zoo.from_weight_spaces(groups, (0,), None)


def load_inr_state_dicts(state_dicts, labels, w0: float = 30.0, transposed: bool | None = None,
                         names: list[str] | None = None) -> Zoo:
    """SIREN state dicts (weights and biases alternating in key order) -> INR :class:`Zoo`.

    ``transposed=None`` detects NFN's ``[in, out]`` layout from the first weight (2 inputs)."""
    weights, biases = None, None
    spec = None
    for j, sd in enumerate(state_dicts):
        w = [v for k, v in sd.items() if k.endswith("weight")]
        b = [v for k, v in sd.items() if k.endswith("bias")]
        where = names[j] if names else f"state dict {j}"
        if not w or len(w) != len(b):
            raise LoaderError(f"{where}: expected matching '*weight'/'*bias' entries, got keys {list(sd)}")
        tr = transposed if transposed is not None else (w[0].shape[0] == 2 and w[0].shape[1] != 2)
        w = [t.T if tr else t for t in w]
        b = [t.reshape(-1) for t in b]
        widths = [w[0].shape[1]] + [t.shape[0] for t in w]
        this = NetworkSpec.from_text(f"mlp {'-'.join(map(str, widths))} sine a={w0:g}")
        if spec is None:
            spec, weights, biases = this, [[] for _ in w], [[] for _ in b]
        elif this.layers != spec.layers:
            raise LoaderError(f"{where}: architecture {this.to_text()!r} differs from the first one {spec.to_text()!r}")
        for l, (wl, bl) in enumerate(zip(w, b)):
            weights[l].append(wl.float())
            biases[l].append(bl.float())
    if spec is None:
        raise LoaderError("no INR state dicts given")
    ws = WeightSpace(spec, [torch.stack(w) for w in weights], [torch.stack(b) for b in biases])
    md = pd.DataFrame({"net": np.arange(ws.batch_size), "label": [int(v) for v in labels],
                       "activation": "sine", "path": names or [""] * ws.batch_size})
    return Zoo.from_weight_spaces([([ws], md)], (0,), None)


_DWS = re.compile(r"mnist_png_(?P<split>[a-z]+)_(?P<label>\d+)_(?P<idx>\d+)")


def load_dwsnets_inrs(root: str | Path, splits_json: str | Path | None = None, split: str | None = None,
                      w0: float = 30.0, transposed: bool | None = None) -> Zoo:
    """Load DWSNets/NFN MNIST-INRs. With ``splits_json`` read the paths and labels of ``split``
    (train/val/test; a ``split`` column is added when ``split=None``); otherwise glob
    ``root/mnist_png_*/**/*.pth`` and take the label from the folder name."""
    root = Path(root)
    items: list[tuple[Path, int, str]] = []
    if splits_json is not None:
        sj = Path(splits_json)
        try:
            data = json.loads(sj.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise LoaderError(f"{sj}: cannot read the splits JSON ({exc})") from exc
        for s in ([split] if split else list(data)):
            if s not in data or not {"path", "label"} <= set(data[s]):
                raise LoaderError(f"{sj}: no split {s!r} with 'path' and 'label' lists (has {list(data)})")
            if len(data[s]["path"]) != len(data[s]["label"]):
                raise LoaderError(f"{sj}: split {s!r} has {len(data[s]['path'])} paths but "
                                  f"{len(data[s]['label'])} labels")
            for p, lab in zip(data[s]["path"], data[s]["label"]):
                pp = Path(p) if Path(p).is_absolute() else root / p
                items.append((pp, int(lab), s))
    else:
        for p in sorted(root.glob("mnist_png_*/**/*.pth")):
            m = _DWS.search(p.as_posix())
            if m is None:
                raise LoaderError(f"{p}: folder name does not match mnist_png_<split>_<label>_<idx>")
            items.append((p, int(m["label"]), "train" if "train" in m["split"] else "test"))
    if not items:
        raise LoaderError(f"{root}: no INR checkpoints found (expected mnist_png_*/checkpoints/*.pth)")
    sds = []
    for p, _, _ in items:
        if not p.exists():
            raise LoaderError(f"{p}: listed in the splits but missing")
        try:
            sds.append(torch.load(p, map_location="cpu", weights_only=True))
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for corrupt files
            raise LoaderError(f"{p}: cannot be loaded as a state dict ({exc})") from exc
    zoo = load_inr_state_dicts(sds, [lab for _, lab, _ in items], w0=w0, transposed=transposed,
                               names=[str(p) for p, _, _ in items])
    zoo.metadata["split"] = [s for _, _, s in items]
    return zoo
