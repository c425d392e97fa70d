"""Bundled data sets that need no download: scikit-learn's digits and procedurally generated MNIST-1D.

Both have fixed, seeded train/test splits, so every zoo built from them is reproducible:

=========  ==================  ============  =========  ==========  =======
name       source              input shape   train      test        classes
=========  ==================  ============  =========  ==========  =======
digits     sklearn load_digits ``(1, 8, 8)`` 1437       360         10
mnist1d    mnist1d generator   ``(1, 40)``   4000       1000        10
=========  ==================  ============  =========  ==========  =======

Digits pixels are scaled to ``[0, 1]``; MNIST-1D signals are standardized by the generator.
MNIST-1D is built with ``mnist1d.data.make_dataset(get_dataset_args())`` (the procedural generator,
never the package's download path); the generator reseeds NumPy's and Python's global RNGs, so we
save and restore them around the call.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Dataset", "DATASETS", "load_dataset"]

DATASETS = ("digits", "mnist1d")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set as tensors.

    Attributes:
        x_train: ``[N_train, *input_shape]``; y_train: ``[N_train]`` (int64 labels).
        x_test: ``[N_test, *input_shape]``; y_test: ``[N_test]``.
        input_shape: shape of one sample, channels first (``(1, 8, 8)`` or ``(1, 40)``).
        num_classes: number of labels.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, ...]
    num_classes: int

    def to(self, device=None, dtype=None) -> "Dataset":
        """Move to ``device``; ``dtype`` applies to the inputs only (labels stay int64)."""
        return Dataset(self.name, self.x_train.to(device=device, dtype=dtype), self.y_train.to(device),
                       self.x_test.to(device=device, dtype=dtype), self.y_test.to(device),
                       self.input_shape, self.num_classes)

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "Dataset":
        """The first ``n_train`` / ``n_test`` samples (the splits are already shuffled)."""
        return Dataset(self.name, self.x_train[:n_train], self.y_train[:n_train], self.x_test[:n_test],
                       self.y_test[:n_test], self.input_shape, self.num_classes)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={tuple(self.x_train.shape)}, test={tuple(self.x_test.shape)}, "
                f"classes={self.num_classes}, dtype={self.x_train.dtype}, device={self.x_train.device})")


@functools.lru_cache(maxsize=4)
def _digits_numpy(seed: int, test_fraction: float):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]  # [1797, 1, 8, 8] in [0, 1]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


@functools.lru_cache(maxsize=4)
def _mnist1d_numpy(seed: int):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)  # procedural generator: no download
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = d["x"].astype(np.float32)[:, None]
    xt = d["x_test"].astype(np.float32)[:, None]
    return x, d["y"].astype(np.int64), xt, d["y_test"].astype(np.int64)


def load_dataset(name: str, device=None, dtype: torch.dtype = torch.float32, seed: int = 0) -> Dataset:
    """Load a bundled data set with its fixed train/test split.

    Args:
        name: ``"digits"`` or ``"mnist1d"``.
        device, dtype: where the tensors live and the input dtype (labels are int64).
        seed: split seed for digits (80/20 split), generator seed for MNIST-1D (default 0 here; the
            package's own default is 42). The same seed always gives the same tensors.
    """
    if name == "digits":
        arrays = _digits_numpy(seed, 0.2)
        shape = (1, 8, 8)
    elif name == "mnist1d":
        arrays = _mnist1d_numpy(seed)
        shape = (1, 40)
    else:
        raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS}")
    x, y, xt, yt = (torch.from_numpy(a.copy()) for a in arrays)
    return Dataset(name, x, y, xt, yt, shape, 10).to(device=device, dtype=dtype)
