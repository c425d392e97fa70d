"""Model zoos: recipes, vectorized training, the :class:`Zoo` object, storage, caching and loaders
for the public zoo formats (Small CNN Zoo, DWSNets/NFN INRs); taught in notebook 03."""

from .block_train import train_block_batched
from .build import build_zoo, load_or_build, zoo_path
from .recipes import RECIPES, RecipeError, ZooRecipe, get_recipe, list_recipes
from .storage import load_zoo, save_zoo
from .train import TrainResult, evaluate, init_weights, train_batched, train_loop
from .zoo import Zoo, ZooError

__all__ = [
    "RECIPES",
    "RecipeError",
    "TrainResult",
    "Zoo",
    "ZooError",
    "ZooRecipe",
    "build_zoo",
    "evaluate",
    "get_recipe",
    "init_weights",
    "list_recipes",
    "load_or_build",
    "load_zoo",
    "save_zoo",
    "train_batched",
    "train_block_batched",
    "train_loop",
    "zoo_path",
]
