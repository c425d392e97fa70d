"""Every claim's verdict before and after a change in how claims are judged, side by side.

    .venv/bin/python tools/compare_verdicts.py --before f018134          # writes results/verdict_changes.json

Reads ``results/quick`` and ``results/reference`` as committed at ``--before`` (``git show``) and as they
are in the working tree, and writes, per run and claim: the old and new status, interval and kind, and
whether the status flipped. Notebooks 06-08 and the README (``<!-- verdict-changes:begin -->``, filled
by ``tools/reference_summary.py``) show it, so a claim that flips is reported as flipped, not hidden.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _old(rev: str, run: str, name: str) -> dict | None:
    proc = subprocess.run(["git", "show", f"{rev}:results/{run}/{name}.json"], capture_output=True, text=True, cwd=ROOT)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.common.io import atomic_write_json
    from scalegmn_lite.course.reference import result_files

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the git revision whose committed results are the 'before'")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "verdict_changes.json")
    args = ap.parse_args(argv)
    rev = subprocess.run(["git", "rev-parse", "--short=10", args.before], capture_output=True, text=True,
                         cwd=ROOT).stdout.strip()
    rows = []
    for run in ("quick", "reference"):
        for path in result_files(ROOT / "results" / run):
            new = json.loads(path.read_text())
            old = _old(args.before, run, path.stem) or {}
            before = {c["id"]: c for c in old.get("claims", [])}
            for c in new.get("claims", []):
                b = before.pop(c["id"], None)
                rows.append({"run": run, "experiment": path.stem, "id": c["id"], "kind": c.get("kind", "finding"),
                             "old_status": b["status"] if b else None, "old_ci": b.get("ci") if b else None,
                             "new_status": c["status"], "new_ci": c.get("ci"),
                             "flipped": bool(b) and b["status"] != c["status"]})
            for cid, b in before.items():  # claims that no longer exist
                rows.append({"run": run, "experiment": path.stem, "id": cid, "kind": None, "old_status": b["status"],
                             "old_ci": b.get("ci"), "new_status": None, "new_ci": None, "flipped": True})
    atomic_write_json(args.out, {"before": rev, "about": "claims before and after issue 33 (clustered intervals, "
                                                         "controls, validation selection, findings and checks apart)",
                                 "rows": rows})
    flips = [r for r in rows if r["flipped"]]
    print(f"wrote {args.out}: {len(rows)} claims, {len(flips)} flipped")
    for r in flips:
        print(f"  {r['run']:9s} {r['experiment']:10s} {r['id']:45s} {r['old_status']} -> {r['new_status']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
