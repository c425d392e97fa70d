"""Recompute the claims of a committed ``reproduce`` folder from its stored figures, without retraining.

    .venv/bin/python tools/recompute_claims.py results/reference                 # every recomputable result
    .venv/bin/python tools/recompute_claims.py results/reference --only invariant

Rewrites ``<experiment>.json`` and ``REPORT.md`` atomically and appends a record to ``manifest.json``
(``"recomputed"``: tool, commit, date, experiments), then prints every claim's old and new status and
interval. See :mod:`scalegmn_lite.recompute` for what is recomputed and what is reported as
missing. A committed JSON file is never edited by hand: this tool is how a result is re-judged.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.recompute import RECOMPUTABLE, recompute_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a reproduce output folder, e.g. results/reference")
    ap.add_argument("--only", nargs="*", choices=RECOMPUTABLE, help="recompute only these experiments")
    ap.add_argument("--no-zoos", action="store_true",
                    help="never build or load a zoo (fail where a file lacks what only a zoo can give)")
    ap.add_argument("--n-boot", type=int, help="bootstrap replicates of the invariant study (default: the library's)")
    args = ap.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    changes = recompute_dir(args.folder, args.only, zoos=not args.no_zoos, commit=commit, n_boot=args.n_boot)

    def ci(v):
        return "exact" if not v else f"[{float(v[0]):+.4g}, {float(v[1]):+.4g}]"

    for name, rows in changes.items():
        for r in rows:
            flip = "" if r["old_status"] == r["new_status"] else "   <- status changed"
            print(f"{name:10s} {r['id']:45s} {r['kind'] or '':8s} {str(r['old_status']):12s} {ci(r['old_ci']):26s} "
                  f"-> {r['new_status']:12s} {ci(r['new_ci'])}{flip}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
