"""Saving and loading zoos: tensors plus JSON metadata with the recipe and content hashes.

A zoo folder holds
    ``weights.pt`` (+ ``weights.pt.json``): one flat tensor per spec group, SHA-256 verified
    (:func:`scalegmn_lite.common.io.save_tensors`);
    ``metadata.json``: the per-network table;
    ``zoo.json``: the manifest (format, recipe, specs, checkpoints, hashes), written last;
    ``build.json`` (optional): how many seconds the build took (a timing, so not in the manifest).
Architectures are stored as :meth:`NetworkSpec.to_text` (exact for every structure the spec accepts:
per-layer activations, kernels, strides, paddings, LeNet-style Flatten) plus the input shapes; block networks
(residual blocks, norms) as :meth:`BlockNetworkSpec.to_text` (read back with
:func:`~scalegmn_lite.weightspace.blocks.parse_network`), and a zoo with block groups lists them in the manifest's
``block_groups`` (so that a block network without blocks or norms, whose text is a chain's, loads as a block
network too; chain zoos have no such key and keep their files byte for byte).
Every file is written atomically (temp file + rename); a folder without ``zoo.json`` is incomplete.
Loading verifies every hash and raises :class:`~scalegmn_lite.common.io.CorruptFileError` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..common.io import CorruptFileError, atomic_write_bytes, atomic_write_json, load_tensors, save_tensors, sha256
from ..weightspace.blocks import BlockNetworkSpec, parse_network
from ..weightspace.spec import NetworkSpec, SpecError
from .zoo import Zoo

__all__ = ["save_zoo", "load_zoo", "STORAGE_FORMAT"]

STORAGE_FORMAT = "scalegmn-lite-zoo/1"


def save_zoo(zoo: Zoo, folder: str | Path) -> Path:
    """Write ``zoo`` to ``folder`` (created if needed); returns the manifest path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    w_hash = save_tensors(folder / "weights.pt", {f"group{g}": t for g, t in enumerate(zoo.flat)},
                          meta={"specs": [s.to_text() for s in zoo.specs]})
    table = zoo.metadata.to_dict(orient="split", index=False)  # Python floats: exact JSON round trip
    table["dtypes"] = [str(t) for t in zoo.metadata.dtypes]
    md_bytes = (json.dumps(table, default=_plain) + "\n").encode()
    atomic_write_bytes(folder / "metadata.json", md_bytes)
    manifest = {
        "format": STORAGE_FORMAT,
        "recipe": zoo.recipe,
        "specs": [s.to_text() for s in zoo.specs],
        "input_shapes": [list(s.input_shape) if s.input_shape else None for s in zoo.specs],
        "checkpoints": list(zoo.checkpoints),
        "num_networks": len(zoo),
        "weights_sha256": w_hash,
        "metadata_sha256": sha256(md_bytes),
    }
    block_groups = [g for g, s in enumerate(zoo.specs) if isinstance(s, BlockNetworkSpec)]
    if block_groups:  # only then: chain zoos keep their manifest unchanged
        manifest["block_groups"] = block_groups
    if "build_seconds" in zoo.metadata.attrs:  # how long the build took: informational, kept out of the manifest
        seconds = round(float(zoo.metadata.attrs["build_seconds"]), 3)
        atomic_write_json(folder / "build.json", {"build_seconds": seconds})
    atomic_write_json(folder / "zoo.json", manifest)
    return folder / "zoo.json"


def load_zoo(folder: str | Path) -> Zoo:
    """Load and verify a zoo written by :func:`save_zoo`."""
    folder = Path(folder)
    man_path = folder / "zoo.json"
    if folder.is_file():
        raise CorruptFileError(
            f"{folder}: a file, but a saved zoo is a folder (zoo.json, metadata.json, weights.pt) written by "
            "save_zoo(zoo, folder). For weights saved with plain torch.save, load them yourself and build the zoo "
            "(WeightSpace.unflatten / Zoo.from_weight_spaces), then save_zoo it; public zoo formats have loaders "
            "in scalegmn_lite.zoo.loaders")
    if not man_path.exists():
        raise CorruptFileError(f"{man_path}: missing (the zoo at {folder} is incomplete); rebuild it")
    try:
        man = json.loads(man_path.read_text())
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{man_path}: not valid JSON ({exc}); delete the folder and rebuild") from exc
    if man.get("format") != STORAGE_FORMAT:
        raise CorruptFileError(f"{man_path}: format {man.get('format')!r}, expected {STORAGE_FORMAT!r}")
    md_path = folder / "metadata.json"
    if not md_path.exists():
        raise CorruptFileError(f"{md_path}: missing; delete the folder and rebuild")
    md_bytes = md_path.read_bytes()
    if sha256(md_bytes) != man["metadata_sha256"]:
        raise CorruptFileError(f"{md_path}: content does not match its recorded hash (truncated or altered); "
                               "delete the folder and rebuild")
    tensors, _ = load_tensors(folder / "weights.pt")
    side = json.loads((folder / "weights.pt.json").read_text())
    if side.get("sha256") != man["weights_sha256"]:
        raise CorruptFileError(f"{folder / 'weights.pt'}: hash differs from the one in {man_path}; "
                               "the files come from different builds, rebuild the zoo")
    specs = []
    block_groups = set(man.get("block_groups", ()))
    for g, (text, shape) in enumerate(zip(man["specs"], man.get("input_shapes", [None] * len(man["specs"])))):
        spec = _parse_spec(text, man_path, block=g in block_groups)
        if shape and tuple(shape) != spec.input_shape:  # files from before MLP texts carried a shape
            spec = (BlockNetworkSpec(spec.blocks, tuple(shape)) if isinstance(spec, BlockNetworkSpec)
                    else NetworkSpec(spec.layers, tuple(shape)))
        specs.append(spec)
    try:
        table = json.loads(md_bytes)
        md = pd.DataFrame(table["data"], columns=table["columns"])
        md = md.astype(dict(zip(table["columns"], table["dtypes"])))
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptFileError(f"{md_path}: cannot be parsed ({exc})") from exc
    flats = tuple(tensors[f"group{g}"] for g in range(len(specs)))
    build = folder / "build.json"  # optional, not part of the verified content (a timing)
    if build.exists():
        try:
            md.attrs["build_seconds"] = float(json.loads(build.read_text())["build_seconds"])
        except (ValueError, KeyError, TypeError):
            pass
    elif "build_seconds" in man:  # zoos saved before build.json existed kept it in the manifest
        md.attrs["build_seconds"] = float(man["build_seconds"])
    return Zoo(tuple(specs), flats, tuple(man["checkpoints"]), md, man.get("recipe"))


def _parse_spec(text: str, where: Path, block: bool = False) -> NetworkSpec | BlockNetworkSpec:
    """The spec of a stored architecture text: :func:`parse_network` (a chain's text gives a ``NetworkSpec``, block
    syntax a ``BlockNetworkSpec``); ``block=True`` (a group listed in ``block_groups``) always gives a
    ``BlockNetworkSpec``. Raises :class:`CorruptFileError` naming the manifest for an unreadable text."""
    try:
        return BlockNetworkSpec.from_text(text) if block else parse_network(text)
    except SpecError as exc:
        raise CorruptFileError(f"{where}: cannot read the architecture {text!r} ({exc})") from exc


def _plain(o):
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"cannot serialise {type(o).__name__} in zoo metadata")
