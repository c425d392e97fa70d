"""Stable training for metanetworks (issue 5, DESIGN.md section 6): linear learning-rate warm-up,
gradient clipping, and rollback to the last good state on NaN/inf losses, NaN/inf gradients,
non-finite parameters or persistent loss spikes. A run never ends silently with a diverged model:
after ``max_rollbacks`` rollbacks it raises :class:`TrainingDivergedError`.

A step ``t`` (0-based) does::

    lr_t   = base_lr * warmup(t) * lr_schedule(t) * lr_scale       warmup(t) = min(1, (t + 1) / warmup_steps)
    loss_t = step_fn(t)                                             (a scalar tensor with a graph)
    reject if loss_t is not finite
    spike  if loss_t is above spike_threshold(recent accepted losses)   (below)
    loss_t.backward();  reject if ||grad|| is not finite;  clip ||grad|| to clip_norm;  optimizer.step()
    reject if a parameter became non-finite

Spikes are judged against the loss's own spread, not as a ratio to its median (a run whose median
minibatch loss is 0.003 may well see ordinary minibatches at 0.05-0.16). The reference ``w`` is
the older half of the last ``spike_window`` accepted losses (at least ``spike_min_history`` of
them: the lag lets a loss that creeps up geometrically, each step only a little above the last,
still stand out), in log space when they are all positive (minibatch losses vary
multiplicatively), else as they are::

    log space:  m = median(log w),  s = max(1.4826 * MAD(log w), 0.01);  spike if log loss_t > m + k s
    linear:     m = median(w),      s = max(1.4826 * MAD(w), (q90(w) - m) / 1.2816, 0.01 |m|)

with ``k = spike_factor`` (each term estimates a standard deviation; in linear space the quantile
term sees a heavy upper tail that the MAD misses; the floors stand in for a constant loss). With
k = 10 and minibatch losses whose log varies by 0.5 (typical), a spike is ~500x the median. A spike step is
*skipped* (no update, no
rollback): an isolated bad minibatch is not divergence. ``spike_patience`` spikes in a row are (the
model itself has gone wrong), so that step is rejected.

A rejected step restores model and optimizer from the last good snapshot and multiplies
``lr_scale`` by ``lr_decay_on_rollback``. Snapshots are deep copies of both ``state_dict``\\ s taken
at the start of every ``snapshot_every``-th step, and become the rollback target once that step has
passed the loss check (so a snapshot is never taken from a state that already produced a bad loss).
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["TrainingDivergedError", "Rollback", "TrainingHistory", "StableTrainer", "train_stable", "warmup_factor",
           "spike_threshold", "make_adamw", "all_finite"]


def make_adamw(params, lr: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` with its fused kernel where PyTorch has one for the parameters (float32/64
    on CPU or CUDA): the same update as the per-tensor loop up to float rounding, one kernel for all
    tensors instead of ~10 small ops per tensor (metanetworks hold 50-200 small tensors, so the
    per-tensor loop was ~5% of a quick training step; ``benchmarks/bench_training.py``). Falls back to
    the multi-tensor (``foreach``) form, then to the plain loop."""
    params = list(params)
    fused_ok = bool(params) and all(p.dtype in (torch.float32, torch.float64) and p.device.type in ("cpu", "cuda")
                                    for p in params) and len({p.device for p in params}) == 1
    if fused_ok:
        try:
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a build without the fused kernel for this device
            pass
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=bool(params))


def all_finite(tensors) -> bool:
    """Whether every entry of every tensor is finite, in one reduction (one host sync, not one per tensor)."""
    tensors = [t.detach().reshape(-1) for t in tensors]
    if not tensors:
        return True
    return bool(torch.isfinite(torch.cat(tensors) if len(tensors) > 1 else tensors[0]).all())


