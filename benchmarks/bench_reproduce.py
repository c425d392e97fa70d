"""The time a newcomer waits for the README's main job: ``scalegmn-lite reproduce --quick --jobs 2`` on an
empty cache (no zoo, operator or SGD result cached), in a fresh process, measured wall to wall (issue 34:
at most 20 minutes on 2 cores).

    python benchmarks/bench_reproduce.py --out benchmarks/results/reproduce_quick.json
    python benchmarks/bench_reproduce.py --keep /tmp/quick-run      # keep the run's results (then adopt them
                                                                    # with tools/adopt_run.py)

The cache is a new temporary folder (``SCALEGMN_LITE_CACHE``), deleted afterwards; the results go to
``--keep`` or a temporary folder. ``--out`` writes the measurement (wall seconds, each experiment's own
seconds, the commit and whether the checkout was clean, the CPU and its core count, the load average at the
start) atomically as JSON; ``tools/reference_summary.py`` puts it in the README. The run must finish every
experiment: a failed one makes this script fail (a partial run says nothing about the wait).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_MINUTES = 20.0


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def measure(jobs: int, keep: Path | None, mode: str = "quick") -> dict:
    """Run ``reproduce --<mode> --jobs <jobs>`` on an empty cache; return the measurement."""
    cache = Path(tempfile.mkdtemp(prefix="scalegmn-lite-empty-cache-"))
    out = keep or Path(tempfile.mkdtemp(prefix="scalegmn-lite-reproduce-"))
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"bench_reproduce: {out} is not empty; pass a new folder to --keep")
    env = dict(os.environ, SCALEGMN_LITE_CACHE=str(cache), PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "scalegmn_lite.cli", "reproduce", f"--{mode}", "--jobs", str(jobs),
           "--out", str(out)]
    load = os.getloadavg()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench_reproduce: `{' '.join(cmd)}` failed with exit code {proc.returncode}:\n"
                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    if manifest.get("failed"):
        raise SystemExit(f"bench_reproduce: experiments failed: {sorted(manifest['failed'])}")
    per = {k: round(float(v.get("seconds") or 0.0), 1) for k, v in (manifest.get("per_experiment") or {}).items()}
    zoos = {k: round(float(v), 1) for k, v in (manifest.get("zoo_builds") or {}).items()}
    if keep is None:
        shutil.rmtree(out, ignore_errors=True)
    return {"command": f"scalegmn-lite reproduce --{mode} --jobs {jobs}", "cache": "empty (a new folder)",
            "wall_seconds": round(wall, 1), "target_minutes": TARGET_MINUTES,
            "experiment_seconds": per, "experiment_seconds_total": round(sum(per.values()), 1),
            # zoos built ahead of the experiments, as tasks of their own (not in any experiment's seconds)
            "zoo_build_seconds": zoos, "process_seconds_total": round(sum(per.values()) + sum(zoos.values()), 1),
            "commit": _git("rev-parse", "HEAD"),
            "clean_checkout": _git("status", "--porcelain", "--untracked-files=no") == "",
            "cpu": manifest.get("cpu"), "cpu_count": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load],
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": str(keep) if keep else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="write the run's results here (a new or empty folder)")
    ap.add_argument("--out", type=Path, help="write the measurement here as JSON")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    res = measure(args.jobs, args.keep)
    minutes = res["wall_seconds"] / 60
    print(f"{res['command']} on an empty cache: {minutes:.1f} wall-minutes on {res['cpu_count']} cores "
          f"(target {TARGET_MINUTES:.0f}: {'met' if minutes <= TARGET_MINUTES else 'missed'}); experiments and "
          f"zoo builds {res['process_seconds_total'] / 60:.1f} process-minutes")
    for name, sec in sorted(res["experiment_seconds"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:12s} {sec:8.1f} s")
    for name, sec in sorted(res["zoo_build_seconds"].items(), key=lambda kv: -kv[1]):
        print(f"  zoo {name:28s} {sec:8.1f} s")
    if args.out:
        from scalegmn_lite.common.io import atomic_write_json

        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
