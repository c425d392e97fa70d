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
