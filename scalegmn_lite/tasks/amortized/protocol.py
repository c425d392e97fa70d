"""The pieces of the amortized-optimization protocol (issues 5 and 13): settings, the study
configuration, initial networks and their split by network, operator construction and caching, the
SGD baseline and one result-table row. :mod:`~scalegmn_lite.tasks.amortized.study` runs them in order;
:mod:`~scalegmn_lite.tasks.amortized.baselines` holds SGD-k, the tuned Adam baseline and the timings.

The protocol follows the one-shot paper (Table 1): the starting points are the *final* networks of zoos whose
members vary training-set fraction, learning rate, optimizer, init scale and weight decay
(``cnn1d-hp-mnist1d``, ``mlp-hp-mnist1d``, built like the Small CNN Zoo); held-out networks and
held-out images; SGD-k = k epochs of plain SGD over the training images per network.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...common.config import cache_dir, is_full
from ...common.io import CorruptFileError, load_tensors, save_tensors
from ...weightspace.spec import NetworkSpec
from ...weightspace.weights import WeightSpace
from ...zoo import Zoo, ZooRecipe, get_recipe
from ...zoo.data import Dataset
from ..losses import l1_reduction
from .operator import AmortizedOperator, OperatorTrainConfig, network_metrics, train_operator

__all__ = [
    "COLUMNS", "KINDS", "STUDY_FORMAT", "StudyConfig", "Setting", "initial_networks", "split_initial",
    "operator_overrides", "count_params", "match_hidden", "operator_key", "operator_path", "train_or_load_operator",
    "sgd_baseline", "cached_sgd_baseline", "table_row", "quick_settings", "reference_settings", "full_settings",
    "gscale_settings",
    "SMALL_MLP_RECIPE", "CNN_ZOO", "MLP_ZOO", "CNN_PLATEAU_ZOO", "MLP_PLATEAU_ZOO", "AUGMENTED_KINDS",
    "PUBLISHED_TABLE1",
]

#: the columns of the result table (published columns + the setting, method and parameter count)
COLUMNS = ["setting", "method", "mean_acc", "max_acc", "test_loss", "l1_reduction_pct", "near_zero_frac",
           "seconds_per_network", "params", "seeds", "seconds_per_network_single"]

#: operator kinds -> (ScaleGMN mode, bidirectional, input_norm)
KINDS: dict[str, tuple[str, bool, bool | None]] = {
    "scalegmn-b": ("auto", True, None),
    "scalegmn-f": ("auto", False, None),
    "gmn": ("permutation", False, True),
    "no-canon": ("permutation", True, False),
    "gmn-aug": ("permutation", False, True),
}

#: kinds trained with a random gauge element applied to every sampled training network
AUGMENTED_KINDS = frozenset({"gmn-aug"})

#: the one-shot paper's Table 1 (Small CNN Zoo and its MLP zoo, tanh, CIFAR-10-GS): mean test accuracy per method
PUBLISHED_TABLE1 = {
    "cnn": {"initial": 0.379, "scalegmn-b": 0.503, "gmn": 0.515, "sgd-150": 0.445},
    "mlp": {"initial": 0.345, "scalegmn-b": 0.354, "gmn": 0.350, "sgd-150": 0.367},
}

#: bump when the protocol changes so cached operators are retrained
STUDY_FORMAT = 4  # 2: ScaleGMN log-RMS gain; 3: final networks of headroom zoos, plain SGD, seeds; 4: selection

#: the zoos of the study (named recipes in :mod:`scalegmn_lite.zoo.recipes`)
CNN_ZOO, MLP_ZOO = "cnn1d-hp-mnist1d", "mlp-hp-mnist1d"
#: the plateau twins (final networks that stopped improving): Table 1 is judged on them
CNN_PLATEAU_ZOO, MLP_PLATEAU_ZOO = "cnn1d-plateau-mnist1d", "mlp-plateau-mnist1d"

#: quick-mode MLP zoo: the mlp-mnist1d recipe with one hidden layer of 16 (graphs of 66 vertices and
#: 800 edges instead of 114/2624, so the operators train ~4x faster on 2 CPU cores)
SMALL_MLP_RECIPE = ZooRecipe(
    name="mlp-small-mnist1d", dataset="mnist1d", arch="mlp 40-16-10 relu", activations=("relu", "tanh"),
    num_networks=128, epochs=6, checkpoint_epochs=(0, 1, 2, 6), train_size=1000, batch_size=100,
    lr=(3e-3, 0.3), init_scale=(0.3, 3.0), weight_decay=(1e-6, 3e-2),
    description="small MLPs on MNIST-1D for the quick amortized study")


@dataclass(frozen=True)
class Setting:
    """One row group of the table: ``zoo`` (recipe name or recipe) restricted to ``activation``,
    L1 weight ``lam``, the operator ``kinds`` to train. ``role``: ``"table1"`` (a row of the one-shot paper's
    Table 1, judged on a plateau zoo) or ``"headroom"`` (the transfer setting on a headroom zoo, with the
    diagnostics); ``steps``: operator steps of this setting (``None``: the study's)."""

    name: str
    zoo: str | ZooRecipe
    activation: str
    lam: float
    kinds: tuple[str, ...]
    role: str = "table1"
    steps: int | None = None

    def recipe(self, full: bool, reference: bool = False) -> ZooRecipe:
        if reference and isinstance(self.zoo, str):
            from ...zoo.recipes import get_reference_recipe

            return get_reference_recipe(self.zoo)
        return get_recipe(self.zoo, full=full)

    @property
    def is_cnn(self) -> bool:
        return NetworkSpec.from_text(get_recipe(self.zoo, full=False).arch[0]).family != "mlp"


def quick_settings(lam: float = 1e-3, table1_steps: int | None = None) -> tuple[Setting, ...]:
    """Quick mode (2 CPU cores, MNIST-1D, tanh like the published zoo). First the headroom setting
    (tanh CNNs of ``cnn1d-hp-mnist1d``: ScaleGMN-B, GMN-B and GMN-B with gauge augmentation; the
    transfer target and the diagnostics), then the rows of the one-shot paper's Table 1 on the *plateau* zoos,
    whose final networks stopped improving like the published ones (SGD-150 gains +6.7 points on the
    CNNs, published +6.6): CNN (ScaleGMN-B, GMN-B), CNN with L1 (ScaleGMN-B), MLP (ScaleGMN-B, GMN-B).
    ``table1_steps``: operator steps of the Table 1 rows (``None``: the study's)."""
    n = table1_steps
    return (
        Setting("cnn1d-tanh", CNN_ZOO, "tanh", 0.0, ("scalegmn-b", "gmn", "gmn-aug"), role="headroom"),
        Setting("cnn1d-plateau-tanh", CNN_PLATEAU_ZOO, "tanh", 0.0, ("scalegmn-b", "gmn"), steps=n),
        Setting("cnn1d-plateau-tanh-l1", CNN_PLATEAU_ZOO, "tanh", lam, ("scalegmn-b",), steps=n),
        Setting("mlp-plateau-tanh", MLP_PLATEAU_ZOO, "tanh", 0.0, ("scalegmn-b", "gmn"), steps=n),
    )


def reference_settings(lam: float = 1e-3, table1_steps: int | None = None) -> tuple[Setting, ...]:
    """Reference mode (``reproduce --reference``): every row of the one-shot paper's Table 1: the quick rows
    plus the MLP with L1 (ScaleGMN-B)."""
    return quick_settings(lam, table1_steps) + (
        Setting("mlp-plateau-tanh-l1", MLP_PLATEAU_ZOO, "tanh", lam, ("scalegmn-b",), steps=table1_steps),)


def gscale_settings(reference: bool = False, full: bool = False) -> tuple[Setting, ...]:
    """The dim G_scale sweep (ReLU, CE, ScaleGMN-B against GMN-B): the small CNN (dim 8), the 8-wide MLP
    (8), the small CNN's unrolled twin (100) and the 32-wide MLP (32), at every size; full also the
    64-wide MLP (64) and the 16+16 CNN (32: the same dimension as the 32-wide MLP). The reference sweep
    leaves those two to full to fit its hour on 2 cores (:meth:`StudyConfig.gscale`: the twin's operators
    alone cost about 10 minutes each there). The settings whose zoos the amortized study also builds
    come last (a parallel ``reproduce --jobs 2`` then finds them cached)."""
    k = ("scalegmn-b", "gmn")
    out = [Setting("cnn1d-s-relu", "cnn1d-s-hp-mnist1d", "relu", 0.0, k),
           Setting("mlp-w8-relu", "mlp-w8-hp-mnist1d", "relu", 0.0, k),
           Setting("mlp-twin-s-relu", "mlp-twin-s-hp-mnist1d", "relu", 0.0, k)]
    if full:
        out.append(Setting("mlp-w64-relu", "mlp-w64-hp-mnist1d", "relu", 0.0, k))
    out.append(Setting("mlp-relu", MLP_ZOO, "relu", 0.0, k))
    if full:
        out.append(Setting("cnn1d-relu", CNN_ZOO, "relu", 0.0, k))
    return tuple(out)


def full_settings(lam: float = 1e-3) -> tuple[Setting, ...]:
    """Full mode: every zoo x {tanh, relu} x {0, lam} with all four operator kinds."""
    out = []
    for zoo, short in ((CNN_ZOO, "cnn1d"), ("cnn2d-digits", "cnn2d-digits"), (MLP_ZOO, "mlp"),
                       ("mlp-digits", "mlp-digits")):
        for act in ("tanh", "relu"):
            for lv in (0.0, lam):
                out.append(Setting(f"{short}-{act}" + ("-l1" if lv else ""), zoo, act, lv, tuple(KINDS)))
    return tuple(out)


@dataclass(frozen=True)
class StudyConfig:
    """Sizes of the study. :meth:`quick` fits 2 CPU cores; :meth:`reference_size` ~1 hour of them;
    :meth:`full_size` is the same protocol, larger, for a GPU.

    ``seeds``: operator seeds (init and data order), one operator per seed and kind; ``seed``: the
    split of the zoo into train/val/test networks. ``start``: ``"final"`` (the published protocol)
    or ``"intermediate"`` checkpoints as starting points. Model selection: every ``eval_every`` steps
    (0: never) the operator is scored on ``val_networks`` validation networks by its mean accuracy gain
    on ``val_images`` *training* images, and the best step's weights are kept (early stopping; test
    networks and test images play no part); ``schedule``: ``"constant"`` or ``"cosine"`` learning rate.
    ``diagnostics``: the headroom setting also measures held-out gain against the number of training
    networks (``curve_sizes``, ``curve_steps`` steps each, first seed; the smallest is the "overfit a
    few networks" control) and the per-network diagnostics. SGD-k: ``sgd_lr``, ``sgd_momentum`` (0 =
    plain SGD), ``sgd_batch``, no weight decay. Adam: learning rate tuned over ``adam_lrs`` on the
    validation networks (``adam_tune_epochs`` epochs); ``adam_lrs=()`` skips Adam. ``baselines=False``
    skips SGD and Adam and ``transfer=False`` the transfer experiments (the dim G_scale sweep
    compares operators only: :meth:`gscale`)."""

    hidden_dim: int = 16
    num_layers: int = 2
    max_io: int = 64
    update_scale_init: float = 0.1
    steps: int = 200
    batch_networks: int = 8
    data_batch: int = 256
    lr: float = 3e-3
    lam: float = 1e-3
    sgd_epochs: tuple[int, ...] = (25, 50, 100, 150)
    sgd_lr: float = 0.05
    sgd_momentum: float = 0.0
    sgd_batch: int = 100
    adam_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    adam_tune_epochs: int = 25
    seeds: tuple[int, ...] = (0, 1, 2)
    start: str = "final"
    timing_networks: int = 2
    reference: bool = False
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    max_test_networks: int = 32
    seed: int = 0
    full: bool = False
    settings: tuple[Setting, ...] = field(default_factory=quick_settings)
    baselines: bool = True
    transfer: bool = True
    schedule: str = "constant"
    eval_every: int = 0
    val_networks: int = 64
    val_images: int = 1000
    diagnostics: bool = False
    curve_sizes: tuple[int, ...] = (16, 128)
    curve_steps: int = 200

    @classmethod
    def quick(cls, **kw) -> "StudyConfig":
        """Quick mode: 24 held-out networks per setting (the SGD and Adam baselines train each for 150 epochs: with
        32 they were about 230 of the study's 550 process-seconds; issue 34's 20 minutes for the main job)."""
        base = dict(eval_every=50, diagnostics=True, max_test_networks=24)
        base.update(kw)
        return cls(**base)

    @classmethod
    def reference_size(cls, **kw) -> "StudyConfig":
        """The reference run (``reproduce --reference``), picked by ``tools/operator_search.py`` on
        validation networks (``results/reference/search/operator_search.json``)."""
        base = dict(hidden_dim=32, num_layers=3, steps=6000, lr=3e-3, max_test_networks=64, seeds=(0, 1, 2),
                    adam_tune_epochs=50, reference=True, settings=reference_settings(table1_steps=1500),
                    eval_every=250, diagnostics=True, curve_sizes=(16, 128, 512), curve_steps=2000)
        base.update(kw)
        return cls(**base)

    @classmethod
    def gscale(cls, reference: bool = False, full: bool = False, **kw) -> "StudyConfig":
        """The dim G_scale sweep: :func:`gscale_settings`, operators only. Quick: 100 steps, 3 seeds (150 before issue
        34 sized the quick studies for the main job's 20 minutes).

        Reference: a budget at which operators transfer (issue 33; the 400 steps of before did not):
        2000 steps with the kept step chosen on validation networks every 250 steps (the reference
        study's protocol), 3 seeds, 64 test networks, the 4096-network ReLU zoos (about 2,860 training
        networks per setting, >= 512), 4 settings (dims 8, 8, 32, 100). Cost, measured (hidden 16, 2
        layers, one thread per operator, two operators side by side on 2 cores): 2000 steps take about
        3 minutes for the small CNN and the 8-wide MLP and about 10 for the unrolled twin (its 100 hidden
        neurons make the largest graph), so 4 settings x 2 kinds x 3 seeds are a little over an hour
        (``reproduce --jobs 2``); the 64-wide MLP and the 16+16 CNN are left to full. Full: hidden 64, 4
        layers, 3000 steps, 5 seeds, every setting (GPU)."""
        base = dict(settings=gscale_settings(reference, full), baselines=False, transfer=False, steps=100,
                    max_test_networks=48)
        if reference:
            base.update(steps=2000, seeds=(0, 1, 2), max_test_networks=64, reference=True, eval_every=250)
        if full:
            base.update(hidden_dim=64, num_layers=4, steps=3000, batch_networks=32, data_batch=512,
                        max_test_networks=256, full=True, seeds=(0, 1, 2, 3, 4), eval_every=250)
        base.update(kw)
        return cls(**base)

    @classmethod
    def full_size(cls, **kw) -> "StudyConfig":
        """``--full``: the reference protocol (:meth:`reference_size`: the headroom setting with its
        diagnostics and transfer claims, every Table 1 row on the plateau zoos, the kept step chosen on
        validation networks every 250 steps), only larger: hidden 64, 4 layers, 12000 steps on the
        headroom setting and 3000 on the Table 1 rows, 5 seeds, 256 test networks, the full-size zoos
        (GPU). :func:`full_settings` (every zoo x activation x lambda) stays available as ``settings=``."""
        base = dict(hidden_dim=64, num_layers=4, steps=12000, batch_networks=32, data_batch=512,
                    max_test_networks=256, full=True, settings=reference_settings(table1_steps=3000),
                    seeds=(0, 1, 2, 3, 4), adam_tune_epochs=150, eval_every=250, diagnostics=True,
                    curve_sizes=(16, 128, 512, 2048), curve_steps=3000)
        base.update(kw)
        return cls(**base)

    @classmethod
    def from_env(cls, **kw) -> "StudyConfig":
        return cls.full_size(**kw) if is_full() else cls.quick(**kw)

    def train_config(self, lam: float, seed: int | None = None, steps: int | None = None,
                     augment: bool = False) -> OperatorTrainConfig:
        n = steps or self.steps
        return OperatorTrainConfig(steps=n, batch_networks=self.batch_networks, data_batch=self.data_batch,
                                   lr=self.lr, warmup_steps=max(1, n // 10), lam=lam,
                                   seed=self.seed if seed is None else seed, eval_every=min(self.eval_every, n),
                                   schedule=self.schedule, augment=augment)


# ---------------------------------------------------------------------- networks
def initial_networks(zoo: Zoo, checkpoints: Sequence[int] | None = None, device=None) -> WeightSpace:
    """The starting points ``theta``: every network of a single-spec ``zoo`` at each of
    ``checkpoints`` (default: all recorded epochs strictly between 0 and the final one, or all but
    the final if there are none), stacked network-major: ``B = len(zoo) * len(checkpoints)``.
    Networks with non-finite weights at any of them are dropped."""
    if checkpoints is None:
        mid = [c for c in zoo.checkpoints[:-1] if c > 0]
        checkpoints = mid or list(zoo.checkpoints[:-1]) or [zoo.checkpoints[-1]]
    per = [zoo.weights(c, device=device) for c in checkpoints]
    flat = torch.stack([w.flatten() for w in per], 1)  # [N, C, P]
    ok = torch.isfinite(flat).all(-1).all(-1)
    flat = flat[ok].reshape(-1, flat.shape[-1])
    if flat.shape[0] == 0:
        raise ValueError("initial_networks: no network with finite weights at the chosen checkpoints")
    return WeightSpace.unflatten(zoo.spec, flat)


def split_initial(zoo: Zoo, fractions: Sequence[float], seed: int, max_test: int | None = None,
                  device=None, start: str = "intermediate") -> tuple[WeightSpace, WeightSpace, WeightSpace]:
    """Train/val/test initial networks, split *by network* (every checkpoint of a network lands in
    the same split); the test split is capped at ``max_test`` starting points. ``start="final"``:
    each network's final weights only (the published protocol); ``"intermediate"``: the checkpoints
    of :func:`initial_networks`."""
    if start not in ("final", "intermediate"):
        raise ValueError(f"start must be 'final' or 'intermediate', got {start!r}")
    ck = [zoo.checkpoints[-1]] if start == "final" else None
    tr, va, te = zoo.split(fractions, seed=seed)
    out = [initial_networks(z, ck, device=device) for z in (tr, va, te)]
    if max_test is not None and out[2].batch_size > max_test:
        out[2] = out[2][:max_test]
    return out[0], out[1], out[2]


# ---------------------------------------------------------------------- operators
def operator_overrides(kind: str, hidden_dim: int, num_layers: int, max_io: int = 64,
                       update_scale_init: float = 1e-2) -> dict:
    """ScaleGMN overrides of an operator ``kind`` (see :data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown operator kind {kind!r}; choose one of {sorted(KINDS)}")
    mode, bi, norm = KINDS[kind]
    return dict(hidden_dim=hidden_dim, num_layers=num_layers, mode=mode, bidirectional=bi, input_norm=norm,
                max_io=max_io, update_scale_init=update_scale_init)


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def match_hidden(kind: str, target: int, num_layers: int, max_io: int = 64, lo: int = 4, hi: int = 256) -> int:
    """The hidden size whose ``kind`` operator has the parameter count closest to ``target``."""
    def n(h):
        return count_params(AmortizedOperator(**operator_overrides(kind, h, num_layers, max_io)))

    while hi - lo > 1:  # the count grows with h
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if n(mid) < target else (lo, mid)
    return min((lo, hi), key=lambda h: abs(n(h) - target))


def _digest(ws: WeightSpace) -> str:
    return hashlib.sha256(ws.flatten().detach().cpu().double().numpy().tobytes()).hexdigest()[:16]


def operator_key(kind: str, overrides: dict, train_cfg: OperatorTrainConfig, train_ws: WeightSpace,
                 data_tag: str) -> str:
    """Cache key: hash of the operator and training configs, the training networks and the data."""
    blob = json.dumps({"kind": kind, "op": overrides, "train": asdict(train_cfg), "nets": _digest(train_ws),
                       "spec": train_ws.spec.to_text(), "data": data_tag, "format": STUDY_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def operator_path(kind: str, overrides: dict, train_cfg: OperatorTrainConfig, train_ws: WeightSpace, data_tag: str,
                  cache: str | Path | None = None, name: str = "") -> Path:
    """Where :func:`train_or_load_operator` keeps this operator (``cache_dir()/operators``)."""
    key = operator_key(kind, overrides, train_cfg, train_ws, data_tag)
    return Path(cache or cache_dir()) / "operators" / f"{name or kind}-{kind}-{key}.pt"


def train_or_load_operator(kind: str, overrides: dict, train_ws: WeightSpace, x: torch.Tensor, y: torch.Tensor,
                           train_cfg: OperatorTrainConfig, data_tag: str, device=None, progress: bool = True,
                           cache: str | Path | None = None, name: str = "", monitor: dict | None = None,
                           select: str | None = None) -> tuple[AmortizedOperator, dict]:
    """Train an operator (or load it from ``cache_dir()/operators``) and return it with its
    training record ``{"steps", "rollbacks", "rollback_reasons", "final_loss", "first_loss",
    "seconds", "cached", "params", "losses", "evals", "best_step"}``. ``monitor`` and ``select``: see
    :func:`~scalegmn_lite.tasks.amortized.operator.train_operator` (``data_tag`` must name what they
    contain: the cache key does not hash them)."""
    path = operator_path(kind, overrides, train_cfg, train_ws, data_tag, cache, name)
    if path.exists():
        try:
            op = AmortizedOperator.load(path, map_location=device or "cpu")
            _, meta = load_tensors(path)
            rec = dict(meta["record"], cached=True)
            return op, rec
        except (CorruptFileError, KeyError) as exc:
            print(f"cached operator unusable, retraining: {exc}")
    torch.manual_seed(train_cfg.seed)
    op = AmortizedOperator(**overrides).to(device or "cpu")
    t0 = time.perf_counter()
    if not train_cfg.eval_every:
        monitor, select = None, None
    hist = train_operator(op, train_ws, x, y, train_cfg, progress=progress, monitor=monitor, select=select)
    acc = hist.accepted_losses
    rec = {"steps": hist.num_steps, "rollbacks": len(hist.rollbacks),
           "rollback_reasons": sorted({r.reason for r in hist.rollbacks}),
           "first_loss": float(np.mean(acc[:10])) if acc else float("nan"),
           "final_loss": float(np.mean(acc[-10:])) if acc else float("nan"),
           "seconds": time.perf_counter() - t0, "cached": False, "params": count_params(op),
           "losses": [round(float(v), 5) for v in hist.losses],
           "evals": [{k: (int(v) if k == "step" else round(float(v), 5)) for k, v in r.items()} for r in hist.evals],
           "best_step": hist.best_step}
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "AmortizedOperator", "config": op.config.to_dict(), "trained_on": op.trained_on, "record": rec}
    save_tensors(path, op.state_dict(), meta)
    return op, rec


# ---------------------------------------------------------------------- baselines and rows
def sgd_baseline(ws: WeightSpace, x: torch.Tensor, y: torch.Tensor, epochs: Sequence[int], lam: float, lr: float,
                 batch_size: int, seed: int = 0, progress: bool = True, momentum: float = 0.0
                 ) -> tuple[dict[int, WeightSpace], float]:
    """SGD (``momentum`` 0: plain SGD; vectorized over the ``B`` networks) from ``ws`` on
    ``lam ||theta||_1 + CE``; returns the weights after each of ``epochs`` and the wall time per
    network of the whole run (``seconds / B``; the networks train together)."""
    from .baselines import run_baseline

    return run_baseline(ws, x, y, epochs, lam, lr, batch_size, "sgd", momentum, seed, progress)


def cached_sgd_baseline(te: WeightSpace, data: Dataset, cfg: StudyConfig, lam: float, data_tag: str,
                        progress: bool = True, cache: str | Path | None = None) -> tuple[dict[int, WeightSpace], float]:
    """:func:`sgd_baseline` with ``cfg``'s SGD setting on ``data``'s training set, cached
    (:func:`~scalegmn_lite.tasks.amortized.baselines.cached_baseline`)."""
    from .baselines import cached_baseline

    return cached_baseline(te, data.x_train, data.y_train, cfg.sgd_epochs, lam, cfg.sgd_lr, cfg.sgd_batch, "sgd",
                           cfg.sgd_momentum, cfg.seed, data_tag, STUDY_FORMAT, progress, cache)


def table_row(setting: str, method: str, before: WeightSpace, after: WeightSpace, x_test: torch.Tensor,
              y_test: torch.Tensor, seconds: float, params: int | None = None) -> dict:
    """One row of :data:`COLUMNS` for ``B`` proposed networks ``after`` (started from ``before``)."""
    m = network_metrics(after, x_test, y_test)
    red = l1_reduction(before, after)
    return {"setting": setting, "method": method, "mean_acc": float(m["acc"].mean()), "max_acc": float(m["acc"].max()),
            "test_loss": float(m["loss"].mean()), "l1_reduction_pct": float(red.mean()),
            "near_zero_frac": float(m["near_zero"].mean()), "seconds_per_network": float(seconds),
            "params": params, "seeds": 1, "seconds_per_network_single": None}
