"""Fully-amortized optimization: an equivariant operator ``h`` maps a network ``theta`` to improved
weights ``theta' = theta + s_l * Delta_l(theta)`` in one forward pass.

``h`` is a :class:`~scalegmn_lite.nn.scalegmn.ScaleGMN` with the equivariant head, so for every gauge
element ``g`` of the input's architecture ``h(g . theta) = g . h(theta)``: the proposed network of a
rescaled/permuted input is the same rescaled/permuted proposal (same function). Training minimises,
over networks ``theta`` of a zoo's training split and data batches ``(x, y)``::

    L = mean_theta [ lam * ||theta'||_1 + mean_n CE(f_theta'(x_n), y_n) ]

with the gradient flowing through the batched functional forward of the proposed networks; the loop
is :class:`~scalegmn_lite.common.stable.StableTrainer` (warm-up, clipping, rollback on spikes and NaNs).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ...common.distributed import current as current_dist
from ...common.io import CorruptFileError, load_tensors, save_tensors
from ...common.stable import StableTrainer, TrainingHistory, make_adamw
from ...nn.baselines import gauge_augment
from ...nn.scalegmn import ScaleGMN, ScaleGMNConfig
from ...weightspace.spec import NetworkSpec
from ...weightspace.weights import WeightSpace
from ..losses import accuracy, amortized_objective, check_labels, classification_loss, l1_norm, near_zero_fraction

__all__ = ["AmortizedOperator", "OperatorTrainConfig", "Monitor", "train_operator", "network_metrics", "timed_apply"]


@dataclass(frozen=True)
class OperatorTrainConfig:
    """Training of an operator: ``steps`` AdamW steps on ``batch_networks`` zoo networks and
    ``data_batch`` training examples each; ``lam`` weighs the L1 norm of the proposed weights.
    ``schedule``: ``"constant"`` learning rate after the warm-up, or ``"cosine"`` decay to 0.
    ``eval_every``: evaluate the ``monitor`` sets of :func:`train_operator` every so many steps (0:
    never). ``augment``: a random gauge element (permutations, allowed scalings and sign flips) is
    applied to every sampled training network, as for the symmetry-broken ``gmn-aug`` baseline."""

    steps: int = 300
    batch_networks: int = 16
    data_batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    clip_norm: float = 10.0
    lam: float = 0.0
    seed: int = 0
    eval_every: int = 0
    schedule: str = "constant"
    augment: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0 (0: no evaluations), got {self.eval_every}")


class AmortizedOperator(nn.Module):
    """One-shot optimizer: ``op(ws) -> ws'`` (a WeightSpace, or a list of them of any architectures).

    Args:
        config: the ScaleGMN configuration (``head`` is forced to ``"equivariant"``); ``mode="auto"``
            picks each hidden layer's symmetry from its activation, ``"permutation"`` gives the
            symmetry-broken GMN operator.
        overrides: keyword overrides of the config (``hidden_dim=64, bidirectional=True, ...``).
    """

    def __init__(self, config: ScaleGMNConfig | None = None, **overrides) -> None:
        super().__init__()
        base = config.to_dict() if config is not None else {}
        base.update(overrides)
        base["head"] = "equivariant"
        self.gmn = ScaleGMN(ScaleGMNConfig(**base))
        self.trained_on: list[str] = []

    @property
    def config(self) -> ScaleGMNConfig:
        return self.gmn.config

    def forward(self, ws: WeightSpace | Sequence[WeightSpace]):
        return self.gmn.update(ws)

    @torch.no_grad()
    def apply_module(self, module: nn.Module, input_shape: Sequence[int] | None = None) -> nn.Sequential:
        """Improve a plain ``torch.nn.Sequential`` (see ``NetworkSpec.from_sequential`` for what is
        supported); returns a new module of the input's dtype and device (the operator itself runs
        in its own), the input is not modified. NaN/inf weights raise
        :class:`~scalegmn_lite.weightspace.weights.NonFiniteWeightsError`; ``meta`` weights a ``ValueError``."""
        spec = NetworkSpec.from_sequential(module, input_shape)
        ws = WeightSpace.from_modules([module], spec).check_materialized("input module").check_finite("input module")
        was_training = self.training
        self.eval()
        try:
            out = self(ws)
        finally:
            self.train(was_training)
        return out.to(device=ws.device, dtype=ws.dtype).to_module(0)

    # ------------------------------------------------------------------ storage
    def save(self, path: str | Path) -> str:
        """Atomic save of weights + config (+ what it was trained on), verified by hash on load."""
        meta = {"kind": "AmortizedOperator", "config": self.config.to_dict(), "trained_on": self.trained_on}
        return save_tensors(path, self.state_dict(), meta)

    @classmethod
    def load(cls, path: str | Path, map_location="cpu") -> "AmortizedOperator":
        if Path(path).is_file() and not Path(f"{path}.json").exists():
            raise CorruptFileError(
                f"{path}: no {Path(path).name}.json next to it, so not written by AmortizedOperator.save (a plain "
                "torch.save file?). Save with op.save(path) (atomic, hashed, with its config); to use a plain state "
                "dict, build AmortizedOperator(config) and call op.load_state_dict(torch.load(path))")
        state, meta = load_tensors(path, map_location)
        if meta.get("kind") != "AmortizedOperator":
            raise CorruptFileError(f"{path}: not an AmortizedOperator checkpoint (kind={meta.get('kind')!r})")
        op = cls(ScaleGMNConfig(**meta["config"]))
        op.load_state_dict(state)
        op.trained_on = list(meta.get("trained_on", []))
        return op.to(map_location)


def _pool(networks: WeightSpace | Sequence[WeightSpace]) -> list[WeightSpace]:
    pool = [networks] if isinstance(networks, WeightSpace) else list(networks)
    if not pool or any(w.batch_size == 0 for w in pool):
        raise ValueError("train_operator needs at least one network in every WeightSpace")
    for w in pool:
        w.check_finite("training networks")
    return pool


def _check_usable(op: AmortizedOperator, pool: list[WeightSpace], x: torch.Tensor, y: torch.Tensor,
                  lam: float) -> list[str]:
    """Every architecture's text form (for ``trained_on``), after one no-grad forward of the operator
    and the objective on one network of each and two samples, and a check of all labels: an
    architecture the operator cannot take (edge width, depth, input/output sizes) or data that do not
    fit it raise here, before training starts."""
    names = [w.spec.to_text() for w in pool]
    was_training = op.training
    op.eval()
    try:
        with torch.no_grad():
            for w in pool:
                amortized_objective(op(w[:1]), x[:2], y[:2], lam)
                check_labels(y, w.spec.widths[-1], len(y))
    finally:
        op.train(was_training)
    return names


#: a set of networks watched during training: ``(networks, x, y)``, scored by the mean accuracy gain
Monitor = tuple[WeightSpace, torch.Tensor, torch.Tensor]


@torch.no_grad()
def _gains(op: AmortizedOperator, name: str, ws: WeightSpace, x: torch.Tensor, y: torch.Tensor, before: dict,
           lam: float) -> dict[str, float]:
    """``{name: accuracy gain}``, and with ``lam > 0`` also ``{name_objective: objective decrease}``."""
    was = op.training
    op.eval()
    try:
        out = op(ws)
        rec = {name: float(accuracy(out, x, y).mean()) - before[name]}
        if lam > 0:
            rec[f"{name}_objective"] = before[f"{name}_objective"] - float(amortized_objective(out, x, y, lam).mean())
        return rec
    finally:
        op.train(was)


def train_operator(op: AmortizedOperator, networks: WeightSpace | Sequence[WeightSpace], x: torch.Tensor,
                   y: torch.Tensor, config: OperatorTrainConfig | None = None, progress: bool = True,
                   trainer_kwargs: dict | None = None, dist=None, monitor: dict[str, Monitor] | None = None,
                   select: str | None = None) -> TrainingHistory:
    """Train ``op`` on the networks (one or several architectures) and data ``x [N, ...]``, ``y [N]``.

    Every step samples ``batch_networks`` networks from the pool (per architecture group, weighted
    by group size) and ``data_batch`` examples, and minimises the mean amortized objective of the
    proposed networks. Raises :class:`~scalegmn_lite.common.stable.TrainingDivergedError` if training keeps
    diverging after rollbacks. ``dist`` (default: the initialised process group, if any,
    :func:`scalegmn_lite.common.distributed.current`): data-parallel over the networks of each step's
    global batch, the same result for any number of processes.

    ``monitor``: named sets ``(networks, x, y)`` scored every ``config.eval_every`` steps (and before the
    first) by the mean accuracy gain of the proposals over the networks themselves (key ``name``) and,
    when ``config.lam > 0``, by the decrease of the training objective ``lam ||theta'||_1 + CE`` (key
    ``name_objective``); the scores land in ``history.evals``. ``select``: the score that picks the
    weights kept at the end (early stopping on *validation* networks, e.g. ``"val"`` or, for an L1
    objective, ``"val_objective"``; ``history.best_step`` says which step, ties go to the earlier one).
    Monitoring never changes the training steps themselves.
    """
    cfg = config or OperatorTrainConfig()
    dist = dist if dist is not None else current_dist()
    dist.require_batch(cfg.batch_networks, "train_operator")
    pool = _pool(networks)
    device = next(op.parameters()).device
    dtype = next(op.parameters()).dtype
    pool = [w.to(device=device, dtype=dtype) for w in pool]
    x, y = x.to(device=device, dtype=dtype), y.to(device)
    names = _check_usable(op, pool, x, y, cfg.lam)  # fail before any step, not after all of them
    sizes = torch.tensor([w.batch_size for w in pool], dtype=torch.float64)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = make_adamw(op.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    dist.broadcast_module(op)
    monitor = {k: (w.to(device=device, dtype=dtype), xm.to(device=device, dtype=dtype), ym.to(device))
               for k, (w, xm, ym) in (monitor or {}).items()}
    scores = [*monitor, *(f"{k}_objective" for k in monitor if cfg.lam > 0)]
    if select is not None and select not in scores:
        raise ValueError(f"select={select!r} names no monitored score; the scores are {sorted(scores)} "
                         "(objective scores need config.lam > 0)")
    if monitor and cfg.eval_every < 1:
        raise ValueError("monitor needs config.eval_every >= 1 (how often to score the monitored sets)")
    kw = dict(trainer_kwargs or {})
    if cfg.schedule == "cosine":
        kw.setdefault("lr_schedule", lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, cfg.steps) / cfg.steps)))
    trainer = StableTrainer(op, opt, warmup_steps=cfg.warmup_steps, clip_norm=cfg.clip_norm, progress=progress,
                            dist=dist if dist.enabled else None, **kw)
    aug_gen = torch.Generator().manual_seed(cfg.seed + 7919)

    def step(t: int):
        counts = torch.distributions.Multinomial(cfg.batch_networks, sizes / sizes.sum()).sample()
        batch = []
        for w, c in zip(pool, counts.tolist()):
            if c > 0:
                idx = torch.randint(0, w.batch_size, (int(c),), generator=gen).to(device)
                batch.append(w[idx])
        d_idx = torch.randint(0, len(y), (min(cfg.data_batch, len(y)),), generator=gen).to(device)
        n = sum(w.batch_size for w in batch)
        if cfg.augment:  # every rank draws the same elements for the whole batch, then keeps its share
            batch = [gauge_augment(w.to(device="cpu"), aug_gen).to(device=device) for w in batch]
        batch = _local_groups(batch, dist)
        proposed = op(batch)
        losses = torch.cat([amortized_objective(p, x[d_idx], y[d_idx], cfg.lam) for p in proposed])
        return losses.mean() * dist.share(n)

    torch.manual_seed(cfg.seed)  # the Multinomial draw uses the global generator
    op.train()
    if not monitor:
        history = trainer.run(step, cfg.steps)
    else:
        before = {}
        for k, (w, xm, ym) in monitor.items():
            before[k] = float(accuracy(w, xm, ym).mean())
            if cfg.lam > 0:
                before[f"{k}_objective"] = float(amortized_objective(w, xm, ym, cfg.lam).mean())
        best, best_state = -math.inf, None

        def evaluate(t: int) -> None:
            nonlocal best, best_state
            rng = torch.get_rng_state()  # scoring must not move the global stream the steps draw from
            rec = {"step": t}
            for k, (w, xm, ym) in monitor.items():
                rec.update(_gains(op, k, w, xm, ym, before, cfg.lam))
            torch.set_rng_state(rng)
            trainer.history.evals.append(rec)
            if select is not None and rec[select] > best:
                best, best_state = rec[select], {k: v.detach().clone() for k, v in op.state_dict().items()}
                trainer.history.best_step = t

        evaluate(0)
        for t0 in range(0, cfg.steps, cfg.eval_every):
            trainer.run(step, min(cfg.eval_every, cfg.steps - t0))
            evaluate(trainer.step_count)
        history = trainer.history
        if best_state is not None:
            op.load_state_dict(best_state)
    op.trained_on = sorted({*op.trained_on, *names})
    op.eval()
    return history


def _local_groups(batch: list[WeightSpace], dist) -> list[WeightSpace]:
    """This rank's networks of a global batch given as per-architecture groups (positions counted
    across the groups in order), empty groups dropped."""
    if not dist.enabled:
        return batch
    keep, start, n = [], 0, sum(w.batch_size for w in batch)
    mine = set(dist.local_positions(n))
    for w in batch:
        pos = [i for i in range(w.batch_size) if start + i in mine]
        if pos:
            keep.append(w[torch.tensor(pos, device=w.device)])
        start += w.batch_size
    return keep


@torch.no_grad()
def network_metrics(ws: WeightSpace, x: torch.Tensor, y: torch.Tensor, tol: float = 1e-3) -> dict[str, torch.Tensor]:
    """Per network: test ``acc``, ``loss`` (cross-entropy), ``l1`` norm and ``near_zero`` fraction."""
    return {"acc": accuracy(ws, x, y), "loss": classification_loss(ws, x, y), "l1": l1_norm(ws),
            "near_zero": near_zero_fraction(ws, tol)}


@torch.no_grad()
def timed_apply(op: AmortizedOperator, ws: WeightSpace, batch_size: int = 256) -> tuple[WeightSpace, float]:
    """Apply ``op`` in batches; returns the proposals and the wall time per network in seconds."""
    op.eval()
    if ws.device.type == "cuda":
        torch.cuda.synchronize(ws.device)
    t0 = time.perf_counter()
    out = WeightSpace.stack([op(ws[i:i + batch_size]) for i in range(0, ws.batch_size, batch_size)])
    if ws.device.type == "cuda":
        torch.cuda.synchronize(ws.device)
    return out, (time.perf_counter() - t0) / ws.batch_size


def config_dict(cfg: OperatorTrainConfig) -> dict:
    return asdict(cfg)
