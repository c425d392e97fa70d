"""Bundled data sets: shapes, fixed splits, devices/dtypes and no side effects on global RNGs."""

import numpy as np
import pytest
import torch

from scalegmn_lite.zoo.data import load_dataset


@pytest.mark.parametrize("name,shape,n_train,n_test", [("digits", (1, 8, 8), 1438, 359),
                                                        ("mnist1d", (1, 40), 4000, 1000)])
def test_shapes_and_labels(name, shape, n_train, n_test):
    d = load_dataset(name)
    assert d.input_shape == shape and d.num_classes == 10
    assert tuple(d.x_train.shape) == (n_train, *shape) and tuple(d.x_test.shape) == (n_test, *shape)
    assert d.y_train.dtype == torch.int64 and set(d.y_train.tolist()) == set(range(10))
    assert d.x_train.dtype == torch.float32 and torch.isfinite(d.x_train).all()


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_fixed_split_and_dtype(name):
    a, b = load_dataset(name), load_dataset(name, dtype=torch.float64)
    assert b.x_train.dtype == torch.float64
    assert torch.equal(a.x_train.double(), b.x_train) and torch.equal(a.y_test, b.y_test)
    other = load_dataset(name, seed=1)
    assert not torch.equal(a.x_train, other.x_train)


def test_digits_train_test_disjoint_and_scaled():
    d = load_dataset("digits")
    assert float(d.x_train.min()) >= 0 and float(d.x_train.max()) <= 1
    tr = {tuple(r) for r in d.x_train.flatten(1).tolist()}
    te = [tuple(r) for r in d.x_test.flatten(1).tolist()]
    # digits has a few exact duplicate images; the split is by sample, so allow a handful
    assert sum(t in tr for t in te) < 10


def test_mnist1d_does_not_touch_global_rng():
    load_dataset.__globals__["_mnist1d_numpy"].cache_clear()
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    load_dataset("mnist1d", seed=7)
    assert np.random.rand() == expected


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        load_dataset("cifar")


def test_subset_and_to():
    d = load_dataset("digits").subset(100, 50)
    assert len(d.x_train) == 100 and len(d.x_test) == 50
    assert d.to(dtype=torch.float64).y_train.dtype == torch.int64
