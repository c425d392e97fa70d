"""Random architectures for property-based tests (ours and yours).

``random_spec(rng)`` draws a :class:`~scalegmn_lite.weightspace.spec.NetworkSpec` (MLP, SIREN, conv1d or conv2d,
2-5 layers, widths 1-16, kernels 1-5, any supported activation); ``specs()`` is the same as a
hypothesis strategy (hypothesis is a dev dependency, imported only when ``specs`` is called).
"""

from __future__ import annotations

import random

from .weightspace.spec import ACTIVATIONS, LayerSpec, NetworkSpec

__all__ = ["random_spec", "specs", "FAMILIES"]

FAMILIES = ("mlp", "siren", "conv1d", "conv2d")


def random_spec(rng: random.Random, family: str | None = None, activation: str | None = None,
                max_width: int = 16, max_kernel: int = 5, min_layers: int = 2, max_layers: int = 5) -> NetworkSpec:
    """A random valid network structure.

    Conv networks get 1-3 conv layers (same kind), global average pooling, then dense layers up to
    ``max_layers`` in total; the input length is large enough for every kernel.
    """
    family = family or rng.choice(FAMILIES)
    if family == "siren":
        activation = "sine"
        family = "mlp"
    act = activation or rng.choice(sorted(ACTIVATIONS))
    act = None if act == "identity" else act
    depth = rng.randint(min_layers, max_layers)
    widths = [rng.randint(1, max_width) for _ in range(depth + 1)]
    if family == "mlp":
        layers = [LayerSpec("linear", a, b, activation=act) for a, b in zip(widths[:-1], widths[1:])]
        shape = (widths[0],)
    else:
        n_conv = rng.randint(1, min(3, depth))
        ndim = 1 if family == "conv1d" else 2
        layers, size = [], 0
        for i in range(depth):
            a, b = widths[i], widths[i + 1]
            if i < n_conv:
                k = tuple(rng.randint(1, max_kernel) for _ in range(ndim))
                pad = rng.randint(0, 1)
                layers.append(LayerSpec(family, a, b, k, 1, pad, act, pool_after=(i == n_conv - 1)))
                size += max(k)
            else:
                layers.append(LayerSpec("linear", a, b, activation=act))
        side = size + rng.randint(1, 4)
        shape = (widths[0], side) if ndim == 1 else (widths[0], side, side)
    last = layers[-1]
    layers[-1] = LayerSpec(last.kind, last.in_dim, last.out_dim, last.kernel_size, last.stride, last.padding,
                           None, None, last.pool_after)
    return NetworkSpec(tuple(layers), shape)


def specs(**kwargs):
    """Hypothesis strategy of :func:`random_spec` structures (keyword arguments as there)."""
    from hypothesis import strategies as st

    return st.builds(lambda seed: random_spec(random.Random(seed), **kwargs), st.integers(0, 2**31 - 1))
