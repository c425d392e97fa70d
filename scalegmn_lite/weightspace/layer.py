"""One layer of a network and the symmetry of the hidden neurons it produces.

The activation that follows a layer decides the scaling part of its hidden neurons' gauge group
(see :mod:`scalegmn_lite.weightspace.spec` for the table); :class:`LayerSpec` is the frozen description
of one dense or convolutional layer that :class:`~scalegmn_lite.weightspace.spec.NetworkSpec` stacks.
"""

from __future__ import annotations

import enum
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
    "Linear, Conv1d, Conv2d (dense/conv layers, with bias); ReLU, LeakyReLU, Tanh, Sigmoid, GELU, "
    "SiLU, scalegmn_lite.Sine (activations); Flatten (before the first Linear, or after pooling); "
    "AdaptiveAvgPool1d(1)/AdaptiveAvgPool2d(1) or scalegmn_lite.GlobalAvgPool (global average "
    "pooling between the last conv and the first Linear); Identity and Dropout (ignored)"
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
        in_dim, out_dim: input/output features (dense) or channels (conv).
        kernel_size: ``()`` for dense layers, ``(k,)`` for conv1d, ``(kh, kw)`` for conv2d.
        stride, padding: convolution stride and zero padding (same for every spatial axis).
        activation: name of the activation that follows (``None``: none).
        activation_param: LeakyReLU negative slope or SIREN frequency ``w0`` (else ``None``).
        pool_after: a global average pooling over the spatial axes follows (conv layers only).
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

    def __post_init__(self) -> None:
        if self.kind not in ("linear", "conv1d", "conv2d"):
            raise SpecError(f"layer kind must be linear, conv1d or conv2d, got {self.kind!r}")
        if self.in_dim < 1 or self.out_dim < 1:
            raise SpecError(f"layer sizes must be >= 1, got in={self.in_dim}, out={self.out_dim}")
        want = {"linear": 0, "conv1d": 1, "conv2d": 2}[self.kind]
        if len(self.kernel_size) != want or any(k < 1 for k in self.kernel_size):
            raise SpecError(
                f"{self.kind} layer needs {want} positive kernel sizes, got {self.kernel_size}"
            )
        if self.stride < 1 or self.padding < 0:
            raise SpecError(f"stride must be >= 1 and padding >= 0, got {self.stride}, {self.padding}")
        if self.kind == "linear" and (self.stride != 1 or self.padding != 0 or self.pool_after):
            raise SpecError("a linear layer has no stride, padding or pooling")
        symmetry_of(self.activation)  # validates the name
        if self.activation_param is None and self.activation in DEFAULT_ACTIVATION_PARAM:
            object.__setattr__(self, "activation_param", DEFAULT_ACTIVATION_PARAM[self.activation])

    @property
    def is_conv(self) -> bool:
        return self.kind != "linear"

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the weight of one network: ``(out, in, *kernel_size)``."""
        return (self.out_dim, self.in_dim, *self.kernel_size)

    @property
    def kernel_numel(self) -> int:
        n = 1
        for k in self.kernel_size:
            n *= k
        return n

    @property
    def symmetry(self) -> Symmetry:
        """Symmetry of this layer's output neurons *if* they are hidden."""
        return symmetry_of(self.activation)
