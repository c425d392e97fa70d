"""Write the shipped models of the reference run to ``results/reference/models`` (issue 25).

    python tools/ship_models.py                      # every shipped model
    python tools/ship_models.py --only operator      # some of them (names or kinds)

Each model is the reference run's own, or retrained with the reference run's settings and seed where
the run did not keep it; both cases are checked against the committed result JSON and the check is
recorded in ``index.json`` (``reference_check``):

* ``operator-cnn1d-tanh``: the ScaleGMN-B operator (seed 0) of ``amortized``'s headroom setting, read
  from the operator cache (same cache key as the reference run: its per-network accuracies on the 64
  test networks must equal ``amortized.json``'s); ships those 64 test networks.
* ``accuracy-predictor-scalegmn`` and ``inr-classifier-scalegmn``: ScaleGMN seed 0 of ``invariant``,
  retrained with the reference settings (the run keeps predictions, not models); ships 64 (accuracy)
  and 100 (INRs) networks of the test split and records the retrained model's full test score beside
  the reference run's seed-0 score.
* ``residual-accuracy-predictor-scalegmn``: ScaleGMN seed 0 of ``residual`` (its first zoo, the residual Conv1d
  nets with BatchNorm), retrained and checked like the invariant ones; ships 64 test networks (``BlockWeights``).
* ``autoencoder-inr``: the INR autoencoder (seed 0) that ``merging`` saved, stored in half precision
  (the float32 file is 3.9 MB); ships 32 held-out INRs; the tolerance of its check is what half
  precision costs on them, measured here.

Needs the reference zoos (built by ``reproduce --reference`` into the cache). Writes atomically and
hashes every file (:mod:`scalegmn_lite.course.shipped` verifies them on load).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scalegmn_lite.common.io import atomic_write_json, save_tensors  # noqa: E402
from scalegmn_lite.course.shipped import (  # noqa: E402  # noqa: E402
    INDEX,
    Shipped,
    _build_model,
    check_shipped,
    load_shipped,
    models_dir,
    recompute,
)

REF = ROOT / "results" / "reference"


def _commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def _result(name: str) -> dict:
    return json.loads((REF / f"{name}.json").read_text())


def _source_commit(experiment: str) -> str:
    man = json.loads((REF / "manifest.json").read_text())
    src = man["per_experiment"][experiment].get("source") or {}
    return src.get("commit") or man["commit"]


def _write(out: Path, name: str, state: dict, meta: dict, heldout, extra: dict) -> dict:
    files = {}
    for part, tensors, m in (("model", state, meta),
                             ("heldout", {"flat": heldout.flatten().detach().cpu(), **extra},
                              {"spec": heldout.spec.to_text(), "input_shape": list(heldout.spec.input_shape or [])})):
        fname = f"{name}.pt" if part == "model" else f"{name}.heldout.pt"
        digest = save_tensors(out / fname, tensors, m)
        files[part] = {"file": fname, "sha256": digest, "bytes": (out / fname).stat().st_size}
    return files


def ship_operator(out: Path) -> dict:
    from scalegmn_lite.tasks.amortized.baselines import per_network
    from scalegmn_lite.tasks.amortized.operator import AmortizedOperator
    from scalegmn_lite.tasks.amortized.protocol import StudyConfig, operator_overrides, operator_path
    from scalegmn_lite.tasks.amortized.study import setting_data

    cfg = StudyConfig.reference_size(seed=0)
    s = next(x for x in cfg.settings if x.role == "headroom")
    d = setting_data(s, cfg, "cpu", False)
    kind = "scalegmn-b"
    ov = operator_overrides(kind, cfg.hidden_dim, cfg.num_layers, cfg.max_io, cfg.update_scale_init)
    path = operator_path(kind, ov, cfg.train_config(s.lam, 0, s.steps, augment=False), d["train"], d["tag"], None,
                         f"{s.name}-s0")
    if not path.is_file():
        raise SystemExit(f"{path}: the reference operator is not in the cache; run "
                         "`scalegmn-lite reproduce --reference --only amortized` first")
    op = AmortizedOperator.load(path)
    te = d["test"]
    with torch.no_grad():
        per = per_network(te, op(te), d["x_test"], d["y_test"])
    ref = _result("amortized")["per_network"][s.name]
    ref_acc, ref_init = np.array(ref[kind]["acc"][0]), np.array(ref["initial"]["acc"][0])
    diff = float(np.abs(per["acc"] - ref_acc).max())
    if diff > 1e-6:
        raise SystemExit(f"the cached operator does not reproduce amortized.json (max diff {diff}); not shipping it")
    meta = {"kind": "AmortizedOperator", "config": op.config.to_dict(), "trained_on": op.trained_on}
    extra = {"target": torch.as_tensor(ref_init), "reference": torch.as_tensor(ref_acc)}
    files = _write(out, "operator-cnn1d-tanh", op.state_dict(), meta, te, extra)
    return {"kind": "operator", **files, "experiment": "amortized", "commit": _source_commit("amortized"),
            "notebook": "07", "dataset": d["recipe"].dataset, "stored_dtype": "float32", "tolerance": 1e-6,
            "trained_on": f"{d['train'].batch_size} tanh CNNs of {d['recipe'].name} (reference size), "
                          f"{s.steps or cfg.steps} steps",
            "heldout_sample": f"the reference run's {te.batch_size} test networks (target: their accuracy before; "
                       "reference: after the one-shot update)",
            "reference_check": {"max_abs_diff_vs_result_json": diff, "mean_acc_before": float(ref_init.mean()),
                                "mean_acc_after": float(ref_acc.mean())}}


def _retrain_checked(data, cfg, p: dict, ref_pred: np.ndarray, regression: bool, experiment: str):
    """ScaleGMN seed 0 retrained on ``data`` with the run's settings ``p`` (one thread, as the run's workers); its
    predictions on the whole test split must equal the run's seed 0 ``ref_pred`` (to float rounding for a regression,
    exactly for classes), else nothing is shipped. Returns ``(model, predictions, score, the run's score, seconds)``."""
    from scalegmn_lite.tasks.invariant.fit import score as invariant_score
    from scalegmn_lite.tasks.invariant.study import _fit_one

    t0 = time.perf_counter()
    row, model = _fit_one(data, "scalegmn", 0, cfg, p["hidden"], p["layers"], "cpu", False)
    seconds = time.perf_counter() - t0
    mine = np.array(row["test_pred"])
    y = data.test[1].double().numpy()
    if regression:  # Kendall tau, as the study scores it
        yt = torch.as_tensor(y)
        score, ref_score = (invariant_score("regression", torch.as_tensor(v), yt) for v in (mine, ref_pred))
    else:
        score, ref_score = float((mine == y).mean()), float((ref_pred == y).mean())
    tol = 1e-5 if regression else 0.0
    worst = float(np.abs(mine - ref_pred).max()) if ref_pred.shape == mine.shape else float("inf")
    if worst > tol:
        raise SystemExit(f"ship_models: the retrained {experiment} model's test predictions differ from the reference "
                         f"run's seed 0 (max |difference| {worst:.3g} > {tol:g}): it is not the run's model, so it is "
                         f"not shipped. Rerun `scalegmn-lite reproduce --reference --only {experiment}` with this code "
                         "(or retrain with the run's exact settings and threads) and ship again")
    return model, mine, score, ref_score, seconds


def ship_residual(out: Path, n_keep: int = 64) -> dict:
    """ScaleGMN seed 0 of ``residual``'s first zoo (the residual Conv1d nets with BatchNorm), retrained with the
    reference settings and checked against the run's predictions; ships ``n_keep`` test networks."""
    from scalegmn_lite.experiments import residual as res
    from scalegmn_lite.experiments.invariant import task_checkpoints
    from scalegmn_lite.tasks.invariant.fit import FitConfig
    from scalegmn_lite.tasks.invariant.study import accuracy_task
    from scalegmn_lite.zoo import load_or_build
    from scalegmn_lite.zoo.recipes import get_reference_recipe

    p = res.REFERENCE
    name = p["zoos"][0]
    zoo = res.subsample(load_or_build(get_reference_recipe(name), progress=False), p["networks"].get(name), 0)
    data = accuracy_task(zoo, task_checkpoints(zoo, p["checkpoints"]), seed=0)
    cfg = FitConfig(epochs=p["epochs"], batch_size=32, lr=2e-3)
    ref_pred = np.array(_result("residual")["zoos"][name]["test_predictions"]["accuracy-prediction/scalegmn/s0"])
    model, mine, score, ref_score, seconds = _retrain_checked(data, cfg, p, ref_pred, True, "residual")
    gen = torch.Generator().manual_seed(0)
    keep = torch.randperm(data.test[0].batch_size, generator=gen)[:n_keep].sort().values
    extra = {"target": data.test[1][keep].double(), "reference": torch.as_tensor(ref_pred)[keep],
             "checkpoint": data.test_checkpoint[keep]}
    meta = {"kind": "invariant", "model": "scalegmn", "spec": data.spec.to_text(), "out_dim": 1,
            "hidden": p["hidden"], "layers": p["layers"]}
    files = _write(out, "residual-accuracy-predictor-scalegmn", model.state_dict(), meta, data.test[0][keep], extra)
    return {"kind": "residual-accuracy-predictor", **files, "experiment": "residual",
            "commit": _source_commit("residual"), "notebook": "09", "stored_dtype": "float32", "tolerance": 1e-5,
            "trained_on": f"{data.sizes()['train']} checkpoints of {data.n_train_networks} networks of the reference "
                          f"{name} zoo, seed 0, {cfg.epochs} epochs",
            "heldout_sample": f"{n_keep} of the {data.sizes()['test']} test networks (random, seed 0)",
            "reference_check": {"metric": "Kendall tau", "retrained_full_test": score,
                                "reference_run_seed0_full_test": ref_score, "prediction_agreement": None,
                                "max_abs_prediction_diff": float(np.abs(mine - ref_pred).max()),
                                "training_seconds": seconds,
                                "note": f"retrained at commit {_commit()[:7]} with the reference run's settings and "
                                        "seed 0, one thread (the run kept predictions, not models): compare its "
                                        "predictions with the run's seed 0 above"}}


def ship_invariant(out: Path, task_name: str, n_keep: int) -> dict:
    from scalegmn_lite.experiments import invariant as inv
    from scalegmn_lite.tasks.invariant.fit import FitConfig
    from scalegmn_lite.tasks.invariant.study import accuracy_task, inr_task

    p = inv.REFERENCE
    acc_task = task_name == "accuracy-prediction"
    if acc_task:
        cnn = inv.cnn_relu_zoo("cpu", False, True)
        data = accuracy_task(cnn, inv.task_checkpoints(cnn, p.get("checkpoints")), seed=0)
        cfg = FitConfig(epochs=p["epochs"], batch_size=32, lr=2e-3)
    else:
        data = inr_task(inv.inr_zoo("cpu", False, True), seed=0)
        cfg = FitConfig(epochs=p["inr_epochs"], batch_size=32, lr=2e-3)
    ref_pred = np.array(_result("invariant")["test_predictions"][f"{task_name}/scalegmn/s0"])
    model, mine, score, ref_score, seconds = _retrain_checked(data, cfg, p, ref_pred, acc_task, "invariant")
    gen = torch.Generator().manual_seed(0)
    keep = torch.randperm(data.test[0].batch_size, generator=gen)[:n_keep].sort().values
    ws = data.test[0][keep]
    # the reference figures shipped are the run's own predictions (checked equal to this model's above)
    extra = {"target": data.test[1][keep].double(), "reference": torch.as_tensor(ref_pred)[keep]}
    if acc_task:
        extra["checkpoint"] = data.test_checkpoint[keep]
    name = "accuracy-predictor-scalegmn" if acc_task else "inr-classifier-scalegmn"
    meta = {"kind": "invariant", "model": "scalegmn", "spec": data.spec.to_text(), "out_dim": data.out_dim,
            "hidden": p["hidden"], "layers": p["layers"]}
    files = _write(out, name, model.state_dict(), meta, ws, extra)
    metric = "Kendall tau" if acc_task else "accuracy"
    return {"kind": "accuracy-predictor" if acc_task else "inr-classifier", **files, "experiment": "invariant",
            "commit": _source_commit("invariant"), "notebook": "06", "stored_dtype": "float32",
            "tolerance": 1e-5 if acc_task else 0.0,
            "trained_on": f"{data.sizes()['train']} {'CNN checkpoints' if acc_task else 'INRs'} of the reference "
                          f"{'cnn1d-hp-mnist1d (ReLU)' if acc_task else 'inr-dws-digits'} zoo, seed 0, "
                          f"{cfg.epochs} epochs",
            "heldout_sample": f"{n_keep} of the {data.sizes()['test']} test networks (random, seed 0)",
            "reference_check": {"metric": metric, "retrained_full_test": score,
                                "reference_run_seed0_full_test": ref_score,
                                "prediction_agreement": float((mine == ref_pred).mean()) if not acc_task else None,
                                "max_abs_prediction_diff": float(np.abs(mine - ref_pred).max()),
                                "training_seconds": seconds,
                                "note": f"retrained at commit {_commit()[:7]} with the reference run's settings and "
                                        "seed 0, one thread (the run kept predictions, not models): compare its "
                                        "predictions with the run's seed 0 above"}}


def ship_autoencoder(out: Path, n_keep: int = 32) -> dict:
    from scalegmn_lite.experiments.merging import prepare, setups
    from scalegmn_lite.tasks.merging.autoencoder import load_autoencoder

    s = next(x for x in setups(True, True) if x.kind == "inr")
    prep = prepare(s, "cpu", False, 0, True, True)
    ae = load_autoencoder(REF / f"merging_ae_{s.name}.pt")
    ws = prep.test[:n_keep]
    res = _result("merging")["zoos"][s.name]
    ref_psnr = torch.tensor(res["reconstruction_per_network"]["decoded_psnr"][:n_keep], dtype=torch.float64)
    coords = prep.task.coords.detach().cpu()
    with torch.no_grad():
        full = prep.task.quality(ae.reconstruct(ws).to(dtype=ws.dtype), ws)["psnr"].double()
    if float((full - ref_psnr).abs().max()) > 1e-3:
        raise SystemExit(f"the saved autoencoder does not reproduce merging.json ({(full - ref_psnr).abs().max()})")
    half = {k: v.half() if v.is_floating_point() else v for k, v in ae.state_dict().items()}
    meta = {"kind": "autoencoder", "spec": ws.spec.to_text(), "config": ae.config.to_dict(),
            "stored_dtype": "float16"}
    name = f"autoencoder-{s.name}"
    # the reference figure of the held-out file is the float32 model's (the reference run's own)
    files = _write(out, name, half, meta, ws, {"target": ref_psnr, "reference": ref_psnr, "coords": coords})
    half_model = _build_model("autoencoder", meta, half)
    diff = float((recompute(Shipped(name, "autoencoder", half_model, ws, ref_psnr, ref_psnr, {"coords": coords}, {}))
                  - ref_psnr).abs().max())
    entry = {"kind": "autoencoder", **files, "experiment": "merging", "commit": _source_commit("merging"),
             "notebook": "08", "stored_dtype": "float16", "tolerance": float(f"{max(2 * diff, 1e-4):.1g}"),
             "trained_on": f"{prep.train.batch_size} INRs of the reference inr-dws-digits zoo (split by image), "
                           f"seed 0, {s.steps} steps",
             "heldout_sample": f"the first {n_keep} of the {prep.test.batch_size} held-out INRs (images never seen)",
             "reference_check": {"reference_run_heldout_psnr_all": res["reconstruction_test"]["decoded_psnr"],
                                 "half_precision_max_psnr_change_db": diff}}
    return entry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="operator, accuracy, inr, autoencoder")
    ap.add_argument("--out", type=Path, default=models_dir())
    args = ap.parse_args(argv)
    # one thread, as the reference run's worker processes trained (small kernels: a second thread buys
    # little, and on a shared machine it costs a lot)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    want = set(args.only or ("operator", "accuracy", "inr", "autoencoder", "residual"))
    path = args.out / INDEX
    index = json.loads(path.read_text())["models"] if path.is_file() else {}
    jobs = {"operator": ("operator-cnn1d-tanh", lambda: ship_operator(args.out)),
            "accuracy": ("accuracy-predictor-scalegmn", lambda: ship_invariant(args.out, "accuracy-prediction", 64)),
            "inr": ("inr-classifier-scalegmn", lambda: ship_invariant(args.out, "inr-classification", 100)),
            "autoencoder": ("autoencoder-inr", lambda: ship_autoencoder(args.out)),
            "residual": ("residual-accuracy-predictor-scalegmn", lambda: ship_residual(args.out))}
    for key, (name, job) in jobs.items():
        if key not in want:
            continue
        t0 = time.perf_counter()
        entry = job()
        entry["shipped_by"] = {"tool": "tools/ship_models.py", "commit": _commit()}
        index[name] = entry
        atomic_write_json(path, {"models": index, "about": "trained models of the reference run shipped with the "
                                 "course; see scalegmn_lite/course/shipped.py"})
        print(f"{name}: {entry['model']['bytes'] // 1024} KB model + {entry['heldout']['bytes'] // 1024} KB held-out "
              f"networks; check {entry['reference_check']} ({time.perf_counter() - t0:.0f} s)", flush=True)
    for name in index:
        r = check_shipped(load_shipped(name, args.out))
        print(f"{name}: reload check {r}", flush=True)
        if not r["agrees"]:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
