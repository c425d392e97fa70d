"""Invariant metanetworks compared on two tasks (issue 4): predicting a CNN's test accuracy from its
weights (Kendall tau) and classifying the digit an INR encodes (accuracy).

Models (``MODEL_NAMES``):
    ``scalegmn`` / ``scalegmn-b``: ScaleGMN (symmetry per layer from the activation), forward /
        bidirectional; invariant to the whole gauge group by construction.
    ``gmn``: the same network with plain views and input normalisation (permutations only).
    ``statnn``: per-layer weight statistics into an MLP (permutation invariant, not scale invariant).
    ``flatmlp``: an MLP on the flattened weights (invariant to nothing).
    ``*+aug``: trained with random gauge augmentation of every batch.

Block networks (residual blocks, norms: ``BlockWeights`` and ``BlockNetworkSpec``) go through
:mod:`.blocks` (:func:`~.blocks.make_block_model`, which also has ``scalegmn-plain`` and
``scalegmn-normaffine``); :func:`make_model`, :func:`gauge_shift` and :meth:`TaskData.transformed_test` dispatch
there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from ...nn.baselines import FlatMLP, StatNN, gauge_augment
from ...nn.scalegmn import ScaleGMN, ScaleGMNConfig
from ...weightspace.block_weights import BlockWeights
from ...weightspace.blocks import BlockNetworkSpec
from ...weightspace.gauge import GaugeElement, sample_non_symmetry
from ...weightspace.spec import NetworkSpec
from ...weightspace.weights import WeightSpace
from .blocks import (
    BLOCK_ONLY_MODEL_NAMES,
    block_gauge_shift,
    gauge_transform,
    make_block_model,
    non_symmetry_transform,
)
from .fit import FitConfig, fit, predict, score

__all__ = ["GAUGE_TEST_SEED", "MODEL_NAMES", "NON_SYMMETRY", "TaskData", "accuracy_task", "inr_task", "make_model",
           "gauge_shift", "compare"]

#: the seed of the gauge elements (and non-symmetries) applied to the test networks, one per task
GAUGE_TEST_SEED = 20231
#: the non-symmetry of the negative control (q = -1 for ReLU, q = 2 for tanh / sine: other functions)
NON_SYMMETRY = "wrong_scaling"

MODEL_NAMES = ("scalegmn", "scalegmn-b", "gmn", "statnn", "statnn+aug", "flatmlp", "flatmlp+aug")


@dataclass
class TaskData:
    """Train/val/test networks and targets of one task (one architecture, split by network)."""

    name: str
    task: str  # "regression" | "classification"
    out_dim: int
    train: tuple[WeightSpace, torch.Tensor]
    val: tuple[WeightSpace, torch.Tensor]
    test: tuple[WeightSpace, torch.Tensor]
    #: per test network, the checkpoint (epoch) its weights are from (accuracy prediction; else None)
    test_checkpoint: torch.Tensor | None = None
    #: per test row, the independent unit it belongs to (accuracy prediction: the network, whose
    #: checkpoints are rows; INR classification: the image, whose views are rows): the clusters of
    #: every bootstrap interval (:mod:`scalegmn_lite.common.stats`)
    test_groups: np.ndarray | None = None
    #: accuracy prediction: the training networks (the training rows are their checkpoints, checkpoint-major)
    n_train_networks: int | None = None

    @property
    def spec(self) -> NetworkSpec:
        return self.train[0].spec

    def to(self, device) -> "TaskData":
        mv = lambda p: (p[0].to(device=device), p[1].to(device))
        return replace(self, train=mv(self.train), val=mv(self.val), test=mv(self.test))

    def sizes(self) -> dict[str, int]:
        return {k: getattr(self, k)[0].batch_size for k in ("train", "val", "test")}

    def transformed_test(self, kind: str = "gauge", seed: int = GAUGE_TEST_SEED) -> WeightSpace:
        """The test networks, each replaced by a transform of itself drawn with ``seed`` (the same for
        every model, so scores on it are paired): ``"gauge"``, a random element of its gauge group
        (permutations, and positive scalings in ``[1/4, 4]`` for ReLU or sign flips for tanh/sine:
        the same functions); or a *non*-symmetry (``"wrong_scaling"``, ``"uncoupled_permutation"``,
        ``"mismatched_scaling"``; :func:`~scalegmn_lite.weightspace.gauge.sample_non_symmetry`: other
        functions), the negative control.

        Block networks: :func:`~.blocks.gauge_transform` and :func:`~.blocks.non_symmetry_transform`
        (same seed convention)."""
        ws = self.test[0]
        if isinstance(ws, BlockWeights):
            return gauge_transform(ws, seed) if kind == "gauge" else non_symmetry_transform(ws, kind, seed)
        g = torch.Generator().manual_seed(seed)
        if kind == "gauge":
            return GaugeElement.sample(ws.spec, ws.batch_size, generator=g, device=ws.device,
                                       dtype=ws.dtype).apply(ws)
        return sample_non_symmetry(ws, kind, generator=g)


def _stack_checkpoints(zoo, checkpoints, target: str) -> tuple[WeightSpace | BlockWeights, torch.Tensor]:
    parts = [zoo.weights(c) for c in checkpoints]
    ws = type(parts[0]).stack(parts)  # WeightSpace, or BlockWeights for a zoo of block networks
    y = torch.cat([torch.tensor(zoo.metadata[f"{target}@{c}"].to_numpy()) for c in checkpoints]).float()
    return ws, y


def accuracy_task(zoo, checkpoints=None, seed: int = 0, fractions=(0.6, 0.2, 0.2)) -> TaskData:
    """Every (network, checkpoint) of a single-spec classifier zoo with its test accuracy there;
    networks (not checkpoints) are split, so no network is seen in training and test."""
    checkpoints = [c for c in (checkpoints or zoo.checkpoints)]
    tr, va, te = zoo.split(fractions, seed=seed)
    parts = [_stack_checkpoints(z, checkpoints, "test_acc") for z in (tr, va, te)]
    ckpt = torch.tensor(checkpoints).repeat_interleave(len(te))
    groups = np.tile(_unit_ids(te, None), len(checkpoints))  # rows are checkpoint-major, as _stack_checkpoints
    return TaskData("accuracy-prediction", "regression", 1, *parts, test_checkpoint=ckpt, test_groups=groups,
                    n_train_networks=len(tr))


def _unit_ids(zoo, by: str | None) -> np.ndarray:
    """Each network's independent unit: its ``by`` column (an image) or the network itself."""
    col = by if by is not None else ("net" if "net" in zoo.metadata else None)
    return zoo.metadata[col].to_numpy() if col is not None else np.arange(len(zoo))


