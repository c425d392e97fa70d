"""Invariant metanetworks on block networks (residual blocks, BatchNorm in eval mode, LayerNorm; MLP and conv1d
families; :class:`~scalegmn_lite.weightspace.BlockWeights`), e.g. predicting a ResNet's accuracy from its weights
(issue 36). :func:`~.fit.fit`, :func:`~.fit.predict` and :func:`~.fit.score` take ``BlockWeights`` as they take a
``WeightSpace``; :func:`~.study.make_model` hands a :class:`~scalegmn_lite.weightspace.BlockNetworkSpec` to
:func:`make_block_model`.

Models (``BLOCK_MODEL_NAMES``):
    ``scalegmn`` / ``scalegmn-b``: ScaleGMN (``mode="auto"``: each vertex's own symmetry) on the exact block graphs of
        :mod:`scalegmn_lite.nn.block_graphs`, invariant head, forward / bidirectional; invariant to the whole gauge
        group (shared stream scalings, BatchNorm's free per-channel and LayerNorm's common input scale included)
        exactly when the norms have ``eps = 0``.
    ``scalegmn-plain``: the same model on the ``plain_twin`` graphs (identity shortcuts dropped): still invariant,
        but blind to what the shortcuts add (and to unshared stream scalings).
    ``scalegmn-normaffine``: the same model on the ``norm_affine`` graphs (a norm as an elementwise affine layer,
        its statistics ignored): the naive construction, *not* invariant to the norms' free scalings.
    ``gmn``: :class:`~scalegmn_lite.nn.block_baselines.BlockGMN`, permutation-only ScaleGMN with RMS input
        normalisation (as the chain GMN) and typed edges (weight / shortcut / sum / norm) on the exact block graphs.
    ``statnn``: :class:`~scalegmn_lite.nn.block_baselines.BlockStatNN`, statistics of every parameter tensor.
    ``flatmlp``: :class:`~scalegmn_lite.nn.block_baselines.BlockFlatMLP`, the flat parameter vector.
    ``*+aug``: trained with a random block gauge element applied to every batch
        (:func:`~scalegmn_lite.nn.block_baselines.block_gauge_augment`).

Transforms for the invariance checks: :func:`gauge_transform` (a random symmetry: same functions) and
:func:`non_symmetry_transform` (other functions: the negative control).
"""

from __future__ import annotations

import torch
from torch import nn

from ...nn.block_baselines import BlockFlatMLP, BlockGMN, BlockStatNN, block_gauge_augment
from ...nn.block_graphs import block_layout
from ...nn.block_scalegmn import BlockScaleGMN
from ...nn.scalegmn import ScaleGMN, ScaleGMNConfig
from ...weightspace.block_gauge import BlockGauge, sample_non_symmetry
from ...weightspace.block_sites import ScaleKind
from ...weightspace.block_weights import BlockWeights
from ...weightspace.blocks import BlockNetworkSpec
from .fit import predict

__all__ = ["BLOCK_MODEL_NAMES", "BLOCK_ONLY_MODEL_NAMES", "BLOCK_NON_SYMMETRIES", "make_block_model",
           "gauge_transform", "non_symmetry_transform", "block_gauge_shift"]

BLOCK_MODEL_NAMES = ("scalegmn", "scalegmn-b", "scalegmn-plain", "scalegmn-normaffine", "gmn", "statnn", "statnn+aug",
                     "flatmlp", "flatmlp+aug")
#: names that only make sense for block networks (chain networks have no shortcuts or norms)
BLOCK_ONLY_MODEL_NAMES = ("scalegmn-plain", "scalegmn-normaffine")
#: the graph construction of each ScaleGMN model name
_VARIANT = {"scalegmn": "exact", "scalegmn-b": "exact", "scalegmn-plain": "plain_twin",
            "scalegmn-normaffine": "norm_affine", "gmn": "exact"}
#: kinds of :func:`non_symmetry_transform`
BLOCK_NON_SYMMETRIES = ("wrong_scaling", "unshared_stream_scale", "batchnorm_sign_without_gamma",
                        "layernorm_neuron_scale")


