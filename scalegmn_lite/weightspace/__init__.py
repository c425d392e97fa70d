"""Structure and symmetry of a network, and the space its weights live in (notebooks 01 and 03).

- :mod:`.layer`: one layer and the symmetry of the hidden neurons it produces (:class:`Symmetry`,
  :class:`LayerSpec`, the activation -> symmetry table);
- :mod:`.spec`: :class:`NetworkSpec`, the one source of truth for a network's structure (text form too);
- :mod:`.modules`: the ``torch.nn`` side: ``Sine``, ``GlobalAvgPool`` and ``nn.Sequential`` converters;
- :mod:`.weights`: :class:`WeightSpace`, the immutable batch of weights and biases of ``B`` networks;
- :mod:`.gauge`: :class:`GaugeElement`, the gauge group's action (permutations and scalings).
"""

from .gauge import GaugeElement, NotASymmetryError, apply_uncoupled, sample_non_symmetry
from .layer import ACTIVATIONS, LayerSpec, SpecError, Symmetry, symmetry_of
from .modules import GlobalAvgPool, Sine
from .spec import NetworkSpec
from .weights import NonFiniteWeightsError, WeightSpace, batched_forward

__all__ = [
    "ACTIVATIONS", "GaugeElement", "GlobalAvgPool", "LayerSpec", "NetworkSpec", "NonFiniteWeightsError",
    "NotASymmetryError", "Sine", "SpecError", "Symmetry", "WeightSpace", "apply_uncoupled", "batched_forward",
    "sample_non_symmetry", "symmetry_of",
]