def inr_task(zoo, seed: int = 0, fractions=(0.6, 0.2, 0.2), train_images: float | int | None = None,
             views: int | None = None) -> TaskData:
    """Final INRs with the digit they encode, split *by image* (every view of an image, i.e. every INR
    fitted to it, lands in the same part; a zoo with one INR per image splits by network).

    For learning curves the training part can be cut, validation and test never change:
    ``train_images`` keeps that many training images (an int) or that fraction of them (a float in
    (0, 1]), drawn with ``seed``; ``views`` keeps the first ``views`` INRs of every image (all parts)."""
    by = "image_index" if "image_index" in zoo.metadata else None
    if views is not None:
        if by is None or "view" not in zoo.metadata:
            if views != 1:
                raise ValueError(f"views={views} needs a zoo with several views per image (a 'view' column)")
        else:
            have = int(zoo.metadata["view"].max()) + 1
            if not 1 <= views <= have:
                raise ValueError(f"views must be in [1, {have}] (the zoo's views per image), got {views}")
            zoo = zoo.filter(lambda md: md["view"] < views)
    zs = list(zoo.split(fractions, seed=seed, by=by))
    if train_images is not None:
        key = by or "net"
        images = np.unique(zs[0].metadata[key].to_numpy())
        n = int(train_images) if isinstance(train_images, (int, np.integer)) and not isinstance(train_images, bool) \
            else int(round(float(train_images) * len(images)))
        if not 1 <= n <= len(images):
            raise ValueError(f"train_images must keep between 1 and {len(images)} training images (an int) or a "
                             f"fraction in (0, 1]; got {train_images!r}")
        keep = set(np.random.default_rng(seed).permutation(images)[:n].tolist())
        zs[0] = zs[0].filter(lambda md: md[key].isin(keep))
    parts = [(z.weights(), torch.tensor(z.metadata["label"].to_numpy()).long()) for z in zs]
    return TaskData("inr-classification", "classification", 10, *parts, test_groups=_unit_ids(zs[2], by))


