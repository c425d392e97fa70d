"""The ScaleGMN metanetwork: embedding, a stack of :class:`ScaleGMNLayer`, and a head.

Input: a batch of network graphs (:func:`scalegmn_lite.nn.graphs.to_graph`), or weight spaces that
are converted internally. Symmetry per row (vertex or edge) is chosen by ``config.mode``:

* ``"scale"``: hidden vertices use the positive-scale view (ReLU-like networks);
* ``"sign"``: the sign view (tanh, SIREN);
* ``"permutation"``: plain views everywhere (the symmetry-broken "GMN" baseline; its inputs are
  normalised per graph and layer by the weights' RMS, which scale-equivariant models must not do);
* ``"auto"``: each hidden vertex uses the view of its own layer's symmetry (``spec.symmetries``),
  so mixed zoos share one batch.

Input and output vertices are fixed by the gauge group and always use plain views.

Two execution paths compute the same function (equal up to float rounding, see
``tests/test_dense_path.py``): a batch whose networks all share one spec runs densely per network
layer (:class:`~scalegmn_lite.nn.layers.DenseTopology`: edges of layer ``l`` as
``[B, n_l, n_{l-1}, d]``, per-vertex terms broadcast, no gather/scatter); a mixed batch runs on the
graph (:class:`~scalegmn_lite.nn.layers.GraphTopology`). ``config.path`` forces one of them.

Embedding (equivariant: hidden vertices scale by ``q``, edges by ``q_t / q_s``)::

    hidden vertex:  x_t = (Gamma_x b_t) * a_{layer(t)}         multiplicative layer identity
    input/output:   x_t =  Gamma_x b_t  + p_{in/out}[pos(t)]   additive position identity
    edge:           e_st = (Gamma_w W[t, s]) * c_{layer}       multiplicative layer identity

Heads: ``"invariant"`` (a vector per network: mean/sum pooling of ``phi_r(view(x))`` per
vertex type, the input/output vertices with their plain view, then an MLP) or ``"equivariant"``
(per-vertex and per-edge ScaleEq outputs that transform like biases and weights, mapped back to
weight spaces; :meth:`ScaleGMN.update` applies ``theta' = theta + s_l * Delta_l``).

Block networks (residual blocks, BatchNorm, LayerNorm: :class:`~scalegmn_lite.weightspace.BlockWeights`) are
accepted too: they become graphs by :mod:`.block_graphs` and always run on the graph path
(:mod:`.block_scalegmn`); outputs are ``[num_networks, out_dim]`` or ``BlockWeights`` updates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.utils import scatter

from ..weightspace.spec import NetworkSpec, Symmetry
from ..weightspace.weights import WeightSpace
from .block_scalegmn import is_block_input, scalegmn_on_blocks, update_blocks
from .graphs import HIDDEN, INPUT, SYM_CODES, SYM_NONZERO, graph_to_weights, layout, to_graph
from .guards import check_mode, check_output, check_weights
from .layers import (
    SIGN_VIEWS,
    VIEW_FREE,
    VIEW_NONZERO,
    VIEW_POSITIVE,
    VIEW_SIGN,
    DenseTopology,
    GraphTopology,
    InvariantMLP,
    ScaleEq,
    ScaleGMNLayer,
    mlp,
)

__all__ = ["ScaleGMNConfig", "ScaleGMN", "apply_update", "prefer_dense", "MODES", "PATHS"]

MODES = ("scale", "sign", "permutation", "auto")
PATHS = ("auto", "dense", "graph")
POSITIVE_CODE = SYM_CODES[Symmetry.POSITIVE_SCALE]


@dataclass(frozen=True)
class ScaleGMNConfig:
    """Hyperparameters of :class:`ScaleGMN`.

    Attributes:
        hidden_dim: feature size ``d`` of vertices and edges.
        num_layers: message-passing layers.
        mode: ``"scale"``, ``"sign"``, ``"permutation"`` (GMN baseline) or ``"auto"``.
        bidirectional: add backward messages (exactly equivariant, no ``1/W``).
        edge_updates: update edge features in every layer.
        head: ``"invariant"`` or ``"equivariant"``.
        out_dim: output size of the invariant head.
        readout: ``"mean"`` or ``"sum"`` pooling in the invariant head.
        sign_view: ``"symmetrize"`` (``rho(u) + rho(-u)``, ``rho = SiLU``) or ``"abs"`` (sign views).
        eps: norm guard of positive-scale views.
        max_kernel: ``K``, the largest kernel size (edge feature width) the model accepts.
        max_layers: largest network depth ``L`` (layer identity encodings).
        max_io: most input or output neurons/channels (position identity encodings).
        input_norm: normalise inputs per graph and layer by the weights' RMS. ``None`` (default):
            every layer in ``"permutation"`` mode; in ``"auto"``/``"sign"`` mode only layers
            without positive-scale vertices (the RMS is sign- and permutation-invariant, so
            equivariance stays exact); none in ``"scale"`` mode. The log-RMS of a normalised
            layer re-enters as a positive per-channel gain of its embeddings, so a model still
            tells a network from one with a whole layer rescaled. ``True``: every layer (breaks scale
            equivariance); ``False``: none.
        update_scale_init: initial per-layer step ``s_l`` of the equivariant update.
        check_mode: raise if ``mode`` contradicts a hidden layer's symmetry (``"scale"`` on tanh,
            ``"sign"`` on ReLU, ...; :func:`~scalegmn_lite.nn.guards.check_mode`); ``False`` for ablations.
        edge_hidden: hidden width of the per-edge MLPs (default ``hidden_dim``; the published code
            uses ``2d -> d -> d``).
        node_hidden: hidden width of the per-vertex and readout MLPs (default ``hidden_dim``).
        path: ``"auto"`` (dense when every network of a batch has one spec and the batch is above the
            measured crossover :func:`prefer_dense`, else graph),
            ``"dense"`` (error on a mixed batch) or ``"graph"``.
        compile: run each message-passing layer through ``torch.compile`` (fuses the elementwise
            work around the per-edge products; ~1.15x faster per step on CPU at zoo sizes,
            ``benchmarks/bench_vs_official.py``; the first call of each new batch shape compiles,
            seconds). The function is the same up to float rounding (``tests/test_dense_path.py``).
    """

    hidden_dim: int = 64
    num_layers: int = 4
    mode: str = "auto"
    bidirectional: bool = False
    edge_updates: bool = True
    head: str = "invariant"
    out_dim: int = 1
    readout: str = "mean"
    sign_view: str = "symmetrize"
    eps: float = 1e-12
    max_kernel: int = 9
    max_layers: int = 16
    max_io: int = 1024
    input_norm: bool | None = None
    update_scale_init: float = 1e-2
    check_mode: bool = True
    edge_hidden: int | None = None
    node_hidden: int | None = None
    path: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.head not in ("invariant", "equivariant"):
            raise ValueError(f"head must be 'invariant' or 'equivariant', got {self.head!r}")
        if self.readout not in ("mean", "sum"):
            raise ValueError(f"readout must be 'mean' or 'sum', got {self.readout!r}")
        if self.hidden_dim < 1 or self.num_layers < 0:
            raise ValueError("hidden_dim must be >= 1 and num_layers >= 0")
        if self.sign_view not in SIGN_VIEWS:
            raise ValueError(f"sign_view must be one of {SIGN_VIEWS}, got {self.sign_view!r}")
        if self.path not in PATHS:
            raise ValueError(f"path must be one of {PATHS}, got {self.path!r}")
        for name in ("edge_hidden", "node_hidden"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1 or None (= hidden_dim), got {v}")

    @property
    def normalizes_input(self) -> bool:
        return self.mode == "permutation" if self.input_norm is None else bool(self.input_norm)

    @property
    def normalizes_safe_layers(self) -> bool:
        """Only sign/permutation layers are RMS-normalised (default in ``"auto"``/``"sign"`` mode)."""
        return not self.normalizes_input and self.input_norm is None and self.mode in ("auto", "sign")

    def to_dict(self) -> dict:
        return asdict(self)


#: ``batch x edges x hidden / (layers - 1)`` from which the dense path is faster than the graph path
#: (``benchmarks/bench_paths.py``, 1 thread, forward + backward, 60 sizes of 5 architectures: the
#: dense path pays per network layer, the graph path per edge for its gathers and scatters; below
#: ~1e5 the graph path was up to 1.45x faster, above it the dense path up to 1.8x)
DENSE_MIN_WORK = 100_000


def prefer_dense(spec: NetworkSpec, batch_size: int, hidden_dim: int) -> bool:
    """Whether ``path="auto"`` runs a single-spec batch densely: when
    ``batch_size * spec.num_edges * hidden_dim >= DENSE_MIN_WORK * max(1, layers - 1)``, the crossover
    measured by ``benchmarks/bench_paths.py`` (small graphs in small batches run faster as one
    gather/scatter block than as one dense block per layer). Both paths compute the same function."""
    return batch_size * spec.num_edges * hidden_dim >= DENSE_MIN_WORK * max(1, spec.num_layers - 1)


def vertex_view_kinds(batch: Batch, mode: str) -> torch.Tensor:
    """``[V]`` view kind of every vertex: plain for input/output vertices, else by ``mode``."""
    hidden = batch.vtype == HIDDEN
    if mode == "scale":
        kind = torch.full_like(batch.sym, VIEW_POSITIVE)
    elif mode == "sign":
        kind = torch.full_like(batch.sym, VIEW_SIGN)
    elif mode == "permutation":
        kind = torch.full_like(batch.sym, VIEW_FREE)
    else:  # auto: SYM_CODES 1 positive, 2 sign, 3 permutation; SYM_NONZERO 4 (block graphs' norm inputs)
        table = torch.tensor([VIEW_FREE, VIEW_POSITIVE, VIEW_SIGN, VIEW_FREE, VIEW_NONZERO], device=batch.sym.device)
        kind = table[batch.sym]
    return torch.where(hidden, kind, torch.full_like(kind, VIEW_FREE))


def edge_view_kinds(vertex_kinds: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """``[E]`` view kind of every edge (group of ``q_t / q_s``) from its endpoints' kinds."""
    a, b = vertex_kinds[edge_index[0]], vertex_kinds[edge_index[1]]
    nonzero = (a == VIEW_NONZERO) | (b == VIEW_NONZERO)
    pos = (a == VIEW_POSITIVE) | (b == VIEW_POSITIVE) | nonzero
    sign = (a == VIEW_SIGN) | (b == VIEW_SIGN) | nonzero
    kind = torch.full_like(a, VIEW_FREE)
    kind = torch.where(pos, torch.full_like(a, VIEW_POSITIVE), kind)
    kind = torch.where(sign, torch.full_like(a, VIEW_SIGN), kind)
    return torch.where(pos & sign, torch.full_like(a, VIEW_NONZERO), kind)


