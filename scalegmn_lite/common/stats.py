"""Uncertainty of trained results: bootstrap intervals over held-out units and seeds.

A trained figure is a mean over ``S`` seeds (operator init, data order) and ``N`` held-out units
(networks, pairs). Its 95% interval comes from a *two-way* bootstrap: every replicate draws ``S``
seeds with replacement and, independently, ``N`` units with replacement, and recomputes the mean of
the resampled ``[S, N]`` table::

    x*_b = mean_{s in S*_b, n in N*_b} x[s, n],   ci = quantiles_{2.5%, 97.5%} of {x*_b}

so both the variation between seeds and between networks widen the interval (with one seed only
the networks vary; a one-seed interval is honest about the networks, silent about the seed).
A paired comparison (method A minus method B on the same networks and seeds) bootstraps the
per-unit differences ``a[s, n] - b[s, n]``.

For statistics that are not means over units (Kendall's tau over a test set), :func:`bootstrap_stat`
resamples seeds and units and calls a function on the resampled indices.

Everything is seeded (``numpy.random.default_rng(seed)``): the same inputs give the same interval.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = ["bootstrap_mean", "bootstrap_difference", "bootstrap_stat", "decide", "Interval", "N_BOOT", "LEVEL"]

#: bootstrap replicates and interval level used everywhere
N_BOOT = 2000
LEVEL = 0.95


class Interval(dict):
    """``{"mean", "ci": [lo, hi], "seeds", "n"}`` (a dict, so it goes to JSON as is)."""

    @property
    def lo(self) -> float:
        return self["ci"][0]

    @property
    def hi(self) -> float:
        return self["ci"][1]


def _as_table(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"expected values [seeds, units] or [units], got shape {a.shape}; pass one row per seed")
    return a


def bootstrap_mean(x, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> Interval:
    """Mean of ``x [S, N]`` (or ``[N]``) with a two-way bootstrap interval (see the module docstring).

    Non-finite entries make the mean and the interval NaN (never silently dropped)."""
    a = _as_table(x)
    S, N = a.shape
    mean = float(a.mean())
    if not np.isfinite(a).all():
        return Interval(mean=float("nan"), ci=[float("nan"), float("nan")], seeds=S, n=N)
    rng = np.random.default_rng(seed)
    si = rng.integers(0, S, size=(n_boot, S))
    ni = rng.integers(0, N, size=(n_boot, N))
    # mean over the resampled table = mean over resampled seeds of the per-seed mean of resampled units
    per_seed = np.stack([a[:, idx].mean(1) for idx in ni])  # [n_boot, S]
    reps = np.take_along_axis(per_seed, si, 1).mean(1)
    q = (1 - level) / 2
    lo, hi = np.quantile(reps, [q, 1 - q])
    return Interval(mean=mean, ci=[float(lo), float(hi)], seeds=S, n=N)


def bootstrap_difference(a, b, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> Interval:
    """Mean of ``a [N_a]`` minus mean of ``b [N_b]``, two *independent* samples (e.g. networks of two
    zoos), with a bootstrap interval that resamples each sample on its own."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(seed)
    reps = (a[rng.integers(0, len(a), (n_boot, len(a)))].mean(1)
            - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(1))
    q = (1 - level) / 2
    lo, hi = np.quantile(reps, [q, 1 - q])
    return Interval(mean=float(a.mean() - b.mean()), ci=[float(lo), float(hi)], seeds=1, n=len(a) + len(b))


def bootstrap_stat(fn: Callable[[Sequence[int], np.ndarray], float], n_seeds: int, n_units: int,
                   n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> Interval:
    """Interval of ``mean_s fn(s, units)`` where ``fn(s, idx)`` computes a statistic of seed ``s`` on
    the units ``idx`` (an index array, with repeats); seeds and units are resampled independently.
    The point estimate uses every seed and every unit once."""
    if n_seeds < 1 or n_units < 2:
        raise ValueError(f"bootstrap_stat needs >= 1 seed and >= 2 units, got {n_seeds} and {n_units}")
    every = np.arange(n_units)
    per = np.array([fn(s, every) for s in range(n_seeds)], dtype=np.float64)
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        seeds = rng.integers(0, n_seeds, size=n_seeds)
        idx = rng.integers(0, n_units, size=n_units)
        reps[b] = np.mean([fn(int(s), idx) for s in seeds])
    reps = reps[np.isfinite(reps)]
    q = (1 - level) / 2
    lo, hi = (np.quantile(reps, [q, 1 - q]) if len(reps) else (float("nan"), float("nan")))
    return Interval(mean=float(per.mean()), ci=[float(lo), float(hi)], seeds=n_seeds, n=n_units)


def decide(ci: Sequence[float], op: str, threshold: float) -> str:
    """Status of the claim ``value <op> threshold`` (``op`` in ``>, >=, <, <=``) from its interval:
    ``"holds"`` when the whole interval satisfies it, ``"refuted"`` when the whole interval
    satisfies the opposite, ``"inconclusive"`` otherwise (and for a NaN interval)."""
    lo, hi = float(ci[0]), float(ci[1])
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive"
    t = threshold
    if op == ">":
        ok, bad = lo > t, hi <= t
    elif op == ">=":
        ok, bad = lo >= t, hi < t
    elif op == "<":
        ok, bad = hi < t, lo >= t
    elif op == "<=":
        ok, bad = hi <= t, lo > t
    else:
        raise ValueError(f"decide: op must be one of >, >=, <, <=, got {op!r}")
    return "holds" if ok else ("refuted" if bad else "inconclusive")
