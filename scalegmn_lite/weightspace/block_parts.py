"""The parts a block network is made of besides plain layers: normalization layers and residual blocks.

A block network (:class:`~scalegmn_lite.weightspace.blocks.BlockNetworkSpec`) is a sequence of *elements*:
a plain :class:`~scalegmn_lite.weightspace.layer.LayerSpec` (``linear`` or ``conv1d``, with its activation), a
:class:`Norm` (BatchNorm1d in eval mode, or LayerNorm over the features) that directly follows a layer without
activation, and a :class:`ResidualBlock` ``y = act(branch(x) + shortcut(x))``. A branch or a projection shortcut is
itself a sequence of layers and norms. The rules every sequence obeys are checked once, in :func:`check_sequence`,
for the network and for every branch and shortcut. :func:`batchnorm` and :func:`layernorm` are the one
implementation of eval-mode BatchNorm and LayerNorm (any leading axes) that
:class:`~scalegmn_lite.weightspace.block_weights.BlockWeights` and :mod:`scalegmn_lite.symbolic.residual` use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import torch

from .layer import DEFAULT_ACTIVATION_PARAM, LayerSpec, SpecError, Symmetry, symmetry_of

__all__ = ["NORM_KINDS", "DEFAULT_EPS", "Norm", "ResidualBlock", "Element", "check_sequence", "meet",
           "batchnorm", "layernorm"]

#: the normalization layers a block network may hold
NORM_KINDS = ("batchnorm", "layernorm")
#: torch's default ``eps`` of BatchNorm1d and LayerNorm
DEFAULT_EPS = 1e-5


def _activation_param(activation: str | None, param: float | None, what: str) -> float | None:
    """Validate an activation name and fill in its default parameter (as :class:`LayerSpec` does)."""
    symmetry_of(activation)
    if param is None:
        return DEFAULT_ACTIVATION_PARAM.get(activation)
    if activation not in DEFAULT_ACTIVATION_PARAM:
        raise SpecError(f"{what}: activation {activation or 'identity'!r} takes no parameter, got {param!r}")
    if not math.isfinite(float(param)):
        raise SpecError(f"{what}: activation parameter must be finite, got {param}")
    return float(param)


@dataclass(frozen=True)
class Norm:
    """A normalization layer over ``width`` features (dense) or channels (conv1d), then ``activation``.

    ``kind="batchnorm"``: ``BatchNorm1d`` in eval mode, ``gamma (z - mu) / sqrt(var + eps) + beta`` per channel,
    parameters ``gamma, beta, running_mean, running_var``. ``kind="layernorm"``: ``LayerNorm(width)`` with
    ``elementwise_affine``, ``gamma (z - mean(z)) / sqrt(var(z) + eps) + beta`` over the features of one sample,
    parameters ``gamma, beta`` (dense networks only). ``eps`` is torch's hyperparameter; exact gauge claims use
    ``eps = 0`` (see :mod:`scalegmn_lite.symbolic.residual`). Any activation may follow: the norm's input scaling is
    free whatever comes after (the norm's output does not change), and its output neurons get the gauge of that
    activation through ``gamma, beta``.
    """

    kind: str
    width: int
    eps: float = DEFAULT_EPS
    activation: str | None = None
    activation_param: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in NORM_KINDS:
            raise SpecError(f"unknown norm kind {self.kind!r}; use one of {NORM_KINDS} (tokens bn, ln)")
        if int(self.width) < 1:
            raise SpecError(f"a {self.kind} needs width >= 1, got {self.width}")
        object.__setattr__(self, "width", int(self.width))
        if self.kind == "layernorm" and self.width < 2:
            raise SpecError("a layernorm over one feature is degenerate (z - mean(z) = 0); use width >= 2 or batchnorm")
        eps = float(self.eps)
        if not (math.isfinite(eps) and eps >= 0):
            raise SpecError(f"{self.kind} eps must be finite and >= 0, got {self.eps}")
        object.__setattr__(self, "eps", eps)
        if self.activation == "identity":
            object.__setattr__(self, "activation", None)
        param = _activation_param(self.activation, self.activation_param, self.kind)
        object.__setattr__(self, "activation_param", param)

    @property
    def in_dim(self) -> int:
        return self.width

    @property
    def out_dim(self) -> int:
        return self.width

    @property
    def param_names(self) -> tuple[str, ...]:
        """``gamma, beta`` (and ``running_mean, running_var`` for batchnorm), each of shape ``[width]``."""
        return ("gamma", "beta", "running_mean", "running_var") if self.kind == "batchnorm" else ("gamma", "beta")


@dataclass(frozen=True)
class ResidualBlock:
    """``y = act(branch(x) + shortcut(x))``.

    Attributes:
        branch: layers and norms (:func:`check_sequence`); its last output is added to the shortcut. Its last element
            may carry an activation (applied before the addition), usually it has none.
        shortcut: ``()`` for the identity (``in_dim == out_dim`` needed), or a projection: one layer without
            activation (a learned linear map, or a conv1d with kernel 1 and no padding), optionally followed by one
            norm without activation (ResNet's ``conv1x1 + BN`` downsampling).
        activation, activation_param: applied after the addition (``None``: no activation).
    """

    branch: tuple["LayerSpec | Norm", ...]
    shortcut: tuple["LayerSpec | Norm", ...] = ()
    activation: str | None = None
    activation_param: float | None = None

    def __post_init__(self) -> None:
        branch, shortcut = tuple(self.branch), tuple(self.shortcut)
        object.__setattr__(self, "branch", branch)
        object.__setattr__(self, "shortcut", shortcut)
        if self.activation == "identity":
            object.__setattr__(self, "activation", None)
        object.__setattr__(self, "activation_param",
                           _activation_param(self.activation, self.activation_param, "residual block"))
        if not branch:
            raise SpecError("a residual block needs a branch (at least one Linear/Conv1d layer)")
        check_sequence(branch, "residual branch", allow_blocks=False)
        if shortcut:
            check_sequence(shortcut, "projection shortcut", allow_blocks=False)
            proj = shortcut[0]
            extra = shortcut[1:]
            if len(extra) > 1 or any(not isinstance(e, Norm) for e in extra):
                raise SpecError("a projection shortcut is one Linear/Conv1d layer, optionally followed by one norm "
                                f"(ResNet's conv1x1 + BatchNorm); got {len(shortcut)} elements")
            if any(e.activation is not None for e in shortcut):
                raise SpecError("a projection shortcut has no activation (it is a learned linear map); put the "
                                "activation after the addition (ResidualBlock(..., activation=...))")
            if proj.kind == "conv1d" and (proj.kernel_size != (1,) or proj.padding != 0):
                raise SpecError(f"a conv1d projection shortcut is a 1x1 convolution (kernel 1, padding 0, any stride); "
                                f"got kernel {proj.kernel_size} and padding {proj.padding}")
            if proj.in_dim != self.in_dim or shortcut[-1].out_dim != self.out_dim:
                raise SpecError(f"the projection shortcut maps {proj.in_dim} -> {shortcut[-1].out_dim} but the branch "
                                f"maps {self.in_dim} -> {self.out_dim}; they must agree")
            if proj.kind != self.kind:
                raise SpecError(f"the projection shortcut is {proj.kind} but the branch is {self.kind}")
        elif self.in_dim != self.out_dim:
            raise SpecError(f"an identity shortcut needs the same width in and out, but the branch maps {self.in_dim} "
                            f"-> {self.out_dim}; use a projection shortcut (ResidualBlock(branch, shortcut=(LayerSpec("
                            f"'{self.kind}', {self.in_dim}, {self.out_dim}{', (1,)' if self.kind == 'conv1d' else ''}"
                            f"),)), '|proj' in the text form) or make the branch end in {self.in_dim} features")

    @property
    def in_dim(self) -> int:
        return self.branch[0].in_dim

    @property
    def out_dim(self) -> int:
        return self.branch[-1].out_dim

    @property
    def kind(self) -> str:
        """``"linear"`` or ``"conv1d"``: the kind of the branch's layers."""
        return self.branch[0].kind

    @property
    def is_identity(self) -> bool:
        """The shortcut is the identity (a constant edge of weight 1 per coordinate)."""
        return not self.shortcut

    @property
    def elements(self) -> tuple["LayerSpec | Norm", ...]:
        """Branch then shortcut: the order of this block's parameters."""
        return self.branch + self.shortcut


Element = Union[LayerSpec, Norm, ResidualBlock]


def check_sequence(elements: Sequence[Element], where: str, allow_blocks: bool = True) -> None:
    """Raise :class:`SpecError` unless ``elements`` chain (each ``in_dim`` is the previous ``out_dim``), every layer is
    ``linear``/``conv1d`` without pooling or ``Flatten`` (pooling is implied before the first linear layer after
    convolutions), convolutions come before dense layers, and every :class:`Norm` directly follows a layer that has no
    activation (``Linear -> Norm -> act``: the derivation of its gauge needs the norm to read the layer's output)."""
    prev: Element | None = None
    dense = False
    for i, el in enumerate(elements):
        if isinstance(el, LayerSpec):
            if el.kind not in ("linear", "conv1d"):
                raise SpecError(f"{where}, element {i}: block networks hold linear and conv1d layers, got {el.kind}; "
                                "describe conv2d chains with NetworkSpec")
            if el.pool_after or el.is_flatten:
                raise SpecError(f"{where}, element {i}: block networks pool implicitly (global average pooling before "
                                "the first linear layer after convolutions); Flatten into a linear layer is not "
                                "supported. Build the LayerSpec without pool_after/flatten_size")
            kind = el.kind
        elif isinstance(el, Norm):
            if not isinstance(prev, LayerSpec):
                raise SpecError(f"{where}, element {i}: a {el.kind} must directly follow a Linear/Conv1d layer (the "
                                f"derivation of its gauge needs the layer's output), got "
                                f"{type(prev).__name__ if prev is not None else 'the input'} before it")
            if prev.activation is not None:
                raise SpecError(f"{where}, element {i}: a {el.kind} after an activation ({prev.activation}) is not "
                                f"supported; use Layer -> {el.kind} -> {prev.activation} (the norm reads the layer's "
                                "output, the activation follows the norm)")
            if el.kind == "layernorm" and prev.kind != "linear":
                raise SpecError(f"{where}, element {i}: LayerNorm after a conv1d layer (over channels and length) is "
                                "not supported: its gauge is derived for the features of a dense layer; use "
                                "batchnorm for convolutions")
            kind = prev.kind
        elif isinstance(el, ResidualBlock):
            if not allow_blocks:
                raise SpecError(f"{where}, element {i}: residual blocks cannot be nested")
            kind = el.kind
        else:
            raise SpecError(f"{where}, element {i}: expected LayerSpec, Norm or ResidualBlock, got {type(el).__name__}")
        if prev is not None and prev.out_dim != el.in_dim:
            raise SpecError(f"{where}: element {i - 1} has {prev.out_dim} outputs but element {i} "
                            f"({type(el).__name__}) expects {el.in_dim} inputs")
        if kind == "conv1d" and dense:
            raise SpecError(f"{where}, element {i}: a convolution cannot follow a dense layer")
        dense = dense or kind == "linear"
        prev = el


def meet(activations: Sequence[str | None]) -> Symmetry:
    """The scaling symmetry of neurons that all of ``activations`` are applied to (a residual stream is read by the
    activation of the layer that starts it and of every block that writes it): the intersection of their groups.
    ``None`` (no activation) constrains nothing; with no constraint at all the repo's convention ``q > 0`` holds."""
    kinds = {symmetry_of(a) for a in activations if a is not None}
    if Symmetry.PERMUTATION in kinds or kinds == {Symmetry.POSITIVE_SCALE, Symmetry.SIGN}:
        return Symmetry.PERMUTATION
    return Symmetry.SIGN if kinds == {Symmetry.SIGN} else Symmetry.POSITIVE_SCALE


# ---------------------------------------------------------------- the norms as functions
def _eps(eps, like: torch.Tensor) -> torch.Tensor:
    e = torch.as_tensor(eps, dtype=like.dtype, device=like.device)
    if bool((e < 0).any()):
        raise ValueError(f"eps must be >= 0, got {e.tolist()}")
    return e


def batchnorm(z: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
              eps: float | torch.Tensor = 0.0) -> torch.Tensor:
    """Eval-mode BatchNorm ``gamma (z - mean) / sqrt(var + eps) + beta``; the statistics and ``eps`` (a float or a
    per-channel tensor) broadcast against ``z`` (e.g. ``z [batch, C]`` with ``[C]`` statistics)."""
    e = _eps(eps, z)
    denom = var + e
    if bool((denom <= 0).any()):
        bad = torch.nonzero((denom <= 0).reshape(-1)).reshape(-1).tolist()
        raise ValueError(f"running_var + eps must be > 0, but it is 0 at (flattened) channels {bad}; a dead channel "
                         "has zero variance: pass eps > 0 (then the pre-norm scaling is only approximate, see "
                         "symbolic.residual.eps_invariance_error) or drop the channel")
    return gamma * (z - mean) / torch.sqrt(denom) + beta


def layernorm(z: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """LayerNorm over the last axis (biased variance, as ``torch.nn.functional.layer_norm``)."""
    e = _eps(eps, z)
    c = z - z.mean(-1, keepdim=True)
    denom = (c * c).mean(-1, keepdim=True) + e
    if bool((denom <= 0).any()):
        raise ValueError("a sample has all features equal (zero variance) and eps = 0: layernorm is 0/0 there; "
                         "pass eps > 0 or other inputs")
    return gamma * c / torch.sqrt(denom) + beta
