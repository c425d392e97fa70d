"""Checks shared by the zoo tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalegmn_lite.common.io import CorruptFileError
from scalegmn_lite.zoo import load_zoo


def assert_refuses_corrupt_weights(folder: Path) -> None:
    """Flip one byte of a saved zoo's weights: loading it must fail with an error naming the file."""
    w = Path(folder) / "weights.pt"
    raw = bytearray(w.read_bytes())
    raw[-5] ^= 0xFF
    w.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="weights.pt"):
        load_zoo(folder)
