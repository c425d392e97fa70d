"""The committed notebooks carry what a reader needs: every plotting cell has its figure, every code
cell ran without error (execution count, no error output), and no progress bar ended up in the
outputs. nbval ignores images, so a rebuild with a non-inline matplotlib backend (which once dropped
every figure of notebooks 05-08) is caught here and nowhere else."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# a call that draws: matplotlib / seaborn / pandas plotting, imshow, networkx, the course's plot helpers
PLOTTING = re.compile(r"\b(plt|sns)\.\w+\(|\.plot\(|\.imshow\(|\bnx\.draw|\bdraw_\w+\(|\.(bar|scatter|hist)\(")
PROGRESS = re.compile(r"\d+(\.\d+)?\s?(it/s|s/it)|\d+%\|")


def _text(output) -> str:
    text = output.get("text", "")
    if not text and "data" in output:
        text = output["data"].get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def problems(nb: dict) -> list[str]:
    """Everything wrong with one executed notebook (``nbformat`` JSON), one line per problem."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if not src.strip():
            continue
        outputs = cell.get("outputs", [])
        if cell.get("execution_count") is None:
            found.append(f"cell {i}: never executed (no execution count)")
        for out in outputs:
            if out.get("output_type") == "error":
                found.append(f"cell {i}: error output {out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream" and out.get("name") == "stderr" and PROGRESS.search(_text(out)):
                found.append(f"cell {i}: progress bar in stderr")
        code = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith("#"))
        if PLOTTING.search(code) and not any("image/png" in out.get("data", {}) for out in outputs):
            found.append(f"cell {i}: plotting call but no image/png output")
    return found


def _code_cell(source, outputs, count=1):
    return {"cell_type": "code", "source": source, "outputs": outputs, "execution_count": count, "metadata": {}}


def test_detector_catches_each_problem():
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR", "text/plain": "<Figure>"}, "metadata": {}}
    good = {"cells": [_code_cell("ax = sns.histplot(x)\nplt.show()", [png]), _code_cell("print(1)", [])]}
    assert problems(good) == []
    bad = {"cells": [
        _code_cell("fig, ax = plt.subplots()\nax.plot(x)", []),
        _code_cell("x = 1", [], count=None),
        _code_cell("1/0", [{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "", "traceback": []}]),
        _code_cell("train()", [{"output_type": "stream", "name": "stderr",
                                "text": " 42%|####  | 85/200 [00:05, 16.93it/s]"}]),
    ]}
    assert [p.split(":")[0] for p in problems(bad)] == ["cell 0", "cell 1", "cell 2", "cell 3"]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 8


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_outputs(path):
    found = problems(json.loads(path.read_text()))
    assert not found, f"{path.name}:\n" + "\n".join(found)


# ---------------------------------------------------------------------- figures open the ideas (issue 25)
#: ``## `` sections that apply what earlier sections pictured (recaps, exercises, API tours) and need no
#: figure of their own; every other section introduces an idea and opens it with one
RECAP = re.compile(r"^## (Summary|Exercises|Your own zoo|Using an operator on your own|Round trip)\b")
#: notebooks that must hold more figures than one per section (05: the layer, its views, equivariance)
MIN_FIGURES = {"05": 4}


def _is_figure(cell) -> bool:
    return cell["cell_type"] == "code" and any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def sections_without_figure(nb: dict) -> list[str]:
    """Titles of the ``## `` sections (recaps excepted) with no figure before the next ``## `` section."""
    cells = nb["cells"]
    heads = [(i, "".join(c["source"]).lstrip().splitlines()[0]) for i, c in enumerate(cells)
             if c["cell_type"] == "markdown" and "".join(c["source"]).lstrip().startswith("## ")]
    bounds = [i for i, _ in heads[1:]] + [len(cells)]
    return [title for (start, title), end in zip(heads, bounds)
            if not RECAP.match(title) and not any(_is_figure(c) for c in cells[start:end])]


def test_section_detector():
    md = lambda s: {"cell_type": "markdown", "source": s}  # noqa: E731
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR"}}
    nb = {"cells": [md("## 1. Idea"), _code_cell("plt.show()", [png]), md("## 2. Other idea"),
                    _code_cell("x = 1", []), md("## Summary")]}
    assert sections_without_figure(nb) == ["## 2. Other idea"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_new_idea_opens_with_a_figure(path):
    nb = json.loads(path.read_text())
    missing = sections_without_figure(nb)
    assert not missing, f"{path.name}: sections with no figure: {missing}"
    n = sum(_is_figure(c) for c in nb["cells"])
    assert n >= MIN_FIGURES.get(path.name[:2], 1), f"{path.name}: {n} figures"
