"""Sync the course notebooks with their jupytext sources and re-execute them.

    python tools/build_notebooks.py                # every notebooks/src/*.py -> notebooks/*.ipynb, executed
    python tools/build_notebooks.py 01 08          # only notebooks whose name starts with 01 or 08
    python tools/build_notebooks.py --no-execute   # sync cells only; unchanged cells keep their outputs
    python tools/build_notebooks.py --check        # exit 1 if a pair is out of sync (no writing)

Each ``notebooks/NN_name.ipynb`` is paired with ``notebooks/src/NN_name.py`` by jupytext
(``notebooks/jupytext.toml``: percent format, ``# %%`` code cells, ``# %% [markdown]`` markdown cells,
``# %% tags=["nbval-ignore-output"]`` for tags). The ``.py`` file is the source of truth: edit it (or edit
the notebook in Jupyter with jupytext installed, which saves both), then run this script. Notebooks are
executed on a fresh ``python3`` kernel from the ``notebooks/`` folder in quick mode with the *inline*
matplotlib backend (a ``MPLBACKEND=Agg`` inherited from the shell once dropped every figure silently),
and a notebook whose ``plt.show()`` cells come back without a figure is not written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import combine_inputs_with_outputs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SRC = NOTEBOOKS / "src"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def cell_key(cell) -> tuple[str, str, tuple[str, ...]]:
    """What pairing compares: the cell's type, its source and its tags (not outputs or ids)."""
    return cell.cell_type, cell.source.strip("\n"), tuple(cell.metadata.get("tags", []))


def pair_differences(src: Path, ipynb: Path) -> list[str]:
    """Human-readable differences between a jupytext source and its notebook (empty when in sync)."""
    if not ipynb.exists():
        return [f"{ipynb.name} is missing: run python tools/build_notebooks.py {src.stem[:2]}"]
    a = [cell_key(c) for c in jupytext.read(src, fmt="py:percent").cells]
    b = [cell_key(c) for c in nbformat.read(ipynb, as_version=4).cells]
    out = []
    if len(a) != len(b):
        out.append(f"{src.name} has {len(a)} cells, {ipynb.name} has {len(b)}")
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            if x[0] != y[0] or x[2] != y[2]:
                what = f"type {x[0]} vs {y[0]}" if x[0] != y[0] else f"tags {list(x[2])} vs {list(y[2])}"
            else:
                lx, ly = x[1].splitlines(), y[1].splitlines()
                j = next((k for k, (u, v) in enumerate(zip(lx, ly)) if u != v), min(len(lx), len(ly)))
                what = (f"source at line {j + 1} ({len(lx)} vs {len(ly)} lines): "
                        f"{(lx[j:j + 1] or [''])[0][:70]!r} vs {(ly[j:j + 1] or [''])[0][:70]!r}")
            out.append(f"first differing cell {i}: {what}")
            break
    return out


def figureless_plot_cells(nb) -> list[int]:
    """Indices of code cells that call ``plt.show()`` but carry no image output."""
    return [i for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and "plt.show()" in c.source
            and not any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]


def synced(src: Path) -> nbformat.NotebookNode:
    """The notebook of ``src``, keeping the outputs and cell ids of unchanged cells of the old ``.ipynb``."""
    nb = jupytext.read(src, fmt="py:percent")
    dst = NOTEBOOKS / (src.stem + ".ipynb")
    meta = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    if dst.exists():
        old = nbformat.read(dst, as_version=4)
        meta = {k: v for k, v in old.metadata.items() if k not in ("jupytext", "widgets")} or meta
        nb = combine_inputs_with_outputs(nb, old, fmt="py:percent")
    nb.metadata = nbformat.from_dict(meta)
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int) -> None:
    from nbclient import NotebookClient

    os.environ["MPLBACKEND"] = INLINE_BACKEND  # the kernel inherits this process's environment
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # Widgets draw their default state as a static figure here (course.widgets.STATIC_ENV): nbclient can block
    # forever on an ipywidgets `interactive` cell (jupyter/nbclient#312: the kernel finishes, the client never
    # returns; seen on notebooks 01 and 08). A live kernel (Jupyter, nbval in CI) shows the real widget.
    os.environ["SCALEGMN_LITE_STATIC_WIDGETS"] = "1"
    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    nb.metadata.pop("widgets", None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefixes", nargs="*", help="notebook name prefixes, e.g. 01 08 (default: all)")
    ap.add_argument("--no-execute", action="store_true", help="sync the cells without executing")
    ap.add_argument("--check", action="store_true", help="only report pairs that are out of sync")
    ap.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    args = ap.parse_args(argv)
    sources = sorted(SRC.glob("*.py"))
    if args.prefixes:
        sources = [s for s in sources if any(s.name.startswith(p) for p in args.prefixes)]
    if not sources:
        print("no notebook sources matched", args.prefixes, "in", SRC, file=sys.stderr)
        return 1
    if args.check:
        bad = {s.name: d for s in sources if (d := pair_differences(s, NOTEBOOKS / (s.stem + ".ipynb")))}
        for name, diffs in bad.items():
            print(f"{name}: " + "; ".join(diffs))
        return 1 if bad else 0
    for src in sources:
        dst = NOTEBOOKS / (src.stem + ".ipynb")
        nb = synced(src)
        if not args.no_execute:
            t0 = time.perf_counter()
            execute(nb, args.timeout)
            missing = figureless_plot_cells(nb)
            if missing:
                print(f"{dst.name}: cells {missing} call plt.show() but produced no figure; not written",
                      file=sys.stderr)
                return 1
            print(f"executed {dst.name} in {time.perf_counter() - t0:.0f} s", flush=True)
        nbformat.write(nb, dst)
        print(f"wrote {dst.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
