"""Model merging with a ScaleGMN autoencoder (issue 6): the four interpolation methods, the orbit
test, pairs of networks, and reconstruction quality.

Methods for a pair ``(theta_0, theta_1)`` of networks of one spec (``alpha`` in ``[0, 1]``):

* ``"naive"``:            ``(1 - alpha) theta_0 + alpha theta_1``;
* ``"weight_matching"``:  ``(1 - alpha) theta_0 + alpha g theta_1`` with ``g`` from
  :func:`~scalegmn_lite.tasks.merging.matching.weight_matching` searching permutations *and* the diagonal
  part of the gauge group (sign flips, positive scalings): the autoencoder paper's "PD" variant;
* ``"weight_matching_P"``, ``"weight_matching_D"``: the same with permutations only (plain Git
  Re-Basin) or the diagonal part only;
* ``"decoded"``:          ``(1 - alpha) D(E(theta_0)) + alpha D(E(theta_1))``: both networks are
  replaced by their canonical representatives (the encoder is invariant, so ``D(E(.))`` is
  constant on every gauge orbit) and the decoded weights are interpolated;
* ``"latent"``:           ``D((1 - alpha) E(theta_0) + alpha E(theta_1))``.

Task losses along a path (the barrier is :func:`~scalegmn_lite.tasks.merging.paths.loss_barrier` of the curve):

* INRs (:class:`INRMergeTask`): MSE between the rendering of ``theta_alpha`` and the pixel-space
  blend of the *original* networks' renderings, ``(1 - alpha) f_{theta_0} + alpha f_{theta_1}``
  (for the orbit test both renderings are the same image);
* classifiers (:class:`ClassifierMergeTask`): cross-entropy on a labelled data set.

The decoded and latent paths are scored against the originals too, so their end points carry the
autoencoder's reconstruction error; the barrier subtracts the straight line between the end points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ...weightspace.gauge import GaugeElement
from ...weightspace.weights import WeightSpace
from ..losses import accuracy, classification_loss, psnr, render_inr
from .autoencoder import WeightAutoencoder
from .matching import align
from .paths import LossCurve, _alphas, loss_barrier, loss_curve

__all__ = [
    "METHODS",
    "MATCHING_GROUPS",
    "ORBIT_GROUPS",
    "INRMergeTask",
    "INRImageTask",
    "ClassifierMergeTask",
    "orbit_curves",
    "latent_loss_curve",
    "merge_curves",
    "barriers",
    "path_figures",
    "orbit_partner",
    "same_class_pairs",
    "random_pairs",
    "reconstruction_quality",
    "function_distance_ratio",
    "summarize",
]

METHODS = ("naive", "weight_matching_P", "weight_matching_D", "weight_matching", "decoded", "latent")
#: the weight-matching methods and the part of the gauge group each searches
MATCHING_GROUPS = {"weight_matching_P": "P", "weight_matching_D": "D", "weight_matching": "PD"}
#: the orbits of the published orbit test: permutations (P), the diagonal part (D: sign flips or
#: positive scalings) and both (PD)
ORBIT_GROUPS = ("P", "D", "PD")


@dataclass
class INRMergeTask:
    """Loss of INRs along a path: MSE to the blend of the original renderings on ``coords [N, d]``."""

    coords: torch.Tensor
    data_range: float = 1.0
    name: str = "inr"

    def loss_fn(self, ref0: WeightSpace, ref1: WeightSpace, alphas) -> Callable[[WeightSpace], torch.Tensor]:
        """``fn(ws) -> [A * B]`` for alpha-major batches of the ``B`` pairs ``(ref0[b], ref1[b])``."""
        c = self.coords.to(device=ref0.device, dtype=ref0.dtype)
        with torch.no_grad():
            t0, t1 = render_inr(ref0, c), render_inr(ref1, c)  # [B, N, o]
        a = _alphas(alphas).to(device=ref0.device, dtype=ref0.dtype).view(-1, 1, 1, 1)
        target = ((1 - a) * t0 + a * t1).reshape(-1, *t0.shape[1:])  # [A * B, N, o]

        def fn(ws: WeightSpace) -> torch.Tensor:
            out = render_inr(ws, c.to(ws.dtype))
            if out.shape != target.shape:
                raise ValueError(f"expected {target.shape[0]} networks (all alphas at once), got {out.shape[0]}")
            return (out - target.to(out.dtype)).pow(2).flatten(1).mean(1)

        return fn

    def outputs(self, ws: WeightSpace) -> torch.Tensor:
        """``[B, N, o]`` renderings (for :func:`function_distance_ratio`)."""
        with torch.no_grad():
            return render_inr(ws, self.coords.to(device=ws.device, dtype=ws.dtype))

    def quality(self, ws: WeightSpace, ref: WeightSpace) -> dict[str, torch.Tensor]:
        """``psnr [B]`` (dB) of ``ws`` against the rendering of ``ref``."""
        c = self.coords.to(device=ws.device, dtype=ws.dtype)
        return {"psnr": psnr(ws, ref.to(device=ws.device, dtype=ws.dtype), c, self.data_range)}


@dataclass
class INRImageTask:
    """Loss of INRs along a path against fixed ground-truth images: the published orbit test scores
    the rendering of every interpolated INR against the digit it was fitted to.

    ``images [B, N, o]`` (pixel ``n`` at ``coords[n]``): the image of pair ``b``, whichever method."""

    coords: torch.Tensor
    images: torch.Tensor
    name: str = "inr-image"

    def loss_fn(self, ref0: WeightSpace, ref1: WeightSpace, alphas) -> Callable[[WeightSpace], torch.Tensor]:
        B = ref0.batch_size
        if self.images.shape[0] != B:
            raise ValueError(f"{self.images.shape[0]} ground-truth images for {B} pairs")
        c = self.coords.to(device=ref0.device, dtype=ref0.dtype)
        img = self.images.to(device=ref0.device, dtype=ref0.dtype)

        def fn(ws: WeightSpace) -> torch.Tensor:
            out = render_inr(ws, c.to(ws.dtype))
            reps = out.shape[0] // B
            if reps * B != out.shape[0]:
                raise ValueError(f"expected a multiple of {B} networks (alpha-major), got {out.shape[0]}")
            return (out - img.to(out.dtype).repeat(reps, 1, 1)).pow(2).flatten(1).mean(1)

        return fn


@dataclass
class ClassifierMergeTask:
    """Loss of classifiers along a path: cross-entropy on ``x [N, *input_shape]``, ``y [N]``."""

    x: torch.Tensor
    y: torch.Tensor
    name: str = "classifier"

    def loss_fn(self, ref0: WeightSpace, ref1: WeightSpace, alphas) -> Callable[[WeightSpace], torch.Tensor]:
        def fn(ws: WeightSpace) -> torch.Tensor:
            return classification_loss(ws, self.x.to(device=ws.device, dtype=ws.dtype), self.y.to(ws.device))

        return fn

    def outputs(self, ws: WeightSpace) -> torch.Tensor:
        """``[B, N, C]`` class probabilities on ``x`` (for :func:`function_distance_ratio`)."""
        with torch.no_grad():
            return ws(self.x.to(device=ws.device, dtype=ws.dtype)).softmax(-1)

    def quality(self, ws: WeightSpace, ref: WeightSpace) -> dict[str, torch.Tensor]:
        """``accuracy [B]`` of ``ws`` and ``agreement [B]`` (same argmax as ``ref``) on ``x``."""
        x = self.x.to(device=ws.device, dtype=ws.dtype)
        with torch.no_grad():
            agree = (ws(x).argmax(-1) == ref.to(device=ws.device, dtype=ws.dtype)(x).argmax(-1)).to(ws.dtype).mean(1)
        return {"accuracy": accuracy(ws, x, self.y.to(ws.device)), "agreement": agree}


def latent_loss_curve(ae: WeightAutoencoder, z0: torch.Tensor, z1: torch.Tensor,
                      loss_fn: Callable[[WeightSpace], torch.Tensor], alphas=21) -> LossCurve:
    """Loss along ``D((1 - alpha) z0 + alpha z1)``; ``z0, z1 [B, latent]`` -> ``LossCurve`` (losses ``[B, A]``)."""
    a = _alphas(alphas)
    A, B = a.numel(), z0.shape[0]
    aa = a.to(device=z0.device, dtype=z0.dtype).view(A, 1, 1)
    z = ((1 - aa) * z0.unsqueeze(0) + aa * z1.unsqueeze(0)).reshape(A * B, -1)  # alpha-major
    with torch.no_grad():
        losses = torch.as_tensor(loss_fn(ae.decode(z)))
    return LossCurve(a, losses.reshape(A, B).T.contiguous())


def merge_curves(ae: WeightAutoencoder | None, ws0: WeightSpace, ws1: WeightSpace, task,
                 alphas=21, methods: Sequence[str] = METHODS, seed: int = 0) -> dict[str, LossCurve]:
    """Loss curves of every method for the ``B`` pairs ``(ws0[b], ws1[b])`` (see the module docstring).

    ``ae`` may be ``None`` when only ``"naive"`` and ``"weight_matching"`` are asked for.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    if ae is None and {"decoded", "latent"} & set(methods):
        raise ValueError("the 'decoded' and 'latent' methods need a trained autoencoder")
    a = _alphas(alphas)
    fn = task.loss_fn(ws0, ws1, a)
    out: dict[str, LossCurve] = {}
    for m in methods:
        if m == "naive":
            out[m] = loss_curve(ws0, ws1, fn, a)
        elif m in MATCHING_GROUPS:
            out[m] = loss_curve(ws0, align(ws0, ws1, seed=seed, group=MATCHING_GROUPS[m]), fn, a)
        elif m == "decoded":
            d0, d1 = ae.reconstruct(ws0).to(dtype=ws0.dtype), ae.reconstruct(ws1).to(dtype=ws0.dtype)
            out[m] = loss_curve(d0, d1, fn, a)
        else:
            z0, z1 = ae.encode_all(ws0), ae.encode_all(ws1)
            out[m] = latent_loss_curve(ae, z0, z1, lambda w: fn(w.to(dtype=ws0.dtype)), a)
    return out


