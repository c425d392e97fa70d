"""Both cores for the studies: independent training runs side by side, in worker processes.

A quick study trains many small metanetworks (operators x seeds, invariant models x seeds,
autoencoders x seeds). One such run is bound by Python and op dispatch, not arithmetic: a second
core barely speeds it up, whether as a second torch thread or as a second data-parallel process
(``benchmarks/bench_training.py`` measures both). Two *independent* runs, one per core, do finish
in about half the time, and each computes exactly what it computes alone (every run seeds itself;
only the thread count differs, which can move float rounding in reductions). Large runs use
data parallelism instead (:func:`scalegmn_lite.common.distributed.data_parallel`).

How many workers (:func:`plan_workers`):

* ``SCALEGMN_LITE_WORKERS`` (environment) or the ``workers`` argument: a number, or ``"auto"``;
* ``"auto"``: the cores that are idle now, measured over 0.2 s from ``/proc/stat`` (elsewhere: the
  CPU count minus the 1-minute load), at most the number of jobs, and 1 when the estimated work is
  below ``min_seconds`` (starting a worker imports torch: ~5 s) or inside a worker (no nesting);
* ``reproduce --jobs N`` runs its experiments in ``N`` workers; an experiment then finds the other
  core busy and runs its jobs one after another, until the other worker finishes.

Workers are spawned (a forked child of a process that already ran OpenMP threads can hang), run
with one torch thread, and return results through pickling; an exception in a job is raised in the
parent with the job named.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

__all__ = ["ENV", "idle_cores", "plan_workers", "plan_data_parallel", "run_jobs", "in_worker", "watch_parent",
           "DP_MIN_WORK"]

#: environment variable: the number of worker processes (``"auto"`` or an integer >= 1)
ENV = "SCALEGMN_LITE_WORKERS"
_IN_WORKER = "SCALEGMN_LITE_IN_WORKER"


def in_worker() -> bool:
    """Whether this process is a worker of :func:`run_jobs` (or of ``reproduce --jobs``)."""
    return os.environ.get(_IN_WORKER) == "1"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _proc_stat() -> tuple[int, int] | None:
    """``(idle, total)`` jiffies of all CPUs from ``/proc/stat``, or ``None`` off Linux."""
    try:
        with open("/proc/stat") as f:
            parts = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    return idle, sum(parts[:8])


def idle_cores(sample_seconds: float = 0.2) -> int:
    """Cores idle right now: the idle share of all CPUs over ``sample_seconds`` (this process sleeps
    meanwhile, so its own earlier work does not count), times the core count, rounded; without
    ``/proc/stat``, the core count minus the 1-minute load average."""
    n = _cpu_count()
    a = _proc_stat()
    if a is not None:
        time.sleep(sample_seconds)
        b = _proc_stat()
        if b is not None and b[1] > a[1]:
            return max(0, min(n, round(n * (b[0] - a[0]) / (b[1] - a[1]))))
    try:
        return max(0, n - round(os.getloadavg()[0]))
    except (AttributeError, OSError):
        return 1


def plan_workers(jobs: int, workers: int | str | None = None, est_seconds: float | None = None,
                 min_seconds: float = 30.0, device=None) -> int:
    """How many worker processes to run ``jobs`` independent jobs on (1: run them here, in order).

    Args:
        jobs: number of jobs.
        workers: a number, ``"auto"``, or ``None`` (the ``SCALEGMN_LITE_WORKERS`` environment
            variable, default ``"auto"``).
        est_seconds: estimated serial time of all jobs (``None``: unknown, treated as long).
        min_seconds: ``"auto"`` stays serial below this estimate (worker start-up is ~5 s each).
        device: where the jobs compute (``None``: CPU); workers are CPU processes, so any other
            device runs the jobs here, in order.
    """
    if device is not None and torch_device_type(device) != "cpu":
        return 1
    if workers is None:
        workers = os.environ.get(ENV, "auto")
    if isinstance(workers, str):
        if workers.strip().lower() != "auto":
            try:
                workers = int(workers)
            except ValueError:
                raise ValueError(f"{ENV}={workers!r}: use a number of worker processes (>= 1) or 'auto'") from None
    if isinstance(workers, int):
        if workers < 1:
            raise ValueError(f"workers must be >= 1 (or 'auto'), got {workers}")
        return max(1, min(workers, jobs))
    if jobs < 2 or in_worker() or (est_seconds is not None and est_seconds < min_seconds):
        return 1
    return max(1, min(jobs, idle_cores()))


#: ``hidden_dim x networks per step`` from which one run gains from 2 data-parallel processes over one
#: two-threaded process (``benchmarks/bench_training.py``, operator on 2 cores: 16 x 8: 1.05x, i.e.
#: less than the ~5 s start-up; 32 x 16: 1.23x; 64 x 32: 1.26x)
DP_MIN_WORK = 512


def plan_data_parallel(hidden: int, batch: int, nproc: int | str = "auto", device: str = "cpu") -> int:
    """Processes for one training run: ``nproc`` if a number; ``"auto"``: 2 (or more, up to the idle
    cores and the batch) on CPU when ``hidden * batch >= DP_MIN_WORK``, else 1."""
    if isinstance(nproc, str) and nproc != "auto":
        try:
            nproc = int(nproc)
        except ValueError:
            raise ValueError(f"nproc must be a number of processes or 'auto', got {nproc!r}") from None
    if not isinstance(nproc, str):
        if nproc < 1:
            raise ValueError(f"nproc must be >= 1 (or 'auto'), got {nproc}")
        return nproc
    if torch_device_type(device) != "cpu" or in_worker() or hidden * batch < DP_MIN_WORK:
        return 1
    return max(1, min(idle_cores(), batch))


def torch_device_type(device) -> str:
    """``"cpu"``, ``"cuda"``, ... of a device given as a string or a ``torch.device``."""
    return getattr(device, "type", None) or str(device).split(":")[0]


def watch_parent(parent: int) -> None:
    """Exit this process when ``parent`` is gone (a daemon thread polling every 2 s), so no orphaned
    worker keeps training and writing files after its run was stopped."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(2.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _init_worker(parent: int) -> None:
    import torch

    os.environ[_IN_WORKER] = "1"
    os.environ[ENV] = "1"
    torch.set_num_threads(1)
    watch_parent(parent)


class JobError(RuntimeError):
    """A job of :func:`run_jobs` raised; the message names the job, ``__cause__`` is the original."""


def run_jobs(fn: Callable[..., Any], jobs: Sequence[tuple], workers: int = 1, names: Sequence[str] | None = None
             ) -> list[Any]:
    """``[fn(*args) for args in jobs]``, in ``workers`` spawned processes when ``workers > 1``
    (``fn`` and the arguments must pickle: a module-level function and tensors, configs, paths).
    Results come back in the order of ``jobs``; the first failing job raises :class:`JobError`."""
    names = list(names) if names is not None else [f"job {i}" for i in range(len(jobs))]
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for name, args in zip(names, jobs):
            try:
                out.append(fn(*args))
            except Exception as exc:
                raise JobError(f"{name} failed: {type(exc).__name__}: {exc}") from exc
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(fn, *args) for args in jobs]
        out = []
        for name, f in zip(names, futures):
            try:
                out.append(f.result())
            except Exception as exc:
                for g in futures:
                    g.cancel()
                raise JobError(f"{name} failed in a worker process: {type(exc).__name__}: {exc}") from exc
        return out
