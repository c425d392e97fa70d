"""Trained models of the committed reference run, shipped with the course (issue 25).

Notebooks 06-08 load these first, so a reader sees a metanetwork work in seconds before training a
quick one of their own. Each shipped model comes with a *held-out sample*: networks of the reference
run's test split (never seen in training), their targets and what the reference run computed for
them with this very model. :func:`check_shipped` recomputes those figures, so a notebook shows the
model working and proves it is the reference run's model in the same cell.

Layout of ``results/reference/models/`` (written by ``tools/ship_models.py``):

* ``index.json``: per model, the files, their SHA-256 and sizes, the experiment and commit that
  produced it, the notebook that uses it and the reference figures it must reproduce;
* ``NAME.pt`` (+ ``.pt.json``): the model's state and config (:func:`~scalegmn_lite.common.io.save_tensors`);
* ``NAME.heldout.pt`` (+ ``.pt.json``): ``flat`` (held-out networks, ``[B, P]``), ``target``,
  ``reference`` (the reference run's per-network figure) and what else the check needs.

Both files are verified twice on load: against their sidecar (``load_tensors``) and against
``index.json``, so a regenerated sidecar cannot hide an altered file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..common.io import CorruptFileError, load_tensors, sha256
from ..weightspace.block_weights import BlockWeights
from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace

INDEX = "index.json"
#: what each kind of shipped model is, for messages and the course's tables
KINDS = {
    "operator": "one-shot operator (ScaleGMN-B) of the amortized experiment's headroom setting",
    "accuracy-predictor": "invariant ScaleGMN predicting a CNN's test accuracy from its weights",
    "residual-accuracy-predictor": "invariant ScaleGMN on the exact block graphs predicting a residual network's test "
                                   "accuracy from its weights",
    "inr-classifier": "invariant ScaleGMN classifying the digit an INR encodes from its weights",
    "autoencoder": "weight autoencoder (ScaleGMN encoder, MLP decoder) of the merging experiment",
}


def models_dir() -> Path:
    """``results/reference/models`` of this checkout (``SCALEGMN_LITE_MODELS`` overrides it)."""
    env = os.environ.get("SCALEGMN_LITE_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "results" / "reference" / "models"


def shipped_index(folder: str | Path | None = None) -> dict:
    """The ``index.json`` of the shipped models (name -> entry)."""
    folder = Path(folder or models_dir())
    path = folder / INDEX
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no index of shipped models. They live in results/reference/models of a git checkout of "
            "scalegmn-lite (an installed wheel does not carry them); rebuild them with `python tools/ship_models.py` "
            "(needs the reference zoos) or point SCALEGMN_LITE_MODELS at a folder that has them")
    try:
        return json.loads(path.read_text())["models"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise CorruptFileError(f"{path}: not an index of shipped models ({exc}); restore it from git") from exc


@dataclass
class Shipped:
    """A shipped model with its held-out sample (see the module docstring)."""

    name: str
    kind: str
    model: torch.nn.Module
    heldout: WeightSpace | BlockWeights
    target: torch.Tensor
    reference: torch.Tensor
    extra: dict  # other tensors of the held-out file (e.g. ``coords``, ``reference_initial``)
    info: dict  # the index entry

    def describe(self) -> str:
        """One line: what it is, what it was trained on, where it comes from."""
        i = self.info
        return (f"{self.name}: {KINDS[self.kind]}; trained on {i['trained_on']}; {self.heldout.batch_size} held-out "
                f"networks shipped; from the reference run's `{i['experiment']}` experiment at commit "
                f"{i['commit'][:7]}")


def _verified(folder: Path, entry: dict, part: str) -> tuple[dict, dict]:
    path = folder / entry[part]["file"]
    if not path.is_file():
        raise CorruptFileError(f"{path}: missing; restore it from git (`git checkout -- {path}`) or rebuild it with "
                               "`python tools/ship_models.py`")
    data = path.read_bytes()
    if sha256(data) != entry[part]["sha256"] or len(data) != entry[part]["bytes"]:
        raise CorruptFileError(f"{path}: its SHA-256 differs from the one in {folder / INDEX} (altered or truncated: "
                               f"{len(data)} bytes, expected {entry[part]['bytes']}); restore it from git")
    return load_tensors(path)


def _spec(text: str, input_shape=None):
    """A ``NetworkSpec``, or a ``BlockNetworkSpec`` for block text (residual blocks, norms)."""
    from ..weightspace.block_text import is_block_text
    from ..weightspace.blocks import BlockNetworkSpec

    if is_block_text(text):
        return BlockNetworkSpec.from_text(text)
    spec = NetworkSpec.from_text(text)
    return NetworkSpec(spec.layers, tuple(input_shape)) if input_shape else spec


def _build_model(kind: str, meta: dict, state: dict) -> torch.nn.Module:
    if kind == "operator":
        from ..nn.scalegmn import ScaleGMNConfig
        from ..tasks.amortized.operator import AmortizedOperator

        model = AmortizedOperator(ScaleGMNConfig(**meta["config"]))
        model.trained_on = list(meta.get("trained_on", []))
    elif kind in ("accuracy-predictor", "residual-accuracy-predictor", "inr-classifier"):
        from ..tasks.invariant.study import make_model

        model, _ = make_model(meta["model"], _spec(meta["spec"]), meta["out_dim"], meta["hidden"], meta["layers"])
    elif kind == "autoencoder":
        from ..tasks.merging.autoencoder import AutoencoderConfig, WeightAutoencoder

        spec = NetworkSpec.from_text(meta["spec"])
        model = WeightAutoencoder(spec, AutoencoderConfig(**meta["config"]), device="cpu")
    else:
        raise CorruptFileError(f"unknown shipped model kind {kind!r}; expected one of {sorted(KINDS)}")
    model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def load_shipped(name: str, folder: str | Path | None = None) -> Shipped:
    """Load shipped model ``name`` and its held-out sample, both verified by SHA-256 against the
    index. Models stored in half precision (``index.json``: ``stored_dtype``) come back in float32."""
    folder = Path(folder or models_dir())
    index = shipped_index(folder)
    if name not in index:
        raise KeyError(f"no shipped model {name!r}; shipped: {', '.join(sorted(index))}")
    entry = index[name]
    state, meta = _verified(folder, entry, "model")
    tensors, hmeta = _verified(folder, entry, "heldout")
    from ..zoo.zoo import unflatten_weights

    heldout = unflatten_weights(_spec(hmeta["spec"], hmeta.get("input_shape")), tensors.pop("flat"))
    model = _build_model(entry["kind"], meta, state)
    return Shipped(name, entry["kind"], model, heldout, tensors.pop("target"), tensors.pop("reference"), tensors,
                   entry)


@torch.no_grad()
def recompute(s: Shipped) -> torch.Tensor:
    """The per-network figure the reference run recorded for the held-out sample, recomputed with the
    shipped model: test accuracy after the one-shot update (operator), predicted accuracy
    (accuracy predictor), predicted digit (INR classifier), PSNR of the decoded INR against the
    original's rendering in dB (autoencoder)."""
    if s.kind == "operator":
        from ..tasks.amortized.operator import network_metrics
        from ..zoo.data import load_dataset

        data = load_dataset(s.info["dataset"])
        return network_metrics(s.model(s.heldout), data.x_test, data.y_test)["acc"].double()
    if s.kind in ("accuracy-predictor", "residual-accuracy-predictor", "inr-classifier"):
        from ..tasks.invariant.fit import predict

        p = predict(s.model, s.heldout)
        return (p.argmax(-1) if s.kind == "inr-classifier" else p.squeeze(-1)).double()
    if s.kind == "autoencoder":
        from ..tasks.merging.study import INRMergeTask

        dec = s.model.reconstruct(s.heldout).to(dtype=s.heldout.dtype)
        return INRMergeTask(s.extra["coords"]).quality(dec, s.heldout)["psnr"].double()
    raise ValueError(f"unknown kind {s.kind!r}")


