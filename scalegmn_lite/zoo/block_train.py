"""Vectorized training of ``B`` block networks (residual blocks, BatchNorm1d, LayerNorm) of one
:class:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec` at once: the block twin of
:func:`~scalegmn_lite.zoo.train.train_batched`.

Everything but the forward is shared with the chain trainer (:mod:`scalegmn_lite.zoo.train`): the summed loss
``L = sum_b CE_b(theta_b)`` (each network's gradient is its own), :class:`~scalegmn_lite.zoo.train.BatchedOptimizer`
(``torch.optim``'s SGD with momentum / Adam, per-network learning rate and coupled weight decay),
:func:`~scalegmn_lite.zoo.train.lr_factor` schedules, per-network data orders (``_orders``), checkpoints, metrics and
divergence handling (a network whose loss, parameters or running statistics become non-finite is frozen at its last
finite values and flagged).

**BatchNorm in training mode.** :func:`block_forward_train` computes what
:func:`~scalegmn_lite.weightspace.block_weights.block_forward` computes, except that every BatchNorm1d normalizes
with the statistics of the minibatch, as ``nn.BatchNorm1d.train()`` does, each network with its own: for
``z [B, n, C]`` (MLP) or ``[B, n, C, L]`` (conv1d)

    ``mu_b = mean_{samples(, positions)} z_b``,  ``s2_b = mean (z_b - mu_b)^2`` (biased),
    ``bn(z_b) = gamma_b (z_b - mu_b) / sqrt(s2_b + eps) + beta_b``,

with gradients through ``mu_b`` and ``s2_b``. Dense layers use :func:`~scalegmn_lite.weightspace.block_parts.batchnorm`
with these statistics; convolutions one ``F.batch_norm(training=True)`` over ``B x C`` channels (channel ``(b, c)`` is
channel ``c`` of network ``b``; sample-major activations ``[n, B, C, L]``, so no copies). Either way the running
statistics move as PyTorch's (``momentum = 0.1``; the running variance takes the *unbiased* batch variance, ``m = n
(x L)`` values per channel):

    ``running_mean <- 0.9 running_mean + 0.1 mu_b``,  ``running_var <- 0.9 running_var + 0.1 s2_b m / (m - 1)``,

as new tensors, without gradient. The running statistics are buffers, not parameters: the optimizer (and its weight
decay) never sees them; ``gamma`` and ``beta`` are parameters like any weight (``torch.optim`` over
``module.parameters()`` decays them too). A minibatch with one value per channel (an MLP with BatchNorm and a
minibatch of one sample) is refused up front, as PyTorch refuses it. LayerNorm needs no batch statistics: it is the
same in both modes. Checkpoints hold every tensor of ``BlockWeights`` (running statistics included); their metrics
are eval-mode figures (running statistics, :func:`evaluate_blocks`).

Reference: :func:`~scalegmn_lite.zoo.train.train_loop`'s recipe with ``BlockWeights.to_module(b).train()`` and
``torch.optim`` gives the same networks (tests/test_block_zoo.py). With Adam, a layer's bias followed by a BatchNorm
has a zero gradient in exact arithmetic, so its Adam steps follow rounding noise: that bias (and the running mean
after it) differ between any two implementations, while the network's function does not depend on it in training
mode.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import torch
import torch.nn.functional as F

from ..weightspace.block_parts import Norm, ResidualBlock, batchnorm
from ..weightspace.block_weights import BlockWeights, _element, block_forward
from ..weightspace.blocks import BlockNetworkSpec
from ..weightspace.layer import LayerSpec, SpecError
from ..weightspace.weights import activation_fn
from .train import TrainResult, evaluate_chunked, run_epochs, training_setup

__all__ = ["BN_MOMENTUM", "block_forward_train", "evaluate_blocks", "forward_macs", "init_block_weights",
           "running_mask", "train_block_batched"]

#: PyTorch's BatchNorm momentum: the weight of the new batch statistics in the running estimate
BN_MOMENTUM = 0.1
_RUNNING = ("running_mean", "running_var")


def running_mask(spec: BlockNetworkSpec) -> tuple[bool, ...]:
    """Per tensor of ``spec.param_shapes``: ``True`` for a BatchNorm running statistic (a buffer, not trained)."""
    return tuple(name.rsplit(".", 1)[1] in _RUNNING for name, _ in spec.param_shapes)


def init_block_weights(spec: BlockNetworkSpec, seeds: Sequence[int], init_scale: torch.Tensor | float = 1.0,
                       device=None, dtype: torch.dtype = torch.float32) -> BlockWeights:
    """Initial block networks, as :func:`~scalegmn_lite.zoo.train.init_weights` does for chains.

    Network ``b`` draws every layer weight ``W ~ init_scale_b * N(0, 1/fan_in)`` (``fan_in = in x kernel``) in parameter
    order from a generator seeded with ``seeds[b]`` (float32 on CPU, so results do not depend on device or chunking);
    biases are 0, and every norm starts as PyTorch's: ``gamma = 1``, ``beta = 0``, ``running_mean = 0``,
    ``running_var = 1``.

    Args:
        spec: the block network.
        seeds: one seed per network.
        init_scale: a scalar or ``[B]`` multiplier of the weights.
    Returns:
        ``BlockWeights`` with ``B = len(seeds)`` networks.
    """
    B = len(seeds)
    scale = torch.as_tensor(init_scale, dtype=torch.float64).expand(B)
    shapes = spec.param_shapes
    out: list[list[torch.Tensor]] = [[] for _ in shapes]
    for b, s in enumerate(seeds):
        g = torch.Generator().manual_seed(int(s))
        for i, (name, shape) in enumerate(shapes):
            kind = name.rsplit(".", 1)[1]
            if kind == "weight":
                out[i].append(torch.randn(*shape, generator=g) * (float(scale[b]) / math.sqrt(math.prod(shape[1:]))))
            elif kind in ("gamma", "running_var"):
                out[i].append(torch.ones(shape))
            else:  # bias, beta, running_mean
                out[i].append(torch.zeros(shape))
    return BlockWeights(spec, [torch.stack(t) for t in out]).to(device=device, dtype=dtype)


# ---------------------------------------------------------------- training-mode forward
def _train_element(el, h: torch.Tensor, params, running: list, conv: bool, momentum: float) -> torch.Tensor:
    """One element in training mode. Dense activations are ``[B, N, C]`` (as in ``block_forward``), conv1d ones
    sample-major ``[N, B, C, L]``: one grouped convolution and one ``F.batch_norm`` over ``B x C`` channels read them
    without copies. BatchNorm appends its new ``running_mean, running_var [B, C]`` to ``running``."""
    if isinstance(el, ResidualBlock):
        y = h
        for e in el.branch:
            y = _train_element(e, y, params, running, conv, momentum)
        s = h
        for e in el.shortcut:
            s = _train_element(e, s, params, running, conv, momentum)
        return activation_fn(el.activation, el.activation_param)(y + s)
    if isinstance(el, Norm) and el.kind == "batchnorm":
        gamma, beta = next(params), next(params)
        mean, var = (next(params).detach() for _ in range(2))
        B = gamma.shape[0]
        if conv:  # [N, B, C, L]: one F.batch_norm over B x C channels (channel (b, c) is channel c of network b),
            # which also moves copies of the running statistics in place, exactly as nn.BatchNorm1d.train()
            mean, var = mean.reshape(-1).clone(), var.reshape(-1).clone()
            z = F.batch_norm(h.reshape(h.shape[0], -1, h.shape[-1]), mean, var, gamma.reshape(-1), beta.reshape(-1),
                             True, momentum, el.eps)
            h = z.reshape(h.shape)
            running += [mean.reshape(B, -1), var.reshape(B, -1)]
        else:  # [B, N, C]: the statistics over dim 1 of each network's own slab (F.batch_norm on [N, B x C] would
            # vectorize across networks, so a network's rounding would depend on how many train with it)
            mu = h.mean(1, keepdim=True)
            s2 = (h - mu).square().mean(1, keepdim=True)  # biased: what the normalization uses
            h = batchnorm(h, mu, s2, gamma.unsqueeze(1), beta.unsqueeze(1), el.eps)
            n = h.shape[1]
            with torch.no_grad():  # PyTorch's update, with the unbiased variance
                running += [mean * (1 - momentum) + mu.squeeze(1).detach() * momentum,
                            var * (1 - momentum) + s2.squeeze(1).detach() * (n / (n - 1)) * momentum]
        return activation_fn(el.activation, el.activation_param)(h)
    if conv:  # a Conv1d layer (LayerNorm follows dense layers only)
        w, b = next(params), next(params)
        N, B = h.shape[:2]
        z = F.conv1d(h.reshape(N, -1, h.shape[-1]), w.reshape(-1, *w.shape[2:]), b.reshape(-1), stride=el.stride,
                     padding=el.padding, groups=B)
        return activation_fn(el.activation, el.activation_param)(z.reshape(N, B, el.out_dim, -1))
    return _element(el, h, params, None, iter(()))  # a Linear layer or a LayerNorm: as block_forward


def block_forward_train(bw: BlockWeights, x: torch.Tensor, per_network: bool = False,
                        momentum: float = BN_MOMENTUM) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Training-mode forward of every network of ``bw``: each BatchNorm normalizes with each network's minibatch
    statistics (see the module docstring); the rest computes what
    :func:`~scalegmn_lite.weightspace.block_weights.block_forward` does.

    Args:
        bw: ``B`` networks.
        x: ``[N, *input_shape]`` for all networks, or ``[B, N, *input_shape]`` with ``per_network=True``.
        momentum: weight of the batch statistics in the new running statistics (PyTorch's 0.1).
    Returns:
        ``(logits [B, N, out], running)``: ``running`` holds the updated ``running_mean, running_var`` ``[B, C]`` of
        every BatchNorm in parameter order (new tensors, without gradient; ``bw`` is not modified).
    """
    spec, B = bw.spec, bw.batch_size
    conv = spec.family == "conv1d"
    if per_network and x.shape[0] != B:
        raise SpecError(f"per_network inputs need a leading axis of B={B} networks, got {tuple(x.shape)}")
    x = x.to(bw.dtype)
    if conv:
        if x.dim() != (4 if per_network else 3) or x.shape[-2] != spec.in_dim:
            raise SpecError(f"conv1d networks take inputs [N, C={spec.in_dim}, L] (or [B, N, C, L] with "
                            f"per_network=True); got {tuple(x.shape)}")
        h = x.transpose(0, 1).contiguous() if per_network else x.unsqueeze(1).expand(-1, B, -1, -1).contiguous()
    else:
        h = x if per_network else x.unsqueeze(0).expand(B, *x.shape)
        h = h.reshape(B, h.shape[1], -1)
        if h.shape[-1] != spec.in_dim:
            raise SpecError(f"inputs have {h.shape[-1]} features per sample, the network expects {spec.in_dim}")
    params, running = iter(bw.params), []
    for el in spec.blocks:
        if conv and el.kind == "linear":  # global average pooling, then the dense layout [B, N, C]
            h, conv = h.mean(-1).transpose(0, 1), False
        h = _train_element(el, h, params, running, conv, momentum)
    return (h.mean(-1).transpose(0, 1) if conv else h), running


