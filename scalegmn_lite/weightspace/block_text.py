"""The text form of a block network: the chain's syntax, with residual blocks in brackets and norm suffixes.

Grammar (whitespace-separated tokens after the family and the body, in any order)::

    FAMILY BODY [kK] [sS] [pP] ACT [a=X] [out=NAME[=X]] [eps=X] [SHAPE]

    BODY   := WIDTH ('-' ITEM)* ['/' ITEM ('-' ITEM)*]       conv1d: convolutions before '/', dense after
    ITEM   := LAYER | BLOCK
    LAYER  := WIDTH [kK][sS][pP] [NORM] [':' NAME['=' X]]
    NORM   := ('bn' | 'ln') ['(eps=' X ')']
    BLOCK  := '[' LAYER ('-' LAYER)* ['|' PROJ] ']' ['x' REPEAT] [':' NAME['=' X]]
    PROJ   := 'proj' [sS] [NORM]

* ``FAMILY``: ``mlp`` or ``conv1d``. The first ``WIDTH`` is the input width (features or channels).
* ``LAYER``: a Linear/Conv1d layer with ``WIDTH`` outputs; ``kK sS pP`` override the global kernel, stride and
  padding of a convolution; ``bn``/``ln`` put a BatchNorm1d / LayerNorm (with its ``eps`` if it differs from the
  global one) after it, and the activation then follows the norm.
* Activations: ``ACT`` is the hidden activation of every layer/norm and of every block's addition; the last layer of
  a branch has none (its output is added to the shortcut); the network's last element takes ``out=`` (default
  none). ``:NAME`` overrides one item (``:identity`` for none, ``:leaky_relu=0.2`` with a parameter); ``a=X`` sets
  the parameter of ``ACT``.
* ``BLOCK``: ``[branch]`` with an identity shortcut (the branch must end in the block's input width), or
  ``[branch|proj]`` with a projection (Linear, or Conv1d with kernel 1, padding 0, stride ``sS``), optionally with a
  norm (``|projs2bn``: ResNet's downsampling). ``xN`` repeats the block ``N`` times; ``:NAME`` is the activation
  after the addition (default ``ACT``; ``:identity`` for a linear residual stream).
* ``eps=X``: ``eps`` of every norm without its own (default torch's ``1e-5``; ``eps=0`` for exact gauge claims).
* ``SHAPE``: the input shape, e.g. ``1x32`` (conv1d networks with residual blocks need it).

Examples (see :mod:`~scalegmn_lite.weightspace.blocks` for their meaning)::

    mlp 40-64-[64-64]x2-10 relu
    mlp 40-64bn-[64ln-64]-10 tanh
    mlp 8-16:identity-[32-16]x3:identity-4 relu
    mlp 40-[64-128|proj]-10 relu
    conv1d 1-16bn-[16bn-16bn]x2-[32s2bn-32bn|projs2bn]/10 k3 p1 relu 1x32

A text without brackets, norms, per-item suffixes or ``eps=`` is a chain's (:mod:`.spec_text`), and a chain is
written in that form. :func:`format_blocks` writes the shortest form (the most common kernel, stride, padding,
activation and ``eps`` as globals; equal consecutive blocks as ``xN``), and ``parse_blocks(format_blocks(b)) == b``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Sequence

from .block_parts import DEFAULT_EPS, Element, Norm, ResidualBlock
from .layer import ACTIVATIONS, DEFAULT_ACTIVATION_PARAM, LayerSpec, SpecError
from .spec_text import _float, _parse_act, format_float

__all__ = ["format_blocks", "parse_blocks", "is_block_text"]

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?"
_ACT = rf"(?::([a-z_]+)(?:=({_NUM}))?)?"
_NORM = rf"(?:(bn|ln)(?:\(eps=({_NUM})\))?)?"
_LAYER = re.compile(rf"(\d+)(?:k(\d+))?(?:s(\d+))?(?:p(\d+))?{_NORM}{_ACT}")
_PROJ = re.compile(rf"proj(?:s(\d+))?{_NORM}")
_END = re.compile(rf"\](?:x(\d+))?{_ACT}")
_NORMS = {"bn": "batchnorm", "ln": "layernorm"}
_TOKENS = {v: k for k, v in _NORMS.items()}
_EXAMPLES = "e.g. 'mlp 40-64-[64-64]x2-10 relu' or 'conv1d 1-16bn-[16bn-16bn]x2/10 k3 p1 relu 1x32'"


def is_block_text(text: str) -> bool:
    """``text`` uses block syntax: brackets, a norm or per-item suffix in the body, or an ``eps=`` token."""
    tokens = text.lower().split()
    if len(tokens) < 2:
        return False
    return bool(re.search(r"[\[\]|:]|\d(bn|ln)|\d[ksp]\d", tokens[1])) or any(t.startswith("eps=") for t in tokens)


# ---------------------------------------------------------------- parsing
@dataclass
class _Item:
    width: int
    conv: tuple[int | None, int | None, int | None] = (None, None, None)  # kernel, stride, padding
    norm: str | None = None
    eps: float | None = None
    act: tuple[str | None, float | None] | None = None  # None: the default of its position


@dataclass
class _Block:
    items: list[_Item]
    proj: tuple[int | None, str | None, float | None] | None = None
    repeat: int = 1
    act: tuple[str | None, float | None] | None = None


class _Parser:
    def __init__(self, text: str, body: str) -> None:
        self.text, self.s, self.pos = text, body, 0

    def fail(self, what: str) -> SpecError:
        return SpecError(f"cannot parse {self.text!r} at {self.s[:self.pos]}>>{self.s[self.pos:]}: {what}; {_EXAMPLES}")

    def act(self, name: str | None, param: str | None):
        if name is None:
            return None
        item = _parse_act(f"{name}={param}" if param is not None else name, self.text)
        if item is None:
            raise self.fail(f"unknown activation {name!r}; use one of {sorted(ACTIVATIONS)}")
        return item

    def norm(self, m, i: int) -> tuple[str | None, float | None]:
        return (_NORMS[m.group(i)] if m.group(i) else None,
                _float(m.group(i + 1), self.text) if m.group(i + 1) is not None else None)

    def sequence(self, in_block: bool = False) -> list:
        items = [self.item(in_block)]
        while self.s.startswith("-", self.pos):
            self.pos += 1
            items.append(self.item(in_block))
        return items

    def item(self, in_block: bool):
        if self.s.startswith("[", self.pos):
            if in_block:
                raise self.fail("residual blocks cannot be nested")
            self.pos += 1
            block = _Block(self.sequence(in_block=True))
            if self.s.startswith("|", self.pos):
                m = _PROJ.match(self.s, self.pos + 1)
                if m is None:
                    self.pos += 1
                    raise self.fail("expected a projection shortcut 'proj', 'projs2', 'projbn' or 'projs2bn'")
                block.proj = (int(m.group(1)) if m.group(1) else None, *self.norm(m, 2))
                self.pos = m.end()
            m = _END.match(self.s, self.pos)
            if m is None:
                raise self.fail("expected '-', '|' or ']' (a block is [LAYER-LAYER...] or [LAYER-...|proj])")
            block.repeat = int(m.group(1)) if m.group(1) else 1
            if block.repeat < 1:
                raise self.fail("a block repeats at least once (x1)")
            block.act = self.act(m.group(2), m.group(3))
            self.pos = m.end()
            return block
        m = _LAYER.match(self.s, self.pos)
        if m is None:
            raise self.fail("expected a width (e.g. 64, 64bn, 16k3s2, 64:tanh) or a block [..]")
        self.pos = m.end()
        conv = tuple(int(g) if g else None for g in m.group(2, 3, 4))
        return _Item(int(m.group(1)), conv, *self.norm(m, 5), self.act(m.group(7), m.group(8)))


@dataclass
class _Globals:
    family: str
    kernel: int | None = None
    stride: int = 1
    padding: int = 0
    hidden: tuple[str | None, float | None] | None = None
    out: tuple[str | None, float | None] = (None, None)
    eps: float = DEFAULT_EPS


def _build_layer(item: _Item, kind: str, in_dim: int, act, g: _Globals, where: str) -> list:
    act = item.act if item.act is not None else act
    if kind == "linear":
        if any(v is not None for v in item.conv):
            raise SpecError(f"{where}: a dense layer has no kernel, stride or padding suffix (item {item.width})")
        layer = LayerSpec("linear", in_dim, item.width)
    else:
        k, s, p = item.conv
        k = k if k is not None else g.kernel
        if k is None:
            raise SpecError(f"{where}: conv1d layer {in_dim}->{item.width} has no kernel; add a global kK token "
                            f"(e.g. k3) or a suffix ({item.width}k3)")
        layer = LayerSpec("conv1d", in_dim, item.width, (k,), g.stride if s is None else s,
                          g.padding if p is None else p)
    if item.norm is None:
        return [replace(layer, activation=act[0], activation_param=act[1])]
    eps = g.eps if item.eps is None else item.eps
    return [layer, Norm(item.norm, item.width, eps, act[0], act[1])]


def _build_block(block: _Block, kind: str, in_dim: int, act, g: _Globals, where: str) -> ResidualBlock:
    branch, prev = [], in_dim
    for j, item in enumerate(block.items):
        last = j == len(block.items) - 1
        branch += _build_layer(item, kind, prev, (None, None) if last else g.hidden, g, where)
        prev = item.width
    shortcut = []
    if block.proj is not None:
        stride, norm, eps = block.proj
        if kind == "linear":
            if stride is not None:
                raise SpecError(f"{where}: a dense projection shortcut has no stride")
            shortcut.append(LayerSpec("linear", in_dim, prev))
        else:
            shortcut.append(LayerSpec("conv1d", in_dim, prev, (1,), stride or 1, 0))
        if norm is not None:
            shortcut.append(Norm(norm, prev, g.eps if eps is None else eps))
    act = block.act if block.act is not None else act
    return ResidualBlock(tuple(branch), tuple(shortcut), act[0], act[1])


def parse_blocks(text: str) -> tuple[list[Element], tuple[int, ...] | None]:
    """Parse block syntax into elements and the input shape (see the module docstring)."""
    tokens = text.lower().split()
    if len(tokens) < 2 or tokens[0] not in ("mlp", "conv1d"):
        raise SpecError(f"cannot parse {text!r}: block networks start with mlp or conv1d and a body; {_EXAMPLES}")
    g, shape, a_param = _Globals(tokens[0]), None, None
    for tok in tokens[2:]:
        if tok.startswith("a="):
            a_param = _float(tok[2:], text)
        elif tok.startswith("out="):
            out = _parse_act(tok[4:], text)
            if out is None:
                raise SpecError(f"{text!r}: unknown output activation {tok[4:]!r}; use one of {sorted(ACTIVATIONS)}")
            g.out = out
        elif tok.startswith("eps="):
            g.eps = _float(tok[4:], text)
        elif re.fullmatch(r"[ksp]\d+", tok):
            if g.family == "mlp":
                raise SpecError(f"{text!r}: an mlp has no kernel, stride or padding tokens")
            setattr(g, {"k": "kernel", "s": "stride", "p": "padding"}[tok[0]], int(tok[1:]))
        elif re.fullmatch(r"[ksp][\d,x]+", tok):
            raise SpecError(f"{text!r}: block syntax takes one global {tok[0]} value ({tok!r} is a list); give a "
                            f"layer its own with a suffix, e.g. 16{tok[0]}3")
        elif re.fullmatch(r"\d+(x\d+)*", tok):
            shape = tuple(int(v) for v in tok.split("x"))
        else:
            act = _parse_act(tok, text) if "," not in tok else None
            if act is None:
                hint = "; block syntax takes one hidden activation, override an item with :NAME" if "," in tok else ""
                raise SpecError(f"cannot parse token {tok!r} in {text!r}{hint}; {_EXAMPLES}")
            if g.hidden is not None:
                raise SpecError(f"{text!r} names the hidden activation twice")
            g.hidden = act
    if g.hidden is None:
        raise SpecError(f"{text!r} names no activation; add one of {sorted(ACTIVATIONS)}")
    if a_param is not None:
        if g.hidden[0] not in DEFAULT_ACTIVATION_PARAM:
            raise SpecError(f"{text!r}: a={a_param:g} but {g.hidden[0] or 'identity'} takes no parameter (only "
                            f"{sorted(DEFAULT_ACTIVATION_PARAM)} do)")
        g.hidden = (g.hidden[0], a_param)
    conv_body, slash, dense_body = tokens[1].partition("/")
    parser = _Parser(text, conv_body)
    sections = [(parser.sequence(), "linear" if g.family == "mlp" else "conv1d")]
    if parser.pos != len(conv_body):
        raise parser.fail("unexpected character")
    if slash:
        if g.family == "mlp":
            raise SpecError(f"{text!r}: '/' separates convolutions from dense layers; an mlp has none")
        parser = _Parser(text, dense_body)
        sections.append((parser.sequence(), "linear"))
        if parser.pos != len(dense_body):
            raise parser.fail("unexpected character")
    first = sections[0][0][0]
    if not isinstance(first, _Item) or first != _Item(first.width):
        raise SpecError(f"{text!r}: the body starts with the input width (a plain number), e.g. 40-[64-64]-10")
    sections[0] = (sections[0][0][1:], sections[0][1])
    n_items = sum(len(items) for items, _ in sections)
    if n_items == 0:
        raise SpecError(f"{text!r}: no layer after the input width")
    elements, prev, count = [], first.width, 0
    for items, kind in sections:
        for item in items:
            count += 1
            final = count == n_items
            if isinstance(item, _Item):
                elements += _build_layer(item, kind, prev, g.out if final else g.hidden, g, text)
            else:
                for r in range(item.repeat):
                    act = g.out if final and r == item.repeat - 1 else g.hidden
                    elements.append(_build_block(item, kind, prev, act, g, text))
            prev = item.width if isinstance(item, _Item) else item.items[-1].width
    return elements, shape


# ---------------------------------------------------------------- formatting
def _act_of(el: Element) -> tuple[str | None, float | None]:
    return el.activation, el.activation_param


def _act_text(act: tuple[str | None, float | None], with_param: bool = True) -> str:
    name, param = act
    if with_param and param is not None:
        return f"{name}={format_float(param)}"
    return name or "identity"


def _items(elements: Sequence[Element]) -> list[tuple[LayerSpec, Norm | None]]:
    """Layers paired with the norm that follows them."""
    out = []
    for el in elements:
        if isinstance(el, Norm):
            out[-1] = (out[-1][0], el)
        else:
            out.append((el, None))
    return out


def _most_common(values: list, default):
    return Counter(values).most_common(1)[0][0] if values else default


class _Formatter:
    def __init__(self, blocks: Sequence[Element]) -> None:
        self.blocks = list(blocks)
        flat = [e for b in blocks for e in (b.elements if isinstance(b, ResidualBlock) else (b,))]
        convs = [e for b in blocks for e in (b.branch if isinstance(b, ResidualBlock) else (b,))
                 if isinstance(e, LayerSpec) and e.is_conv]
        self.k = _most_common([c.kernel_size[0] for c in convs], None)
        self.s = _most_common([c.stride for c in convs], 1)
        self.p = _most_common([c.padding for c in convs], 0)
        self.eps = _most_common([n.eps for n in flat if isinstance(n, Norm)], DEFAULT_EPS)
        pairs = _items(blocks)
        layers, adds = [], []  # activations at positions that take the global default: layers, block additions
        for j, (el, norm) in enumerate(pairs):
            if isinstance(el, ResidualBlock):
                layers += [_act_of(n or layer) for layer, n in _items(el.branch)[:-1]]
            if j < len(pairs) - 1:
                (adds if isinstance(el, ResidualBlock) else layers).append(_act_of(norm or el))
        self.hidden = _most_common(layers, _most_common(adds, (None, None)))
        self.out = _act_of(blocks[-1])

    def norm(self, norm: Norm | None) -> str:
        if norm is None:
            return ""
        return _TOKENS[norm.kind] + ("" if norm.eps == self.eps else f"(eps={format_float(norm.eps)})")

    def override(self, act, default) -> str:
        return "" if act == default else ":" + _act_text(act)

    def layer(self, layer: LayerSpec, norm: Norm | None, default) -> str:
        text = str(layer.out_dim)
        if layer.is_conv:
            k, s, p = layer.kernel_size[0], layer.stride, layer.padding
            text += (f"k{k}" if k != self.k else "") + (f"s{s}" if s != self.s else "") + (f"p{p}" if p != self.p
                                                                                          else "")
        return text + self.norm(norm) + self.override(_act_of(norm or layer), default)

    def block(self, b: ResidualBlock, repeat: int, final: bool) -> str:
        items = _items(b.branch)
        text = "-".join(self.layer(layer, norm, (None, None) if j == len(items) - 1 else self.hidden)
                        for j, (layer, norm) in enumerate(items))
        if b.shortcut:
            proj, norm = _items(b.shortcut)[0]
            text += "|proj" + (f"s{proj.stride}" if proj.stride != 1 else "") + self.norm(norm)
        act = _act_of(b)
        if not final:
            omit = act == self.hidden
        else:
            omit = act == self.out and (repeat == 1 or act == self.hidden)
        return f"[{text}]" + (f"x{repeat}" if repeat > 1 else "") + ("" if omit else ":" + _act_text(act))

    def body(self) -> str:
        groups: list[tuple[Element, Norm | None, int]] = []  # equal consecutive blocks as one group: xN
        for el, norm in _items(self.blocks):
            if groups and isinstance(el, ResidualBlock) and groups[-1][0] == el:
                groups[-1] = (el, None, groups[-1][2] + 1)
            else:
                groups.append((el, norm, 1))
        text = str(self.blocks[0].in_dim)
        conv = self.blocks[0].kind == "conv1d"
        for j, (el, norm, repeat) in enumerate(groups):
            final = j == len(groups) - 1
            sep = "-"
            if conv and el.kind == "linear":
                sep, conv = "/", False
            if isinstance(el, ResidualBlock):
                text += sep + self.block(el, repeat, final)
            else:
                text += sep + self.layer(el, norm, self.out if final else self.hidden)
        return text


def format_blocks(blocks: Sequence[Element], input_shape: tuple[int, ...] | None) -> str:
    """The text form of a block network (see the module docstring)."""
    f = _Formatter(blocks)
    family = "mlp" if f.blocks[0].kind == "linear" else "conv1d"
    tokens = [family, f.body()]
    if f.k is not None:
        tokens.append(f"k{f.k}")
    if f.s != 1:
        tokens.append(f"s{f.s}")
    if f.p != 0:
        tokens.append(f"p{f.p}")
    tokens.append(_act_text(f.hidden, with_param=False))
    if f.hidden[1] is not None and f.hidden[1] != DEFAULT_ACTIVATION_PARAM.get(f.hidden[0]):
        tokens.append("a=" + format_float(f.hidden[1]))
    if f.out != (None, None):
        tokens.append("out=" + _act_text(f.out))
    if f.eps != DEFAULT_EPS:
        tokens.append("eps=" + format_float(f.eps))
    if input_shape is not None and (family != "mlp" or tuple(input_shape) != (f.blocks[0].in_dim,)):
        tokens.append("x".join(str(s) for s in input_shape))
    return " ".join(tokens)
