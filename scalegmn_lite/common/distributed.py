"""Data parallelism over networks on ``torch.distributed`` (torchrun; gloo on CPU, NCCL on CUDA).

Every trainer draws a *global* batch of ``n`` networks per step from a seeded generator; every rank
draws the same one. Rank ``r`` of ``P`` keeps the positions ``r, r + P, r + 2P, ...`` of it
(:meth:`DistContext.local_positions`) and its loss is its share of the global mean

    L_r = (1 / n) * sum_{b in rank r} loss_b          so   sum_r L_r = (1 / n) * sum_b loss_b = L,

so after a SUM all-reduce of the gradients (:meth:`DistContext.sync_grads`, one flat buffer like a
DistributedDataParallel bucket) every rank holds ``dL/dtheta`` of the *same global batch* whatever
``P``, takes the same optimizer step and stays equal to the single-process run up to float rounding
of the reduction. ``DistributedSampler`` is not used because it pads and regroups samples per rank,
so the global batch would change with ``P``; an explicit all-reduce (rather than wrapping the model in
``DistributedDataParallel``) lets the global batch split unevenly and lets
:class:`~scalegmn_lite.common.stable.StableTrainer` take its accept/reject decisions on the global loss
(:meth:`DistContext.sum_scalar`) identically on every rank. Batch-coupled layers (BatchNorm) see
global batch statistics through :func:`sync_batchnorm`. Only rank 0 writes checkpoints
(:meth:`DistContext.on_main`, atomic and hashed by :mod:`scalegmn_lite.common.io`).

Without ``torchrun`` (no ``WORLD_SIZE`` > 1 in the environment) :func:`init_from_env` returns the
single-process context (``P = 1``) and every method is the identity, so the same code runs plainly.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.distributed as tdist
from torch import nn

__all__ = ["DistContext", "DistError", "init_from_env", "current", "finish", "free_port", "launch_local", "single",
           "sync_batchnorm", "shard_slice"]


class DistError(RuntimeError):
    """A distributed run set up in a way that cannot work (with the fix)."""


def shard_slice(n: int, rank: int, world: int) -> list[int]:
    """The indices ``rank, rank + world, ...`` below ``n``: rank ``rank``'s share of ``range(n)``."""
    if world < 1 or not 0 <= rank < world:
        raise DistError(f"rank {rank} is not in [0, world_size={world})")
    return list(range(rank, n, world))


