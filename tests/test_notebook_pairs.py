"""The committed notebooks are in sync with their jupytext sources (cell types, sources, tags).

Outputs are not compared (nbval re-executes the notebooks for that). ``tools/build_notebooks.py``
rebuilds a pair; ``python tools/build_notebooks.py --check`` runs the same comparison.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted((NOTEBOOKS / "src").glob("*.py"))


def _tool():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


build = _tool()


def test_every_source_has_a_notebook_and_back():
    assert len(SOURCES) == 9
    assert {s.stem for s in SOURCES} == {p.stem for p in NOTEBOOKS.glob("*.ipynb")}


def test_jupytext_config_pairs_the_folders():
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    path = find_jupytext_configuration_file(str(NOTEBOOKS))
    assert path is not None and Path(path).parent == NOTEBOOKS
    from jupytext.paired_paths import paired_paths

    cfg = load_jupytext_configuration_file(path)
    for src in SOURCES:
        ipynb = NOTEBOOKS / (src.stem + ".ipynb")
        for path in (ipynb, src):  # each side of a pair finds the other
            formats = cfg.default_formats(str(path))
            pairs = {Path(p): fmt["extension"] for p, fmt in paired_paths(str(path), path.suffix[1:], formats)}
            assert pairs == {ipynb: ".ipynb", src: ".py"}


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem[:2])
def test_pair_in_sync(src):
    diffs = build.pair_differences(src, NOTEBOOKS / (src.stem + ".ipynb"))
    assert not diffs, f"{src.name} and its notebook differ ({'; '.join(diffs)}): " \
                      f"run python tools/build_notebooks.py {src.stem[:2]}"


@pytest.mark.parametrize("change", ["source", "tags", "type", "extra cell"])
def test_out_of_sync_pair_is_detected(tmp_path, change):
    src = NOTEBOOKS / "src" / "01_gauge_symmetries.py"
    nb = nbformat.read(NOTEBOOKS / "01_gauge_symmetries.ipynb", as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    if change == "source":
        code.source += "\nx = 1"
    elif change == "tags":
        code.metadata["tags"] = ["nbval-ignore-output"]
    elif change == "type":
        nb.cells[0].cell_type = "raw"
    else:
        nb.cells.append(nbformat.v4.new_markdown_cell("one more"))
    dst = tmp_path / "01_gauge_symmetries.ipynb"
    nbformat.write(nb, dst)
    assert build.pair_differences(src, dst)
    assert build.pair_differences(src, tmp_path / "absent.ipynb")


def test_jupytext_round_trip_keeps_the_source():
    """Writing a source back through jupytext reproduces it (so Jupyter edits keep the .py readable)."""
    for src in SOURCES:
        text = src.read_text()
        again = jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="py:percent")
        assert again.strip() == text.strip(), src.name


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem[:2])
def test_every_plot_cell_has_its_figure(src):
    """A rebuild with a non-inline backend once dropped every figure and nbval did not notice."""
    nb = nbformat.read(NOTEBOOKS / (src.stem + ".ipynb"), as_version=4)
    missing = build.figureless_plot_cells(nb)
    assert not missing, f"{src.stem}: cells {missing} call plt.show() but hold no figure; " \
                        f"rebuild with python tools/build_notebooks.py {src.stem[:2]}"
