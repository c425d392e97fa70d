"""``scalegmn-lite`` command line: ``reproduce`` runs every experiment and writes claims."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .common.claims import Claim

__all__ = ["main", "reproduce", "write_report"]


def _claims_as_dicts(result: dict) -> list[dict]:
    return [c.to_dict() if isinstance(c, Claim) else dict(c) for c in result.get("claims", [])]


def write_report(out: Path, results: dict[str, dict]) -> Path:
    """``REPORT.md``: one table of all claims plus per-experiment timings."""
    lines = ["# scalegmn-lite reproduce report", ""]
    total = sum(len(r["claims"]) for r in results.values())
    held = sum(c["holds"] for r in results.values() for c in r["claims"])
    lines += [f"{held} of {total} claims hold.", "", "| experiment | claim | statement | measured | target | holds |",
              "|---|---|---|---|---|---|"]
    for name, r in results.items():
        for c in r["claims"]:
            measured = json.dumps(c["measured"]) if not isinstance(c["measured"], str) else c["measured"]
            if len(measured) > 160:
                measured = measured[:157] + "..."
            lines.append(f"| {name} | `{c['id']}` | {c['statement']} | {measured} | {c['target']} | "
                         f"{'yes' if c['holds'] else '**no**'} |")
    lines += ["", "| experiment | mode | device | seconds |", "|---|---|---|---|"]
    for name, r in results.items():
        mode = "quick" if r.get("quick") else "full"
        lines.append(f"| {name} | {mode} | {r.get('device')} | {r.get('seconds', 0):.1f} |")
    path = out / "REPORT.md"
    from .common.io import atomic_write_bytes

    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def reproduce(out: Path, quick: bool = True, device: str = "auto", only: list[str] | None = None,
              seed: int = 0, progress: bool = True) -> dict[str, dict]:
    from .common.config import resolve_device, seed_everything
    from .common.io import atomic_write_json
    from .experiments import RunContext, load_all

    experiments = load_all()
    names = only or list(experiments)
    unknown = [n for n in names if n not in experiments]
    if unknown:
        raise SystemExit(f"unknown experiment(s) {unknown}; available: {list(experiments)}")
    ctx = RunContext(quick=quick, device=resolve_device(device), out_dir=Path(out), seed=seed, progress=progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in names:
        seed_everything(seed)
        t0 = time.perf_counter()
        print(f"[reproduce] {name} ({'quick' if quick else 'full'}, {ctx.device}) ...", flush=True)
        result = experiments[name](ctx)
        result = dict(result)
        result.update(experiment=name, quick=quick, device=str(ctx.device), seconds=time.perf_counter() - t0)
        result["claims"] = _claims_as_dicts(result)
        atomic_write_json(out / f"{name}.json", result)
        results[name] = result
        for c in result["claims"]:
            status = "HOLDS " if c["holds"] else "MISSED"
            print(f"  {status} {c['id']}: {c['measured']} (target {c['target']})", flush=True)
    report = write_report(out, results)
    print(f"[reproduce] wrote {report}")
    return results


def _zoo_command(args, parser) -> int:
    from .zoo import build_zoo, get_recipe, list_recipes, save_zoo

    if args.list:
        for name in list_recipes():
            q, f = get_recipe(name, full=False), get_recipe(name, full=True)
            print(f"{name:16s} quick {q.num_networks:5d} / full {f.num_networks:5d} networks  {', '.join(q.arch)}")
        return 0
    if not args.recipe or not args.out:
        parser.error("zoo needs --recipe NAME and --out DIR (or --list)")
    recipe = get_recipe(args.recipe, full=args.full)
    t0 = time.perf_counter()
    zoo = build_zoo(recipe, device=args.device, progress=True)
    path = save_zoo(zoo, args.out)
    print(f"{zoo} built in {time.perf_counter() - t0:.1f} s, saved to {path.parent}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scalegmn-lite", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    rep = sub.add_parser("reproduce", help="run every experiment, write DIR/<experiment>.json and DIR/REPORT.md")
    mode = rep.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", default=True, help="small recipes (default)")
    mode.add_argument("--full", action="store_true", help="full-size recipes (GPU recommended)")
    rep.add_argument("--out", type=Path, default=Path("results"))
    rep.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    rep.add_argument("--only", nargs="*", help="run only these experiments")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--strict", action="store_true", help="exit 1 if any claim does not hold")
    # further subcommands (e.g. `zoo`) are added here, each importing its module lazily
    zp = sub.add_parser("zoo", help="build a named zoo recipe and save it to DIR (with a progress bar)")
    zp.add_argument("--recipe", help="recipe name (see --list)")
    zp.add_argument("--out", type=Path, help="folder to write the zoo to")
    zp.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    zp.add_argument("--full", action="store_true", help="full-size recipe (default: quick)")
    zp.add_argument("--list", action="store_true", help="list the named recipes and exit")
    args = parser.parse_args(argv)
    if args.cmd == "reproduce":
        results = reproduce(args.out, quick=not args.full, device=args.device, only=args.only, seed=args.seed)
        missed = [c["id"] for r in results.values() for c in r["claims"] if not c["holds"]]
        if missed:
            print(f"[reproduce] claims that do not hold: {missed}")
        return 1 if (args.strict and missed) else 0
    if args.cmd == "zoo":
        return _zoo_command(args, parser)
    parser.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