def apply_update(ws: WeightSpace, delta: WeightSpace, scales: torch.Tensor) -> WeightSpace:
    """``W_l' = W_l + s_l[0] * dW_l`` and ``b_l' = b_l + s_l[1] * db_l`` for layers ``l = 1..L``.

    Args:
        ws, delta: same spec and batch size.
        scales: ``[>= L, 2]`` (weight and bias step per layer) or ``[>= L]`` (one step per layer).
    Equivariant whenever ``delta`` is: the steps are invariant scalars.
    """
    ws._check_compatible(delta)
    L = ws.spec.num_layers
    if scales.shape[0] < L:
        raise ValueError(f"scales has {scales.shape[0]} rows, the network has {L} layers")
    s = scales if scales.dim() == 2 else scales.unsqueeze(-1).expand(-1, 2)
    s = s.to(device=ws.device, dtype=ws.dtype)
    weights = [w + s[l, 0] * d for l, (w, d) in enumerate(zip(ws.weights, delta.weights))]
    biases = [b + s[l, 1] * d for l, (b, d) in enumerate(zip(ws.biases, delta.biases))]
    return WeightSpace(ws.spec, weights, biases)


class ScaleGMN(nn.Module):
    """Scale-equivariant graph metanetwork (see the module docstring).

    Call with a :class:`WeightSpace`, a list of them, or a graph batch:

    * invariant head: ``model(ws) -> [num_networks, out_dim]``;
    * equivariant head: ``model(ws) -> WeightSpace`` of updates ``Delta`` (a list for a list, a
      ``(node_out [V, 1], edge_out [E, K])`` pair for a graph batch); ``model.update(ws)`` returns
      ``theta + s_l * Delta``;
    * block networks (:class:`~scalegmn_lite.weightspace.BlockWeights`, or lists): the same, with
      ``BlockWeights`` updates (:mod:`.block_scalegmn`).
    """

    def __init__(self, config: ScaleGMNConfig | None = None, **overrides) -> None:
        super().__init__()
        if config is None:
            config = ScaleGMNConfig(**overrides)
        elif overrides:
            config = ScaleGMNConfig(**{**config.to_dict(), **overrides})
        self.config = c = config
        d, h_e, h_v = c.hidden_dim, c.edge_hidden or c.hidden_dim, c.node_hidden or c.hidden_dim
        self.gamma_x = nn.Linear(1, d, bias=False)
        self.gamma_w = nn.Linear(c.max_kernel, d, bias=False)
        self.layer_id = nn.Parameter(1.0 + 0.1 * torch.randn(c.max_layers + 1, d))
        self.edge_id = nn.Parameter(1.0 + 0.1 * torch.randn(c.max_layers + 1, d))
        # gain from the log-RMS of each input-normalised layer: normalising alone would make the model
        # blind to rescaling a whole layer (not a symmetry of sine/tanh layers); the RMS is gauge
        # invariant, so a positive per-channel factor of it keeps every equivariance (built only
        # when some layer may be normalised)
        if c.normalizes_input or c.normalizes_safe_layers:
            self.rms_gain = nn.Linear(1, d)
        self.in_id = nn.Embedding(c.max_io, d)
        self.out_id = nn.Embedding(c.max_io, d)
        self.layers = nn.ModuleList(
            ScaleGMNLayer(d, c.bidirectional, c.edge_updates, c.sign_view, c.eps, h_e, h_v)
            for _ in range(c.num_layers)
        )
        if c.head == "invariant":
            self.read_phi = InvariantMLP([d], d, h_v, c.sign_view, c.eps)
            self.read_out = mlp(3 * d, c.out_dim, h_v)
        else:
            self.out_vertex = ScaleEq(d, 1, c.sign_view, c.eps, hidden=h_v)
            self.out_gamma = nn.Linear(d, c.max_kernel, bias=False)
            self.out_phi = InvariantMLP([d, d, d], c.max_kernel, h_e, c.sign_view, c.eps)  # e, x_s, x_t
            self.update_scales = nn.Parameter(torch.full((c.max_layers, 2), float(c.update_scale_init)))

    # ------------------------------------------------------------------ graph side
    def _check(self, batch: Batch) -> None:
        c = self.config
        if batch.edge_attr.shape[1] > c.max_kernel:
            raise ValueError(
                f"the batch has kernels of {batch.edge_attr.shape[1]} entries but the model accepts at most "
                f"max_kernel={c.max_kernel}; build the model with ScaleGMNConfig(max_kernel=...)"
            )
        if int(batch.layer.max()) > c.max_layers:
            raise ValueError(f"networks deeper than max_layers={c.max_layers}; raise ScaleGMNConfig.max_layers")
        if int(batch.pos[batch.vtype != HIDDEN].max()) >= c.max_io:
            raise ValueError(f"more than max_io={c.max_io} input/output neurons; raise ScaleGMNConfig.max_io")

    def _normalize(self, batch: Batch, x0: torch.Tensor, e0: torch.Tensor, safe_only: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Divide layer ``l`` weights and biases of every graph by the RMS of its weights; also return
        ``log RMS`` per vertex ``[V, 1]`` and per edge ``[E, 1]`` (0 where nothing was divided).

        ``safe_only``: only layers none of whose two vertex layers has positive-scale symmetry. The
        RMS of such a layer is invariant to sign flips and permutations, so dividing by it keeps
        exact equivariance, while SIREN-like networks with tiny weights get features of order one.
        """
        n_key = self.config.max_layers + 1
        g_edge = batch.batch[batch.edge_index[1]]
        key_e = g_edge * n_key + batch.edge_layer
        size = batch.num_graphs * n_key
        sq = scatter((e0 * e0).sum(-1), key_e, 0, dim_size=size, reduce="sum")
        cnt = scatter(batch.edge_mask.sum(-1).to(e0.dtype), key_e, 0, dim_size=size, reduce="sum")
        rms = torch.sqrt((sq / cnt.clamp(min=1)).clamp(min=1e-16))  # clamp before sqrt: finite grads at 0
        rms = torch.where(cnt > 0, rms, torch.ones_like(rms))
        if safe_only:
            s, t = batch.edge_index
            scaled = (batch.sym == POSITIVE_CODE) | (batch.sym == SYM_NONZERO)
            ok = (~scaled[s] & ~scaled[t]).to(e0.dtype)
            ok_key = scatter(ok, key_e, 0, dim_size=size, reduce="min")
            rms = torch.where(ok_key > 0, rms, torch.ones_like(rms))
        key_v = batch.batch * n_key + batch.layer
        rv, re = rms[key_v].unsqueeze(-1), rms[key_e].unsqueeze(-1)
        return x0 / rv, e0 / re, rv.log(), re.log()

    def embed(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial features ``x [V, d]``, ``e [E, d]`` (equivariant, see the module docstring)."""
        x0, e0 = batch.x, batch.edge_attr
        if e0.shape[1] < self.config.max_kernel:
            e0 = nn.functional.pad(e0, (0, self.config.max_kernel - e0.shape[1]))
        log_rv = log_re = None
        if self.config.normalizes_input:
            x0, e0, log_rv, log_re = self._normalize(batch, x0, e0)
        elif self.config.normalizes_safe_layers:
            x0, e0, log_rv, log_re = self._normalize(batch, x0, e0, safe_only=True)
        gx = self.gamma_x(x0)
        e = self.gamma_w(e0) * self.edge_id[batch.edge_layer]
        if log_rv is not None:
            gx = gx * (1 + torch.tanh(self.rms_gain(log_rv)))
            e = e * (1 + torch.tanh(self.rms_gain(log_re)))
        hidden = (batch.vtype == HIDDEN).unsqueeze(-1)
        pos = batch.pos.clamp(max=self.config.max_io - 1)
        io = torch.where((batch.vtype == INPUT).unsqueeze(-1), self.in_id(pos), self.out_id(pos))
        x = torch.where(hidden, gx * self.layer_id[batch.layer], gx + io)
        return x, e

    def _dense_spec(self, batch: Batch) -> NetworkSpec | None:
        """The spec shared by every network of ``batch`` when the dense path applies, else ``None``."""
        path = self.config.path
        if path == "graph":
            return None
        specs = [batch.spec] if isinstance(batch.spec, NetworkSpec) else list(batch.spec)
        if not all(isinstance(s, NetworkSpec) for s in specs):  # block graphs: skip edges, no layer-wise blocks
            if path == "dense":
                raise ValueError("path='dense' runs chain networks only; block networks (residual blocks, norms) "
                                 "have shortcut and norm edges between non-consecutive layers: use path='auto'")
            return None
        first = specs[0]
        same = all(s is first or s == first for s in specs)
        lay = layout(first) if same else None
        ok = same and lay.num_vertices * len(specs) == batch.num_nodes and lay.num_edges * len(specs) == \
            batch.num_edges and all(lay.edge_offsets[i + 1] - lay.edge_offsets[i] == a * b for i, (a, b) in
                                    enumerate(zip(first.widths[:-1], first.widths[1:])))
        if not ok and path == "dense":
            raise ValueError("path='dense' needs a batch whose networks all share one spec; use path='auto' "
                             "or 'graph' for mixed batches")
        if ok and path == "auto" and not prefer_dense(first, len(specs), self.config.hidden_dim):
            return None  # below the measured crossover the graph path is faster
        return first if ok else None

    def topology(self, batch: Batch) -> GraphTopology | DenseTopology:
        """How the layers run on ``batch``: :class:`DenseTopology` when every network shares one spec
        (and ``config.path`` allows it), else :class:`GraphTopology`."""
        vk = vertex_view_kinds(batch, self.config.mode)
        spec = self._dense_spec(batch)
        if spec is None:
            return GraphTopology(vk, edge_view_kinds(vk, batch.edge_index), batch.edge_index,
                                 getattr(batch, "vpool", None))
        lay = layout(spec)
        layer_kinds = vk[torch.tensor(lay.offsets[:-1], device=vk.device)].tolist()
        return DenseTopology(batch.num_graphs, spec.widths, layer_kinds, vk)

    def encode(self, batch: Batch) -> tuple[torch.Tensor, list[torch.Tensor], GraphTopology | DenseTopology]:
        """Final vertex features ``x [V, d]``, edge features (one tensor per block of the topology;
        ``topo.join_edges`` gives ``[E, d]``) and the topology."""
        self._check(batch)
        topo = self.topology(batch)
        x, e = self.embed(batch)
        edges = topo.split_edges(e)
        for layer in self._layer_fns():
            x, edges = layer(x, edges, topo)
        return x, edges, topo

    def _layer_fns(self):
        """The layers as called: themselves, or their ``torch.compile`` wrappers (``config.compile``;
        kept outside the module tree, so parameters, ``state_dict`` and ``.to()`` are unaffected)."""
        if not self.config.compile:
            return self.layers
        fns = self.__dict__.get("_compiled")
        if fns is None or len(fns) != len(self.layers):
            fns = [torch.compile(layer) for layer in self.layers]
            self.__dict__["_compiled"] = fns
        return fns

    def __getstate__(self):
        state = super().__getstate__()  # copies and pickles compile their own layers anew
        state.pop("_compiled", None)
        return state

    def readout(self, batch: Batch, x: torch.Tensor, topo: GraphTopology | DenseTopology) -> torch.Tensor:
        """Invariant vector per graph ``[G, out_dim]``: pooled ``phi_r(view(x))`` per vertex type."""
        r = self.read_phi((x, topo.vertex))
        key = batch.batch * 3 + batch.vtype  # INPUT, HIDDEN, OUTPUT = 0, 1, 2
        pooled = scatter(r, key, 0, dim_size=3 * batch.num_graphs, reduce=self.config.readout)
        return self.read_out(pooled.reshape(batch.num_graphs, -1))

    def equivariant_output(self, batch: Batch, x: torch.Tensor, edges: list[torch.Tensor],
                           topo: GraphTopology | DenseTopology) -> tuple[torch.Tensor, torch.Tensor]:
        """``node_out [V, 1]`` (scales like biases) and ``edge_out [E, max_kernel]`` (like weights):
        ``(Gamma_o e_st) * phi_o(view_e(e_st), view_s(x_s), view_t(x_t))``."""
        node = self.out_vertex(x, topo.vertex)
        phi = self.out_phi
        fs = phi.piece(1, x, topo.vertex)
        ft = phi.piece(2, x, topo.vertex)
        out = [self.out_gamma(e) * phi.head(phi.piece(0, e, blk.kinds_edge) + blk.src(fs) + blk.dst(ft))
               for blk, e in zip(topo.blocks, edges)]
        return node, topo.join_edges(out)

    def forward_graph(self, batch: Batch):
        """Invariant head: ``[G, out_dim]``; equivariant head: ``(node_out [V, 1], edge_out [E, K])``."""
        x, edges, topo = self.encode(batch)
        if self.config.head == "invariant":
            out = self.readout(batch, x, topo)
            check_output(out, batch, None, x.dtype)
            return out
        out = self.equivariant_output(batch, x, edges, topo)
        check_output(out[0], batch, out[1], x.dtype)
        return out

    # ------------------------------------------------------------------ weight side
    def to_graph(self, ws: WeightSpace | Sequence[WeightSpace]) -> Batch:
        """Graphs of ``ws`` on this model's device and dtype (edge width ``max_kernel``)."""
        p = next(self.parameters())
        items = [ws] if isinstance(ws, WeightSpace) else list(ws)
        need = max(w.spec.max_kernel_numel for w in items)
        if need > self.config.max_kernel:
            raise ValueError(f"kernels of {need} entries but the model accepts at most max_kernel="
                             f"{self.config.max_kernel}; build it with ScaleGMNConfig(max_kernel={need})")
        return to_graph(items, kernel_dim=self.config.max_kernel, device=p.device, dtype=p.dtype)

    def forward(self, inp):
        if is_block_input(inp):  # BlockWeights: graphs of .block_graphs, then the Batch path below
            return scalegmn_on_blocks(self, inp)
        check_weights(inp, "ScaleGMN input")  # NaN/inf or meta weights raise, naming the networks
        if self.config.check_mode:
            check_mode(self.config.mode, inp)
        if isinstance(inp, Batch):
            return self.forward_graph(inp)
        batch = self.to_graph(inp)
        out = self.forward_graph(batch)
        if self.config.head == "invariant":
            return out
        deltas = graph_to_weights(batch, *out)
        return deltas[0] if isinstance(inp, WeightSpace) else deltas

    def update(self, inp: WeightSpace | Sequence[WeightSpace]):
        """``theta' = theta + s_l * Delta_l`` (equivariant head); same container type as ``inp``."""
        if self.config.head != "equivariant":
            raise ValueError("update() needs a model with head='equivariant'")
        if is_block_input(inp):
            return update_blocks(self, inp)
        items = [inp] if isinstance(inp, WeightSpace) else list(inp)
        check_weights(items, "ScaleGMN.update input")  # before moving: meta tensors cannot be copied
        p = next(self.parameters())
        items = [w.to(device=p.device, dtype=p.dtype) for w in items]
        deltas = self(items)
        out = [apply_update(w, dlt, self.update_scales) for w, dlt in zip(items, deltas)]
        return out[0] if isinstance(inp, WeightSpace) else out
