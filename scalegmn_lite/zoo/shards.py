"""Sharded zoo builds: shard ``K`` of ``N`` trains networks ``K, K + N, K + 2N, ...`` of a recipe, on any
machine, as a separate process; :func:`merge_shards` joins the ``N`` shards into the zoo that the
unsharded :func:`~scalegmn_lite.zoo.build.build_zoo` gives, bit for bit (same ``weights.pt`` and
``metadata.json`` hashes), on the same software and hardware.

Why it is exact: network ``i`` draws its hyperparameters, initial weights and data order from
``(recipe.seed, i)`` alone, trains with per-network gradients and per-network optimizer state, and is
evaluated in chunks that do not depend on its neighbours, so which networks share a batched training
run does not change its numbers. (Different BLAS builds or devices may round differently: build all
shards of one zoo with the same torch version on the same kind of device.)

A shard folder is a zoo folder (:func:`~scalegmn_lite.zoo.storage.save_zoo`, atomic and hashed) plus
``shard.json`` (written last): the shard index ``K``, the count ``N``, the recipe hash, the network
indices and the SHA-256 of the shard's ``zoo.json``. Merging checks all of it and names the fix for a
missing, duplicated, corrupt or foreign shard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ..common.io import CorruptFileError, atomic_write_json, sha256
from .build import build_zoo
from .recipes import RECIPES, ZooRecipe, get_recipe
from .storage import load_zoo, save_zoo
from .zoo import Zoo, unflatten_weights

__all__ = ["ShardError", "SHARD_FORMAT", "parse_shard", "shard_indices", "build_shard", "save_shard",
           "load_shard", "merge_shards"]

SHARD_FORMAT = "scalegmn-lite-zoo-shard/1"


class ShardError(ValueError):
    """Shards that cannot be built or merged as given (the message names the fix)."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``0 <= K < N``."""
    try:
        k, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ShardError(f"--shard must look like K/N (e.g. 0/4 for the first of 4 shards), got {text!r}") from None
    if n < 1 or not 0 <= k < n:
        raise ShardError(f"--shard {text}: need 0 <= K < N (shards are numbered 0 .. N-1)")
    return k, n


def shard_indices(recipe: ZooRecipe, k: int, n: int) -> list[int]:
    """The networks of shard ``k`` of ``n``: ``k, k + n, ...`` below ``recipe.num_networks``."""
    if n < 1 or not 0 <= k < n:
        raise ShardError(f"shard {k}/{n}: need 0 <= K < N")
    if n > recipe.num_networks:
        raise ShardError(f"recipe {recipe.name!r} has {recipe.num_networks} networks, fewer than {n} shards; "
                         f"use at most {recipe.num_networks} shards")
    return list(range(k, recipe.num_networks, n))


def _rebuild_hint(recipe: dict, k: int, n: int, folder) -> str:
    name = recipe.get("name")
    if name in RECIPES:
        for full, r in zip((False, True), RECIPES[name]):
            if r.to_dict() == recipe:
                flag = " --full" if full else ""
                return f"scalegmn-lite zoo --recipe {name}{flag} --shard {k}/{n} --out {folder}"
    return f"save_shard(build_shard(recipe, {k}, {n}), {str(folder)!r}, recipe, {k}, {n})"


def build_shard(recipe: ZooRecipe | str, k: int, n: int, device=None, progress: bool = True) -> Zoo:
    """Train shard ``k`` of ``n`` of ``recipe`` (see the module docstring)."""
    recipe = get_recipe(recipe)
    return build_zoo(recipe, device=device, progress=progress, indices=shard_indices(recipe, k, n))


def save_shard(zoo: Zoo, folder: str | Path, recipe: ZooRecipe | str, k: int, n: int) -> Path:
    """Write shard ``k`` of ``n`` to ``folder``: the zoo (atomic, hashed), then ``shard.json``."""
    recipe, folder = get_recipe(recipe), Path(folder)
    want = shard_indices(recipe, k, n)
    got = [int(i) for i in zoo.metadata["net"]]
    if got != want:
        raise ShardError(f"this zoo holds networks {got[:4]}..., not those of shard {k}/{n} of {recipe.name!r}")
    if (folder / "shard.json").exists():
        (folder / "shard.json").unlink()  # a half-rewritten folder must not pass as the old shard
    man = save_zoo(zoo, folder)
    atomic_write_json(folder / "shard.json", {
        "format": SHARD_FORMAT, "shard": k, "num_shards": n, "recipe_name": recipe.name,
        "recipe_hash": recipe.hash(), "networks": want, "zoo_json_sha256": sha256(man.read_bytes())})
    return folder / "shard.json"


