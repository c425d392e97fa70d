"""Experiment ``merging`` (issues 6 and 24): ScaleGMN autoencoders and model merging in a canonical
gauge, on zoos where alignment matters (*Symmetry-Aware Graph Metanetwork Autoencoders: Model Merging
through Parameter Canonicalization*, "autoencoder paper").

Zoos (:data:`QUICK_SETUPS`; reference: :func:`setups` with ``reference=True``):

* ``inr``: SIRENs fitted to digit images from *independent* initialisations, the way the published
  MNIST INRs were fitted (the ``inr-dws-digits`` zoo, split by image);
* ``cnn-relu``: the ReLU Conv1d CNNs of ``cnn1d-hp-mnist1d`` (a Small-CNN-Zoo-like zoo), keeping the
  top networks by test accuracy as the published CNN test does (its top 1500).

**The zoo screen comes first** (:func:`screen`): on pairs of different networks, the naive barrier and
the barriers after weight matching with permutations only (P, plain Git Re-Basin), the diagonal part
only (D: sign flips for tanh/sine, positive scalings for ReLU) and both (PD). A zoo without a naive
barrier cannot test merging; the screen also runs the shared-init INR zoo of issue 6
(:data:`shared_inr_recipe`, where naive interpolation is already barrier-free) and the tanh half of the
CNN zoo as contrasts.

Per zoo an autoencoder (invariant ScaleGMN encoder, MLP decoder) is trained like the published one
(AdamW with weight decay 0.01, warm-up, clipping at 10, function-space loss: rendering MSE for INRs,
distillation for CNNs) on 80% of the networks, for several seeds, and evaluated on the held-out 20%
(:func:`evaluate`):

* reconstruction: held-out PSNR of the decoded INRs against the originals' renderings, beside the
  mean-image floor (the training INRs' mean rendering, what a decoder that ignores its input would
  reach); for CNNs accuracy and agreement with the originals beside the floor of one fixed network;
* the published orbit test (:func:`~scalegmn_lite.tasks.merging.study.orbit_curves`): each held-out
  network against a random member of its own orbit under P, D and PD plus small noise, interpolated
  naively, after weight matching (P, D, PD) and through the autoencoder; INRs are scored by the
  rendered image's MSE against the ground-truth digit, CNNs by test cross-entropy;
* pairs of different held-out networks (same digit for INRs): barriers, the worst loss along each path
  and the endpoints' own loss (:func:`~scalegmn_lite.tasks.merging.study.path_figures`), and how far
  apart the decoded networks stay (``decoded_pair_distance_ratio``: near 0 would mean the decoder
  collapsed and any decoded barrier is trivially small);
* latent invariance of the trained encoder in float64.

Seeds: the autoencoder is trained with several seeds on one split; pairs and orbit draws are fixed, so
comparisons are paired and decided by 95% bootstrap intervals over networks and seeds.

Claims, each marked with its source (REPORT.md shows it): ``[autoencoder paper]`` the autoencoder paper's,
``[course]`` this course's own checks.
    ``naive-barrier-exists`` [course]: naive interpolation of different networks has a barrier > 0 on
        every zoo (the zoo can test merging);
    ``orbit-no-barrier-after-canonicalization`` [autoencoder paper]: orbit test under P, D and PD, the decoded
        barrier is at most 1% of the naive one, every zoo and seed;
    ``orbit-permutation-matching-misses-diagonal`` [autoencoder paper]: on D and PD orbits plain permutation
        matching keeps at least half the naive barrier while PD matching removes it (<= 1%);
    ``ae-barrier-below-naive`` [autoencoder paper]: pairs, decoded barrier minus naive barrier < 0;
    ``ae-barrier-below-weight-matching`` [course]: pairs, decoded minus PD weight matching's barrier < 0;
    ``ae-path-loss-below-weight-matching`` [course]: the same judged in absolute terms (worst loss
        along the path), so a decoder with worse endpoints cannot pass by a small barrier;
    ``ae-reconstruction-above-floor`` [course]: held-out decoded PSNR above the mean-image floor (INRs),
        decoded agreement with the originals above the one-network floor (CNNs);
    ``latent-invariant`` [course]: relative invariance error of the encoder in float64 <= 1e-9.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import torch

from ..common.claims import claim, combine_status, interval_claim
from ..common.parallel import plan_workers, run_jobs
from ..common.stats import bootstrap_mean, decide
from ..nn.checks import check_invariance, check_sensitivity, default_tolerance
from ..tasks.losses import coordinate_grid
from ..tasks.merging.autoencoder import (
    AutoencoderConfig,
    DistillationLoss,
    INRLoss,
    WeightAutoencoder,
    canonical_targets,
    save_autoencoder,
    train_autoencoder,
)
from ..tasks.merging.study import (
    METHODS,
    ORBIT_GROUPS,
    ORBIT_METHODS,
    ClassifierMergeTask,
    INRImageTask,
    INRMergeTask,
    function_distance_ratio,
    merge_curves,
    orbit_curves,
    orbit_partner,
    path_figures,
    random_pairs,
    reconstruction_quality,
    same_class_pairs,
    summarize,
)
from ..weightspace.weights import WeightSpace
from ..zoo import ZooRecipe, get_recipe, load_or_build
from ..zoo.data import load_dataset
from ..zoo.inr import digit_images
from ..zoo.recipes import get_reference_recipe
from . import RunContext, experiment

__all__ = ["run", "ZooSetup", "Prepared", "QUICK_SETUPS", "FULL_SETUPS", "SCREEN_SETUPS", "setups",
           "shared_inr_recipe", "prepare", "evaluate", "screen", "seed_run"]

N_PAIRS = 32
ORBIT_NOISE = 1e-3
ORBIT_RATIO = 0.01

#: issue 6's INR zoo: every SIREN starts from one shared init (w0 = 10), so its networks are already
#: aligned and naive interpolation has (almost) no barrier: the screen's contrast, not a merging zoo
shared_inr_recipe = ZooRecipe(
    name="ae-inr-digits", dataset="digits", arch="siren 2-16-16-1 a=10", task="inr", optimizer="adam",
    lr=(1e-3, 1e-3), init_scale=(1.0, 1.0), weight_decay=(0.0, 0.0), num_networks=256, epochs=200,
    checkpoint_epochs=(0, 200), image_size=16, shared_init=True,
    description="small SIRENs (w0=10, one shared init) fitting 16x16 digit images (issue 6's merging zoo)")

@dataclass
class ZooSetup:
    """One zoo of the experiment: the recipe, an optional metadata selection, and training sizes."""

    name: str
    recipe: ZooRecipe | str
    kind: str  # "inr" | "classifier"
    where: dict = field(default_factory=dict)
    config: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    steps: int = 600
    batch_size: int = 16
    lr: float = 3e-3
    temperature: float = 2.0
    #: weight of the auxiliary weight-space loss against canonical targets (weight matching to the
    #: decoder's template); 0 trains in function space only
    weight_loss: float = 0.0
    #: AdamW weight decay, warm-up steps and gradient clipping (the published autoencoder: 0.01,
    #: 1000 of ~100k steps, 10)
    weight_decay: float = 0.0
    warmup_steps: int = 20
    clip_norm: float = 1.0
    #: keep only the ``top`` networks by metadata column ``rank_by`` (descending) before splitting:
    #: the published CNN test merges pairs of the top 1500 test CNNs of the Small CNN Zoo
    top: int | None = None
    rank_by: str = "test_acc"
    #: split by this metadata column (``"image_index"`` for an INR zoo with several views per image)
    split_by: str | None = None
    #: the zoo's role in the paper: "autoencoder paper" (a setting the autoencoder paper measures) or
    #: "course" (our own addition)
    source: str = "autoencoder paper"


#: the autoencoder (quick and reference): ScaleGMN encoder hidden 32, 3 layers; 64-d code; decoder
#: 512-512 (the published one: hidden 128, 4 layers; not a 2-core size)
_AE = AutoencoderConfig(latent_dim=64, hidden_dim=32, num_layers=3, bidirectional=False, decoder_hidden=(512, 512))
_FULL_AE = AutoencoderConfig(latent_dim=128, hidden_dim=128, num_layers=4, bidirectional=True,
                             decoder_hidden=(1024, 1024))
#: trained like the published autoencoder: AdamW (weight decay 0.01), warm-up, clipping at 10
_TRAIN = dict(batch_size=32, lr=1e-3, weight_decay=0.01, clip_norm=10.0)

QUICK_SETUPS = [
    ZooSetup("inr", "inr-dws-digits", "inr", config=_AE, steps=600, warmup_steps=60, split_by="image_index",
             **_TRAIN),
    ZooSetup("cnn-relu", "cnn1d-hp-mnist1d", "classifier", {"activation": "relu"}, _AE, steps=400, warmup_steps=40,
             top=384, **_TRAIN),
]
#: reference size (~45 minutes on 2 CPU cores with 3 seeds): all 1797 x 3 INRs, the top 1500 ReLU CNNs
REFERENCE_SETUPS = [replace(QUICK_SETUPS[0], steps=2400, warmup_steps=200),
                    replace(QUICK_SETUPS[1], steps=2000, warmup_steps=200, top=1500)]
#: full size (GPU): 28x28 INRs (1797 x 8), the published autoencoder's width and depth
FULL_SETUPS = [replace(QUICK_SETUPS[0], config=_FULL_AE, steps=20000, batch_size=64, warmup_steps=1000),
               replace(QUICK_SETUPS[1], config=_FULL_AE, steps=20000, batch_size=64, warmup_steps=1000, top=1500)]
#: the zoo screen's extra zoos (no autoencoder): issue 6's shared-init INRs, and the tanh CNNs
SCREEN_SETUPS = [
    ZooSetup("inr-shared-init", shared_inr_recipe, "inr", source="course"),
    ZooSetup("cnn-tanh", "cnn1d-hp-mnist1d", "classifier", {"activation": "tanh"}, top=384, source="course"),
]


def setups(quick: bool = True, reference: bool = False) -> list[ZooSetup]:
    """The experiment's zoos in quick, reference or full size."""
    if not quick:
        return FULL_SETUPS
    return REFERENCE_SETUPS if reference else QUICK_SETUPS


