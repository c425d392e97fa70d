"""Write (or check) the generated blocks of README.md and results/README.md from the committed runs.

    .venv/bin/python tools/reference_summary.py          # rewrite every block
    .venv/bin/python tools/reference_summary.py --check  # exit 1 if a block is out of date

README.md (for a newcomer) holds the run times (``<!-- run-times:begin -->``, from the runs' manifests and
``benchmarks/results/reproduce_quick.json``, the wait measured by ``benchmarks/bench_reproduce.py``:
:func:`scalegmn_lite.course.reference.run_times_markdown`) and three headline findings
(``<!-- headline:begin -->``: :func:`scalegmn_lite.course.reference.headline_markdown`); results/README.md
the rest. The claims table sits between ``<!-- reference-results:begin -->`` and ``<!-- reference-results:end -->``;
its table is :func:`scalegmn_lite.course.reference.summary_markdown` of ``results/quick`` and
``results/reference``, so neither page quotes a number by hand. The zoo table (between
``<!-- zoo-table:begin -->`` and ``<!-- zoo-table:end -->``) is
:func:`scalegmn_lite.course.reference.zoo_table_markdown` of the same runs' ``zoo.json``; the table of
shipped models (``<!-- shipped-models:begin -->``) is :func:`scalegmn_lite.course.shipped.shipped_table_markdown`;
the verdicts that changed when claims began to be judged with clustered intervals and controls
(``<!-- verdict-changes:begin -->``) come from ``results/verdict_changes.json``
(``tools/compare_verdicts.py``); the findings in plain words (``<!-- plain-words:begin -->``) are
:func:`scalegmn_lite.course.reference.plain_words_markdown` of ``results/reference``; the training
throughput table (``<!-- bench-training:begin -->``) is :func:`scalegmn_lite.course.reference.benchmark_markdown`
of the committed benchmark output ``benchmarks/results/bench_training.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- reference-results:begin -->", "<!-- reference-results:end -->"
ZOO_BEGIN, ZOO_END = "<!-- zoo-table:begin -->", "<!-- zoo-table:end -->"
SHIP_BEGIN, SHIP_END = "<!-- shipped-models:begin -->", "<!-- shipped-models:end -->"
PLAIN_BEGIN, PLAIN_END = "<!-- plain-words:begin -->", "<!-- plain-words:end -->"
BENCH_BEGIN, BENCH_END = "<!-- bench-training:begin -->", "<!-- bench-training:end -->"
BENCH_FILE = ROOT / "benchmarks" / "results" / "bench_training.json"
FLOPS_FILE = ROOT / "benchmarks" / "results" / "bench_flops.json"
CHANGES_BEGIN, CHANGES_END = "<!-- verdict-changes:begin -->", "<!-- verdict-changes:end -->"
CHANGES_FILE = ROOT / "results" / "verdict_changes.json"


def block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import summary_markdown

    return summary_markdown(ROOT / "results" / "reference", ROOT / "results" / "quick")


def zoo_block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import zoo_table_markdown

    return zoo_table_markdown(ROOT / "results" / "reference", ROOT / "results" / "quick")


def shipped_block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.shipped import shipped_table_markdown

    return shipped_table_markdown(ROOT / "results" / "reference" / "models")


def plain_block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import plain_words_markdown

    return plain_words_markdown(ROOT / "results" / "reference")


def _benchmark_block(path: Path, render: str) -> str:
    """``scalegmn_lite.course.reference.<render>`` of a committed benchmark output, or how to make one."""
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course import reference

    if not path.is_file():
        return (f"No committed benchmark output yet: run `python benchmarks/{path.stem}.py --out "
                f"benchmarks/results/{path.name}`, then this script.\n")
    return getattr(reference, render)(path)


def bench_block() -> str:
    return _benchmark_block(BENCH_FILE, "benchmark_markdown")


def flops_block() -> str:
    return _benchmark_block(FLOPS_FILE, "flops_markdown")


def changes_block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import verdict_changes_markdown

    if not CHANGES_FILE.is_file():
        return "No verdict changes recorded (`tools/compare_verdicts.py` writes them).\n"
    import json

    before = json.loads(CHANGES_FILE.read_text())["before"]
    return verdict_changes_markdown(CHANGES_FILE, "reference", before_label=f"before (`{before}`)")


def headline_block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import headline_markdown

    return headline_markdown(ROOT / "results" / "reference")


def run_times_block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import run_times_markdown

    return run_times_markdown(ROOT / "results" / "quick", ROOT / "results" / "reference",
                              ROOT / "benchmarks" / "results" / "reproduce_quick.json")


#: file -> [(block name, generator)]: the README keeps what a newcomer needs, results/README.md the rest
BLOCKS = {
    "README.md": [("run-times", run_times_block), ("headline", headline_block)],
    "results/README.md": [("reference-results", block), ("verdict-changes", changes_block),
                          ("plain-words", plain_block), ("shipped-models", shipped_block), ("zoo-table", zoo_block),
                          ("bench-training", bench_block), ("bench-flops", flops_block)],
}


def replaced(text: str, body: str, begin: str = BEGIN, end: str = END, where: str = "README.md") -> str:
    if begin not in text or end not in text:
        raise SystemExit(f"{where} has no {begin} ... {end} block to fill")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a generated block is out of date")
    args = ap.parse_args(argv)
    stale = []
    for rel, blocks in BLOCKS.items():
        path = ROOT / rel
        text = path.read_text(encoding="utf-8")
        new = text
        for name, fn in blocks:
            new = replaced(new, fn(), f"<!-- {name}:begin -->", f"<!-- {name}:end -->", rel)
        if new != text:
            stale.append(f"{rel} ({', '.join(n for n, _ in blocks)})")
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {'; '.join(stale)}: run tools/reference_summary.py")
        return 1
    print("generated blocks " + ("current" if not stale else "written: " + "; ".join(stale)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
