"""The protocol of the fully-amortized optimization study (issue 5), shared by ``reproduce`` and
notebook 07.

A *setting* is a zoo (one activation), an L1 weight ``lam`` and a list of operator kinds. For each:

1. initial networks: the *final* networks of a zoo with headroom (``StudyConfig.start="final"``, the
   published protocol; ``"intermediate"`` takes early/intermediate checkpoints instead), split into
   train/val/test *by network*, evaluated on held-out images;
2. operators ``h`` (:class:`~scalegmn_lite.tasks.amortized.operator.AmortizedOperator`) trained on the train split
   with ``L = lam ||h(theta)||_1 + CE(f_{h(theta)}(x), y)`` (cached by a config hash);
3. baselines from the *same* test ``theta`` on the *same* objective: vectorized SGD
   (:func:`~scalegmn_lite.zoo.train.train_batched`, plain SGD) for 25/50/100/150 epochs over the
   training images, and Adam with its learning rate tuned on validation networks;
4. one row per method with the published columns (:data:`COLUMNS`);
5. on the headroom setting, the memorization controls (issue 33, :mod:`.memorization`) on the same test
   networks and test images as ScaleGMN-B's outputs (``StudyResult.memorization``; JSON ``memorization``).

Intervals resample test *networks* (with ``start="intermediate"`` the checkpoints of one network are
one cluster: ``counts[setting]["test_clusters"]``).
:func:`scalegmn_lite.tasks.amortized.recompute.recompute_result` re-judges a stored JSON.

Operator kinds (:data:`KINDS`): ``scalegmn-b`` / ``scalegmn-f`` (bidirectional / forward ScaleGMN,
equivariant to the activation's gauge group), ``gmn`` (symmetry-broken: permutation-only, inputs
normalised, hidden size adjusted to match ScaleGMN-B's parameter count) and ``no-canon`` (the ablation:
the same ``Gamma x * phi(...)`` form in permutation mode without the scale-invariant views and without
input normalisation, also parameter matched).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ...common.claims import claim, combine_status, interval_claim
from ...common.io import atomic_write_json
from ...common.stats import bootstrap_mean, decide
from ...weightspace.spec import NetworkSpec
from ...weightspace.weights import WeightSpace
from ...zoo import ZooRecipe, load_or_build
from ...zoo.data import Dataset, load_dataset
from ...zoo.train import init_weights, train_batched
from .operator import AmortizedOperator, network_metrics, timed_apply
from .protocol import (
    AUGMENTED_KINDS,
    COLUMNS,
    STUDY_FORMAT,
    Setting,
    StudyConfig,
    count_params,
    match_hidden,
    operator_overrides,
    operator_path,
    split_initial,
    train_or_load_operator,
)

__all__ = ["StudyResult", "setting_data", "run_setting", "regime_table", "width_transfer", "run_study",
           "compute_claims", "save_json"]


def _data(recipe: ZooRecipe, device) -> Dataset:
    data = load_dataset(recipe.dataset, device=device)
    return data.subset(n_train=recipe.train_size) if recipe.train_size is not None else data


def _stack(runs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-network figures of several seeds -> ``{metric: [S, B]}``."""
    return {k: np.stack([r[k] for r in runs]) for k in runs[0]}


def _row(setting: str, method: str, per: dict[str, np.ndarray], seconds: float, seconds_single: float | None,
         params: int | None = None) -> dict:
    return {"setting": setting, "method": method, "mean_acc": float(per["acc"].mean()),
            "max_acc": float(per["acc"].max()), "test_loss": float(per["loss"].mean()),
            "l1_reduction_pct": float(per["l1_red"].mean()), "near_zero_frac": float(per["near_zero"].mean()),
            "seconds_per_network": float(seconds), "params": params, "seeds": int(per["acc"].shape[0]),
            "seconds_per_network_single": None if seconds_single is None else float(seconds_single)}


def _train_operator_job(kind, overrides, tr, x, y, train_cfg, tag, name, cache, monitor=None, select=None) -> dict:
    """One operator of :func:`run_setting`, trained (and saved to the operator cache) in a worker
    process; returns its training record."""
    _, rec = train_or_load_operator(kind, overrides, tr, x, y, train_cfg, tag, "cpu", False, cache, name=name,
                                    monitor=monitor, select=select)
    return rec


def setting_data(setting: Setting, cfg: StudyConfig, device=None, progress: bool = True,
                 cache: str | Path | None = None) -> dict:
    """The networks and data of one setting: the zoo (one activation, diverged networks dropped), its
    train/val/test split (:func:`~scalegmn_lite.tasks.amortized.protocol.split_initial`), the training
    and test images, the cache tag and the monitored sets of operator training: ``"val"`` (the first
    ``cfg.val_networks`` validation networks on the first ``cfg.val_images`` *training* images: model
    selection, by the accuracy gain or, in an L1 setting, by the decrease of the objective: ``select``),
    and for the headroom setting with ``cfg.diagnostics`` also ``"train"`` (as many training
    networks on the same images: the in-sample gain) and ``"test"`` (the test networks on the test
    images: recorded for the steps curve, never used to choose anything)."""
    device = torch.device(device or "cpu")
    recipe = setting.recipe(cfg.full, cfg.reference)
    zoo = load_or_build(recipe, device=device, progress=progress, cache=cache).where(activation=setting.activation)
    if "diverged" in zoo.metadata:
        zoo = zoo.filter(lambda df: ~df["diverged"].astype(bool))
    data = _data(recipe, device)
    tr, va, te = split_initial(zoo, cfg.split, cfg.seed, cfg.max_test_networks, device=device, start=cfg.start)
    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
    xv, yv = x[:cfg.val_images], y[:cfg.val_images]
    monitor = {}
    if va.batch_size:
        monitor["val"] = (va[:cfg.val_networks], xv, yv)
    if cfg.diagnostics and setting.role == "headroom":
        monitor["train"] = (tr[:cfg.val_networks], xv, yv)
        monitor["test"] = (te, xt, yt)
    # the kept step: best validation accuracy gain; with an L1 term, best decrease of the objective
    select = None if "val" not in monitor else "val_objective" if setting.lam > 0 else "val"
    tag = f"{recipe.name}-{recipe.hash()}-{setting.activation}"
    clusters = _row_clusters(zoo, cfg.start, te.batch_size)
    if cfg.eval_every:
        tag += f"-sel{cfg.val_networks}x{cfg.val_images}-{'+'.join(sorted(monitor))}"
        tag += "-objective" if select == "val_objective" else ""
    return {"zoo": zoo, "recipe": recipe, "data": data, "train": tr, "val": va, "test": te, "x": x, "y": y,
            "x_test": xt, "y_test": yt, "monitor": monitor, "select": select, "tag": tag, "clusters": clusters}