def _screen_setups(chosen: list[ZooSetup]) -> list[ZooSetup]:
    """:data:`SCREEN_SETUPS` with the CNN selection (``top``) of ``chosen``'s classifier zoo."""
    top = next((c.top for c in chosen if c.kind == "classifier"), None)
    return [replace(x, top=top) if x.kind == "classifier" else x for x in SCREEN_SETUPS]


class Prepared(NamedTuple):
    """One zoo of the experiment, split and ready (:func:`prepare`)."""

    train: WeightSpace
    test: WeightSpace
    test_metadata: object  # pandas.DataFrame
    train_loss: object  # INRLoss | DistillationLoss
    task: object  # INRMergeTask | ClassifierMergeTask: pairs (INRs: against the blend of the originals)
    orbit_task: object  # INRImageTask (against the ground-truth digits) | ClassifierMergeTask
    recipe: ZooRecipe


def _recipe(setup: ZooSetup, quick: bool, reference: bool) -> ZooRecipe:
    if reference and quick:
        return get_reference_recipe(setup.recipe)
    return get_recipe(setup.recipe, not quick)


def prepare(setup: ZooSetup, device=None, progress: bool = True, seed: int = 0, quick: bool = True,
            reference: bool = False) -> Prepared:
    """Zoo of ``setup`` (in quick, reference or full size), its selection (``where``, ``top``), the
    80/20 split (by ``split_by`` if set), training loss and merging tasks."""
    recipe = _recipe(setup, quick, reference)
    zoo = load_or_build(recipe, device=device, progress=progress)
    if setup.where:
        zoo = zoo.where(**setup.where)
    if "diverged" in zoo.metadata:
        zoo = zoo.filter(lambda df: ~df["diverged"].astype(bool))
    if setup.top is not None:
        if setup.rank_by not in zoo.metadata:
            raise ValueError(f"setup {setup.name!r} ranks by {setup.rank_by!r}, which the zoo's metadata lacks; "
                             f"columns: {list(zoo.metadata.columns)}")
        order = np.argsort(-zoo.metadata[setup.rank_by].to_numpy(), kind="stable")
        zoo = zoo.select(np.sort(order[: setup.top]))
    train, test = zoo.split((0.8, 0.2), seed=seed, by=setup.split_by)
    ws_tr, ws_te = train.weights(device=device), test.weights(device=device)
    if setup.kind == "inr":
        size = recipe.image_size
        coords = coordinate_grid(size, size, device=device)
        images, _ = digit_images(size, device=device)
        idx = torch.as_tensor(np.array(test.metadata["image_index"].to_numpy()), device=images.device)
        truth = images[idx].reshape(len(idx), size * size, 1)
        return Prepared(ws_tr, ws_te, test.metadata, INRLoss(coords), INRMergeTask(coords),
                        INRImageTask(coords, truth), recipe)
    data = load_dataset(recipe.dataset, device=device)
    loss = DistillationLoss(data.x_train, setup.temperature, batch=256, generator=torch.Generator().manual_seed(seed))
    task = ClassifierMergeTask(data.x_test, data.y_test)
    return Prepared(ws_tr, ws_te, test.metadata, loss, task, task, recipe)


