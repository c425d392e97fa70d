"""The parameters of ``B`` block networks that share one
:class:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec` (immutable), and their batched functional forward.

``params`` is a flat tuple in the order of ``spec.param_shapes`` (names like ``"0.weight"``, ``"1.running_var"``,
``"2.branch.0.weight"``, ``"2.shortcut.1.gamma"``), each tensor ``[B, *shape]``:

    layer: ``weight [B, out, in(, k)]``, ``bias [B, out]``;  BatchNorm1d: ``gamma, beta, running_mean, running_var``
    ``[B, C]``;  LayerNorm: ``gamma, beta [B, C]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .block_modules import module_tensors
from .block_parts import Norm, batchnorm, layernorm
from .blocks import BlockNetworkSpec
from .layer import LayerSpec, SpecError
from .weights import NonFiniteWeightsError, activation_fn

__all__ = ["BlockWeights", "block_forward"]

Tensor = torch.Tensor


@dataclass(frozen=True, eq=False)
class BlockWeights:
    """Parameters of ``B`` block networks with the same structure; derive new ones with :meth:`map`,
    :meth:`replace_params`, arithmetic and the gauge (:mod:`.block_gauge`), never in place."""

    spec: BlockNetworkSpec
    params: tuple[Tensor, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        shapes = self.spec.param_shapes
        if len(self.params) != len(shapes):
            raise SpecError(f"{self.spec.to_text()!r} has {len(shapes)} parameter tensors "
                            f"({', '.join(n for n, _ in shapes)}), got {len(self.params)}")
        B = self.params[0].shape[0] if self.params[0].dim() else -1
        for t, (name, shape) in zip(self.params, shapes):
            if t.dim() == 0 or t.shape[0] != B or tuple(t.shape[1:]) != shape:
                raise SpecError(f"{name} has shape {tuple(t.shape)}, expected [B={B}, {', '.join(map(str, shape))}]")

    # ------------------------------------------------------------------ basics
    @property
    def batch_size(self) -> int:
        return self.params[0].shape[0]

    def __len__(self) -> int:
        return self.batch_size

    @property
    def device(self) -> torch.device:
        return self.params[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.params[0].dtype

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.spec.param_shapes)

    def named(self) -> dict[str, Tensor]:
        """``{name: tensor}`` in parameter order."""
        return dict(zip(self.names, self.params))

    def param(self, name: str) -> Tensor:
        named = self.named()
        if name not in named:
            raise KeyError(f"no parameter {name!r}; the parameters are {list(named)}")
        return named[name]

    def replace_params(self, updates: dict[str, Tensor]) -> "BlockWeights":
        """A copy with the named tensors replaced."""
        named = self.named()
        unknown = set(updates) - set(named)
        if unknown:
            raise KeyError(f"no parameters {sorted(unknown)}; the parameters are {list(named)}")
        return BlockWeights(self.spec, [updates.get(n, t) for n, t in named.items()])

    def map(self, fn: Callable[[Tensor], Tensor]) -> "BlockWeights":
        return BlockWeights(self.spec, [fn(t) for t in self.params])

    def map2(self, other: "BlockWeights", fn: Callable[[Tensor, Tensor], Tensor]) -> "BlockWeights":
        self._check_compatible(other)
        return BlockWeights(self.spec, [fn(a, b) for a, b in zip(self.params, other.params)])

    def to(self, device=None, dtype=None) -> "BlockWeights":
        return self.map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self) -> "BlockWeights":
        return self.map(lambda t: t.detach())

    def clone(self) -> "BlockWeights":
        return self.map(lambda t: t.clone())

    def __add__(self, other: "BlockWeights") -> "BlockWeights":
        return self.map2(other, torch.add)

    def __sub__(self, other: "BlockWeights") -> "BlockWeights":
        return self.map2(other, torch.sub)

    def __mul__(self, scalar: float) -> "BlockWeights":
        return self.map(lambda t: t * scalar)

    __rmul__ = __mul__

    def _check_compatible(self, other: "BlockWeights") -> None:
        if other.spec != self.spec:
            raise SpecError(f"different structures: {self.spec.to_text()!r} vs {other.spec.to_text()!r}")

    def __getitem__(self, idx) -> "BlockWeights":
        """Select networks; an integer keeps the batch axis (``B = 1``)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        return self.map(lambda t: t[idx])

    @staticmethod
    def stack(items: Sequence["BlockWeights"]) -> "BlockWeights":
        """Concatenate along the batch axis (same spec)."""
        items = list(items)
        if not items:
            raise ValueError("stack needs at least one BlockWeights")
        for it in items[1:]:
            items[0]._check_compatible(it)
        return BlockWeights(items[0].spec, [torch.cat(ts) for ts in zip(*(it.params for it in items))])

    def allclose(self, other: "BlockWeights", rtol: float = 1e-5, atol: float = 1e-6) -> bool:
        self._check_compatible(other)
        return all(torch.allclose(a, b, rtol=rtol, atol=atol) for a, b in zip(self.params, other.params))

    def max_abs_diff(self, other: "BlockWeights") -> float:
        self._check_compatible(other)
        return max(float((a - b).abs().max()) for a, b in zip(self.params, other.params))

    # ------------------------------------------------------------------ checks
    def check_materialized(self, what: str = "weights") -> "BlockWeights":
        """Raise ``ValueError`` if the tensors live on the ``meta`` device (shapes, no values)."""
        if self.device.type == "meta":
            raise ValueError(
                f"{what}: the block weights are on the 'meta' device (shapes only, no values); materialize them "
                "first (module.to_empty(device='cpu') then module.load_state_dict(state))"
            )
        return self

    def finite_mask(self) -> Tensor:
        """``[B]`` bool: ``True`` for networks whose parameters (and BatchNorm statistics) are all finite."""
        self.check_materialized()
        ok = torch.ones(self.batch_size, dtype=torch.bool, device=self.device)
        for t in self.params:
            ok &= torch.isfinite(t).reshape(self.batch_size, -1).all(1)
        return ok

    def nonfinite_networks(self) -> list[int]:
        """Indices of the networks with a NaN or inf parameter."""
        return torch.nonzero(~self.finite_mask()).flatten().tolist()

    def check_finite(self, what: str = "weights", offset: int = 0) -> "BlockWeights":
        """Raise :class:`~scalegmn_lite.weightspace.weights.NonFiniteWeightsError` naming the networks (indices
        ``+ offset``) and parameters with NaN/inf entries, and ``ValueError`` for ``meta`` tensors. Returns ``self``."""
        bad = self.nonfinite_networks()
        if bad:
            names = [n for n, t in zip(self.names, self.params) if not bool(torch.isfinite(t).all())]
            nets = [i + offset for i in bad]
            raise NonFiniteWeightsError(
                f"{what}: {len(nets)} of {self.batch_size} networks have NaN/inf parameters: networks "
                f"{nets[:20]}{'...' if len(nets) > 20 else ''} (parameters {', '.join(names)}); drop them "
                "(bw[bw.finite_mask()]), pass on_nonfinite='drop' where offered, or fix the run that produced them",
                nets,
            )
        return self

    # ------------------------------------------------------------------ flat view
    def flatten(self) -> Tensor:
        """``[B, P]``: every network's tensors in parameter order, row-major."""
        return torch.cat([t.reshape(self.batch_size, -1) for t in self.params], dim=1)

    @classmethod
    def unflatten(cls, spec: BlockNetworkSpec, flat: Tensor) -> "BlockWeights":
        """Inverse of :meth:`flatten`."""
        if flat.dim() != 2 or flat.shape[1] != spec.num_params:
            raise SpecError(f"expected a [B, {spec.num_params}] tensor for {spec.to_text()!r}, got "
                            f"{tuple(flat.shape)}")
        sizes = [math.prod(shape) for _, shape in spec.param_shapes]
        parts = torch.split(flat, sizes, dim=1)
        return cls(spec, [p.reshape(flat.shape[0], *shape) for p, (_, shape) in zip(parts, spec.param_shapes)])

    # ------------------------------------------------------------------ constructors
    @classmethod
    def randn(cls, spec: BlockNetworkSpec, batch_size: int, generator: torch.Generator | None = None, device=None,
              dtype: torch.dtype = torch.float32, bias_std: float = 0.1) -> "BlockWeights":
        """Random networks: weights ``N(0, 1/fan_in)``, biases ``N(0, bias_std^2)``, ``gamma ~ 1 + 0.3 N``,
        ``beta, running_mean ~ 0.3 N``, ``running_var ~ exp(0.5 N)`` (so normalized values are roughly standard)."""
        out = []
        for name, shape in spec.param_shapes:
            t = torch.randn(batch_size, *shape, generator=generator, dtype=dtype)
            kind = name.rsplit(".", 1)[1]
            if kind == "weight":
                t = t / math.sqrt(math.prod(shape[1:]))
            elif kind == "bias":
                t = t * bias_std
            elif kind == "gamma":
                t = 1 + 0.3 * t
            elif kind == "running_var":
                t = torch.exp(0.5 * t)
            else:
                t = 0.3 * t
            out.append(t.to(device))
        return cls(spec, out)

    @classmethod
    def from_modules(cls, modules: Iterable[nn.Module], spec: BlockNetworkSpec | None = None,
                     input_shape: Sequence[int] | None = None) -> "BlockWeights":
        """Stack the parameters (and BatchNorm running statistics) of ``nn.Sequential`` block networks with one
        structure (``BlockNetworkSpec.from_module``; BatchNorm must be in eval mode)."""
        modules = list(modules)
        if not modules:
            raise ValueError("from_modules needs at least one module")
        spec = spec or BlockNetworkSpec.from_module(modules[0], input_shape)
        stacks: list[list[Tensor]] = [[] for _ in spec.param_shapes]
        for m in modules:
            other = BlockNetworkSpec.from_module(m, spec.input_shape)
            if other.blocks != spec.blocks:
                raise SpecError(f"module has structure {other.to_text()!r}, expected {spec.to_text()!r}")
            for stack, t, (_, shape) in zip(stacks, module_tensors(m), spec.param_shapes):
                stack.append(t.detach().reshape(shape))
        return cls(spec, [torch.stack(s) for s in stacks])

    @classmethod
    def from_module(cls, module: nn.Module, input_shape: Sequence[int] | None = None) -> "BlockWeights":
        return cls.from_modules([module], input_shape=input_shape)

    def to_module(self, index: int = 0) -> nn.Sequential:
        """Network ``index`` as an ``nn.Sequential`` in eval mode (a copy of its tensors)."""
        module = self.spec.to_module().to(device=self.device, dtype=self.dtype)
        with torch.no_grad():
            for dst, src in zip(module_tensors(module), self.params):
                dst.copy_(src[index].reshape(dst.shape))
        return module

    def to_modules(self) -> list[nn.Sequential]:
        return [self.to_module(i) for i in range(self.batch_size)]

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, per_network: bool = False, eps: float | None = None,
                shortcut_weights: Sequence[Tensor | float | None] | None = None) -> Tensor:
        """All ``B`` networks at once (:func:`block_forward`)."""
        return block_forward(self, x, per_network, eps, shortcut_weights)

    __call__ = forward

    def __repr__(self) -> str:
        return f"BlockWeights({self.spec.to_text()!r}, B={self.batch_size}, dtype={self.dtype}, device={self.device})"


