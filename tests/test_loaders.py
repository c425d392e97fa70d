"""Loaders for public zoo formats, on fixtures written (into tmp_path) exactly in the published forms:
Small CNN Zoo (gzip metrics, bias-before-kernel layout rows, 9 checkpoints per run, NaN rows, NFN's
shuffle CSV), DWSNets MNIST-INRs (absolute and repository-relative splits), F-MNIST INRs (label in
the checkpoint), NFN CIFAR-10 INR folders."""

import json
import math
import random

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from scalegmn_lite.weightspace import NetworkSpec
from scalegmn_lite.weightspace.modules import Sine
from scalegmn_lite.zoo.loaders import (
    DWSNETS_OUTPUT_OFFSET,
    DroppedNetworksWarning,
    LoaderError,
    load_cifar10_inrs,
    load_dwsnets_inrs,
    load_fmnist_inrs,
    load_inr_state_dicts,
    load_small_cnn_zoo,
)

torch.set_num_threads(1)
STEPS = [0, 1, 2, 3, 5, 10, 20, 50, 86]  # 9 checkpoints per run, the last at step 86 as published
CHANNELS = 6


# ---------------------------------------------------------------------- Small CNN Zoo fixture
def _digits():
    """Bundled sklearn digits as 8x8 grayscale in [-1, 1] (the zoo's CIFAR-10-GS range), split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 8.0 - 1.0)[:, None]
    y = torch.from_numpy(d.target.astype(np.int64))
    return (x[:400], y[:400]), (x[1200:], y[1200:])


def _cnn(act):
    a = nn.ReLU if act == "relu" else nn.Tanh  # 'valid' 3x3 stride-2 convolutions, GAP, dense 10
    return nn.Sequential(nn.Conv2d(1, CHANNELS, 3, 2, 0), a(), nn.Conv2d(CHANNELS, CHANNELS, 3, 2, 0), a(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(CHANNELS, 10))


def _tf_variables(model):
    """(name, TF-layout array) per variable, each layer's bias first, as in the published layout.csv."""
    out = []
    for name, layer in [("sequential/conv2d", model[0]), ("sequential/conv2d_1", model[2]),
                        ("sequential/dense", model[6])]:
        w = layer.weight.detach()
        kern = w.permute(2, 3, 1, 0) if w.dim() == 4 else w.T  # OIHW -> HWIO, [out, in] -> [in, out]
        out += [(f"{name}/bias:0", layer.bias.detach().numpy()), (f"{name}/kernel:0", kern.numpy())]
    return out


def _accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(-1) == y).double().mean())


def write_small_cnn_zoo(folder, runs=8, nan_at=((4, 50), (7, 86)), shuffle=True):
    """Train tiny CNNs on digits, save 9 checkpoints per run in the published Small CNN Zoo files."""
    (xtr, ytr), (xte, yte) = _digits()
    rows, metrics = [], []
    for r in range(runs):
        act = "relu" if r % 2 == 0 else "tanh"
        torch.manual_seed(r)
        model = _cnn(act)
        lr = [0.003, 0.01, 0.03][r % 3]
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for step in range(STEPS[-1] + 1):
            if step in STEPS:
                flat = np.concatenate([v.reshape(-1) for _, v in _tf_variables(model)]).astype(np.float32)
                if (r, step) in nan_at:
                    flat[7 + r] = np.nan if r % 2 else np.inf  # diverged checkpoints, as some published rows are
                rows.append(flat)
                metrics.append({"modeldir": f"run_{r:03d}", "step": step, "test_accuracy": _accuracy(model, xte, yte),
                                "train_accuracy": _accuracy(model, xtr, ytr), "test_loss": 0.0, "train_loss": 0.0,
                                "config.activation": act, "config.learning_rate": lr, "config.dataset": "digits"})
            if step < STEPS[-1]:
                opt.zero_grad()
                F.cross_entropy(model(xtr), ytr).backward()
                opt.step()
    start, layout = 0, []
    for name, v in _tf_variables(model):
        layout.append({"varname": name, "start_idx": start, "end_idx": start + v.size, "size": v.size,
                       "shape": str(tuple(v.shape))})
        start += v.size
    weights = np.stack(rows)
    order = np.random.default_rng(0).permutation(len(rows)) if shuffle else np.arange(len(rows))
    np.save(folder / "weights.npy", weights)
    pd.DataFrame(layout).to_csv(folder / "layout.csv", index=False)
    pd.DataFrame(metrics).to_csv(folder / "metrics.csv.gz", index=False, compression="gzip")
    pd.DataFrame(order).to_csv(folder / "shuffle.csv", header=False, index=False)
    return weights, pd.DataFrame(metrics), order, (xte, yte)