def _pairs(prep: Prepared, kind: str, n_pairs: int | None, seed: int) -> np.ndarray:
    """Pairs of different held-out networks: INRs of the same digit but different images, any two CNNs."""
    n_pairs = N_PAIRS if n_pairs is None else n_pairs
    md = prep.test_metadata
    if kind == "inr":
        images = md["image_index"].to_numpy() if "image_index" in md else None
        return same_class_pairs(md["label"].to_numpy(), n_pairs, seed, distinct=images)
    return random_pairs(prep.test.batch_size, n_pairs, seed)


def screen(prep: Prepared, kind: str, seed: int = 0, n_pairs: int | None = None, pairs: dict | None = None) -> dict:
    """The zoo screen: naive and weight-matching (P, D, PD) barriers on ``n_pairs`` pairs of different
    held-out networks (same digit for INRs), per pair and as intervals over pairs. ``pairs``: the
    :func:`pair_test` of these methods if already computed."""
    pairs = pairs or pair_test(None, prep, kind, seed, n_pairs, SHARED_METHODS)
    path = pairs["path"]
    return {"pairs": pairs["pairs"], "n_networks": prep.train.batch_size + prep.test.batch_size,
            "barrier": {m: bootstrap_mean(np.asarray(path[m]["barrier"])[None]) for m in SHARED_METHODS},
            "per_pair": {m: path[m]["barrier"] for m in SHARED_METHODS},
            "endpoint_loss": float(np.mean(path["naive"]["endpoint_loss"])),
            "mean_curves": {m: pairs["mean_curves"][m] for m in SHARED_METHODS}}