@dataclass(frozen=True)
class DistContext:
    """Rank and world size of this process, and the collectives the trainers need.

    ``world_size == 1`` (the default) is the plain single-process run: every method is the identity.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ splitting a global batch
    def local_positions(self, n: int) -> list[int]:
        """Positions of a global batch of ``n`` items that this rank computes (strided)."""
        return shard_slice(n, self.rank, self.world_size)

    def local(self, items: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch ``items [n, ...]`` (all of them when ``P = 1``)."""
        if not self.enabled:
            return items
        return items[torch.as_tensor(self.local_positions(len(items)), device=items.device, dtype=torch.long)]

    def share(self, n: int) -> float:
        """Weight ``n_local / n`` that turns a mean over this rank's items into its share of the global mean."""
        return len(self.local_positions(n)) / n if self.enabled else 1.0

    def require_batch(self, n: int, what: str) -> None:
        """Raise :class:`DistError` if a global batch of ``n`` cannot give every rank an item."""
        if self.enabled and n < self.world_size:
            raise DistError(f"{what}: a global batch of {n} networks cannot be split over {self.world_size} "
                            f"processes; use a batch of at least {self.world_size} networks or fewer processes")

    # ------------------------------------------------------------------ collectives
    def sum_scalar(self, value: float) -> float:
        """``sum_r value_r`` over ranks (float64)."""
        if not self.enabled:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device())
        tdist.all_reduce(t)
        return float(t)

    def sync_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Replace every ``p.grad`` by the SUM over ranks, in one flat all-reduce.

        A parameter without a gradient on every rank keeps ``grad = None`` (as in the single-process
        run, where optimizers skip it); one with a gradient on some rank gets the sum, zeros filled
        in for the ranks without one.
        """
        if not self.enabled:
            return
        params = list(params)
        if not params:
            return
        dev = self._comm_device()
        dtype = params[0].dtype
        has = torch.tensor([p.grad is not None for p in params], dtype=dtype, device=dev)
        flat = torch.cat([has] + [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(dev, dtype)
                                  for p in params])
        tdist.all_reduce(flat)
        has, off = flat[:len(params)] > 0, len(params)
        for p, h in zip(params, has.tolist()):
            n = p.numel()
            p.grad = flat[off:off + n].view_as(p).to(p.dtype).to(p.device).clone() if h else None
            off += n

    @torch.no_grad()
    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (identical starting points)."""
        if not self.enabled:
            return
        for t in list(module.parameters()) + list(module.buffers()):
            buf = t.detach().to(self._comm_device()).contiguous()
            tdist.broadcast(buf, 0)
            t.copy_(buf.to(t.device))

    def max_abs_diff_across_ranks(self, module: nn.Module) -> float:
        """``max |theta_r - theta_0|`` over ranks and parameters (0 when the replicas agree)."""
        if not self.enabled:
            return 0.0
        flat = torch.cat([p.detach().reshape(-1).double() for p in module.parameters()]).to(self._comm_device())
        ref = flat.clone()
        tdist.broadcast(ref, 0)
        d = (flat - ref).abs().max().reshape(1)
        tdist.all_reduce(d, op=tdist.ReduceOp.MAX)
        return float(d)

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()

    def on_main(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """Run ``fn`` on rank 0 only (e.g. an atomic checkpoint save), then wait for it on every rank.
        Returns ``fn``'s result on rank 0 and ``None`` elsewhere."""
        out = fn(*args, **kwargs) if self.is_main else None
        self.barrier()
        return out

    def _comm_device(self) -> torch.device:
        if self.enabled and tdist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def single() -> DistContext:
    """The single-process context (``P = 1``)."""
    return DistContext()


def current() -> DistContext:
    """The context of the initialised default process group, or the single-process one."""
    if tdist.is_available() and tdist.is_initialized():
        return DistContext(tdist.get_rank(), tdist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return single()


def init_from_env(backend: str | None = None) -> DistContext:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``, ``LOCAL_RANK``); without it, the single-process context.

    ``backend``: ``"gloo"`` or ``"nccl"``; default NCCL when CUDA is available, else gloo. With NCCL the
    process uses GPU ``LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return current()
    if not tdist.is_available():
        raise DistError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed; run without torchrun")
    if not tdist.is_initialized():
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise DistError(f"WORLD_SIZE={world} but {missing} are not set; launch with torchrun "
                            "(torchrun --nproc-per-node P -m scalegmn_lite.cli ...) or unset WORLD_SIZE")
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        tdist.init_process_group(backend=backend, init_method="env://")
    return current()


def free_port() -> int:
    """A TCP port that is free on this machine now (for a local rendezvous)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(local_rank: int, fn: Callable, args: tuple, env: dict, nproc: int, node_rank: int) -> None:
    os.environ.update(env)
    os.environ.update(RANK=str(node_rank * nproc + local_rank), LOCAL_RANK=str(local_rank),
                      LOCAL_WORLD_SIZE=str(nproc), GROUP_RANK=str(node_rank))
    torch.set_num_threads(1)
    ctx = init_from_env(backend="gloo")
    try:
        fn(ctx, *args)
    finally:
        finish()


def launch_local(fn: Callable, nproc: int, args: tuple = (), port: int | None = None, nnodes: int = 1,
                 node_rank: int = 0) -> None:
    """Run ``fn(ctx, *args)`` in ``nproc`` new processes of one gloo process group on this machine,
    as ``torchrun --nproc-per-node nproc`` would (same environment variables, ``env://`` rendezvous
    on ``127.0.0.1:port``); ``nnodes``/``node_rank`` make this call one "node" of a larger group (start
    one call per node, same ``port``). Uses ``fork`` where available (no re-import), else ``spawn``.
    Raises if a worker fails."""
    import torch.multiprocessing as mp

    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port or free_port()), "WORLD_SIZE": str(nnodes * nproc)}
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_worker, args=(fn, args, env, nproc, node_rank), nprocs=nproc, join=True,
                       start_method=method)


def finish() -> None:
    """Leave the process group (after a last barrier), if this process joined one."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.barrier()
        tdist.destroy_process_group()


# ---------------------------------------------------------------------- batch norm over the global batch
class _AllReduceSum(torch.autograd.Function):
    """``y = sum_r x_r`` on every rank; backward ``dL/dx_r = sum_s dL_s/dy`` (the loss is the sum of the
    ranks' losses), i.e. another SUM all-reduce."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.detach().clone()
        tdist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        g = grad.detach().clone()
        tdist.all_reduce(g)
        return g


class _GlobalBatchNorm(nn.Module):
    """Training-mode BatchNorm whose statistics are those of the global batch: ``mean = sum_r S1_r / n``,
    ``var = sum_r S2_r / n`` with ``S2_r = sum_{b in r} (z_b - mean)^2`` (two differentiable all-reduces);
    running statistics updated as ``torch.nn.BatchNorm`` does (unbiased variance, ``momentum``). It
    shares parameters and buffers with the wrapped module. Works on CPU (gloo), unlike
    ``torch.nn.SyncBatchNorm``."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.bn = bn

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        all_reduce = _AllReduceSum.apply
        bn = self.bn
        if not bn.training:
            return bn(z)
        dims = [0] + list(range(2, z.dim()))
        count = torch.tensor([float(z.numel() // z.shape[1])], dtype=torch.float64, device=z.device)
        tdist.all_reduce(count)
        n = float(count)
        mean = all_reduce(z.sum(dims)) / n
        shape = [1, -1] + [1] * (z.dim() - 2)
        var = all_reduce((z - mean.view(shape)).pow(2).sum(dims)) / n
        out = (z - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps)
        if bn.affine:
            out = out * bn.weight.view(shape) + bn.bias.view(shape)
        if bn.track_running_stats and bn.running_mean is not None:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                m = (1.0 / float(bn.num_batches_tracked)) if bn.momentum is None else bn.momentum
                bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                bn.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1)), alpha=m)
        return out


@contextlib.contextmanager
def sync_batchnorm(module: nn.Module, ctx: DistContext) -> Iterator[nn.Module]:
    """Within the block, every BatchNorm of ``module`` normalises with global-batch statistics
    (nothing changes when ``P = 1``); ``state_dict`` keys and buffers stay the same."""
    if not ctx.enabled:
        yield module
        return
    swapped = []
    for _, child in list(module.named_modules()):
        for cname, sub in list(child.named_children()):
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                swapped.append((child, cname, sub))
    try:
        for parent, cname, sub in swapped:
            parent._modules[cname] = _KeepKeys(_GlobalBatchNorm(sub))
        yield module
    finally:
        for parent, cname, sub in swapped:
            parent._modules[cname] = sub


class _KeepKeys(nn.Module):
    """Holds the wrapper outside the module tree so ``state_dict`` keys stay those of the BatchNorm."""

    def __init__(self, wrapper: _GlobalBatchNorm) -> None:
        super().__init__()
        object.__setattr__(self, "_wrapper", wrapper)
        # expose the BatchNorm's own parameters/buffers under the same names
        bn = wrapper.bn
        for k, v in bn._parameters.items():
            self._parameters[k] = v
        for k, v in bn._buffers.items():
            self._buffers[k] = v

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self._wrapper.bn.train(self.training)
        return self._wrapper(z)