@pytest.fixture(scope="module")
def cnn_zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small_cnn_zoo")
    return (folder, *write_small_cnn_zoo(folder))


def test_fixture_is_in_the_published_form(cnn_zoo):
    folder, weights, metrics, order, _ = cnn_zoo
    with open(folder / "metrics.csv.gz", "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"  # gzip
    layout = pd.read_csv(folder / "layout.csv")
    assert list(layout["varname"][:2]) == ["sequential/conv2d/bias:0", "sequential/conv2d/kernel:0"]
    assert weights.shape == (8 * 9, layout["end_idx"].max()) and len(metrics) == 72
    assert sorted(metrics["step"].unique()) == STEPS and not np.isfinite(weights).all()


def test_loaded_networks_reproduce_their_metrics_accuracy(cnn_zoo):
    folder, _, metrics, _, (xte, yte) = cnn_zoo
    with pytest.warns(DroppedNetworksWarning, match="dropped 2 runs with NaN/inf"):
        zoo = load_small_cnn_zoo(folder, steps="all", input_shape=(1, 8, 8))
    assert zoo.checkpoints == tuple(STEPS) and len(zoo) == 6
    assert sorted(zoo.recipe["dropped_nonfinite"]) == ["run_004", "run_007"]
    assert not {"run_004", "run_007"} & set(zoo.metadata["run"])
    by = metrics.set_index(["modeldir", "step"])
    n_checked = 0
    for i, run in enumerate(zoo.metadata["run"]):
        for step in STEPS:
            net = zoo.network(i, checkpoint=step)
            acc = float((net(xte)[0].argmax(-1) == yte).double().mean())
            assert acc == by.loc[(run, step), "test_accuracy"], (run, step)
            assert zoo.metadata.loc[i, f"test_acc@{step}"] == by.loc[(run, step), "test_accuracy"]
            n_checked += 1
    assert n_checked == 54
    assert zoo.metadata["test_acc"].max() > 0.3  # trained networks, not chance (0.1)
    # negative control: with padding 1 (the old default) the loaded networks compute other functions
    with pytest.warns(DroppedNetworksWarning):
        wrong = load_small_cnn_zoo(folder, padding=1, input_shape=(1, 8, 8))
    accs = [float((wrong.network(i)(xte)[0].argmax(-1) == yte).double().mean()) for i in range(len(wrong))]
    assert sum(a != t for a, t in zip(accs, wrong.metadata["test_acc"])) >= 6  # of 7


def test_final_checkpoint_by_default_and_steps_on_request(cnn_zoo):
    folder = cnn_zoo[0]
    with pytest.warns(DroppedNetworksWarning, match="dropped 1 runs"):
        final = load_small_cnn_zoo(folder, input_shape=(1, 8, 8))
    assert final.checkpoints == (86,) and len(final) == 7 and final.recipe["dropped_nonfinite"] == ["run_007"]
    assert final.recipe["input_vertex_feature"] == 0.0  # the documented convention of the Small CNN Zoo
    early = load_small_cnn_zoo(folder, steps=[0, 3], input_shape=(1, 8, 8))  # every run is finite there
    assert early.checkpoints == (0, 3) and len(early) == 8
    with pytest.raises(LoaderError, match=r"no step \[7\]"):
        load_small_cnn_zoo(folder, steps=7)
    mixed = final.by_spec()
    assert sorted(NetworkSpec.from_text(k).layers[0].activation for k in mixed) == ["relu", "tanh"]
    assert all(layer.padding == 0 and layer.stride == 2 for layer in final.specs[0].layers if layer.is_conv)


def _expected_split(metrics, order):
    """NFN's protocol, written out: shuffled rows -> final step -> last 50% test, rest 80/20 (seed 0)."""
    shuffled = metrics.iloc[order]
    final = shuffled[shuffled["step"] == 86]["modeldir"].tolist()
    test_point = int(0.5 * len(final))
    trainval = list(range(test_point))
    random.Random(0).shuffle(trainval)
    val_point = int(0.8 * len(trainval))
    out = {final[i]: "test" for i in range(test_point, len(final))}
    out.update({final[i]: "train" for i in trainval[:val_point]})
    out.update({final[i]: "val" for i in trainval[val_point:]})
    return out


def test_standard_split_honours_the_shuffle_csv_and_keeps_runs_whole(cnn_zoo):
    folder, _, metrics, order, _ = cnn_zoo
    want = _expected_split(metrics, order)
    with pytest.warns(DroppedNetworksWarning):
        zoo = load_small_cnn_zoo(folder, steps="all", shuffle_csv=folder / "shuffle.csv", input_shape=(1, 8, 8))
    got = dict(zip(zoo.metadata["run"], zoo.metadata["split"]))
    assert got == {r: s for r, s in want.items() if r not in ("run_004", "run_007")}
    seen = {}
    for s in ("train", "val", "test"):
        if s not in got.values():  # every run of this side has NaN weights: a clear error, not an empty zoo
            with warnings_ok(), pytest.raises(LoaderError, match=f"no networks left \\(split='{s}'"):
                load_small_cnn_zoo(folder, split=s, steps="all", shuffle_csv=folder / "shuffle.csv",
                                   input_shape=(1, 8, 8))
            continue
        with warnings_ok():
            part = load_small_cnn_zoo(folder, split=s, steps="all", shuffle_csv=folder / "shuffle.csv",
                                      input_shape=(1, 8, 8))
        assert set(part.metadata["split"]) == {s} and part.checkpoints == tuple(STEPS)
        for r in part.metadata["run"]:
            assert r not in seen  # every checkpoint of a run sits on one side only
            seen[r] = s
    assert seen == got
    # the shuffle file matters: without it the split follows file order
    with warnings_ok():
        plain = load_small_cnn_zoo(folder, input_shape=(1, 8, 8))
    assert dict(zip(plain.metadata["run"], plain.metadata["split"])) != got
    assert dict(zip(plain.metadata["run"], plain.metadata["split"])) == \
        {r: s for r, s in _expected_split(metrics, np.arange(len(metrics))).items() if r != "run_007"}


class warnings_ok:  # noqa: N801 - a tiny context manager
    def __enter__(self):
        import warnings

        self._c = warnings.catch_warnings()
        self._c.__enter__()
        warnings.simplefilter("ignore", DroppedNetworksWarning)

    def __exit__(self, *exc):
        return self._c.__exit__(*exc)


def test_small_cnn_zoo_activation_filter_and_tf_reference(cnn_zoo):
    folder, weights, metrics, _, (xte, _) = cnn_zoo
    with warnings_ok():
        zoo = load_small_cnn_zoo(folder, activation="tanh", input_shape=(1, 8, 8))
    assert set(zoo.metadata["activation"]) == {"tanh"} and len(zoo) == 3  # run 7 (tanh) is NaN at step 86
    # an independent forward in TF conventions (NHWC, HWIO, 'valid') from the raw row
    layout = pd.read_csv(folder / "layout.csv").set_index("varname")
    run = zoo.metadata["run"][0]
    row = weights[int(np.flatnonzero((metrics["modeldir"] == run) & (metrics["step"] == 86))[0])]

    def var(name):
        r = layout.loc[f"sequential/{name}"]
        shape = tuple(int(n) for n in r["shape"].strip("()[] ").split(",") if n.strip())
        return torch.from_numpy(row[r["start_idx"]:r["end_idx"]]).reshape(shape)

    h = xte.permute(0, 2, 3, 1)  # NHWC
    for conv in ("conv2d", "conv2d_1"):
        k = var(f"{conv}/kernel:0")  # [kh, kw, in, out]
        patches = h.unfold(1, 3, 2).unfold(2, 3, 2)  # [N, H', W', C, kh, kw], valid, stride 2
        h = torch.tanh(torch.einsum("nijchw,hwco->nijo", patches, k) + var(f"{conv}/bias:0"))
    ref = h.mean((1, 2)) @ var("dense/kernel:0") + var("dense/bias:0")
    assert torch.allclose(zoo.network(0)(xte)[0], ref, atol=1e-5)


def test_small_cnn_zoo_format_errors(tmp_path):
    write_small_cnn_zoo(tmp_path, runs=2, nan_at=())
    layout = pd.read_csv(tmp_path / "layout.csv")
    layout.drop(index=1).to_csv(tmp_path / "layout.csv", index=False)  # conv2d kernel row gone
    with pytest.raises(LoaderError, match="needs a kernel and a bias row"):
        load_small_cnn_zoo(tmp_path)
    layout.assign(varname=layout["varname"].str.replace("kernel", "weights")).to_csv(tmp_path / "layout.csv",
                                                                                     index=False)
    with pytest.raises(LoaderError, match="neither"):
        load_small_cnn_zoo(tmp_path)
    layout.to_csv(tmp_path / "layout.csv", index=False)
    pd.DataFrame([0, 1, 1]).to_csv(tmp_path / "bad_shuffle.csv", header=False, index=False)
    with pytest.raises(LoaderError, match="not a permutation"):
        load_small_cnn_zoo(tmp_path, shuffle_csv=tmp_path / "bad_shuffle.csv")
    np.save(tmp_path / "weights.npy", np.zeros((3, 10), np.float32))
    with pytest.raises(LoaderError, match="does not match the 18 rows"):
        load_small_cnn_zoo(tmp_path)
    (tmp_path / "metrics.csv.gz").unlink()
    with pytest.raises(LoaderError, match="metrics.csv.gz: missing"):
        load_small_cnn_zoo(tmp_path)


# ---------------------------------------------------------------------- INRs
def _siren_state_dict(g, widths=(2, 8, 8, 1), key="seq"):
    """DWSNets keys: seq.{l}.linear.* for the sine layers, seq.{L}.* for the last one."""
    sd = {}
    for l, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        name = f"{key}.{l}" + (".linear" if l < len(widths) - 2 else "")
        sd[f"{name}.weight"] = torch.randn(b, a, generator=g) / math.sqrt(a)
        sd[f"{name}.bias"] = torch.randn(b, generator=g) * 0.1
    return sd


def _dwsnets_render(sd, coords, widths=(2, 8, 8, 1)):
    """The published SIREN: Sine(30) layers, a last Linear, and + 0.5."""
    lin = nn.Linear
    mods = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        mods += [lin(a, b), Sine(30.0)]
    seq = nn.Sequential(*mods, lin(widths[-2], widths[-1]))
    seq.load_state_dict(dict(zip(seq.state_dict(), sd.values())))
    with torch.no_grad():
        return seq(coords) + 0.5


def _write_mnist_inrs(root):
    g = torch.Generator().manual_seed(0)
    paths, labels, sds = [], [], []
    for i, (split, label) in enumerate([("training", 3), ("training", 7), ("testing", 1)]):
        p = root / "data" / "mnist-inrs" / f"mnist_png_{split}_{label}_{i}" / "checkpoints" / "model_final.pth"
        p.parent.mkdir(parents=True)
        sd = _siren_state_dict(g)
        torch.save(sd, p)
        paths.append(p), labels.append(label), sds.append(sd)
    return paths, labels, sds


def test_dwsnets_inrs_folder_splits_and_output_offset(tmp_path):
    paths, labels, sds = _write_mnist_inrs(tmp_path)
    root = tmp_path / "data" / "mnist-inrs"
    zoo = load_dwsnets_inrs(root)
    assert sorted(zoo.metadata["label"]) == [1, 3, 7] and set(zoo.metadata["split"]) == {"train", "test"}
    assert zoo.recipe["output_offset"] == DWSNETS_OUTPUT_OFFSET == 0.5
    assert zoo.recipe["input_vertex_feature"] == 1.0  # the documented convention of the INR formats
    coords = torch.rand(5, 2) * 2 - 1
    i = list(zoo.metadata["path"]).index(str(paths[1]))
    offset = zoo.metadata["output_offset"][i]
    assert torch.allclose(zoo.network(i)(coords)[0] + offset, _dwsnets_render(sds[1], coords), atol=1e-5)
    folded = load_dwsnets_inrs(root, fold_output_offset=True)
    assert folded.metadata["output_offset"][i] == 0.0
    assert torch.allclose(folded.network(i)(coords)[0], _dwsnets_render(sds[1], coords), atol=1e-5)
    assert not torch.allclose(zoo.network(i)(coords)[0], _dwsnets_render(sds[1], coords), atol=1e-2)
    # splits JSON, DWSNets form (absolute paths from another machine) and ScaleGMN form (repository-relative)
    for form in ("absolute", "relative"):
        def name(p):
            rel = p.relative_to(tmp_path).as_posix()
            return f"/home/someone/dwsnets/{rel}" if form == "absolute" else rel

        splits = {"train": {"path": [name(p) for p in paths[:2]], "label": [str(v) for v in labels[:2]]},
                  "test": {"path": [name(paths[2])], "label": [str(labels[2])]}}
        (tmp_path / f"{form}.json").write_text(json.dumps(splits))
        z = load_dwsnets_inrs(root, tmp_path / f"{form}.json", split="train")
        assert list(z.metadata["label"]) == [3, 7] and set(z.metadata["split"]) == {"train"}
        assert torch.allclose(z.network(1)(coords)[0] + 0.5, _dwsnets_render(sds[1], coords), atol=1e-5)
    # NFN layout ([in, out]) is detected and transposed back
    nfn = [{k: v.T if v.dim() == 2 else v for k, v in sd.items()} for sd in sds]
    assert torch.equal(load_inr_state_dicts(nfn, labels).weights().flatten(),
                       load_inr_state_dicts(sds, labels).weights().flatten())


def test_fmnist_inrs_label_in_checkpoint(tmp_path):
    g = torch.Generator().manual_seed(1)
    root = tmp_path / "fmnist_inrs"
    listed, sds = {"train": [], "test": []}, []
    for i, (split, label) in enumerate([("train", 4), ("train", 9), ("test", 0)]):
        p = root / f"fmnist_{i}" / "checkpoint.pth"
        p.parent.mkdir(parents=True)
        sd = _siren_state_dict(g)
        torch.save({**sd, "label": label}, p)
        listed[split].append(f"/original/machine/{p.parent.name}/{p.name}")  # only the last two parts match
        sds.append(sd)
    (tmp_path / "fmnist_splits.json").write_text(json.dumps(listed))
    zoo = load_fmnist_inrs(root, tmp_path / "fmnist_splits.json")
    assert list(zoo.metadata["label"]) == [4, 9, 0] and list(zoo.metadata["split"]) == ["train", "train", "test"]
    assert zoo.metadata["output_offset"][0] == 0.5 and zoo.recipe["input_vertex_feature"] == 1.0
    coords = torch.rand(4, 2) * 2 - 1
    assert torch.allclose(zoo.network(2)(coords)[0] + 0.5, _dwsnets_render(sds[2], coords), atol=1e-5)
    test = load_fmnist_inrs(root, tmp_path / "fmnist_splits.json", split="test")
    assert list(test.metadata["label"]) == [0]
    torch.save(sds[0], root / "fmnist_0" / "checkpoint.pth")  # label missing
    with pytest.raises(LoaderError, match="no 'label' entry"):
        load_fmnist_inrs(root, tmp_path / "fmnist_splits.json")
    with pytest.raises(LoaderError, match="F-MNIST form"):
        load_dwsnets_inrs(root, tmp_path / "fmnist_splits.json")


def test_cifar10_inr_folders(tmp_path):
    g = torch.Generator().manual_seed(2)
    sds = {}
    for idx, label in [(0, 3), (1, 5), (2, 3), (3, 8), (4, 0)]:
        p = tmp_path / f"randinit_smaller_{label}s" / f"net{idx}.pth"
        p.parent.mkdir(exist_ok=True)
        sds[idx] = _siren_state_dict(g, (2, 8, 8, 3), key="net")
        torch.save(sds[idx], p)
    aug = tmp_path / "randinit_smaller_aug0_3s"  # augmented copies are not part of the base set
    aug.mkdir()
    torch.save(sds[0], aug / "net99.pth")
    zoo = load_cifar10_inrs(tmp_path, split_points=(3, 4))
    assert list(zoo.metadata["idx"]) == [0, 1, 2, 3, 4] and list(zoo.metadata["label"]) == [3, 5, 3, 8, 0]
    assert list(zoo.metadata["split"]) == ["train", "train", "train", "val", "test"]
    assert zoo.spec.widths == (2, 8, 8, 3) and zoo.metadata["output_offset"][0] == 0.0
    assert zoo.recipe["input_vertex_feature"] == 1.0
    val = load_cifar10_inrs(tmp_path, split="val", split_points=(3, 4))
    assert list(val.metadata["idx"]) == [3] and list(val.metadata["label"]) == [8]
    assert torch.allclose(val.weights().weights[0][0], sds[3]["net.0.linear.weight"])
    with pytest.raises(LoaderError, match="no CIFAR-10 INR checkpoints"):
        load_cifar10_inrs(tmp_path / "nothing")


def test_inr_errors_name_the_file(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"train": {"path": ["nope.pth"], "label": [1]}}))
    with pytest.raises(LoaderError, match="nope.pth: listed in .* but missing"):
        load_dwsnets_inrs(tmp_path, tmp_path / "s.json")
    with pytest.raises(LoaderError, match="no split 'val'"):
        load_dwsnets_inrs(tmp_path, tmp_path / "s.json", split="val")
    with pytest.raises(LoaderError, match="no INR checkpoints found"):
        load_dwsnets_inrs(tmp_path / "empty")
    bad = tmp_path / "mnist_png_training_2_0" / "checkpoints" / "model_final.pth"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(LoaderError, match="model_final.pth: cannot be loaded"):
        load_dwsnets_inrs(tmp_path)


