"""Weight spaces: an immutable container of the weights and biases of ``B`` networks that share
one :class:`~scalegmn_lite.weightspace.spec.NetworkSpec`, and a batched functional forward.

Shapes (``B`` networks, layer ``l`` with ``n_l`` outputs and ``n_{l-1}`` inputs):
    ``weights[l]``: ``[B, n_l, n_{l-1}, *kernel_size]`` (``[B, n_l, C, P]`` for a dense layer after
    ``Flatten``, see ``LayerSpec.flatten_size``);  ``biases[l]``: ``[B, n_l]``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .spec import NetworkSpec, SpecError

__all__ = ["WeightSpace", "NonFiniteWeightsError", "activation_fn", "batched_forward"]


class NonFiniteWeightsError(ValueError):
    """NaN or inf in weights or biases: they would silently poison every result. ``networks``
    holds the indices of the offending networks."""

    def __init__(self, message: str, networks: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.networks = list(networks)


def activation_fn(name: str | None, param: float | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Elementwise activation by name (``None``/``"identity"``: identity)."""
    if name is None or name == "identity":
        return lambda x: x
    if name == "relu":
        return F.relu
    if name == "leaky_relu":
        slope = 0.01 if param is None else param
        return lambda x: F.leaky_relu(x, slope)
    if name == "tanh":
        return torch.tanh
    if name == "sigmoid":
        return torch.sigmoid
    if name == "gelu":
        return F.gelu
    if name == "silu":
        return F.silu
    if name == "sine":
        w0 = 30.0 if param is None else param
        return lambda x: torch.sin(w0 * x)
    raise SpecError(f"unknown activation {name!r}")


