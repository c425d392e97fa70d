"""``torch.nn`` side of a network description: our Sine / pooling modules and the converters
between :class:`~scalegmn_lite.weightspace.layer.LayerSpec` lists and ``torch.nn.Sequential``."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn

from .layer import SUPPORTED_MODULES, LayerSpec, SpecError

__all__ = ["Sine", "GlobalAvgPool", "module_to_layers", "layers_to_module"]


class Sine(nn.Module):
    """SIREN activation ``sin(w0 * x)`` (odd, so its hidden layers have sign-flip symmetry)."""

    def __init__(self, w0: float = 30.0) -> None:
        super().__init__()
        self.w0 = float(w0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * x)

    def extra_repr(self) -> str:
        return f"w0={self.w0:g}"


class GlobalAvgPool(nn.Module):
    """Mean over all spatial axes: ``[N, C, *spatial] -> [N, C]`` (pooling and flatten in one)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1)


_ACT_TYPES = {
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    Sine: "sine",
}


def _unsupported(i, mod: nn.Module, why: str = "") -> SpecError:
    msg = f"module {i} ({type(mod).__name__}) is not supported"
    if why:
        msg += f": {why}"
    return SpecError(f"{msg}. Supported modules: {SUPPORTED_MODULES}")


def _int(v) -> int:
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise SpecError(f"anisotropic stride/padding {v} is not supported")
        return int(v[0])
    return int(v)


def _leaves(model: nn.Sequential, prefix: str = ""):
    """``(name, module)`` in execution order, nested ``nn.Sequential`` flattened (names like ``"2.1"``)."""
    for i, mod in enumerate(model):
        name = f"{prefix}{i}"
        if isinstance(mod, nn.Sequential):
            yield from _leaves(mod, name + ".")
        else:
            yield name, mod


