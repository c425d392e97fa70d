"""Training and scoring invariant metanetworks: any model mapping a WeightSpace of ``B`` networks to
``[B, out]`` (ScaleGMN with an invariant head, GMN, StatNN, FlatMLP).

Block networks (residual blocks, norms) work the same way: pass
:class:`~scalegmn_lite.weightspace.block_weights.BlockWeights` of one spec wherever a ``WeightSpace`` goes (models
from :func:`scalegmn_lite.tasks.invariant.blocks.make_block_model`). A list of same-spec networks is stacked; a list
mixing specs raises.

Tasks:
    ``"regression"``: predict a scalar per network (e.g. test accuracy); MSE loss; scored by Kendall's
        tau between predictions and targets (rank agreement, the metric of the accuracy-prediction
        literature).
    ``"classification"``: predict a class per network (e.g. the digit an INR encodes); cross-entropy;
        scored by accuracy.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from torch import nn

from ...common.distributed import current as current_dist
from ...common.progress import progress_bar, set_postfix
from ...common.stable import make_adamw
from ...weightspace.block_weights import BlockWeights
from ...weightspace.weights import NonFiniteWeightsError, WeightSpace

__all__ = ["FitConfig", "FitResult", "fit", "predict", "score", "TASKS", "UndefinedScoreWarning", "Networks",
           "as_networks"]

TASKS = ("regression", "classification")

#: a batch of networks of one spec: chain networks (``WeightSpace``) or block networks (``BlockWeights``)
Networks = WeightSpace | BlockWeights


def as_networks(ws, what: str = "networks") -> Networks:
    """``ws`` as one batch of networks of one spec: a ``WeightSpace`` or ``BlockWeights`` unchanged (the very
    object), a non-empty list of them of one spec stacked. Anything else raises ``TypeError``, a list mixing specs
    (or chain and block networks) ``ValueError``, both saying why."""
    if isinstance(ws, (WeightSpace, BlockWeights)):
        return ws
    if isinstance(ws, (list, tuple)):
        if not ws:
            raise ValueError(f"{what}: got an empty list of networks")
        kinds = {type(w) for w in ws}
        if len(kinds) > 1 or not kinds <= {WeightSpace, BlockWeights}:
            raise TypeError(f"{what}: expected a list of WeightSpace or of BlockWeights (one kind), got "
                            f"{sorted(k.__name__ for k in kinds)}")
        specs = list(dict.fromkeys(w.spec.to_text() for w in ws))
        if len(specs) > 1:
            raise ValueError(f"{what}: one model is trained on networks of one spec, got {len(specs)} specs "
                             f"({specs[:3]}{'...' if len(specs) > 3 else ''}); split them by spec")
        return type(ws[0]).stack(list(ws))
    raise TypeError(f"{what}: expected a WeightSpace or BlockWeights (or a list of one spec), got "
                    f"{type(ws).__name__}")


@dataclass
class FitConfig:
    """AdamW with linear warm-up then cosine decay, gradient clipping, model selection on validation."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    clip_norm: float = 10.0
    #: ``(batch, generator) -> batch`` applied to every training batch (``WeightSpace`` or ``BlockWeights``)
    augment: Callable[[Networks, torch.Generator], Networks] | None = None
    seed: int = 0
    #: training networks scored after every epoch (``history[i]["train_score"]``; 0: none)
    train_probe: int = 512


