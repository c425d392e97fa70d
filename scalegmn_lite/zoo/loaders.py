"""Loaders for public zoo formats, read exactly as published (tested on fixtures written in those
forms; nothing is downloaded).

**Small CNN Zoo** (Unterthiner et al. 2020; the CIFAR-10-GS zoo used by NFN and ScaleGMN), a folder with
    ``weights.npy``: ``[R, P]`` float32, one row per *checkpoint* (every run is saved at 9 steps,
        0 ... 86), every network flattened in TensorFlow layout;
    ``metrics.csv.gz``: gzip CSV, one row per row of ``weights.npy``: ``modeldir`` (the run),
        ``step``, ``test_accuracy``, ``test_loss``, ``train_accuracy``, ``train_loss``,
        ``config.activation``, ``config.*`` hyperparameters;
    ``layout.csv``: ``varname, start_idx, end_idx, size, shape``, one row per variable. Each layer's
        ``.../bias:0`` row comes *before* its ``.../kernel:0`` row, so rows are matched by name, never
        by position. Conv kernels are ``HWIO`` (-> ``OIHW``), dense kernels ``[in, out]`` (-> ``[out, in]``).
    The architecture is not in the files: 3x3 convolutions, stride 2, **'valid' padding (0)**, global
    average pooling after the last one, a dense output layer; inputs are 32x32 grayscale in [-1, 1].
    The standard protocol (NFN, ScaleGMN): order the rows by NFN's shuffle CSV (one column of row
    indices, no header), keep the final step, the last 50% of the final networks are the test split,
    the rest is shuffled with Python's ``random.Random(0)`` and cut 80/20 into train/val. A run's
    other checkpoints follow it into its split (never on both sides). Rows with NaN/inf are reported
    (:class:`DroppedNetworksWarning`, ``zoo.recipe["dropped_nonfinite"]``) and dropped.
    Input vertices: ScaleGMN's CNN graphs give them the feature 0 (as :func:`~scalegmn_lite.nn.graphs.to_graph`).

**INRs** (SIRENs ``sin(w0 (W x + b))``, ``w0 = 30``, coordinates in ``[-1, 1]^2``). The DWSNets /
ScaleGMN SIREN *adds 0.5 to its output* (``f(x) = W_L h + b_L + 0.5``); the weights do not contain
it. The loaders record the offset (``output_offset``: column of ``zoo.metadata`` and
``zoo.recipe``; render with ``ws(coords) + output_offset``) or fold it into the last bias
(``fold_output_offset=True``: then ``ws(coords)`` is the image and the recorded offset is 0).
Input vertices: ScaleGMN's INR graphs give them the feature 1 (our graphs use 0 for every family; a
constant carries no information, but keep one convention between training and evaluation).
    * DWSNets MNIST-INRs (:func:`load_dwsnets_inrs`): ``mnist_png_<split>_<label>_<idx>/checkpoints/
      model_final.pth`` with keys ``seq.{l}.linear.weight`` ``[out, in]`` (last layer ``seq.{L}.weight``),
      and a splits JSON ``{"train": {"path": [...], "label": [...]}, "val": ..., "test": ...}`` whose
      paths are absolute (DWSNets) or relative to the repository root (ScaleGMN), resolved below.
    * F-MNIST INRs (:func:`load_fmnist_inrs`): a splits JSON ``{"train": [path, ...], ...}``; the
      label is the entry ``"label"`` of each checkpoint. Output offset 0.5 as above.
    * NFN / ScaleGMN CIFAR-10 INRs (:func:`load_cifar10_inrs`): folders ``<prefix>_<label>s/net<idx>.pth``
      (``prefix="randinit_smaller"``) with keys ``net.{l}.linear.weight``; 3 outputs (RGB), fitted to
      images normalised to [-1, 1] (no output offset assumed); split by index: ``idx < 45000``
      train, ``< 50000`` val, the rest test.
    A checkpoint path that does not exist as written is looked up under ``root`` by its longest
    existing suffix (a repository-relative ``data/mnist-inrs/mnist_png_.../model_final.pth`` or an
    absolute path from another machine both resolve).
"""

from __future__ import annotations

import ast
import json
import random
import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..weightspace.spec import LayerSpec, NetworkSpec
from ..weightspace.weights import WeightSpace
from .zoo import Zoo

