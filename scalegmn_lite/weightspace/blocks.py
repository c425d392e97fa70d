r"""Networks beyond a chain: residual blocks and normalization layers (notebook 09).

A :class:`BlockNetworkSpec` is the frozen description of an MLP or a Conv1d network built from three kinds of
elements, in order:

* a plain :class:`~scalegmn_lite.weightspace.layer.LayerSpec` (``linear`` or ``conv1d``) with its activation;
* a :class:`~scalegmn_lite.weightspace.block_parts.Norm`: BatchNorm1d in eval mode (``gamma``, ``beta``,
  ``running_mean``, ``running_var``) or LayerNorm over the features (``gamma``, ``beta``), directly after a layer
  without activation, then its own activation;
* a :class:`~scalegmn_lite.weightspace.block_parts.ResidualBlock` ``y = act(branch(x) + shortcut(x))``: the branch
  a sequence of layers and norms, the shortcut the identity or a projection (a learned linear map / 1x1 conv,
  optionally with a norm).

Convolutions come first; global average pooling is implied before the first dense element. A chain without
blocks or norms is exactly a :class:`~scalegmn_lite.weightspace.spec.NetworkSpec` (:meth:`BlockNetworkSpec.to_chain`,
:meth:`~BlockNetworkSpec.from_chain`), and its text is today's. Parameters live in
:class:`~scalegmn_lite.weightspace.block_weights.BlockWeights`, the gauge in
:mod:`~scalegmn_lite.weightspace.block_gauge`; both read :meth:`BlockNetworkSpec.gauge_plan`
(:mod:`~scalegmn_lite.weightspace.block_sites`).

**Text form** (:mod:`~scalegmn_lite.weightspace.block_text` has the grammar)::

    mlp 40-64-[64-64]x2-10 relu            Linear 40->64, ReLU, 2 blocks y = relu(y + W2 relu(W1 y + b1) + b2), 64->10
    mlp 40-64bn-[64ln-64]-10 tanh          BatchNorm and LayerNorm (then tanh) after Linear layers
    mlp 8-16:identity-[32-16]x3:identity-4 relu   a linear residual stream (no activation after the additions)
    mlp 40-[64-128|proj]-10 relu           a projection shortcut Linear(64 -> 128) starts a new stream
    conv1d 1-16bn-[16bn-16bn]x2-[32s2bn-32bn|projs2bn]/10 k3 p1 relu 1x32   a small ResNet
    mlp 8-16bn-4 relu eps=0                norms with eps = 0 (exact gauge claims)

**Gauge** (:mod:`~scalegmn_lite.weightspace.block_sites`): inner hidden units of a branch have their own permutation
and scaling (as in an MLP); a residual stream has *one* permutation and *one* scaling shared by every block that
reads or writes it, and a projection shortcut starts a new one; a BatchNorm adds a free per-channel scale of its
input (``W, b, mu -> D W, D b, D mu``, ``var -> D^2 var``), a LayerNorm a common scalar; the norm's output neurons
keep the ordinary gauge of their activation through ``gamma, beta``. Hence (:attr:`BlockNetworkSpec.scale_dim`, for
ReLU-like activations)

    ``dim G_scale = sum(inner hidden widths) + sum(stream widths, once per stream) + sum(BatchNorm widths)
    + #LayerNorms``,

checked against the sympy nullities of :mod:`scalegmn_lite.symbolic.residual` in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

from torch import nn

from .block_modules import Residual, blocks_to_module, module_to_blocks
from .block_parts import DEFAULT_EPS, NORM_KINDS, Element, Norm, ResidualBlock, check_sequence
from .block_sites import GaugePlan, gauge_plan
from .block_text import format_blocks, is_block_text, parse_blocks
from .layer import LayerSpec, SpecError
from .spec import NetworkSpec

__all__ = ["BlockNetworkSpec", "LayerSpec", "Norm", "ResidualBlock", "Residual", "NORM_KINDS", "DEFAULT_EPS",
           "parse_network"]


@dataclass(frozen=True)
class BlockNetworkSpec:
    """A feed-forward network of layers, norms and residual blocks (see the module docstring).

    Attributes:
        blocks: the elements in order (:class:`LayerSpec`, :class:`Norm`, :class:`ResidualBlock`).
        input_shape: one input sample without the batch axis: ``(n_0,)`` for an MLP (the default), ``(C, L)`` for a
            conv1d network (needed when it has residual blocks, to check that both branches of a block produce the
            same length).
    """

    blocks: tuple[Element, ...]
    input_shape: tuple[int, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        blocks = tuple(self.blocks)
        object.__setattr__(self, "blocks", blocks)
        if not blocks:
            raise SpecError("a block network needs at least one layer or residual block")
        check_sequence(blocks, "network")
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        elif self.family == "mlp":
            object.__setattr__(self, "input_shape", (self.in_dim,))
        self._check_input_shape()

    def _check_input_shape(self) -> None:
        shape = self.input_shape
        if shape is None:
            if any(isinstance(b, ResidualBlock) and b.kind == "conv1d" for b in self.blocks):
                raise SpecError("a conv1d network with residual blocks needs its input shape (C, L), e.g. "
                                "input_shape=(1, 32) or '1x32' in the text, to check that branch and shortcut "
                                "produce the same length")
            return
        if any(s < 1 for s in shape):
            raise SpecError(f"input_shape {shape} has a non-positive size")
        if self.family == "mlp":
            if math.prod(shape) != self.in_dim:
                raise SpecError(f"input_shape {shape} has {math.prod(shape)} entries, the network takes {self.in_dim}")
            return
        if len(shape) != 2 or shape[0] != self.in_dim:
            raise SpecError(f"a conv1d network with {self.in_dim} input channels needs input_shape (C={self.in_dim}, "
                            f"L), got {shape}")
        length = shape[1]
        for i, el in enumerate(self.blocks):
            if isinstance(el, ResidualBlock) and el.kind == "conv1d":
                out = _length(el.branch, length, f"block {i} branch")
                short = _length(el.shortcut, length, f"block {i} shortcut")
                if out != short:
                    what = "the identity shortcut keeps" if el.is_identity else "the projection shortcut gives"
                    raise SpecError(f"block {i}: the branch maps length {length} to {out} but {what} {short}; use "
                                    "'same' convolutions (kernel 2p + 1, padding p, stride 1) in the branch, or a "
                                    "projection whose stride matches the branch's")
                length = out
            elif isinstance(el, LayerSpec) and el.kind == "conv1d":
                length = _length((el,), length, f"layer {i}")

    # ------------------------------------------------------------------ structure
    @property
    def family(self) -> str:
        """``"mlp"`` or ``"conv1d"`` (the kind of the first layer)."""
        return "mlp" if self.layers[0].kind == "linear" else "conv1d"

    @property
    def in_dim(self) -> int:
        return self.blocks[0].in_dim

    @property
    def out_dim(self) -> int:
        return self.blocks[-1].out_dim

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        """Every dense/conv layer, in parameter order (a block's branch, then its shortcut)."""
        return tuple(e for e in self._flat() if isinstance(e, LayerSpec))

    @property
    def norms(self) -> tuple[Norm, ...]:
        return tuple(e for e in self._flat() if isinstance(e, Norm))

    @property
    def residual_blocks(self) -> tuple[ResidualBlock, ...]:
        return tuple(b for b in self.blocks if isinstance(b, ResidualBlock))

    def _flat(self):
        for el in self.blocks:
            yield from el.elements if isinstance(el, ResidualBlock) else (el,)

    @property
    def is_chain(self) -> bool:
        """No residual blocks and no norms: a :class:`NetworkSpec` describes it."""
        return all(isinstance(b, LayerSpec) for b in self.blocks)

    def gauge_plan(self, split_streams: bool = False) -> GaugePlan:
        """Sites and parameter roles of the gauge (:mod:`.block_sites`); ``split_streams``: the plain twin's."""
        return gauge_plan(self.blocks, self.in_dim, split_streams)

    @property
    def param_shapes(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """``(name, shape)`` of every parameter tensor of one network, in the order of ``BlockWeights.params``."""
        return tuple((p.name, p.shape) for p in self.gauge_plan().params)

    @property
    def num_params(self) -> int:
        return sum(math.prod(shape) for _, shape in self.param_shapes)

    @property
    def scale_dim(self) -> int:
        """``dim G_scale``: inner hidden widths + stream widths (once per stream) + BatchNorm widths + 1 per LayerNorm,
        counting only neurons whose activations allow positive scalings (see :attr:`scale_dim_terms`)."""
        return self.gauge_plan().scale_dim

    @property
    def scale_dim_terms(self) -> dict[str, int]:
        """The terms of :attr:`scale_dim`: ``hidden``, ``stream``, ``batchnorm``, ``layernorm``."""
        return self.gauge_plan().dim_terms

    def with_eps(self, eps: float) -> "BlockNetworkSpec":
        """The same network with every norm's ``eps`` replaced (``eps=0`` for exact gauge claims)."""
        def fix(el):
            if isinstance(el, Norm):
                return replace(el, eps=eps)
            if isinstance(el, ResidualBlock):
                return replace(el, branch=tuple(map(fix, el.branch)), shortcut=tuple(map(fix, el.shortcut)))
            return el
        return BlockNetworkSpec(tuple(map(fix, self.blocks)), self.input_shape)

    # ------------------------------------------------------------------ chains
    @classmethod
    def from_chain(cls, spec: NetworkSpec) -> "BlockNetworkSpec":
        """A chain :class:`NetworkSpec` (MLP or conv1d with global pooling) as a block network."""
        if spec.family == "conv2d" or spec.has_flatten:
            raise SpecError(f"{spec.to_text()!r}: block networks are MLPs or conv1d networks with global pooling; "
                            "keep conv2d and Flatten networks as NetworkSpec")
        return cls(tuple(replace(layer, pool_after=False) for layer in spec.layers), spec.input_shape)

    def to_chain(self) -> NetworkSpec:
        """The :class:`NetworkSpec` of a chain (:attr:`is_chain`); pooling goes after the last convolution."""
        if not self.is_chain:
            raise SpecError(f"{self.to_text()!r} has residual blocks or norms; only a chain is a NetworkSpec")
        layers = list(self.blocks)
        convs = [i for i, layer in enumerate(layers) if layer.is_conv]
        if convs:
            layers[convs[-1]] = replace(layers[convs[-1]], pool_after=True)
        return NetworkSpec(tuple(layers), self.input_shape)

    # ------------------------------------------------------------------ text form
    def to_text(self) -> str:
        """The text form (:mod:`.block_text`); a chain gets exactly :meth:`NetworkSpec.to_text`."""
        if self.is_chain:
            return self.to_chain().to_text()
        return format_blocks(self.blocks, self.input_shape)

    @classmethod
    def from_text(cls, text: str) -> "BlockNetworkSpec":
        """Parse the text form (block syntax, or a chain's text), e.g. ``"mlp 40-64-[64-64]x2-10 relu"``."""
        if not is_block_text(text):
            return cls.from_chain(NetworkSpec.from_text(text))
        blocks, shape = parse_blocks(text)
        return cls(tuple(blocks), shape)

    def describe(self) -> str:
        """The text form and ``dim G_scale`` with its terms."""
        terms = ", ".join(f"{k} {v}" for k, v in self.scale_dim_terms.items() if v)
        return f"{self.to_text()}  [dim G_scale = {self.scale_dim}: {terms or 'none'}]"

    # ------------------------------------------------------------------ torch.nn
    @classmethod
    def from_module(cls, module: nn.Module, input_shape: Sequence[int] | None = None) -> "BlockNetworkSpec":
        """Read an ``nn.Sequential`` of Linear/Conv1d layers, activations, BatchNorm1d (eval mode), LayerNorm,
        :class:`Residual` blocks and global pooling; raises :class:`SpecError` naming the offending module."""
        return cls(tuple(module_to_blocks(module)), tuple(input_shape) if input_shape else None)

    def to_module(self) -> nn.Sequential:
        """A freshly initialised ``nn.Sequential`` with this structure, in eval mode."""
        return blocks_to_module(self.blocks)


def _length(elements, length: int, where: str) -> int:
    for el in elements:
        if isinstance(el, LayerSpec):
            try:
                (length,) = el.output_spatial((length,))
            except SpecError as e:
                raise SpecError(f"{where}: {e}") from None
    return length


def parse_network(text: str) -> NetworkSpec | BlockNetworkSpec:
    """A chain's text gives today's :class:`NetworkSpec`, block syntax a :class:`BlockNetworkSpec`."""
    return BlockNetworkSpec.from_text(text) if is_block_text(text) else NetworkSpec.from_text(text)