def test_public_zoos_feed_the_invariant_tasks(tmp_path):
    """What the README promises for `--full`'s missing piece: a loaded public zoo goes straight into the
    invariant study's task builders and models (no conversion step)."""
    from scalegmn_lite.tasks.invariant.fit import predict
    from scalegmn_lite.tasks.invariant.study import accuracy_task, inr_task, make_model

    folder = tmp_path / "zoo"
    folder.mkdir()
    write_small_cnn_zoo(folder, runs=12, nan_at=())
    zoo = load_small_cnn_zoo(folder, steps="all", input_shape=(1, 8, 8))
    zoo = zoo.where(activation=zoo.metadata["activation"].mode()[0])
    acc = accuracy_task(zoo, seed=0, fractions=(0.4, 0.3, 0.3))
    assert acc.sizes()["train"] > 0 and acc.sizes()["test"] > 0 and acc.task == "regression"
    assert torch.all((acc.test[1] >= 0) & (acc.test[1] <= 1))
    model, _ = make_model("scalegmn", acc.spec, acc.out_dim, hidden=8, layers=1)
    assert predict(model, acc.test[0]).shape == (acc.sizes()["test"], 1)
    _write_mnist_inrs(tmp_path)
    inrs = inr_task(load_dwsnets_inrs(tmp_path / "data" / "mnist-inrs"), seed=0, fractions=(0.34, 0.33, 0.33))
    assert sum(inrs.sizes().values()) == 3 and inrs.out_dim == 10
    model, _ = make_model("scalegmn", inrs.spec, inrs.out_dim, hidden=8, layers=1)
    assert predict(model, inrs.test[0]).shape == (inrs.sizes()["test"], 10)
