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
comparisons are paired and decided by 95% clustered bootstrap intervals over networks and seeds.

Controls (issue 33; :mod:`~scalegmn_lite.tasks.merging.controls`), each a row of ``controls[zoo][name]``
(per-pair path figures, per-network reconstruction, their intervals and ``decoded_minus_control``):
``constant-decoder`` (the floor network, :func:`floor_network_index`, for every input: its path is flat,
barrier 0 by construction), ``mean-network`` (the training networks' weight mean for every input) and
``shuffled-codes`` (the trained autoencoder decoding another input's code, a fixed derangement that for
INRs never picks another view of the input's own image). A path claim holds only if the decoded path
beats the method it names *and* has a lower worst loss along the path than every control's path (paired
per pair; the barrier cannot be compared with a flat path's 0); the reconstruction claim needs the decoded
network above the floor and above every control's output for the same input. Each claim is decided by
:func:`~scalegmn_lite.common.claims.combine_status` over all its comparisons, showing the deciding one.

Dependence: pairs are drawn with replacement of networks, so pairs sharing a network (for INRs, an
image: several INRs fit one image) are resampled together (``clusters[zoo]["pairs"]``: connected
components of the pair graph); held-out INRs are clustered by image, orbit draws by network (image).
:func:`recompute_result` rebuilds every interval and claim of a stored ``merging.json`` from its
per-pair / per-network figures (``runs_by_seed`` keeps them for every seed).

Claims, each marked with its source (REPORT.md shows it) and kind (finding / check):
``[autoencoder paper]`` the autoencoder paper's, ``[course]`` this course's own checks.
    ``naive-barrier-exists`` [course, finding]: naive interpolation of different networks has a barrier
        > 0 on every zoo (the zoo can test merging), clustered interval over pairs;
    ``orbit-no-barrier-after-canonicalization`` [autoencoder paper, check]: orbit test under P, D and PD,
        the decoded barrier is at most 1% of the naive one, every zoo and seed;
    ``orbit-permutation-matching-misses-diagonal`` [autoencoder paper, finding]: on D and PD orbits plain
        permutation matching keeps at least half the naive barrier while PD matching removes it (<= 1%),
        intervals of the ratio of summed barriers over the orbit draws;
    ``ae-barrier-below-naive`` [autoencoder paper, finding]: pairs, decoded barrier minus naive barrier < 0,
        and the controls beaten;
    ``ae-barrier-below-weight-matching`` [course, finding]: decoded minus PD weight matching's barrier < 0,
        and the controls beaten;
    ``ae-path-loss-below-weight-matching`` [course, finding]: the same in absolute terms (worst loss
        along the path), so a decoder with worse endpoints cannot pass by a small barrier; controls beaten;
    ``ae-reconstruction-above-floor`` [course, finding]: held-out decoded PSNR above the mean-image floor
        (INRs), decoded agreement with the originals above the one-network floor (CNNs), and above every
        control's output for the same input;
    ``latent-invariant`` [course, check]: relative invariance error of the encoder in float64 <= 1e-9.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import torch

from ..common.claims import claim, combine_status, deciding_comparison, interval_claim
from ..common.parallel import plan_workers, run_jobs
from ..common.stats import bootstrap_mean, bootstrap_stat, decide
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
from ..tasks.merging.controls import (
    CONTROLS,
    constant_outputs,
    derangement,
    mean_network,
    output_path_figures,
    pair_clusters,
    shuffled_outputs,
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
           "shared_inr_recipe", "prepare", "evaluate", "screen", "seed_run", "build_claims", "recompute_result",
           "floor_network_index", "shared_controls", "path_comparisons", "reconstruction_comparisons"]

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

#: quick size (sized with the other quick studies so that ``reproduce --quick --jobs 2`` fits 20 minutes on
#: 2 cores, issue 34): 300 steps on the INRs, 250 on the CNNs, 3 seeds
QUICK_SETUPS = [
    ZooSetup("inr", "inr-dws-digits", "inr", config=_AE, steps=300, warmup_steps=30, split_by="image_index",
             **_TRAIN),
    ZooSetup("cnn-relu", "cnn1d-hp-mnist1d", "classifier", {"activation": "relu"}, _AE, steps=250, warmup_steps=25,
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
    cl = pairs.get("pair_clusters") or pair_clusters(pairs["pairs"], network_units(prep, kind))
    return {"pairs": pairs["pairs"], "n_networks": prep.train.batch_size + prep.test.batch_size,
            "pair_clusters": cl, "cluster_by": pairs.get("cluster_by") or _cluster_by(prep, kind),
            "barrier": {m: _interval(np.asarray(path[m]["barrier"])[None], cl) for m in SHARED_METHODS},
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
    best = floor_network_index(prep, kind, n_candidates)
    q = prep.task.quality(constant_outputs(tr[best:best + 1], te.batch_size), te)
    return {"one_network_accuracy": float(q["accuracy"].mean()), "one_network_agreement": float(q["agreement"].mean())}


def floor_network_index(prep: Prepared, kind: str, n_candidates: int = 64) -> int:
    """Index (in ``prep.train``) of the *floor network*: the one training network a decoder that ignores
    its input would do best to output. CNNs: of the first ``n_candidates``, the one whose predictions
    agree best with the training networks' (:func:`floors`' one-network floor). INRs: the mean-image
    floor of :func:`floors` is a rendering, not a network, so the floor network is the training INR (of
    the first 1024) whose rendering is closest (MSE) to the training INRs' mean rendering."""
    tr = prep.train
    with torch.no_grad():
        if kind == "inr":
            out = prep.task.outputs(tr[:1024])
            return int((out - out.mean(0, keepdim=True)).pow(2).flatten(1).mean(1).argmin())
        x = prep.task.x.to(device=tr.device, dtype=tr.dtype)
        pred_tr = tr(x).argmax(-1)  # [B_tr, N]
        cand = pred_tr[:n_candidates]
        agree = (cand[:, None, :] == pred_tr[None]).float().mean((1, 2))
    return int(agree.argmax())


def network_units(prep: Prepared, kind: str) -> np.ndarray:
    """The independent unit of every held-out network: its image (``image_index``) for INRs (the INRs of
    one image are not independent), the network itself otherwise."""
    md = prep.test_metadata
    if kind == "inr" and "image_index" in md:
        return np.asarray(md["image_index"].to_numpy()).astype(np.int64)
    return np.arange(prep.test.batch_size)


#: per held-out network, the reconstruction figure the claims use: PSNR (dB) for INRs, agreement with
#: the original's predictions for CNNs (higher is better for both)
QUALITY = {"inr": "psnr", "classifier": "agreement"}


def shared_controls(prep: Prepared, kind: str, pairs) -> dict:
    """The controls that do not depend on the autoencoder (:mod:`~scalegmn_lite.tasks.merging.controls`):
    ``constant-decoder`` (the floor network, :func:`floor_network_index`, for every input) and
    ``mean-network`` (the weight mean of the training networks for every input): per pair the path
    figures of their (flat) paths, per held-out network their reconstruction figure (:data:`QUALITY`)."""
    tr, te = prep.train, prep.test
    best = floor_network_index(prep, kind)
    nets = {"constant-decoder": (tr[best:best + 1], f"training network {best} (the floor network) for every input"),
            "mean-network": (mean_network(tr), f"the weight mean of the {tr.batch_size} training networks for "
                                               "every input")}
    out = {}
    for name, (net, what) in nets.items():
        outs = constant_outputs(net, te.batch_size)
        out[name] = {"description": what, "per_pair": output_path_figures(outs, te, pairs, prep.task),
                     "per_network": prep.task.quality(outs, te)[QUALITY[kind]].tolist()}
    out["constant-decoder"]["floor_network_index"] = best
    return out


#: the paths that do not depend on the autoencoder: computed once per zoo (:func:`shared_figures`)
SHARED_METHODS = ("naive", "weight_matching_P", "weight_matching_D", "weight_matching")
#: held-out networks and draws of the orbit test per kind of zoo, (quick, reference): a CNN path costs
#: ~20x an INR path on 2 CPU cores (a forward pass on the 1000 test signals per alpha). Quick takes one draw
#: (the orbit tests were about 160 of the quick run's 650 process-seconds with two; issue 34's 20 minutes)
ORBIT_SIZE = {"inr": ((64, 1), (128, 3)), "classifier": ((32, 1), (64, 2))}


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
    units = network_units(prep, kind)
    # pairs are drawn with replacement of networks (a network, and for INRs an image, may be in several
    # pairs): a pair's cluster is its connected component of pairs sharing a network / an image
    return {"pairs": idx.tolist(), "mean_curves": {m: c.losses.mean(0).tolist() for m, c in curves.items()},
            "path": {m: {k: v.tolist() for k, v in d.items()} for m, d in path.items()},
            "pair_clusters": pair_clusters(idx, units), "cluster_by": _cluster_by(prep, kind),
            "pair_units": units[idx].tolist()}


def _cluster_by(prep: Prepared, kind: str) -> str:
    return "image" if kind == "inr" and "image_index" in prep.test_metadata else "network"


def shared_figures(prep: Prepared, kind: str, seed: int, n_orbit: int, orbit_runs: int,
                   n_pairs: int | None = None) -> dict:
    """The autoencoder-independent paths (naive and weight matching) of the orbit test and the pairs,
    computed once per zoo and passed to :func:`evaluate` for every autoencoder seed."""
    pairs = pair_test(None, prep, kind, seed, n_pairs, SHARED_METHODS)
    units = network_units(prep, kind)
    n = min(n_orbit, prep.test.batch_size)
    return {"orbit": orbit_test(None, prep, seed, n_orbit, orbit_runs, SHARED_METHODS), "pairs": pairs,
            "controls": shared_controls(prep, kind, pairs["pairs"]),
            # orbit rows are run-major (orbit_runs x n networks): a row's unit is its network's (image)
            "orbit_clusters": np.tile(units[:n], orbit_runs).tolist(),
            "network_clusters": units.tolist(), "cluster_by": pairs["cluster_by"]}


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
    # control: the trained autoencoder decoding another input's code (a fixed derangement, the same for
    # every autoencoder seed; for INRs never the code of another view of the input's own image)
    perm = derangement(ws_te.batch_size, seed, network_units(prep, kind))
    shuffled = shuffled_outputs(ae, ws_te, perm)
    controls = {"shuffled-codes": {
        "per_pair": output_path_figures(shuffled, ws_te, idx, prep.task),
        "per_network": prep.task.quality(shuffled, ws_te)[QUALITY[kind]].tolist(), "permutation": perm.tolist()}}
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
        "controls": controls,
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


# ---------------------------------------------------------------------------------------------------
# intervals and claims, from the result dict alone (run() and recompute_result() share this code)


def _interval(x, clusters=None) -> dict:
    """Clustered bootstrap interval of the mean of ``x [S, N]`` (``[N]``: one seed); ``clusters`` one label
    per column. Fewer than 2 independent clusters give no interval (NaN, with a note), never a
    zero-width one."""
    x = np.asarray(x, dtype=np.float64)
    iv = bootstrap_mean(x[None] if x.ndim == 1 else x, clusters=clusters)
    if iv["clusters"] < 2:
        iv["ci"] = [float("nan"), float("nan")]
        iv["note"] = "fewer than 2 independent clusters: no interval"
    return iv


def _missing(reason: str) -> dict:
    """A comparison the file has no data for: a NaN interval (the claim is inconclusive) with the reason."""
    return {"mean": float("nan"), "ci": [float("nan"), float("nan")], "seeds": 1, "n": 0, "missing": reason}


def _kind_of(res: dict, k: str) -> str:
    if k in res.get("kinds", {}):
        return res["kinds"][k]
    return "inr" if "mean_image_psnr" in res["fairness"][k]["floor"] else "classifier"


def _seed_records(res: dict, k: str, notes: list) -> list[dict]:
    """Per autoencoder seed, the records with per-pair / per-network figures. Files from before issue
    33 keep them for the first seed only (``zoos``): then that seed's, with a note."""
    rs = res["runs_by_seed"][k]
    if all("pair_path" in r and "reconstruction_per_network" in r for r in rs):
        return rs
    notes.append(f"{k}: per-pair figures stored for the first autoencoder seed only (a file from before issue "
                 "33): its intervals resample pairs / networks of that seed, not seeds")
    return [res["zoos"][k]]


def _clusters(res: dict, k: str, what: str, notes: list):
    """Cluster labels of zoo ``k``'s ``"pairs"``, ``"networks"`` (held-out networks) or ``"orbit"`` rows,
    as stored; older files lack them: pairs are then clustered by shared networks (images unknown),
    networks and orbit rows by network."""
    got = res.get("clusters", {}).get(k, {}).get(what)
    if got is not None:
        return got
    if what == "pairs":
        notes.append(f"{k}: no cluster labels stored; pairs clustered by shared networks only")
        return pair_clusters(res["zoos"][k]["pairs"])
    if what == "orbit":
        o = res["runs_by_seed"][k][0]["orbit"]["PD"]
        notes.append(f"{k}: no orbit cluster labels stored; orbit rows clustered by network")
        return (np.arange(o["networks"] * o["runs"]) % o["networks"]).tolist()
    notes.append(f"{k}: no network cluster labels stored; held-out networks treated as independent")
    return None


def _pair_fig(recs: list[dict], method: str, fig: str) -> np.ndarray:
    return np.array([r["pair_path"][method][fig] for r in recs], dtype=np.float64)  # [S, P]


def _control_table(res: dict, k: str, name: str, part: str, fig: str | None, n_seeds: int) -> np.ndarray | None:
    """A control's per-pair (``part="per_pair"``, figure ``fig``) or per-network (``"per_network"``) figures
    as ``[S, N]`` (a seed-independent control broadcast over seeds); ``None`` if the file lacks them."""
    row = res.get("controls", {}).get(k, {}).get(name)
    if not row or part not in row:
        return None
    x = row[part][fig] if fig is not None else row[part]
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return np.broadcast_to(x, (n_seeds, len(x)))
    return x if len(x) == n_seeds else x[:n_seeds]


def _missing_control(k: str, name: str) -> dict:
    return _missing(f"{k}: control {name!r} is not stored in this file (run before issue 33); rerun the experiment")


#: path claims: (id, the method the decoded path is compared with, the figure of that comparison)
PATH_CLAIMS = {"ae-barrier-below-naive": ("naive", "barrier"),
               "ae-barrier-below-weight-matching": ("weight_matching", "barrier"),
               "ae-path-loss-below-weight-matching": ("weight_matching", "max_loss")}
#: the figure on which the decoded path must beat every control: the worst loss along the path (lower is
#: better); a constant control's flat path has barrier 0 by construction, so the barrier cannot tell a
#: collapsed decoder from a good one, the absolute loss can
CONTROL_FIGURE = "max_loss"


def path_comparisons(res: dict, k: str, method: str, fig: str, notes: list) -> dict[str, dict]:
    """Zoo ``k``: intervals (over pairs, clustered, and seeds) of the decoded path minus ``method``'s on
    ``fig``, and of the decoded path's :data:`CONTROL_FIGURE` minus each control's, paired per pair
    and seed."""
    recs = _seed_records(res, k, notes)
    cl = _clusters(res, k, "pairs", notes)
    out = {f"{k}/vs {method}": _interval(_pair_fig(recs, "decoded", fig) - _pair_fig(recs, method, fig), cl)}
    dec = _pair_fig(recs, "decoded", CONTROL_FIGURE)
    for c in CONTROLS:
        x = _control_table(res, k, c, "per_pair", CONTROL_FIGURE, len(recs))
        out[f"{k}/vs {c}"] = _interval(dec - x, cl) if x is not None else _missing_control(k, c)
    return out


def reconstruction_comparisons(res: dict, k: str, notes: list) -> dict[str, dict]:
    """Zoo ``k``: held-out decoded reconstruction (PSNR dB for INRs, agreement for CNNs; higher is better)
    minus the floor of :func:`floors` and minus each control's for the same input, over networks
    (clustered by image for INRs) and seeds."""
    kind = _kind_of(res, k)
    recs = _seed_records(res, k, notes)
    cl = _clusters(res, k, "networks", notes)
    q = np.array([r["reconstruction_per_network"][f"decoded_{QUALITY[kind]}"] for r in recs], dtype=np.float64)
    floor = res["fairness"][k]["floor"]
    fl = floor["mean_image_psnr"] if kind == "inr" else floor["one_network_agreement"]
    out = {f"{k}/vs floor": _interval(q - fl, cl)}
    for c in CONTROLS:
        x = _control_table(res, k, c, "per_network", None, len(recs))
        out[f"{k}/vs {c}"] = _interval(q - x, cl) if x is not None else _missing_control(k, c)
    return out


def _decided_claim(id: str, statement: str, comps: dict[str, tuple[dict, str, float]], target: str):
    """An interval claim that needs every comparison ``name -> (interval, op, threshold)`` to hold: status
    by :func:`combine_status`; the interval shown is the deciding comparison's
    (:func:`~scalegmn_lite.common.claims.deciding_comparison`).
    Missing comparisons (no data) are inconclusive and named in the statement."""
    st = combine_status([decide(iv["ci"], op, thr) for iv, op, thr in comps.values()])
    worst = deciding_comparison(comps)
    iv, op, thr = comps[worst]
    missing = [iv_["missing"] for iv_, _, _ in comps.values() if "missing" in iv_]
    if missing:
        statement += " [inconclusive by construction here: " + "; ".join(sorted(set(missing))) + "]"
    measured = {n: (round(v[0]["mean"], 6) if np.isfinite(v[0]["mean"]) else "missing") for n, v in comps.items()}
    measured["interval_of"] = worst
    return interval_claim(id, statement, iv, op, thr, measured=measured, status=st,
                          target=f"{target} (95% intervals; shown: {worst})")


def _zoo_claim(id: str, statement: str, per_zoo: dict[str, dict], op: str, threshold: float = 0.0) -> object:
    """A claim that must hold on every zoo: status combined over zoos; the interval shown is that of a
    zoo that decides the status: a refuting zoo if there is one (the one refuting most clearly), else
    the zoo closest to failing (largest upper bound for ``<``)."""
    return _decided_claim(id, statement, {k: (v, op, threshold) for k, v in per_zoo.items()},
                          f"{op} {threshold:g} on every zoo")


def _orbit_ratio(o: dict, method: str, clusters) -> dict:
    """Interval of ``sum barrier(method) / sum barrier(naive)`` over the orbit rows (clustered)."""
    num = np.asarray(o["per_network_barrier"][method], dtype=np.float64)
    den = np.asarray(o["per_network_barrier"]["naive"], dtype=np.float64)
    if clusters is not None and len(set(clusters)) < 2:
        return _missing("fewer than 2 independent orbit clusters")
    return bootstrap_stat(lambda s, idx: float(num[idx].sum() / max(den[idx].sum(), 1e-30)), 1, len(num),
                          clusters=clusters)


def build_claims(res: dict, notes: list | None = None) -> list:
    """The experiment's claims from its result dict (:func:`run`'s, or a stored ``merging.json``): every
    figure judged on a sample is a clustered interval claim (a finding); exact identities are checks."""
    notes = [] if notes is None else notes
    zoos = list(res["runs_by_seed"])
    runs = res["runs_by_seed"]
    n = len(next(iter(runs.values())))
    n_pairs = "/".join(str(v) for v in sorted({len(res["zoos"][k]["pairs"]) for k in zoos}))
    # naive barrier: a property of each zoo on its sample of pairs (clustered by shared networks / images)
    naive = {}
    for k in zoos:
        sc = res["screen"][k]
        cl = sc.get("pair_clusters")
        if cl is None:
            notes.append(f"{k}: screen pairs clustered by shared networks only (no labels stored)")
            cl = pair_clusters(sc["pairs"])
        naive[k] = (_interval(np.asarray(sc["per_pair"]["naive"])[None], cl), ">", 0.0)
    c_naive = _decided_claim(
        "naive-barrier-exists",
        f"{n_pairs} pairs of different held-out networks per zoo: the mean barrier of naive interpolation (a "
        "property of the zoo, no training involved: the zoo can test merging); 95% bootstrap intervals over "
        "the pairs, pairs that share a network (or, for INRs, an image) resampled together",
        naive, "> 0 on every zoo").marked("course")
    # orbit test
    ratio = {}
    ratio_iv: dict[str, tuple] = {}
    for k, rs in runs.items():
        ocl = _clusters(res, k, "orbit", notes)
        for g in ORBIT_GROUPS:
            nb = [max(r["orbit"][g]["barrier"]["naive"], 1e-30) for r in rs]
            ratio[f"{k}/{g}"] = max(r["orbit"][g]["barrier"]["decoded"] / b for r, b in zip(rs, nb))
            if g != "P":  # naive and matching do not depend on the autoencoder seed: the first seed's draws
                o = rs[0]["orbit"][g]
                ratio_iv[f"{k}/{g}/P-only keeps"] = (_orbit_ratio(o, "weight_matching_P", ocl), ">=", 0.5)
                ratio_iv[f"{k}/{g}/PD removes"] = (_orbit_ratio(o, "weight_matching", ocl), "<=", ORBIT_RATIO)
    inv = max(r["invariance_f64"]["max_relative"] for rs in runs.values() for r in rs)
    controls = ", ".join(CONTROLS)
    beat = (f"and beat every control ({controls}: the floor network for every input, the training networks' "
            f"weight mean for every input, the autoencoder decoding another input's code): the decoded path's "
            f"worst loss minus the control path's < 0, paired per pair (a constant control's flat path has "
            f"barrier 0 by construction, so the barrier cannot beat it; the absolute loss can)")
    base = (f"{n_pairs} pairs of different held-out networks, {n} autoencoder seeds (95% intervals over pairs "
            "and seeds; pairs sharing a network or an image resampled together)")
    path = {}
    for cid, (method, fig) in PATH_CLAIMS.items():
        comps = {}
        for k in zoos:
            comps.update({nm: (iv, "<", 0.0) for nm, iv in path_comparisons(res, k, method, fig, notes).items()})
        path[cid] = comps
    rec = {}
    for k in zoos:
        rec.update({nm: (iv, ">", 0.0) for nm, iv in reconstruction_comparisons(res, k, notes).items()})
    return [
        c_naive,
        claim("orbit-no-barrier-after-canonicalization",
              "Orbit test (published): a held-out network vs a random member of its own orbit under P, D and PD "
              f"(+ noise {ORBIT_NOISE:g}): the decoded barrier is at most {ORBIT_RATIO:g} x the naive one, every "
              f"zoo, group and each of {n} autoencoder seeds (worst seed shown; holds by construction: the "
              "encoder is invariant, so both endpoints decode to (almost) the same network)",
              {k: round(v, 6) for k, v in ratio.items()}, holds=all(v <= ORBIT_RATIO for v in ratio.values()),
              target=f"decoded/naive <= {ORBIT_RATIO:g} for every zoo and group", kind="check"
              ).marked("autoencoder paper"),
        _decided_claim(
            "orbit-permutation-matching-misses-diagonal",
            "Orbit test, on D and PD orbits of sampled held-out networks: matching permutations only (plain Git "
            "Re-Basin) keeps at least half the naive barrier (sum of barriers / sum of naive barriers >= 0.5), "
            f"while matching P and D (sign flips, scalings) leaves at most {ORBIT_RATIO:g} of it; 95% intervals "
            "over the orbit draws, the draws of one network (for INRs, of one image) resampled together",
            ratio_iv, f"P-only >= 0.5 and PD <= {ORBIT_RATIO:g} for every zoo and group").marked("autoencoder paper"),
        _decided_claim(
            "ae-barrier-below-naive",
            f"{base}: the barrier of decoded interpolation minus naive interpolation's < 0 (lower is better), "
            + beat, path["ae-barrier-below-naive"], "< 0 on every zoo and comparison").marked("autoencoder paper"),
        _decided_claim(
            "ae-barrier-below-weight-matching",
            f"{base}: the barrier of decoded interpolation minus PD weight matching's < 0 (each relative to its "
            "own endpoints; lower is better), " + beat, path["ae-barrier-below-weight-matching"],
            "< 0 on every zoo and comparison").marked("course"),
        _decided_claim(
            "ae-path-loss-below-weight-matching",
            f"{base}, judged in absolute terms: the worst loss along the decoded path minus the worst loss along "
            "the PD weight-matching path < 0 (lower is better; a decoder whose endpoints are worse cannot pass by "
            "a small barrier), " + beat, path["ae-path-loss-below-weight-matching"],
            "< 0 on every zoo and comparison").marked("course"),
        _decided_claim(
            "ae-reconstruction-above-floor",
            f"Held-out networks, {n} autoencoder seeds (95% intervals over networks, INRs of one image resampled "
            "together, and seeds): the decoded network's reconstruction (PSNR against the original's rendering "
            "for INRs, dB; agreement with the original's predictions for CNNs; higher is better) minus the "
            "floor's (the mean-image PSNR for INRs, the one-network agreement for CNNs) > 0, and minus each "
            f"control's output for the same input > 0 ({controls})", rec, "> 0 on every zoo and comparison"
        ).marked("course"),
        claim("latent-invariant",
              "The trained encoder's latent code is invariant to random gauge elements (float64 relative error, "
              "every seed)", inv, "<=", default_tolerance(torch.float64), kind="check").marked("course"),
    ]


def _control_rows(res: dict, notes: list) -> None:
    """Fill every control row of ``res["controls"]`` with its intervals (path figures over pairs,
    reconstruction over networks, and the decoded minus the control, paired)."""
    for k, rows in res.get("controls", {}).items():
        recs = _seed_records(res, k, notes)
        pcl, ncl = _clusters(res, k, "pairs", notes), _clusters(res, k, "networks", notes)
        kind = _kind_of(res, k)
        q = np.array([r["reconstruction_per_network"][f"decoded_{QUALITY[kind]}"] for r in recs], dtype=np.float64)
        for name, row in rows.items():
            S = len(recs)
            for fig in ("barrier", "max_loss", "mean_loss", "endpoint_loss"):
                row[fig] = _interval(_control_table(res, k, name, "per_pair", fig, S), pcl)
            rq = _control_table(res, k, name, "per_network", None, S)
            row["reconstruction"] = _interval(rq, ncl)
            row["decoded_minus_control"] = {
                fig: _interval(_pair_fig(recs, "decoded", fig) - _control_table(res, k, name, "per_pair", fig, S), pcl)
                for fig in ("barrier", "max_loss", "mean_loss")}
            row["decoded_minus_control"]["reconstruction"] = _interval(q - rq, ncl)


def _fairness(res: dict, notes: list) -> None:
    """The clustered intervals of ``res["fairness"]`` (decoded minus the other methods, reconstruction
    minus the floor), recomputed from the per-pair / per-network figures."""
    for k in res["runs_by_seed"]:
        recs = _seed_records(res, k, notes)
        cl = _clusters(res, k, "pairs", notes)
        f = res["fairness"][k]
        for key, (b, fig) in {"decoded_minus_wm_barrier": ("weight_matching", "barrier"),
                              "decoded_minus_naive_barrier": ("naive", "barrier"),
                              "decoded_minus_wm_max_path_loss": ("weight_matching", "max_loss"),
                              "decoded_minus_original_endpoint_loss": ("naive", "endpoint_loss")}.items():
            f[key] = _interval(_pair_fig(recs, "decoded", fig) - _pair_fig(recs, b, fig), cl)
        f["reconstruction_minus_floor"] = reconstruction_comparisons(res, k, notes)[f"{k}/vs floor"]


def _finish(res: dict) -> dict:
    """Every interval and claim of a result dict, from its per-pair / per-network figures."""
    notes: list[str] = []
    for k, sc in res["screen"].items():
        cl = sc.get("pair_clusters")
        if cl is None:
            cl = pair_clusters(sc["pairs"])
            notes.append(f"screen {k}: pairs clustered by shared networks only (no labels stored)")
        sc["barrier"] = {m: _interval(np.asarray(v)[None], cl) for m, v in sc["per_pair"].items()}
    _fairness(res, notes)
    _control_rows(res, notes)
    res["claims"] = build_claims(res, notes)
    res["recompute_notes"] = sorted(set(notes))
    return res


def recompute_result(result: dict) -> dict:
    """A stored ``merging.json`` (a dict) with every interval and claim rebuilt from the per-pair and
    per-network figures stored in it, with today's (clustered) bootstrap; no training, nothing
    recomputed from networks. ``result`` is not modified; claims come back as dicts.

    Controls (issue 33) an older file lacks are reported missing: their comparisons have NaN intervals
    and the claims that need them are inconclusive, with the reason in the statement. Whatever else
    the file lacks (per-pair figures of later seeds, cluster labels) is said in ``"recompute_notes"`` (and
    ``["recomputed"]["notes"]``). Old files hold no image index of their INRs: their pairs are clustered
    by shared networks only and their held-out INRs treated as independent (said in the notes)."""
    import copy

    res = _finish(copy.deepcopy(result))
    res["claims"] = [c.to_dict() for c in res["claims"]]
    res.setdefault("recomputed", {})["notes"] = list(res["recompute_notes"])  # what scalegmn_lite.recompute reports
    return res


def zoos(ctx: RunContext) -> list:
    """The zoos of the experiment's setups and of the screen's extra ones."""
    chosen = setups(ctx.quick, ctx.reference)
    return [_recipe(s, ctx.quick, ctx.reference) for s in chosen + _screen_setups(chosen)]


@experiment("merging", zoos=zoos)
def run(ctx: RunContext) -> dict:
    chosen = setups(ctx.quick, ctx.reference)
    seeds = REFERENCE_SEEDS if ctx.reference else QUICK_SEEDS
    big = ctx.reference or not ctx.quick
    orbit_size = {k: v[1] if big else v[0] for k, v in ORBIT_SIZE.items()}
    t_all = time.perf_counter()
    screens, floor, kinds, zoo_info, shared, clusters = {}, {}, {}, {}, {}, {}
    for s in chosen + _screen_setups(chosen):
        prep = prepare(s, ctx.device, ctx.progress, ctx.seed, ctx.quick, ctx.reference)  # builds the zoo here
        if s in chosen:  # the naive and weight-matching paths, once for every autoencoder seed
            shared[s.name] = shared_figures(prep, s.kind, ctx.seed, *orbit_size[s.kind])
            sh = shared[s.name]
            clusters[s.name] = {"by": sh["cluster_by"], "pairs": sh["pairs"]["pair_clusters"],
                                "pair_units": sh["pairs"]["pair_units"], "networks": sh["network_clusters"],
                                "orbit": sh["orbit_clusters"]}
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
    # controls: seed-independent ones from the shared figures, shuffled codes per autoencoder seed
    controls = {}
    for k, rs in runs.items():
        controls[k] = {name: dict(row) for name, row in shared[k]["controls"].items()}
        sc = [r["controls"]["shuffled-codes"] for r in rs]
        controls[k]["shuffled-codes"] = {
            "description": "the trained autoencoder decoding another input's code (a fixed derangement; per seed)",
            "permutation": sc[0]["permutation"],
            "per_pair": {fig: [x["per_pair"][fig] for x in sc] for fig in sc[0]["per_pair"]},
            "per_network": [x["per_network"] for x in sc]}
    results = {k: {kk: vv for kk, vv in v[0].items() if kk != "controls"} for k, v in runs.items()}
    fairness = {k: {"pair_path_summary_by_seed": [r["pair_path_summary"] for r in rs],
                    "reconstruction_test_by_seed": [r["reconstruction_test"] for r in rs],
                    "decoded_pair_distance_ratio_by_seed": [r["decoded_pair_distance_ratio"] for r in rs],
                    "floor": floor[k]}
                for k, rs in runs.items()}
    res = {"zoos": results, "zoo_info": zoo_info, "screen": screens, "fairness": fairness,
           "seeds": list(seeds), "sources": {s.name: s.source for s in chosen}, "kinds": kinds,
           "controls": controls, "clusters": clusters,
           # per seed everything but the pairs (the same for every seed: ``zoos[k]["pairs"]``) and the
           # controls (gathered in ``controls``): recompute_result rebuilds every interval from these
           "runs_by_seed": {k: [{kk: vv for kk, vv in r.items() if kk not in ("pairs", "controls")} for r in rs]
                            for k, rs in runs.items()},
           "methods": list(METHODS), "orbit_groups": list(ORBIT_GROUPS), "controls_names": list(CONTROLS)}
    res = _finish(res)
    res["seconds"] = time.perf_counter() - t_all
    return res