def _channels(t: Tensor, h: Tensor) -> Tensor:
    """A per-channel ``[B, C]`` (or ``[C]``, or scalar) tensor viewed to broadcast against ``h [B, N, C(, L)]``."""
    t = torch.as_tensor(t, dtype=h.dtype, device=h.device)
    if t.dim() == 0:
        return t
    return t.reshape(t.shape[0] if t.dim() == 2 else 1, 1, t.shape[-1], *([1] * (h.dim() - 3)))


def _element(el, h: Tensor, params: Iterator[Tensor], eps: float | None, shortcuts: Iterator) -> Tensor:
    if isinstance(el, LayerSpec):
        w, b = next(params), next(params)
        B, N = h.shape[:2]
        if el.is_conv:  # one grouped convolution: network b owns channels b*C .. (b+1)*C - 1
            z = F.conv1d(h.transpose(0, 1).reshape(N, -1, h.shape[-1]), w.reshape(-1, *w.shape[2:]), b.reshape(-1),
                         stride=el.stride, padding=el.padding, groups=B)
            h = z.reshape(N, B, el.out_dim, -1).transpose(0, 1)
        else:
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
    elif isinstance(el, Norm):
        gamma, beta = _channels(next(params), h), _channels(next(params), h)
        e = el.eps if eps is None else eps
        if el.kind == "batchnorm":
            mean, var = _channels(next(params), h), _channels(next(params), h)
            h = batchnorm(h, mean, var, gamma, beta, e)
        else:
            h = layernorm(h, gamma, beta, e)
    else:
        y = h
        for e in el.branch:
            y = _element(e, y, params, eps, shortcuts)
        if el.is_identity:
            weight = next(shortcuts, None)
            s = h if weight is None else h * _channels(weight, h)
        else:
            s = h
            for e in el.shortcut:
                s = _element(e, s, params, eps, shortcuts)
        h = y + s
    return activation_fn(el.activation, el.activation_param)(h)


