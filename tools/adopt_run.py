"""Adopt experiments rerun in another checkout (a git worktree at a committed revision) into a committed
``reproduce`` folder, with their manifest, never by editing JSON by hand.

    .venv/bin/python tools/adopt_run.py /tmp/wt/results/reference results/reference --only merging gauge distributed

A long reference rerun is best made from a clean worktree of a commit (so its manifest names that commit
and no uncommitted file), while work goes on in the main checkout: ``reproduce --reference --resume --only X
--out <worktree>/results/reference``. This tool then copies ``X.json`` (claims validated), takes the
rerun's ``manifest.json`` for the adopted parts (which commit produced each) and the destination's
records for every other part, keeps the destination's ``"recomputed"`` records (``tools/recompute_claims.py``),
adds an ``"adopted"`` record, and rewrites ``REPORT.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    from scalegmn_lite.cli import write_report
    from scalegmn_lite.common.claims import validate_claim
    from scalegmn_lite.common.io import atomic_write_json, result_files

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="the rerun's output folder")
    ap.add_argument("dst", type=Path, help="the committed folder, e.g. results/reference")
    ap.add_argument("--only", nargs="+", required=True, help="the experiments the rerun produced")
    args = ap.parse_args(argv)
    src_man = json.loads((args.src / "manifest.json").read_text())
    dst_man = json.loads((args.dst / "manifest.json").read_text())
    if src_man.get("mode") != dst_man.get("mode"):
        raise SystemExit(f"adopt_run: mode {src_man.get('mode')!r} of {args.src} is not {dst_man.get('mode')!r}")
    for name in args.only:
        part = (src_man.get("per_experiment") or {}).get(name)
        # a part run by an earlier invocation in the same checkout at the same commit (then reused by a
        # later --resume there) is as fresh as the rerun itself; one reused from another commit is not
        same_commit = (part or {}).get("reused") and (part.get("source") or {}).get("commit") == src_man.get("commit")
        if part is None or (part.get("reused") and not same_commit):
            raise SystemExit(f"adopt_run: {args.src}/manifest.json does not record a fresh run of {name!r} "
                             f"(at the rerun's commit {str(src_man.get('commit'))[:10]})")
        data = json.loads((args.src / f"{name}.json").read_text())
        for c in data.get("claims", []):
            validate_claim(c, f"{args.src}/{name}.json claim {c.get('id')}")
        atomic_write_json(args.dst / f"{name}.json", data)
    man = dict(src_man)
    # the parts not adopted keep the destination's records (the rerun's folder may hold other versions of
    # them: adopting a second rerun must not misstate where the first one's parts came from)
    per = dict(dst_man.get("per_experiment") or {})
    per.update({n: src_man["per_experiment"][n] for n in args.only})
    man["per_experiment"] = per
    failed = {k: v for k, v in (dst_man.get("failed") or {}).items() if k not in args.only}
    failed.update({k: v for k, v in (src_man.get("failed") or {}).items() if k in args.only})
    man["failed"] = failed
    man["experiment_seconds_total"] = round(sum(float(v.get("seconds") or 0.0) for v in per.values()), 1)
    # zoo builds of the destination's runs stay counted (a rerun that found its zoos cached built none)
    builds = {**(dst_man.get("zoo_builds") or {}), **(src_man.get("zoo_builds") or {})}
    if builds:
        man["zoo_builds"] = builds
        man["zoo_build_seconds_total"] = round(sum(float(v) for v in builds.values()), 1)
    if dst_man.get("recomputed"):
        man["recomputed"] = dst_man["recomputed"]
    man["adopted"] = list(dst_man.get("adopted") or []) + [
        {"experiments": list(args.only), "from_commit": src_man.get("commit"), "tool": "tools/adopt_run.py",
         "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]
    atomic_write_json(args.dst / "manifest.json", man)
    write_report(args.dst, {p.stem: json.loads(p.read_text()) for p in result_files(args.dst)})
    print(f"adopted {', '.join(args.only)} from {args.src} (commit {str(src_man.get('commit'))[:10]}) into {args.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