@dataclass(frozen=True, eq=False)
class WeightSpace:
    """Weights and biases of ``B`` networks with the same structure (immutable).

    Use :meth:`map`, :meth:`to`, :meth:`detach`, arithmetic (``+``, ``-``, ``*`` by a scalar) and
    :meth:`replace_params` to derive new weight spaces; tensors are never modified in place by the
    library.
    """

    spec: NetworkSpec
    weights: tuple[torch.Tensor, ...]
    biases: tuple[torch.Tensor, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(self.weights))
        object.__setattr__(self, "biases", tuple(self.biases))
        L = self.spec.num_layers
        if len(self.weights) != L or len(self.biases) != L:
            raise SpecError(
                f"expected {L} weights and biases for {self.spec.to_text()!r}, "
                f"got {len(self.weights)} and {len(self.biases)}"
            )
        B = self.weights[0].shape[0] if self.weights[0].dim() > 0 else -1
        for l, (w, b, ws, bs) in enumerate(
            zip(self.weights, self.biases, self.spec.weight_shapes, self.spec.bias_shapes)
        ):
            if tuple(w.shape[1:]) != ws or w.shape[0] != B:
                raise SpecError(
                    f"layer {l}: weight has shape {tuple(w.shape)}, expected [B={B}, {', '.join(map(str, ws))}]"
                )
            if tuple(b.shape[1:]) != bs or b.shape[0] != B:
                raise SpecError(
                    f"layer {l}: bias has shape {tuple(b.shape)}, expected [B={B}, {', '.join(map(str, bs))}]"
                )

    # ------------------------------------------------------------------ basics
    @property
    def batch_size(self) -> int:
        return self.weights[0].shape[0]

    def __len__(self) -> int:
        return self.batch_size

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    def params(self) -> tuple[torch.Tensor, ...]:
        """``(W_1, b_1, W_2, b_2, ...)``."""
        out = []
        for w, b in zip(self.weights, self.biases):
            out += [w, b]
        return tuple(out)

    def replace_params(self, weights=None, biases=None) -> "WeightSpace":
        return WeightSpace(self.spec, self.weights if weights is None else weights,
                           self.biases if biases is None else biases)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "WeightSpace":
        """Apply ``fn`` to every weight and bias tensor."""
        return WeightSpace(self.spec, [fn(w) for w in self.weights], [fn(b) for b in self.biases])

    def map2(self, other: "WeightSpace", fn) -> "WeightSpace":
        self._check_compatible(other)
        return WeightSpace(
            self.spec,
            [fn(a, b) for a, b in zip(self.weights, other.weights)],
            [fn(a, b) for a, b in zip(self.biases, other.biases)],
        )

    def to(self, device=None, dtype=None) -> "WeightSpace":
        return self.map(lambda t: t.to(device=device, dtype=dtype))

    def detach(self) -> "WeightSpace":
        return self.map(lambda t: t.detach())

    def clone(self) -> "WeightSpace":
        return self.map(lambda t: t.clone())

    def requires_grad_(self, flag: bool = True) -> "WeightSpace":
        for t in self.params():
            t.requires_grad_(flag)
        return self

    def __add__(self, other: "WeightSpace") -> "WeightSpace":
        return self.map2(other, torch.add)

    def __sub__(self, other: "WeightSpace") -> "WeightSpace":
        return self.map2(other, torch.sub)

    def __mul__(self, scalar: float) -> "WeightSpace":
        return self.map(lambda t: t * scalar)

    __rmul__ = __mul__

    def lerp(self, other: "WeightSpace", alpha: float) -> "WeightSpace":
        """``(1 - alpha) * self + alpha * other``."""
        return self.map2(other, lambda a, b: torch.lerp(a, b, alpha))

    def _check_compatible(self, other: "WeightSpace") -> None:
        if other.spec.layers != self.spec.layers:
            raise SpecError(f"different structures: {self.spec.to_text()!r} vs {other.spec.to_text()!r}")

    def __getitem__(self, idx) -> "WeightSpace":
        """Select networks; an integer index keeps the batch axis (returns ``B = 1``)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        return self.map(lambda t: t[idx])

    @staticmethod
    def stack(items: Sequence["WeightSpace"]) -> "WeightSpace":
        """Concatenate weight spaces along the batch axis (same spec required)."""
        items = list(items)
        if not items:
            raise ValueError("stack needs at least one WeightSpace")
        for it in items[1:]:
            items[0]._check_compatible(it)
        L = items[0].spec.num_layers
        return WeightSpace(
            items[0].spec,
            [torch.cat([it.weights[l] for it in items]) for l in range(L)],
            [torch.cat([it.biases[l] for it in items]) for l in range(L)],
        )

    def allclose(self, other: "WeightSpace", rtol: float = 1e-5, atol: float = 1e-6) -> bool:
        self._check_compatible(other)
        return all(torch.allclose(a, b, rtol=rtol, atol=atol) for a, b in zip(self.params(), other.params()))

    def max_abs_diff(self, other: "WeightSpace") -> float:
        self._check_compatible(other)
        return max(float((a - b).abs().max()) for a, b in zip(self.params(), other.params()))

    # ------------------------------------------------------------------ checks
    def check_materialized(self, what: str = "weights") -> "WeightSpace":
        """Raise ``ValueError`` if the tensors live on the ``meta`` device (shapes, no values)."""
        if self.device.type == "meta":
            raise ValueError(
                f"{what}: the weights are on the 'meta' device (shapes only, no values), e.g. from a module built "
                "under torch.device('meta') or init_empty_weights; materialize them first: "
                "module.to_empty(device='cpu') then module.load_state_dict(state) (or reset_parameters())"
            )
        return self

    def finite_mask(self) -> torch.Tensor:
        """``[B]`` bool: ``True`` for networks whose weights and biases are all finite."""
        self.check_materialized()
        ok = torch.ones(self.batch_size, dtype=torch.bool, device=self.device)
        for t in self.params():
            ok &= torch.isfinite(t).flatten(1).all(1)
        return ok

    def nonfinite_networks(self) -> list[int]:
        """Indices of the networks with a NaN or inf weight or bias (``from_modules`` keeps them)."""
        return torch.nonzero(~self.finite_mask()).flatten().tolist()

    def check_finite(self, what: str = "weights", offset: int = 0) -> "WeightSpace":
        """Raise :class:`NonFiniteWeightsError` naming the networks (indices ``+ offset``) and layers
        with NaN/inf entries, and ``ValueError`` for ``meta`` tensors. Returns ``self``."""
        bad = self.nonfinite_networks()
        if bad:
            layers = [f"{l} {name}" for l, (w, b) in enumerate(zip(self.weights, self.biases))
                      for name, t in (("weight", w), ("bias", b)) if not bool(torch.isfinite(t).all())]
            nets = [i + offset for i in bad]
            raise NonFiniteWeightsError(
                f"{what}: {len(nets)} of {self.batch_size} networks have NaN/inf weights: networks "
                f"{nets[:20]}{'...' if len(nets) > 20 else ''} (layers {', '.join(layers)}); drop them "
                "(ws[ws.finite_mask()]), pass on_nonfinite='drop' where offered, or fix the run that produced them",
                nets,
            )
        return self

    # ------------------------------------------------------------------ flat view
    def flatten(self) -> torch.Tensor:
        """``[B, P]``: each network's parameters as ``W_1, b_1, W_2, b_2, ...`` (row-major)."""
        return torch.cat([t.reshape(self.batch_size, -1) for t in self.params()], dim=1)

    @classmethod
    def unflatten(cls, spec: NetworkSpec, flat: torch.Tensor) -> "WeightSpace":
        """Inverse of :meth:`flatten`."""
        if flat.dim() != 2 or flat.shape[1] != spec.num_params:
            raise SpecError(
                f"expected a [B, {spec.num_params}] tensor for {spec.to_text()!r}, got {tuple(flat.shape)}"
            )
        B, out, i = flat.shape[0], [], 0
        for ws, bs in zip(spec.weight_shapes, spec.bias_shapes):
            for shape in (ws, bs):
                n = math.prod(shape)
                out.append(flat[:, i : i + n].reshape(B, *shape))
                i += n
        return cls(spec, out[0::2], out[1::2])

    # ------------------------------------------------------------------ constructors
    @classmethod
    def zeros(cls, spec: NetworkSpec, batch_size: int, device=None, dtype=torch.float32) -> "WeightSpace":
        return cls(
            spec,
            [torch.zeros(batch_size, *s, device=device, dtype=dtype) for s in spec.weight_shapes],
            [torch.zeros(batch_size, *s, device=device, dtype=dtype) for s in spec.bias_shapes],
        )

    @classmethod
    def randn(cls, spec: NetworkSpec, batch_size: int, generator: torch.Generator | None = None,
              device=None, dtype=torch.float32, bias_std: float = 0.1) -> "WeightSpace":
        """Random networks, weights ~ N(0, 1/fan_in) and biases ~ N(0, bias_std^2)."""
        ws, bs = [], []
        for layer in spec.layers:
            fan_in = layer.in_dim * layer.kernel_numel
            w = torch.randn(batch_size, *layer.weight_shape, generator=generator, dtype=dtype)
            ws.append((w / math.sqrt(fan_in)).to(device))
            bs.append((torch.randn(batch_size, layer.out_dim, generator=generator, dtype=dtype) * bias_std).to(device))
        return cls(spec, ws, bs)

    @classmethod
    def from_modules(cls, modules: Iterable[nn.Module], spec: NetworkSpec | None = None) -> "WeightSpace":
        """Stack the parameters of ``torch.nn.Sequential`` models with one structure."""
        modules = list(modules)
        if not modules:
            raise ValueError("from_modules needs at least one module")
        spec = spec or NetworkSpec.from_sequential(modules[0])
        weights = [[] for _ in spec.layers]
        biases = [[] for _ in spec.layers]
        for m in modules:
            other = NetworkSpec.from_sequential(m, spec.input_shape)
            if other.layers != spec.layers:
                raise SpecError(f"module has structure {other.to_text()!r}, expected {spec.to_text()!r}")
            params = [p for p in m.modules() if isinstance(p, (nn.Linear, nn.Conv1d, nn.Conv2d))]
            for l, p in enumerate(params):  # a Linear after Flatten: [out, C*P] -> [out, C, P]
                weights[l].append(p.weight.detach().reshape(spec.layers[l].weight_shape))
                biases[l].append(p.bias.detach())
        return cls(spec, [torch.stack(w) for w in weights], [torch.stack(b) for b in biases])

    @classmethod
    def from_module(cls, module: nn.Module, input_shape=None) -> "WeightSpace":
        return cls.from_modules([module], NetworkSpec.from_sequential(module, input_shape))

    def to_module(self, index: int = 0) -> nn.Sequential:
        """Network ``index`` as a ``torch.nn.Sequential`` (a copy of its parameters)."""
        module = self.spec.build_module().to(device=self.device, dtype=self.dtype)
        params = [p for p in module.modules() if isinstance(p, (nn.Linear, nn.Conv1d, nn.Conv2d))]
        with torch.no_grad():
            for l, p in enumerate(params):
                p.weight.copy_(self.weights[l][index].reshape(p.weight.shape))
                p.bias.copy_(self.biases[l][index])
        return module

    def to_modules(self) -> list[nn.Sequential]:
        return [self.to_module(i) for i in range(self.batch_size)]

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, per_network: bool = False, check: bool = False) -> torch.Tensor:
        """Evaluate all ``B`` networks in one batched computation (see :func:`batched_forward`)."""
        if check:
            self.check_finite()
        return batched_forward(self, x, per_network)

    __call__ = forward

    def __repr__(self) -> str:
        return f"WeightSpace({self.spec.to_text()!r}, B={self.batch_size}, dtype={self.dtype}, device={self.device})"


