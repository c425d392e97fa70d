"""Building zoos from recipes, and the cache that lets notebooks and the main job reuse them.

``build_zoo(recipe)``: network ``i`` draws its hyperparameters and seed from ``recipe.sample(i)``;
networks are grouped by spec and trained together in chunks of ``recipe.chunk_size`` with
:func:`~scalegmn_lite.zoo.train.train_batched` (per-network seeds: own init and data order), so
the result does not depend on the chunking. ``build_zoo(recipe, indices=...)`` trains only some
networks, bit-identical to the same networks of the whole build (every random draw of network ``i``
comes from ``(recipe.seed, i)``; evaluation chunks do not depend on which networks train together):
the basis of sharded builds (:mod:`scalegmn_lite.zoo.shards`). ``load_or_build(name)``: the same,
cached under ``cache_dir()/zoos/<name>-<recipe hash>``. A recipe whose arch is block text (residual blocks,
norms) builds block networks the same way with :func:`~scalegmn_lite.zoo.block_train.init_block_weights` and
:func:`~scalegmn_lite.zoo.block_train.train_block_batched` (BatchNorm on minibatch statistics).
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from ..common.config import cache_dir, resolve_device
from ..common.io import CorruptFileError
from ..weightspace.blocks import BlockNetworkSpec
from .block_train import init_block_weights, train_block_batched
from .data import load_dataset
from .recipes import RecipeError, ZooRecipe, get_recipe
from .storage import load_zoo, save_zoo
from .train import init_weights, train_batched
from .zoo import Zoo

__all__ = ["build_zoo", "check_indices", "load_or_build", "zoo_path"]


def build_zoo(recipe: ZooRecipe | str, device=None, progress: bool = True,
              indices: Sequence[int] | None = None) -> Zoo:
    """Train every network of ``recipe`` (quick/full by ``SCALEGMN_LITE_FULL`` for a name), or only
    the networks ``indices`` (ascending, distinct, in ``[0, num_networks)``), in zoo order."""
    recipe = get_recipe(recipe)
    dev = resolve_device(device)
    indices = check_indices(recipe, indices)
    t0 = time.perf_counter()
    if recipe.task == "inr":
        from .inr import build_inr_zoo

        zoo = build_inr_zoo(recipe, device=dev, progress=progress, indices=indices)
    else:
        data = load_dataset(recipe.dataset, device=dev)
        if recipe.train_size is not None:
            data = data.subset(n_train=recipe.train_size)
        hp = [recipe.sample(i) for i in indices]
        by_arch: dict[tuple, list[dict]] = {}  # (arch, optimizer, training-set size) -> networks
        n_all = len(data.y_train)
        for row in hp:
            by_arch.setdefault((row["arch"], recipe.optimizer_of(row), recipe.train_count(row, n_all)), []).append(row)
        specs = {s.to_text(): s for s in recipe.specs()}
        groups = []
        for (arch, opt, n_train), rows_all in by_arch.items():
            spec = specs[arch]
            part = data if n_train == n_all else data.subset(n_train=n_train)
            for s in range(0, len(rows_all), recipe.chunk_size):
                rows = rows_all[s:s + recipe.chunk_size]
                seeds = [r["seed"] for r in rows]
                scales = torch.tensor([r["init_scale"] for r in rows])
                block = isinstance(spec, BlockNetworkSpec)
                ws0 = (init_block_weights if block else init_weights)(spec, [recipe.init_seed(r) for r in rows],
                                                                      scales, device=dev)
                res = (train_block_batched if block else train_batched)(
                    ws0, part, recipe.epochs, torch.tensor([r["lr"] for r in rows]),
                    torch.tensor([r["weight_decay"] for r in rows]), recipe.batch_size,
                    checkpoint_epochs=recipe.checkpoint_epochs, progress=progress, seeds=seeds,
                    optimizer=opt, desc=f"{recipe.name} {spec.family} {opt} n={n_train} {s}:{s + len(rows)}",
                    lr_schedule=recipe.lr_schedule,
                )
                md = pd.DataFrame(rows)
                md["diverged"] = res.diverged.cpu().numpy()
                for k, v in res.metrics.items():
                    for j, e in enumerate(res.checkpoint_epochs):
                        md[f"{k}@{e}"] = v[j].double().cpu().numpy()
                    md[k] = v[-1].double().cpu().numpy()
                groups.append(([res.checkpoints[e] for e in recipe.checkpoint_epochs], md))
        zoo = Zoo.from_weight_spaces(groups, recipe.checkpoint_epochs, recipe.to_dict())
    zoo.metadata.attrs["build_seconds"] = time.perf_counter() - t0
    return zoo


def check_indices(recipe: ZooRecipe, indices: Sequence[int] | None) -> list[int]:
    """``indices`` as a list (default: every network), checked ascending, distinct and in range."""
    if indices is None:
        return list(range(recipe.num_networks))
    out = [int(i) for i in indices]
    if not out:
        raise RecipeError(f"recipe {recipe.name!r}: no networks to build (empty index list)")
    if any(b <= a for a, b in zip(out, out[1:])) or out[0] < 0 or out[-1] >= recipe.num_networks:
        raise RecipeError(f"recipe {recipe.name!r}: network indices must be ascending, distinct and in "
                          f"[0, {recipe.num_networks}); got {out[:5]}{'...' if len(out) > 5 else ''}")
    return out


def zoo_path(recipe: ZooRecipe | str, cache: str | Path | None = None) -> Path:
    """Cache folder of a recipe: ``<cache>/zoos/<name>-<recipe hash>``."""
    recipe = get_recipe(recipe)
    return Path(cache or cache_dir()) / "zoos" / f"{recipe.name}-{recipe.hash()}"


def load_or_build(recipe: ZooRecipe | str, device=None, progress: bool = True, cache: str | Path | None = None) -> Zoo:
    """The zoo of ``recipe`` from the cache, building and saving it first if needed.

    A corrupt cached zoo is reported with a warning naming the file and rebuilt.
    """
    recipe = get_recipe(recipe)
    folder = zoo_path(recipe, cache)
    with _one_builder(folder):  # a second process asking for this zoo waits, then loads it
        if (folder / "zoo.json").exists():
            try:
                return load_zoo(folder)
            except CorruptFileError as exc:
                warnings.warn(f"cached zoo is corrupt, rebuilding: {exc}", stacklevel=2)
        zoo = build_zoo(recipe, device=device, progress=progress)
        save_zoo(zoo, folder)
        return zoo


@contextmanager
def _one_builder(folder: Path):
    """An exclusive lock on ``<folder>.lock`` (POSIX ``flock``; released when the holder exits, even by a
    crash), so that processes sharing a cache (notebooks tested side by side, ``reproduce --jobs 2``)
    build each zoo once. Without ``fcntl`` (Windows) there is no lock: the builds race, and the atomic
    save keeps the cache valid either way."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