def floors(prep: Prepared, kind: str, n_candidates: int = 64) -> dict:
    """What a decoder that ignores its input would reach on the held-out networks: INRs, the PSNR of the
    training INRs' mean rendering against each held-out rendering (and the originals' own PSNR against
    the ground-truth digits); CNNs, accuracy and agreement of the one training network (of the first
    ``n_candidates``) that agrees best with the training networks."""
    tr, te = prep.train, prep.test
    if kind == "inr":
        with torch.no_grad():
            mean_img = prep.task.outputs(tr[:1024]).mean(0, keepdim=True)
            ref = prep.task.outputs(te)
        mse = (ref - mean_img).pow(2).flatten(1).mean(1)
        truth_mse = (ref - prep.orbit_task.images.to(ref)).pow(2).flatten(1).mean(1)
        return {"mean_image_psnr": float((10 * torch.log10(1.0 / mse)).mean()),
                "original_psnr_vs_digit": float((10 * torch.log10(1.0 / truth_mse)).mean())}
    x = prep.task.x.to(device=tr.device, dtype=tr.dtype)
    with torch.no_grad():
        pred_tr = tr(x).argmax(-1)  # [B_tr, N]
        cand = pred_tr[:n_candidates]
        agree = (cand[:, None, :] == pred_tr[None]).float().mean((1, 2))
    best = int(agree.argmax())
    q = prep.task.quality(WeightSpace.stack([tr[best:best + 1]] * te.batch_size), te)
    return {"one_network_accuracy": float(q["accuracy"].mean()), "one_network_agreement": float(q["agreement"].mean())}


#: the paths that do not depend on the autoencoder: computed once per zoo (:func:`shared_figures`)
SHARED_METHODS = ("naive", "weight_matching_P", "weight_matching_D", "weight_matching")
#: held-out networks and draws of the orbit test per kind of zoo, (quick, reference): a CNN path costs
#: ~20x an INR path on 2 CPU cores (a forward pass on the 1000 test signals per alpha)
ORBIT_SIZE = {"inr": ((64, 2), (128, 3)), "classifier": ((32, 2), (64, 2))}


def orbit_test(ae: WeightAutoencoder | None, prep: Prepared, seed: int, n_orbit: int, orbit_runs: int,
               methods=ORBIT_METHODS) -> dict[str, dict]:
    """The published orbit test: per group (P, D, PD), ``orbit_runs`` draws of an orbit partner (plus
    noise) for each of the first ``n_orbit`` held-out networks, scored by ``prep.orbit_task``. The
    draws depend only on ``seed`` and the group, so calls with different ``methods`` (or autoencoders)
    score the same partners."""
    base = prep.test[:n_orbit]
    task = prep.orbit_task
    if isinstance(task, INRImageTask):
        task = replace(task, images=task.images[:n_orbit])
    out: dict[str, dict] = {}
    for group in ORBIT_GROUPS:
        ogen = torch.Generator().manual_seed(seed * 1000 + ORBIT_GROUPS.index(group))
        runs = [orbit_curves(ae, base, task, group, ORBIT_NOISE, ogen, methods=methods, seed=seed)
                for _ in range(orbit_runs)]
        figs = [path_figures(c) for c in runs]
        out[group] = {
            "barrier": {m: float(np.mean([f[m]["barrier"].mean() for f in figs])) for m in methods},
            "max_loss": {m: float(np.mean([f[m]["max_loss"].mean() for f in figs])) for m in methods},
            "endpoint_loss": {m: float(np.mean([f[m]["endpoint_loss"].mean() for f in figs])) for m in methods},
            "per_network_barrier": {m: torch.cat([f[m]["barrier"] for f in figs]).tolist() for m in methods},
            "mean_curves": {m: torch.stack([c[m].losses.mean(0) for c in runs]).mean(0).tolist() for m in methods},
            "networks": base.batch_size, "runs": orbit_runs}
    return out