class TrainingDivergedError(RuntimeError):
    """Training kept diverging after the allowed number of rollbacks. ``history`` holds the run."""

    def __init__(self, message: str, history: "TrainingHistory") -> None:
        super().__init__(message)
        self.history = history


@dataclass
class Rollback:
    """One rollback: the step that failed, why, its loss, and the step whose state was restored."""

    step: int
    reason: str  # "nonfinite_loss" | "loss_spike" (spike_patience in a row) | "nonfinite_grad" | "nonfinite_params"
    loss: float
    restored_step: int
    lr_scale: float  # the LR scale in force after the rollback


@dataclass
class TrainingHistory:
    """Per-step records (index = step) and the rollbacks, ready for plots (``to_dict`` for JSON)."""

    losses: list[float] = field(default_factory=list)  # the loss step_fn returned (also for rejected steps)
    accepted: list[bool] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)  # LR of the first param group
    grad_norms: list[float] = field(default_factory=list)  # before clipping (NaN if not computed)
    metrics: list[dict[str, float]] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)
    skipped_spikes: list[int] = field(default_factory=list)  # steps skipped as isolated loss spikes
    evals: list[dict[str, float]] = field(default_factory=list)  # periodic evaluations ({"step": t, ...}), if any
    best_step: int | None = None  # the step whose weights were kept (model selection), if any

    @property
    def num_steps(self) -> int:
        return len(self.losses)

    @property
    def accepted_losses(self) -> list[float]:
        return [v for v, ok in zip(self.losses, self.accepted) if ok]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rollbacks"] = [asdict(r) for r in self.rollbacks]
        return d


def spike_threshold(window, spike_factor: float) -> float:
    """The loss above which a step is a spike, for the recent accepted losses ``window`` (see the
    module docstring): ``exp(m + k s)`` of the log losses if all are positive, else ``m + k s``."""
    w = [float(v) for v in window]
    log = all(v > 0 for v in w)
    if log:
        w = [math.log(v) for v in w]
    m = _lower_median(w)
    mad = 1.4826 * _lower_median([abs(v - m) for v in w])
    if log:
        return math.exp(m + spike_factor * max(mad, 0.01))
    q90 = _quantile(w, 0.9)
    return m + spike_factor * max(mad, (q90 - m) / 1.2816, 0.01 * abs(m))


