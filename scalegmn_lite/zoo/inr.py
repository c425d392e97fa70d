"""INR zoo: one SIREN per digit image, fitted full batch with Adam, with its label and PSNR.

A SIREN ``f_theta: [-1, 1]^2 -> R`` (``"siren 2-32-32-1"``: ``h_1 = sin(w0 (W_1 x + b_1))``,
``h_2 = sin(w0 (W_2 h_1 + b_2))``, ``f = W_3 h_2 + b_3``, ``w0 = 30``) is fitted to the pixel values
``I(x) in [0, 1]`` of a digit image upsampled bilinearly from 8x8 to ``size x size`` by minimizing
``mean_x (f_theta(x) - I(x))^2``. Quality: ``PSNR = 10 log10(1 / MSE)`` (peak value 1).
All ``B`` SIRENs train together (one batched forward over the shared coordinate grid).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace, batched_forward
from .recipes import ZooRecipe
from .train import BatchedOptimizer
from .zoo import Zoo

__all__ = ["INR_INITS", "digit_images", "coordinate_grid", "init_siren", "fit_inrs", "render", "psnr", "build_inr_zoo"]


def digit_images(size: int = 16, device=None, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 sklearn digits as ``[1797, size, size]`` images in ``[0, 1]`` (bilinear upsampling,
    ``size = 8`` keeps the originals) and their labels ``[1797]``, in sklearn's fixed order."""
    from sklearn.datasets import load_digits

    d = load_digits()
    img = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]
    if size != 8:
        img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    return img[:, 0].to(device=device, dtype=dtype), torch.from_numpy(d.target.astype(np.int64)).to(device)


