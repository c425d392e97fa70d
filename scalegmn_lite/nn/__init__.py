"""Metanetworks: networks as graphs, the scale-equivariant layers, ScaleGMN, the non-equivariant
baselines and the public equivariance checkers (notebooks 04 and 05).

- :mod:`.graphs`: :func:`to_graph` / :func:`graph_to_weights` (neurons are vertices, weights are edges);
- :mod:`.layers`: ScaleInv (invariant views), ScaleEq, and the ScaleGMN message-passing layer;
- :mod:`.scalegmn`: :class:`ScaleGMN` and :class:`ScaleGMNConfig`;
- :mod:`.baselines`: StatNN and an MLP on flattened weights;
- :mod:`.checks`: :func:`check_invariance`, :func:`check_equivariance`, :func:`check_sensitivity`;
- block networks (residual blocks, BatchNorm, LayerNorm): :mod:`.block_graphs` (:func:`to_block_graph`, the exact
  construction and its ablations), :mod:`.block_scalegmn` (``ScaleGMN`` on ``BlockWeights``, :class:`BlockScaleGMN`)
  and :mod:`.block_checks` (parts of the gauge group for the checkers).
"""

from .baselines import FlatMLP, StatNN, gauge_augment
from .block_graphs import block_graph_to_weights, to_block_graph
from .block_scalegmn import BlockScaleGMN
from .checks import CheckResult, check_equivariance, check_invariance, check_sensitivity, default_tolerance
from .graphs import from_graph, graph_to_weights, layout, to_graph
from .scalegmn import ScaleGMN, ScaleGMNConfig, apply_update

__all__ = [
    "BlockScaleGMN", "CheckResult", "FlatMLP", "ScaleGMN", "ScaleGMNConfig", "StatNN", "apply_update",
    "block_graph_to_weights", "check_equivariance", "check_invariance", "check_sensitivity", "default_tolerance",
    "from_graph", "gauge_augment", "graph_to_weights", "layout", "to_block_graph", "to_graph",
]