def _lower_median(values: list[float]) -> float:
    """The lower median (``torch.median``'s convention: the smaller middle value of an even count);
    in plain Python, since the windows hold at most ``spike_window`` floats (no tensor ops per step)."""
    s = sorted(values)
    return s[(len(s) - 1) // 2]


def _quantile(values: list[float], q: float) -> float:
    """``torch.quantile(values, q)`` (linear interpolation between the closest ranks)."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up multiplier ``min(1, (step + 1) / warmup_steps)`` (1 if ``warmup_steps <= 0``)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class StableTrainer:
    """Runs ``step_fn`` with warm-up, clipping, spike/NaN detection and rollback.

    Args:
        model: the module being trained (its ``state_dict`` is snapshotted).
        optimizer: its optimizer (its ``state_dict`` is snapshotted too; LRs are set every step).
        warmup_steps: linear warm-up length in steps (0: none).
        clip_norm: max global gradient norm (``None``: no clipping; the norm is still checked).
        spike_factor: ``k``: a loss above ``median + k * robust scale`` of the recent losses is a
            spike (module docstring; ``None`` disables spike detection).
        spike_window: number of recent accepted losses the median and scale are taken over.
        spike_min_history: no spike detection before this many accepted losses.
        spike_patience: this many spikes in a row are rejected (rollback); fewer are skipped.
        snapshot_every: steps between snapshots.
        max_rollbacks: the rollback after this many raises :class:`TrainingDivergedError`.
        lr_decay_on_rollback: LR multiplier applied at every rollback (1.0: keep the LR).
        lr_schedule: optional multiplier ``step -> float`` on top of the warm-up (e.g. cosine decay).
        progress: show a tqdm progress bar.
        dist: a :class:`~scalegmn_lite.common.distributed.DistContext` for data-parallel runs: ``step_fn``
            returns this rank's share of the global loss; the loss value is summed over ranks before the
            checks and the gradients after ``backward`` (``None``: single process).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 0,
        clip_norm: float | None = 10.0,
        spike_factor: float | None = 10.0,
        spike_window: int = 50,
        spike_min_history: int = 10,
        spike_patience: int = 3,
        snapshot_every: int = 50,
        max_rollbacks: int = 10,
        lr_decay_on_rollback: float = 0.5,
        lr_schedule: Callable[[int], float] | None = None,
        progress: bool = True,
        dist: Any = None,
    ) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be >= 1, got {snapshot_every}")
        if spike_factor is not None and spike_factor <= 0:
            raise ValueError(f"spike_factor must be > 0 (or None to disable), got {spike_factor}")
        if spike_patience < 1:
            raise ValueError(f"spike_patience must be >= 1, got {spike_patience}")
        if clip_norm is not None and clip_norm <= 0:
            raise ValueError(f"clip_norm must be > 0 (or None), got {clip_norm}")
        if not 0 < lr_decay_on_rollback <= 1:
            raise ValueError(f"lr_decay_on_rollback must be in (0, 1], got {lr_decay_on_rollback}")
        self.model, self.optimizer = model, optimizer
        self.warmup_steps, self.clip_norm = warmup_steps, clip_norm
        self.spike_factor, self.spike_min_history = spike_factor, spike_min_history
        self.spike_patience, self._spike_run = spike_patience, 0
        self.snapshot_every, self.max_rollbacks = snapshot_every, max_rollbacks
        self.lr_decay_on_rollback, self.lr_schedule = lr_decay_on_rollback, lr_schedule
        self.progress = progress
        self.dist = dist
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.lr_scale = 1.0
        self.step_count = 0
        self.history = TrainingHistory()
        self._recent: deque[float] = deque(maxlen=spike_window)
        self._good = self._snapshot(0)
        self._pending = None

    # ------------------------------------------------------------------ state
    def _snapshot(self, step: int) -> dict[str, Any]:
        return {
            "step": step,
            "model": copy.deepcopy(self.model.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    @property
    def last_good_step(self) -> int:
        """The step at whose start the current rollback target was taken."""
        return self._good["step"]

    def _restore(self) -> None:
        self.model.load_state_dict(copy.deepcopy(self._good["model"]))
        self.optimizer.load_state_dict(copy.deepcopy(self._good["optimizer"]))

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def lr_at(self, step: int) -> list[float]:
        """The LR of every param group at ``step`` with the current ``lr_scale``."""
        f = warmup_factor(step, self.warmup_steps) * self.lr_scale
        if self.lr_schedule is not None:
            f *= float(self.lr_schedule(step))
        return [base * f for base in self.base_lrs]

    # ------------------------------------------------------------------ one step
    def _one_step(self, step_fn: Callable[[int], Any], t: int) -> None:
        h = self.history
        if t % self.snapshot_every == 0 and t != self._good["step"]:
            self._pending = self._snapshot(t)
        lrs = self.lr_at(t)
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        out = step_fn(t)
        loss, metrics = (out if isinstance(out, tuple) else (out, {}))
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError("step_fn(step) must return a scalar loss tensor (or (loss, metrics_dict))")
        value = float(loss.detach())
        if self.dist is not None:
            value = self.dist.sum_scalar(value)  # the global loss: every rank decides alike
        h.losses.append(value)
        h.lrs.append(lrs[0] if lrs else math.nan)
        h.metrics.append({k: float(v) for k, v in metrics.items()})
        h.grad_norms.append(math.nan)
        h.accepted.append(False)
        try:
            if not math.isfinite(value):
                raise _Reject("nonfinite_loss")
            n_ref = max(self.spike_min_history, len(self._recent) // 2)
            spike = (self.spike_factor is not None and len(self._recent) >= self.spike_min_history
                     and value > spike_threshold(list(self._recent)[:n_ref], self.spike_factor))
            if spike:
                self._spike_run += 1
                if self._spike_run >= self.spike_patience:
                    self._spike_run = 0
                    raise _Reject("loss_spike")
                self._pending = None  # the state at the start of this step gave a spike: not a rollback target
                h.skipped_spikes.append(t)
                return
            self._spike_run = 0
            if self._pending is not None:  # the state at the start of this step produced a good loss
                self._good, self._pending = self._pending, None
            loss.backward()
            if self.dist is not None:
                self.dist.sync_grads(self._params())
            params = [p for p in self._params() if p.grad is not None]
            max_norm = self.clip_norm if self.clip_norm is not None else math.inf
            norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)) if params else 0.0
            h.grad_norms[-1] = norm
            if not math.isfinite(norm):
                raise _Reject("nonfinite_grad")
            self.optimizer.step()
            if not all_finite(self._params()):
                raise _Reject("nonfinite_params")
        except _Reject as r:
            self._pending = None
            self._rollback(t, r.reason, value)
            return
        h.accepted[-1] = True
        self._recent.append(value)

    def _rollback(self, t: int, reason: str, value: float) -> None:
        h = self.history
        self._restore()
        self.optimizer.zero_grad(set_to_none=True)
        self.lr_scale *= self.lr_decay_on_rollback
        h.rollbacks.append(Rollback(t, reason, value, self._good["step"], self.lr_scale))
        if len(h.rollbacks) > self.max_rollbacks:
            raise TrainingDivergedError(
                f"training diverged: {len(h.rollbacks)} rollbacks (max_rollbacks={self.max_rollbacks}), the last "
                f"at step {t} ({reason}, loss {value:.4g}); the model was restored to its state at step "
                f"{self._good['step']}. Lower the learning rate, lengthen the warm-up, or lower clip_norm.",
                h,
            )

    # ------------------------------------------------------------------ loop
    def run(self, step_fn: Callable[[int], Any], steps: int) -> TrainingHistory:
        """Run ``steps`` steps (continuing the step counter across calls).

        ``step_fn(step)`` computes and returns the loss (a scalar tensor with a graph to the model's
        parameters), optionally with a dict of scalar metrics: ``(loss, {"acc": ...})``. It must not
        call ``backward`` or ``optimizer.step`` itself.
        Returns the :class:`TrainingHistory` (the same object across calls).
        """
        from .progress import progress_bar, set_postfix

        bar = progress_bar(range(self.step_count, self.step_count + steps), enabled=self.progress)
        try:
            for t in bar:
                self._one_step(step_fn, t)
                self.step_count = t + 1
                if self.progress and t % 10 == 0:
                    set_postfix(bar, loss=f"{self.history.losses[-1]:.4g}", lr=f"{self.history.lrs[-1]:.2g}",
                                    rollbacks=len(self.history.rollbacks))
        finally:
            bar.close()
        return self.history


def train_stable(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step_fn: Callable[[int], Any],
    steps: int,
    warmup_steps: int = 0,
    clip_norm: float | None = 10.0,
    spike_factor: float | None = 10.0,
    max_rollbacks: int = 10,
    progress: bool = True,
    **kwargs: Any,
) -> TrainingHistory:
    """One call: ``StableTrainer(model, optimizer, ...).run(step_fn, steps)`` (see :class:`StableTrainer`
    for the other keyword arguments). Raises :class:`TrainingDivergedError` if training keeps diverging."""
    trainer = StableTrainer(model, optimizer, warmup_steps=warmup_steps, clip_norm=clip_norm,
                            spike_factor=spike_factor, max_rollbacks=max_rollbacks, progress=progress, **kwargs)
    return trainer.run(step_fn, steps)