def _row_clusters(zoo, start: str, n_rows: int) -> list[int] | None:
    """The network of every test row: ``None`` with ``start="final"`` (one row per network: rows are
    independent), else the network id of each of the network-major checkpoint rows of
    :func:`~scalegmn_lite.tasks.amortized.protocol.initial_networks` (the bootstrap resamples a
    network's checkpoints together)."""
    if start == "final":
        return None
    mid = [c for c in zoo.checkpoints[:-1] if c > 0]
    per = len(mid or list(zoo.checkpoints[:-1]) or [zoo.checkpoints[-1]])
    return (np.arange(n_rows) // per).astype(int).tolist()


def train_operators_parallel(jobs: list[tuple], device, workers: int | str | None = None) -> dict:
    """Train the operators of ``jobs`` (argument tuples of :func:`_train_operator_job`) that are not
    cached yet, side by side in worker processes when cores are idle
    (:func:`~scalegmn_lite.common.parallel.plan_workers`; CPU only); each lands in the operator cache,
    where the caller's :func:`train_or_load_operator` finds it. Returns ``{(kind, job name): record}``
    of the operators trained here (the name tells a size-curve run from the main run of the same kind and
    seed), empty when the plan is one worker: the caller trains them itself."""
    from ...common.parallel import plan_workers, run_jobs

    todo = [j for j in jobs if not _operator_path(*j).exists()]
    est = sum(j[5].steps for j in todo) * SECONDS_PER_STEP
    n = plan_workers(len(todo), workers, est_seconds=est, device=device)
    if n <= 1:
        return {}
    recs = run_jobs(_train_operator_job, todo, n, names=[f"operator {j[0]} {j[7]}" for j in todo])
    return {(j[0], j[7]): r for j, r in zip(todo, recs)}


#: the operator whose held-out outputs the memorization controls are compared with (issue 33)
MEMORIZATION_OPERATOR = "scalegmn-b"

#: rough seconds per step of a quick-size operator (hidden 16, 8 networks; bench_training.py), for
#: deciding whether worker processes pay for their start-up
SECONDS_PER_STEP = 0.05


def _operator_path(kind, overrides, tr, x, y, train_cfg, tag, name, cache, *_monitor) -> Path:
    return operator_path(kind, overrides, train_cfg, tr, tag, cache, name)


def run_setting(setting: Setting, cfg: StudyConfig, device=None, progress: bool = True,
                cache: str | Path | None = None, workers: int | str | None = None) -> dict:
    """Everything for one setting: rows (means over seeds and test networks), per-network figures
    ``{method: {metric: [S, B]}}``, the accuracy-against-time data, operator records and the
    weights (initial, per method; first seed) of the test networks, plus the trained operators.
    ``workers``: processes for training the operators side by side (default ``SCALEGMN_LITE_WORKERS``,
    else ``"auto"``: the idle cores; :mod:`scalegmn_lite.common.parallel`); results do not depend on it."""
    from .baselines import cached_baseline, one_at_a_time_seconds, per_network, tune_adam_lr

    device = torch.device(device or "cpu")
    d = setting_data(setting, cfg, device, progress, cache)
    zoo, recipe, data, tr, va, te = d["zoo"], d["recipe"], d["data"], d["train"], d["val"], d["test"]
    x, y, xt, yt, tag, monitor = d["x"], d["y"], d["x_test"], d["y_test"], d["tag"], d["monitor"]
    select = d["select"]
    per = {"initial": _stack([per_network(te, te, xt, yt)])}
    rows = [_row(setting.name, "initial", per["initial"], 0.0, 0.0)]
    weights = {"initial": te}
    records, ops = {}, {}
    base = operator_overrides("scalegmn-b", cfg.hidden_dim, cfg.num_layers, cfg.max_io)
    target = count_params(AmortizedOperator(**base))
    timing: dict = {"operators": {}, "sgd": [], "adam": []}
    hidden = {kind: cfg.hidden_dim if kind == "scalegmn-b" else match_hidden(kind, target, cfg.num_layers, cfg.max_io)
              for kind in setting.kinds}
    def tcfg(kind, seed):
        return cfg.train_config(setting.lam, seed, setting.steps, augment=kind in AUGMENTED_KINDS)

    jobs = [(kind, operator_overrides(kind, hidden[kind], cfg.num_layers, cfg.max_io, cfg.update_scale_init), tr, x, y,
             tcfg(kind, seed), tag, f"{setting.name}-s{seed}", cache, monitor, select)
            for kind in setting.kinds for seed in cfg.seeds]
    headroom = setting.role == "headroom"
    curve_jobs = _curve_jobs(setting, cfg, tr, x, y, tag, cache, monitor) if headroom else []
    pretrained = train_operators_parallel(jobs + curve_jobs, device, workers)
    tr_in = tr[:te.batch_size]
    initial_in = per_network(tr_in, tr_in, xt, yt)["acc"] if headroom else None
    in_sample: dict[str, np.ndarray] = {}
    op_outputs: dict[str, list[WeightSpace]] = {}
    for kind in setting.kinds:
        h = hidden[kind]
        ov = operator_overrides(kind, h, cfg.num_layers, cfg.max_io, cfg.update_scale_init)
        runs, secs, inside = [], [], []
        for seed in cfg.seeds:
            op, rec = train_or_load_operator(kind, ov, tr, x, y, tcfg(kind, seed), tag, device,
                                             progress, cache, name=f"{setting.name}-s{seed}", monitor=monitor,
                                             select=select)
            rec = pretrained.get((kind, f"{setting.name}-s{seed}"), rec)  # trained in a worker: not "cached"
            out, sec = timed_apply(op, te)
            out.check_finite(f"{setting.name}/{kind} seed {seed} proposals")
            runs.append(per_network(te, out, xt, yt))
            if headroom and kind == MEMORIZATION_OPERATOR:
                op_outputs.setdefault(kind, []).append(out.detach())
            if setting.role == "headroom":  # the same number of *training* networks, on the test images
                with torch.no_grad():
                    inside.append(per_network(tr_in, op(tr_in), xt, yt)["acc"] - initial_in)
            secs.append(sec)
            # the operator's output for the validation networks, scored on the *test* images (a monitor,
            # never used to choose anything; older result files call it "val_acc")
            rec = dict(rec, hidden_dim=h, seed=seed, val_networks_test_images_acc=None)
            if va.batch_size:
                with torch.no_grad():
                    rec["val_networks_test_images_acc"] = float(network_metrics(op(va), xt, yt)["acc"].mean())
            records[f"{kind}/s{seed}"] = rec
            if seed == cfg.seeds[0]:
                ops[kind], weights[kind] = op, out.detach()
                k = max(1, min(cfg.timing_networks, te.batch_size))
                _, single = timed_apply(op, te[:k], batch_size=1)  # one network at a time
        per[kind] = _stack(runs)
        if inside:
            in_sample[kind] = np.stack(inside)
        rows.append(_row(setting.name, kind, per[kind], float(np.mean(secs)), single, rec["params"]))
        timing["operators"][kind] = {"seconds_single": single, "seconds_vectorized": float(np.mean(secs)),
                                     "mean_acc": rows[-1]["mean_acc"], "test_loss": rows[-1]["test_loss"]}
    baselines = [("sgd", cfg.sgd_lr, cfg.sgd_momentum)] if cfg.baselines else []
    tuning = None
    if cfg.baselines and cfg.adam_lrs and setting.lam == 0 and va.batch_size:
        # tuned on at most max_test_networks validation networks (the zoos hold thousands; the cost of
        # tuning is that of SGD on as many networks as the test split)
        va_tune = va[:cfg.max_test_networks] if cfg.max_test_networks else va
        lr, scores = tune_adam_lr(va_tune, x, y, cfg.adam_lrs, cfg.adam_tune_epochs, setting.lam, cfg.sgd_batch,
                                  cfg.seed, progress)
        tuning = {"chosen_lr": lr, "val_accuracy_by_lr": scores, "epochs": cfg.adam_tune_epochs,
                  "networks": va_tune.batch_size}
        baselines.append(("adam", lr, 0.0))
    curve = {0: float(rows[0]["mean_acc"])}
    for opt, lr, mom in baselines:
        res, sec = cached_baseline(te, x, y, cfg.sgd_epochs, setting.lam, lr, cfg.sgd_batch, opt, mom, cfg.seed, tag,
                                   STUDY_FORMAT, progress, cache)
        epoch_single = one_at_a_time_seconds(te, x, y, setting.lam, lr, cfg.sgd_batch, opt, mom, cfg.timing_networks)
        for e, w in res.items():
            name = f"{opt}-{e}"
            per[name] = _stack([per_network(te, w, xt, yt)])
            # time per network for e epochs: the vectorized run's time scaled by e / max epochs;
            # one at a time: one measured epoch times e
            r = _row(setting.name, name, per[name], sec * e / max(cfg.sgd_epochs), epoch_single * e)
            rows.append(r)
            timing[opt].append({"epochs": e, "seconds_single": epoch_single * e,
                                "seconds_vectorized": r["seconds_per_network"], "mean_acc": r["mean_acc"],
                                "test_loss": r["test_loss"]})
            if opt == "sgd":
                curve[e] = r["mean_acc"]
        weights[f"{opt}-{max(cfg.sgd_epochs)}"] = res[max(cfg.sgd_epochs)]
    memo = None
    if headroom and MEMORIZATION_OPERATOR in op_outputs:
        from .memorization import memorization_controls

        memo = memorization_controls(tr, va, te, x, y, xt, yt, op_outputs[MEMORIZATION_OPERATOR], seed=cfg.seed,
                                     val_images=cfg.val_images, val_networks=cfg.val_networks)
        memo = {c: dict(v, detail=dict(v["detail"], operator=MEMORIZATION_OPERATOR)) for c, v in memo.items()}
    diag = None
    if headroom and cfg.diagnostics:
        diag = _diagnostics(setting, cfg, d, per, in_sample, records, weights, curve_jobs, device, progress)
    return {"setting": setting, "rows": rows, "curve": curve, "records": records, "weights": weights, "ops": ops,
            "test": te, "data": data, "per_network": per, "timing": timing, "adam_tuning": tuning,
            "diagnostics": diag, "memorization": memo,
            "counts": {"train": tr.batch_size, "val": va.batch_size, "test": te.batch_size,
                       "spec": zoo.spec.to_text(), "zoo": recipe.name, "zoo_networks": len(zoo),
                       "test_clusters": d["clusters"]}}


def _curve_jobs(setting: Setting, cfg: StudyConfig, tr: WeightSpace, x, y, tag: str, cache,
                monitor: dict) -> list[tuple]:
    """The operator jobs of the size curve (``cfg.curve_sizes`` training networks and all of them,
    ScaleGMN-B, first seed, ``cfg.curve_steps`` steps, no selection), monitored on their own first
    training networks (in-sample), the validation and the test networks. Empty without diagnostics."""
    if not (cfg.diagnostics and cfg.eval_every):
        return []
    sizes = sorted({n for n in cfg.curve_sizes if n < tr.batch_size} | {tr.batch_size})
    ov = operator_overrides("scalegmn-b", cfg.hidden_dim, cfg.num_layers, cfg.max_io, cfg.update_scale_init)
    tc = cfg.train_config(setting.lam, cfg.seeds[0], cfg.curve_steps)
    out = []
    for n in sizes:
        sub = tr[:n]
        mon = dict(monitor, train=(sub[:cfg.val_networks], *monitor["train"][1:]))
        out.append(("scalegmn-b", ov, sub, x, y, tc, f"{tag}-curve", f"{setting.name}-n{n}", cache, mon, None))
    return out


def _diagnostics(setting: Setting, cfg: StudyConfig, d: dict, per: dict, in_sample: dict, records: dict,
                 weights: dict, curve_jobs: list, device, progress: bool) -> dict:
    """The headroom setting's diagnostics (:mod:`~scalegmn_lite.tasks.amortized.diagnostics`)."""
    from .diagnostics import calibration_control, size_curve, steps_curve, update_size, who_gains

    te, xt, yt, x, y = d["test"], d["x_test"], d["y_test"], d["x"], d["y"]
    out: dict = {"setting": setting.name, "steps_curve": {}, "in_sample": {}, "update_size": {}, "calibration": {}}
    for kind in setting.kinds:
        recs = [records[f"{kind}/s{s}"] for s in cfg.seeds]
        out["steps_curve"][kind] = steps_curve(recs)
        out["in_sample"][kind] = {"acc_gain": np.round(in_sample[kind], 5).tolist(),
                                  "mean": float(in_sample[kind].mean()),
                                  "held_out_mean": float((per[kind]["acc"] - per["initial"]["acc"]).mean())}
        u = update_size(te, weights[kind])
        out["update_size"][kind] = {"per_network": np.round(u, 6).tolist(), "median": float(np.median(u)),
                                    "mean": float(u.mean())}
        cal = calibration_control(te, weights[kind], x[:cfg.val_images], y[:cfg.val_images], xt, yt)
        out["calibration"][kind] = {k: (np.round(v, 5).tolist() if isinstance(v, np.ndarray) else v)
                                    for k, v in cal.items()}
    sizes = {}
    for job in curve_jobs:
        _, rec = train_or_load_operator(*job[:7], device, progress, job[8], name=job[7], monitor=job[9])
        sizes[job[2].batch_size] = rec
    out["size_curve"] = size_curve(sizes) if sizes else []
    out["overfit_control"] = out["size_curve"][0] if out["size_curve"] else None
    _, _, te_zoo = d["zoo"].split(cfg.split, seed=cfg.seed)
    md = te_zoo.metadata.iloc[:te.batch_size].reset_index(drop=True)
    gain = (per["scalegmn-b"]["acc"] - per["initial"]["acc"]).mean(0) if "scalegmn-b" in per else None
    # the metadata rows belong to the test networks only if split_initial dropped none of them (and with
    # start="final" only): check the weights themselves
    aligned = (cfg.start == "final" and len(md) == te.batch_size
               and torch.equal(te_zoo.weights(device=te.device)[:te.batch_size].flatten(), te.flatten()))
    if gain is not None and aligned:
        out["who_gains"] = who_gains(gain, md, per["initial"]["acc"][0])
        out["who_gains"]["per_network"] = {"gain": np.round(gain, 5).tolist(),
                                           **{c: md[c].tolist() for c in ("train_fraction", "lr", "init_scale",
                                                                          "weight_decay", "optimizer") if c in md}}
    return out


# ---------------------------------------------------------------------- transfer
def width_transfer(op: AmortizedOperator, test: WeightSpace, data: Dataset, archs: Sequence[str], n: int = 12,
                   epochs: int = 1, lr: float = 0.05, seed: int = 0) -> list[dict]:
    """Apply ``op`` (trained on ``test``'s architecture) in one batch to ``test`` and to ``n`` networks
    of each other architecture in ``archs`` (trained ``epochs`` epochs of SGD from scratch, so they
    have room to improve). Returns one record per architecture: initial and one-shot accuracy."""
    pools = [test]
    for a in archs:
        spec = NetworkSpec.from_text(a)
        w0 = init_weights(spec, [seed * 1000 + i for i in range(n)], device=test.device)
        res = train_batched(w0, (data.x_train, data.y_train), epochs, lr, 0.0, 100,
                            generator=torch.Generator().manual_seed(seed), progress=False)
        pools.append(res.ws)
    with torch.no_grad():
        outs = op(pools)
    out = []
    for i, (w, o) in enumerate(zip(pools, outs)):
        a0 = network_metrics(w, data.x_test, data.y_test)["acc"].mean()
        a1 = network_metrics(o, data.x_test, data.y_test)["acc"].mean()
        out.append({"arch": w.spec.to_text(), "seen_in_training": i == 0, "networks": w.batch_size,
                    "initial_acc": float(a0), "one_shot_acc": float(a1), "gain": float(a1 - a0)})
    return out


def _cross_family(op: AmortizedOperator, res: dict, name: str) -> dict:
    te, data = res["test"], res["data"]
    with torch.no_grad():
        out = op(te)
    a0 = float(network_metrics(te, data.x_test, data.y_test)["acc"].mean())
    a1 = float(network_metrics(out, data.x_test, data.y_test)["acc"].mean())
    own = next(r["mean_acc"] for r in res["rows"] if r["method"] == "scalegmn-b")
    return {"transfer": name, "target": res["counts"]["spec"], "initial_acc": a0, "one_shot_acc": a1,
            "own_operator_acc": own, "gain": a1 - a0}


# ---------------------------------------------------------------------- the study
@dataclass
class StudyResult:
    """Tables and artifacts of :func:`run_study`. ``table``: :data:`COLUMNS` (means over seeds and
    test networks); ``training``: one row per operator and seed; ``curves``: setting -> {epochs:
    mean SGD test accuracy} (0 = initial); ``per_network``: setting -> method -> metric -> ``[S, B]``
    (``S`` seeds, 1 for the deterministic baselines; the same ``B`` test networks everywhere);
    ``timing``: setting -> the accuracy-against-time data (operators as points, SGD and Adam as
    curves, seconds per network one at a time and vectorized); ``transfer``: width/depth and
    CNN->MLP transfer records; ``weights``: setting -> method -> WeightSpace of the test networks;
    ``memorization``: setting -> control -> ``{"acc": [S or 1, B], "detail"}`` (headroom only)."""

    config: StudyConfig
    table: pd.DataFrame
    training: pd.DataFrame
    curves: dict[str, dict[int, float]]
    transfer: list[dict]
    counts: dict[str, dict]
    weights: dict[str, dict[str, WeightSpace]]
    ops: dict[str, dict[str, AmortizedOperator]]
    seconds: float = 0.0
    per_network: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    adam_tuning: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    #: setting -> control -> ``{"acc": [S or 1, B], "detail": {...}}`` (:mod:`.memorization`; headroom only)
    memorization: dict = field(default_factory=dict)

    def clusters(self, setting: str) -> list | None:
        """The network id of every test row of ``setting`` (``None``: one row per network)."""
        return (self.counts.get(setting) or {}).get("test_clusters")

    def intervals(self) -> dict:
        """setting -> method -> metric -> ``{"mean", "ci", "seeds", "n", "clusters"}`` (two-way bootstrap
        over seeds and test networks; the checkpoints of one network move together)."""
        return {s: {m: {k: bootstrap_mean(v, clusters=self.clusters(s)) for k, v in d.items() if k != "near_zero"}
                    for m, d in per.items()}
                for s, per in self.per_network.items()}

    def memorization_json(self) -> dict:
        """setting -> control -> ``{"accuracy": interval over seeds x test networks, "per_network":
        [S or 1][B] test accuracy, "detail": {...}}``."""
        return {s: {c: {"accuracy": bootstrap_mean(v["acc"], clusters=self.clusters(s)),
                        "per_network": np.round(np.asarray(v["acc"], dtype=np.float64), 5).tolist(),
                        "detail": _jsonable(v.get("detail", {}))}
                    for c, v in mem.items()}
                for s, mem in self.memorization.items()}

    def to_json(self) -> dict:
        cfg = asdict(replace(self.config, settings=()))
        cfg["settings"] = [dict(asdict(s), zoo=s.zoo if isinstance(s.zoo, str) else s.zoo.name)
                           for s in self.config.settings]
        training = self.training.drop(columns=["losses"], errors="ignore")
        per = {s: {m: {k: np.round(v, 5).tolist() for k, v in d.items()} for m, d in p.items()}
               for s, p in self.per_network.items()}
        return {"config": cfg, "table": self.table.round(5).to_dict(orient="records"),
                "training": training.to_dict(orient="records"),
                "curves": {k: {str(e): round(v, 5) for e, v in c.items()} for k, c in self.curves.items()},
                "intervals": self.intervals(), "accuracy_vs_time": self.timing, "adam_tuning": self.adam_tuning,
                "per_network": per, "transfer": self.transfer, "counts": self.counts, "diagnostics": self.diagnostics,
                "memorization": self.memorization_json(), "seconds": round(self.seconds, 1)}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def run_study(cfg: StudyConfig | None = None, device=None, progress: bool = True,
              cache: str | Path | None = None, workers: int | str | None = None) -> StudyResult:
    """Run every setting of ``cfg`` (default: quick or full by ``SCALEGMN_LITE_FULL``), then the
    transfer experiments: the MLP operator on other widths/depths, the CNN operator on the MLP zoo.
    ``workers``: see :func:`run_setting` (the operators of a setting train side by side on idle cores)."""
    cfg = cfg or StudyConfig.from_env()
    t0 = time.perf_counter()
    rows, recs, curves, counts, weights, ops, results = [], [], {}, {}, {}, {}, {}
    per, timing, tuning, diagnostics, memorization = {}, {}, {}, {}, {}
    for s in cfg.settings:
        res = run_setting(s, cfg, device, progress, cache, workers)
        results[s.name] = res
        rows += res["rows"]
        for k, r in res["records"].items():
            recs.append({"setting": s.name, "method": k.split("/")[0], **r})
        curves[s.name], counts[s.name] = res["curve"], res["counts"]
        weights[s.name], ops[s.name] = res["weights"], res["ops"]
        per[s.name], timing[s.name] = res["per_network"], res["timing"]
        if res["adam_tuning"]:
            tuning[s.name] = res["adam_tuning"]
        if res["diagnostics"]:
            diagnostics[s.name] = res["diagnostics"]
        if res["memorization"]:
            memorization[s.name] = res["memorization"]
    transfer = []
    mlp = next((r for n, r in results.items() if not r["setting"].is_cnn and r["setting"].lam == 0
                and "scalegmn-b" in r["ops"]), None)
    cnn = next((r for n, r in results.items() if r["setting"].is_cnn and r["setting"].lam == 0
                and r["setting"].activation == (mlp["setting"].activation if mlp else "tanh")
                and r["data"].name == (mlp["data"].name if mlp else r["data"].name) and "scalegmn-b" in r["ops"]), None)
    if mlp is not None and cfg.transfer:
        spec = mlp["test"].spec
        act = mlp["setting"].activation
        w = spec.widths
        others = [f"mlp {w[0]}-{2 * w[1]}-{w[-1]} {act}", f"mlp {w[0]}-{w[1]}-{w[1]}-{w[-1]} {act}"]
        for r in width_transfer(mlp["ops"]["scalegmn-b"], mlp["test"], mlp["data"], others, seed=cfg.seed):
            transfer.append({"transfer": "width/depth", **r})
        if cnn is not None:
            label = f"{cnn['setting'].name} -> {mlp['setting'].name}"
            transfer.append(_cross_family(cnn["ops"]["scalegmn-b"], mlp, label))
    table = pd.DataFrame(rows, columns=COLUMNS)
    training = pd.DataFrame(recs)
    return StudyResult(cfg, table, training, curves, transfer, counts, weights, ops, time.perf_counter() - t0,
                       per, timing, tuning, diagnostics, memorization)


# ---------------------------------------------------------------------- claims
def _is_cnn(s: Setting, counts: dict | None = None) -> bool:
    """Whether ``s`` is a CNN setting: from the spec the study recorded (a result read back from JSON
    names its zoo only), else from the recipe."""
    spec = ((counts or {}).get(s.name) or {}).get("spec")
    if spec:
        return NetworkSpec.from_text(spec).family != "mlp"
    return s.is_cnn


def _pick(settings: Sequence[Setting], cnn: bool, lam: bool, kinds: set, activation: str = "tanh",
          counts: dict | None = None):
    """The first setting of a family (CNN/MLP), with or without L1, that has ``kinds``; tanh first."""
    cands = [s for s in settings if _is_cnn(s, counts) == cnn and (s.lam > 0) == lam and kinds <= set(s.kinds)
             and s.role == "table1"]
    cands.sort(key=lambda s: s.activation != activation)
    return cands[0] if cands else None


def _headroom(result: StudyResult) -> Setting | None:
    """The first headroom CNN setting (CE, with ScaleGMN-B): where transfer is judged."""
    return next((s for s in result.config.settings if s.role == "headroom" and _is_cnn(s, result.counts)
                 and s.lam == 0 and "scalegmn-b" in s.kinds), None)


def compute_claims(result: StudyResult, sgd_final: int | None = None) -> list:
    """The claims of the one-shot paper's Table 1, row for row, decided by 95% intervals over seeds and test
    networks (paired: both methods on the same test networks; the checkpoints of one network resampled
    together, ``counts[setting]["test_clusters"]``):

    * ``cnn-one-shot-beats-sgd150``: CNN (tanh, CE) ScaleGMN-B accuracy minus SGD-150's > 0
      (published 50.3% vs 44.5%);
    * ``mlp-scalegmn-beats-gmn``: MLP (tanh, CE) ScaleGMN-B accuracy minus GMN's > 0 (35.4 vs 35.0);
    * ``l1-larger-reduction-lower-loss``: CNN with L1: ScaleGMN-B's L1-norm reduction minus SGD-150's
      > 0 *and* its test loss minus SGD-150's < 0 (87.6% at 1.901 vs 70.9% at 2.070);
    * ``one-shot-1000x-faster`` (a deterministic *finding*): SGD-150 seconds per network / ScaleGMN-B
      seconds per network, both one network at a time (the published setting), >= 1000 (357 s vs
      0.055 s), worst setting.

    These four are judged on the ``table1`` settings (plateau zoos). On the ``headroom`` setting (tanh
    CNNs that still have room, the transfer target of issue 22):

    * ``operator-gain-cnn``: ScaleGMN-B's held-out accuracy gain (one-shot minus initial) > 0 (the
      statement quotes the memorization controls beside it);
    * ``operator-gain-cnn-published``: the same gain >= 0.10 (published +12.4 points on CNNs);
    * ``operator-generalizes``: held-out gain minus half the in-sample gain (the operator on as many of
      its own training networks, same test images) >= 0;
    * ``operator-beats-memorization`` (issue 33): ScaleGMN-B's held-out test accuracy minus each
      memorization control's (:mod:`.memorization`), paired per network, > 0 for *every* control
      (:func:`combine_status`); the interval shown is the one against the best control (highest mean
      accuracy); a control the result does not hold makes it inconclusive at best;
    * ``scalegmn-b-beats-gmn-b-headroom`` / ``scalegmn-b-beats-gmn-b-aug-headroom``: ScaleGMN-B's held-out
      accuracy minus GMN's / GMN+aug's (the same as the difference of their gains), > 0.

    A setting missing from ``result`` gives an inconclusive claim with a NaN interval.
    """
    cfg = result.config
    settings = cfg.settings
    sgd = f"sgd-{sgd_final or max(cfg.sgd_epochs)}"
    per = result.per_network
    nan = {"mean": float("nan"), "ci": [float("nan"), float("nan")], "seeds": len(cfg.seeds)}

    def diff(setting, a, b, metric):
        if setting is None or a not in per.get(setting.name, {}) or b not in per.get(setting.name, {}):
            return nan
        x, y = per[setting.name][a][metric], per[setting.name][b][metric]
        # [S, B] - [S or 1, B], the checkpoints of one network resampled together
        return bootstrap_mean(np.asarray(x) - np.asarray(y), clusters=result.clusters(setting.name))

    out = []
    cnn = _pick(settings, True, False, {"scalegmn-b"}, counts=result.counts)
    d = diff(cnn, "scalegmn-b", sgd, "acc")
    out.append(interval_claim(
        "cnn-one-shot-beats-sgd150", f"CNN zoo ({cnn.name if cnn else 'missing'}, CE): ScaleGMN-B one-shot mean test "
        f"accuracy minus {sgd.upper()}'s on the same held-out networks (published: 50.3% vs 44.5%)", d, ">", 0.0))
    mlp = _pick(settings, False, False, {"scalegmn-b", "gmn"}, counts=result.counts)
    d = diff(mlp, "scalegmn-b", "gmn", "acc")
    out.append(interval_claim(
        "mlp-scalegmn-beats-gmn", f"MLP zoo ({mlp.name if mlp else 'missing'}, CE): ScaleGMN-B mean test accuracy "
        "minus the symmetry-broken GMN's (matched parameters; published: 35.4% vs 35.0%)", d, ">", 0.0))
    l1 = _pick(settings, True, True, {"scalegmn-b"}, counts=result.counts)
    red, loss = diff(l1, "scalegmn-b", sgd, "l1_red"), diff(l1, "scalegmn-b", sgd, "loss")
    st = combine_status([decide(red["ci"], ">", 0.0), decide(loss["ci"], "<", 0.0)])
    out.append(interval_claim(
        "l1-larger-reduction-lower-loss", f"CNN zoo with L1 ({l1.name if l1 else 'missing'}): ScaleGMN-B reaches a "
        f"larger L1-norm reduction (points, minus {sgd.upper()}'s; interval shown) at a lower test loss "
        "(minus SGD's, interval in measured) - published 87.6% at 1.901 vs 70.9% at 2.070",
        red, ">", 0.0, status=st, target="reduction diff > 0 and loss diff < 0 (both 95% intervals)",
        measured={"l1_reduction_diff": red["mean"], "test_loss_diff": loss["mean"],
                  "test_loss_diff_ci_lo": loss["ci"][0], "test_loss_diff_ci_hi": loss["ci"][1]}))
    ratios = {}
    for s in settings:
        if "setting" not in result.table or "method" not in result.table:
            break
        sel = result.table[(result.table.setting == s.name)]
        t1 = sel[sel.method == "scalegmn-b"]["seconds_per_network_single"]
        t2 = sel[sel.method == sgd]["seconds_per_network_single"]
        if len(t1) and len(t2) and t1.iloc[0] is not None and t2.iloc[0] is not None and float(t1.iloc[0]) > 0:
            ratios[s.name] = round(float(t2.iloc[0]) / float(t1.iloc[0]), 1)
    worst = min(ratios.values()) if ratios else float("nan")
    out += _transfer_claims(result, nan)
    out.append(claim("one-shot-1000x-faster", f"{sgd.upper()} seconds per network / ScaleGMN-B one-shot seconds per "
                     "network, both one network at a time on the same device (published 357 s / 0.055 s), worst "
                     f"setting; per setting: {ratios}", worst, ">=", 1000, kind="finding"))
    return out


def _memorization_diffs(result: StudyResult, s: Setting | None) -> tuple[dict, list[str]]:
    """control -> ``{"interval": operator minus control (paired), "control_mean", "status"}`` and the
    controls the result does not hold (:data:`~.memorization.CONTROLS`)."""
    from .memorization import CONTROLS

    per = result.per_network.get(s.name, {}) if s else {}
    mem = result.memorization.get(s.name, {}) if s else {}
    found, missing = {}, []
    for c in CONTROLS:
        acc = np.asarray(mem.get(c, {}).get("acc", []), dtype=np.float64)
        if MEMORIZATION_OPERATOR not in per or acc.ndim != 2 or acc.shape[1] != per["initial"]["acc"].shape[1]:
            missing.append(c)
            continue
        op = np.asarray(per[MEMORIZATION_OPERATOR]["acc"], dtype=np.float64)
        if acc.shape[0] not in (1, op.shape[0]):
            missing.append(c)
            continue
        iv = bootstrap_mean(op - acc, clusters=result.clusters(s.name))
        found[c] = {"interval": iv, "control_mean": float(acc.mean()), "status": decide(iv["ci"], ">", 0.0)}
    return found, missing


def _transfer_claims(result: StudyResult, nan: dict) -> list:
    """``operator-gain-cnn``, ``operator-gain-cnn-published``, ``operator-generalizes``,
    ``operator-beats-memorization`` and the two headroom margins (see :func:`compute_claims`) on the
    first headroom CNN setting."""
    s = _headroom(result)
    per = result.per_network.get(s.name, {}) if s else {}
    diag = result.diagnostics.get(s.name, {}) if s else {}
    cl = result.clusters(s.name) if s else None
    gain, gen = nan, nan
    if "scalegmn-b" in per:
        held = np.asarray(per["scalegmn-b"]["acc"]) - np.asarray(per["initial"]["acc"])  # [S, B]
        gain = bootstrap_mean(held, clusters=cl)
        inside = np.asarray(diag.get("in_sample", {}).get("scalegmn-b", {}).get("acc_gain", []), dtype=np.float64)
        if inside.shape == held.shape:  # as many training networks as test networks, paired by position
            gen = bootstrap_mean(held - 0.5 * inside, clusters=cl)
    name = s.name if s else "missing"
    ins = diag.get("in_sample", {}).get("scalegmn-b", {}).get("mean", float("nan"))
    found, missing = _memorization_diffs(result, s)
    op_mean = float(np.mean(per[MEMORIZATION_OPERATOR]["acc"])) if MEMORIZATION_OPERATOR in per else float("nan")
    init_mean = float(np.mean(per["initial"]["acc"])) if "initial" in per else float("nan")
    means = ", ".join(f"{c} {v['control_mean']:.1%}" for c, v in found.items())
    memo_text = (f"memorization controls on the same test networks and images: {means}" if found else
                 "memorization controls: not in this result")
    if missing and found:
        memo_text += f" (missing: {', '.join(missing)})"
    out = [
        interval_claim("operator-gain-cnn", f"headroom CNN zoo ({name}, CE): ScaleGMN-B one-shot test accuracy minus "
                       f"the initial networks' on held-out networks ({init_mean:.1%} -> {op_mean:.1%}; published: "
                       f"37.9% -> 50.3%); {memo_text} (judged by operator-beats-memorization)", gain, ">", 0.0),
        interval_claim("operator-gain-cnn-published", f"headroom CNN zoo ({name}): the same held-out gain reaches "
                       "the published scale, >= 10 points (published +12.4)", gain, ">=", 0.10),
        interval_claim("operator-generalizes", f"headroom CNN zoo ({name}): held-out gain minus half the in-sample "
                       f"gain (in-sample: the operator on as many of its training networks, test images; "
                       f"mean {ins:.4f})",
                       gen, ">=", 0.0, measured={"held_out_minus_half_in_sample": gen["mean"],
                                                 "in_sample_gain": ins, "held_out_gain": gain["mean"],
                                                 "interval_of": "held_out_minus_half_in_sample"}),
    ]
    # operator minus every memorization control: holds only if it beats each one
    if found:
        best = max(found, key=lambda c: found[c]["control_mean"])
        shown = found[best]["interval"]
        status = combine_status([v["status"] for v in found.values()] + ["inconclusive"] * len(missing))
    else:
        best, shown, status = None, nan, "inconclusive"
    statement = (f"headroom CNN zoo ({name}): ScaleGMN-B's held-out test accuracy ({op_mean:.1%}) minus each "
                 "memorization control's on the same test networks and test images (paired per network, seeds x "
                 "networks), > 0 for every control: best-training-network (the training network best on training "
                 "images, for every input), nearest-training-network (nearest in logits on training images), "
                 "mean-of-k-best (weight average of the k best, k chosen on validation), noise-perturbed-input (the "
                 "input plus random noise of the operator's own update norm); ")
    statement += (f"control means: {means}; interval shown against the best control ({best})" if found else
                  "the controls are not in this result")
    if missing:
        statement += (f"; missing from this result (not recomputable, never invented): {', '.join(missing)}: "
                      "inconclusive at best")
    measured = {"operator_acc": op_mean, **{f"{c}_acc": v["control_mean"] for c, v in found.items()},
                **{f"minus_{c}": v["interval"]["mean"] for c, v in found.items()},
                **{f"minus_{c}_ci_lo": v["interval"]["ci"][0] for c, v in found.items()},
                "best_control": best, "interval_of": f"minus_{best}" if best else None,
                "missing": ", ".join(missing) or None}
    out.append(interval_claim("operator-beats-memorization", statement, shown, ">", 0.0, status=status,
                              target="> 0 against every control (95% intervals)", measured=measured))
    for other, label, cid in (("gmn", "GMN", "scalegmn-b-beats-gmn-b-headroom"),
                              ("gmn-aug", "GMN+aug", "scalegmn-b-beats-gmn-b-aug-headroom")):
        d = nan
        if "scalegmn-b" in per and other in per:
            d = bootstrap_mean(np.asarray(per["scalegmn-b"]["acc"]) - np.asarray(per[other]["acc"]), clusters=cl)
        out.append(interval_claim(
            cid, f"headroom CNN zoo ({name}, CE): ScaleGMN-B's held-out accuracy gain minus the symmetry-broken "
            f"{label}'s (permutation-equivariant, forward message passing, matched parameters; the id's 'gmn-b' is "
            "historical; same held-out networks and seeds; the initial accuracy cancels)",
            d, ">", 0.0))
    return out


def regime_table(intervals: dict, counts: dict,
                 methods: Sequence[str] = ("scalegmn-b", "gmn", "gmn-aug", "sgd-150")) -> pd.DataFrame:
    """Starting accuracy, final accuracy and gain of every method per setting, beside the one-shot paper's Table 1
    (:data:`~scalegmn_lite.tasks.amortized.protocol.PUBLISHED_TABLE1`, by family). ``intervals``: a
    study's :meth:`StudyResult.intervals` (or the ``"intervals"`` of its JSON); ``counts``: its
    ``counts`` (the spec of each setting says the family)."""
    from .protocol import PUBLISHED_TABLE1

    rows = []
    for name, iv in intervals.items():
        fam = "mlp" if counts[name]["spec"].startswith("mlp") else "cnn"
        pub = PUBLISHED_TABLE1[fam]
        start = iv["initial"]["acc"]["mean"]
        for m in methods:
            if m not in iv:
                continue
            end = iv[m]["acc"]["mean"]
            p_end = pub.get(m)  # None where the paper has no such row (GMN+aug)
            rows.append({"setting": name, "method": m, "start": round(start, 4), "final": round(end, 4),
                         "gain": round(end - start, 4), "published start": pub["initial"],
                         "published final": p_end,
                         "published gain": None if p_end is None else round(p_end - pub["initial"], 4)})
    return pd.DataFrame(rows)


def save_json(result: StudyResult, path: str | Path) -> None:
    atomic_write_json(path, result.to_json())

