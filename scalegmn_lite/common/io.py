"""Atomic, verified storage: every file is written to a temporary name and renamed, and tensor
files carry a SHA-256 of their content in a JSON sidecar that is checked on load."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CorruptFileError", "atomic_write_bytes", "atomic_write_json", "save_tensors", "load_tensors", "sha256",
           "result_files"]


class CorruptFileError(RuntimeError):
    """A stored file is missing, truncated or altered (its hash does not match)."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def _json_default(o):
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"cannot serialise {type(o).__name__}")


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict | None = None) -> str:
    """Save ``tensors`` to ``path`` (torch format) and ``path + '.json'`` with ``meta`` and the
    content hash; both written atomically, the tensor file first. Returns the hash."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, buf)
    data = buf.getvalue()
    digest = sha256(data)
    atomic_write_bytes(path, data)
    atomic_write_json(Path(str(path) + ".json"), {"meta": meta or {}, "sha256": digest, "bytes": len(data),
                                                  "keys": sorted(tensors)})
    return digest


def load_tensors(path: str | Path, map_location="cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Load and verify a file written by :func:`save_tensors`; raise :class:`CorruptFileError`
    naming the file if it is missing, truncated or altered."""
    path = Path(path)
    side = Path(str(path) + ".json")
    if not path.exists() or not side.exists():
        raise CorruptFileError(f"{path}: missing {'tensor file' if not path.exists() else 'metadata ' + side.name}")
    try:
        info = json.loads(side.read_text())
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{side}: metadata is not valid JSON ({exc}); delete it and regenerate") from exc
    data = path.read_bytes()
    if len(data) != info.get("bytes") or sha256(data) != info.get("sha256"):
        raise CorruptFileError(
            f"{path}: content does not match its recorded hash (truncated or altered: {len(data)} bytes, "
            f"expected {info.get('bytes')}); delete it and regenerate"
        )
    tensors = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    return tensors, info.get("meta", {})


def result_files(d: str | Path) -> list[Path]:
    """The result files ``<experiment>.json`` of a ``reproduce`` folder: not its ``manifest.json``, not
    the ``*.pt.json`` sidecars of the models it saved."""
    return sorted(p for p in Path(d).glob("*.json") if p.name != "manifest.json" and not p.name.endswith(".pt.json"))
