"""One layer of a network and the symmetry of the hidden neurons it produces.

The activation that follows a layer decides the scaling part of its hidden neurons' gauge group
(see :mod:`scalegmn_lite.weightspace.spec` for the table); :class:`LayerSpec` is the frozen description
of one dense or convolutional layer that :class:`~scalegmn_lite.weightspace.spec.NetworkSpec` stacks.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["Symmetry", "ACTIVATIONS", "DEFAULT_ACTIVATION_PARAM", "SUPPORTED_MODULES", "LayerSpec", "SpecError",
           "symmetry_of"]


class SpecError(ValueError):
    """A network description that scalegmn-lite cannot represent (with a hint how to fix it)."""


class Symmetry(str, enum.Enum):
    """The scaling part of the gauge group of one hidden layer (permutations always apply)."""

    POSITIVE_SCALE = "positive_scale"  # q_i > 0 (ReLU, LeakyReLU, identity)
    SIGN = "sign"  # q_i in {-1, +1} (tanh, sine)
    PERMUTATION = "permutation"  # q_i = 1 (sigmoid, GELU, SiLU, ...)

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.value


#: activation name -> symmetry of the hidden layer it follows
ACTIVATIONS: dict[str, Symmetry] = {
    "relu": Symmetry.POSITIVE_SCALE,
    "leaky_relu": Symmetry.POSITIVE_SCALE,
    "identity": Symmetry.POSITIVE_SCALE,
    "tanh": Symmetry.SIGN,
    "sine": Symmetry.SIGN,
    "sigmoid": Symmetry.PERMUTATION,
    "gelu": Symmetry.PERMUTATION,
    "silu": Symmetry.PERMUTATION,
}

#: default parameter of parametrised activations (LeakyReLU slope, SIREN frequency w0)
DEFAULT_ACTIVATION_PARAM = {"leaky_relu": 0.01, "sine": 30.0}

SUPPORTED_MODULES = (
    "Linear, Conv1d, Conv2d (dense/conv layers, with bias; each layer may have its own kernel size, "
    "stride, padding and activation); ReLU, LeakyReLU, Tanh, Sigmoid, GELU, SiLU, scalegmn_lite.Sine "
    "(activations); AdaptiveAvgPool1d(1)/AdaptiveAvgPool2d(1) or scalegmn_lite.GlobalAvgPool (global "
    "average pooling after the last conv); Flatten (before the first Linear, after pooling, or after the "
    "last conv: LeNet-style conv -> Flatten -> Linear); nested nn.Sequential (flattened); Identity and "
    "Dropout (ignored)"
)


def symmetry_of(activation: str | None) -> Symmetry:
    """The scaling symmetry of a hidden layer followed by ``activation`` (None = identity)."""
    name = "identity" if activation is None else activation
    if name not in ACTIVATIONS:
        raise SpecError(
            f"unknown activation {activation!r}; supported activations: {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]


@dataclass(frozen=True)
class LayerSpec:
    """One dense or convolutional layer, with what follows it.

    Attributes:
        kind: ``"linear"``, ``"conv1d"`` or ``"conv2d"``.
        in_dim, out_dim: input/output features (dense) or channels (conv). A dense layer after
            ``Flatten`` counts its inputs in *channels* of the previous convolution (see
            ``flatten_size``).
        kernel_size: ``()`` for dense layers, ``(k,)`` for conv1d, ``(kh, kw)`` for conv2d.
        stride, padding: convolution stride and zero padding (same for every spatial axis).
        activation: name of the activation that follows (``None``: none; ``"identity"`` is stored
            as ``None``).
        activation_param: LeakyReLU negative slope or SIREN frequency ``w0`` (default filled in);
            ``None`` for activations without a parameter.
        pool_after: a global average pooling over the spatial axes follows (conv layers only).
        flatten_size: dense layers only. ``None``: an ordinary dense layer. An integer ``P``: the
            layer reads the *flattened* feature maps of the previous convolution (LeNet-style
            ``Conv -> Flatten -> Linear``), ``P = H*W`` positions per channel, so it has
            ``in_dim * P`` inputs and its weight is stored as ``[out, in_dim, P]``: the block
            ``W[j, c*P:(c+1)*P]`` of the ``torch.nn.Linear`` weight becomes ``W[j, c, :]``, which
            a channel's permutation moves and its scaling divides as a whole.
    """

    kind: str
    in_dim: int
    out_dim: int
    kernel_size: tuple[int, ...] = ()
    stride: int = 1
    padding: int = 0
    activation: str | None = None
    activation_param: float | None = None
    pool_after: bool = False
    flatten_size: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("linear", "conv1d", "conv2d"):
            raise SpecError(f"layer kind must be linear, conv1d or conv2d, got {self.kind!r}")
        if self.in_dim < 1 or self.out_dim < 1:
            raise SpecError(f"layer sizes must be >= 1, got in={self.in_dim}, out={self.out_dim}")
        object.__setattr__(self, "kernel_size", tuple(int(k) for k in self.kernel_size))
        want = {"linear": 0, "conv1d": 1, "conv2d": 2}[self.kind]
        if len(self.kernel_size) != want or any(k < 1 for k in self.kernel_size):
            raise SpecError(
                f"{self.kind} layer needs {want} positive kernel sizes, got {self.kernel_size}"
            )
        if self.stride < 1 or self.padding < 0:
            raise SpecError(f"stride must be >= 1 and padding >= 0, got {self.stride}, {self.padding}")
        if self.kind == "linear" and (self.stride != 1 or self.padding != 0 or self.pool_after):
            raise SpecError("a linear layer has no stride, padding or pooling")
        if self.flatten_size is not None:
            if self.kind != "linear" or int(self.flatten_size) < 1:
                raise SpecError(
                    f"flatten_size (positions per channel of a flattened conv output) belongs to a linear "
                    f"layer and must be >= 1; got {self.flatten_size} on a {self.kind} layer"
                )
            object.__setattr__(self, "flatten_size", int(self.flatten_size))
        if self.activation == "identity":
            object.__setattr__(self, "activation", None)
        symmetry_of(self.activation)  # validates the name
        if self.activation_param is not None:
            if self.activation not in DEFAULT_ACTIVATION_PARAM:
                raise SpecError(
                    f"activation {self.activation or 'identity'!r} takes no parameter, got activation_param="
                    f"{self.activation_param!r}; only {sorted(DEFAULT_ACTIVATION_PARAM)} have one"
                )
            param = float(self.activation_param)
            if not math.isfinite(param):
                raise SpecError(f"activation parameter of {self.activation} must be finite, got {param}")
            object.__setattr__(self, "activation_param", param)
        elif self.activation in DEFAULT_ACTIVATION_PARAM:
            object.__setattr__(self, "activation_param", DEFAULT_ACTIVATION_PARAM[self.activation])

    @property
    def is_conv(self) -> bool:
        return self.kind != "linear"

    @property
    def is_flatten(self) -> bool:
        """A dense layer reading flattened conv feature maps (``flatten_size`` is set)."""
        return self.flatten_size is not None

    @property
    def block_shape(self) -> tuple[int, ...]:
        """Trailing weight axes per (output, input) pair: the kernel of a convolution, ``(P,)`` for a
        dense layer after ``Flatten``, ``()`` for an ordinary dense layer."""
        return (self.flatten_size,) if self.flatten_size is not None else self.kernel_size

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the weight of one network: ``(out, in, *block_shape)``."""
        return (self.out_dim, self.in_dim, *self.block_shape)

    @property
    def kernel_numel(self) -> int:
        """Entries per (output, input) pair: the kernel size, ``P`` after Flatten, else 1 (the width of
        this layer's edge features in the graph)."""
        return math.prod(self.block_shape)

    @property
    def fan_in(self) -> int:
        """Inputs of one output neuron/channel: ``in_dim * kernel_numel``."""
        return self.in_dim * self.kernel_numel

    @property
    def symmetry(self) -> Symmetry:
        """Symmetry of this layer's output neurons *if* they are hidden."""
        return symmetry_of(self.activation)

    def output_spatial(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Spatial shape after this convolution: ``(n + 2p - k) // s + 1`` per axis; raises
        :class:`SpecError` when the padded input is smaller than the kernel."""
        if not self.is_conv or len(spatial) != len(self.kernel_size):
            raise SpecError(f"{self.kind} layer cannot map a spatial shape {tuple(spatial)}")
        if any(n + 2 * self.padding < k for n, k in zip(spatial, self.kernel_size)):
            raise SpecError(
                f"{self.kind} layer {self.in_dim}->{self.out_dim}: kernel {self.kernel_size} is larger than its "
                f"input {tuple(spatial)} with padding {self.padding}; use a larger input or a smaller kernel"
            )
        return tuple((n + 2 * self.padding - k) // self.stride + 1 for n, k in zip(spatial, self.kernel_size))