#: the paths of the published orbit test: naive, weight matching with P, D and PD, decoded
ORBIT_METHODS = ("naive", "weight_matching_P", "weight_matching_D", "weight_matching", "decoded")


def orbit_curves(ae: WeightAutoencoder | None, ws: WeightSpace, task, group: str, noise: float,
                 generator: torch.Generator | None = None, alphas=21,
                 methods: Sequence[str] = ORBIT_METHODS,
                 seed: int = 0) -> dict[str, LossCurve]:
    """The published orbit test for one draw: each network of ``ws`` against a random member of its
    own orbit under ``group`` (P, D or PD, :func:`orbit_partner`) plus noise of relative size
    ``noise``, interpolated by every method of ``methods``; losses from ``task`` (e.g.
    :class:`INRImageTask`: the rendered image against the ground-truth digit). Without noise the two
    endpoints compute the same function, so any barrier is the price of the weights' misalignment."""
    partner, _ = orbit_partner(ws, noise, generator, group)
    return merge_curves(ae, ws, partner, task, alphas, methods, seed)


def barriers(curves: dict[str, LossCurve]) -> dict[str, torch.Tensor]:
    """``{method: [B] barriers}``."""
    return {m: loss_barrier(c) for m, c in curves.items()}


def path_figures(curves: dict[str, LossCurve]) -> dict[str, dict[str, torch.Tensor]]:
    """Per method and pair (``[B]`` each), in absolute terms, so that a method whose endpoints are worse
    cannot look good by its barrier alone:

    * ``barrier``: ``max_alpha L(alpha) - ((1 - alpha) L(0) + alpha L(1))`` (relative to its endpoints);
    * ``max_loss``: ``max_alpha L(alpha)``, the worst loss along the path;
    * ``mean_loss``: the mean loss over the alphas (the area under the path, normalised);
    * ``endpoint_loss``: ``(L(0) + L(1)) / 2``, the loss of the path's own endpoints (the originals for
      naive and weight matching, the decoded networks for ``decoded`` and ``latent``).
    """
    out = {}
    for m, c in curves.items():
        loss = torch.as_tensor(c.losses).double().cpu()
        out[m] = {"barrier": loss_barrier(c).double().cpu(), "max_loss": loss.max(1).values,
                  "mean_loss": loss.mean(1), "endpoint_loss": (loss[:, 0] + loss[:, -1]) / 2}
    return out