__all__ = ["LoaderError", "DroppedNetworksWarning", "DWSNETS_OUTPUT_OFFSET", "standard_split", "load_small_cnn_zoo",
           "load_inr_state_dicts", "load_dwsnets_inrs", "load_fmnist_inrs", "load_cifar10_inrs"]

#: the DWSNets / ScaleGMN SIREN adds this to its output
DWSNETS_OUTPUT_OFFSET = 0.5
_METRIC_NAMES = {"test_accuracy": "test_acc", "train_accuracy": "train_acc", "test_loss": "test_loss",
                 "train_loss": "train_loss"}


class LoaderError(ValueError):
    """Files that do not match the expected public format (names the file and what is wrong)."""


class DroppedNetworksWarning(UserWarning):
    """Some networks of a public zoo were dropped (NaN/inf weights, missing checkpoints)."""


# ---------------------------------------------------------------------- Small CNN Zoo
def _shape(text, where: str) -> tuple[int, ...]:
    try:
        v = ast.literal_eval(str(text).strip())
    except (ValueError, SyntaxError) as exc:
        raise LoaderError(f"{where}: cannot parse shape {text!r}") from exc
    return tuple(int(s) for s in (v if isinstance(v, (tuple, list)) else (v,)))


def _layers_from_layout(path: Path, n_params: int) -> list[tuple[str, dict, dict]]:
    """``[(layer name, kernel row, bias row)]`` in parameter order, matched by ``kernel:0``/``bias:0``."""
    layout = pd.read_csv(path)
    need = {"varname", "start_idx", "end_idx", "shape"}
    if not need <= set(layout.columns):
        raise LoaderError(f"{path}: needs columns {sorted(need)}, has {list(layout.columns)}")
    layers: dict[str, dict[str, dict]] = {}
    for row in layout.to_dict("records"):
        name = str(row["varname"])
        m = re.fullmatch(r"(.+)/(kernel|bias):\d+", name)
        if m is None:
            raise LoaderError(f"{path}: variable {name!r} is neither '<layer>/kernel:0' nor '<layer>/bias:0'")
        row["shape"] = _shape(row["shape"], f"{path}: {name}")
        if int(row["end_idx"]) - int(row["start_idx"]) != int(np.prod(row["shape"])):
            raise LoaderError(f"{path}: {name} spans {int(row['end_idx']) - int(row['start_idx'])} entries but has "
                              f"shape {row['shape']}")
        if m[2] in layers.setdefault(m[1], {}):
            raise LoaderError(f"{path}: layer {m[1]!r} has two {m[2]} rows")
        layers[m[1]][m[2]] = row
    out = []
    for name, rows in layers.items():
        if set(rows) != {"kernel", "bias"}:
            raise LoaderError(f"{path}: layer {name!r} needs a kernel and a bias row, has {sorted(rows)}")
        k, b = rows["kernel"], rows["bias"]
        if len(b["shape"]) != 1 or b["shape"][0] != k["shape"][-1]:
            raise LoaderError(f"{path}: bias {b['shape']} of {name!r} does not match its kernel {k['shape']}")
        out.append((name, k, b))
    out.sort(key=lambda t: min(int(t[1]["start_idx"]), int(t[2]["start_idx"])))
    spans = sorted((int(r["start_idx"]), int(r["end_idx"])) for _, k, b in out for r in (k, b))
    if spans[0][0] != 0 or any(a[1] != b[0] for a, b in zip(spans, spans[1:])) or spans[-1][1] != n_params:
        raise LoaderError(f"{path}: the variables cover {spans[-1][1]} parameters (with gaps or overlaps: "
                          f"{spans[0][0] != 0 or any(a[1] != b[0] for a, b in zip(spans, spans[1:]))}) but "
                          f"weights.npy has {n_params} per network")
    return out


