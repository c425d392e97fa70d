"""``scalegmn-lite`` command line: ``reproduce`` runs every experiment and writes claims."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .common.claims import SOURCES, Claim

__all__ = ["main", "reproduce", "write_report"]


def _claims_as_dicts(result: dict) -> list[dict]:
    return [c.to_dict() if isinstance(c, Claim) else dict(c) for c in result.get("claims", [])]


def write_report(out: Path, results: dict[str, dict]) -> Path:
    """``REPORT.md``: one table of all claims plus per-experiment timings."""
    lines = ["# scalegmn-lite reproduce report", ""]
    from .common.claims import count_claims

    n = count_claims([c for r in results.values() for c in r["claims"]])
    f, k = n["finding"], n["check"]
    lines += [f"**{f['holds']} of {f['total']} findings hold** ({f['refuted']} refuted, {f['inconclusive']} "
              f"inconclusive): results that could have gone either way. Separately, {k['holds']} of {k['total']} "
              "exact checks hold (identities that hold by construction when the code is right: gauge groups, "
              "invariance of invariant models, zoo sizes). Trained findings: mean over seeds and held-out networks "
              "with a 95% clustered bootstrap interval (whole networks, images or pairs resampled with the seeds); "
              "holds = the interval excludes the opposite, refuted = it excludes the claim. A statement marked "
              + ", ".join(f"*[{k}]* is {v}" for k, v in SOURCES.items()) + ".", ""]
    for kind, title in (("finding", "Findings"), ("check", "Exact checks")):
        lines += [f"## {title}", "",
                  "| experiment | claim | statement | measured | 95% interval | seeds | target | status |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in results.items():
            for c in r["claims"]:
                if (c.get("kind") or "finding") != kind:
                    continue
                measured = json.dumps(c["measured"]) if not isinstance(c["measured"], str) else c["measured"]
                if len(measured) > 160:
                    measured = measured[:157] + "..."
                ci = c.get("ci")
                ci_text = f"[{float(ci[0]):.4g}, {float(ci[1]):.4g}]" if ci else "exact"
                status = c.get("status", "holds" if c["holds"] else "refuted")
                shown = {"holds": "holds", "refuted": "**refuted**", "inconclusive": "*inconclusive*"}[status]
                statement = c["statement"]
                if c.get("source"):
                    statement = f"*[{c['source']}]* {statement}"
                lines.append(f"| {name} | `{c['id']}` | {statement} | {measured} | {ci_text} | {c.get('seeds') or ''} "
                             f"| {c['target']} | {shown} |")
        lines.append("")
    lines += ["", "| experiment | mode | device | seconds |", "|---|---|---|---|"]
    for name, r in results.items():
        mode = r.get("mode") or ("quick" if r.get("quick") else "full")
        lines.append(f"| {name} | {mode} | {r.get('device')} | {r.get('seconds', 0):.1f} |")
    path = out / "REPORT.md"
    from .common.io import atomic_write_bytes

    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def _git(*args) -> str:
    import subprocess

    try:  # not stripped: `git status --porcelain` lines start with a status column that may be a space
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _source_state() -> dict:
    """``{"commit", "dirty_files"}`` of the checkout the package runs from (empty outside git)."""
    return {"commit": _git("rev-parse", "HEAD").strip(),
            "dirty_files": [ln[3:] for ln in _git("status", "--porcelain").splitlines() if ln.strip()]}


def _previous_manifest(out: Path, mode: str) -> dict:
    """The manifest a resumed run replaces (same mode), or ``{}``."""
    try:
        m = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return m if isinstance(m, dict) and m.get("mode") == mode else {}


def _manifest(out: Path, mode: str, names: list[str], seconds: float, started: str, source: dict | None = None,
              jobs: int = 1, per_experiment: dict | None = None, failed: dict | None = None,
              first_invocation: dict | None = None, records: dict | None = None,
              zoo_builds: dict | None = None) -> Path:
    """``manifest.json``: commit (and uncommitted files) at the start, command, versions, CPU, date and
    wall time of a reproduce run (a resumed run keeps the ``first_invocation`` record of the manifest
    it replaces, so where its reused results came from is never lost, and its ``records``: what
    ``tools/recompute_claims.py`` and ``tools/adopt_run.py`` did to the reused results)."""
    import os
    import platform

    import numpy
    import torch

    from . import __version__
    from .common.io import atomic_write_json

    source = source or _source_state()
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import scipy
        scipy_v = scipy.__version__
    except ImportError:  # pragma: no cover
        scipy_v = None
    info = {"mode": mode, "experiments": names, "command": " ".join(["scalegmn-lite", *sys.argv[1:]]),
            "commit": source["commit"], "dirty_files": source["dirty_files"],
            "versions": {"scalegmn_lite": __version__, "python": platform.python_version(), "torch": torch.__version__,
                         "numpy": numpy.__version__, "scipy": scipy_v},
            "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "platform": platform.platform(),
            "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "wall_seconds": round(seconds, 1),
            "jobs": jobs, "per_experiment": per_experiment or {}, "failed": failed or {},
            "resumed": sorted(n for n, v in (per_experiment or {}).items() if v.get("reused")),
            "experiment_seconds_total": round(sum(v.get("seconds") or 0.0 for v in (per_experiment or {}).values()), 1)}
    if zoo_builds:  # zoos built ahead of the experiments (reproduce --jobs): their time is not in any experiment's
        info["zoo_builds"] = {k: round(v, 1) for k, v in zoo_builds.items()}
        info["zoo_build_seconds_total"] = round(sum(zoo_builds.values()), 1)
    if first_invocation:
        info["first_invocation"] = first_invocation
    info.update(records or {})
    path = out / "manifest.json"
    atomic_write_json(path, info)
    return path


#: rough cost order of the experiments without their zoo builds (largest first; quick, 2026-12-07: merging ~570,
#: amortized ~490, invariant ~310, gscale ~150, zoo ~100 process-seconds) for ``reproduce --jobs``: the zoos are
#: built first, then a free worker takes the next experiment, so the long ones start first
COST_ORDER = ("merging", "amortized", "invariant", "residual", "gscale", "zoo", "gauge", "distributed")


def _worker_init(parent: int) -> None:
    """In a ``reproduce --jobs`` worker: exit when the parent process is gone (killed or crashed), so
    no orphaned worker keeps training and writing files after its run was stopped."""
    from .common.parallel import watch_parent

    watch_parent(parent)


def _train_rank(ctx, job) -> None:
    """One rank of ``scalegmn-lite train --nproc N`` (``launch_local`` sets torchrun's environment)."""
    import torch

    from .tasks.launch import run_training

    torch.set_num_threads(1)
    run_training(job)


def _build_zoo(recipe, ctx, threads: int | None = None) -> float:
    """Build one zoo into the cache (a ``reproduce --jobs`` task ahead of the experiments that load it); its
    build seconds."""
    import torch

    from .zoo import load_or_build

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    print(f"[reproduce] zoo {recipe.name} ({recipe.num_networks} networks) ...", flush=True)
    load_or_build(recipe, device=ctx.device, progress=ctx.progress)
    seconds = time.perf_counter() - t0
    print(f"[reproduce] zoo {recipe.name} built in {seconds:.0f} s", flush=True)
    return seconds


def _run_experiment(name: str, ctx, seed: int, threads: int | None = None, source: dict | None = None) -> dict:
    """Run one experiment, write ``<out>/<name>.json`` and return its result (also in a worker process
    of ``reproduce --jobs``, where ``threads`` sets torch's thread count)."""
    import torch

    from .common.config import seed_everything
    from .common.io import atomic_write_json
    from .experiments import load_all

    if threads:
        torch.set_num_threads(threads)
    experiments = load_all()
    seed_everything(seed)
    t0 = time.perf_counter()
    print(f"[reproduce] {name} ({ctx.mode}, {ctx.device}) ...", flush=True)
    result = dict(experiments[name](ctx))
    result.update(experiment=name, quick=ctx.quick, mode=ctx.mode, device=str(ctx.device),
                  seconds=time.perf_counter() - t0, torch_threads=torch.get_num_threads(), source=source,
                  finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    result["claims"] = _claims_as_dicts(result)
    atomic_write_json(ctx.out_dir / f"{name}.json", result)
    print(f"[reproduce] {name} done in {result['seconds']:.0f} s", flush=True)
    return result


def _reusable(path: Path, mode: str) -> dict | None:
    """A finished result of a previous run in ``mode`` (for ``--resume``), validated, or None."""
    from .common.claims import validate_claim

    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if data.get("mode") != mode or "claims" not in data:
        return None
    for c in data["claims"]:
        validate_claim(c, f"{path.name} claim {c.get('id')}")
    if not data.get("finished"):  # written before results recorded it: the file's own time
        data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(path.stat().st_mtime))
    return data


def reproduce(out: Path, quick: bool = True, device: str = "auto", only: list[str] | None = None,
              seed: int = 0, progress: bool = True, reference: bool = False, jobs: int = 1,
              resume: bool = False) -> dict[str, dict]:
    """Run the experiments at quick, reference (``reference=True``: bigger zoos, more steps and seeds,
    sized for ~1 hour on 2 CPU cores; experiments without a reference size run quick) or full size
    (``quick=False``, for a GPU); writes
    ``<out>/<experiment>.json``, ``REPORT.md`` and ``manifest.json``.

    ``jobs > 1`` runs the experiments in that many worker processes (spawned; each with
    ``cpu_count // jobs`` torch threads), longest first (:data:`COST_ORDER`): small message-passing
    graphs use one core poorly, so two single-threaded workers finish sooner than one two-threaded
    run. The zoos the experiments load (:func:`~scalegmn_lite.experiments.needed_zoos`) are built first, as
    tasks of their own, longest first, so both workers build zoos and no experiment waits for another's
    build. Results do not depend on ``jobs`` (every experiment seeds itself; a zoo is the same whoever
    builds it).

    A failing experiment does not take the others with it: the rest finish, the report and manifest
    are written for what finished (the manifest lists the failure), then ``SystemExit`` names it.
    ``resume=True`` keeps every ``<out>/<experiment>.json`` of the same mode that a previous run
    finished and runs only the missing ones (of ``only``, if given; the report and manifest still cover
    every result in ``out``); the manifest marks the reused ones with the commit and
    date they record (``source``, ``finished``), so a resumed run never passes for a single one."""
    import os

    from .common.config import resolve_device
    from .experiments import RunContext, load_all, needed_zoos

    experiments = load_all()
    names = only or list(experiments)
    unknown = [n for n in names if n not in experiments]
    if unknown:
        raise SystemExit(f"unknown experiment(s) {unknown}; available: {list(experiments)}")
    if jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {jobs}")
    if reference:  # reference sizes build on the quick ones: experiments enlarge what ctx.reference names
        quick = True
    mode = "reference" if reference else ("quick" if quick else "full")
    ctx = RunContext(quick=quick, device=resolve_device(device), out_dir=Path(out), seed=seed, progress=progress,
                     reference=reference)
    started, t_all = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    source = _source_state()  # the code that runs: commit and uncommitted files when the run starts
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # --resume keeps every finished result of this mode in the folder, named by --only or not, so the
    # report and manifest written below still describe the whole folder; --only picks what may run
    scope = list(experiments) if resume else names
    reused = {n: r for n in scope if resume and (r := _reusable(out / f"{n}.json", mode)) is not None}
    previous = _previous_manifest(out, mode) if reused else {}
    todo = [n for n in names if n not in reused]
    if reused:
        print(f"[reproduce] --resume: reusing {sorted(reused)} from {out}", flush=True)
    done, failed, built = dict(reused), {}, {}
    if jobs == 1 or len(todo) <= 1:
        for name in todo:
            try:
                done[name] = _run_experiment(name, ctx, seed, source=source)
            except Exception as exc:  # noqa: BLE001 - reported below, after the others ran
                failed[name] = f"{type(exc).__name__}: {exc}"
                import traceback

                traceback.print_exc()
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 1) // jobs)
        order = sorted(todo, key=lambda n: COST_ORDER.index(n) if n in COST_ORDER else len(COST_ORDER))
        zoos = needed_zoos(todo, ctx)
        if zoos:
            print(f"[reproduce] building {len(zoos)} zoos first: {', '.join(r.name for r in zoos)}", flush=True)
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo) + len(zoos)), mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init, initargs=(os.getpid(),)) as pool:
            builds = {r.name: pool.submit(_build_zoo, r, ctx, threads) for r in zoos}
            futures = {n: pool.submit(_run_experiment, n, ctx, seed, threads, source) for n in order}
            for n, f in builds.items():  # a failed build is retried by the experiment that loads the zoo
                try:
                    built[n] = f.result()
                except Exception as exc:  # noqa: BLE001 - reported; the experiment then raises it with context
                    print(f"[reproduce] building zoo {n} failed ({type(exc).__name__}: {exc}); the experiments "
                          "that load it try again", flush=True)
            for n, f in futures.items():
                try:
                    done[n] = f.result()
                except Exception as exc:  # noqa: BLE001 - reported below, after the others ran
                    failed[n] = f"{type(exc).__name__}: {exc}"
                    print(f"[reproduce] {n} FAILED: {failed[n]}", flush=True)
    results = {}
    for name in [n for n in scope if n in done]:
        result = results[name] = done[name]
        for c in result["claims"]:
            status = c.get("status", "holds" if c["holds"] else "refuted").upper()
            ci = f" ci {c['ci']}" if c.get("ci") else ""
            print(f"  {status:12s} {c['id']}: {c['measured']}{ci} (target {c['target']})", flush=True)
    report = write_report(out, results)
    old_per = previous.get("per_experiment", {})
    per = {n: {"seconds": round(r.get("seconds", 0.0), 1), "torch_threads": r.get("torch_threads"),
               "reused": n in reused, "finished": r.get("finished"),
               # a reused result without its own record keeps the one the previous manifest had
               "source": r.get("source") or (old_per.get(n, {}).get("source") if n in reused else None)}
           for n, r in results.items()}
    covered = [n for n in scope if n in done or n in failed]
    _manifest(out, mode, covered, time.perf_counter() - t_all, started, source, jobs, per, failed,
              first_invocation=previous.get("first_invocation"),
              records={k: previous[k] for k in ("recomputed", "adopted") if previous.get(k)}, zoo_builds=built)
    print(f"[reproduce] wrote {report} and manifest.json")
    if failed:
        raise SystemExit(f"reproduce: experiment(s) failed: {failed}; the others are in {out} (rerun with "
                         "--resume to run only what is missing)")
    return results


