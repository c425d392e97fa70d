"""Vectorized training of ``B`` networks of one :class:`~scalegmn_lite.weightspace.spec.NetworkSpec` at once.

All ``B`` networks take one batched step together: ``batched_forward`` (batched matmul for dense
layers, unfold + einsum for convolutions) gives logits ``[B, n, C]``; the loss is

    L(theta_1..theta_B) = sum_b [ CE_b(theta_b) + extra_b(theta_b) ]

so ``dL/dtheta_b = dCE_b/dtheta_b + dextra_b/dtheta_b``: each network's gradient is its own. Each
network has its own learning rate and (L2, coupled) weight decay. Optimizers, written batched with
exactly the update of ``torch.optim`` (so :func:`train_loop` with ``torch.optim`` is a reference):

* ``"sgd"``: ``g = grad + wd * p;  buf = momentum * buf + g (buf = g at step 1);  p -= lr * buf``
  (``torch.optim.SGD(momentum=0.9, weight_decay=wd)``), the default for classifiers;
* ``"adam"``: ``torch.optim.Adam(betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)``, used for INRs.

Learning-rate schedule (``lr_schedule``): ``"constant"``, or ``"cosine"``: step ``t`` (0-based) of ``T``
uses ``lr * (1 + cos(pi t / T)) / 2`` (``T`` = epochs x steps per epoch), so training ends at a
learning rate near 0 and the final networks stop moving (the *plateau* zoos). :func:`lr_factor`.

Data order: with ``seeds`` every network shuffles the training set with its own generator (one
permutation per epoch); otherwise all networks share one order drawn from ``generator``.
Divergence: a network whose loss or updated parameters become non-finite is frozen at its last
finite parameters and flagged in ``TrainResult.diverged``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace, batched_forward

__all__ = ["TrainResult", "BatchedOptimizer", "train_batched", "train_loop", "evaluate", "init_weights",
           "as_tensors", "lr_factor", "LR_SCHEDULES"]

#: learning-rate schedules of :func:`train_batched` (see :func:`lr_factor`)
LR_SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the learning rate at optimizer step ``step`` (0-based) of ``total``."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))
    raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of {LR_SCHEDULES}")

_ORDER_SALT = 0x5EED


def as_tensors(data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(x_train, y_train, x_test, y_test)`` from a :class:`~scalegmn_lite.zoo.data.Dataset` or a tuple."""
    if hasattr(data, "x_train"):
        return data.x_train, data.y_train, data.x_test, data.y_test
    data = tuple(data)
    if len(data) == 2:
        return data[0], data[1], None, None
    if len(data) == 4:
        return tuple(data)  # type: ignore[return-value]
    raise TypeError("data must be a Dataset or a tuple (x_train, y_train[, x_test, y_test])")


def init_weights(spec: NetworkSpec, seeds: Sequence[int], init_scale: torch.Tensor | float = 1.0,
                 device=None, dtype: torch.dtype = torch.float32) -> WeightSpace:
    """Network ``b`` gets ``W_l ~ init_scale_b * N(0, 1/fan_in)`` from a generator seeded with
    ``seeds[b]`` (drawn in float32 on CPU, so results do not depend on device or chunking); biases 0."""
    B = len(seeds)
    scale = torch.as_tensor(init_scale, dtype=torch.float64).expand(B)
    ws, bs = [[] for _ in spec.layers], []
    for b, s in enumerate(seeds):
        g = torch.Generator().manual_seed(int(s))
        for l, layer in enumerate(spec.layers):
            fan_in = layer.in_dim * layer.kernel_numel
            w = torch.randn(*layer.weight_shape, generator=g) * (float(scale[b]) / math.sqrt(fan_in))
            ws[l].append(w)
    for layer in spec.layers:
        bs.append(torch.zeros(B, layer.out_dim))
    return WeightSpace(spec, [torch.stack(w) for w in ws], bs).to(device=device, dtype=dtype)