def make_block_model(name: str, spec: BlockNetworkSpec, out_dim: int, hidden: int = 32, layers: int = 3,
                     max_kernel: int | None = None, max_layers: int | None = None) -> tuple[nn.Module, object]:
    """A fresh model for networks of ``spec`` by name (see ``BLOCK_MODEL_NAMES``); returns
    ``(model, augment_fn or None)`` like :func:`~.study.make_model`.

    ``hidden``/``layers``: ScaleGMN width and message-passing layers (the MLP baselines get width ``4 * hidden``
    and 3 layers, as for chains); ``max_kernel``/``max_layers`` default to what ``spec``'s block graphs need (at
    least ScaleGMN's defaults). Call ``fit_normalization(train_networks)`` on models that have it before training."""
    if not isinstance(spec, BlockNetworkSpec):
        raise TypeError(f"make_block_model needs a BlockNetworkSpec, got {type(spec).__name__}; chain networks: "
                        "study.make_model")
    if name not in BLOCK_MODEL_NAMES:
        raise ValueError(f"unknown model {name!r} for block networks; choose from {BLOCK_MODEL_NAMES}")
    base = name.removesuffix("+aug")
    aug = block_gauge_augment if name.endswith("+aug") else None
    if base in _VARIANT:
        variant = _VARIANT[base]
        lay = block_layout(spec, variant)
        k = max_kernel or max(1, lay.max_numel)
        depth = max_layers or max(ScaleGMNConfig.max_layers, len(lay.vertex_layers))
        cfg = ScaleGMNConfig(hidden_dim=hidden, num_layers=layers, mode="permutation" if base == "gmn" else "auto",
                             bidirectional=base == "scalegmn-b", head="invariant", out_dim=out_dim, max_kernel=k,
                             max_layers=depth)
        if base == "gmn":
            return BlockGMN(cfg), aug
        model = ScaleGMN(cfg)
        return (model if variant == "exact" else BlockScaleGMN(model, variant)), aug
    if base == "statnn":
        return BlockStatNN(spec, out_dim, hidden=4 * hidden), aug
    return BlockFlatMLP(spec, out_dim, hidden=4 * hidden), aug


def _generator(seed: int | torch.Generator) -> torch.Generator:
    return seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))


def gauge_transform(bw: BlockWeights, seed: int | torch.Generator = 0, max_log_scale: float = 1.0) -> BlockWeights:
    """Every network of ``bw`` replaced by a random element of its gauge group applied to it (drawn with ``seed``):
    permutations of hidden units, residual streams (one per stream, all depths) and norm channels; positive scalings
    ``exp(U(-max_log_scale, max_log_scale))`` of ReLU-like units and streams, sign flips of tanh/sine ones;
    BatchNorm's free per-channel input scaling and LayerNorm's common one, with sign flips (``gamma`` follows).
    The networks compute the same functions (exactly with ``eps = 0`` norms: ``block_forward(..., eps=0.0)``)."""
    if not isinstance(bw, BlockWeights):
        raise TypeError(f"gauge_transform needs BlockWeights, got {type(bw).__name__} (chain networks: "
                        "GaugeElement.sample(spec, B).apply(ws))")
    return block_gauge_augment(bw, _generator(seed), max_log_scale)


def _wrong_scaling(bw: BlockWeights, generator: torch.Generator) -> BlockWeights:
    """A random symmetry, then every hidden and stream site scaled outside its group: ``q = -1`` for positive
    scalings (ReLU), ``q = 2`` for sign flips (tanh/sine) and permutation-only sites (the chain ``wrong_scaling``)."""
    g = BlockGauge.sample(bw.spec, bw.batch_size, generator, prenorm_sign=True, device=bw.device, dtype=bw.dtype)
    scales = list(g.scales)
    moved = False
    for i, site in enumerate(g.plan.sites):
        if site.role in ("hidden", "stream") and site.scaling in (ScaleKind.POSITIVE, ScaleKind.SIGN, ScaleKind.NONE):
            q = -1.0 if site.scaling is ScaleKind.POSITIVE else 2.0
            scales[i], moved = scales[i] * q, True
    if not moved:
        raise ValueError(f"{bw.spec.to_text()!r} has no hidden or stream units to rescale")
    return BlockGauge(bw.spec, g.perms, scales).apply(bw, strict=False)


def non_symmetry_transform(bw: BlockWeights, kind: str = "wrong_scaling",
                           seed: int | torch.Generator = 0) -> BlockWeights:
    """``bw`` transformed by something that is *not* a symmetry (other functions), on top of a random symmetry:

    ``"wrong_scaling"``: every hidden and stream site scaled by ``q = -1`` (ReLU-like) or ``q = 2`` (tanh/sine);
    ``"unshared_stream_scale"``, ``"batchnorm_sign_without_gamma"``, ``"layernorm_neuron_scale"``: those of
    :func:`scalegmn_lite.weightspace.block_gauge.sample_non_symmetry` (a depth of a residual stream scaled alone;
    BatchNorm input channels negated without ``gamma``; a LayerNorm input scaled per neuron). Raises ``ValueError``
    if the spec has nothing of the kind."""
    if kind not in BLOCK_NON_SYMMETRIES:
        raise ValueError(f"unknown non-symmetry {kind!r} for block networks; choose from {BLOCK_NON_SYMMETRIES}")
    gen = _generator(seed)
    if kind == "wrong_scaling":
        return _wrong_scaling(bw, gen)
    return sample_non_symmetry(bw, kind, gen).weights


@torch.no_grad()
def block_gauge_shift(model: nn.Module, bw: BlockWeights, seed: int = 0, max_log_scale: float = 1.0) -> float:
    """Largest change of ``model``'s output when every network of ``bw`` is replaced by :func:`gauge_transform` of
    itself, relative to the output's scale (:func:`~.study.gauge_shift` for block networks); 0 up to float error
    for invariant models (norms with ``eps = 0``)."""
    model.eval()
    a, b = predict(model, bw), predict(model, gauge_transform(bw, seed, max_log_scale))
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))
