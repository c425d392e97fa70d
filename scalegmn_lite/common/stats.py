"""Uncertainty of trained results: clustered bootstrap intervals over independent units and seeds.

A trained figure is a mean over ``S`` seeds (operator init, data order) and ``N`` held-out rows
(networks, checkpoints, INRs, pairs). Rows are often *not* independent: the 9 checkpoints of one
network, the 3 INRs fitted to one image, the pairs that share a network. Resampling rows as if they
were independent makes the interval too narrow. So every interval here comes from a *clustered
two-way* bootstrap: ``clusters`` (one label per row; rows with the same label form one independent
unit) says which rows move together, and every replicate draws ``S`` seeds with replacement and,
independently, whole clusters with replacement (all rows of a drawn cluster come along)::

    x*_b = mean_{s in S*_b} mean_{n in rows(C*_b)} x[s, n],   ci = quantiles_{2.5%, 97.5%} of {x*_b}

With ``clusters=None`` every row is its own cluster (rows really independent: one final network per
row). Both the variation between seeds and between independent units widen the interval; with one
seed only the units vary (a one-seed interval is honest about the networks, silent about the seed).
A paired comparison (method A minus method B on the same networks and seeds) bootstraps the per-row
differences ``a[s, n] - b[s, n]`` with the same clusters.

For statistics that are not means over rows (Kendall's tau over a test set), :func:`bootstrap_stat`
resamples seeds and clusters and calls a function on the resampled row indices.

Replicates are never dropped: a non-finite replicate (a NaN tau of a constant prediction, a NaN
loss) makes the interval NaN, and the number of such replicates is reported (``"nonfinite"``), so
the claim is inconclusive and says why, instead of resting on the replicates that happened to work.

:func:`coverage` measures what a 95% interval is worth on simulated data with a known truth
(``tests/test_claims_schema.py`` uses it: the row bootstrap undercovers when rows are correlated,
the clustered one does not).

Everything is seeded (``numpy.random.default_rng(seed)``): the same inputs give the same interval.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = ["bootstrap_mean", "bootstrap_difference", "bootstrap_stat", "cluster_ids", "coverage", "decide",
           "Interval", "N_BOOT", "LEVEL"]

#: bootstrap replicates and interval level used everywhere
N_BOOT = 2000
LEVEL = 0.95


class Interval(dict):
    """``{"mean", "ci": [lo, hi], "seeds", "n", "clusters"}`` (a dict, so it goes to JSON as is);
    ``n`` counts rows, ``clusters`` the independent units that were resampled."""

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


def cluster_ids(clusters, n: int) -> tuple[np.ndarray, int]:
    """``(inverse, C)``: each of ``n`` rows' cluster as an index in ``[0, C)`` (``clusters=None``: every
    row its own cluster). Labels may be ints or strings; their order does not matter."""
    if clusters is None:
        return np.arange(n), n
    labels = np.asarray(clusters)
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"clusters must give one label per row ({n} rows), got shape {labels.shape}; pass e.g. "
                         f"the network id of every (network, checkpoint) row")
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(-1), int(inverse.max()) + 1


def _weights(rng, n_boot: int, n_clusters: int) -> np.ndarray:
    """``[n_boot, C]`` multiplicities of a resample of ``C`` clusters with replacement."""
    draws = rng.integers(0, n_clusters, size=(n_boot, n_clusters))
    w = np.zeros((n_boot, n_clusters))
    np.add.at(w, (np.repeat(np.arange(n_boot), n_clusters), draws.reshape(-1)), 1.0)
    return w


def _interval(reps: np.ndarray, mean: float, level: float, **info) -> Interval:
    bad = int((~np.isfinite(reps)).sum())
    q = (1 - level) / 2
    if bad or not np.isfinite(mean):
        lo = hi = float("nan")
    else:
        lo, hi = (float(v) for v in np.quantile(reps, [q, 1 - q]))
    out = Interval(mean=float(mean), ci=[lo, hi], **info)
    if bad:
        out["nonfinite"] = bad
    return out


def bootstrap_mean(x, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0, clusters=None) -> Interval:
    """Mean of ``x [S, N]`` (or ``[N]``) with a clustered two-way bootstrap interval (see the module
    docstring); ``clusters``: one label per row (``None``: rows are independent).

    Non-finite entries make the mean and the interval NaN (never silently dropped)."""
    a = _as_table(x)
    S, N = a.shape
    inv, C = cluster_ids(clusters, N)
    mean = float(a.mean())
    if not np.isfinite(a).all():
        return Interval(mean=float("nan"), ci=[float("nan"), float("nan")], seeds=S, n=N, clusters=C)
    rng = np.random.default_rng(seed)
    si = rng.integers(0, S, size=(n_boot, S))
    sums = np.zeros((S, C))
    np.add.at(sums, (slice(None), inv), a)  # per seed and cluster: the sum of its rows
    counts = np.bincount(inv, minlength=C).astype(np.float64)
    w = _weights(rng, n_boot, C)
    per_seed = (w @ sums.T) / (w @ counts)[:, None]  # [n_boot, S]: mean over the resampled rows
    reps = np.take_along_axis(per_seed, si, 1).mean(1)
    return _interval(reps, mean, level, seeds=S, n=N, clusters=C)


def bootstrap_difference(a, b, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
                         clusters_a=None, clusters_b=None) -> Interval:
    """Mean of ``a [N_a]`` minus mean of ``b [N_b]``, two *independent* samples (e.g. networks of two
    zoos), with a bootstrap interval that resamples each sample's clusters on its own."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    rng = np.random.default_rng(seed)
    reps = []
    for x, cl in ((a, clusters_a), (b, clusters_b)):
        inv, C = cluster_ids(cl, len(x))
        sums = np.bincount(inv, weights=x, minlength=C)
        counts = np.bincount(inv, minlength=C).astype(np.float64)
        w = _weights(rng, n_boot, C)
        reps.append((w @ sums) / (w @ counts))
    return _interval(reps[0] - reps[1], float(a.mean() - b.mean()), level, seeds=1, n=len(a) + len(b),
                     clusters=cluster_ids(clusters_a, len(a))[1] + cluster_ids(clusters_b, len(b))[1])


