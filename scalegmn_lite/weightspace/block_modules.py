"""``torch.nn`` side of block networks: the :class:`Residual` module and converters between element lists
(:mod:`.block_parts`) and ``nn.Sequential`` models.

A model is an ``nn.Sequential`` (nested ones are flattened) of ``Linear``/``Conv1d`` layers (with bias),
activations, ``BatchNorm1d`` (eval mode, affine, with running statistics), ``LayerNorm(C)`` (elementwise affine, after
a Linear), :class:`Residual` blocks (not nested), global average pooling (``AdaptiveAvgPool1d(1)`` or
:class:`~scalegmn_lite.weightspace.modules.GlobalAvgPool`, once, before the first Linear after convolutions),
``Flatten`` (at the start or after pooling), ``Identity`` and ``Dropout`` (ignored).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch
from torch import nn

from .block_parts import Element, Norm, ResidualBlock
from .layer import LayerSpec, SpecError
from .modules import _ACT_TYPES, GlobalAvgPool, _activation_module, _leaves, module_to_layers

__all__ = ["Residual", "module_to_blocks", "blocks_to_module", "module_tensors"]

_SUPPORTED = ("Linear, Conv1d, activations (ReLU, LeakyReLU, Tanh, Sigmoid, GELU, SiLU, Sine), BatchNorm1d (eval "
              "mode), LayerNorm(C), scalegmn_lite.weightspace.blocks.Residual, AdaptiveAvgPool1d(1)/GlobalAvgPool, "
              "Flatten, Identity, Dropout, nested nn.Sequential")


class Residual(nn.Module):
    """``y = activation(branch(x) + shortcut(x))``; ``shortcut=None`` is the identity.

    Args:
        branch: an ``nn.Sequential`` of layers, norms and activations (a single module is wrapped).
        shortcut: ``None`` (identity), or a projection: ``nn.Linear``/``nn.Conv1d(kernel_size=1)``, optionally in an
            ``nn.Sequential`` with a ``BatchNorm1d``/``LayerNorm``.
        activation: applied after the addition (``None``: none).
    """

    def __init__(self, branch: nn.Module, shortcut: nn.Module | None = None,
                 activation: nn.Module | None = None) -> None:
        super().__init__()
        self.branch = branch if isinstance(branch, nn.Sequential) else nn.Sequential(branch)
        self.shortcut = shortcut
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch(x) + (x if self.shortcut is None else self.shortcut(x))
        return y if self.activation is None else self.activation(y)


def _unsupported(name: str, mod: nn.Module, why: str) -> SpecError:
    return SpecError(f"module {name} ({type(mod).__name__}) is not supported: {why}. Supported modules: {_SUPPORTED}")


def _layer(name: str, mod: nn.Module) -> LayerSpec:
    """A Linear/Conv1d through the chain's reader (its checks: bias, groups, dilation, padding)."""
    try:
        (layer,) = module_to_layers(nn.Sequential(mod))
    except SpecError as e:
        raise SpecError(str(e).replace("module 0 ", f"module {name} ", 1)) from None
    return layer


def _norm(name: str, mod: nn.Module) -> Norm:
    kind = type(mod).__name__
    if isinstance(mod, nn.BatchNorm1d):
        if mod.training:
            raise SpecError(f"module {name} ({kind}) is in training mode: it normalizes with the batch's statistics, "
                            "not its running mean and var, so it is no fixed function of its parameters; call "
                            "model.eval() first")
        if not mod.affine or not mod.track_running_stats:
            raise SpecError(f"module {name} ({kind}) needs affine=True and track_running_stats=True (gamma, beta, "
                            "running_mean and running_var are its parameters; gamma = 1, beta = 0 gives the "
                            "non-affine function)")
        return Norm("batchnorm", mod.num_features, mod.eps)
    if not mod.elementwise_affine or mod.bias is None:
        raise SpecError(f"module {name} ({kind}) needs elementwise_affine=True and bias=True: its feature "
                        "permutations move gamma and beta, and its neurons are rescaled through them (gamma = 1, "
                        "beta = 0 gives the non-affine function)")
    if len(mod.normalized_shape) != 1:
        raise SpecError(f"module {name} ({kind}) normalizes over {tuple(mod.normalized_shape)}; only LayerNorm(C) "
                        "over the features of a Linear layer is supported (not over a conv's channels and length)")
    return Norm("layernorm", mod.normalized_shape[0], mod.eps)


def _activation(name: str, mod: nn.Module) -> tuple[str, float | None]:
    if type(mod) not in _ACT_TYPES:
        raise _unsupported(name, mod, "not an activation")
    act = _ACT_TYPES[type(mod)]
    if act == "gelu" and getattr(mod, "approximate", "none") != "none":
        raise _unsupported(name, mod, "use GELU(approximate='none')")
    return act, {"leaky_relu": getattr(mod, "negative_slope", None), "sine": getattr(mod, "w0", None)}.get(act)


