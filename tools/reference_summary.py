"""Write (or check) the README's block of reference results from the committed runs.

    .venv/bin/python tools/reference_summary.py          # rewrite the block in README.md
    .venv/bin/python tools/reference_summary.py --check  # exit 1 if the block is out of date

The block sits between ``<!-- reference-results:begin -->`` and ``<!-- reference-results:end -->``;
its table is :func:`scalegmn_lite.course.reference.summary_markdown` of ``results/quick`` and
``results/reference``, so the README never quotes a number by hand. The zoo table (between
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


def bench_block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import benchmark_markdown

    if not BENCH_FILE.is_file():
        return ("No committed benchmark output yet: run `python benchmarks/bench_training.py --out "
                "benchmarks/results/bench_training.json`, then this script.\n")
    return benchmark_markdown(BENCH_FILE)


def changes_block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import verdict_changes_markdown

    if not CHANGES_FILE.is_file():
        return "No verdict changes recorded (`tools/compare_verdicts.py` writes them).\n"
    return verdict_changes_markdown(CHANGES_FILE, "reference")


def replaced(text: str, body: str, begin: str = BEGIN, end: str = END) -> str:
    if begin not in text or end not in text:
        raise SystemExit(f"README.md has no {begin} ... {end} block to fill")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md's block is out of date")
    args = ap.parse_args(argv)
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = replaced(replaced(text, block()), zoo_block(), ZOO_BEGIN, ZOO_END)
    new = replaced(new, shipped_block(), SHIP_BEGIN, SHIP_END)
    new = replaced(new, plain_block(), PLAIN_BEGIN, PLAIN_END)
    new = replaced(new, bench_block(), BENCH_BEGIN, BENCH_END)
    new = replaced(new, changes_block(), CHANGES_BEGIN, CHANGES_END)
    if args.check:
        if new != text:
            print("README.md's reference-results, zoo-table, shipped-models, plain-words or bench-training block is "
                  "out of date: run "
                  "tools/reference_summary.py")
            return 1
        return 0
    readme.write_text(new, encoding="utf-8")
    print("README.md reference-results, zoo-table and shipped-models blocks written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
