"""Time per network: the one-shot operator (one forward pass of a ScaleGMN-B) against SGD-150 on
the same objective, on the same device, measured in one run.

* one-shot: :func:`~scalegmn_lite.tasks.amortized.operator.timed_apply` on N networks (batches of 256), after a
  warm-up call; the operator's weights do not change its cost, so an untrained one is timed.
* SGD, vectorized: ``train_batched`` on the N networks together for ``--sgd-epochs`` epochs,
  extrapolated linearly to 150 epochs (the cost per epoch is constant), divided by N.
* SGD, one network at a time (``train_loop``, torch.nn + torch.optim) on ``--loop-subset``
  networks for one epoch, extrapolated to 150 epochs: the published comparison's setting.

Ratios = SGD-150 seconds per network / one-shot seconds per network.

    python benchmarks/bench_amortized.py                    # CPU, Conv1d and MLP on MNIST-1D
    python benchmarks/bench_amortized.py --device cuda --networks 1024
"""

from __future__ import annotations

import argparse
import time

import torch

from scalegmn_lite.common.config import resolve_device
from scalegmn_lite.tasks.amortized.operator import AmortizedOperator, timed_apply
from scalegmn_lite.tasks.amortized.protocol import operator_overrides
from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.zoo.data import load_dataset
from scalegmn_lite.zoo.train import init_weights, train_batched, train_loop

ARCHS = {"conv1d": ("mnist1d", "conv1d 1-8-8/10 k3 s2 tanh 1x40"), "mlp": ("mnist1d", "mlp 40-16-10 tanh"),
         "conv2d": ("digits", "conv2d 1-8-8/10 k3 tanh 1x8x8"), "mlp-big": ("mnist1d", "mlp 40-32-32-10 tanh")}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--archs", nargs="*", default=["conv1d", "mlp"], choices=sorted(ARCHS))
    ap.add_argument("--networks", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--sgd-epochs", type=int, default=5, help="epochs timed, extrapolated to 150")
    ap.add_argument("--train-size", type=int, default=1000)
    ap.add_argument("--loop-subset", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    print(f"device={dev} threads={torch.get_num_threads()} networks={args.networks} "
          f"operator hidden={args.hidden} layers={args.layers}")
    for name in args.archs:
        dataset, arch = ARCHS[name]
        data = load_dataset(dataset, device=dev).subset(n_train=args.train_size)
        spec = NetworkSpec.from_text(arch)
        ws = init_weights(spec, list(range(args.networks)), device=dev)
        torch.manual_seed(0)
        op = AmortizedOperator(**operator_overrides("scalegmn-b", args.hidden, args.layers)).to(dev)
        timed_apply(op, ws[:4])  # warm-up
        _, t_op = timed_apply(op, ws)
        _sync(dev)
        t0 = time.perf_counter()
        train_batched(ws, (data.x_train, data.y_train), args.sgd_epochs, 0.01, 0.0, 100, progress=False,
                      generator=torch.Generator().manual_seed(0))
        _sync(dev)
        t_vec = (time.perf_counter() - t0) / args.networks * 150 / args.sgd_epochs
        sub = ws[:args.loop_subset]
        t0 = time.perf_counter()
        train_loop(sub, (data.x_train, data.y_train), 1, 0.01, 0.0, 100, generator=torch.Generator().manual_seed(0))
        _sync(dev)
        t_loop = (time.perf_counter() - t0) / args.loop_subset * 150
        print(f"{name:8s} {arch:34s} one-shot {t_op * 1e3:8.2f} ms/net | SGD-150 vectorized {t_vec:8.3f} s/net "
              f"(ratio {t_vec / t_op:8.0f}x) | SGD-150 one by one {t_loop:8.2f} s/net (ratio {t_loop / t_op:8.0f}x)")


if __name__ == "__main__":
    main()
