"""What the checkers of :mod:`.checks` sample for block networks: gauge elements restricted to one *part* of the
gauge group, so an equivariance error (or its absence) can be attributed to one kind of transformation.

A part keeps the permutation or the scaling of the sites of one role (:mod:`~scalegmn_lite.weightspace.block_sites`)
of a full :meth:`BlockGauge.sample <scalegmn_lite.weightspace.block_gauge.BlockGauge.sample>` (with norm-input sign
flips) and sets everything else to the identity; each part is a subgroup, so every sample is a symmetry:

======================  ==========================================================================================
part                    what moves
======================  ==========================================================================================
``stream_permutation``  the permutation of every residual stream (all its depths; a norm writing into the stream
                        permutes its input with it)
``stream_scale``        the scaling of every stream (positive for ReLU-like, ``+-1`` for tanh/sine streams)
``hidden_permutation``  inner hidden units and norm outputs that are not streams
``hidden_scale``        their scalings (positive or ``+-1``)
``batchnorm_scale``     the free positive scale ``d`` of every BatchNorm input (``W, b, mu -> d W, d b, d mu``)
``batchnorm_sign``      sign flips of BatchNorm inputs together with ``gamma`` (channel 0 always flipped)
``layernorm_scale``     the common positive scalar of every LayerNorm input
``layernorm_sign``      the common sign flip of every LayerNorm input, with ``gamma``
======================  ==========================================================================================
"""

from __future__ import annotations

import torch

from ..weightspace.block_gauge import BlockGauge
from ..weightspace.block_sites import ScaleKind
from ..weightspace.blocks import BlockNetworkSpec

__all__ = ["GAUGE_PARTS", "sample_gauge_part", "gauge_parts_of"]

#: part -> (site role, what is kept: "perm", "scale", "abs" = the absolute value of the scale or "sign" = its sign)
GAUGE_PARTS = {
    "stream_permutation": ("stream", "perm"),
    "stream_scale": ("stream", "scale"),
    "hidden_permutation": ("hidden", "perm"),
    "hidden_scale": ("hidden", "scale"),
    "batchnorm_scale": ("batchnorm", "abs"),
    "batchnorm_sign": ("batchnorm", "sign"),
    "layernorm_scale": ("layernorm", "abs"),
    "layernorm_sign": ("layernorm", "sign"),
}


def gauge_parts_of(spec: BlockNetworkSpec) -> tuple[str, ...]:
    """The parts that act non-trivially on ``spec`` (a permutation of a site of width >= 2, a scaling that is not
    fixed to 1)."""
    out = []
    for part, (role, what) in GAUGE_PARTS.items():
        sites = [s for s in spec.gauge_plan().sites if s.role == role]
        if what == "perm":
            ok = any(s.width >= 2 and s.scaling is not ScaleKind.FIXED for s in sites)
        else:
            ok = any(s.scaling not in (ScaleKind.FIXED, ScaleKind.NONE) for s in sites)
        if ok:
            out.append(part)
    return tuple(out)


def sample_gauge_part(spec: BlockNetworkSpec, part: str, batch_size: int = 1,
                      generator: torch.Generator | None = None, device=None,
                      dtype: torch.dtype = torch.float64) -> BlockGauge:
    """A random element of one part of the gauge group (see the module docstring)."""
    if part not in GAUGE_PARTS:
        raise ValueError(f"unknown gauge part {part!r}; choose from {tuple(GAUGE_PARTS)}")
    role, what = GAUGE_PARTS[part]
    full = BlockGauge.sample(spec, batch_size, generator, prenorm_sign=True, device=device, dtype=dtype)
    ident = BlockGauge.identity(spec, batch_size, device=device, dtype=dtype)
    sites = full.plan.sites
    perms, scales = [], []
    for i, site in enumerate(sites):
        moved = what == "perm" and sites[site.perm_site].role == role
        perms.append(full.perms[i] if moved else ident.perms[i])
        q = full.scales[i]
        if what == "perm" or site.role != role:
            q = ident.scales[i]
        elif what == "abs":
            q = q.abs()
        elif what == "sign":
            q = torch.sign(q)
            q = q * -q[:, :1]  # the first channel (every channel of a LayerNorm) is flipped
        scales.append(q)
    return BlockGauge(spec, perms, scales)
