"""Exercise checks for notebook 03 (model zoos): batched training by hand, accuracy spread, PSNR."""

from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd
import torch

from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace, batched_forward
from .feedback import Feedback, run_check

__all__ = ["check_batched_mlp", "check_accuracy_spread", "check_psnr"]


def check_batched_mlp(forward: Callable[..., torch.Tensor]) -> Feedback:
    """Notebook 03, exercise 1. ``forward(W1, b1, W2, b2, x)`` with ``W1 [B, h, n]``, ``b1 [B, h]``,
    ``W2 [B, o, h]``, ``b2 [B, o]``, ``x [N, n]`` (the same inputs for all ``B`` networks) returns the
    logits ``[B, N, o]`` of the ``B`` ReLU MLPs, compared with :func:`batched_forward`."""

    def body():
        spec = NetworkSpec.from_text("mlp 6-5-3 relu")
        gen = torch.Generator().manual_seed(0)
        ws = WeightSpace.randn(spec, 4, generator=gen, dtype=torch.float64)
        x = torch.randn(7, 6, generator=gen, dtype=torch.float64)
        got = forward(*ws.params(), x)
        want = batched_forward(ws, x)
        if tuple(got.shape) != tuple(want.shape):
            return False, f"expected shape {tuple(want.shape)} ([B, N, outputs]), got {tuple(got.shape)}"
        err = float((got - want).abs().max())
        if err > 1e-10:
            return False, f"logits differ from the library's by up to {err:.2e}"
        return True, "one batched computation gives every network's logits"

    return run_check("03.1", body)


def check_accuracy_spread(spread: Callable[[pd.DataFrame, Sequence[int]], float]) -> Feedback:
    """Notebook 03, exercise 2. ``spread(metadata, checkpoints)`` returns the 10-90% spread
    (``quantile(0.9) - quantile(0.1)``) of the test accuracies ``test_acc@{e}`` of every network at
    every checkpoint ``e`` in ``checkpoints``, pooled; checked on a made-up zoo's metadata."""

    def body():
        gen = torch.Generator().manual_seed(0)
        n, epochs = 40, (0, 1, 3, 10)
        final = 0.1 + 0.8 * torch.rand(n, generator=gen, dtype=torch.float64)
        md = pd.DataFrame({f"test_acc@{e}": (0.1 + (final - 0.1) * (e / 10) ** 0.5).numpy() for e in epochs})
        md["test_acc"] = md["test_acc@10"]
        for cps in ((0, 1, 3, 10), (0, 3, 10), (10,)):
            pooled = pd.concat([md[f"test_acc@{e}"] for e in cps])
            want = float(pooled.quantile(0.9) - pooled.quantile(0.1))
            got = float(spread(md, list(cps)))
            if abs(got - want) > 1e-9:
                return False, (f"checkpoints {list(cps)}: you say {got:.4f}, the pooled 10-90% spread is "
                               f"{want:.4f} (one pool of every network at every listed checkpoint)")
        return True, "10-90% spread of the pooled accuracies"

    return run_check("03.2", body)


def check_psnr(psnr: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Feedback:
    """Notebook 03, exercise 3. ``psnr(images, targets)`` (both ``[B, H, W]`` in ``[0, 1]``) returns
    ``[B]`` values ``10 log10(1 / MSE)`` per image."""

    def body():
        gen = torch.Generator().manual_seed(0)
        t = torch.rand(5, 8, 8, generator=gen, dtype=torch.float64)
        noise = torch.logspace(-3, -1, 5, dtype=torch.float64).view(5, 1, 1)
        img = t + noise * torch.randn(5, 8, 8, generator=gen, dtype=torch.float64)
        want = 10 * torch.log10(1 / (img - t).pow(2).flatten(1).mean(1))
        got = torch.as_tensor(psnr(img, t), dtype=torch.float64)
        if got.shape != want.shape:
            return False, f"return one value per image, shape {tuple(want.shape)}; got {tuple(got.shape)}"
        err = float((got - want).abs().max())
        if err > 1e-6:
            return False, f"off by up to {err:.3g} dB (mean over pixels of each image, then 10 log10(1/MSE))"
        return True, "PSNR per image"

    return run_check("03.3", body)
