"""The invariant-metanetwork study: task construction from zoos, model comparison, gauge shift."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.tasks.invariant.fit import FitConfig
from scalegmn_lite.tasks.invariant.study import accuracy_task, compare, gauge_shift, inr_task, make_model
from scalegmn_lite.zoo import Zoo

SPEC = NetworkSpec.from_text("conv1d 1-3-3/2 k3 relu 1x10")


def _zoo(n=20, seed=0, label=False):
    gen = torch.Generator().manual_seed(seed)
    ws = [WeightSpace.randn(SPEC, n, generator=gen) for _ in range(2)]
    md = pd.DataFrame({"net": range(n), "activation": "relu"})
    for c in (0, 1):
        md[f"test_acc@{c}"] = torch.rand(n, generator=gen).numpy()
    if label:
        md["label"] = torch.randint(0, 3, (n,), generator=gen).numpy()
    return Zoo.from_weight_spaces([(ws, md)], (0, 1))


def test_accuracy_task_splits_by_network_and_stacks_checkpoints():
    zoo = _zoo()
    data = accuracy_task(zoo, seed=0)
    sizes = data.sizes()
    assert sum(sizes.values()) == 2 * len(zoo) and all(s % 2 == 0 for s in sizes.values())
    assert data.task == "regression" and data.spec == SPEC
    # targets are the accuracies of the matching checkpoint
    tr_zoo = zoo.split((0.6, 0.2, 0.2), seed=0)[0]
    assert torch.allclose(data.train[1][: len(tr_zoo)].double(),
                          torch.as_tensor(tr_zoo.metadata["test_acc@0"].to_numpy()).double(), atol=1e-6)
    assert data.train[0][: len(tr_zoo)].max_abs_diff(tr_zoo.weights(0)) == 0


def test_inr_task_labels():
    data = inr_task(_zoo(label=True))
    assert data.task == "classification" and data.train[1].dtype == torch.long


def test_gauge_shift_zero_for_scalegmn_nonzero_for_statnn():
    ws = WeightSpace.randn(SPEC, 6, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    sg, _ = make_model("scalegmn", SPEC, 1, hidden=8, layers=1)
    st, aug = make_model("statnn+aug", SPEC, 1, hidden=8)
    st.fit_normalization(ws)
    assert aug is not None
    assert gauge_shift(sg, ws) < 1e-4 < gauge_shift(st, ws)
    with pytest.raises(ValueError, match="unknown model"):
        make_model("transformer", SPEC, 1)


def test_compare_rows():
    data = accuracy_task(_zoo(12))
    df, models = compare(data, ("scalegmn", "statnn"), seeds=(0,), fit_config=FitConfig(epochs=1, batch_size=8),
                         hidden=8, layers=1, progress=False, return_models=True)
    assert list(df.model) == ["scalegmn", "statnn"] and set(models) == {("scalegmn", 0), ("statnn", 0)}
    assert {"test_score", "best_val", "gauge_shift", "seconds", "params"} <= set(df.columns)
    assert df.loc[df.model == "scalegmn", "gauge_shift"].item() < 1e-4


def test_compare_keeps_per_network_predictions_for_intervals():
    import numpy as np

    from scalegmn_lite.experiments.invariant import accuracy_difference, tau_difference

    data = accuracy_task(_zoo(40))  # >= 8 test networks: a resample of them almost never ties every row
    df = compare(data, ("scalegmn", "statnn"), seeds=(0, 1), fit_config=FitConfig(epochs=1, batch_size=8),
                 hidden=8, layers=1, progress=False)
    n = data.sizes()["test"]
    assert all(len(p) == n for p in df.test_pred)
    y = data.test[1].double().numpy()
    d = tau_difference(df, y, data.name, "scalegmn", "statnn")
    assert d["seeds"] == 2 and d["n"] == n and d["ci"][0] <= d["ci"][1]
    same = tau_difference(df, y, data.name, "statnn", "statnn")  # a model against itself: exactly 0
    assert same["mean"] == 0 and same["ci"] == [0.0, 0.0]
    # classification: per-network correctness; a perfect model beats a constant one
    df2 = df.copy()
    df2["test_pred"] = [list(y) if m == "scalegmn" else [y[0] + 1] * n for m in df2.model]
    acc = accuracy_difference(df2, y, data.name, "scalegmn", "statnn")
    assert acc["mean"] == 1.0 and np.allclose(acc["ci"], [1.0, 1.0])


def test_compare_in_worker_processes_equals_serial():
    """Issue 21: (model, seed) pairs trained side by side in spawned workers give the serial rows
    (up to float rounding) and models that predict alike; a different seed does not."""
    import numpy as np

    data = accuracy_task(_zoo(16))
    kw = dict(seeds=(0, 1), fit_config=FitConfig(epochs=2, batch_size=8), hidden=8, layers=1, progress=False,
              return_models=True)
    (a, ma), (b, mb) = (compare(data, ("scalegmn", "statnn+aug"), workers=w, **kw) for w in (1, 2))
    assert list(a.model) == list(b.model) and list(a.seed) == list(b.seed)
    assert np.allclose(np.array(a.test_pred.tolist()), np.array(b.test_pred.tolist()), rtol=1e-4, atol=1e-5)
    assert np.allclose(a.best_val, b.best_val, atol=1e-6) and (a.params == b.params).all()
    ws = data.test[0]
    for key in ma:
        assert torch.allclose(ma[key](ws), mb[key](ws), rtol=1e-4, atol=1e-5), key
    assert not np.allclose(a.test_pred[0], a.test_pred[1])  # seeds 0 and 1 of scalegmn differ