def make_model(name: str, spec: NetworkSpec | BlockNetworkSpec, out_dim: int, hidden: int = 32, layers: int = 3,
               max_kernel: int | None = None):
    """A fresh model by name (see ``MODEL_NAMES``); returns ``(model, augment_fn or None)``.

    A :class:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec` (residual blocks, norms) gets
    :func:`~.blocks.make_block_model`'s model of that name."""
    if isinstance(spec, BlockNetworkSpec):
        return make_block_model(name, spec, out_dim, hidden, layers, max_kernel)
    if name in BLOCK_ONLY_MODEL_NAMES:
        raise ValueError(f"model {name!r} needs block networks (a BlockNetworkSpec with residual blocks or norms); "
                         f"{spec.to_text()!r} is a chain: choose from {MODEL_NAMES}")
    base = name.removesuffix("+aug")
    aug = gauge_augment if name.endswith("+aug") else None
    k = max_kernel or max(1, max(layer.kernel_numel for layer in spec.layers))
    if base in ("scalegmn", "scalegmn-b", "gmn"):
        cfg = ScaleGMNConfig(hidden_dim=hidden, num_layers=layers, mode="permutation" if base == "gmn" else "auto",
                             bidirectional=base == "scalegmn-b", head="invariant", out_dim=out_dim, max_kernel=k)
        return ScaleGMN(cfg), aug
    if base == "statnn":
        return StatNN(spec, out_dim, hidden=4 * hidden), aug
    if base == "flatmlp":
        return FlatMLP(spec, out_dim, hidden=4 * hidden), aug
    raise ValueError(f"unknown model {name!r}; choose from {MODEL_NAMES}")


@torch.no_grad()
def gauge_shift(model, ws: WeightSpace | BlockWeights, seed: int = 0, max_log_scale: float = 1.0) -> float:
    """Largest change of the model's output when every network is replaced by a random gauge
    transform of itself (same functions), relative to the output's scale; 0 for invariant models
    up to float error. ``BlockWeights``: :func:`~.blocks.block_gauge_shift`."""
    if isinstance(ws, BlockWeights):
        return block_gauge_shift(model, ws, seed, max_log_scale)
    model.eval()
    g = GaugeElement.sample(ws.spec, ws.batch_size, generator=torch.Generator().manual_seed(seed),
                            max_log_scale=max_log_scale, device=ws.device, dtype=ws.dtype)
    a, b = predict(model, ws), predict(model, g.apply(ws))
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))