def _zoo_command(args, parser) -> int:
    from .zoo import build_zoo, get_recipe, list_recipes, save_zoo
    from .zoo.shards import ShardError, build_shard, merge_shards, parse_shard, save_shard

    if args.action == "merge":  # scalegmn-lite zoo merge SHARD_DIR... --out DIR
        if not args.out:
            parser.error("zoo merge needs --out DIR")
        try:
            zoo = merge_shards(args.shards, out=args.out)
        except ShardError as exc:
            raise SystemExit(f"scalegmn-lite zoo merge: error: {exc}") from None
        print(f"{zoo} merged from {len(args.shards)} shards, saved to {args.out}")
        return 0
    if args.shards:
        parser.error(f"unexpected arguments {args.shards}; did you mean `scalegmn-lite zoo merge ...`?")
    if args.list:
        for name in list_recipes():
            q, f = get_recipe(name, full=False), get_recipe(name, full=True)
            print(f"{name:16s} quick {q.num_networks:5d} / full {f.num_networks:5d} networks  {', '.join(q.arch)}")
        return 0
    if not args.recipe or not args.out:
        parser.error("zoo needs --recipe NAME and --out DIR (or --list)")
    from .tasks.launch import recipe_from_arg

    recipe = recipe_from_arg(args.recipe, full=args.full)
    t0 = time.perf_counter()
    if args.shard:  # shard K/N: networks K, K+N, ... into a verified shard folder
        try:
            k, n = parse_shard(args.shard)
            zoo = build_shard(recipe, k, n, device=args.device, progress=True)
        except ShardError as exc:
            raise SystemExit(f"scalegmn-lite zoo: error: {exc}") from None
        path = save_shard(zoo, args.out, recipe, k, n)
        print(f"shard {k}/{n}: {zoo} built in {time.perf_counter() - t0:.1f} s, saved to {path.parent}")
        return 0
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
    mode.add_argument("--reference", action="store_true",
                      help="reference size: bigger zoos, more steps and seeds (~1 hour on 2 CPU cores); "
                           "the committed run lives in results/reference/")
    rep.add_argument("--out", type=Path, default=Path("results"))
    rep.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    rep.add_argument("--only", nargs="*", help="run only these experiments")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--strict", action="store_true", help="exit 1 if any claim does not hold")
    rep.add_argument("--resume", action="store_true",
                     help="keep the finished <experiment>.json files of the same mode in --out, run the rest")
    rep.add_argument("--jobs", type=int, default=1,
                     help="run experiments in this many processes (longest first; e.g. 2 on 2 cores)")
    # further subcommands (e.g. `zoo`) are added here, each importing its module lazily
    zp = sub.add_parser("zoo", help="build a named zoo recipe and save it to DIR (with a progress bar)")
    zp.add_argument("--recipe", help="recipe name (see --list)")
    zp.add_argument("--out", type=Path, help="folder to write the zoo to")
    zp.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    zp.add_argument("--full", action="store_true", help="full-size recipe (default: quick)")
    zp.add_argument("--list", action="store_true", help="list the named recipes and exit")
    zp.add_argument("--shard", metavar="K/N", help="build only shard K of N (networks K, K+N, ...) into --out")
    zp.add_argument("action", nargs="?", choices=["merge"], help="merge: join shard folders into --out")
    zp.add_argument("shards", nargs="*", type=Path, help="shard folders (with merge)")
    tp = sub.add_parser("train", help="train a metanetwork on a zoo, as one process or under torchrun "
                                      "(data-parallel over networks)")
    tp.add_argument("kind", choices=["invariant", "operator", "autoencoder"])
    src = tp.add_mutually_exclusive_group(required=True)
    src.add_argument("--recipe", help="zoo recipe name or recipe JSON file (built or read from the cache)")
    src.add_argument("--zoo", type=Path, help="a saved zoo folder (e.g. merged shards)")
    tp.add_argument("--full", action="store_true", help="full-size recipe (default: quick)")
    tp.add_argument("--out", type=Path, required=True, help="rank 0 writes model.pt and summary.json here")
    tp.add_argument("--steps", type=int, default=50, help="optimizer steps (invariant: epochs)")
    tp.add_argument("--batch", type=int, default=16, help="networks per global batch (any number of processes)")
    tp.add_argument("--networks", type=int, help="use only the first N networks of the zoo")
    tp.add_argument("--hidden", type=int, default=16)
    tp.add_argument("--layers", type=int, default=2)
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    tp.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    tp.add_argument("--no-progress", action="store_true")
    tp.add_argument("--nproc", default="auto",
                    help="data-parallel processes on this machine (gloo), without torchrun: a number, or 'auto' "
                         "(default: 2 on an idle 2-core CPU machine when hidden x batch >= 512, where a second "
                         "process measurably pays off, else 1); ignored under torchrun")
    args = parser.parse_args(argv)
    if args.cmd == "reproduce":
        results = reproduce(args.out, quick=not (args.full or args.reference), device=args.device, only=args.only,
                            seed=args.seed, reference=args.reference, jobs=args.jobs,
                            resume=args.resume)
        missed = [c["id"] for r in results.values() for c in r["claims"] if not c["holds"]]  # refuted or inconclusive
        if missed:
            print(f"[reproduce] claims that do not hold: {missed}")
        return 1 if (args.strict and missed) else 0
    if args.cmd == "zoo":
        return _zoo_command(args, parser)
    if args.cmd == "train":
        from .tasks.launch import TrainJob, recipe_from_arg, run_training

        job = TrainJob(args.kind, args.out, recipe=recipe_from_arg(args.recipe, args.full) if args.recipe else None,
                       zoo_dir=args.zoo, steps=args.steps, batch=args.batch, networks=args.networks,
                       hidden=args.hidden, layers=args.layers, seed=args.seed, device=args.device,
                       dtype=args.dtype, progress=not args.no_progress)
        import os

        from .common.distributed import current, finish, launch_local
        from .common.parallel import plan_data_parallel

        nproc = 1
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:  # not under torchrun: maybe our own processes
            from .common.config import resolve_device

            nproc = plan_data_parallel(job.hidden, job.batch, args.nproc, resolve_device(job.device).type)
        if nproc > 1:
            print(f"[train] data-parallel over {nproc} local processes (gloo)", flush=True)
            launch_local(_train_rank, nproc, args=(job,))
            summary = json.loads((Path(job.out) / "summary.json").read_text())
            print(json.dumps(summary))
            return 0
        summary = run_training(job)
        if current().is_main:
            print(json.dumps(summary))
        finish()
        return 0
    parser.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