def coordinate_grid(size: int, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pixel centres in ``[-1, 1]^2`` as ``[size * size, 2]`` (row-major, ``(row, col)`` order)."""
    t = torch.linspace(-1, 1, size, device=device, dtype=dtype)
    return torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)


#: how an INR's weights are drawn before fitting (``ZooRecipe.inr_init``)
INR_INITS = ("siren", "dwsnets")


def init_siren(spec: NetworkSpec, seeds: Sequence[int], device=None, dtype: torch.dtype = torch.float32,
               convention: str = "siren") -> WeightSpace:
    """Initial INR weights per network from a generator seeded with ``seeds[b]``.

    ``convention="siren"`` (Sitzmann et al. 2020): first layer ``U(-1/fan_in, 1/fan_in)``, later
    ``U(-sqrt(6/fan_in)/w0, +)``; biases ``U(-1/sqrt(fan_in), +)`` (PyTorch's default). With ``w0 = 30``
    the first layer's frequencies reach 15 and barely move while fitting, so each INR stores its image
    in the basis of its own random Fourier features.

    ``convention="dwsnets"``: how the published MNIST INRs were fitted (DWSNets' ``nn/inr.py``, whose
    ``is_first`` flag is unused): *every* layer ``U(-sqrt(6/fan_in)/w0, +)`` and zero biases, so the
    first layer starts at low frequencies (about 1.7 for ``fan_in = 2``) and is learned from the image.
    """
    if convention not in INR_INITS:
        raise ValueError(f"unknown INR init convention {convention!r}; choose from {INR_INITS}")
    ws, bs = [[] for _ in spec.layers], [[] for _ in spec.layers]
    w0 = spec.layers[0].activation_param or 30.0
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        for l, layer in enumerate(spec.layers):
            fan = layer.in_dim
            bound = 1.0 / fan if l == 0 and convention == "siren" else math.sqrt(6.0 / fan) / w0
            ws[l].append((torch.rand(*layer.weight_shape, generator=g) * 2 - 1) * bound)
            b = (torch.rand(layer.out_dim, generator=g) * 2 - 1) / math.sqrt(fan)
            bs[l].append(b if convention == "siren" else torch.zeros_like(b))
    return WeightSpace(spec, [torch.stack(w) for w in ws], [torch.stack(b) for b in bs]).to(device=device, dtype=dtype)


def render(ws: WeightSpace, size: int) -> torch.Tensor:
    """Evaluate every INR on the ``size x size`` grid: ``[B, size, size]``."""
    with torch.no_grad():
        return batched_forward(ws, coordinate_grid(size, ws.device, ws.dtype))[..., 0].reshape(-1, size, size)


def psnr(mse: torch.Tensor) -> torch.Tensor:
    """``10 log10(1 / mse)`` for signals with peak value 1."""
    return -10.0 * torch.log10(mse.clamp_min(1e-12))


def fit_inrs(ws: WeightSpace, images: torch.Tensor, steps: int, lr: float | torch.Tensor = 1e-3,
             checkpoint_steps: Sequence[int] = (), progress: bool = True
             ) -> tuple[WeightSpace, dict[int, WeightSpace], dict[int, torch.Tensor]]:
    """Fit INR ``b`` to ``images[b]`` (``[B, H, W]``, ``H = W``) with full-batch Adam for ``steps`` steps.

    Returns the final weights, weights per checkpoint step and the per-network MSE ``[B]`` per
    checkpoint step (``0``: at initialization).
    """
    from ..common.progress import progress_bar

    if ws.batch_size == 1:  # B = 1 takes other BLAS kernels (gemv) than B > 1: fit a copy alongside, so an
        # INR's weights do not depend on how many are fitted with it (sharded zoo builds)
        lr2 = torch.as_tensor(lr, dtype=torch.float64).reshape(-1).expand(2)
        final, ckpts, mses = fit_inrs(WeightSpace.stack([ws, ws]), images.expand(2, *images.shape[1:]), steps, lr2,
                                      checkpoint_steps, progress)
        return final[:1], {k: w[:1] for k, w in ckpts.items()}, {k: m[:1] for k, m in mses.items()}
    B, size = ws.batch_size, images.shape[-1]
    coords = coordinate_grid(size, ws.device, ws.dtype)
    target = images.to(ws.device, ws.dtype).reshape(B, -1)
    lr_t = torch.as_tensor(lr, dtype=torch.float64).expand(B).to(ws.device)
    opt = BatchedOptimizer("adam", lr_t, torch.zeros(B, dtype=torch.float64, device=ws.device))
    params = [p.detach().clone() for p in ws.params()]
    ckpts, mses = {}, {}

    def mse_of(ps) -> torch.Tensor:
        cur = WeightSpace(ws.spec, ps[0::2], ps[1::2])
        return (batched_forward(cur, coords)[..., 0] - target).square().mean(1)

    for step in progress_bar(range(steps + 1), desc="fit INRs", enabled=progress):
        leaves = [p.requires_grad_(True) for p in params]
        loss = mse_of(leaves)
        if step in checkpoint_steps:
            ckpts[step] = WeightSpace(ws.spec, leaves[0::2], leaves[1::2]).detach().clone()
            mses[step] = loss.detach().clone()
        if step == steps:
            break
        grads = torch.autograd.grad(loss.sum(), leaves)
        params = [p.detach() for p in opt.step([p.detach() for p in leaves], grads)]
    final = WeightSpace(ws.spec, params[0::2], params[1::2]).detach()
    return final, ckpts, mses


def build_inr_zoo(recipe: ZooRecipe, device=None, progress: bool = True, indices: Sequence[int] | None = None) -> Zoo:
    """Build an INR zoo: network ``i`` fits digit image ``i // recipe.views`` (sklearn order) at
    ``recipe.image_size``, from its own seed (only the networks ``indices``, ascending, if given: the
    same weights as in the whole build)."""
    spec = recipe.specs()[0]
    images, labels = digit_images(recipe.image_size, device=device)
    if recipe.num_networks // recipe.views > len(images):
        raise ValueError(f"recipe {recipe.name!r} asks for {recipe.num_networks // recipe.views} images "
                         f"({recipe.num_networks} INRs, {recipe.views} per image) but digits has {len(images)} images")
    hp = [recipe.sample(i) for i in (range(recipe.num_networks) if indices is None else indices)]
    groups = []
    for s in range(0, len(hp), recipe.chunk_size):
        rows = hp[s:s + recipe.chunk_size]
        idx = [recipe.image_of(r["net"]) for r in rows]
        ws0 = init_siren(spec, [recipe.init_seed(r) for r in rows], device=device, convention=recipe.inr_init)
        lr = torch.tensor([r["lr"] for r in rows], dtype=torch.float64)
        _, ckpts, mses = fit_inrs(ws0, images[idx], recipe.epochs, lr, recipe.checkpoint_epochs, progress)
        md = pd.DataFrame(rows).drop(columns=["init_scale", "weight_decay"])
        md["image_index"] = idx
        if recipe.views > 1:
            md["view"] = [r["net"] % recipe.views for r in rows]
        md["label"] = labels[idx].cpu().numpy()
        for e in recipe.checkpoint_epochs:
            md[f"mse@{e}"] = mses[e].double().cpu().numpy()
            md[f"psnr@{e}"] = psnr(mses[e].double()).cpu().numpy()
        last = recipe.checkpoint_epochs[-1]
        md["mse"], md["psnr"] = md[f"mse@{last}"], md[f"psnr@{last}"]
        groups.append(([ckpts[e] for e in recipe.checkpoint_epochs], md))
    return Zoo.from_weight_spaces(groups, recipe.checkpoint_epochs, recipe.to_dict())