def standard_split(n: int, test_fraction: float = 0.5, val_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Split labels of ``n`` networks in NFN's order: the last ``test_fraction`` is ``"test"``, the
    rest shuffled with ``random.Random(seed)`` and cut ``1 - val_fraction`` / ``val_fraction``."""
    test_point = int((1 - test_fraction) * n)
    trainval = list(range(test_point))
    random.Random(seed).shuffle(trainval)
    val_point = int((1 - val_fraction) * len(trainval))
    labels = np.full(n, "test", dtype=object)
    labels[trainval[:val_point]] = "train"
    labels[trainval[val_point:]] = "val"
    return labels


def _read_metrics(folder: Path) -> tuple[pd.DataFrame, Path]:
    gz, plain = folder / "metrics.csv.gz", folder / "metrics.csv"
    path = gz if gz.exists() else plain
    if not path.exists():
        raise LoaderError(f"{gz}: missing; a Small CNN Zoo folder has weights.npy, layout.csv and metrics.csv.gz")
    try:
        return pd.read_csv(path, compression="infer"), path
    except (OSError, EOFError, ValueError) as exc:
        raise LoaderError(f"{path}: cannot be read as a (gzip) CSV ({exc})") from exc


def load_small_cnn_zoo(folder: str | Path, activation: str | None = None, steps: str | int | Sequence[int] = "final",
                       split: str | None = None, shuffle_csv: str | Path | None = None, stride: int = 2,
                       padding: int = 0, input_shape: tuple[int, ...] | None = (1, 32, 32),
                       max_networks: int | None = None) -> Zoo:
    """Load a Small CNN Zoo folder (module docstring) into a :class:`Zoo`, one network per run.

    Args:
        activation: keep only runs with this ``config.activation`` (default: all; a zoo mixing
            activations becomes one group per activation).
        steps: checkpoints to load: ``"final"`` (the last step, 86), ``"all"`` or step numbers; the zoo's
            ``checkpoints`` are the steps and ``zoo.metadata`` has ``test_acc@<step>`` etc.
        split: ``"train"``, ``"val"`` or ``"test"`` of the standard split (default: all, with a
            ``split`` column).
        shuffle_csv: NFN's shuffle file (row order of the standard split); default: file order.
        stride, padding: of every convolution (not stored in the files; published: 2 and 0).
        max_networks: keep the first runs only (after the split and activation filter).
    """
    folder = Path(folder)
    w_path, l_path = folder / "weights.npy", folder / "layout.csv"
    for p in (w_path, l_path):
        if not p.exists():
            raise LoaderError(f"{p}: missing; a Small CNN Zoo folder has weights.npy, layout.csv and metrics.csv.gz")
    if split not in (None, "train", "val", "test"):
        raise LoaderError(f"split must be 'train', 'val', 'test' or None, got {split!r}")
    weights = np.load(w_path, mmap_mode="r")
    metrics, m_path = _read_metrics(folder)
    if weights.ndim != 2 or len(metrics) != weights.shape[0]:
        raise LoaderError(f"{w_path}: shape {weights.shape} does not match the {len(metrics)} rows of {m_path}")
    layers_rows = _layers_from_layout(l_path, weights.shape[1])
    order = np.arange(len(metrics))
    if shuffle_csv is not None:
        order = pd.read_csv(shuffle_csv, header=None).to_numpy().reshape(-1)
        if len(order) != len(metrics) or not np.array_equal(np.sort(order), np.arange(len(metrics))):
            raise LoaderError(f"{shuffle_csv}: not a permutation of the {len(metrics)} rows of {m_path}")
    md = metrics.iloc[order].reset_index(drop=True)
    md["_row"] = order
    if "step" not in md:
        md["step"] = 0
    if "modeldir" not in md:
        if md["step"].nunique() > 1:
            raise LoaderError(f"{m_path}: several steps but no 'modeldir' column to tell the runs apart")
        md["modeldir"] = [f"row{r}" for r in order]
    all_steps = sorted(int(s) for s in md["step"].unique())
    want = [all_steps[-1]] if steps == "final" else all_steps if steps == "all" else \
        sorted({int(s) for s in ([steps] if isinstance(steps, (int, np.integer)) else steps)})
    if missing := [s for s in want if s not in all_steps]:
        raise LoaderError(f"{m_path}: no step {missing}; recorded steps: {all_steps}")
    # standard split over the final checkpoints in (shuffled) order; a run's checkpoints follow it
    final = md[md["step"] == all_steps[-1]]
    runs = final["modeldir"].to_numpy()
    split_of = dict(zip(runs, standard_split(len(runs))))
    runs = [r for r in runs if split is None or split_of[r] == split]
    act_col = (final["config.activation"].astype(str) if "config.activation" in final
               else [activation or "relu"] * len(final))
    acts = dict(zip(final["modeldir"], act_col))
    if activation is not None:
        runs = [r for r in runs if acts[r] == activation]
    rows = {(r, int(s)): i for i, r, s in zip(md["_row"], md["modeldir"], md["step"])}
    dropped_missing = [r for r in runs if any((r, s) not in rows for s in want)]
    runs = [r for r in runs if r not in set(dropped_missing)]
    if max_networks is not None:
        runs = runs[:max_networks]
    idx = np.array([[rows[(r, s)] for s in want] for r in runs], dtype=np.int64).reshape(len(runs), len(want))
    flat = np.asarray(weights[np.sort(idx.reshape(-1))], dtype=np.float32) if idx.size else \
        np.zeros((0, weights.shape[1]), np.float32)
    pos = {r: i for i, r in enumerate(np.sort(idx.reshape(-1)))}
    flat = torch.from_numpy(flat[[pos[i] for i in idx.reshape(-1)]] if idx.size else flat)
    flat = flat.reshape(len(runs), len(want), -1)
    ok = torch.isfinite(flat).flatten(1).all(1)
    dropped_nonfinite = [r for r, good in zip(runs, ok.tolist()) if not good]
    if dropped_missing or dropped_nonfinite:
        warnings.warn(f"{folder}: dropped {len(dropped_nonfinite)} runs with NaN/inf weights "
                      f"{dropped_nonfinite[:5]}{'...' if len(dropped_nonfinite) > 5 else ''} and "
                      f"{len(dropped_missing)} runs missing a requested step", DroppedNetworksWarning, stacklevel=2)
    runs = [r for r, good in zip(runs, ok.tolist()) if good]
    flat = flat[ok]
    if not runs:
        raise LoaderError(f"{folder}: no networks left (split={split!r}, activation={activation!r})")
    # weights per layer, TF -> PyTorch layout
    layers, ws_per_ckpt = [], [[] for _ in want]
    for name, k, b in layers_rows:
        ks = k["shape"]
        kern = flat[..., int(k["start_idx"]):int(k["end_idx"])].reshape(len(runs), len(want), *ks)
        bias = flat[..., int(b["start_idx"]):int(b["end_idx"])]
        if len(ks) == 4:  # HWIO -> OIHW
            kern = kern.permute(0, 1, 5, 4, 2, 3)
            layers.append(LayerSpec("conv2d", ks[2], ks[3], (ks[0], ks[1]), stride, padding, "relu"))
        elif len(ks) == 2:  # [in, out] -> [out, in]
            kern = kern.transpose(2, 3)
            layers.append(LayerSpec("linear", ks[0], ks[1], activation="relu"))
        else:
            raise LoaderError(f"{l_path}: layer {name!r} has a kernel of unsupported shape {ks}")
        for c in range(len(want)):
            ws_per_ckpt[c].append((kern[:, c].contiguous(), bias[:, c].contiguous()))
    convs = [i for i, layer in enumerate(layers) if layer.is_conv]
    if convs:
        layers[convs[-1]] = replace(layers[convs[-1]], pool_after=True)
    layers[-1] = replace(layers[-1], activation=None)
    base = NetworkSpec(tuple(layers), input_shape)
    # metadata: the final loaded step's row, plus per-step metrics
    by_key = md.set_index(["modeldir", "step"])
    last = by_key.loc[[(r, want[-1]) for r in runs]].reset_index()
    meta = last.drop(columns=[c for c in ("_row",) if c in last]).rename(columns=_METRIC_NAMES)
    for s in want:
        rows_s = by_key.loc[[(r, s) for r in runs]]
        for src, dst in _METRIC_NAMES.items():
            if src in rows_s:
                meta[f"{dst}@{s}"] = rows_s[src].to_numpy()
    meta.insert(0, "net", np.arange(len(runs)))
    meta["run"] = meta["modeldir"]
    meta["split"] = [split_of[r] for r in runs]
    meta["activation"] = [str(acts[r]) for r in runs]
    groups = []
    for act in sorted(set(meta["activation"])):
        sel = torch.as_tensor(np.flatnonzero(meta["activation"].to_numpy() == act))
        spec = base.with_activation(act)
        per = [WeightSpace(spec, [w[sel] for w, _ in ck], [b[sel] for _, b in ck]) for ck in ws_per_ckpt]
        groups.append((per, meta.iloc[sel.numpy()].reset_index(drop=True)))
    recipe = {"name": "small-cnn-zoo", "source": str(folder), "steps": want, "stride": stride, "padding": padding,
              "dropped_nonfinite": [str(r) for r in dropped_nonfinite],
              "dropped_missing_step": [str(r) for r in dropped_missing], "input_vertex_feature": 0.0}
    return Zoo.from_weight_spaces(groups, tuple(want), recipe)


# ---------------------------------------------------------------------- INRs
def load_inr_state_dicts(state_dicts, labels, w0: float = 30.0, transposed: bool | None = None,
                         names: list[str] | None = None, output_offset: float = 0.0,
                         fold_output_offset: bool = False) -> Zoo:
    """SIREN state dicts (weights and biases in key order; other entries such as ``"label"`` are
    ignored) -> INR :class:`Zoo`. ``transposed=None`` detects NFN's ``[in, out]`` layout from the
    first weight (2 inputs). ``output_offset``: added to the SIREN's output by its renderer (module
    docstring); recorded, or folded into the last bias with ``fold_output_offset=True``."""
    weights, biases, spec = None, None, None
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
    bs = [torch.stack(b) for b in biases]
    if fold_output_offset:
        bs[-1] = bs[-1] + output_offset
    ws = WeightSpace(spec, [torch.stack(w) for w in weights], bs)
    offset = 0.0 if fold_output_offset else float(output_offset)
    md = pd.DataFrame({"net": np.arange(ws.batch_size), "label": [int(v) for v in labels],
                       "activation": "sine", "path": names or [""] * ws.batch_size, "output_offset": offset})
    recipe = {"name": "inr", "output_offset": offset, "input_vertex_feature": 1.0}
    return Zoo.from_weight_spaces([([ws], md)], (0,), recipe)


def _resolve(p: str, root: Path, where: str) -> Path:
    """``p`` as written, else under ``root`` by its longest existing suffix (module docstring)."""
    path = Path(p)
    if path.is_absolute() and path.exists():
        return path
    parts = path.parts[1:] if path.is_absolute() else path.parts
    for k in range(len(parts)):
        cand = root.joinpath(*parts[k:])
        if cand.exists():
            return cand
    raise LoaderError(f"{p}: listed in {where} but missing (looked for it as written and under {root} by its "
                      "trailing path components); pass root= the folder holding the checkpoints")


def _load_checkpoints(items: list[tuple[Path, int | None, str]], label_in_checkpoint: bool = False, **kw) -> Zoo:
    sds, labels = [], []
    for p, lab, _ in items:
        try:
            sd = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for corrupt files
            raise LoaderError(f"{p}: cannot be loaded as a state dict ({exc})") from exc
        if label_in_checkpoint:
            if "label" not in sd:
                raise LoaderError(f"{p}: no 'label' entry (F-MNIST INR checkpoints store their label); keys {list(sd)}")
            lab = int(sd.pop("label"))
        sds.append(sd)
        labels.append(lab)
    zoo = load_inr_state_dicts(sds, labels, names=[str(p) for p, _, _ in items], **kw)
    zoo.metadata["split"] = [s for _, _, s in items]
    return zoo


def _read_splits(sj: Path) -> dict:
    try:
        return json.loads(Path(sj).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LoaderError(f"{sj}: cannot read the splits JSON ({exc})") from exc


_DWS = re.compile(r"mnist_png_(?P<split>[a-z]+)_(?P<label>\d+)_(?P<idx>\d+)")


def load_dwsnets_inrs(root: str | Path, splits_json: str | Path | None = None, split: str | None = None,
                      w0: float = 30.0, transposed: bool | None = None,
                      output_offset: float = DWSNETS_OUTPUT_OFFSET, fold_output_offset: bool = False) -> Zoo:
    """DWSNets/NFN MNIST-INRs. With ``splits_json`` read the paths and labels of ``split``
    (train/val/test; all with a ``split`` column when ``None``); otherwise glob
    ``root/mnist_png_*/**/*.pth`` and take label and split from the folder name. ``root``: the folder
    holding the ``mnist_png_*`` folders (repository-relative or foreign absolute paths in the JSON are
    resolved under it)."""
    root = Path(root)
    items: list[tuple[Path, int | None, str]] = []
    if splits_json is not None:
        data = _read_splits(splits_json)
        for s in ([split] if split else list(data)):
            if s not in data or not isinstance(data[s], dict) or not {"path", "label"} <= set(data[s]):
                raise LoaderError(f"{splits_json}: no split {s!r} with 'path' and 'label' lists (has {list(data)}); "
                                  "a list of paths per split is the F-MNIST form: use load_fmnist_inrs")
            if len(data[s]["path"]) != len(data[s]["label"]):
                raise LoaderError(f"{splits_json}: split {s!r} has {len(data[s]['path'])} paths but "
                                  f"{len(data[s]['label'])} labels")
            items += [(_resolve(p, root, str(splits_json)), int(lab), s)
                      for p, lab in zip(data[s]["path"], data[s]["label"])]
    else:
        for p in sorted(root.glob("mnist_png_*/**/*.pth")):
            m = _DWS.search(p.as_posix())
            if m is None:
                raise LoaderError(f"{p}: folder name does not match mnist_png_<split>_<label>_<idx>")
            items.append((p, int(m["label"]), "train" if "train" in m["split"] else "test"))
    if not items:
        raise LoaderError(f"{root}: no INR checkpoints found (expected mnist_png_*/checkpoints/*.pth)")
    return _load_checkpoints(items, w0=w0, transposed=transposed, output_offset=output_offset,
                             fold_output_offset=fold_output_offset)


def load_fmnist_inrs(root: str | Path, splits_json: str | Path, split: str | None = None, w0: float = 30.0,
                     output_offset: float = DWSNETS_OUTPUT_OFFSET, fold_output_offset: bool = False) -> Zoo:
    """F-MNIST INRs: ``splits_json`` maps each split to a list of checkpoint paths; each checkpoint
    holds its label under ``"label"`` next to the SIREN's weights."""
    root, data = Path(root), _read_splits(splits_json)
    items: list[tuple[Path, int | None, str]] = []
    for s in ([split] if split else list(data)):
        if s not in data or not isinstance(data[s], list):
            raise LoaderError(f"{splits_json}: no split {s!r} holding a list of paths (has {list(data)})")
        items += [(_resolve(p, root, str(splits_json)), None, s) for p in data[s]]
    if not items:
        raise LoaderError(f"{splits_json}: no checkpoints listed")
    return _load_checkpoints(items, label_in_checkpoint=True, w0=w0, output_offset=output_offset,
                             fold_output_offset=fold_output_offset)


