"""The course's figure style: no text under 8 pt anywhere in the course's drawing code, the style applied by
every notebook's first cell, and committed figures saved at twice the screen resolution (retina)."""

import base64
import json
import re
import struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FONT = re.compile(r"\b(fontsize|labelsize|font_size|title_fontsize)\s*=\s*([0-9]+(?:\.[0-9]+)?)")
TINY_NAMED = re.compile(r"\b(fontsize|labelsize|font_size)\s*=\s*[\"'](xx-small|x-small)[\"']")
SOURCES = sorted((ROOT / "scalegmn_lite" / "course").glob("*.py")) + sorted((ROOT / "notebooks" / "src").glob("*.py"))


def tiny_fonts(text: str) -> list[str]:
    """``name=size`` literals under 8 pt, and the named sizes under 8 pt at the default 10 pt."""
    out = [f"{m.group(1)}={m.group(2)}" for m in FONT.finditer(text) if float(m.group(2)) < 8]
    return out + [m.group(0) for m in TINY_NAMED.finditer(text)]


def test_detector_catches_small_fonts_and_passes_large_ones():
    assert tiny_fonts("ax.text(0, 0, 's', fontsize=7)") == ["fontsize=7"]
    assert tiny_fonts("ax.tick_params(labelsize=6.5)") == ["labelsize=6.5"]
    assert tiny_fonts("ax.legend(fontsize='x-small')") == ["fontsize='x-small'"]
    assert tiny_fonts("ax.text(0, 0, 's', fontsize=8); ax.set_title('t', fontsize=12)") == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_text_under_8_points(path):
    assert tiny_fonts(path.read_text()) == [], f"{path.relative_to(ROOT)}: text under 8 pt"


def test_notebook_setup_applies_the_course_style():
    import matplotlib

    from scalegmn_lite.common.config import FIGURE_STYLE, notebook_setup

    matplotlib.rcParams["legend.fontsize"] = 5
    notebook_setup(seed=0)
    for key, value in FIGURE_STYLE.items():
        assert matplotlib.rcParams[key] == value, key
    assert FIGURE_STYLE["savefig.dpi"] >= 2 * FIGURE_STYLE["figure.dpi"]
    assert min(v for k, v in FIGURE_STYLE.items() if k.endswith("size")) >= 8


def png_pixels(b64: str) -> tuple[int, int]:
    raw = base64.b64decode(b64[:64])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", raw[16:24])


def retina_problems(nb: dict) -> list[str]:
    """Figures shown at their full pixel size (no ``width`` metadata of half the pixels): not retina."""
    out = []
    for i, cell in enumerate(nb.get("cells", [])):
        for o in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            png = (o.get("data") or {}).get("image/png")
            if not png:
                continue
            w, _ = png_pixels(png if isinstance(png, str) else "".join(png))
            shown = ((o.get("metadata") or {}).get("image/png") or {}).get("width")
            if shown is None or abs(2 * shown - w) > 2:
                out.append(f"cell {i}: {w} px shown at {shown}")
    return out


def test_retina_detector():
    import io

    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1), dpi=50)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    plt.close(fig)
    b64 = base64.b64encode(buf.getvalue()).decode()
    cell = {"cell_type": "code", "outputs": [{"data": {"image/png": b64}, "metadata": {}}]}
    assert retina_problems({"cells": [cell]}) == ["cell 0: 50 px shown at None"]
    cell["outputs"][0]["metadata"] = {"image/png": {"width": 25, "height": 25}}
    assert retina_problems({"cells": [cell]}) == []


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_committed_figures_are_retina(path):
    assert retina_problems(json.loads(path.read_text())) == []
