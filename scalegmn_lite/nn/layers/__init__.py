"""ScaleGMN building blocks: invariant views (ScaleInv), ScaleEq and message-passing layers."""

from .equivariant import ScaleEq
from .invariant import VIEW_FREE, VIEW_NONZERO, VIEW_POSITIVE, VIEW_SIGN, KindGroups, ScaleInv, mlp, normalize_guarded
from .message_passing import BackwardMessages, ForwardMessages, LayerGroups, ScaleGMNLayer

__all__ = [
    "VIEW_FREE",
    "VIEW_NONZERO",
    "VIEW_POSITIVE",
    "VIEW_SIGN",
    "BackwardMessages",
    "ForwardMessages",
    "KindGroups",
    "LayerGroups",
    "ScaleEq",
    "ScaleGMNLayer",
    "ScaleInv",
    "mlp",
    "normalize_guarded",
]
