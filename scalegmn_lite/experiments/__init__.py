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

__all__ = ["RunContext", "experiment", "EXPERIMENTS", "load_all"]

EXPERIMENTS: dict[str, Callable] = {}

#: modules that register experiments, in the order reproduce runs them
EXPERIMENT_MODULES = ["gauge", "zoo", "invariant", "amortized", "gscale", "merging", "distributed"]


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


def experiment(name: str):
    def register(fn):
        EXPERIMENTS[name] = fn
        return fn

    return register


def load_all() -> dict[str, Callable]:
    for mod in EXPERIMENT_MODULES:
        importlib.import_module(f"{__name__}.{mod}")
    return EXPERIMENTS