def forward_macs(spec: BlockNetworkSpec) -> int:
    """Multiply-adds of one forward of one sample through the layers of a block network (a conv1d layer: its weight's
    size times its output length; norms, additions and pooling not counted): the block twin of the per-sample figure
    :func:`~scalegmn_lite.zoo.recipes.build_work` takes from a chain's weight shapes and spatial shapes.

    Args:
        spec: a block network (a conv1d one needs its ``input_shape``).
    Returns:
        The multiply-adds per sample.
    """
    if spec.family == "conv1d" and spec.input_shape is None:
        raise SpecError(f"{spec.to_text()!r}: forward_macs of a conv1d network needs its input shape (e.g. '1x40')")
    length = spec.input_shape[-1] if spec.family == "conv1d" else 1
    total = 0

    def walk(elements, length: int) -> int:
        nonlocal total
        for el in elements:
            if isinstance(el, ResidualBlock):
                out = walk(el.branch, length)
                walk(el.shortcut, length)
                length = out
            elif isinstance(el, LayerSpec):
                if el.kind == "conv1d":
                    (length,) = el.output_spatial((length,))
                else:
                    length = 1
                total += math.prod(el.weight_shape) * length
        return length

    walk(spec.blocks, length)
    return total


# ---------------------------------------------------------------- evaluation
def _sample_numel(spec: BlockNetworkSpec, sample_shape: tuple[int, ...]) -> int:
    """Every intermediate of one sample of one network, in elements (a generous bound of what a forward holds)."""
    length = sample_shape[-1] if spec.family == "conv1d" else 1
    total = math.prod(sample_shape)

    def walk(elements, length):
        nonlocal total
        for el in elements:
            if isinstance(el, ResidualBlock):
                out = walk(el.branch, length)
                walk(el.shortcut, length)
                total += el.out_dim * out
                length = out
            elif isinstance(el, LayerSpec) and el.kind == "conv1d":
                (length,) = el.output_spatial((length,))
                total += (el.in_dim * el.kernel_numel + 2 * el.out_dim) * length  # unfolded input, output
            else:  # a linear layer (after pooling: one position) or a norm (its layer's positions)
                length = 1 if isinstance(el, LayerSpec) else length
                total += 2 * el.out_dim * length
        return length

    walk(spec.blocks, length)
    return total


