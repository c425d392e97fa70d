"""The text form of a network structure: short for uniform networks, per-layer lists otherwise.

Grammar (whitespace-separated tokens after the family and widths, in any order)::

    FAMILY WIDTHS [kK] [sS] [pP] [flatten | flatten=N] ACT [a=X] [out=NAME[=X]] [SHAPE]

* ``FAMILY``: ``mlp``, ``siren`` (an MLP with sine activations), ``conv1d`` or ``conv2d``.
* ``WIDTHS``: ``64-32-10`` for an MLP; ``C0-C1-.../D1-D2-...`` for a conv net (channels of the
  convolutions, then the outputs of the dense layers after pooling or Flatten; ``1-8-8`` alone ends
  in global pooling).
* ``kK``, ``sS``, ``pP``: kernel size (``k3``, ``k3x5`` for conv2d), stride, padding. One value for
  every convolution, or a comma list with one value per convolution: ``k5,3 s1,2 p0,1``.
* ``flatten``: the last convolution is flattened into the first dense layer (LeNet-style) instead
  of globally pooled; the positions per channel come from ``SHAPE``, or are given as ``flatten=N``.
* ``ACT``: the hidden activation, or a comma list with one per hidden layer, each optionally with
  its parameter: ``relu,tanh,leaky_relu=0.2,sine=10``. ``a=X`` sets the parameter (LeakyReLU slope,
  sine ``w0``) of every hidden layer whose activation takes one and names none.
* ``out=NAME[=X]``: activation after the last layer (default none).
* ``SHAPE``: input shape without the batch axis, e.g. ``1x28x28`` (for an MLP only when it is not
  just ``(n_0,)``).

:func:`format_spec` writes the shortest form (a single value wherever all layers agree, parameters
only when they differ from the default, written so that they parse back to the same float), so
uniform networks keep their familiar text (``"mlp 64-32-10 relu"``, ``"conv1d 1-8-8/10 k3 tanh
1x40"``) and ``parse_spec(format_spec(s)) == s`` for every structure
:class:`~scalegmn_lite.weightspace.spec.NetworkSpec` accepts.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Sequence

from .layer import ACTIVATIONS, DEFAULT_ACTIVATION_PARAM, LayerSpec, SpecError

__all__ = ["format_spec", "parse_spec", "format_float"]

_EXAMPLES = ("e.g. 'mlp 64-32-10 relu', 'conv1d 1-8-8/10 k3 tanh 1x40' or "
             "'conv2d 1-6-16/32-10 k5,3 s1,2 relu,tanh,relu flatten 1x28x28'")


def format_float(x: float) -> str:
    """Short text of ``x`` that parses back to exactly ``x`` (``%g`` when exact, else ``repr``)."""
    s = f"{x:g}"
    return s if float(s) == x else repr(float(x))


def _uniform(values: Sequence[str]) -> str:
    return values[0] if len(set(values)) == 1 else ",".join(values)


def _act_item(layer: LayerSpec) -> str:
    name = layer.activation or "identity"
    p = layer.activation_param
    if p is not None and p != DEFAULT_ACTIVATION_PARAM.get(name):
        return f"{name}={format_float(p)}"
    return name


def format_spec(layers: Sequence[LayerSpec], input_shape: tuple[int, ...] | None) -> str:
    """The text form of ``layers`` (see the module docstring)."""
    layers = list(layers)
    convs = [layer for layer in layers if layer.is_conv]
    denses = [layer for layer in layers if not layer.is_conv]
    tokens: list[str]
    if not convs:
        tokens = ["mlp", "-".join(str(w) for w in [layers[0].in_dim, *(x.out_dim for x in layers)])]
    else:
        chans = "-".join(str(w) for w in [convs[0].in_dim, *(x.out_dim for x in convs)])
        dense = "-".join(str(x.out_dim) for x in denses)
        tokens = [convs[0].kind, f"{chans}/{dense}" if dense else chans,
                  "k" + _uniform(["x".join(str(k) for k in c.kernel_size) for c in convs])]
        if any(c.stride != 1 for c in convs):
            tokens.append("s" + _uniform([str(c.stride) for c in convs]))
        if any(c.padding != 0 for c in convs):
            tokens.append("p" + _uniform([str(c.padding) for c in convs]))
        if denses and denses[0].is_flatten:
            tokens.append("flatten" if input_shape else f"flatten={denses[0].flatten_size}")
    hidden = layers[:-1]
    if not hidden:
        tokens.append("identity")
    elif len({(x.activation, x.activation_param) for x in hidden}) == 1:
        first = hidden[0]
        tokens.append(first.activation or "identity")
        item = _act_item(first)
        if "=" in item:
            tokens.append("a=" + item.split("=", 1)[1])
    else:
        tokens.append(",".join(_act_item(x) for x in hidden))
    if layers[-1].activation is not None:
        tokens.append("out=" + _act_item(layers[-1]))
    if input_shape is not None and (convs or tuple(input_shape) != (layers[0].in_dim,)):
        tokens.append("x".join(str(s) for s in input_shape))
    return " ".join(tokens)


def _float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SpecError(f"cannot parse the number {text!r} in {where!r}") from None


def _parse_act(item: str, where: str) -> tuple[str | None, float | None] | None:
    """``"relu"`` / ``"leaky_relu=0.2"`` -> ``(name, param)``; ``None`` if ``item`` is no activation."""
    name, eq, param = item.partition("=")
    if name not in ACTIVATIONS and name != "none":
        return None
    act = None if name in ("identity", "none") else name
    return act, (_float(param, where) if eq else None)


def _ints(text: str, what: str, where: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise SpecError(f"cannot parse the {what} list {text!r} in {where!r}") from None


def _per_layer(values: list, n: int, what: str, where: str) -> list:
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise SpecError(f"{where!r}: {len(values)} {what} for {n} layers; give one value or one per layer")
    return values


def parse_spec(text: str) -> tuple[list[LayerSpec], tuple[int, ...] | None]:
    """Parse the text form into layers and the input shape (see the module docstring)."""
    tokens = text.split()
    if len(tokens) < 2:
        raise SpecError(f"cannot parse {text!r}: expected {_EXAMPLES}")
    family, widths_tok, rest = tokens[0].lower(), tokens[1], tokens[2:]
    if family not in ("mlp", "siren", "conv1d", "conv2d"):
        raise SpecError(f"cannot parse {text!r}: family must be mlp, siren, conv1d or conv2d")
    acts: list[tuple[str | None, float | None]] | None = None
    a_param = out = kernels = shape = None
    strides, paddings = [1], [0]
    flatten: bool | int = False
    if family == "siren":
        family, acts = "mlp", [("sine", None)]
    seen_act = False
    for tok in rest:
        low = tok.lower()
        if low.startswith("a="):
            a_param = _float(low[2:], text)
        elif low.startswith("out="):
            out = _parse_act(low[4:], text)
            if out is None:
                raise SpecError(f"{text!r}: unknown output activation {low[4:]!r}; use one of {sorted(ACTIVATIONS)}")
        elif low == "flatten":
            flatten = True
        elif re.fullmatch(r"flatten=\d+", low):
            flatten = int(low[8:])
        elif re.fullmatch(r"k\d+(x\d+)*(,\d+(x\d+)*)*", low):
            kernels = [tuple(int(v) for v in item.split("x")) for item in low[1:].split(",")]
        elif re.fullmatch(r"s[\d,]+", low):
            strides = _ints(low[1:], "stride", text)
        elif re.fullmatch(r"p[\d,]+", low):
            paddings = _ints(low[1:], "padding", text)
        elif re.fullmatch(r"\d+(x\d+)*", low):
            shape = tuple(int(v) for v in low.split("x"))
        else:
            items = [_parse_act(item, text) for item in low.split(",")]
            if any(item is None for item in items):
                raise SpecError(f"cannot parse token {tok!r} in {text!r}; expected {_EXAMPLES}")
            if seen_act:
                raise SpecError(f"{text!r} names the hidden activations twice")
            acts, seen_act = items, True
    if acts is None:
        raise SpecError(f"{text!r} names no activation; add one of {sorted(ACTIVATIONS)}")
    conv_part, _, dense_part = widths_tok.partition("/")
    try:
        conv_w = [int(v) for v in conv_part.split("-")]
        dense_w = [int(v) for v in dense_part.split("-")] if dense_part else []
    except ValueError:
        raise SpecError(f"cannot parse widths {widths_tok!r}: use e.g. 64-32-10 or 1-8-8/10") from None
    if family == "mlp" and (dense_w or len(conv_w) < 2):
        raise SpecError(f"an mlp needs widths like 64-32-10, got {widths_tok!r}")
    if family != "mlp" and len(conv_w) < 2:
        raise SpecError(f"{text!r}: need at least two channel counts, e.g. 1-8/10")
    n_layers = len(conv_w) - 1 + len(dense_w)
    hidden = _per_layer(acts, n_layers - 1, "hidden activations", text)
    if a_param is not None:
        if not any(name in DEFAULT_ACTIVATION_PARAM for name, _ in hidden):
            raise SpecError(f"{text!r}: a={a_param:g} but no hidden activation takes a parameter "
                            f"(only {sorted(DEFAULT_ACTIVATION_PARAM)} do)")
        hidden = [(n, a_param if p is None and n in DEFAULT_ACTIVATION_PARAM else p) for n, p in hidden]
    hidden.append(out or (None, None))
    layers: list[LayerSpec] = []
    if family == "mlp":
        if kernels is not None or flatten or strides != [1] or paddings != [0]:
            raise SpecError(f"{text!r}: an mlp has no kernel, stride, padding or flatten tokens")
        for (a, b), (act, param) in zip(zip(conv_w[:-1], conv_w[1:]), hidden):
            layers.append(LayerSpec("linear", a, b, activation=act, activation_param=param))
        return layers, shape
    ndim = 1 if family == "conv1d" else 2
    if kernels is None:
        raise SpecError(f"{text!r}: a {family} needs a kernel size token such as k3")
    n_conv = len(conv_w) - 1
    kernels = _per_layer(kernels, n_conv, "kernel sizes", text)
    kernels = [k * ndim if len(k) == 1 else k for k in kernels]
    if any(len(k) != ndim for k in kernels):
        raise SpecError(f"{text!r}: {family} needs {ndim}-d kernels, got {kernels}")
    strides = _per_layer(strides, n_conv, "strides", text)
    paddings = _per_layer(paddings, n_conv, "paddings", text)
    for i, (a, b) in enumerate(zip(conv_w[:-1], conv_w[1:])):
        act, param = hidden[i]
        layers.append(LayerSpec(family, a, b, kernels[i], strides[i], paddings[i], act, param))
    flatten_size = None
    if flatten is not False:
        if not dense_w:
            raise SpecError(f"{text!r}: flatten needs dense layers after the convolutions, e.g. 1-6-16/120-10")
        if flatten is True:
            if shape is None:
                raise SpecError(f"{text!r}: flatten needs the input shape (e.g. 1x28x28) or flatten=N "
                                "(positions per channel of the last convolution)")
            spatial = tuple(shape[1:])
            for layer in layers:
                spatial = layer.output_spatial(spatial)
            flatten_size = math.prod(spatial)
        else:
            flatten_size = flatten
    else:
        layers[-1] = replace(layers[-1], pool_after=True)
    prev = conv_w[-1]
    for j, b in enumerate(dense_w):
        act, param = hidden[n_conv + j]
        layers.append(LayerSpec("linear", prev, b, activation=act, activation_param=param,
                                flatten_size=flatten_size if j == 0 else None))
        prev = b
    return layers, shape
