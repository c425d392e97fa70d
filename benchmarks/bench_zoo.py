"""Zoo build throughput: networks x epochs per second of the vectorized builder against a loop of
``torch.nn`` models, peak memory, and how fast a 4096-network zoo with 9 checkpoints saves and loads.

For each family (MLP and Conv1d on MNIST-1D's 2000 training images, batch 100, SGD with momentum;
SIREN 2-32-32-1 fitting 16x16 digit images, full-batch Adam) and each N:

* batched: the N networks trained as the zoo builder trains them (chunks of the recipe's
  ``chunk_size``: 256 MLPs, 64 Conv1d CNNs, 64 SIRENs; :func:`~scalegmn_lite.zoo.train.train_batched` /
  :func:`~scalegmn_lite.zoo.inr.fit_inrs`), one epoch (SIREN: ``--inr-steps`` steps) each;
* loop: ``--loop-subset`` networks one at a time as ``torch.nn`` modules with ``torch.optim`` on the
  same work (:func:`~scalegmn_lite.zoo.train.train_loop`; for SIRENs the same loop written here); its
  per-network time is extrapolated (the loop's cost is linear in N by construction).

Ratio = batched rate / loop rate, measured in this one run. Peak memory is the process's resident
high-water mark (``VmHWM``, reset before each measurement where the kernel allows it).
Storage: a zoo of 4096 Conv1d CNNs x 9 checkpoints (random weights) is saved with
:func:`~scalegmn_lite.zoo.storage.save_zoo` (atomic, SHA-256) and loaded with every hash verified.

    python benchmarks/bench_zoo.py                              # CPU, 1 thread, N = 1024 and 4096
    python benchmarks/bench_zoo.py --device cuda --sizes 1024 4096 16384
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from scalegmn_lite.common.config import resolve_device
from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.weightspace.weights import WeightSpace
from scalegmn_lite.zoo.data import load_dataset
from scalegmn_lite.zoo.inr import coordinate_grid, digit_images, fit_inrs, init_siren
from scalegmn_lite.zoo.storage import load_zoo, save_zoo
from scalegmn_lite.zoo.train import init_weights, train_batched, train_loop
from scalegmn_lite.zoo.zoo import Zoo

#: family -> (architecture, chunk size of the zoo recipes)
FAMILIES = {"mlp": ("mlp 40-32-10 relu", 256), "conv1d": ("conv1d 1-16-16/10 k5 s2 relu 1x40", 64),
            "siren": ("siren 2-32-32-1", 64)}


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def reset_peak() -> None:
    """Reset the resident-set high-water mark (Linux; a no-op elsewhere)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mib(dev) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def siren_loop(ws: WeightSpace, images: torch.Tensor, steps: int, lr: float = 1e-3) -> None:
    """SIRENs fitted one at a time as ``torch.nn`` modules with ``torch.optim.Adam`` (full batch)."""
    coords = coordinate_grid(images.shape[-1], ws.device, ws.dtype)
    for b in range(ws.batch_size):
        module = ws.to_module(b)
        opt = torch.optim.Adam(module.parameters(), lr=lr)
        target = images[b].reshape(-1, 1)
        for _ in range(steps):
            loss = F.mse_loss(module(coords), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def batched_rate(family: str, n: int, dev, data, images, inr_steps: int) -> tuple[float, float]:
    """(networks x epochs per second, peak MiB) of training ``n`` networks in the builder's chunks."""
    text, chunk = FAMILIES[family]
    spec = NetworkSpec.from_text(text)
    reset_peak()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _sync(dev)
    t0 = time.perf_counter()
    for s in range(0, n, chunk):
        seeds = list(range(s, min(n, s + chunk)))
        if family == "siren":
            ws = init_siren(spec, seeds, device=dev)
            fit_inrs(ws, images[torch.tensor(seeds) % len(images)], inr_steps, 1e-3, progress=False)
        else:
            ws = init_weights(spec, seeds, torch.linspace(0.5, 2, len(seeds)), device=dev)
            train_batched(ws, data, 1, torch.logspace(-3, -1, len(seeds)), torch.full((len(seeds),), 1e-4), 100,
                          seeds=seeds, progress=False)
    _sync(dev)
    seconds = time.perf_counter() - t0
    work = n * (inr_steps if family == "siren" else 1)
    return work / seconds, peak_mib(dev)


def loop_rate(family: str, k: int, dev, data, images, inr_steps: int) -> float:
    text, _ = FAMILIES[family]
    spec = NetworkSpec.from_text(text)
    seeds = list(range(k))
    if family == "siren":
        ws = init_siren(spec, seeds, device=dev)
        siren_loop(ws[:1], images[:1], 2)  # warm-up
        _sync(dev)
        t0 = time.perf_counter()
        siren_loop(ws, images[:k], inr_steps)
        _sync(dev)
        return k * inr_steps / (time.perf_counter() - t0)
    ws = init_weights(spec, seeds, 1.0, device=dev)
    train_loop(ws, data, 1, 0.05, 1e-4, 100, seeds=seeds, networks=[0], max_steps=3)  # warm-up
    _sync(dev)
    t0 = time.perf_counter()
    train_loop(ws, data, 1, 0.05, 1e-4, 100, seeds=seeds)
    _sync(dev)
    return k / (time.perf_counter() - t0)


def storage(n: int = 4096, checkpoints: int = 9) -> dict:
    """Save and verified-load times of a zoo of ``n`` Conv1d CNNs x ``checkpoints`` (random weights)."""
    spec = NetworkSpec.from_text(FAMILIES["conv1d"][0])
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(checkpoints, n, spec.num_params, generator=g)
    md = pd.DataFrame({"net": np.arange(n), "group": 0, "row": np.arange(n),
                       **{f"test_acc@{e}": np.linspace(0.1, 0.9, n) for e in range(checkpoints)}})
    zoo = Zoo((spec,), (flat,), tuple(range(checkpoints)), md, {"name": "bench"})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        save_zoo(zoo, tmp)
        t_save = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
        t0 = time.perf_counter()
        back = load_zoo(tmp)
        t_load = time.perf_counter() - t0
        assert torch.equal(back.flat[0], flat)
    return {"networks": n, "checkpoints": checkpoints, "MiB": size, "save_s": t_save, "load_verified_s": t_load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--families", nargs="*", default=list(FAMILIES), choices=sorted(FAMILIES))
    ap.add_argument("--sizes", nargs="*", type=int, default=[1024, 4096])
    ap.add_argument("--loop-subset", type=int, default=8)
    ap.add_argument("--inr-steps", type=int, default=20, help="SIREN optimizer steps per network")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: leave the default)")
    ap.add_argument("--no-storage", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    data = load_dataset("mnist1d", device=dev).subset(n_train=2000)
    images, _ = digit_images(16, device=dev)
    print(f"device={dev} threads={torch.get_num_threads()} work: 1 epoch of 2000 MNIST-1D images, batch 100 "
          f"(MLP, Conv1d); {args.inr_steps} full-batch Adam steps on a 16x16 image (SIREN)")
    print(f"{'family':7s} {'N':>6s} {'batched net-ep/s':>17s} {'loop net-ep/s':>14s} {'ratio':>7s} {'peak MiB':>9s}")
    for fam in args.families:
        loop = loop_rate(fam, args.loop_subset, dev, data, images, args.inr_steps)
        for n in args.sizes:
            rate, peak = batched_rate(fam, n, dev, data, images, args.inr_steps)
            print(f"{fam:7s} {n:6d} {rate:17.1f} {loop:14.1f} {rate / loop:6.1f}x {peak:9.0f}", flush=True)
    if not args.no_storage:
        st = storage()
        print(f"storage: {st['networks']} Conv1d CNNs x {st['checkpoints']} checkpoints, {st['MiB']:.0f} MiB: "
              f"save {st['save_s']:.2f} s ({st['MiB'] / st['save_s']:.0f} MiB/s), load with every hash verified "
              f"{st['load_verified_s']:.2f} s ({st['MiB'] / st['load_verified_s']:.0f} MiB/s)")
    print("(SIREN rates count optimizer steps: networks x steps per second)")


if __name__ == "__main__":
    main()