@torch.no_grad()
def evaluate_blocks(bw: BlockWeights, x: torch.Tensor, y: torch.Tensor, chunk: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode (running statistics) mean cross-entropy ``[B]`` and accuracy ``[B]`` of every network on
    ``(x [N, ...], y [N])`` with :func:`~scalegmn_lite.weightspace.block_weights.block_forward`, memory-bounded like
    :func:`~scalegmn_lite.zoo.train.evaluate`: samples in chunks that do not depend on ``B``, networks in groups
    (never a group of one), so a network's figures do not depend on which networks it is evaluated with.

    Args:
        bw: ``B`` networks.
        x, y: inputs and integer labels.
        chunk: samples per forward (default: a budget of ``2**25`` intermediate elements for one network).
    Returns:
        ``(loss [B], accuracy [B])`` in ``bw.dtype``.
    """
    return evaluate_chunked(bw, x, y, block_forward, _sample_numel(bw.spec, tuple(x.shape[1:])), chunk)


# ---------------------------------------------------------------- training
def train_block_batched(bw: BlockWeights, data, epochs: int, lr, weight_decay, batch_size: int, *,
                        seeds: Sequence[int] | None = None, generator: torch.Generator | None = None,
                        optimizer: str = "sgd", momentum: float = 0.9, checkpoint_epochs: Sequence[int] = (),
                        lr_schedule: str = "constant", progress: bool = True, max_steps: int | None = None,
                        desc: str = "train blocks") -> TrainResult:
    """Train all ``B`` block networks of ``bw`` together, BatchNorm in training mode (see the module docstring);
    the block twin of :func:`~scalegmn_lite.zoo.train.train_batched`, with the same arguments.

    Args:
        bw: initial networks (:func:`init_block_weights`), ``B`` of one spec.
        data: a :class:`~scalegmn_lite.zoo.data.Dataset` or ``(x_train, y_train[, x_test, y_test])``.
        epochs: passes over the training set (the last minibatch of an epoch may be smaller).
        lr, weight_decay: scalars or ``[B]`` tensors (per-network values; weight decay never touches running
            statistics).
        batch_size: minibatch size.
        seeds: per-network seeds of the data orders (``None``: one shared order per epoch from ``generator``).
        optimizer: ``"sgd"`` (momentum) or ``"adam"``.
        checkpoint_epochs: epochs after which every tensor (running statistics included) and the eval-mode metrics
            are recorded (``0``: the initial networks).
        lr_schedule: ``"constant"`` or ``"cosine"`` (:func:`~scalegmn_lite.zoo.train.lr_factor`).
        max_steps: stop after this many optimizer steps (for tests).
    Returns:
        A :class:`~scalegmn_lite.zoo.train.TrainResult` whose ``ws`` and ``checkpoints`` are ``BlockWeights``.
    """

    if not isinstance(bw, BlockWeights):
        raise TypeError(f"train_block_batched trains BlockWeights, got {type(bw).__name__}; chain networks "
                        "(WeightSpace) train with train_batched")
    if bw.batch_size == 1:  # as train_batched: train a copy alongside, so B = 1 takes the kernels of B > 1
        two = [torch.as_tensor(v, dtype=torch.float64).reshape(-1).expand(2) for v in (lr, weight_decay)]
        res = train_block_batched(BlockWeights.stack([bw, bw]), data, epochs, two[0], two[1], batch_size,
                                  seeds=None if seeds is None else list(seeds) * 2, generator=generator,
                                  optimizer=optimizer, momentum=momentum, checkpoint_epochs=checkpoint_epochs,
                                  lr_schedule=lr_schedule, progress=progress, max_steps=max_steps, desc=desc)
        return TrainResult(res.ws[:1], {e: w[:1] for e, w in res.checkpoints.items()},
                           {k: v[:, :1] for k, v in res.metrics.items()}, res.checkpoint_epochs, res.history[:, :1],
                           res.diverged[:1], res.seconds)
    t0 = time.perf_counter()
    spec = bw.spec
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"batch_size must be >= 1 and epochs >= 0, got {batch_size}, {epochs}")
    data, opt = training_setup(bw, data, seeds, lr, weight_decay, optimizer, momentum, lr_schedule)
    n = len(data[0])
    if spec.family == "mlp" and any(nm.kind == "batchnorm" for nm in spec.norms) and (n == 1 or n % batch_size == 1
                                                                                    or batch_size == 1):
        raise ValueError(f"{spec.to_text()!r} has BatchNorm, which in training mode needs more than one value per "
                         f"channel, but {n} training samples in minibatches of {batch_size} leave a minibatch of one "
                         "sample (PyTorch refuses it too); change batch_size or the training-set size")
    return run_epochs(list(bw.params), running_mask(spec), lambda ts: BlockWeights(spec, ts),
                      lambda cur, xb, per: block_forward_train(cur, xb, per_network=per), evaluate_blocks, opt,
                      data, epochs, batch_size, seeds, generator, checkpoint_epochs, progress, desc,
                      lr_schedule, max_steps, t0=t0)