def orbit_partner(ws: WeightSpace, noise: float = 0.0, generator: torch.Generator | None = None,
                  group: str = "PD") -> tuple[WeightSpace, GaugeElement]:
    """``(g . ws + noise * rms_l * eps, g)``: a random gauge transform of each network (a symmetry
    of its own activation) plus Gaussian noise of relative size ``noise`` per tensor (``rms_l``: the
    tensor's RMS in that network). ``group``: ``"PD"`` draws permutations and sign flips / positive
    scalings, ``"P"`` permutations only, ``"D"`` sign flips / scalings only (:data:`ORBIT_GROUPS`)."""
    if group not in ORBIT_GROUPS:
        raise ValueError(f"group must be one of {ORBIT_GROUPS}, got {group!r}")
    g = GaugeElement.sample(ws.spec, ws.batch_size, generator, permute="P" in group, scale="D" in group,
                            device=ws.device, dtype=ws.dtype)
    out = g.apply(ws)
    if noise > 0:
        def add(t: torch.Tensor) -> torch.Tensor:
            rms = t.pow(2).flatten(1).mean(1).sqrt().view(-1, *([1] * (t.dim() - 1)))
            eps = torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)
            return t + noise * rms * eps

        out = out.map(add)
    return out, g


def same_class_pairs(labels: Sequence[int] | torch.Tensor, n_pairs: int, seed: int = 0,
                     distinct: Sequence[int] | None = None) -> np.ndarray:
    """``[n_pairs, 2]`` index pairs ``(i, j)``, ``i != j``, with ``labels[i] == labels[j]``, distinct
    pairs drawn uniformly (seeded). With ``distinct`` (e.g. each INR's image index), pairs must also
    differ in it (two views of one image are not a pair of different networks of a digit). Raises if
    fewer such pairs exist."""
    lab = np.array(labels.tolist() if isinstance(labels, torch.Tensor) else list(labels))
    grp = np.arange(len(lab)) if distinct is None else np.asarray(distinct)
    cand = [(i, j) for i in range(len(lab)) for j in range(i + 1, len(lab)) if lab[i] == lab[j] and grp[i] != grp[j]]
    if len(cand) < n_pairs:
        raise ValueError(f"only {len(cand)} same-class pairs among {len(lab)} networks, asked for {n_pairs}")
    rng = np.random.default_rng(seed)
    return np.asarray(cand)[np.sort(rng.choice(len(cand), n_pairs, replace=False))]


