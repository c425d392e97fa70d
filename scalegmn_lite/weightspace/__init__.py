"""Structure and symmetry of a network, and the space its weights live in (notebooks 01 and 03).

- :mod:`.layer`: one layer and the symmetry of the hidden neurons it produces (:class:`Symmetry`,
  :class:`LayerSpec`, the activation -> symmetry table);
- :mod:`.spec`: :class:`NetworkSpec`, the one source of truth for a network's structure (text form too);
- :mod:`.modules`: the ``torch.nn`` side: ``Sine``, ``GlobalAvgPool`` and ``nn.Sequential`` converters;
- :mod:`.weights`: :class:`WeightSpace`, the immutable batch of weights and biases of ``B`` networks;
- :mod:`.gauge`: :class:`GaugeElement`, the gauge group's action (permutations and scalings);
- beyond a chain (residual blocks, BatchNorm, LayerNorm): :mod:`.blocks` (:class:`BlockNetworkSpec`, its parts in
  :mod:`.block_parts`, text form in :mod:`.block_text`, modules in :mod:`.block_modules`, gauge sites in
  :mod:`.block_sites`), :mod:`.block_weights` (:class:`BlockWeights`) and :mod:`.block_gauge` (:class:`BlockGauge`).
"""

from .block_gauge import BlockGauge
from .block_weights import BlockWeights
from .blocks import BlockNetworkSpec, Norm, Residual, ResidualBlock
from .gauge import GaugeElement, NotASymmetryError, apply_uncoupled, sample_non_symmetry
from .layer import ACTIVATIONS, LayerSpec, SpecError, Symmetry, symmetry_of
from .modules import GlobalAvgPool, Sine
from .spec import NetworkSpec
from .weights import NonFiniteWeightsError, WeightSpace, batched_forward

__all__ = [
    "ACTIVATIONS", "BlockGauge", "BlockNetworkSpec", "BlockWeights", "GaugeElement", "GlobalAvgPool", "LayerSpec",
    "NetworkSpec", "NonFiniteWeightsError", "Norm", "NotASymmetryError", "Residual", "ResidualBlock", "Sine",
    "SpecError", "Symmetry", "WeightSpace", "apply_uncoupled", "batched_forward", "sample_non_symmetry", "symmetry_of",
]
