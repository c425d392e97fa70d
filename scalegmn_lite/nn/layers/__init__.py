"""ScaleGMN building blocks: invariant views, the invariant MLP, ScaleEq and the message-passing layer
(on graph batches or densely per network layer)."""

from .equivariant import ScaleEq
from .invariant import (
    SIGN_VIEWS,
    VIEW_FREE,
    VIEW_NONZERO,
    VIEW_POSITIVE,
    VIEW_SIGN,
    InvariantMLP,
    KindGroups,
    Kinds,
    ScaleInv,
    mlp,
    normalize_guarded,
    safe_norm,
    symmetrize,
    view_scale,
)
from .message_passing import DenseTopology, EdgeBlock, GraphTopology, ScaleGMNLayer, edge_kind

__all__ = [
    "SIGN_VIEWS",
    "VIEW_FREE",
    "VIEW_NONZERO",
    "VIEW_POSITIVE",
    "VIEW_SIGN",
    "DenseTopology",
    "EdgeBlock",
    "GraphTopology",
    "InvariantMLP",
    "KindGroups",
    "Kinds",
    "ScaleEq",
    "ScaleGMNLayer",
    "ScaleInv",
    "edge_kind",
    "mlp",
    "normalize_guarded",
    "safe_norm",
    "symmetrize",
    "view_scale",
]