class BatchedOptimizer:
    """SGD with momentum or Adam over parameters ``[B, ...]`` with per-network ``lr`` and ``wd`` ``[B]``."""

    def __init__(self, kind: str, lr: torch.Tensor, weight_decay: torch.Tensor, momentum: float = 0.9,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if kind not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {kind!r}")
        self.kind, self.lr, self.wd = kind, lr, weight_decay
        self.momentum, self.betas, self.eps = momentum, betas, eps
        self.state: list[dict] | None = None
        self.t = 0

    @staticmethod
    def _b(v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return v.to(p.dtype).reshape(-1, *([1] * (p.dim() - 1)))

    @torch.no_grad()
    def step(self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
             lr_scale: float = 1.0) -> list[torch.Tensor]:
        """New parameter values (the inputs are not modified); ``lr_scale`` multiplies every
        network's learning rate for this step (a schedule)."""
        if self.state is None:
            self.state = [{} for _ in params]
        self.t += 1
        out = []
        base_lr = self.lr if lr_scale == 1.0 else self.lr * lr_scale
        for p, g, st in zip(params, grads, self.state):
            lr, wd = self._b(base_lr, p), self._b(self.wd, p)
            g = g + wd * p
            if self.kind == "sgd":
                buf = g.clone() if "buf" not in st else st["buf"].mul_(self.momentum).add_(g)
                st["buf"] = buf
                out.append(p - lr * buf)
            else:
                b1, b2 = self.betas
                if "m" not in st:
                    st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
                st["m"].lerp_(g, 1 - b1)
                st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                bc1, bc2 = 1 - b1**self.t, 1 - b2**self.t
                denom = (st["v"].sqrt() / math.sqrt(bc2)).add_(self.eps)
                out.append(p - (lr / bc1) * st["m"] / denom)
        return out


@dataclass
class TrainResult:
    """Output of :func:`train_batched`.

    Attributes:
        ws: final weights (``B`` networks).
        checkpoints: epoch -> weights after that many epochs (``0``: the initial weights).
        metrics: ``"train_loss"``, ``"train_acc"``, ``"test_loss"``, ``"test_acc"`` -> ``[n_ckpt, B]``
            (test metrics only when test data was given), rows in ``checkpoint_epochs`` order.
        history: mean training loss of every epoch, ``[epochs, B]``.
        diverged: ``[B]`` bool, networks frozen because they became non-finite.
    """

    ws: WeightSpace
    checkpoints: dict[int, WeightSpace]
    metrics: dict[str, torch.Tensor]
    checkpoint_epochs: tuple[int, ...]
    history: torch.Tensor
    diverged: torch.Tensor
    seconds: float


def _sample_numel(spec: NetworkSpec, sample_shape: tuple[int, ...]) -> int:
    """Largest per-sample intermediate (im2col columns + outputs) of one network, in elements."""
    spatial = list(sample_shape[1:]) if spec.layers[0].is_conv else []
    worst = 1
    for layer in spec.layers:
        if layer.is_conv:
            k = layer.kernel_size
            spatial = [(s + 2 * layer.padding - kk) // layer.stride + 1 for s, kk in zip(spatial, k)]
            p = max(1, math.prod(spatial))
            worst = max(worst, (layer.in_dim * layer.kernel_numel + layer.out_dim) * p)
            if layer.pool_after:
                spatial = []
        else:
            worst = max(worst, layer.in_dim + layer.out_dim)
    return worst


@torch.no_grad()
def evaluate(ws: WeightSpace, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy ``[B]`` and accuracy ``[B]`` of every network on ``(x [N, ...], y [N])``,
    batched over networks and chunked to bound memory: over samples in chunks that do not depend on
    ``B`` and over networks, so a network's figures do not depend on which networks it is evaluated
    with (a zoo shard matches the whole build bit for bit)."""
    return evaluate_chunked(ws, x, y, batched_forward, _sample_numel(ws.spec, tuple(x.shape[1:])), chunk)


def evaluate_chunked(nets, x: torch.Tensor, y: torch.Tensor, forward: Callable, per_sample: int,
                     chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`evaluate` for any batch of networks ``nets`` (``WeightSpace`` or ``BlockWeights``: indexable, with
    ``stack``) and its batched ``forward(nets, x) -> [b, n, C]``; ``per_sample``: the largest intermediate of one
    network on one sample (elements), which sets the memory-bounding chunks."""
    if nets.batch_size == 1:  # B = 1 takes other BLAS kernels (gemv) than B > 1: evaluate a copy alongside
        loss, acc = evaluate_chunked(type(nets).stack([nets, nets]), x, y, forward, per_sample, chunk)
        return loss[:1], acc[:1]
    B, n = nets.batch_size, len(x)
    chunk = chunk or max(1, min(n, 2**25 // max(1, per_sample)))  # a budget of 2**25 elements for one network
    group = max(2, 2**25 // (per_sample * chunk))
    starts = list(range(0, B, group))
    if B - starts[-1] == 1:  # no part of a single network (see above)
        starts.pop()
    loss = torch.zeros(B, dtype=torch.float64, device=nets.device)
    correct = torch.zeros(B, dtype=torch.float64, device=nets.device)
    for i, a in enumerate(starts):
        part = nets[a:starts[i + 1] if i + 1 < len(starts) else B]
        for s in range(0, n, chunk):
            xb, yb = x[s:s + chunk], y[s:s + chunk]
            logits = forward(part, xb)  # [b, n, C]
            ce = F.cross_entropy(logits.transpose(1, 2), yb.expand(part.batch_size, -1), reduction="none")
            loss[a:a + part.batch_size] += ce.double().sum(1)
            correct[a:a + part.batch_size] += (logits.argmax(-1) == yb).double().sum(1)
    return (loss / n).to(nets.dtype), (correct / n).to(nets.dtype)


def _orders(n: int, B: int, seeds: Sequence[int] | None, generator: torch.Generator | None):
    """Generator of per-epoch orders: ``[B, n]`` (per-network seeds) or ``[n]`` (shared)."""
    if seeds is not None:
        gens = [torch.Generator().manual_seed(int(s) ^ _ORDER_SALT) for s in seeds]
        while True:
            yield torch.stack([torch.randperm(n, generator=g) for g in gens])
    else:
        while True:
            yield torch.randperm(n, generator=generator)


def _per_net(v, B: int, device, name: str) -> torch.Tensor:
    t = torch.as_tensor(v, dtype=torch.float64)
    if t.dim() == 0:
        t = t.expand(B)
    if t.shape != (B,):
        raise ValueError(f"{name} must be a scalar or a [B={B}] tensor, got shape {tuple(t.shape)}")
    return t.to(device)


def train_batched(ws: WeightSpace, data, epochs: int, lr, weight_decay, batch_size: int,
                  generator: torch.Generator | None = None,
                  extra_loss: Callable[[WeightSpace], torch.Tensor] | None = None,
                  checkpoint_epochs: Sequence[int] = (), progress: bool = True, *,
                  seeds: Sequence[int] | None = None, optimizer: str = "sgd", momentum: float = 0.9,
                  max_steps: int | None = None, desc: str = "train", lr_schedule: str = "constant") -> TrainResult:
    """Train all ``B`` networks of ``ws`` together (see the module docstring for the equations).

    Args:
        ws: initial weights, ``B`` networks of one spec.
        data: a :class:`~scalegmn_lite.zoo.data.Dataset` or ``(x_train, y_train[, x_test, y_test])``.
        epochs: passes over the training set (the last batch of an epoch may be smaller).
        lr, weight_decay: scalars or ``[B]`` tensors (per-network values).
        batch_size: minibatch size.
        generator: draws the shared data order (ignored when ``seeds`` is given).
        extra_loss: optional ``ws -> [B]`` added to each network's loss (e.g. an L1 penalty).
        checkpoint_epochs: epochs after which weights and metrics are recorded (``0``: initial).
        seeds: per-network seeds for per-network data orders.
        optimizer: ``"sgd"`` (momentum) or ``"adam"``.
        max_steps: stop after this many optimizer steps (for tests); checkpoints past it are skipped.
        lr_schedule: ``"constant"`` or ``"cosine"`` (see the module docstring).
    """
    if ws.batch_size == 1:  # B = 1 takes other BLAS kernels (gemv) than B > 1: train a copy alongside, so
        # a network's weights do not depend on how many networks train with it (sharded zoo builds)
        two = [torch.as_tensor(v, dtype=torch.float64).reshape(-1).expand(2) for v in (lr, weight_decay)]
        res = train_batched(WeightSpace.stack([ws, ws]), data, epochs, two[0], two[1], batch_size, generator,
                            extra_loss, checkpoint_epochs, progress, seeds=None if seeds is None else list(seeds) * 2,
                            optimizer=optimizer, momentum=momentum, max_steps=max_steps, desc=desc,
                            lr_schedule=lr_schedule)
        return TrainResult(res.ws[:1], {e: w[:1] for e, w in res.checkpoints.items()},
                           {k: v[:, :1] for k, v in res.metrics.items()}, res.checkpoint_epochs, res.history[:, :1],
                           res.diverged[:1], res.seconds)
    t0 = time.perf_counter()
    spec = ws.spec
    data, opt = training_setup(ws, data, seeds, lr, weight_decay, optimizer, momentum, lr_schedule)
    return run_epochs(list(ws.params()), [False] * (2 * spec.num_layers),
                      lambda ts: WeightSpace(spec, ts[0::2], ts[1::2]),
                      lambda cur, xb, per: (batched_forward(cur, xb, per_network=per), ()), evaluate, opt,
                      data, epochs, batch_size, seeds, generator, checkpoint_epochs, progress, desc,
                      lr_schedule, max_steps, extra_loss, t0)


def training_setup(nets, data, seeds, lr, weight_decay, optimizer: str, momentum: float, lr_schedule: str
                   ) -> tuple[tuple, "BatchedOptimizer"]:
    """The checked inputs of a batched trainer: ``(x, y, x_test, y_test)`` on the networks' device (inputs in their
    dtype) and the optimizer with per-network ``lr`` and ``weight_decay``."""
    B, dev = nets.batch_size, nets.device
    x, y, xt, yt = as_tensors(data)
    x, y = x.to(dev, nets.dtype), y.to(dev)
    xt = None if xt is None else xt.to(dev, nets.dtype)
    yt = None if yt is None else yt.to(dev)
    if seeds is not None and len(seeds) != B:
        raise ValueError(f"got {len(seeds)} seeds for B={B} networks")
    lr_factor(lr_schedule, 0, 1)  # checks the name
    opt = BatchedOptimizer(optimizer, _per_net(lr, B, dev, "lr"), _per_net(weight_decay, B, dev, "weight_decay"),
                           momentum=momentum)
    return (x, y, xt, yt), opt


def run_epochs(params: list[torch.Tensor], running: Sequence[bool], build: Callable, forward: Callable,
               evaluate_fn: Callable, opt: "BatchedOptimizer", data: tuple, epochs: int, batch_size: int,
               seeds: Sequence[int] | None, generator: torch.Generator | None, checkpoint_epochs: Sequence[int],
               progress: bool, desc: str, lr_schedule: str, max_steps: int | None,
               extra_loss: Callable | None = None, t0: float | None = None) -> TrainResult:
    """The epoch loop shared by :func:`train_batched` and the block networks' trainer
    (:func:`~scalegmn_lite.zoo.block_train.train_block_batched`).

    Args:
        params: the ``B`` networks' tensors ``[B, ...]``, in their order; ``running[i]``: tensor ``i`` is a running
            statistic, updated by the forward pass, never by the optimizer.
        build: tensors -> the networks (``WeightSpace``, ``BlockWeights``).
        forward: ``(networks, x, per_network) -> (logits [B, n, C], new running tensors in order)``.
        evaluate_fn: ``(networks, x, y) -> (loss [B], accuracy [B])`` for the checkpoints' metrics.
        opt: the optimizer of the trained tensors; data: ``(x, y, x_test or None, y_test or None)`` on the device.
        The rest as in :func:`train_batched`. Diverged networks (non-finite loss or tensors) are frozen and flagged.
    """
    from ..common.progress import progress_bar, set_postfix

    t0 = time.perf_counter() if t0 is None else t0
    x, y, xt, yt = data
    B, dev = params[0].shape[0], params[0].device
    params = [p.detach().clone() for p in params]
    alive = torch.ones(B, dtype=torch.bool, device=dev)
    ckpt_set = sorted({int(e) for e in checkpoint_epochs})
    checkpoints: dict[int, object] = {}
    rows: dict[str, list[torch.Tensor]] = {k: [] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}

    def record(epoch: int) -> None:
        cur = build([p.detach().clone() for p in params])
        checkpoints[epoch] = cur
        loss, acc = evaluate_fn(cur, x, y)
        rows["train_loss"].append(loss)
        rows["train_acc"].append(acc)
        if xt is not None:
            loss, acc = evaluate_fn(cur, xt, yt)
            rows["test_loss"].append(loss)
            rows["test_acc"].append(acc)

    if 0 in ckpt_set:
        record(0)
    n = len(x)
    total_steps = epochs * math.ceil(n / batch_size)
    orders = _orders(n, B, seeds, generator)
    history = torch.zeros(epochs, B, dtype=torch.float64)
    step = 0
    bar = progress_bar(range(1, epochs + 1), desc=desc, enabled=progress)
    for epoch in bar:
        order = next(orders).to(dev)
        ep_loss = torch.zeros(B, dtype=torch.float64, device=dev)
        nb = 0
        for s in range(0, n, batch_size):
            if max_steps is not None and step >= max_steps:
                break
            idx = order[..., s:s + batch_size]
            leaves = [p if r else p.requires_grad_(True) for p, r in zip(params, running)]
            cur = build(leaves)
            logits, new_running = forward(cur, x[idx], seeds is not None)
            yb = y[idx] if seeds is not None else y[idx].expand(B, -1)
            loss = F.cross_entropy(logits.transpose(1, 2), yb, reduction="none").mean(1)  # [B]
            if extra_loss is not None:
                loss = loss + extra_loss(cur)
            ok = alive & torch.isfinite(loss)
            total = torch.where(ok, loss, torch.zeros_like(loss)).sum()
            trained = [p for p, r in zip(leaves, running) if not r]
            grads = torch.autograd.grad(total, trained)
            with torch.no_grad():
                new_trained = iter(opt.step([p.detach() for p in trained], grads,
                                            lr_factor(lr_schedule, step, total_steps)))
                new_running = iter(new_running)
                new = [next(new_running) if r else next(new_trained) for r in running]
                for p in new:
                    ok = ok & torch.isfinite(p.flatten(1)).all(1)
                params = [torch.where(opt._b(ok, p).bool(), q, p.detach()) for p, q in zip(leaves, new)]
                alive = ok
                ep_loss += loss.detach().double().nan_to_num(nan=0.0, posinf=0.0)
            nb += 1
            step += 1
        history[epoch - 1] = (ep_loss / max(nb, 1)).cpu()
        if progress:
            set_postfix(bar, loss=f"{float(history[epoch - 1].median()):.3f}", diverged=int((~alive).sum()))
        if epoch in ckpt_set and (max_steps is None or step < max_steps or epoch == epochs):
            record(epoch)
        if max_steps is not None and step >= max_steps:
            break
    final = build([p.detach() for p in params])
    metrics = {k: torch.stack(v) for k, v in rows.items() if v}
    return TrainResult(final, checkpoints, metrics, tuple(sorted(checkpoints)), history, ~alive,
                       time.perf_counter() - t0)


def _layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]


def train_loop(ws: WeightSpace, data, epochs: int, lr, weight_decay, batch_size: int,
               generator: torch.Generator | None = None,
               extra_loss: Callable[[WeightSpace], torch.Tensor] | None = None, *,
               seeds: Sequence[int] | None = None, optimizer: str = "sgd", momentum: float = 0.9,
               max_steps: int | None = None, networks: Sequence[int] | None = None,
               lr_schedule: str = "constant") -> WeightSpace:
    """Reference: the same training one network at a time, with ``torch.nn`` modules
    (:meth:`WeightSpace.to_module`) and ``torch.optim``. Same arguments as :func:`train_batched`;
    ``networks`` restricts the work to some networks (for timing); returns their final weights.
    The data orders are drawn exactly as in :func:`train_batched` (shared ones from ``generator``)."""
    B, dev = ws.batch_size, ws.device
    x, y, _, _ = as_tensors(data)
    x, y = x.to(dev, ws.dtype), y.to(dev)
    lr_t, wd_t = _per_net(lr, B, "cpu", "lr"), _per_net(weight_decay, B, "cpu", "weight_decay")
    n = len(x)
    total_steps = epochs * math.ceil(n / batch_size)
    nets = list(range(B)) if networks is None else list(networks)
    if seeds is None:  # the shared orders, drawn once
        gen = _orders(n, 1, None, generator)
        shared = [next(gen) for _ in range(epochs)]
    modules = []
    for b in nets:
        module = ws.to_module(b)
        params = list(module.parameters())
        if optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=float(lr_t[b]), momentum=momentum, weight_decay=float(wd_t[b]))
        else:
            opt = torch.optim.Adam(params, lr=float(lr_t[b]), weight_decay=float(wd_t[b]))
        orders = _orders(n, 1, [seeds[b]], None) if seeds is not None else iter(shared)
        step = 0
        for _ in range(epochs):
            order = next(orders).reshape(-1).to(dev)
            for s in range(0, n, batch_size):
                if max_steps is not None and step >= max_steps:
                    break
                idx = order[s:s + batch_size]
                for group in opt.param_groups:
                    group["lr"] = float(lr_t[b]) * lr_factor(lr_schedule, step, total_steps)
                loss = F.cross_entropy(module(x[idx]), y[idx])
                if extra_loss is not None:
                    lay = _layers(module)
                    one = WeightSpace(ws.spec, [m.weight[None] for m in lay], [m.bias[None] for m in lay])
                    loss = loss + extra_loss(one)[0]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
        modules.append(module)
    return WeightSpace.from_modules(modules, ws.spec)