def _walk(seq: nn.Module, prefix: str, top: bool) -> list[Element]:
    out: list[Element] = []
    kind, pooled = None, False
    for name, mod in _leaves(seq if isinstance(seq, nn.Sequential) else nn.Sequential(seq), prefix):
        if isinstance(mod, (nn.Linear, nn.Conv1d, Residual)):
            if isinstance(mod, Residual):
                if not top:
                    raise _unsupported(name, mod, "residual blocks cannot be nested")
                el = _residual(name, mod)
            else:
                el = _layer(name, mod)
            if kind == "conv1d" and el.kind == "linear" and not pooled:
                raise _unsupported(name, mod, "a dense layer after convolutions needs global average pooling "
                                              "(AdaptiveAvgPool1d(1) + Flatten, or GlobalAvgPool) in between")
            if pooled and el.kind == "conv1d":
                raise _unsupported(name, mod, "a convolution after global pooling")
            kind = el.kind
            out.append(el)
        elif isinstance(mod, (nn.BatchNorm1d, nn.LayerNorm)):
            out.append(_norm(name, mod))
        elif type(mod) in _ACT_TYPES:
            if not out or out[-1].activation is not None:
                why = "two activations in a row" if out else "an activation before the first layer"
                raise _unsupported(name, mod, why)
            act, param = _activation(name, mod)
            out[-1] = replace(out[-1], activation=act, activation_param=param)
        elif isinstance(mod, (GlobalAvgPool, nn.AdaptiveAvgPool1d)):
            if isinstance(mod, nn.AdaptiveAvgPool1d) and mod.output_size not in (1, (1,)):
                raise _unsupported(name, mod, "only global pooling (output_size=1)")
            if not top or kind != "conv1d" or pooled:
                raise _unsupported(name, mod, "global pooling goes once after the convolutions of the network")
            pooled = True
        elif isinstance(mod, nn.Flatten):
            if out and not pooled:
                raise _unsupported(name, mod, "Flatten goes at the start or after global pooling")
        elif not isinstance(mod, (nn.Identity, nn.Dropout)):
            raise _unsupported(name, mod, "not a block-network module (conv2d chains: NetworkSpec.from_sequential)")
    return out


def _residual(name: str, mod: Residual) -> ResidualBlock:
    branch = _walk(mod.branch, f"{name}.branch.", top=False)
    shortcut = [] if mod.shortcut is None else _walk(mod.shortcut, f"{name}.shortcut.", top=False)
    act, param = (None, None) if mod.activation is None else _activation(f"{name}.activation", mod.activation)
    try:
        return ResidualBlock(tuple(branch), tuple(shortcut), act, param)
    except SpecError as e:
        raise SpecError(f"module {name} (Residual): {e}") from None


def module_to_blocks(model: nn.Module) -> list[Element]:
    """The elements of an ``nn.Sequential`` block network (see the module docstring); raises :class:`SpecError`
    naming the first module that does not fit (by its path, e.g. ``2.branch.1``)."""
    if not isinstance(model, nn.Sequential):
        raise SpecError(f"expected a torch.nn.Sequential, got {type(model).__name__}; wrap the layers and "
                        "Residual blocks in nn.Sequential")
    return _walk(model, "", top=True)


def _element_modules(el: Element) -> list[nn.Module]:
    if isinstance(el, ResidualBlock):
        branch = nn.Sequential(*[m for e in el.branch for m in _element_modules(e)])
        shortcut = nn.Sequential(*[m for e in el.shortcut for m in _element_modules(e)]) if el.shortcut else None
        return [Residual(branch, shortcut, _activation_module(el))]
    if isinstance(el, Norm):
        mod = nn.BatchNorm1d(el.width, eps=el.eps) if el.kind == "batchnorm" else nn.LayerNorm(el.width, eps=el.eps)
    elif el.kind == "linear":
        mod = nn.Linear(el.in_dim, el.out_dim)
    else:
        mod = nn.Conv1d(el.in_dim, el.out_dim, el.kernel_size, el.stride, el.padding)
    act = _activation_module(el)
    return [mod] if act is None else [mod, act]


def blocks_to_module(blocks: Sequence[Element]) -> nn.Sequential:
    """A freshly initialised ``nn.Sequential`` (eval mode) for the elements: ``Flatten`` first for an MLP,
    ``GlobalAvgPool`` between the convolutions and the first dense element (or at the end)."""
    conv = blocks[0].kind == "conv1d"
    mods: list[nn.Module] = [] if conv else [nn.Flatten()]
    for el in blocks:
        if conv and el.kind == "linear":
            mods.append(GlobalAvgPool())
            conv = False
        mods += _element_modules(el)
    if conv:
        mods.append(GlobalAvgPool())
    return nn.Sequential(*mods).eval()


def module_tensors(module: nn.Module) -> list[torch.Tensor]:
    """The parameter and buffer tensors of a block-network module in parameter order (``weight, bias`` of a layer or
    LayerNorm, ``weight, bias, running_mean, running_var`` of a BatchNorm1d; a block's branch, then its shortcut)."""
    out = []
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.LayerNorm)):
            out += [m.weight, m.bias]
        elif isinstance(m, nn.BatchNorm1d):
            out += [m.weight, m.bias, m.running_mean, m.running_var]
    return out
