"""Random architectures for property-based tests (ours and yours).

``random_spec(rng)`` draws a :class:`~scalegmn_lite.weightspace.spec.NetworkSpec` (MLP, SIREN, conv1d or conv2d,
2-5 layers, widths 1-16, kernels 1-5, any supported activation); ``specs()`` is the same as a
hypothesis strategy (hypothesis is a dev dependency, imported only when a strategy is called).

``heterogeneous=True`` draws every layer on its own: activation (with a random LeakyReLU slope or
sine ``w0``), kernel size, stride, padding, an optional output activation, and for conv networks
either global pooling or a LeNet-style ``Flatten`` into the first dense layer
(:func:`heterogeneous_specs`). ``flatten=True`` always flattens (:func:`lenet_specs`).
"""

from __future__ import annotations

import math
import random

from .weightspace.layer import DEFAULT_ACTIVATION_PARAM
from .weightspace.spec import ACTIVATIONS, LayerSpec, NetworkSpec

__all__ = ["random_spec", "specs", "heterogeneous_specs", "lenet_specs", "FAMILIES"]

FAMILIES = ("mlp", "siren", "conv1d", "conv2d")


def _random_param(rng: random.Random, act: str | None) -> float | None:
    if act == "leaky_relu":
        return rng.choice([None, rng.uniform(0.001, 0.9)])
    if act == "sine":
        return rng.choice([None, rng.uniform(0.5, 30.0)])
    return None


def _conv_stack(rng: random.Random, family: str, widths: list[int], n_conv: int, act_of, max_kernel: int,
                heterogeneous: bool, flatten: bool, max_flatten: int) -> tuple[list[LayerSpec], tuple[int, ...]]:
    """``n_conv`` conv layers and an input shape large enough for every kernel; the last one is
    pooled, or (``flatten``) has at most about ``max_flatten`` output positions."""
    ndim = 1 if family == "conv1d" else 2
    convs = []
    for _ in range(n_conv):
        k = tuple(rng.randint(1, max_kernel) for _ in range(ndim))
        if heterogeneous:
            s, p = rng.randint(1, 2), rng.randint(0, 2)
        else:
            s, p = 1, rng.randint(0, 1)
        convs.append((k, s, p))
    if not heterogeneous and not flatten:  # the historical draw: side = sum of kernels + 1..4
        side = sum(max(k) for k, _, _ in convs) + rng.randint(1, 4)
        spatial = (side,) * ndim
    else:  # backwards from a small output, then forwards to the exact sizes
        last = max(1, int(max_flatten ** (1 / ndim))) if flatten else 3
        size = [rng.randint(1, last) for _ in range(ndim)]
        for k, s, p in reversed(convs):
            size = [max(1, (o - 1) * s + kk - 2 * p) for o, kk in zip(size, k)]
        spatial = tuple(n + (0 if flatten else rng.randint(0, 3)) for n in size)
    layers = []
    for i, (k, s, p) in enumerate(convs):
        act, param = act_of(i)
        layers.append(LayerSpec(family, widths[i], widths[i + 1], k, s, p, act, param,
                                pool_after=(i == n_conv - 1 and not flatten)))
    return layers, (widths[0], *spatial)


def random_spec(rng: random.Random, family: str | None = None, activation: str | None = None,
                max_width: int = 16, max_kernel: int = 5, min_layers: int = 2, max_layers: int = 5,
                heterogeneous: bool = False, flatten: bool | None = False, max_flatten: int = 16) -> NetworkSpec:
    """A random valid network structure.

    Conv networks get 1-3 conv layers (same kind), global average pooling (or, with ``flatten``,
    a Flatten into the first dense layer; ``flatten=None``: either), then dense layers up to
    ``max_layers`` in total; the input is large enough for every kernel. ``heterogeneous``: every
    layer draws its own activation (and parameter), kernel, stride and padding (see the module
    docstring); ``activation`` then still fixes every hidden activation.
    """
    family = family or rng.choice(FAMILIES)
    if family == "siren":
        activation = "sine"
        family = "mlp"
    acts = sorted(ACTIVATIONS)
    act = activation or rng.choice(acts)
    act = None if act == "identity" else act
    depth = rng.randint(min_layers, max_layers)
    if flatten is None:
        flatten = family != "mlp" and rng.random() < 0.5
    flatten = bool(flatten) and family != "mlp"
    if flatten:
        depth = max(depth, 2)
    widths = [rng.randint(1, max_width) for _ in range(depth + 1)]
    per_layer = []
    for _ in range(depth):
        if heterogeneous and activation is None:
            a = rng.choice(acts)
            a = None if a == "identity" else a
            per_layer.append((a, _random_param(rng, a)))
        elif heterogeneous and act in DEFAULT_ACTIVATION_PARAM:
            per_layer.append((act, _random_param(rng, act)))
        else:
            per_layer.append((act, None))
    if family == "mlp":
        layers = [LayerSpec("linear", a, b, activation=x, activation_param=p)
                  for (a, b), (x, p) in zip(zip(widths[:-1], widths[1:]), per_layer)]
        shape = (widths[0],)
        if heterogeneous and rng.random() < 0.3:
            shape = (1, widths[0])
    else:
        n_conv = rng.randint(1, min(3, depth - 1 if flatten else depth))
        layers, shape = _conv_stack(rng, family, widths, n_conv, lambda i: per_layer[i], max_kernel,
                                    heterogeneous, flatten, max_flatten)
        spatial = shape[1:]
        for layer in layers:
            spatial = layer.output_spatial(spatial)
        for i in range(n_conv, depth):
            x, p = per_layer[i]
            fs = math.prod(spatial) if (flatten and i == n_conv) else None
            layers.append(LayerSpec("linear", widths[i], widths[i + 1], activation=x, activation_param=p,
                                    flatten_size=fs))
    out_act, out_param = None, None
    if heterogeneous and rng.random() < 0.25:
        out_act = rng.choice([a for a in acts if a != "identity"])
        out_param = _random_param(rng, out_act)
    last = layers[-1]
    layers[-1] = LayerSpec(last.kind, last.in_dim, last.out_dim, last.kernel_size, last.stride, last.padding,
                           out_act, out_param, last.pool_after, last.flatten_size)
    return NetworkSpec(tuple(layers), shape)


def specs(**kwargs):
    """Hypothesis strategy of :func:`random_spec` structures (keyword arguments as there)."""
    from hypothesis import strategies as st

    return st.builds(lambda seed: random_spec(random.Random(seed), **kwargs), st.integers(0, 2**31 - 1))


def heterogeneous_specs(**kwargs):
    """Hypothesis strategy of per-layer-heterogeneous structures: every layer its own activation
    (and parameter), kernel, stride and padding; conv nets pooled or flattened (LeNet-style)."""
    kwargs.setdefault("flatten", None)
    return specs(heterogeneous=True, **kwargs)


def lenet_specs(**kwargs):
    """Hypothesis strategy of LeNet-style ``Conv... -> Flatten -> Linear...`` structures (conv1d or
    conv2d; ``heterogeneous=True`` by default)."""
    from hypothesis import strategies as st

    kwargs.setdefault("heterogeneous", True)
    return st.builds(lambda seed, fam: random_spec(random.Random(seed), family=fam, flatten=True, **kwargs),
                     st.integers(0, 2**31 - 1), st.sampled_from(["conv1d", "conv2d"]))