def _fit_one(data: TaskData, name: str, seed: int, fit_config: FitConfig | None, hidden: int, layers: int,
             device, progress: bool) -> tuple[dict, nn.Module]:
    """Train model ``name`` with ``seed`` on ``data``: its row of :func:`compare` and the model."""
    torch.manual_seed(seed)
    model, aug = make_model(name, data.spec, data.out_dim, hidden, layers)
    model = model.to(device)
    if hasattr(model, "fit_normalization"):
        model.fit_normalization(data.train[0])
    cfg = replace(fit_config or FitConfig(), augment=aug, seed=seed)
    t0 = time.perf_counter()
    res = fit(model, *data.train, *data.val, data.task, cfg, progress=progress, desc=f"{name} s{seed}")
    seconds = time.perf_counter() - t0
    pred = predict(model, data.test[0])
    test = score(data.task, pred, data.test[1])
    # per test network: the prediction (regression) or the predicted class (classification)
    per = pred.squeeze(-1) if data.task == "regression" else pred.argmax(-1)
    on = {}  # the same test networks transformed: by gauge elements (same functions) and by a non-symmetry
    for kind in ("gauge", NON_SYMMETRY):
        p = predict(model, data.transformed_test(kind))
        on[kind] = (score(data.task, p, data.test[1]),
                    (p.squeeze(-1) if data.task == "regression" else p.argmax(-1)).detach().double().cpu().tolist())
    row = {"task": data.name, "model": name, "seed": seed, "test_score": test,
           "test_pred": per.detach().double().cpu().tolist(),
           "test_score_gauge": on["gauge"][0], "test_pred_gauge": on["gauge"][1],
           "test_score_nonsym": on[NON_SYMMETRY][0], "test_pred_nonsym": on[NON_SYMMETRY][1],
           "history": res.history,
           "best_val": res.best_val, "best_epoch": res.best_epoch, "seconds": seconds,
           "gauge_shift": gauge_shift(model, data.test[0], seed),
           "params": sum(p.numel() for p in model.parameters())}
    return row, model


def _fit_job(data: TaskData, name: str, seed: int, fit_config, hidden: int, layers: int) -> tuple[dict, dict]:
    """:func:`_fit_one` in a worker process (CPU): the row and the trained weights."""
    row, model = _fit_one(data, name, seed, fit_config, hidden, layers, torch.device("cpu"), False)
    return row, model.state_dict()


#: rough seconds per network and epoch of a quick-size model (hidden 24, 2 layers; bench_training.py),
#: for deciding whether worker processes pay for their start-up
SECONDS_PER_NETWORK_EPOCH = 1e-3


def compare(data: TaskData, model_names=MODEL_NAMES, seeds=(0,), fit_config: FitConfig | None = None,
            hidden: int = 32, layers: int = 3, device=None, progress: bool = True, return_models: bool = False,
            workers: int | str | None = None):
    """Train every model on ``data`` for every seed; one row per (model, seed) with the test score,
    the per-test-network predictions ``test_pred`` (for bootstrap intervals over networks and
    seeds), the best validation score, training seconds and the gauge shift on test networks.

    ``workers``: processes that train the (model, seed) pairs side by side (default
    ``SCALEGMN_LITE_WORKERS``, else ``"auto"``: the idle cores; :mod:`scalegmn_lite.common.parallel`;
    CPU only). Every pair seeds itself, so the rows do not depend on it beyond float rounding.

    Returns the DataFrame, or ``(DataFrame, {(model, seed): trained model})`` with ``return_models``."""
    from ...common.parallel import plan_workers, run_jobs

    device = torch.device(device or "cpu")
    data = data.to(device)
    pairs = [(name, seed) for name in model_names for seed in seeds]
    epochs = (fit_config or FitConfig()).epochs
    est = len(pairs) * epochs * data.train[0].batch_size * SECONDS_PER_NETWORK_EPOCH
    n = plan_workers(len(pairs), workers, est_seconds=est, device=device)
    rows, trained = [], {}
    if n > 1:
        outs = run_jobs(_fit_job, [(data, name, seed, fit_config, hidden, layers) for name, seed in pairs], n,
                        names=[f"{name} seed {seed}" for name, seed in pairs])
        for (name, seed), (row, state) in zip(pairs, outs):
            model, _ = make_model(name, data.spec, data.out_dim, hidden, layers)
            model.load_state_dict(state)
            rows.append(row)
            trained[(name, seed)] = model.to(device).eval()
    else:
        for name, seed in pairs:
            row, model = _fit_one(data, name, seed, fit_config, hidden, layers, device, progress)
            rows.append(row)
            trained[(name, seed)] = model
    return (pd.DataFrame(rows), trained) if return_models else pd.DataFrame(rows)
