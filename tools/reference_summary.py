"""Write (or check) the README's block of reference results from the committed runs.

    .venv/bin/python tools/reference_summary.py          # rewrite the block in README.md
    .venv/bin/python tools/reference_summary.py --check  # exit 1 if the block is out of date

The block sits between ``<!-- reference-results:begin -->`` and ``<!-- reference-results:end -->``;
its table is :func:`scalegmn_lite.course.reference.summary_markdown` of ``results/quick`` and
``results/reference``, so the README never quotes a number by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- reference-results:begin -->", "<!-- reference-results:end -->"


def block() -> str:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.course.reference import summary_markdown

    return summary_markdown(ROOT / "results" / "reference", ROOT / "results" / "quick")


def replaced(text: str, body: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block to fill")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}{END}{tail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md's block is out of date")
    args = ap.parse_args(argv)
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = replaced(text, block())
    if args.check:
        if new != text:
            print("README.md's reference-results block is out of date: run tools/reference_summary.py")
            return 1
        return 0
    readme.write_text(new, encoding="utf-8")
    print("README.md reference-results block written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