def random_pairs(n: int, n_pairs: int, seed: int = 0) -> np.ndarray:
    """``[n_pairs, 2]`` distinct index pairs ``(i, j)``, ``i < j < n`` (seeded)."""
    total = n * (n - 1) // 2
    if total < n_pairs:
        raise ValueError(f"only {total} pairs among {n} networks, asked for {n_pairs}")
    cand = np.array([(i, j) for i in range(n) for j in range(i + 1, n)])
    rng = np.random.default_rng(seed)
    return cand[np.sort(rng.choice(total, n_pairs, replace=False))]


def reconstruction_quality(ae: WeightAutoencoder, ws: WeightSpace, task) -> dict[str, float]:
    """Mean quality of ``D(E(ws))`` against ``ws`` (INR: PSNR in dB; classifiers: accuracy of
    original and decoded networks and their agreement)."""
    dec = ae.reconstruct(ws).to(dtype=ws.dtype)
    out = {f"decoded_{k}": float(v.mean()) for k, v in task.quality(dec, ws).items()}
    if isinstance(task, ClassifierMergeTask):
        out["original_accuracy"] = float(task.quality(ws, ws)["accuracy"].mean())
    return out


def function_distance_ratio(ae: WeightAutoencoder, ws0: WeightSpace, ws1: WeightSpace, task) -> float:
    """``mean_b ||f_{D(E(ws0_b))} - f_{D(E(ws1_b))}||^2 / mean_b ||f_{ws0_b} - f_{ws1_b}||^2`` on the task's
    inputs: how far apart the decoded networks of a pair are, relative to the originals. Near 0 means
    the decoder maps different networks to (almost) the same one (collapse), which makes any
    barrier between decoded networks trivially small; near 1 means it keeps them apart."""
    d0, d1 = ae.reconstruct(ws0).to(dtype=ws0.dtype), ae.reconstruct(ws1).to(dtype=ws0.dtype)
    num = (task.outputs(d0) - task.outputs(d1)).pow(2).mean()
    den = (task.outputs(ws0) - task.outputs(ws1)).pow(2).mean()
    return float(num / den.clamp_min(1e-30))


def summarize(values: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """``{method: {mean, std, median, min, max}}`` of per-pair barriers."""
    out = {}
    for m, v in values.items():
        v = v.double().cpu()
        out[m] = {"mean": float(v.mean()), "std": float(v.std()) if v.numel() > 1 else 0.0,
                  "median": float(v.median()), "min": float(v.min()), "max": float(v.max()), "n": int(v.numel())}
    return out
