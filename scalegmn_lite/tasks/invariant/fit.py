"""Training and scoring invariant metanetworks: any model mapping a WeightSpace of ``B`` networks to
``[B, out]`` (ScaleGMN with an invariant head, GMN, StatNN, FlatMLP).

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
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from torch import nn

from ...common.progress import progress_bar, set_postfix
from ...weightspace.weights import WeightSpace

__all__ = ["FitConfig", "FitResult", "fit", "predict", "score", "TASKS"]

TASKS = ("regression", "classification")


@dataclass
class FitConfig:
    """AdamW with linear warm-up then cosine decay, gradient clipping, model selection on validation."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2
    clip_norm: float = 10.0
    augment: Callable[[WeightSpace, torch.Generator], WeightSpace] | None = None
    seed: int = 0


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = -math.inf
    seconds: float = 0.0


def _loss(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "regression":
        return F.mse_loss(out.squeeze(-1), y.to(out.dtype))
    return F.cross_entropy(out, y.long())


def score(task: str, pred: torch.Tensor, y: torch.Tensor) -> float:
    """Kendall tau (regression) or accuracy (classification)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
    pred, y = pred.detach().cpu(), y.detach().cpu()
    if task == "regression":
        tau = kendalltau(pred.squeeze(-1).double().numpy(), y.double().numpy()).statistic
        return float(tau) if math.isfinite(tau) else 0.0
    return float((pred.argmax(-1) == y.long()).double().mean())


@torch.no_grad()
def predict(model: nn.Module, ws: WeightSpace, batch_size: int = 64) -> torch.Tensor:
    """Model outputs for every network of ``ws`` (evaluation mode, in batches)."""
    model.eval()
    outs = [model(ws[i:i + batch_size]) for i in range(0, ws.batch_size, batch_size)]
    return torch.cat(outs)


def fit(model: nn.Module, ws_train: WeightSpace, y_train: torch.Tensor, ws_val: WeightSpace, y_val: torch.Tensor,
        task: str, config: FitConfig | None = None, progress: bool = True, desc: str = "fit") -> FitResult:
    """Train ``model`` on ``(ws_train, y_train)``, keep the state with the best validation score.

    ``ws_*`` must already be on the model's device. The model is left in the best state.
    """
    import time

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
    if ws_train.batch_size != len(y_train) or ws_val.batch_size != len(y_val):
        raise ValueError(f"got {ws_train.batch_size} training networks but {len(y_train)} targets "
                         f"(validation: {ws_val.batch_size} vs {len(y_val)}); they must match")
    cfg = config or FitConfig()
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(ws_train.batch_size / cfg.batch_size)
    total, warm = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))

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
            loss = _loss(task, model(batch), y_train[idx])
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss became {loss.item()} at epoch {epoch}; lower the lr "
                                         "or check the inputs for NaN weights (WeightSpace.check_finite)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            opt.step()
            losses.append(loss.item())
            step += 1
        val = score(task, predict(model, ws_val, cfg.batch_size * 2), y_val)
        result.history.append({"epoch": epoch, "train_loss": sum(losses) / len(losses), "val_score": val})
        set_postfix(bar, loss=f"{result.history[-1]['train_loss']:.4f}", val=f"{val:.3f}")
        if val > result.best_val:
            result.best_val, result.best_epoch = val, epoch
            best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - t0
    return result