def pair_test(ae: WeightAutoencoder | None, prep: Prepared, kind: str, seed: int, n_pairs: int | None = None,
              methods=METHODS) -> dict:
    """Pairs of different held-out networks (:func:`_pairs`): per pair and method the path figures
    (barrier, worst loss, mean loss, endpoint loss) and the mean curve over pairs."""
    idx = _pairs(prep, kind, n_pairs, seed)
    i0, i1 = (torch.as_tensor(idx[:, k]).to(prep.test.device) for k in (0, 1))
    curves = merge_curves(ae, prep.test[i0], prep.test[i1], prep.task, methods=methods, seed=seed)
    path = path_figures(curves)
    return {"pairs": idx.tolist(), "mean_curves": {m: c.losses.mean(0).tolist() for m, c in curves.items()},
            "path": {m: {k: v.tolist() for k, v in d.items()} for m, d in path.items()}}


def shared_figures(prep: Prepared, kind: str, seed: int, n_orbit: int, orbit_runs: int,
                   n_pairs: int | None = None) -> dict:
    """The autoencoder-independent paths (naive and weight matching) of the orbit test and the pairs,
    computed once per zoo and passed to :func:`evaluate` for every autoencoder seed."""
    return {"orbit": orbit_test(None, prep, seed, n_orbit, orbit_runs, SHARED_METHODS),
            "pairs": pair_test(None, prep, kind, seed, n_pairs, SHARED_METHODS)}


