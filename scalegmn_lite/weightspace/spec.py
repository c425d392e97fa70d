"""The one source of truth for a network's structure and the symmetry of each hidden layer.

A :class:`NetworkSpec` is a frozen description of a feed-forward network: a sequence of
:class:`LayerSpec` (dense or convolutional layers, each followed by an optional activation and,
for the last convolution, an optional global average pooling). The symbolic derivations, the
gauge group action, the graph builder, the metanetwork layers and the tests all read it.

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

import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from .layer import (
    ACTIVATIONS,
    DEFAULT_ACTIVATION_PARAM,
    SUPPORTED_MODULES,
    LayerSpec,
    SpecError,
    Symmetry,
    symmetry_of,
)
from .modules import layers_to_module, module_to_layers

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

    Attributes:
        layers: the dense/conv layers in order.
        input_shape: shape of one input sample without the batch axis, e.g. ``(64,)``,
            ``(1, 40)`` for conv1d, ``(1, 8, 8)`` for conv2d. ``None`` if unknown.
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
        if self.input_shape is None and not layers[0].is_conv:
            object.__setattr__(self, "input_shape", (layers[0].in_dim,))
        spatial = layers[0].is_conv
        for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
            if a.out_dim != b.in_dim:
                raise SpecError(
                    f"mismatched shapes: layer {i} ({a.kind}) has {a.out_dim} outputs but layer "
                    f"{i + 1} ({b.kind}) expects {b.in_dim} inputs"
                )
            if spatial and b.is_conv and a.kind != b.kind:
                raise SpecError(f"layer {i + 1}: cannot mix {a.kind} and {b.kind}")
            if spatial and not b.is_conv and not a.pool_after:
                raise SpecError(
                    f"layer {i + 1} is Linear after a {a.kind} without global average pooling; "
                    "insert AdaptiveAvgPool(1) + Flatten (flattening conv features is not supported)"
                )
            if a.pool_after and b.is_conv:
                raise SpecError(f"layer {i + 1}: a convolution cannot follow global pooling")
            if not a.is_conv and b.is_conv:
                raise SpecError(f"layer {i + 1}: a convolution cannot follow a Linear layer")
            spatial = spatial and not a.pool_after
        if layers[-1].is_conv and not layers[-1].pool_after:
            raise SpecError(
                "the network ends in a convolution without global pooling; end with "
                "AdaptiveAvgPool(1) + Flatten (+ Linear) so the output is a vector"
            )

    # ------------------------------------------------------------------ structure
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
        return max(layer.kernel_numel for layer in self.layers)

    def with_activation(self, activation: str | None) -> "NetworkSpec":
        """The same layout with every hidden activation replaced (the output layer keeps its own)."""
        layers = tuple(
            replace(layer, activation=activation, activation_param=None)
            for layer in self.layers[:-1]
        ) + (self.layers[-1],)
        return NetworkSpec(layers, self.input_shape)

    def describe(self) -> str:
        """Human-readable one-liner, e.g. ``mlp 64-32-10 [relu -> positive_scale]``."""
        acts = sorted({str(layer.activation) for layer in self.layers[:-1]})
        syms = sorted({s.value for s in self.symmetries})
        return f"{self.to_text()}  [{', '.join(acts) or '-'} -> {', '.join(syms) or 'no hidden layer'}]"

    # ------------------------------------------------------------------ text form
    def to_text(self) -> str:
        """The short text form read by :meth:`from_text` (uniform activations only)."""
        hidden = {(layer.activation, layer.activation_param) for layer in self.layers[:-1]}
        if len(hidden) > 1:
            raise SpecError("to_text needs one activation for all hidden layers; use from_sequential")
        act, param = hidden.pop() if hidden else ("identity", None)
        act = act or "identity"
        last_act = self.layers[-1].activation
        tail = [] if last_act is None else [f"out={last_act}"]
        convs = [layer for layer in self.layers if layer.is_conv]
        denses = [layer for layer in self.layers if not layer.is_conv]
        param_tok = []
        if param is not None and param != DEFAULT_ACTIVATION_PARAM.get(act):
            param_tok = [f"a={param:g}"]
        if not convs:
            widths = "-".join(str(w) for w in self.widths)
            return " ".join(["mlp", widths, act, *param_tok, *tail])
        c = convs[0]
        chans = "-".join(str(w) for w in [c.in_dim, *(x.out_dim for x in convs)])
        dense = "-".join(str(x.out_dim) for x in denses)
        k = "x".join(str(s) for s in c.kernel_size)
        extra = []
        if any(x.kernel_size != c.kernel_size or x.stride != c.stride or x.padding != c.padding for x in convs):
            raise SpecError("to_text needs one kernel size, stride and padding for all convolutions")
        if c.stride != 1:
            extra.append(f"s{c.stride}")
        if c.padding != 0:
            extra.append(f"p{c.padding}")
        shape = ("x".join(str(s) for s in self.input_shape),) if self.input_shape else ()
        widths = f"{chans}/{dense}" if dense else chans
        return " ".join([c.kind, widths, f"k{k}", *extra, act, *param_tok, *tail, *shape])

    @classmethod
    def from_text(cls, text: str) -> "NetworkSpec":
        """Parse the short text form.

        Examples:
            ``"mlp 64-32-10 relu"``: Linear 64->32, ReLU, Linear 32->10.
            ``"mlp 2-32-32-1 sine a=30"``: a SIREN with w0 = 30.
            ``"conv1d 1-8-8/10 k3 tanh 1x40"``: two conv1d layers (1->8->8, kernel 3), tanh, global
            average pooling, Linear 8->10; optional input shape ``1x40``.
            ``"conv2d 1-8-16/32-10 k3 s1 p1 relu"``: conv 1->8->16, pool, Linear 16->32->10.
        Tokens: family, widths, ``kN``/``kHxW`` kernel, ``sN`` stride, ``pN`` padding, an activation
        name, ``a=X`` activation parameter, ``out=NAME`` output activation, ``AxB...`` input shape.
        """
        tokens = text.split()
        if len(tokens) < 2:
            raise SpecError(f"cannot parse {text!r}: expected e.g. 'mlp 64-32-10 relu'")
        family, widths_tok, rest = tokens[0].lower(), tokens[1], tokens[2:]
        if family not in ("mlp", "siren", "conv1d", "conv2d"):
            raise SpecError(f"cannot parse {text!r}: family must be mlp, siren, conv1d or conv2d")
        act, param, out_act, kernel, stride, padding, shape = None, None, None, None, 1, 0, None
        if family == "siren":
            family, act = "mlp", "sine"
        for tok in rest:
            low = tok.lower()
            if low in ACTIVATIONS:
                act = low
            elif low.startswith("a="):
                param = float(low[2:])
            elif low.startswith("out="):
                out_act = None if low[4:] in ("none", "identity") else low[4:]
            elif re.fullmatch(r"k\d+(x\d+)?", low):
                kernel = tuple(int(v) for v in low[1:].split("x"))
            elif re.fullmatch(r"s\d+", low):
                stride = int(low[1:])
            elif re.fullmatch(r"p\d+", low):
                padding = int(low[1:])
            elif re.fullmatch(r"\d+(x\d+)*", low):
                shape = tuple(int(v) for v in low.split("x"))
            else:
                raise SpecError(f"cannot parse token {tok!r} in {text!r}")
        if act is None:
            raise SpecError(f"{text!r} names no activation; add one of {sorted(ACTIVATIONS)}")
        if act == "identity":
            act = None
        conv_part, _, dense_part = widths_tok.partition("/")
        try:
            conv_w = [int(v) for v in conv_part.split("-")]
            dense_w = [int(v) for v in dense_part.split("-")] if dense_part else []
        except ValueError:
            raise SpecError(f"cannot parse widths {widths_tok!r}: use e.g. 64-32-10 or 1-8-8/10") from None
        layers: list[LayerSpec] = []
        if family == "mlp":
            if dense_w or len(conv_w) < 2:
                raise SpecError(f"an mlp needs widths like 64-32-10, got {widths_tok!r}")
            for a, b in zip(conv_w[:-1], conv_w[1:]):
                layers.append(LayerSpec("linear", a, b, activation=act, activation_param=param))
        else:
            ndim = 1 if family == "conv1d" else 2
            if kernel is None:
                raise SpecError(f"{text!r}: a {family} needs a kernel size token such as k3")
            if len(kernel) == 1:
                kernel = kernel * ndim
            if len(kernel) != ndim:
                raise SpecError(f"{text!r}: {family} needs a {ndim}-d kernel, got {kernel}")
            if len(conv_w) < 2:
                raise SpecError(f"{text!r}: need at least two channel counts, e.g. 1-8/10")
            for a, b in zip(conv_w[:-1], conv_w[1:]):
                layers.append(LayerSpec(family, a, b, kernel, stride, padding, act, param))
            layers[-1] = replace(layers[-1], pool_after=True)
            prev = conv_w[-1]
            for b in dense_w:
                layers.append(LayerSpec("linear", prev, b, activation=act, activation_param=param))
                prev = b
        layers[-1] = replace(layers[-1], activation=out_act, activation_param=None)
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
    n = 1
    for s in shape:
        n *= s
    return n