@dataclass
class FitResult:
    """Per-epoch ``history`` (train loss, validation score, optional train score), the best epoch and its validation
    score, and the training seconds."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = -math.inf
    seconds: float = 0.0


def _loss(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "regression":
        return F.mse_loss(out.squeeze(-1), y.to(out.dtype))
    return F.cross_entropy(out, y.long())


class UndefinedScoreWarning(UserWarning):
    """The score is undefined (NaN): constant or non-finite predictions or targets."""


def _undefined_reason(task: str, pred: torch.Tensor, y: torch.Tensor) -> str | None:
    p = pred.squeeze(-1) if task == "regression" else pred
    if len(y) < (2 if task == "regression" else 1):
        return f"needs at least {2 if task == 'regression' else 1} networks, got {len(y)}"
    bad = ~torch.isfinite(p).reshape(len(p), -1).all(1)
    if bool(bad.any()):
        return f"{int(bad.sum())} predictions are NaN/inf (NaN weights? see WeightSpace.nonfinite_networks)"
    if task == "regression":
        if not bool(torch.isfinite(y.double()).all()):
            return f"{int((~torch.isfinite(y.double())).sum())} targets are NaN/inf"
        if bool((p == p[0]).all()):
            return "the predictions are all equal (a collapsed model): Kendall tau is undefined"
        if bool((y == y[0]).all()):
            return "the targets are all equal: Kendall tau is undefined"
    return None


def score(task: str, pred: torch.Tensor, y: torch.Tensor, undefined: str = "nan") -> float:
    """Kendall tau (regression) or accuracy (classification).

    An undefined score (constant predictions or targets, NaN/inf in them, < 2 networks) is never
    turned into a number: ``undefined="nan"`` returns NaN with an :class:`UndefinedScoreWarning`
    giving the reason, ``"raise"`` raises ``ValueError`` with it."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
    if undefined not in ("nan", "raise"):
        raise ValueError(f"undefined must be 'nan' or 'raise', got {undefined!r}")
    pred, y = pred.detach().cpu(), y.detach().cpu()
    reason = _undefined_reason(task, pred, y)
    if reason is None and task == "regression":
        tau = float(kendalltau(pred.squeeze(-1).double().numpy(), y.double().numpy()).statistic)
        reason = None if math.isfinite(tau) else "Kendall tau is NaN"
    if reason is not None:
        if undefined == "raise":
            raise ValueError(f"score({task!r}) is undefined: {reason}")
        warnings.warn(f"score({task!r}) is NaN: {reason}", UndefinedScoreWarning, stacklevel=2)
        return math.nan
    if task == "regression":
        return tau
    return float((pred.argmax(-1) == y.long()).double().mean())