def module_to_layers(model: nn.Module) -> list[LayerSpec]:
    """Walk a ``torch.nn.Sequential`` (nested ones are flattened) and return its layer descriptions.

    ``Conv -> [activation] -> Flatten -> Linear(C*P, out)`` (no pooling) becomes a dense layer with
    ``in_dim = C`` and ``flatten_size = P`` (``in_features`` must be a multiple of ``C``).
    """
    if not isinstance(model, nn.Sequential):
        raise SpecError(
            f"expected a torch.nn.Sequential, got {type(model).__name__}; wrap your layers in "
            "nn.Sequential (residual blocks and other graphs are not supported)"
        )
    layers: list[LayerSpec] = []
    flattened = False  # a Flatten follows the last (unpooled) convolution
    for i, mod in _leaves(model):
        last = layers[-1] if layers else None
        if isinstance(mod, nn.Linear):
            if mod.bias is None:
                raise _unsupported(i, mod, "layers must have a bias (bias=True)")
            if last is not None and last.is_conv and not last.pool_after:
                if not flattened:
                    raise _unsupported(i, mod, "a Linear after a convolution needs nn.Flatten() (LeNet-style) or "
                                               "global average pooling + Flatten in between")
                if mod.in_features % last.out_dim:
                    raise _unsupported(i, mod, f"in_features={mod.in_features} is not a multiple of the "
                                               f"{last.out_dim} channels of the flattened convolution")
                layers.append(LayerSpec("linear", last.out_dim, mod.out_features,
                                        flatten_size=mod.in_features // last.out_dim))
                flattened = False
            else:
                layers.append(LayerSpec("linear", mod.in_features, mod.out_features))
        elif isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            kind = "conv1d" if isinstance(mod, nn.Conv1d) else "conv2d"
            if mod.bias is None:
                raise _unsupported(i, mod, "layers must have a bias (bias=True)")
            if mod.groups != 1 or _int(mod.dilation) != 1:
                raise _unsupported(i, mod, "grouped or dilated convolutions")
            if isinstance(mod.padding, str) or mod.padding_mode != "zeros":
                raise _unsupported(i, mod, "use integer zero padding")
            if flattened:
                raise _unsupported(i, mod, "a convolution after Flatten")
            layers.append(
                LayerSpec(kind, mod.in_channels, mod.out_channels, tuple(mod.kernel_size),
                          _int(mod.stride), _int(mod.padding))
            )
        elif type(mod) in _ACT_TYPES:
            if last is None:
                raise _unsupported(i, mod, "an activation before the first Linear/Conv layer")
            if last.activation is not None:
                raise _unsupported(i, mod, "two activations in a row")
            if last.pool_after:
                raise _unsupported(i, mod, "an activation after global pooling")
            name = _ACT_TYPES[type(mod)]
            param = {"leaky_relu": getattr(mod, "negative_slope", None), "sine": getattr(mod, "w0", None)}.get(name)
            if name == "gelu" and getattr(mod, "approximate", "none") != "none":
                raise _unsupported(i, mod, "use GELU(approximate='none')")
            # an elementwise activation after Flatten is the same function as before it
            layers[-1] = replace(last, activation=name, activation_param=param)
        elif isinstance(mod, (GlobalAvgPool, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            if isinstance(mod, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
                size = mod.output_size
                if any(s != 1 for s in (size if isinstance(size, (tuple, list)) else (size,))):
                    raise _unsupported(i, mod, "only global pooling (output_size=1) is supported")
            if last is None or not last.is_conv or flattened or last.pool_after:
                raise _unsupported(i, mod, "global pooling must directly follow a convolution (and its activation)")
            layers[-1] = replace(last, pool_after=True)
        elif isinstance(mod, nn.Flatten):
            if mod.start_dim != 1 or mod.end_dim != -1:
                raise _unsupported(i, mod, "use nn.Flatten() with the default start_dim=1, end_dim=-1")
            if last is not None and last.is_conv and not last.pool_after:
                flattened = True  # LeNet-style: the next Linear reads every channel's H*W block
            elif last is not None and not last.pool_after:
                raise _unsupported(i, mod, "Flatten is only allowed before the first layer, after pooling, "
                                           "or after the last convolution")
        elif isinstance(mod, (nn.Identity, nn.Dropout)):
            continue
        else:
            raise _unsupported(i, mod)
    if not layers:
        raise SpecError(f"the model has no Linear or Conv layer. Supported modules: {SUPPORTED_MODULES}")
    if flattened:
        raise SpecError("the model ends in Flatten after a convolution; add the Linear layer that reads the "
                        "flattened features (or global pooling for a vector per channel)")
    return layers


def _activation_module(layer: LayerSpec) -> nn.Module | None:
    a = layer.activation
    if a is None or a == "identity":
        return None
    if a == "leaky_relu":
        return nn.LeakyReLU(layer.activation_param)
    if a == "sine":
        return Sine(layer.activation_param)
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU}[a]()


def layers_to_module(layers) -> nn.Sequential:
    """Build a ``torch.nn.Sequential`` (default PyTorch init) for the given layer descriptions; a
    dense layer with ``flatten_size = P`` becomes ``Flatten`` + ``Linear(in_dim * P, out)``."""
    mods: list[nn.Module] = []
    if layers[0].kind == "linear":
        mods.append(nn.Flatten())
    for layer in layers:
        if layer.kind == "linear":
            if layer.is_flatten:
                mods.append(nn.Flatten())
            mods.append(nn.Linear(layer.fan_in, layer.out_dim))
        else:
            conv = nn.Conv1d if layer.kind == "conv1d" else nn.Conv2d
            mods.append(conv(layer.in_dim, layer.out_dim, layer.kernel_size, layer.stride, layer.padding))
        act = _activation_module(layer)
        if act is not None:
            mods.append(act)
        if layer.pool_after:
            mods.append(GlobalAvgPool())
    return nn.Sequential(*mods)


def siren_init_(weight: torch.Tensor, first: bool, w0: float, generator=None) -> torch.Tensor:
    """SIREN initialisation (Sitzmann et al. 2020) in place on ``[..., out, in]`` weights."""
    fan_in = weight.shape[-1]
    bound = 1.0 / fan_in if first else math.sqrt(6.0 / fan_in) / w0
    with torch.no_grad():
        weight.uniform_(-bound, bound, generator=generator)
    return weight
