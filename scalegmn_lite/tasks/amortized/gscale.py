"""The open question of the one-shot paper, measured: does the equivariance gain grow with the dimension of
the scaling gauge?

For every setting of an amortized study with both ``scalegmn-b`` and ``gmn`` operators (trained on
the same networks with matched parameter counts), the gain is the paired accuracy difference
``acc(ScaleGMN-B) - acc(GMN-B)`` on the same test networks, with a 95% bootstrap interval over test
networks and seeds. ``dim G_scale`` is the dimension of the continuous scaling part of the
architecture's gauge group: :func:`~scalegmn_lite.symbolic.conv.network_scaling_dims` (per-channel
scalings of a CNN, per-neuron of an MLP) for positively homogeneous activations (ReLU), 0 for tanh
(its scaling symmetries are the finite sign flips). The trend is the least-squares slope of gain
against ``dim G_scale``, with an interval from bootstrap replicates drawn independently per setting
(different settings have different test networks).
"""

from __future__ import annotations

import numpy as np

from ...common.stats import LEVEL, N_BOOT, bootstrap_mean
from ...weightspace.layer import Symmetry, symmetry_of
from ...weightspace.spec import NetworkSpec

__all__ = ["gscale_dim", "gscale_sweep", "sweep_claims"]


def gscale_dim(spec: NetworkSpec | str) -> int:
    """Dimension of the continuous scaling gauge of ``spec`` (0 unless its hidden activations are
    positively homogeneous)."""
    from ...symbolic.conv import network_scaling_dims

    spec = NetworkSpec.from_text(spec) if isinstance(spec, str) else spec
    hidden = spec.layers[:-1]
    if not hidden or any(symmetry_of(layer.activation) is not Symmetry.POSITIVE_SCALE for layer in hidden):
        return 0
    return int(network_scaling_dims(spec).dim_cnn)


def _replicates(x: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    S, N = x.shape
    return np.array([x[rng.integers(0, S, S)][:, rng.integers(0, N, N)].mean() for _ in range(n_boot)])


def _interval(reps: np.ndarray, mean: float, seeds: int, n: int) -> dict:
    q = (1 - LEVEL) / 2
    lo, hi = np.quantile(reps, [q, 1 - q])
    return {"mean": float(mean), "ci": [float(lo), float(hi)], "seeds": int(seeds), "n": int(n)}


def _twins(points: list[dict]) -> list[tuple[int, int]]:
    """Pairs ``(i_cnn, i_mlp)`` of points where the MLP has the CNN's unrolled hidden sizes."""
    from ...symbolic.conv import network_index

    out = []
    for i, p in enumerate(points):
        spec = NetworkSpec.from_text(p["spec"])
        if spec.family == "mlp":
            continue
        _, _, pos = network_index(spec)
        unrolled = [c * n for c, n in zip(spec.hidden_widths, pos[:-1])]
        for j, q in enumerate(points):
            other = NetworkSpec.from_text(q["spec"])
            if other.family == "mlp" and list(other.widths[1:-1]) == unrolled:
                out.append((i, j))
    return out


def gscale_sweep(per_network: dict, counts: dict, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """``{"points": [...], "slope": {...}, "twins": [...]}`` from a study's ``per_network``
    (setting -> method -> metric -> ``[S, B]``) and ``counts`` (setting -> {"spec": text, ...}).

    ``points``: per setting (CE, with both ``scalegmn-b`` and ``gmn``) the gain with its interval and
    ``dim G_scale``; ``slope``: least-squares slope of the gain against ``dim G_scale`` (accuracy per
    dimension) with a bootstrap interval; ``twins``: for a CNN and the MLP with its unrolled hidden
    sizes (the same function class, different gauge dimension), the gain of the MLP minus the CNN's."""
    points, reps = [], []
    rng = np.random.default_rng(seed)
    for name, per in per_network.items():
        if not {"scalegmn-b", "gmn"} <= set(per) or name.endswith("-l1"):
            continue
        d = np.asarray(per["scalegmn-b"]["acc"]) - np.asarray(per["gmn"]["acc"])
        spec = counts[name]["spec"]
        clusters = counts[name].get("test_clusters")  # the checkpoints of one network move together
        points.append({"setting": name, "spec": spec, "family": NetworkSpec.from_text(spec).family,
                       "dim_gscale": gscale_dim(spec),
                       "gain": bootstrap_mean(d, n_boot=n_boot, seed=seed, clusters=clusters)})
        reps.append(_replicates(d, rng, n_boot))
    seeds = min((p["gain"]["seeds"] for p in points), default=1)
    twins = [{"cnn": points[i]["setting"], "mlp": points[j]["setting"],
              "dims": [points[i]["dim_gscale"], points[j]["dim_gscale"]],
              "gain_mlp_minus_cnn": _interval(reps[j] - reps[i], points[j]["gain"]["mean"] - points[i]["gain"]["mean"],
                                              seeds, 2)}
             for i, j in _twins(points)]
    dims = np.array([p["dim_gscale"] for p in points], dtype=np.float64)
    nan = {"mean": float("nan"), "ci": [float("nan"), float("nan")], "seeds": seeds, "n": len(points)}
    if len(set(dims.tolist())) < 2:
        return {"points": points, "slope": nan, "twins": twins,
                "note": "fewer than two distinct dim G_scale: no trend measured"}
    gains = np.array([p["gain"]["mean"] for p in points])
    slope = float(np.polyfit(dims, gains, 1)[0])
    rs = np.array([np.polyfit(dims, np.array([r[b] for r in reps]), 1)[0] for b in range(n_boot)])
    return {"points": points, "slope": _interval(rs, slope, seeds, len(points)), "twins": twins}


def sweep_claims(sweep: dict) -> list:
    """``gain-grows-with-gscale-dim`` (slope > 0) and, when the sweep has a CNN and its unrolled twin,
    ``twin-gain-exceeds-cnn`` (the twin's gain minus the CNN's > 0)."""
    from ...common.claims import interval_claim

    pts = {p["setting"]: [p["dim_gscale"], round(p["gain"]["mean"], 4)] for p in sweep["points"]}
    out = [interval_claim(
        "gain-grows-with-gscale-dim", "open question of the one-shot paper: the accuracy gain ScaleGMN-B minus GMN-B "
        "grows with the dimension of the scaling gauge (least-squares slope of the gain against dim G_scale, accuracy "
        "per dimension; points setting: [dim, gain])", sweep["slope"], ">", 0.0,
        measured={"slope": sweep["slope"]["mean"], **pts})]
    for t in sweep.get("twins", [])[:1]:
        out.append(interval_claim(
            "twin-gain-exceeds-cnn", f"the same function class at a larger gauge: the gain (ScaleGMN-B minus GMN-B) on "
            f"{t['mlp']} (the unrolled twin, dim {t['dims'][1]}) minus the gain on {t['cnn']} (dim {t['dims'][0]})",
            t["gain_mlp_minus_cnn"], ">", 0.0))
    return out