def _finite_only(ws: Networks, y: torch.Tensor | None, on_nonfinite: str, what: str):
    """``(ws, y)`` with networks whose weights (or targets) are NaN/inf dropped (``"drop"``, with a
    warning) or a :class:`NonFiniteWeightsError` naming them (``"raise"``)."""
    if on_nonfinite not in ("raise", "drop"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'drop', got {on_nonfinite!r}")
    ws.check_materialized(what)
    ok_w = ws.finite_mask().cpu()
    ok_y = torch.isfinite(y.detach().double()).cpu().reshape(len(y), -1).all(1) if y is not None \
        else torch.ones_like(ok_w)
    if bool((ok_w & ok_y).all()):
        return ws, y
    if on_nonfinite == "raise":
        if not bool(ok_w.all()):
            ws.check_finite(what)
        bad = torch.nonzero(~ok_y).flatten().tolist()
        raise NonFiniteWeightsError(f"{what}: targets of networks {bad[:20]} are NaN/inf; drop them or pass "
                                    "on_nonfinite='drop'", bad)
    keep = ok_w & ok_y
    warnings.warn(f"{what}: dropped {int((~keep).sum())} of {len(keep)} networks with NaN/inf weights or targets "
                  f"(networks {torch.nonzero(~keep).flatten().tolist()[:20]})", stacklevel=3)
    return ws[keep.to(ws.device)], (y[keep.to(y.device)] if y is not None else None)


@torch.no_grad()
def predict(model: nn.Module, ws: Networks, batch_size: int = 64, on_nonfinite: str = "raise") -> torch.Tensor:
    """Model outputs for every network of ``ws`` (evaluation mode, in batches).

    ``ws``: a ``WeightSpace``, ``BlockWeights`` or a list of them of one spec (:func:`as_networks`).
    Networks with NaN/inf weights raise :class:`NonFiniteWeightsError` naming them
    (``on_nonfinite="raise"``) or get NaN rows (``"nan"``; the others are predicted as usual)."""
    if on_nonfinite not in ("raise", "nan"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'nan', got {on_nonfinite!r}")
    ws = as_networks(ws, "predict")
    model.eval()
    ws.check_materialized("predict")
    if on_nonfinite == "raise":
        ws.check_finite("predict")
        return torch.cat([model(ws[i:i + batch_size]) for i in range(0, ws.batch_size, batch_size)])
    ok = ws.finite_mask()
    good = ws[ok]
    probe = good if good.batch_size else ws[:1].map(torch.zeros_like)
    outs = [model(probe[i:i + batch_size]) for i in range(0, probe.batch_size, batch_size)]
    out = torch.cat(outs)
    full = torch.full((ws.batch_size, *out.shape[1:]), math.nan, dtype=out.dtype, device=out.device)
    if good.batch_size:
        full[ok.to(out.device)] = out
    return full


def fit(model: nn.Module, ws_train: Networks, y_train: torch.Tensor, ws_val: Networks, y_val: torch.Tensor,
        task: str, config: FitConfig | None = None, progress: bool = True, desc: str = "fit",
        dist=None, on_nonfinite: str = "raise") -> FitResult:
    """Train ``model`` on ``(ws_train, y_train)``, keep the state with the best validation score.

    ``ws_*``: ``WeightSpace`` or ``BlockWeights`` (or lists of one spec, :func:`as_networks`), already on the
    model's device. The model is left in the best state (epochs
    whose validation score is undefined, see :func:`score`, never count as best).
    Networks with NaN/inf weights or targets raise :class:`NonFiniteWeightsError` naming them
    (``on_nonfinite="raise"``) or are dropped with a warning (``"drop"``).
    ``dist`` (default: the initialised process group, if any,
    :func:`scalegmn_lite.common.distributed.current`): data-parallel over the networks of each global
    batch (every rank augments the whole batch, computes its share, gradients are summed), the same
    result for any number of processes; every rank scores the whole validation set.
    """
    import time

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
    ws_train, ws_val = as_networks(ws_train, f"{desc}: training networks"), as_networks(ws_val,
                                                                                      f"{desc}: validation networks")
    if type(ws_train) is not type(ws_val):
        raise TypeError(f"{desc}: training networks are {type(ws_train).__name__} but validation networks are "
                        f"{type(ws_val).__name__}; use one kind")
    if ws_train.batch_size != len(y_train) or ws_val.batch_size != len(y_val):
        raise ValueError(f"got {ws_train.batch_size} training networks but {len(y_train)} targets "
                         f"(validation: {ws_val.batch_size} vs {len(y_val)}); they must match")
    ws_train, y_train = _finite_only(ws_train, y_train, on_nonfinite, f"{desc}: training networks")
    ws_val, y_val = _finite_only(ws_val, y_val, on_nonfinite, f"{desc}: validation networks")
    cfg = config or FitConfig()
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = make_adamw(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    dist = dist if dist is not None else current_dist()
    dist.broadcast_module(model)
    steps_per_epoch = math.ceil(ws_train.batch_size / cfg.batch_size)
    total, warm = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))

    # the training score is measured every epoch on a fixed subset, for learning curves (overfitting shows
    # as a training score that keeps rising while the validation score stalls)
    probe = torch.randperm(ws_train.batch_size, generator=torch.Generator().manual_seed(cfg.seed))[:cfg.train_probe]
    probe = probe.sort().values.to(ws_train.device)
    ws_probe, y_probe = ws_train[probe], y_train[probe]
    result, best_state, step = FitResult(), None, 0
    t0 = time.perf_counter()
    bar = progress_bar(range(cfg.epochs), desc=desc, enabled=progress)
    for epoch in bar:
        model.train()
        order = torch.randperm(ws_train.batch_size, generator=gen)
        losses = []
        for i in range(0, ws_train.batch_size, cfg.batch_size):
            idx = order[i:i + cfg.batch_size].to(ws_train.device)
            batch = ws_train[idx]
            if cfg.augment is not None:
                batch = cfg.augment(batch, gen)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            n = len(idx)
            if dist.enabled:  # this rank's networks of the global batch
                pos = dist.local(torch.arange(n, device=idx.device))
                batch, idx = batch[pos], idx[pos]
            if len(idx):
                loss = _loss(task, model(batch), y_train[idx]) * dist.share(n)
            else:  # fewer networks than processes in this batch: nothing to add here
                loss = torch.zeros((), requires_grad=True)
            if dist.enabled:
                loss_value = dist.sum_scalar(loss.item())
                loss = loss + (loss_value - loss.item())  # the global value (a constant shift, same gradient)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()} at epoch {epoch}; lower the lr "
                                         "or check the inputs for NaN weights (WeightSpace.check_finite)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            dist.sync_grads(list(model.parameters()))
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm, foreach=True)
            opt.step()
            losses.append(loss.item())
            step += 1
        with warnings.catch_warnings(record=True) as caught:  # an undefined score is recorded, not best
            warnings.simplefilter("always", UndefinedScoreWarning)
            val = score(task, predict(model, ws_val, cfg.batch_size * 2), y_val)
        entry = {"epoch": epoch, "train_loss": sum(losses) / len(losses), "val_score": val}
        if caught:
            entry["val_note"] = str(caught[-1].message)
        if cfg.train_probe:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedScoreWarning)  # NaN is its own note here
                entry["train_score"] = score(task, predict(model, ws_probe, cfg.batch_size * 2), y_probe)
        result.history.append(entry)
        set_postfix(bar, loss=f"{result.history[-1]['train_loss']:.4f}", val=f"{val:.3f}")
        if val > result.best_val:
            result.best_val, result.best_epoch = val, epoch
            best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    elif result.history:
        warnings.warn(f"{desc}: the validation score was undefined in every epoch "
                      f"({result.history[-1].get('val_note', 'NaN')}); the model is left in its final state",
                      UndefinedScoreWarning, stacklevel=2)
    result.seconds = time.perf_counter() - t0
    return result
