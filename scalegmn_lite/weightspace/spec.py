"""The one source of truth for a network's structure and the symmetry of each hidden layer.

A :class:`NetworkSpec` is a frozen description of a feed-forward network: a sequence of
:class:`LayerSpec` (dense or convolutional layers, each followed by an optional activation and,
for the last convolution, a global average pooling or a ``Flatten`` into the first dense layer).
Every layer has its own kernel, stride, padding and activation. The symbolic derivations, the gauge
group action, the graph builder, the metanetwork layers and the tests all read it; its text form
(:meth:`NetworkSpec.to_text`, :mod:`~scalegmn_lite.weightspace.spec_text`) describes any of them.

Symmetry of hidden layer ``l`` (the output neurons/channels of layer ``l`` for ``l < L-1``) is
decided by the activation that follows layer ``l``:

=====================  ===============================  ==========================
activation             scalings ``q`` with             symmetry
                       ``sigma(q x) = q sigma(x)``
=====================  ===============================  ==========================
relu, leaky_relu       ``q > 0``                        ``Symmetry.POSITIVE_SCALE``
identity (none)        ``q != 0`` (we use ``q > 0``)    ``Symmetry.POSITIVE_SCALE``
tanh, sine             ``q = +-1``                      ``Symmetry.SIGN``
sigmoid, gelu, silu    ``q = 1``                        ``Symmetry.PERMUTATION``
=====================  ===============================  ==========================

Permutations of hidden neurons (channels for convolutions) are symmetries in every case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from .block_text import is_block_text
from .layer import (  # noqa: F401  (DEFAULT_ACTIVATION_PARAM is re-exported)
    ACTIVATIONS,
    DEFAULT_ACTIVATION_PARAM,
    SUPPORTED_MODULES,
    LayerSpec,
    SpecError,
    Symmetry,
    symmetry_of,
)
from .modules import layers_to_module, module_to_layers
from .spec_text import format_spec, parse_spec

__all__ = [
    "Symmetry",
    "ACTIVATIONS",
    "SUPPORTED_MODULES",
    "LayerSpec",
    "NetworkSpec",
    "SpecError",
    "symmetry_of",
]


@dataclass(frozen=True)
class NetworkSpec:
    """A feed-forward network: layers ``1..L`` with widths ``n_0 .. n_L``.

    Input neurons (``n_0``) and output neurons (``n_L``) are fixed by the gauge group; each hidden
    layer ``l = 1..L-1`` has a permutation and a scaling whose kind is ``symmetries[l-1]``.

    Supported layouts: dense layers (MLP); or convolutions of one kind (each with its own kernel,
    stride, padding and activation) followed by either global average pooling (``pool_after`` on
    the last one) or ``Flatten`` into the first dense layer (``flatten_size`` on that layer, the
    positions per channel), then dense layers. A network may end in pooling.

    Attributes:
        layers: the dense/conv layers in order.
        input_shape: shape of one input sample without the batch axis, e.g. ``(64,)``,
            ``(1, 40)`` for conv1d, ``(1, 8, 8)`` for conv2d. ``None`` if unknown (set to
            ``(n_0,)`` for MLPs). When known it is checked against the layers: channels, kernels
            that fit, and the ``flatten_size`` of a LeNet-style network (the conv output's
            ``H*W`` from the strides and paddings).
    """

    layers: tuple[LayerSpec, ...]
    input_shape: tuple[int, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        if not layers:
            raise SpecError("a network needs at least one Linear or Conv layer")
        if not all(isinstance(layer, LayerSpec) for layer in layers):
            raise SpecError("NetworkSpec.layers must be LayerSpec objects")
        if self.input_shape is None and not layers[0].is_conv:
            object.__setattr__(self, "input_shape", (layers[0].in_dim,))
        if layers[0].is_flatten:
            raise SpecError("the first layer cannot read flattened conv features (flatten_size); describe the "
                            "input with input_shape instead")
        for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
            if a.out_dim != b.in_dim:
                raise SpecError(
                    f"mismatched shapes: layer {i} ({a.kind}) has {a.out_dim} outputs but layer "
                    f"{i + 1} ({b.kind}) expects {b.in_dim} inputs"
                )
            if b.is_conv:
                if not a.is_conv:
                    raise SpecError(f"layer {i + 1}: a convolution cannot follow a Linear layer")
                if a.pool_after:
                    raise SpecError(f"layer {i + 1}: a convolution cannot follow global pooling")
                if a.kind != b.kind:
                    raise SpecError(f"layer {i + 1}: cannot mix {a.kind} and {b.kind}")
            elif a.is_conv and not a.pool_after and not b.is_flatten:
                raise SpecError(
                    f"layer {i + 1} is Linear after a {a.kind} without pooling or flattening; insert "
                    "AdaptiveAvgPool(1) + Flatten, or Flatten (LayerSpec(..., flatten_size=H*W))"
                )
            elif b.is_flatten and not (a.is_conv and not a.pool_after):
                raise SpecError(f"layer {i + 1} has flatten_size but does not follow an unpooled convolution")
        if layers[-1].is_conv and not layers[-1].pool_after:
            raise SpecError(
                "the network ends in a convolution without global pooling; end with "
                "AdaptiveAvgPool(1) + Flatten (+ Linear), or Flatten + Linear, so the output is a vector"
            )
        self._check_input_shape()

    def _check_input_shape(self) -> None:
        shape, first = self.input_shape, self.layers[0]
        if shape is None:
            return
        if any(s < 1 for s in shape):
            raise SpecError(f"input_shape {shape} has a non-positive size")
        if not first.is_conv:
            if math.prod(shape) != first.in_dim:
                raise SpecError(f"input_shape {shape} has {math.prod(shape)} entries, the first Linear layer "
                                f"takes {first.in_dim}")
            return
        ndim = len(first.kernel_size)
        if len(shape) != ndim + 1 or shape[0] != first.in_dim:
            raise SpecError(f"a {first.kind} network with {first.in_dim} input channels needs input_shape "
                            f"(C={first.in_dim}, {'L' if ndim == 1 else 'H, W'}), got {shape}")
        self.spatial_shapes()  # raises if a kernel does not fit

    # ------------------------------------------------------------------ structure
    def spatial_shapes(self) -> tuple[tuple[int, ...], ...] | None:
        """Output spatial shape of every layer (``()`` for dense layers and after pooling), from
        ``input_shape`` and the kernels, strides and paddings; ``None`` if ``input_shape`` is unknown.
        Raises :class:`SpecError` if a kernel does not fit or a ``flatten_size`` disagrees."""
        if self.input_shape is None:
            return None
        spatial = tuple(self.input_shape[1:]) if self.layers[0].is_conv else ()
        out = []
        for i, layer in enumerate(self.layers):
            if layer.is_flatten and layer.flatten_size != math.prod(spatial):
                raise SpecError(
                    f"layer {i} reads flattened conv features with flatten_size={layer.flatten_size} positions "
                    f"per channel, but on inputs {self.input_shape} the last convolution outputs "
                    f"{'x'.join(map(str, spatial))} = {math.prod(spatial)} positions"
                )
            spatial = layer.output_spatial(spatial) if layer.is_conv else ()
            out.append(() if layer.pool_after else spatial)
        return tuple(out)

    @property
    def num_layers(self) -> int:
        """L, the number of dense/conv layers."""
        return len(self.layers)

    @property
    def widths(self) -> tuple[int, ...]:
        """``(n_0, n_1, ..., n_L)``: neurons (dense) or channels (conv) of every layer."""
        return (self.layers[0].in_dim, *(layer.out_dim for layer in self.layers))

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        return self.widths[1:-1]

    @property
    def symmetries(self) -> tuple[Symmetry, ...]:
        """Scaling symmetry of each hidden layer 1..L-1 (from the activation that follows it)."""
        return tuple(layer.symmetry for layer in self.layers[:-1])

    @property
    def family(self) -> str:
        """``"mlp"``, ``"conv1d"`` or ``"conv2d"`` (the kind of the first layer)."""
        return "mlp" if self.layers[0].kind == "linear" else self.layers[0].kind

    @property
    def weight_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(layer.weight_shape for layer in self.layers)

    @property
    def bias_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple((layer.out_dim,) for layer in self.layers)

    @property
    def num_params(self) -> int:
        n = 0
        for w, b in zip(self.weight_shapes, self.bias_shapes):
            n += _prod(w) + _prod(b)
        return n

    @property
    def num_vertices(self) -> int:
        return sum(self.widths)

    @property
    def num_edges(self) -> int:
        return sum(layer.in_dim * layer.out_dim for layer in self.layers)

    @property
    def max_kernel_numel(self) -> int:
        """Widest edge feature: the largest kernel, or positions per channel of a Flatten."""
        return max(layer.kernel_numel for layer in self.layers)

    @property
    def has_flatten(self) -> bool:
        """A convolution is flattened into a dense layer (LeNet-style)."""
        return any(layer.is_flatten for layer in self.layers)

    def with_activation(self, activation: str | None) -> "NetworkSpec":
        """The same layout with every hidden activation replaced (the output layer keeps its own)."""
        layers = tuple(
            replace(layer, activation=activation, activation_param=None)
            for layer in self.layers[:-1]
        ) + (self.layers[-1],)
        return NetworkSpec(layers, self.input_shape)

    def describe(self) -> str:
        """Human-readable one-liner: the text form, then each distinct hidden activation with the
        symmetry of its neurons, in layer order, e.g. ``mlp 64-32-10 relu  [relu -> positive_scale]``
        or ``mlp 3-5-5-2 relu,tanh  [relu -> positive_scale, tanh -> sign]``."""
        pairs = []
        for layer, sym in zip(self.layers[:-1], self.symmetries):
            pair = f"{layer.activation} -> {sym.value}"
            if pair not in pairs:
                pairs.append(pair)
        return f"{self.to_text()}  [{', '.join(pairs) or 'no hidden layer'}]"

    # ------------------------------------------------------------------ text form
    def to_text(self) -> str:
        """The text form read by :meth:`from_text`, for every network this class accepts: the short
        form for uniform networks (``"mlp 64-32-10 relu"``), per-layer lists otherwise
        (``"conv2d 1-6-16/10 k5,3 s1,2 relu,tanh flatten 1x28x28"``); see
        :mod:`scalegmn_lite.weightspace.spec_text`. ``NetworkSpec.from_text(s.to_text()) == s``."""
        return format_spec(self.layers, self.input_shape)

    @classmethod
    def from_text(cls, text: str) -> "NetworkSpec":
        """Parse the text form.

        Examples:
            ``"mlp 64-32-10 relu"``: Linear 64->32, ReLU, Linear 32->10.
            ``"mlp 2-32-32-1 sine a=30"``: a SIREN with w0 = 30.
            ``"mlp 4-8-8-2 relu,leaky_relu=0.2"``: ReLU after layer 1, LeakyReLU(0.2) after layer 2.
            ``"conv1d 1-8-8/10 k3 tanh 1x40"``: two conv1d layers (1->8->8, kernel 3), tanh, global
            average pooling, Linear 8->10; optional input shape ``1x40``.
            ``"conv2d 1-8-16/32-10 k3 s1 p1 relu"``: conv 1->8->16, pool, Linear 16->32->10.
            ``"conv2d 1-6-16/120-10 k5,3 s1,2 relu,tanh,relu flatten 1x28x28"``: LeNet-style, the
            16 feature maps of the second convolution flattened into Linear 16*H*W -> 120.
        Tokens: family, widths, ``kN``/``kHxW`` kernel, ``sN`` stride, ``pN`` padding (each also as a
        comma list, one per convolution), ``flatten``/``flatten=N``, activation (or comma list, one
        per hidden layer, ``name=X`` for a parameter), ``a=X`` activation parameter, ``out=NAME``
        output activation, ``AxB...`` input shape.
        """
        if is_block_text(text):
            raise SpecError(f"{text!r} describes residual blocks or norm layers: parse it with "
                            "scalegmn_lite.weightspace.blocks.BlockNetworkSpec.from_text (or parse_network)")
        layers, shape = parse_spec(text)
        return cls(tuple(layers), shape)

    # ------------------------------------------------------------------ torch.nn
    @classmethod
    def from_sequential(cls, model, input_shape: Sequence[int] | None = None) -> "NetworkSpec":
        """Read a ``torch.nn.Sequential`` (see ``SUPPORTED_MODULES``); raises :class:`SpecError`
        naming the first unsupported module."""
        return cls(tuple(module_to_layers(model)), tuple(input_shape) if input_shape else None)

    def build_module(self):
        """A freshly initialised ``torch.nn.Sequential`` with this structure."""
        return layers_to_module(self.layers)


def _prod(shape: Iterable[int]) -> int:
    return math.prod(shape)
