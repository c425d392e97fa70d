"""Run configuration shared by the library, the CLI and the notebooks: quick/full mode, seeds,
devices and the cache directory.

Environment variables:
    ``SCALEGMN_LITE_FULL=1``: full-size recipes (default: quick recipes sized for 2 CPU cores).
    ``SCALEGMN_LITE_CACHE``: cache directory for zoos and trained models
    (default ``~/.cache/scalegmn-lite``).
    ``SCALEGMN_LITE_DEVICE``: default device (``cpu``, ``cuda``, ``auto``; default ``auto``).
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["is_full", "resolve_device", "seed_everything", "cache_dir", "NotebookConfig", "notebook_setup"]


def is_full() -> bool:
    """True when ``SCALEGMN_LITE_FULL`` asks for the full-size recipes."""
    return os.environ.get("SCALEGMN_LITE_FULL", "0").strip().lower() in ("1", "true", "yes", "on")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``"auto"``/``None`` -> CUDA if available else CPU; asking for CUDA without a GPU is an error."""
    if device is None:
        device = os.environ.get("SCALEGMN_LITE_DEVICE", "auto")
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu or auto")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a fresh ``torch.Generator`` seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cache_dir() -> Path:
    path = Path(os.environ.get("SCALEGMN_LITE_CACHE", Path.home() / ".cache" / "scalegmn-lite"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class NotebookConfig:
    FULL: bool
    SEED: int
    DEVICE: torch.device


#: the course's figure style (every notebook, through :func:`notebook_setup`): no text under 8 pt, legends
#: with a frame (place them outside the data with ``bbox_to_anchor``), images at twice the screen resolution
FIGURE_STYLE = {
    "figure.dpi": 80,
    "savefig.dpi": 160,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "legend.framealpha": 0.9,
}


def course_figure_style() -> None:
    """Apply :data:`FIGURE_STYLE` (seaborn's white grid first, when installed) and, in a Jupyter kernel
    with the inline backend, retina PNGs (twice the pixels at the same displayed size)."""
    import matplotlib

    try:
        import seaborn as sns

        sns.set_theme(style="whitegrid", context="notebook")
    except ImportError:  # pragma: no cover
        pass
    matplotlib.rcParams.update(FIGURE_STYLE)
    try:
        from IPython import get_ipython

        if get_ipython() is not None:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("retina")
    except ImportError:  # pragma: no cover
        pass


def notebook_setup(seed: int = 0, threads: int | None = None) -> NotebookConfig:
    """First cell of every notebook: mode, seeding, device, quiet warnings (nbval compares stderr) and
    no progress bars (``SCALEGMN_LITE_PROGRESS=0`` unless already set: a notebook's outputs are kept).

    Notebooks tested side by side (nbval under pytest-xdist, whose workers export
    ``PYTEST_XDIST_WORKER_COUNT`` to the kernels they start) share the cores: unless ``threads`` is
    given, each kernel gets ``cores // workers`` torch threads and trains without worker processes
    (``SCALEGMN_LITE_WORKERS=1`` unless set). Two 2-thread kernels on 2 cores run many times slower
    than two 1-thread ones."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("SCALEGMN_LITE_PROGRESS", "0")
    side_by_side = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if threads is None and side_by_side > 1:
        threads = max(1, (os.cpu_count() or 1) // side_by_side)
        os.environ.setdefault("SCALEGMN_LITE_WORKERS", "1")
    if threads:
        torch.set_num_threads(threads)
    seed_everything(seed)
    course_figure_style()
    return NotebookConfig(FULL=is_full(), SEED=seed, DEVICE=resolve_device())
