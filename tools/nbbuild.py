"""Build the course notebooks from their percent-format sources and execute them.

    python tools/nbbuild.py                 # every notebooks/src/*.py -> notebooks/*.ipynb, executed
    python tools/nbbuild.py 01 03           # only notebooks whose name starts with 01 or 03

Source format (``notebooks/src/NN_name.py``): cells start with ``# %%`` (code) or
``# %% [markdown]`` (markdown, each line prefixed by ``# ``). Tags for nbval go on the marker line:
``# %% tags=["nbval-ignore-output"]`` (training logs, plots, timings). Notebooks are executed from
the ``notebooks/`` folder on a fresh kernel in quick mode, and saved with their outputs.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "notebooks" / "src"
OUT = ROOT / "notebooks"
MARK = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def parse(text: str) -> nbformat.NotebookNode:
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.splitlines())
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        m = MARK.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def build(src: Path, execute: bool = True, timeout: int = 1800) -> Path:
    nb = parse(src.read_text())
    dst = OUT / (src.stem + ".ipynb")
    if execute:
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(OUT)}}).execute()
        print(f"executed {dst.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    nbformat.write(nb, dst)
    return dst


def main(argv: list[str]) -> int:
    sources = sorted(SRC.glob("*.py"))
    if argv:
        sources = [s for s in sources if any(s.name.startswith(a) for a in argv)]
    if not sources:
        print("no notebook sources matched", file=sys.stderr)
        return 1
    for src in sources:
        build(src)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