def bootstrap_stat(fn: Callable[[int, np.ndarray], float], n_seeds: int, n_units: int,
                   n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0, clusters=None) -> Interval:
    """Interval of ``mean_s fn(s, rows)`` where ``fn(s, idx)`` computes a statistic of seed ``s`` on
    the rows ``idx`` (an index array, with repeats); seeds and clusters of rows (``clusters``: one
    label per row, ``None``: every row its own) are resampled independently. The point estimate uses
    every seed and every row once. A non-finite statistic is not dropped: the interval is NaN and
    ``"nonfinite"`` counts the replicates that gave one."""
    if n_seeds < 1 or n_units < 2:
        raise ValueError(f"bootstrap_stat needs >= 1 seed and >= 2 units, got {n_seeds} and {n_units}")
    inv, C = cluster_ids(clusters, n_units)
    if C < 2:
        raise ValueError(f"bootstrap_stat needs >= 2 clusters, got {C}")
    members = [np.flatnonzero(inv == c) for c in range(C)] if clusters is not None else None
    every = np.arange(n_units)
    per = np.array([fn(s, every) for s in range(n_seeds)], dtype=np.float64)
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        seeds = rng.integers(0, n_seeds, size=n_seeds)
        chosen = rng.integers(0, C, size=C)
        idx = chosen if members is None else np.concatenate([members[c] for c in chosen])
        reps[b] = np.mean([fn(int(s), idx) for s in seeds])
    return _interval(reps, float(per.mean()), level, seeds=n_seeds, n=n_units, clusters=C)


def coverage(n_sets: int = 300, n_clusters: int = 60, per_cluster: int = 9, within: float = 0.8,
             n_boot: int = 400, level: float = LEVEL, seed: int = 0) -> dict:
    """How often a 95% interval covers the truth on ``n_sets`` simulated data sets of ``n_clusters``
    independent units with ``per_cluster`` rows each; a row is ``u_c + e_i`` with
    ``Var u = within`` and ``Var e = 1 - within`` (the within-cluster correlation), the truth 0.
    Returns the coverage of the row bootstrap (clusters ignored) and of the clustered one."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    hit = {"rows": 0, "clustered": 0}
    for k in range(n_sets):
        x = (rng.normal(0, np.sqrt(within), n_clusters)[labels]
             + rng.normal(0, np.sqrt(1 - within), len(labels)))
        for name, cl in (("rows", None), ("clustered", labels)):
            iv = bootstrap_mean(x, n_boot=n_boot, level=level, seed=k, clusters=cl)
            hit[name] += int(iv.lo <= 0.0 <= iv.hi)
    return {k: v / n_sets for k, v in hit.items()} | {"n_sets": n_sets, "level": level}


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