def load_cifar10_inrs(root: str | Path, split: str | None = None, prefix: str = "randinit_smaller",
                      split_points: tuple[int, int] = (45000, 50000), w0: float = 30.0,
                      output_offset: float = 0.0, fold_output_offset: bool = False) -> Zoo:
    """NFN / ScaleGMN CIFAR-10 INRs: ``root/<prefix>_<label>s/net<idx>.pth``, label from the folder,
    split by index (``idx < split_points[0]``: train, ``< split_points[1]``: val, else test)."""
    root = Path(root)
    pat = re.compile(rf"{re.escape(prefix)}_(\d)s/net(\d+)\.pth$")
    found = []
    for p in root.glob(f"{prefix}_[0-9]s/net*.pth"):
        m = pat.search(p.as_posix())
        if m is not None:
            found.append((int(m[2]), p, int(m[1])))
    if not found:
        raise LoaderError(f"{root}: no CIFAR-10 INR checkpoints found (expected {prefix}_<label>s/net<idx>.pth)")
    found.sort()
    if len({i for i, _, _ in found}) != len(found):
        raise LoaderError(f"{root}: the same net<idx> appears in several {prefix}_<label>s folders")
    val_point, test_point = split_points
    items = [(p, lab, "train" if i < val_point else "val" if i < test_point else "test") for i, p, lab in found]
    items = [it for it in items if split is None or it[2] == split]
    if not items:
        raise LoaderError(f"{root}: no checkpoints in split {split!r} (split_points={split_points})")
    zoo = _load_checkpoints(items, w0=w0, output_offset=output_offset, fold_output_offset=fold_output_offset)
    zoo.metadata["idx"] = [i for i, _, lab in found if split is None or
                           ("train" if i < val_point else "val" if i < test_point else "test") == split]
    return zoo
