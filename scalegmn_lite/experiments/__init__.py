"""Experiments run by ``scalegmn-lite reproduce``: each writes ``<name>.json`` with its claims.

An experiment is a function ``run(ctx: RunContext) -> dict`` registered with
``@experiment("name")``; the dict must have a ``"claims"`` list of :class:`~scalegmn_lite.common.claims.Claim`
(or their dicts) and may hold any JSON-serialisable figures and tables.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

__all__ = ["RunContext", "experiment", "EXPERIMENTS", "ZOOS", "load_all", "needed_zoos"]

EXPERIMENTS: dict[str, Callable] = {}
#: per experiment, ``ctx -> [ZooRecipe]``: the zoos it loads, so ``reproduce --jobs`` can build them first,
#: side by side, instead of one experiment waiting for another's build
ZOOS: dict[str, Callable] = {}

#: modules that register experiments, in the order reproduce runs them
EXPERIMENT_MODULES = ["gauge", "zoo", "invariant", "amortized", "gscale", "merging", "residual", "distributed"]


@dataclass
class RunContext:
    quick: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    out_dir: Path = Path("results")
    seed: int = 0
    progress: bool = True
    #: reference size (``reproduce --reference``, with ``quick`` still True): bigger than quick, sized for
    #: ~1 hour on 2 CPU cores; an experiment without a reference size runs its quick size
    reference: bool = False

    @property
    def mode(self) -> str:
        return "reference" if self.reference else ("quick" if self.quick else "full")

    def path(self, name: str) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name


def experiment(name: str, zoos: Callable | None = None):
    """Register ``run(ctx)`` as experiment ``name``; ``zoos(ctx)`` lists the zoo recipes it loads (optional: an
    experiment may load more, which it then builds itself)."""
    def register(fn):
        EXPERIMENTS[name] = fn
        if zoos is not None:
            ZOOS[name] = zoos
        return fn

    return register


def needed_zoos(names, ctx: RunContext) -> list:
    """The zoo recipes the experiments ``names`` load in ``ctx``'s size, each once (by cache key), not yet
    cached, longest build first (:func:`~scalegmn_lite.zoo.recipes.build_work`)."""
    from ..zoo.build import zoo_path
    from ..zoo.recipes import build_work

    load_all()
    seen: dict[str, object] = {}
    for name in names:
        for recipe in ZOOS.get(name, lambda _ctx: [])(ctx):
            folder = zoo_path(recipe)
            if str(folder) not in seen and not (folder / "zoo.json").exists():
                seen[str(folder)] = recipe
    return sorted(seen.values(), key=build_work, reverse=True)


def load_all() -> dict[str, Callable]:
    for mod in EXPERIMENT_MODULES:
        importlib.import_module(f"{__name__}.{mod}")
    return EXPERIMENTS
