"""scalegmn-lite: scale equivariant graph metanetworks, from gauge symmetries to trained operators.

The folders follow the course: structure and symmetry (:mod:`.weightspace`, :mod:`.symbolic`), model
zoos (:mod:`.zoo`), networks as graphs and the equivariant layers (:mod:`.nn`), then what metanetworks
are trained for (:mod:`.tasks`: invariant prediction, amortized optimization, merging) and the
``reproduce`` experiments (:mod:`.experiments`). The names a user needs most are re-exported here.
"""

from .common.config import is_full, resolve_device, seed_everything
from .nn import (
    FlatMLP,
    ScaleGMN,
    ScaleGMNConfig,
    StatNN,
    check_equivariance,
    check_invariance,
    check_sensitivity,
    graph_to_weights,
    to_graph,
)
from .tasks.amortized import AmortizedOperator, OperatorTrainConfig, train_operator
from .tasks.invariant import FitConfig, fit, predict, score
from .tasks.merging import (
    AutoencoderConfig,
    WeightAutoencoder,
    align,
    canonicalize_scale,
    interpolate,
    loss_barrier,
    loss_curve,
    train_autoencoder,
    weight_matching,
)
from .weightspace import (
    ACTIVATIONS,
    GaugeElement,
    GlobalAvgPool,
    LayerSpec,
    NetworkSpec,
    NonFiniteWeightsError,
    NotASymmetryError,
    Sine,
    SpecError,
    Symmetry,
    WeightSpace,
    apply_uncoupled,
    batched_forward,
    sample_non_symmetry,
    symmetry_of,
)
from .zoo import Zoo, ZooRecipe, build_zoo, get_recipe, list_recipes, load_or_build
from .zoo.data import load_dataset

__version__ = "0.1.0"

__all__ = [
    # structure and symmetry
    "ACTIVATIONS", "GaugeElement", "GlobalAvgPool", "LayerSpec", "NetworkSpec", "NonFiniteWeightsError",
    "NotASymmetryError", "Sine", "SpecError", "Symmetry", "WeightSpace", "apply_uncoupled", "batched_forward",
    "sample_non_symmetry", "symmetry_of",
    # zoos
    "Zoo", "ZooRecipe", "build_zoo", "get_recipe", "list_recipes", "load_dataset", "load_or_build",
    # metanetworks
    "FlatMLP", "ScaleGMN", "ScaleGMNConfig", "StatNN", "check_equivariance", "check_invariance", "check_sensitivity",
    "graph_to_weights", "to_graph",
    # tasks
    "AmortizedOperator", "AutoencoderConfig", "FitConfig", "OperatorTrainConfig", "WeightAutoencoder", "align",
    "canonicalize_scale", "fit", "interpolate", "loss_barrier", "loss_curve", "predict", "score", "train_autoencoder",
    "train_operator", "weight_matching",
    # run configuration
    "is_full", "resolve_device", "seed_everything",
]