def _merge_methods(a: dict, b: dict) -> dict:
    """Per-method dicts of two results for the same draws, joined (``b``'s methods added to ``a``'s)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            out[k] = {**a[k], **v}
    return out


def evaluate(ae: WeightAutoencoder, prep: Prepared, kind: str, seed: int = 0, n_pairs: int | None = None,
             n_orbit: int = 64, orbit_runs: int = 2, shared: dict | None = None) -> dict:
    """Invariance, the orbit test (P, D, PD orbits; ``orbit_runs`` draws of ``n_orbit`` held-out
    networks), pairs (barriers, absolute path losses, endpoint losses; per pair in ``pair_path``) and
    reconstruction figures for a trained autoencoder. ``seed`` draws the pairs and orbit partners (keep
    it fixed across autoencoder seeds for paired comparisons); ``shared`` (from :func:`shared_figures`
    with the same arguments) saves recomputing the naive and weight-matching paths."""
    ws_tr, ws_te = prep.train, prep.test
    if shared is None:
        shared = shared_figures(prep, kind, seed, n_orbit, orbit_runs, n_pairs)
    gen = torch.Generator().manual_seed(seed)
    probe = ws_te[:4]
    inv = check_invariance(ae.encoder, probe, n_samples=4, generator=gen)
    sens = check_sensitivity(ae.encoder, probe, generator=gen)
    base = ws_te[:n_orbit]
    exact, _ = orbit_partner(base, 0.0, gen)
    with torch.no_grad():
        z, zg = ae.encode_all(base), ae.encode_all(exact)
    latent_f32 = float((z - zg).abs().max() / z.abs().max())
    own = orbit_test(ae, prep, seed, n_orbit, orbit_runs, ("decoded",))
    orbit = {g: _merge_methods(shared["orbit"][g], own[g]) for g in ORBIT_GROUPS}
    own_pairs = pair_test(ae, prep, kind, seed, n_pairs, ("decoded", "latent"))
    if own_pairs["pairs"] != shared["pairs"]["pairs"]:
        raise ValueError("shared figures were computed for other pairs: pass the same seed and n_pairs")
    pair_path = {**shared["pairs"]["path"], **own_pairs["path"]}
    mean_curves = {**shared["pairs"]["mean_curves"], **own_pairs["mean_curves"]}
    idx = np.asarray(own_pairs["pairs"])
    i0, i1 = (torch.as_tensor(idx[:, k]).to(ws_te.device) for k in (0, 1))
    spread = function_distance_ratio(ae, ws_te[i0], ws_te[i1], prep.task)
    dec = ae.reconstruct(ws_te).to(dtype=ws_te.dtype)
    quality = prep.task.quality(dec, ws_te)
    rec_test = {f"decoded_{k}": float(v.mean()) for k, v in quality.items()}
    if kind == "inr":
        per_network = {"decoded_psnr": quality["psnr"].tolist()}
    else:
        rec_test["original_accuracy"] = float(prep.task.quality(ws_te, ws_te)["accuracy"].mean())
        per_network = {"decoded_agreement": quality["agreement"].tolist()}
    return {
        "invariance_f64": {"max_relative": inv.max_relative, "tolerance": default_tolerance(torch.float64)},
        "sensitivity_f64": sens,
        "orbit_latent_change_f32": latent_f32,
        "orbit_noise": ORBIT_NOISE,
        "orbit": orbit,
        "pair_barriers": summarize({m: torch.tensor(d["barrier"]) for m, d in pair_path.items()}),
        "pair_mean_curves": mean_curves,
        "pair_path": pair_path,
        "pair_path_summary": {m: {k: float(np.mean(v)) for k, v in d.items()} for m, d in pair_path.items()},
        "pairs": idx.tolist(),
        "decoded_pair_distance_ratio": spread,
        "reconstruction_train": reconstruction_quality(ae, ws_tr[:256], prep.task),
        "reconstruction_test": rec_test,
        "reconstruction_per_network": per_network,
    }


#: rough seconds per autoencoder step at quick size (bench_training.py), for deciding whether worker
#: processes pay for their start-up
SECONDS_PER_STEP = 0.2


def seed_run(s: ZooSetup, seed: int, device: str, split_seed: int, quick: bool, save_to: str | None,
             progress: bool = False, reference: bool = False, n_orbit: int = 64, orbit_runs: int = 2,
             shared: dict | None = None, n_pairs: int | None = None) -> dict:
    """One autoencoder of the experiment: train it on ``s``'s zoo with ``seed``, save it to ``save_to``
    (if given) and :func:`evaluate` it. Everything is drawn from ``seed`` and ``split_seed`` (also the
    distillation batches: a fresh generator per autoencoder), so a run computes the same in any process."""
    device = torch.device(device)
    t0 = time.perf_counter()
    prep = prepare(s, device, progress, split_seed, quick, reference)
    ws_tr = prep.train
    torch.manual_seed(seed)
    ae = WeightAutoencoder(ws_tr.spec, s.config, reference=ws_tr, device=device)
    targets = canonical_targets(ae, ws_tr, seed=seed) if s.weight_loss > 0 else None
    hist = train_autoencoder(ae, ws_tr, prep.train_loss, steps=s.steps, batch_size=s.batch_size, lr=s.lr,
                             weight_decay=s.weight_decay, warmup_steps=s.warmup_steps, clip_norm=s.clip_norm,
                             seed=seed, progress=progress, targets=targets, weight_loss=s.weight_loss)
    t_train = time.perf_counter() - t0
    if save_to is not None:
        save_autoencoder(ae, save_to, extra={"zoo": s.name, "steps": s.steps})
    r = evaluate(ae, prep, s.kind, split_seed, n_pairs, n_orbit, orbit_runs, shared)
    r.update(seed=seed, spec=ws_tr.spec.to_text(), weight_loss=s.weight_loss, n_train=ws_tr.batch_size,
             n_test=prep.test.batch_size, steps=s.steps, train_loss_first=hist.losses[0],
             train_loss_last=float(sum(hist.losses[-20:]) / min(20, len(hist.losses))),
             train_loss_curve=[float(v) for v in hist.losses[:: max(1, len(hist.losses) // 100)]],
             rollbacks=len(hist.rollbacks), seconds_train=t_train, seconds=time.perf_counter() - t0)
    return r


QUICK_SEEDS = (0, 1, 2)
REFERENCE_SEEDS = (0, 1, 2)


def _paired(results: dict, a: str, b: str, figure: str) -> dict[str, dict]:
    """Per zoo: interval of ``a`` minus ``b`` of a per-pair path figure, over pairs and seeds."""
    out = {}
    for k, runs in results.items():
        x = np.array([r["pair_path"][a][figure] for r in runs]) - np.array([r["pair_path"][b][figure] for r in runs])
        out[k] = bootstrap_mean(x)
    return out


def _zoo_claim(id: str, statement: str, per_zoo: dict[str, dict], op: str, threshold: float = 0.0) -> object:
    """A claim that must hold on every zoo: status combined over zoos; the interval shown is that of a
    zoo that decides the status: a refuting zoo if there is one (the one refuting most clearly), else
    the zoo closest to failing (largest upper bound for ``<``)."""
    per_status = {k: decide(v["ci"], op, threshold) for k, v in per_zoo.items()}
    st = combine_status(list(per_status.values()))
    lt = op.startswith("<")
    pool = [k for k, v in per_status.items() if v == "refuted"] or list(per_zoo)
    if st == "refuted":  # the zoo whose interval lies furthest on the wrong side
        worst = max(pool, key=lambda k: per_zoo[k]["ci"][0] if lt else -per_zoo[k]["ci"][1])
    else:
        worst = max(pool, key=lambda k: per_zoo[k]["ci"][1] if lt else -per_zoo[k]["ci"][0])
    measured = {f"{k}": round(v["mean"], 6) for k, v in per_zoo.items()}
    measured["interval_of"] = worst
    return interval_claim(id, statement, per_zoo[worst], op, threshold, measured=measured, status=st,
                          target=f"{op} {threshold:g} on every zoo (95% intervals; shown: {worst})")


def _floor_gap(runs: list[dict], kind: str, floor: dict) -> dict:
    """Interval of the held-out reconstruction minus the floor, over networks and seeds."""
    if kind == "inr":
        x = np.array([r["reconstruction_per_network"]["decoded_psnr"] for r in runs]) - floor["mean_image_psnr"]
    else:
        x = np.array([r["reconstruction_per_network"]["decoded_agreement"] for r in runs]) - \
            floor["one_network_agreement"]
    return bootstrap_mean(x)


def naive_barrier_claim(screens: dict[str, dict], zoos) -> object:
    """``naive-barrier-exists`` from the zoo screens: no training is involved (a property of the zoo on
    a fixed sample of pairs), so it is an exact claim whose measured figures carry the 95% bootstrap
    interval over the pairs; it holds when every zoo's interval lies above 0."""
    iv = {k: screens[k]["barrier"]["naive"] for k in zoos}
    n = "/".join(str(v) for v in sorted({len(screens[k]["pairs"]) for k in zoos}))
    return claim("naive-barrier-exists",
                 f"{n} pairs of different held-out networks per zoo: the mean barrier of naive interpolation with "
                 "its 95% bootstrap interval over the pairs (a property of the zoo, no training involved: the zoo "
                 "can test merging)",
                 {k: f"{v['mean']:.4g} [{v['ci'][0]:.4g}, {v['ci'][1]:.4g}]" for k, v in iv.items()},
                 holds=all(v["ci"][0] > 0 for v in iv.values()),
                 target="interval above 0 on every zoo").marked("course")