def load_shard(folder: str | Path) -> tuple[Zoo, dict]:
    """Load and verify one shard; raises :class:`ShardError` naming the fix."""
    folder = Path(folder)
    path = folder / "shard.json"
    if not folder.is_dir():
        raise ShardError(f"{folder}: no such folder; pass the --out folders of `scalegmn-lite zoo --shard K/N`")
    if not path.exists():
        raise ShardError(f"{folder}: not a finished zoo shard (no shard.json: its build did not finish or it is "
                         "not a shard); rebuild it with `scalegmn-lite zoo --recipe NAME --shard K/N --out "
                         f"{folder}`")
    try:
        info = json.loads(path.read_text())
        if info.get("format") != SHARD_FORMAT:
            raise ValueError(f"format {info.get('format')!r}, expected {SHARD_FORMAT!r}")
        k, n = int(info["shard"]), int(info["num_shards"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ShardError(f"{path}: unreadable shard manifest ({exc}); rebuild the shard into a fresh folder") from exc
    try:
        man = folder / "zoo.json"
        if not man.exists() or sha256(man.read_bytes()) != info.get("zoo_json_sha256"):
            raise CorruptFileError(f"{man}: missing or not the zoo this shard manifest was written for")
        zoo = load_zoo(folder)
        if [int(i) for i in zoo.metadata["net"]] != info["networks"]:
            raise CorruptFileError(f"{folder / 'metadata.json'}: network indices differ from {path}")
    except CorruptFileError as exc:
        hint = _rebuild_hint(_recipe_of(folder), k, n, folder)
        raise ShardError(f"shard {k}/{n} at {folder} is corrupt: {exc}. Rebuild it: {hint}") from exc
    return zoo, info


def _recipe_of(folder: Path) -> dict:
    try:
        return json.loads((folder / "zoo.json").read_text()).get("recipe") or {}
    except (OSError, ValueError):
        return {}


def merge_shards(folders: Sequence[str | Path], out: str | Path | None = None) -> Zoo:
    """Join shards ``0 .. N-1`` (any order) into the whole zoo; with ``out``, save it there.

    Raises :class:`ShardError` for a missing, duplicated, corrupt or foreign shard, naming it and the
    command that (re)builds it.
    """
    if not folders:
        raise ShardError("zoo merge needs the shard folders: scalegmn-lite zoo merge DIR0 DIR1 ... --out DIR")
    loaded = [(Path(f), *load_shard(f)) for f in folders]
    first = loaded[0][2]
    seen: dict[int, Path] = {}
    for folder, _, info in loaded:
        if info["recipe_hash"] != first["recipe_hash"]:
            raise ShardError(f"{folder} is a shard of recipe {info['recipe_name']!r} ({info['recipe_hash']}), "
                             f"{loaded[0][0]} of {first['recipe_name']!r} ({first['recipe_hash']}); "
                             "merge shards of one recipe only")
        if info["num_shards"] != first["num_shards"]:
            raise ShardError(f"{folder} is one of {info['num_shards']} shards, {loaded[0][0]} one of "
                             f"{first['num_shards']}; rebuild all shards with the same N")
        if info["shard"] in seen:
            raise ShardError(f"shard {info['shard']}/{info['num_shards']} given twice ({seen[info['shard']]} and "
                             f"{folder}); pass each shard once")
        seen[info["shard"]] = folder
    n = first["num_shards"]
    missing = sorted(set(range(n)) - set(seen))
    if missing:
        hint = _rebuild_hint(loaded[0][1].recipe or {}, missing[0], n, "DIR")
        raise ShardError(f"missing shard(s) {', '.join(f'{k}/{n}' for k in missing)} of recipe "
                         f"{first['recipe_name']!r}; build each (e.g. {hint}) and pass all {n} folders to merge")
    zoo = _canonical(Zoo.concat([z for _, z, _ in loaded]))
    if out is not None:
        save_zoo(zoo, out)
    return zoo


def _canonical(zoo: Zoo) -> Zoo:
    """Networks in index order, spec groups numbered by first appearance: the layout of ``build_zoo``."""
    md = zoo.metadata.sort_values("net", kind="stable")
    first: list[int] = []
    for g in md["group"].tolist():
        if g not in first:
            first.append(g)
    groups = []
    for g in first:
        rows = zoo.metadata[zoo.metadata["group"] == g].drop(columns=["group", "row"])
        groups.append(([unflatten_weights(zoo.specs[g], t) for t in zoo.flat[g]], rows))
    return Zoo.from_weight_spaces(groups, zoo.checkpoints, zoo.recipe, order="net")