class _Im2Col(torch.autograd.Function):
    """im2col ``[B, C, N, *S] -> [B, C*k, N*P]`` (column order ``(channel, *kernel)``, matching
    ``weight.reshape(B, O, -1)``; position order ``(sample, *out_spatial)``): the ``k`` shifted, strided
    slices copied into the columns. Backward (col2im) adds the ``k`` column blocks back into the same
    slices, cheaper than the autograd of ``Tensor.unfold`` views (``unfold_backward``)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, k: tuple[int, ...], s: int, out: tuple[int, ...]) -> torch.Tensor:
        B, C, N = h.shape[:3]
        cols = h.new_empty(B, C, *k, N, *out)
        for off in itertools.product(*(range(kk) for kk in k)):
            cols[(slice(None), slice(None), *off)] = h[(Ellipsis, *_tap_slices(off, s, out))]
        ctx.meta = (tuple(h.shape), k, s, out)
        return cols.view(B, C * math.prod(k), N * math.prod(out))

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        shape, k, s, out = ctx.meta
        g = g.reshape(*shape[:2], *k, shape[2], *out)
        gh = g.new_zeros(shape)
        for off in itertools.product(*(range(kk) for kk in k)):
            gh[(Ellipsis, *_tap_slices(off, s, out))] += g[(slice(None), slice(None), *off)]
        return gh, None, None, None


def _tap_slices(off: tuple[int, ...], s: int, out: tuple[int, ...]) -> tuple[slice, ...]:
    """Input positions ``off + s * j`` (``j < out``) read by kernel tap ``off``, per spatial axis."""
    return tuple(slice(o, o + s * (n - 1) + 1, s) for o, n in zip(off, out))


def _conv_features(h: torch.Tensor, convs, B: int) -> torch.Tensor:
    """The convolutional part of ``B`` networks: ``[B, N, C, *spatial] -> [B, N, C_last]`` when the
    last convolution is pooled, ``[B, N, C_last * P]`` (channel-major, like ``nn.Flatten``) when it is
    flattened into a dense layer.

    Each layer computes ``out_b[n, o, j] = bias_b[o] + sum_{c, t} W_b[o, c, t] h_b[n, c, s*j + t]``
    (cross-correlation with stride ``s``, zero padding), then the activation; global average pooling
    ends the block. Two exact formulations, chosen by what is fastest on CPU for the zoo architectures
    (``benchmarks/bench_conv_forms.py``, one training step at B=256, N=64 on 1 thread):

    * conv2d: one grouped convolution (``groups=B``) on ``[N, B*C, H, W]``; network ``b`` owns channels
      ``b*C .. (b+1)*C - 1`` and its kernel is block ``b`` of ``[B*O, C, kh, kw]`` (about 4x faster than
      im2col + einsum);
    * conv1d: activations ``[B, C, N, L]``, im2col ``[B, C*k, N*P]`` (:class:`_Im2Col`) and one ``baddbmm``
      whose output ``[B, O, N*P]`` is already the next layer's layout (about 1.7-2x faster than
      im2col + einsum; grouped conv1d is no faster than that).
    """
    N = h.shape[1]
    grouped = convs[0][0].kind == "conv2d"
    h = h.transpose(0, 1).reshape(N, -1, *h.shape[3:]) if grouped else h.transpose(1, 2)
    sp = 2 if grouped else 3  # first spatial axis
    for layer, w, b in convs:
        k, s, p = layer.kernel_size, layer.stride, layer.padding
        if any(h.shape[sp + i] + 2 * p < k[i] for i in range(len(k))):
            raise SpecError(f"input of spatial size {tuple(h.shape[sp:])} is smaller than the kernel {k}")
        if grouped:  # [N, B*C, *S] -> [N, B*O, *S']
            conv = F.conv1d if layer.kind == "conv1d" else F.conv2d
            h = conv(h, w.reshape(-1, *w.shape[2:]), b.reshape(-1), stride=s, padding=p, groups=B)
        else:  # [B, C, N, *S] -> [B, O, N, *S']
            if p:
                h = F.pad(h, (p,) * (2 * len(k)))
            out = tuple((n - kk) // s + 1 for n, kk in zip(h.shape[3:], k))
            cols = _Im2Col.apply(h, k, s, out)  # [B, C*k, N*P]
            h = torch.baddbmm(b.unsqueeze(2), w.reshape(B, layer.out_dim, -1), cols).view(B, -1, N, *out)
        h = activation_fn(layer.activation, layer.activation_param)(h)
    if not convs[-1][0].pool_after:  # Flatten: [B, N, C_last * P]
        if grouped:
            return h.reshape(N, B, -1).transpose(0, 1)
        return h.transpose(1, 2).reshape(B, N, -1)
    if grouped:
        return h.flatten(2).mean(-1).view(N, B, -1).transpose(0, 1)  # [B, N, C_last]
    return h.flatten(3).mean(-1).transpose(1, 2)


def batched_forward(ws: WeightSpace, x: torch.Tensor, per_network: bool = False) -> torch.Tensor:
    """Outputs of every network in ``ws`` on inputs ``x`` in one computation (no loop over nets).

    Args:
        ws: ``B`` networks.
        x: ``[N, *input_shape]``, the same data for every network, or ``[B, N, *input_shape]``
            with ``per_network=True``. MLPs flatten each sample; convolutions take
            ``[.., C, L]`` or ``[.., C, H, W]``.
    Returns:
        ``[B, N, n_L]``.
    """
    spec, B = ws.spec, ws.batch_size
    first = spec.layers[0]
    if per_network:
        if x.shape[0] != B:
            raise SpecError(f"per_network inputs need a leading axis of B={B} networks, got {tuple(x.shape)}")
        h = x
    else:
        h = x.unsqueeze(0).expand(B, *x.shape)
    if first.kind == "linear":
        h = h.reshape(B, h.shape[1], -1)
        if h.shape[-1] != first.in_dim:
            raise SpecError(f"inputs have {h.shape[-1]} features per sample, the network expects {first.in_dim}")
    else:
        want = 4 if first.kind == "conv1d" else 5
        if h.dim() != want:
            raise SpecError(
                f"{first.kind} networks take inputs [N, C, *spatial] (or [B, N, C, *spatial] with "
                f"per_network=True); got {tuple(x.shape)}"
            )
        if h.shape[2] != first.in_dim:
            raise SpecError(f"inputs have {h.shape[2]} channels, the network expects {first.in_dim}")
    h = h.to(ws.dtype)
    layers = list(zip(spec.layers, ws.weights, ws.biases))
    n_conv = sum(layer.is_conv for layer in spec.layers)  # convolutions come first, then pooling/Flatten
    if n_conv:
        h = _conv_features(h, layers[:n_conv], B)  # [B, N, C]
    for layer, w, b in layers[n_conv:]:
        if h.shape[-1] != layer.fan_in:  # only possible after Flatten (then fan_in = C * P)
            raise SpecError(
                f"the convolutions output {h.shape[-1] // layer.in_dim} positions per channel but the Linear "
                f"after Flatten expects flatten_size={layer.flatten_size}; the inputs {tuple(x.shape)} have the "
                f"wrong spatial size for this network (set input_shape in the spec to have it checked)"
            )
        h = torch.baddbmm(b.unsqueeze(1), h, w.reshape(B, layer.out_dim, -1).transpose(1, 2))  # [B, N, out]
        h = activation_fn(layer.activation, layer.activation_param)(h)
    return h