def check_shipped(s: Shipped) -> dict:
    """Recompute the reference figures (:func:`recompute`) and compare: ``{"max_abs_diff",
    "tolerance", "agrees", "mean", "reference_mean"}``. The tolerance is the index's (0 up to
    float rounding for float32 models; what half-precision storage costs for the others)."""
    got = recompute(s).cpu().numpy()
    ref = s.reference.double().cpu().numpy()
    diff = float(np.abs(got - ref).max())
    tol = float(s.info["tolerance"])
    return {"max_abs_diff": diff, "tolerance": tol, "agrees": diff <= tol, "mean": float(got.mean()),
            "reference_mean": float(ref.mean())}


def shipped_table_markdown(folder: str | Path | None = None) -> str:
    """The README's table of shipped models, from ``index.json`` alone (no model is loaded): what each
    is, where it is used, what it scores on networks it never saw (the figures ``tools/ship_models.py``
    recorded), and its size."""
    rows = ["| model | notebook | trained on | on held-out networks | file |", "|---|---|---|---|---|"]
    for name, e in sorted(shipped_index(folder).items(), key=lambda kv: kv[1]["notebook"]):
        rc = e["reference_check"]
        if e["kind"] == "operator":
            what = (f"one forward pass raises test accuracy from {rc['mean_acc_before']:.1%} to "
                    f"{rc['mean_acc_after']:.1%} on the reference run's 64 test networks (equal to its record)")
        elif e["kind"] in ("accuracy-predictor", "residual-accuracy-predictor", "inr-classifier"):
            same = rc["max_abs_prediction_diff"] == 0
            what = (f"{rc['metric']} {rc['retrained_full_test']:.3f} on the whole test split of "
                    f"{e['heldout_sample'].split(' test networks')[0].split(' of the ')[-1]} networks; "
                    + ("retrained with the reference run's settings: its predictions equal the run's seed 0 on every "
                       "test network" if same else
                       f"retrained with the reference run's settings (the run's seed 0: "
                       f"{rc['reference_run_seed0_full_test']:.3f})"))
        else:
            what = (f"decoded INRs at {rc['reference_run_heldout_psnr_all']:.1f} dB PSNR against the originals "
                    "(reference run); half precision moves it by at most "
                    f"{rc['half_precision_max_psnr_change_db']:.2f} dB")
        size = (e["model"]["bytes"] + e["heldout"]["bytes"]) / 1024
        rows.append(f"| `{name}` | {e['notebook']} | {e['trained_on']} | {what} | {size:.0f} KB "
                    f"({e['stored_dtype']}) |")
    return "\n".join(rows) + "\n"