def block_forward(bw: BlockWeights, x: Tensor, per_network: bool = False, eps: float | None = None,
                  shortcut_weights: Sequence[Tensor | float | None] | None = None) -> Tensor:
    """Outputs ``[B, N, out]`` of every network of ``bw`` in one computation.

    Args:
        x: ``[N, *input_shape]`` for all networks (an MLP flattens each sample; conv1d takes ``[N, C, L]``), or
            ``[B, N, *input_shape]`` with ``per_network=True``.
        eps: overrides every norm's ``eps`` (``0.0`` for exact gauge checks); ``None`` keeps the spec's.
        shortcut_weights: the constant weight of each identity shortcut (default 1): one entry per identity-shortcut
            block in order, ``None``, a float, ``[C]`` or ``[B, C]``. ``0`` gives the plain twin (no shortcut).
    """
    spec, B = bw.spec, bw.batch_size
    conv = spec.family == "conv1d"
    if per_network and x.shape[0] != B:
        raise SpecError(f"per_network inputs need a leading axis of B={B} networks, got {tuple(x.shape)}")
    h = x if per_network else x.unsqueeze(0).expand(B, *x.shape)
    if conv:
        if h.dim() != 4 or h.shape[2] != spec.in_dim:
            raise SpecError(f"conv1d networks take inputs [N, C={spec.in_dim}, L] (or [B, N, C, L] with "
                            f"per_network=True); got {tuple(x.shape)}")
    else:
        h = h.reshape(B, h.shape[1], -1)
        if h.shape[-1] != spec.in_dim:
            raise SpecError(f"inputs have {h.shape[-1]} features per sample, the network expects {spec.in_dim}")
    n_identity = sum(b.is_identity for b in spec.residual_blocks)
    if shortcut_weights is not None and len(shortcut_weights) != n_identity:
        raise SpecError(f"shortcut_weights needs one entry per identity-shortcut block ({n_identity}), got "
                        f"{len(shortcut_weights)}")
    params, shortcuts = iter(bw.params), iter(shortcut_weights or ())
    h = h.to(bw.dtype)
    for el in spec.blocks:
        if conv and el.kind == "linear":  # global average pooling
            h, conv = h.mean(-1), False
        h = _element(el, h, params, eps, shortcuts)
    return h.mean(-1) if conv else h
