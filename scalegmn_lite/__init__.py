"""scalegmn-lite: scale equivariant graph metanetworks, from gauge symmetries to trained operators."""

from .gauge import GaugeElement, NotASymmetryError, apply_uncoupled, sample_non_symmetry
from .modules import GlobalAvgPool, Sine
from .spec import ACTIVATIONS, LayerSpec, NetworkSpec, SpecError, Symmetry, symmetry_of
from .weights import NonFiniteWeightsError, WeightSpace, batched_forward

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "GaugeElement",
    "GlobalAvgPool",
    "LayerSpec",
    "NetworkSpec",
    "NonFiniteWeightsError",
    "NotASymmetryError",
    "Sine",
    "SpecError",
    "Symmetry",
    "WeightSpace",
    "apply_uncoupled",
    "batched_forward",
    "sample_non_symmetry",
    "symmetry_of",
]