def build_claims(runs: dict[str, list[dict]], screens: dict[str, dict], floor: dict[str, dict],
                 kinds: dict[str, str]) -> list:
    """The experiment's claims from its per-seed runs, screens and floors (see the module docstring)."""
    n = len(next(iter(runs.values())))
    ratio = {}  # decoded / naive orbit barrier, worst seed, per zoo and group
    p_keeps, pd_removes = {}, {}
    for k, rs in runs.items():
        for g in ORBIT_GROUPS:
            nb = [max(r["orbit"][g]["barrier"]["naive"], 1e-30) for r in rs]
            ratio[f"{k}/{g}"] = max(r["orbit"][g]["barrier"]["decoded"] / b for r, b in zip(rs, nb))
            if g != "P":
                r0, b0 = rs[0], nb[0]  # naive and matching do not depend on the autoencoder seed
                p_keeps[f"{k}/{g}"] = r0["orbit"][g]["barrier"]["weight_matching_P"] / b0
                pd_removes[f"{k}/{g}"] = r0["orbit"][g]["barrier"]["weight_matching"] / b0
    inv = max(r["invariance_f64"]["max_relative"] for rs in runs.values() for r in rs)
    d_wm = _paired(runs, "decoded", "weight_matching", "barrier")
    d_naive = _paired(runs, "decoded", "naive", "barrier")
    d_abs = _paired(runs, "decoded", "weight_matching", "max_loss")
    gap = {k: _floor_gap(rs, kinds[k], floor[k]) for k, rs in runs.items()}
    pk_ok = all(v >= 0.5 for v in p_keeps.values())
    pd_ok = all(v <= ORBIT_RATIO for v in pd_removes.values())
    return [
        naive_barrier_claim(screens, runs),
        claim("orbit-no-barrier-after-canonicalization",
              "Orbit test (published): a held-out network vs a random member of its own orbit under P, D and PD "
              f"(+ noise {ORBIT_NOISE:g}): the decoded barrier is at most {ORBIT_RATIO:g} x the naive one, every "
              f"zoo, group and each of {n} autoencoder seeds (worst seed shown)",
              {k: round(v, 6) for k, v in ratio.items()}, holds=all(v <= ORBIT_RATIO for v in ratio.values()),
              target=f"decoded/naive <= {ORBIT_RATIO:g} for every zoo and group").marked("autoencoder paper"),
        claim("orbit-permutation-matching-misses-diagonal",
              "Orbit test: on D and PD orbits, matching permutations only (plain Git Re-Basin) keeps at least half "
              f"the naive barrier, while matching P and D (sign flips, scalings) leaves at most {ORBIT_RATIO:g} of it "
              "(barrier / naive barrier shown as P-only | PD)",
              {k: f"{p_keeps[k]:.3f} | {pd_removes[k]:.4f}" for k in p_keeps}, holds=pk_ok and pd_ok,
              target=f"P-only >= 0.5 and PD <= {ORBIT_RATIO:g} for every zoo and group").marked("autoencoder paper"),
        _zoo_claim("ae-barrier-below-naive",
                   f"{N_PAIRS} pairs of different held-out networks, {n} autoencoder seeds: barrier of decoded "
                   "interpolation minus naive interpolation's", d_naive, "<").marked("autoencoder paper"),
        _zoo_claim("ae-barrier-below-weight-matching",
                   f"{N_PAIRS} pairs, {n} autoencoder seeds: barrier of decoded interpolation minus PD weight "
                   "matching's (each relative to its own endpoints)", d_wm, "<").marked("course"),
        _zoo_claim("ae-path-loss-below-weight-matching",
                   f"{N_PAIRS} pairs, {n} autoencoder seeds, judged in absolute terms: the worst loss along the "
                   "decoded path minus the worst loss along the PD weight-matching path (a decoder whose endpoints "
                   "are worse cannot pass by a small barrier)", d_abs, "<").marked("course"),
        _zoo_claim("ae-reconstruction-above-floor",
                   f"Held-out networks, {n} autoencoder seeds: decoded PSNR minus the mean-image floor's (INRs, dB); "
                   "decoded agreement with the originals minus the one-network floor's (CNNs)", gap, ">"
                   ).marked("course"),
        claim("latent-invariant",
              "The trained encoder's latent code is invariant to random gauge elements (float64 relative error, "
              "every seed)", inv, "<=", default_tolerance(torch.float64)).marked("course"),
    ]


