r"""Block networks (residual blocks, BatchNorm, LayerNorm) as graphs on which ScaleGMN is exactly equivariant.

The graph of a :class:`~scalegmn_lite.weightspace.block_weights.BlockWeights` network extends the chain graph of
:mod:`.graphs` (a vertex per neuron or channel, an edge per weight or kernel slice, the bias as the vertex feature):
*vertex layers* are the value sets the network computes, in data-flow order, each on one *site* of
``spec.gauge_plan()`` (:mod:`~scalegmn_lite.weightspace.block_sites`), from which its vertices get their type and
symmetry code. Under a gauge element a vertex of site ``r`` carries ``q_r`` and an edge ``s -> t`` transforms as
``q_t / q_s``, exactly as ScaleGMN assumes (:mod:`.layers.message_passing`). Each piece and why its law holds:

* **A layer** ``z = W h + b``: a new vertex layer on the site of ``W``'s rows; edges ``W[t, s]`` (kernel slices),
  features ``b``. ``W -> q_t W / q_s`` and ``b -> q_t b`` is the gauge's action on these tensors.
* **The residual stream: one vertex layer per depth, an identity shortcut as constant edges of weight 1** from
  coordinate ``k`` at depth ``t`` to coordinate ``k`` at depth ``t + 1``. The true gauge gives every depth of a
  stream the *same* permutation and scaling (one site), so the edge keeps ``q_{t+1,k} / q_{t,k} = 1``: the
  constant stays a constant and ScaleGMN, equivariant to independent per-vertex scalings, is equivariant to the
  shared ones. (The constant is an ordinary edge; no typing is needed. Under an *unshared* stream scaling, which
  is no symmetry, the edge would have to become ``q_{t+1} / q_t``; the graph keeps 1, so the model sees the
  difference. So the "design trap" of feeding the constant as an ordinary scaled edge does not exist for the true
  gauge: measured ~1e-15; what a naive construction gets wrong is dropping the shortcut, below.) A block
  ``y = act(branch(x) + shortcut(x))`` writes into its output layer: the branch's last layer or norm directly
  (its bias or ``beta`` on the output vertices), a projection shortcut likewise (the two biases add up, as they
  do in the network), a branch ending in an activation through its own vertex layer and constant edges of
  weight 1 (same site, so again factor 1). The first stream may be the network's input (a fixed site):
  its later depths are typed like inputs.
* **BatchNorm (eval)** ``bn(z) = gamma (z - mu) / sigma + beta``, ``sigma = sqrt(var + eps)``: a vertex layer for
  its input ``z`` (site ``batchnorm``, features ``b - mu``, symmetry code :data:`~.graphs.SYM_NONZERO`: any
  ``d != 0`` per channel), one edge per channel to the output layer with weight ``gamma / sigma``, ``beta`` on the
  outputs. The free scaling ``W, b, mu -> d W, d b, d mu``, ``var -> d^2 var``, ``gamma -> sign(d) gamma`` maps
  ``b - mu -> d (b - mu)`` and (``eps = 0``) ``gamma / sigma -> q (gamma / sigma) / d``: the ``q_t / q_s`` law with
  ``q_s = d``, so the free ``d`` is one more per-vertex scaling ScaleGMN already handles. Folding instead
  (``W' = diag(gamma / sigma) W``, a plain chain) carries the same information for an invariant head, but an update
  of ``W'`` has no natural way back to ``W, gamma`` (it would divide by ``gamma``); with the vertex layer the
  equivariant head's output of the norm edge times ``sigma`` is an update of ``gamma`` with ``gamma``'s law
  (``q / d * |d| = q sign(d)``), and ``running_mean, running_var`` (statistics, not trained) get zero updates.
* **LayerNorm** ``gamma (z - mean z) / std(z) + beta``: its input is scaled by *one* ``c != 0`` for the whole
  layer (``gamma -> sign(c) gamma``), never per neuron. The input vertex layer (features ``b``) is a *pool*
  (``vpool``): ScaleGMN normalises its rows by the norm over the whole pool and symmetrises them jointly
  (:class:`~.layers.invariant.Kinds`), and its vertices send ``Gamma_v x / ||x_pool||``, which scales by
  ``sign(c)`` only, along the per-channel edges of weight ``gamma`` (law ``q_t sign(c)``,
  :mod:`.layers.message_passing`). Per-vertex views instead (``variant="layernorm_per_vertex"``) stay
  equivariant but make the model invariant to per-neuron rescalings of the LayerNorm input: networks that
  compute different functions get the same output (``tests/test_block_scalegmn.py`` shows such a pair).

``eps > 0`` makes the norms only approximately scale-free
(:func:`scalegmn_lite.symbolic.residual.eps_invariance_error`); the graph uses each norm's ``eps`` (or ``eps=``
here), so the model's equivariance is exact where the network's symmetry is (``eps = 0``). A chain spec gives
exactly :func:`.graphs.to_graph`'s graph.

**Inside ScaleGMN** (measured in ``tests/test_block_scalegmn.py``): the per-layer RMS input normalisation
(``input_norm=True``, the GMN baseline's) breaks scale equivariance here as on chains; ``mode="auto"`` normalises
only layers whose vertices have no continuous scaling, and norm inputs (:data:`~.graphs.SYM_NONZERO`) must count
as scaled there (without that, a tanh network with BatchNorm moved the output by O(1) under the free scaling);
the dense layer-wise path cannot hold shortcut and norm edges, so block graphs always run on the graph path; the
layer and edge identity encodings index vertex layers, which no gauge element mixes. A stream merged into one
vertex per coordinate across depths would also be exact but needs several biases per vertex (one per block
writing the stream), i.e. a multi-channel vertex embedding and update; one vertex layer per depth needs neither.

**Ablations** (:data:`VARIANTS`, the natural "just feed it to ScaleGMN" constructions, kept to measure):
``"plain_twin"`` drops the identity shortcuts (the graph of the plain twin; equivariant, but blind to what the
shortcut adds and to unshared stream scalings); ``"norm_affine"`` treats a norm as an elementwise affine layer
(edge ``gamma``, biases ``b`` and ``beta``, statistics ignored, norm inputs as ordinary hidden neurons; not
equivariant to the norms' free scalings and blind to the statistics); ``"layernorm_per_vertex"`` (above).

Batch attributes: those of :func:`.graphs.to_graph` (``x``, ``edge_index``, ``edge_attr``, ``edge_mask``,
``layer`` = vertex layer, ``vtype``, ``pos``, ``sym``, ``edge_layer`` = receiving vertex layer, ``spec``,
``group``) plus ``vpool [V]`` (global pool id, ``-1``: none), ``edge_type [E]`` (:data:`EDGE_WEIGHT`,
:data:`EDGE_SHORTCUT`, :data:`EDGE_SUM`, :data:`EDGE_NORM`), ``edge_gain [E]`` (``sigma`` on BatchNorm edges, else 1:
the factor from an edge output to its parameter's update) and ``variant``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch_geometric.data import Batch, Data

from ..weightspace.block_gauge import NonSymmetry
from ..weightspace.block_parts import Norm, ResidualBlock
from ..weightspace.block_sites import ScaleKind
from ..weightspace.block_weights import BlockWeights
from ..weightspace.blocks import BlockNetworkSpec
from ..weightspace.layer import LayerSpec, SpecError
from .graphs import HIDDEN, INPUT, OUTPUT, SYM_NONE, SYM_NONZERO, _groups

__all__ = ["BlockInput", "VARIANTS", "EDGE_WEIGHT", "EDGE_SHORTCUT", "EDGE_SUM", "EDGE_NORM", "VertexLayer",
           "EdgeGroup", "BlockGraphLayout", "block_layout", "to_block_graph", "block_graph_to_weights", "block_items"]

#: what the block functions accept: weights, weights with rescaled shortcuts (a non-symmetry), or a list of them
BlockInput = Union[BlockWeights, NonSymmetry, Sequence[Union[BlockWeights, NonSymmetry]]]
#: graph constructions: the exact one and the ablations (module docstring)
VARIANTS = ("exact", "plain_twin", "norm_affine", "layernorm_per_vertex")
#: edge types: a weight, an identity shortcut (constant), the constant edge adding a branch that ends in an
#: activation, a norm's per-channel edge (``gamma / sigma`` or ``gamma``)
EDGE_WEIGHT, EDGE_SHORTCUT, EDGE_SUM, EDGE_NORM = 0, 1, 2, 3
_SYM = {ScaleKind.POSITIVE: 1, ScaleKind.SIGN: 2, ScaleKind.NONE: 3, ScaleKind.FIXED: SYM_NONE,
        ScaleKind.PRENORM: SYM_NONZERO, ScaleKind.COMMON: SYM_NONZERO}


@dataclass(frozen=True)
class VertexLayer:
    """Vertices of one value set: ``site`` (of the gauge plan), ``width``, ``vtype``, ``sym`` code, ``pool``
    (``""``, ``"layer"``: one pool, ``"vertex"``: one pool per vertex) and ``biases``: ``(name, minus)`` pairs whose
    sum ``bias - minus`` (``minus`` a BatchNorm's ``running_mean`` or ``None``) is the vertex feature."""

    site: int
    width: int
    vtype: int = HIDDEN
    sym: int = SYM_NONE
    pool: str = ""
    biases: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class EdgeGroup:
    """Edges from vertex layer ``src`` to ``dst``: all pairs, ``t``-major (``dense``, a weight with ``numel``
    entries per edge) or coordinate-wise (norm and constant edges). ``param``: the weight or ``gamma``; ``var``: a
    BatchNorm's ``running_var`` (the edge is ``gamma / sqrt(var + eps)``); ``shortcut``: index among the identity
    shortcuts (for ``shortcut_weights``)."""

    kind: int
    src: int
    dst: int
    dense: bool = False
    numel: int = 1
    param: str | None = None
    var: str | None = None
    eps: float = 0.0
    shortcut: int | None = None


class _Walk:
    """Walks the elements as :mod:`~scalegmn_lite.weightspace.block_sites` does, reading each value set's site from
    the plan's parameter roles (nothing about the gauge is re-derived here)."""

    def __init__(self, spec: BlockNetworkSpec, variant: str) -> None:
        self.variant = variant
        self.rows = {p.name: p.rows for p in spec.gauge_plan().params}
        self.layers: list[dict] = []
        self.groups: list[EdgeGroup] = []
        self.n_shortcuts = 0
        self.input = self.vertex(0, spec.in_dim)
        self.output = self.sequence(spec.blocks, "", self.input)

    def vertex(self, site: int, width: int) -> int:
        self.layers.append(dict(site=site, width=width, biases=[]))
        return len(self.layers) - 1

    def edges(self, kind: int, src: int, dst: int, **kw) -> None:
        self.groups.append(EdgeGroup(kind, src, dst, **kw))

    def sequence(self, elements, prefix: str, cur: int, final: int | None = None) -> int:
        """Vertex layer of the output of ``elements`` read from ``cur``; the last one writes into ``final``."""
        j, n = 0, len(elements)
        while j < n:
            el, path = elements[j], f"{prefix}{j}"
            if isinstance(el, ResidualBlock):
                cur = self.block(el, path, cur)
            else:
                norm = elements[j + 1] if j + 1 < n and isinstance(elements[j + 1], Norm) else None
                j += norm is not None
                act = el.activation if norm is None else norm.activation
                last = final is not None and j == n - 1
                cur = self.unit(el, path, norm, f"{prefix}{j}", cur, final if last and act is None else None)
                if last and act is not None:  # a branch ending in an activation: added through constant edges
                    self.edges(EDGE_SUM, cur, final)
                    cur = final
            j += 1
        return cur

    def unit(self, layer: LayerSpec, path: str, norm: Norm | None, npath: str, cur: int, into: int | None) -> int:
        """A layer (and the norm after it) from ``cur``; writes into ``into`` or a new vertex layer."""
        top = f"{path}.weight" if norm is None else f"{npath}.gamma"
        out = into if into is not None else self.vertex(self.rows[top], layer.out_dim)
        z = out if norm is None else self.vertex(self.rows[f"{path}.weight"], layer.out_dim)
        self.edges(EDGE_WEIGHT, cur, z, dense=True, numel=layer.kernel_numel, param=f"{path}.weight")
        bn = norm is not None and norm.kind == "batchnorm" and self.variant != "norm_affine"
        self.layers[z]["biases"].append((f"{path}.bias", f"{npath}.running_mean" if bn else None))
        if norm is not None:
            self.edges(EDGE_NORM, z, out, param=f"{npath}.gamma", var=f"{npath}.running_var" if bn else None,
                       eps=norm.eps)
            self.layers[out]["biases"].append((f"{npath}.beta", None))
        return out

    def block(self, el: ResidualBlock, path: str, cur: int) -> int:
        last = len(el.branch) - 1
        top = f"{path}.branch.{last}.{'gamma' if isinstance(el.branch[last], Norm) else 'weight'}"
        out = self.vertex(self.rows[top], el.out_dim)
        self.sequence(el.branch, f"{path}.branch.", cur, final=out)
        if el.is_identity:
            if self.variant != "plain_twin":
                self.edges(EDGE_SHORTCUT, cur, out, shortcut=self.n_shortcuts)
            self.n_shortcuts += 1
        else:
            self.sequence(el.shortcut, f"{path}.shortcut.", cur, final=out)
        return out


class BlockGraphLayout:
    """The weight-independent graph of one :class:`BlockNetworkSpec` in one variant (:func:`block_layout`).

    Attributes: ``vertex_layers`` and ``edge_groups`` (data-flow order), ``offsets``/``edge_offsets`` (first
    vertex/edge of each), ``num_vertices``, ``num_edges``, ``num_pools``, ``max_numel`` (widest edge), and the static
    ``[V]``/``[E]`` tensors ``layer, vtype, pos, sym, vpool`` and ``edge_index [2, E], edge_layer, edge_type``.
    """

    def __init__(self, spec: BlockNetworkSpec, variant: str = "exact") -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown block graph variant {variant!r}; choose from {VARIANTS}")
        walk = _Walk(spec, variant)
        self.spec, self.variant, self.num_shortcuts = spec, variant, walk.n_shortcuts
        order = _data_flow_order(len(walk.layers), walk.groups)
        new = {old: i for i, old in enumerate(order)}
        sites = spec.gauge_plan().sites
        layers = []
        for old in order:
            L = walk.layers[old]
            site = sites[L["site"]]
            vtype = OUTPUT if old == walk.output or site.role == "output" else INPUT if site.role == "input" else HIDDEN
            pool = ""
            if site.scaling is ScaleKind.COMMON and variant != "norm_affine":
                pool = "vertex" if variant == "layernorm_per_vertex" else "layer"
            sym = SYM_NONE if vtype != HIDDEN else 1 if variant == "norm_affine" and site.role in (
                "batchnorm", "layernorm") else _SYM[site.scaling]
            layers.append(VertexLayer(L["site"], L["width"], vtype, sym, pool, tuple(L["biases"])))
        groups = sorted((EdgeGroup(g.kind, new[g.src], new[g.dst], g.dense, g.numel, g.param, g.var, g.eps, g.shortcut)
                         for g in walk.groups), key=lambda g: g.dst)  # stable: edges grouped by receiving layer
        self.vertex_layers, self.edge_groups = tuple(layers), tuple(groups)
        self._build_tensors()

    def _build_tensors(self) -> None:
        self.offsets = [0]
        layer, vtype, pos, sym, vpool = [], [], [], [], []
        n_pools = 0
        for i, L in enumerate(self.vertex_layers):
            self.offsets.append(self.offsets[-1] + L.width)
            layer.append(torch.full((L.width,), i))
            vtype.append(torch.full((L.width,), L.vtype))
            pos.append(torch.arange(L.width))
            sym.append(torch.full((L.width,), L.sym))
            if L.pool == "layer":
                vpool.append(torch.full((L.width,), n_pools))
                n_pools += 1
            elif L.pool == "vertex":
                vpool.append(torch.arange(n_pools, n_pools + L.width))
                n_pools += L.width
            else:
                vpool.append(torch.full((L.width,), -1))
        self.layer, self.vtype, self.pos = torch.cat(layer), torch.cat(vtype), torch.cat(pos)
        self.sym, self.vpool, self.num_pools = torch.cat(sym), torch.cat(vpool), n_pools
        self.num_vertices = self.offsets[-1]
        src, dst, elayer, etype = [], [], [], []
        self.edge_offsets = [0]
        for g in self.edge_groups:
            ns, nt = self.vertex_layers[g.src].width, self.vertex_layers[g.dst].width
            if g.dense:
                t, s = torch.meshgrid(torch.arange(nt), torch.arange(ns), indexing="ij")
                t, s = t.reshape(-1), s.reshape(-1)
            else:
                t = s = torch.arange(nt)
            src.append(s + self.offsets[g.src])
            dst.append(t + self.offsets[g.dst])
            elayer.append(torch.full((len(t),), g.dst))
            etype.append(torch.full((len(t),), g.kind))
            self.edge_offsets.append(self.edge_offsets[-1] + len(t))
        self.edge_index = torch.stack([torch.cat(src), torch.cat(dst)])
        self.edge_layer, self.edge_type = torch.cat(elayer), torch.cat(etype)
        self.num_edges = self.edge_offsets[-1]
        self.max_numel = max(g.numel for g in self.edge_groups)
        self.sources = self._sources()

    def _sources(self) -> dict[str, tuple[str, int]]:
        """Where each parameter's update comes from: ``("vertex", layer)``, ``("edges", group)`` or ``("zero", -1)``."""
        out: dict[str, tuple[str, int]] = {}
        for i, L in enumerate(self.vertex_layers):
            for name, _ in L.biases:
                out[name] = ("vertex", i)
        for i, g in enumerate(self.edge_groups):
            if g.param is not None:
                out[g.param] = ("edges", i)
        for name, _ in self.spec.param_shapes:
            out.setdefault(name, ("zero", -1))  # running_mean, running_var: statistics, never updated
        return out

    def step_index(self, name: str) -> tuple[int, int]:
        """``(vertex layer - 1, 0 for an edge parameter / 1 for a vertex one)``: which of ScaleGMN's per-layer
        update steps ``s_l`` a parameter's update uses (any invariant scalar keeps the update equivariant)."""
        kind, i = self.sources[name]
        if kind == "zero":  # statistics: their update is zero, any step will do
            return 0, 1
        layer = self.edge_groups[i].dst if kind == "edges" else i  # >= 1: the input layer holds no parameter
        return layer - 1, 0 if kind == "edges" else 1

    # ------------------------------------------------------------------ features
    def features(self, bw: BlockWeights, K: int, eps: float | None = None,
                 shortcut_weights: Sequence[torch.Tensor | float | None] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [B, V]``, ``edge_attr [B, E, K]`` and ``edge_gain [B, E]`` of ``bw`` (differentiable).

        ``eps`` overrides every BatchNorm's ``eps``; ``shortcut_weights``: the constant of each identity shortcut
        (as in :meth:`BlockWeights.forward`; default 1)."""
        named, B = bw.named(), bw.batch_size
        if shortcut_weights is not None and len(shortcut_weights) != self.num_shortcuts:
            raise SpecError(f"shortcut_weights needs one entry per identity shortcut ({self.num_shortcuts}), got "
                            f"{len(shortcut_weights)}")
        xs = []
        for L in self.vertex_layers:
            v = bw.params[0].new_zeros(B, L.width)
            for name, minus in L.biases:
                v = v + named[name] - (named[minus] if minus else 0)
            xs.append(v)
        es, gains = [], []
        for g in self.edge_groups:
            n = self.group_size(g)
            gain = torch.ones(B, n, dtype=bw.dtype, device=bw.device)
            if g.kind == EDGE_WEIGHT:
                val = named[g.param].reshape(B, n, g.numel)
            else:
                if g.kind == EDGE_NORM:
                    val = named[g.param]
                    if g.var is not None:
                        gain = torch.sqrt(named[g.var] + (g.eps if eps is None else eps))
                        val = val / gain
                else:
                    w = None if shortcut_weights is None or g.shortcut is None else shortcut_weights[g.shortcut]
                    val = torch.ones(B, n, dtype=bw.dtype, device=bw.device)
                    if w is not None:
                        val = val * torch.as_tensor(w, dtype=bw.dtype, device=bw.device)
                val = val.unsqueeze(-1)
            es.append(torch.nn.functional.pad(val, (0, K - g.numel)))
            gains.append(gain)
        return torch.cat(xs, 1), torch.cat(es, 1), torch.cat(gains, 1)

    def group_size(self, g: EdgeGroup) -> int:
        """Number of edges of group ``g``."""
        nt = self.vertex_layers[g.dst].width
        return nt * self.vertex_layers[g.src].width if g.dense else nt

    def edge_mask(self, K: int) -> torch.Tensor:
        """``[E, K]`` bool: the real entries of every edge feature."""
        return torch.cat([(torch.arange(K) < g.numel).expand(self.group_size(g), K) for g in self.edge_groups])


def _data_flow_order(n: int, groups: Sequence[EdgeGroup]) -> list[int]:
    """Vertex layers sorted by depth (longest path from the input), ties in creation order."""
    depth = [0] * n
    for _ in range(n):  # relax: the graph is acyclic, n rounds suffice
        changed = False
        for g in groups:
            if depth[g.dst] < depth[g.src] + 1:
                depth[g.dst], changed = depth[g.src] + 1, True
        if not changed:
            break
    return sorted(range(n), key=lambda i: (depth[i], i))


@functools.lru_cache(maxsize=256)
def block_layout(spec: BlockNetworkSpec, variant: str = "exact") -> BlockGraphLayout:
    """The cached :class:`BlockGraphLayout` of ``spec`` (specs are frozen)."""
    return BlockGraphLayout(spec, variant)


def block_items(inp: BlockInput) -> tuple[list[tuple[BlockWeights, Sequence | None]], bool]:
    """``[(weights, shortcut_weights or None), ...]`` and whether ``inp`` was a single item. Accepts
    :class:`BlockWeights`, a :class:`~scalegmn_lite.weightspace.block_gauge.NonSymmetry` (weights evaluated with
    rescaled shortcuts) or a non-empty list of them."""
    single = not isinstance(inp, (list, tuple))
    items = [inp] if single else list(inp)
    out = []
    for it in items:
        weights = getattr(it, "weights", it)
        if not isinstance(weights, BlockWeights):
            raise TypeError(f"expected BlockWeights (or a NonSymmetry of one), got {type(it).__name__}")
        out.append((weights, getattr(it, "shortcut_weights", None)))
    if not out:
        raise TypeError("expected BlockWeights or a non-empty list of them")
    return out, single


def to_block_graph(inp: BlockInput, kernel_dim: int | None = None, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None, variant: str = "exact", eps: float | None = None) -> Batch:
    """One graph per network of ``inp`` (:func:`block_items`: ``BlockWeights``, ``NonSymmetry`` or a list, any specs).

    Args:
        kernel_dim: ``K``, the width of ``edge_attr`` (default: the widest edge present).
        device, dtype: of the returned tensors (default: those of the weights).
        variant: ``"exact"`` or an ablation of :data:`VARIANTS`.
        eps: overrides every BatchNorm's ``eps`` in ``gamma / sqrt(var + eps)`` (``0.0`` for exact checks).
    Returns:
        a :class:`torch_geometric.data.Batch` with the attributes of the module docstring; differentiable.
    """
    items, _ = block_items(inp)
    layouts = [block_layout(w.spec, variant) for w, _ in items]
    need = max(lay.max_numel for lay in layouts)
    K = need if kernel_dim is None else int(kernel_dim)
    if K < need:
        raise SpecError(f"kernel_dim={K} is smaller than the widest edge in the batch ({need} entries); build the "
                        f"model with ScaleGMNConfig(max_kernel={need})")
    data = []
    for g, ((w, sw), lay) in enumerate(zip(items, layouts)):
        dev = w.device if device is None else torch.device(device)
        dt = w.dtype if dtype is None else dtype
        x, e, gain = (t.to(device=dev, dtype=dt) for t in lay.features(w, K, eps, sw))
        static = dict(edge_index=lay.edge_index, edge_mask=lay.edge_mask(K), layer=lay.layer, vtype=lay.vtype,
                      pos=lay.pos, sym=lay.sym, vpool=lay.vpool, edge_layer=lay.edge_layer, edge_type=lay.edge_type)
        static = {k: v.to(dev) for k, v in static.items()}
        for b in range(w.batch_size):
            data.append(Data(x=x[b].unsqueeze(-1), edge_attr=e[b], edge_gain=gain[b], num_nodes=lay.num_vertices,
                             spec=w.spec, group=g, variant=variant, num_pools=lay.num_pools, **static))
    batch = Batch.from_data_list(data)
    start = torch.cumsum(batch.num_pools, 0) - batch.num_pools  # pool ids made global, graph by graph
    batch.vpool = torch.where(batch.vpool >= 0, batch.vpool + start[batch.batch], batch.vpool)
    return batch


def block_graph_to_weights(batch: Batch, node_out: torch.Tensor, edge_out: torch.Tensor) -> list[BlockWeights]:
    """Per-vertex and per-edge outputs mapped to updates ``Delta`` shaped like the parameters, one
    :class:`BlockWeights` per item of :func:`to_block_graph` (same order and batch sizes).

    ``weight``: its edges' first ``numel`` entries; ``bias``/``beta``: their vertex layer's value (a bias that shares
    its vertices with another, e.g. a projection's, gets the same value); ``gamma``: its norm edge times
    ``edge_gain`` (``sigma`` for BatchNorm); ``running_mean``/``running_var``: zero. Each ``Delta`` transforms like
    its parameter whenever ``node_out``/``edge_out`` transform like the graph's features (the module docstring), so
    ``BlockGauge.apply`` acts on it. Not an inverse of :func:`to_block_graph`: the graph holds ``b - mu`` and
    ``gamma / sigma``, a quotient of the parameters.
    """
    node_out = node_out[:, 0] if node_out.dim() == 2 else node_out
    edge_out = edge_out.unsqueeze(-1) if edge_out.dim() == 1 else edge_out
    if node_out.shape[0] != batch.num_nodes or edge_out.shape[0] != batch.num_edges:
        raise ValueError(f"node_out/edge_out have {node_out.shape[0]}/{edge_out.shape[0]} rows but the batch has "
                         f"{batch.num_nodes} vertices and {batch.num_edges} edges")
    variant = batch.variant[0] if isinstance(batch.variant, (list, tuple)) else batch.variant
    out, v0, e0 = [], 0, 0
    for spec, B in _groups(batch):
        lay = block_layout(spec, variant)
        V, E = lay.num_vertices, lay.num_edges
        nodes = node_out[v0:v0 + B * V].reshape(B, V)
        edges = edge_out[e0:e0 + B * E].reshape(B, E, edge_out.shape[1])
        gain = batch.edge_gain[e0:e0 + B * E].reshape(B, E).to(edges.dtype)
        params = []
        for name, shape in spec.param_shapes:
            kind, i = lay.sources[name]
            if kind == "vertex":
                t = nodes[:, lay.offsets[i]:lay.offsets[i + 1]]
            elif kind == "edges":
                g, a, b = lay.edge_groups[i], lay.edge_offsets[i], lay.edge_offsets[i + 1]
                t = edges[:, a:b, :g.numel] if g.dense else edges[:, a:b, 0] * gain[:, a:b]
            else:
                t = nodes.new_zeros(B, *shape)
            params.append(t.reshape(B, *shape))
        out.append(BlockWeights(spec, params))
        v0, e0 = v0 + B * V, e0 + B * E
    if v0 != node_out.shape[0] or e0 != edge_out.shape[0]:
        raise ValueError("the batch's graphs do not match their specs; build batches with to_block_graph")
    return out
