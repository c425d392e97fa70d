"""Seeded random block networks for tests/test_blocks.py and tests/test_block_gauge.py: plain layers, BatchNorm and
LayerNorm, identity and projection residual blocks (with strides and norms), repeated blocks, every activation kind."""

from __future__ import annotations

import random

from scalegmn_lite.weightspace.blocks import BlockNetworkSpec, LayerSpec, Norm, ResidualBlock

ACTS = ("relu", "leaky_relu", "tanh", "identity", "sigmoid", "sine")
EPS = (1e-5, 0.0, 1e-3)


def _act(rng: random.Random, acts=ACTS) -> tuple[str, float | None]:
    name = rng.choice(acts)
    if name == "leaky_relu":
        return name, rng.choice([None, 0.2])
    if name == "sine":
        return name, rng.choice([None, 3.0])
    return name, None


def _unit(rng, kind: str, c_in: int, c_out: int, act, stride: int = 1, norms: bool = True) -> list:
    """A layer ending in ``act``, possibly through a norm."""
    conv = {}
    if kind == "conv1d":
        k = rng.choice([1, 3])
        conv = dict(kernel_size=(k,), stride=stride, padding=k // 2)
    choices = [None, None, "batchnorm"] + (["layernorm"] if kind == "linear" and c_out >= 2 else [])
    norm = rng.choice(choices) if norms else None
    if norm is None:
        return [LayerSpec(kind, c_in, c_out, activation=act[0], activation_param=act[1], **conv)]
    return [LayerSpec(kind, c_in, c_out, **conv), Norm(norm, c_out, rng.choice(EPS), act[0], act[1])]


def _block(rng, kind: str, c: int, length: int | None, acts, norms: bool) -> tuple[ResidualBlock, int, int | None]:
    proj = rng.random() < 0.35
    c_out = rng.randint(1, 5) if proj else c
    stride = 2 if proj and kind == "conv1d" and length >= 4 and rng.random() < 0.5 else 1
    branch, prev = [], c
    n_inner = rng.randint(0, 2)
    for j in range(n_inner):
        h = rng.randint(1, 5)
        branch += _unit(rng, kind, prev, h, _act(rng, acts), stride if j == 0 else 1, norms)
        prev = h
    last = _act(rng, acts) if rng.random() < 0.2 else (None, None)
    branch += _unit(rng, kind, prev, c_out, last, stride if n_inner == 0 else 1, norms)
    shortcut = ()
    if proj:
        conv = dict(kernel_size=(1,), stride=stride) if kind == "conv1d" else {}
        shortcut = (LayerSpec(kind, c, c_out, **conv),)
        if norms and rng.random() < 0.5:
            norm = "layernorm" if kind == "linear" and c_out >= 2 and rng.random() < 0.5 else "batchnorm"
            shortcut += (Norm(norm, c_out, rng.choice(EPS)),)
    act = _act(rng, acts) if rng.random() < 0.7 else (None, None)
    if length is not None and stride == 2:
        length = (length - 1) // 2 + 1
    return ResidualBlock(tuple(branch), shortcut, *act), c_out, length


def random_spec(rng: random.Random, family: str | None = None, acts=ACTS, norms: bool = True) -> BlockNetworkSpec:
    """A random valid block network (MLP, or conv1d on inputs of length 16)."""
    family = family or rng.choice(["mlp", "conv1d"])
    c0 = rng.randint(1, 4)
    length = 16 if family == "conv1d" else None
    sections = [("conv1d", rng.randint(1, 3)), ("linear", rng.randint(0, 2))] if family == "conv1d" else \
        [("linear", rng.randint(1, 4))]
    elements, c = [], c0
    for kind, n in sections:
        for _ in range(n):
            if rng.random() < 0.5:
                block, c, length = _block(rng, kind, c, length, acts, norms)
                elements.append(block)
                if block.is_identity and rng.random() < 0.3:
                    elements.append(block)
            else:
                out = rng.randint(1, 5)
                elements += _unit(rng, kind, c, out, _act(rng, acts), norms=norms)
                c = out
    return BlockNetworkSpec(tuple(elements), (c0,) if family == "mlp" else (c0, 16))