@experiment("merging")
def run(ctx: RunContext) -> dict:
    chosen = setups(ctx.quick, ctx.reference)
    seeds = REFERENCE_SEEDS if ctx.reference else QUICK_SEEDS
    big = ctx.reference or not ctx.quick
    orbit_size = {k: v[1] if big else v[0] for k, v in ORBIT_SIZE.items()}
    t_all = time.perf_counter()
    screens, floor, kinds, zoo_info, shared = {}, {}, {}, {}, {}
    for s in chosen + _screen_setups(chosen):
        prep = prepare(s, ctx.device, ctx.progress, ctx.seed, ctx.quick, ctx.reference)  # builds the zoo here
        if s in chosen:  # the naive and weight-matching paths, once for every autoencoder seed
            shared[s.name] = shared_figures(prep, s.kind, ctx.seed, *orbit_size[s.kind])
        screens[s.name] = screen(prep, s.kind, ctx.seed, pairs=shared[s.name]["pairs"] if s in chosen else None)
        screens[s.name].update(source=s.source, recipe=prep.recipe.name, where=s.where, top=s.top)
        if s in chosen:
            floor[s.name], kinds[s.name] = floors(prep, s.kind), s.kind
            zoo_info[s.name] = {"recipe": prep.recipe.name, "networks": screens[s.name]["n_networks"],
                                "train": prep.train.batch_size, "test": prep.test.batch_size,
                                "spec": prep.train.spec.to_text(), "where": s.where, "top": s.top,
                                "steps": s.steps, "config": s.config.to_dict()}
        del prep
    est = sum(s.steps for s in chosen) * len(seeds) * SECONDS_PER_STEP
    n = plan_workers(len(chosen) * len(seeds), est_seconds=est, device=ctx.device)
    jobs = [(s, seed, str(ctx.device), ctx.seed, ctx.quick,
             str(ctx.path(f"merging_ae_{s.name}.pt")) if seed == seeds[0] else None, ctx.progress and n == 1,
             ctx.reference, *orbit_size[s.kind], shared[s.name], N_PAIRS)
            for s in chosen for seed in seeds]  # progress bars only in this process
    outs = run_jobs(seed_run, jobs, n, names=[f"autoencoder {j[0].name} seed {j[1]}" for j in jobs])
    runs: dict[str, list[dict]] = {}
    for (s, *_), r in zip(jobs, outs):
        runs.setdefault(s.name, []).append(r)
    claims = build_claims(runs, screens, floor, kinds)
    results = {k: v[0] for k, v in runs.items()}  # the first seed's full record per zoo
    fairness = {k: {"pair_path_summary_by_seed": [r["pair_path_summary"] for r in rs],
                    "reconstruction_test_by_seed": [r["reconstruction_test"] for r in rs],
                    "decoded_pair_distance_ratio_by_seed": [r["decoded_pair_distance_ratio"] for r in rs],
                    "decoded_minus_wm_barrier": _paired({k: rs}, "decoded", "weight_matching", "barrier")[k],
                    "decoded_minus_naive_barrier": _paired({k: rs}, "decoded", "naive", "barrier")[k],
                    "decoded_minus_wm_max_path_loss": _paired({k: rs}, "decoded", "weight_matching", "max_loss")[k],
                    "decoded_minus_original_endpoint_loss": _paired({k: rs}, "decoded", "naive", "endpoint_loss")[k],
                    "floor": floor[k], "reconstruction_minus_floor": _floor_gap(rs, kinds[k], floor[k])}
                for k, rs in runs.items()}
    return {"claims": claims, "zoos": results, "zoo_info": zoo_info, "screen": screens, "fairness": fairness,
            "seeds": list(seeds), "sources": {s.name: s.source for s in chosen},
            "runs_by_seed": {k: [{kk: vv for kk, vv in r.items()
                                  if kk not in ("pairs", "pair_path", "reconstruction_per_network")}
                                 for r in rs] for k, rs in runs.items()},
            "methods": list(METHODS), "orbit_groups": list(ORBIT_GROUPS), "seconds": time.perf_counter() - t_all}
