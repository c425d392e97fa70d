"""Re-judge committed results without retraining (issue 33). It sits beside :mod:`scalegmn_lite.cli`
(above ``experiments``): it reads every experiment's result file and writes ``REPORT.md`` as ``reproduce`` does.

A result file keeps what its claims are judged on (per-network predictions, per-network gains, per-pair
barriers). When the way claims are judged changes (a clustered bootstrap, a control every claim must
beat, model selection on validation), the claims are recomputed from those stored figures by
:func:`recompute_dir`, never by editing the JSON by hand. ``tools/recompute_claims.py`` is its command
line; it rewrites ``<experiment>.json`` and ``REPORT.md`` atomically and records in ``manifest.json``
(``"recomputed"``) which tool ran, on which commit, on which experiments and what it changed.

What a file does not hold is never invented: a figure that needs data an older file lacks (the
memorization controls of an operator run, the per-network predictions on gauge-transformed networks)
is reported as missing and the claim that needs it is inconclusive, saying why. Where a figure can be
rebuilt exactly from a zoo (the clusters of a split, a floor model fitted on training networks), it
is, after checking that the rebuilt split's targets equal the stored ones.

Per experiment:

* ``invariant``: :func:`~scalegmn_lite.experiments.invariant.judge` on the stored predictions; the
  clusters (``test_groups``) and the floor models are rebuilt from the zoo when the file lacks them;
* ``zoo``: :func:`~scalegmn_lite.experiments.zoo.zoo_claims`;
* ``amortized`` / ``gscale``: :mod:`scalegmn_lite.tasks.amortized.recompute`;
* ``merging``: :func:`scalegmn_lite.experiments.merging.recompute_result`;
* ``gauge``, ``distributed``: exact checks with nothing sampled; rerun them instead (seconds).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

__all__ = ["RECOMPUTABLE", "recompute_invariant", "recompute_result", "recompute_dir"]

RECOMPUTABLE = ("invariant", "zoo", "amortized", "gscale", "merging", "residual")


def _claims_json(claims) -> list[dict]:
    return [c.to_dict() if hasattr(c, "to_dict") else c for c in claims]


def recompute_invariant(result: dict, zoos: bool = True, n_boot: int | None = None) -> dict:
    """The invariant study's result, re-judged (:func:`~scalegmn_lite.experiments.invariant.judge`).
    ``zoos``: rebuild missing clusters and floor models from the (cached or built) zoos of the file's
    mode; the rebuilt test targets must equal the stored ones, else ``ValueError``."""
    from .experiments import invariant as inv
    from .tasks.invariant.study import accuracy_task, inr_task

    out = dict(result)
    missing = []
    if not out.get("test_groups") or not out.get("floors"):
        if not zoos:
            raise ValueError("recompute_invariant: this file has no test_groups/floors; allow rebuilding them from "
                             "the zoos (zoos=True) or rerun `reproduce --only invariant`")
        reference = result.get("mode") == "reference"
        cnn = inv.cnn_relu_zoo("cpu", False, reference)
        acc = accuracy_task(cnn, inv.task_checkpoints(cnn, result["settings"].get("checkpoints")), seed=0)
        inr = inr_task(inv.inr_zoo("cpu", False, reference), seed=0)
        for task, data in ((inv.A, acc), (inv.I, inr)):
            y = data.test[1].double().cpu().numpy()
            stored = np.asarray(result["test_targets"][task], dtype=np.float64)
            if y.shape != stored.shape or not np.allclose(y, stored, atol=1e-6):
                raise ValueError(f"recompute_invariant: the rebuilt {task} split does not match the stored test "
                                 "targets (another zoo or seed); rerun `reproduce --only invariant` instead")
        out["test_groups"] = {inv.A: np.asarray(acc.test_groups).tolist(), inv.I: np.asarray(inr.test_groups).tolist()}
        floors = {}
        for task, data in ((inv.A, acc), (inv.I, inr)):
            name, pred, detail = inv.floor_predictions(data)
            floors[task] = {"name": name, "test_pred": pred.tolist(), **detail}
        out["floors"] = floors
        missing.append("test_groups and floors rebuilt from the zoo (targets checked equal)")
    if not out.get("test_predictions_gauge"):
        missing.append("per-network predictions on gauge-transformed test networks: gauge-test-moves-baselines "
                       "cannot be decided from this file (rerun the study)")
    out.update(inv.judge(out) if n_boot is None else inv.judge(out, n_boot))
    out["claims"] = _claims_json(out["claims"])
    out.setdefault("recomputed", {})["notes"] = missing
    return out


def amortized_controls_from_zoo(result: dict) -> dict:
    """A stored ``amortized.json`` with the memorization controls its run did not compute, computed on the
    rebuilt split of its headroom setting (:func:`~scalegmn_lite.tasks.amortized.study.setting_data` with
    the file's own config). The rebuilt test networks must score the stored per-network initial
    accuracies, else ``ValueError``.

    The best training network, the nearest one and the mean of the k best need no operator output. The
    noise control (the input plus noise of the operator's update size) needs the update norms: a file
    that keeps no operator output still keeps, in its headroom diagnostics, the first seed's relative
    update size ``||theta' - theta|| / ||theta||`` per test network (rounded to 1e-6), so the control is
    rebuilt from those (one seed, the norm ``relative * ||theta||``). A file without them leaves the noise
    control missing (NaN): a claim that needs it can then only be inconclusive or refuted by another
    control, never hold."""
    import copy

    from .tasks.amortized.memorization import CONTROLS, memorization_controls, noise_of_norm
    from .tasks.amortized.operator import network_metrics
    from .tasks.amortized.recompute import study_result_from_json
    from .tasks.amortized.study import MEMORIZATION_OPERATOR, _headroom, setting_data

    res = study_result_from_json(result)
    head = _headroom(res)
    have = (result.get("memorization") or {}).get(head.name, {}) if head is not None else {}
    if head is None or set(CONTROLS) <= set(have):
        return result
    rel = (((result.get("diagnostics") or {}).get(head.name) or {}).get("update_size") or {}).get(
        MEMORIZATION_OPERATOR, {}).get("per_network")
    if have and rel is None:
        return result
    d = setting_data(head, res.config, device="cpu", progress=False)
    te, xt, yt = d["test"], d["x_test"], d["y_test"]
    stored = np.asarray(result["per_network"][head.name]["initial"]["acc"], dtype=np.float64)
    now = network_metrics(te, xt, yt)["acc"].double().cpu().numpy()
    if now.shape != stored.shape[-1:] or not np.allclose(stored, now[None], atol=1e-4):
        raise ValueError("amortized_controls_from_zoo: the rebuilt headroom test networks do not score the stored "
                         "initial accuracies (another zoo or split); rerun `reproduce --only amortized` instead")
    out = copy.deepcopy(result)
    memo_out = out.setdefault("memorization", {}).setdefault(head.name, {})
    if not have:
        memo = memorization_controls(d["train"], d["val"], te, d["x"], d["y"], xt, yt, outputs=[],
                                     seed=res.config.seed, val_images=res.config.val_images,
                                     val_networks=res.config.val_networks)
        for c, v in memo.items():
            if c != "noise-perturbed-input":
                memo_out[c] = {"per_network": np.round(np.asarray(v["acc"], dtype=np.float64), 5).tolist(),
                               "detail": dict(v["detail"], operator=MEMORIZATION_OPERATOR,
                                              computed_by="tools/recompute_claims.py from the rebuilt split (test "
                                                          "networks checked against the stored initial accuracies)")}
    if rel is not None and "noise-perturbed-input" not in have:
        rel = np.asarray(rel, dtype=np.float64)
        if rel.shape != (te.batch_size,):
            raise ValueError(f"amortized_controls_from_zoo: {rel.shape[0]} stored update sizes for "
                             f"{te.batch_size} test networks; rerun `reproduce --only amortized` instead")
        norm = rel * te.flatten().double().norm(dim=1).cpu().numpy()
        noisy = noise_of_norm(te, norm, res.config.seed * 1000)  # the first seed's, as in the study
        acc = network_metrics(noisy, xt, yt)["acc"].double().cpu().numpy()
        memo_out["noise-perturbed-input"] = {
            "per_network": np.round(acc[None], 5).tolist(),
            "detail": {"operator": MEMORIZATION_OPERATOR, "seed": int(res.config.seed),
                       "update_norm": np.round(norm[None], 6).tolist(),
                       "computed_by": "tools/recompute_claims.py from the rebuilt split and the first seed's "
                                      "relative update sizes stored in the headroom diagnostics (one seed: the "
                                      "file keeps no operator output)"}}
    return out


def recompute_result(name: str, result: dict, zoos: bool = True, n_boot: int | None = None) -> dict:
    """``result`` (a stored ``<name>.json``) with every interval and claim recomputed (``n_boot``: the
    invariant study's bootstrap replicates, default :data:`~scalegmn_lite.common.stats.N_BOOT`)."""
    if name == "invariant":
        return recompute_invariant(result, zoos, n_boot)
    if name == "zoo":
        from .experiments.zoo import reported_trained_recipes, zoo_claims

        out = dict(result)
        out["claims"] = _claims_json(zoo_claims(result, reported_trained_recipes(), result.get("mode") or "quick"))
        return out
    if name == "amortized":
        from .tasks.amortized.recompute import recompute_result as amortized

        return amortized(amortized_controls_from_zoo(result) if zoos else result)
    if name == "gscale":
        from .tasks.amortized.recompute import recompute_gscale_result

        return recompute_gscale_result(result)
    if name == "merging":
        from .experiments.merging import recompute_result as merging

        return merging(result)
    if name == "residual":
        from .common.stats import N_BOOT
        from .experiments.residual import judge

        out = dict(result)
        judged = judge(result, n_boot or N_BOOT)
        out.update(judged, claims=_claims_json(judged["claims"]))
        return out
    raise ValueError(f"recompute: no recomputation for experiment {name!r} (recomputable: {', '.join(RECOMPUTABLE)}); "
                     f"gauge and distributed are exact checks: rerun them with `reproduce --only {name}`")


def _status_changes(old: list[dict], new: list[dict]) -> list[dict]:
    before = {c["id"]: c for c in old}
    out = []
    for c in new:
        b = before.get(c["id"])
        out.append({"id": c["id"], "old_status": b["status"] if b else None, "new_status": c["status"],
                    "old_ci": b.get("ci") if b else None, "new_ci": c.get("ci"), "kind": c.get("kind")})
    return out


def recompute_dir(out: str | Path, only: list[str] | None = None, zoos: bool = True, commit: str = "",
                  n_boot: int | None = None) -> dict:
    """Recompute the claims of every result file in ``out`` (or of ``only``), rewrite them and
    ``REPORT.md`` atomically, and record the run in ``manifest.json`` under ``"recomputed"``.
    Returns ``{experiment: [{"id", "old_status", "new_status", "old_ci", "new_ci", "kind"}]}``."""
    from .cli import write_report
    from .common.io import atomic_write_json, result_files

    out = Path(out)
    names = [p.stem for p in result_files(out)]
    todo = [n for n in (only or names) if n in RECOMPUTABLE]
    unknown = [n for n in (only or []) if n not in names]
    if unknown:
        raise ValueError(f"recompute: {out} has no result file for {', '.join(unknown)} (has: {', '.join(names)})")
    changes = {}
    for name in todo:
        path = out / f"{name}.json"
        old = json.loads(path.read_text())
        new = recompute_result(name, old, zoos, n_boot)
        new["claims"] = _claims_json(new["claims"])
        changes[name] = _status_changes(old.get("claims", []), new["claims"])
        rec = {"tool": "tools/recompute_claims.py", "commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "notes": (new.get("recomputed") or {}).get("notes", [])}
        new["recomputed"] = rec
        atomic_write_json(path, new)
    results = {p.stem: json.loads(p.read_text()) for p in result_files(out)}
    write_report(out, results)
    man_path = out / "manifest.json"
    if man_path.is_file() and todo:
        man = json.loads(man_path.read_text())
        man.setdefault("recomputed", []).append(
            {"tool": "tools/recompute_claims.py", "commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "experiments": todo,
             "what": "claims and intervals recomputed from the stored figures (no retraining): clustered "
                     "bootstrap, validation selection, controls, findings and checks apart"})
        atomic_write_json(man_path, man)
    return changes
