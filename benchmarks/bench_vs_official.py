"""Our ScaleGMN against the published implementation (jkalogero/scalegmn), same networks, one run.

The published code is *not* part of this repository. Get it yourself, outside this checkout::

    git clone https://github.com/jkalogero/scalegmn /tmp/official-scalegmn
    python benchmarks/bench_vs_official.py --official /tmp/official-scalegmn

Without ``--official`` (or with a path that holds no ``src/scalegmn/models.py``) the script prints
these instructions and exits with status 0. The official models are built from the checkout's own
configs (``configs/cifar10/scalegmn_relu[_bidir].yml`` for the Small CNN Zoo layout
``[1,16,16,16,10]`` ReLU conv, ``configs/mnist_cls/scalegmn[_bidir].yml`` for SIREN ``[2,32,32,1]``),
with ``d_hid``/``num_layers`` set to ``--hidden``/``--layers`` and dropout 0. Its optional imports
used only by its INR/plotting helpers (``rff``, ``einops``, ``torchvision``) are stubbed when missing.

Both sides get the same ``--batch`` random networks as pre-built graph batches (graph building is
not timed), run forward + backward of ``mean(out**2)``; ours with ``mode="auto"`` (exactly
equivariant), the invariant head and the dense path (``path="auto"``), eager and with
``compile=True`` (``torch.compile`` of each layer; compiled during the warm-up). Reported per layout:

* graphs/s: median (and min-max) of ``--repeats`` interleaved repeats (variant A, B, C, D, A, ...);
  ratio against the official forward model;
* parameters and parameters that get no gradient from the step (``p.grad is None``);
* peak memory of one step: on CPU, each variant runs in its own subprocess and we report
  the peak resident set size during the step (``VmHWM``, reset just before it) minus the resident
  set size before it (model and batch built, one warm-up step run, gradients freed,
  so the figure is what a steady-state step allocates at its peak); on CUDA ``torch.cuda.max_memory_allocated``
  during the step minus the memory allocated before it.

    python benchmarks/bench_vs_official.py --official /tmp/official-scalegmn            # CPU (+ CUDA if present)
    python benchmarks/bench_vs_official.py --official PATH --devices cpu --repeats 3 --batch 16
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

from scalegmn_lite import NetworkSpec, WeightSpace
from scalegmn_lite.nn.scalegmn import ScaleGMN, ScaleGMNConfig

HOW_TO = """The official ScaleGMN is not included (and must not be vendored). To compare against it:

    git clone https://github.com/jkalogero/scalegmn /tmp/official-scalegmn
    python benchmarks/bench_vs_official.py --official /tmp/official-scalegmn
"""

LAYOUTS = {
    "cnn": ("conv2d 1-16-16-16/10 k3 relu 1x28x28", "configs/cifar10/scalegmn_relu{}.yml"),
    "siren": ("siren 2-32-32-1", "configs/mnist_cls/scalegmn{}.yml"),
}
VARIANTS = ("official-fwd", "ours-fwd", "ours-fwd-compiled", "ours-bidir", "ours-bidir-compiled", "official-bidir")


def _stub_optional_imports() -> None:
    """Stand-ins for packages the official model code imports but never calls on this path."""
    def unavailable(name):
        def fn(*args, **kwargs):
            raise RuntimeError(f"{name} is stubbed by bench_vs_official.py")
        return fn

    mods = {"rff": [], "rff.layers": ["GaussianEncoding", "PositionalEncoding"], "einops": [],
            "einops.layers": [], "einops.layers.torch": ["Rearrange"], "torchvision": [],
            "torchvision.utils": ["save_image"]}
    for name, attrs in mods.items():
        try:
            importlib.import_module(name)
        except ImportError:
            mod = types.ModuleType(name)
            for a in attrs:
                setattr(mod, a, unavailable(f"{name}.{a}"))
            sys.modules[name] = mod


def _add_official(root: str) -> None:
    """Put the checkout on ``sys.path``; ``src.data`` is registered without running its
    ``__init__`` (which imports dataset code and its dependencies: only ``data_utils`` is used)."""
    root_path = Path(root).resolve()
    sys.path.insert(0, str(root_path))
    pkg = types.ModuleType("src.data")
    pkg.__path__ = [str(root_path / "src" / "data")]
    sys.modules["src.data"] = pkg
    importlib.import_module("src").data = pkg


def _official_args(root: Path, layout: str, bidir: bool, hidden: int, layers: int, widths) -> dict:
    import yaml

    conf = yaml.safe_load((root / LAYOUTS[layout][1].format("_bidir" if bidir else "")).read_text())
    a = copy.deepcopy(conf["scalegmn_args"])
    a["layer_layout"] = list(widths)
    a["num_layers"] = layers
    a["d_hid"] = a["gnn_args"]["d_hid"] = a["graph_init"]["d_node"] = a["graph_init"]["d_edge"] = hidden
    a["mlp_args"]["d_k"] = [hidden]
    a["readout_args"]["d_rho"] = hidden
    a["gnn_args"]["dropout"] = 0.0
    return a


def _official_batch(ws: WeightSpace, conf: dict, bidir: bool, device):
    """The published graph format: input vertices carry 1, edges (s, t) in s-major order."""
    from src.data.data_utils import get_edge_types, get_node_types  # noqa: E402 (official code)
    from src.scalegmn.utils import fast_nn_to_edge_index
    from torch_geometric.data import Batch, Data

    widths = list(ws.spec.widths)
    K = ws.spec.max_kernel_numel
    ei = fast_nn_to_edge_index(widths, "cpu")
    x = torch.cat([torch.ones(ws.batch_size, widths[0]), *[b.detach() for b in ws.biases]], 1)
    edges = []
    for layer, W in zip(ws.spec.layers, ws.weights):
        flat = W.detach().reshape(ws.batch_size, layer.out_dim, layer.in_dim, -1).transpose(1, 2)
        flat = flat.reshape(ws.batch_size, layer.in_dim * layer.out_dim, -1)
        edges.append(torch.nn.functional.pad(flat, (0, K - flat.shape[-1])))
    e = torch.cat(edges, 1)
    hidden = torch.tensor([False] * widths[0] + [True] * sum(widths[1:-1]) + [False] * widths[-1]).unsqueeze(-1)
    first = torch.tensor([True] * widths[0] + [False] * sum(widths[1:])).unsqueeze(-1)
    extra = dict(node2type=get_node_types(widths), edge2type=get_edge_types(widths), mask_hidden=hidden,
                 mask_first_layer=first)
    if bidir:
        extra["bw_edge_index"] = torch.flip(ei, [0])
    data = [Data(x=x[b].unsqueeze(-1), edge_index=ei, edge_attr=e[b], **extra) for b in range(ws.batch_size)]
    return Batch.from_data_list(data).to(device)


class Runner:
    """One model and its input; ``step()`` runs forward + backward."""

    def __init__(self, variant: str, layout: str, args, device) -> None:
        spec = NetworkSpec.from_text(LAYOUTS[layout][0])
        ws = WeightSpace.randn(spec, args.batch, torch.Generator().manual_seed(0))
        torch.manual_seed(0)
        bidir = "bidir" in variant
        if variant.startswith("official"):
            from src.scalegmn.models import ScaleGMN as Official

            conf = _official_args(Path(args.official), layout, bidir, args.hidden, args.layers, spec.widths)
            self.model = Official(conf).to(device)
            self.batch = _official_batch(ws, conf, bidir, device)
            self.call = lambda: self.model(self.batch.clone())  # the official forward edits its batch
        else:
            out_dim = 1 if layout == "cnn" else 10
            cfg = ScaleGMNConfig(hidden_dim=args.hidden, num_layers=args.layers, mode="auto", bidirectional=bidir,
                                 head="invariant", out_dim=out_dim, max_kernel=spec.max_kernel_numel,
                                 compile=variant.endswith("compiled"))
            self.model = ScaleGMN(cfg).to(device)
            self.batch = self.model.to_graph(ws)
            self.call = lambda: self.model(self.batch)
        self.device = device

    def step(self) -> None:
        self.model.zero_grad(set_to_none=True)
        self.call().pow(2).mean().backward()

    def params(self) -> tuple[int, int]:
        self.step()
        total = sum(p.numel() for p in self.model.parameters())
        nograd = sum(p.numel() for p in self.model.parameters() if p.grad is None)
        return total, nograd


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _peak_rss_bytes() -> int:
    """The process's peak resident set size since the last :func:`_reset_peak_rss` (``VmHWM``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_peak_rss() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0). ``getrusage``'s ``ru_maxrss`` cannot be used:
    Linux carries the forked parent's resident size across ``exec`` into it, so every child would
    report the parent's size (a bug of an earlier version of this script: all variants ~6.4 GB)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _memory_child(args) -> None:
    """Subprocess: peak RSS growth of one step of one variant (CPU)."""
    torch.set_num_threads(args.threads)
    _stub_optional_imports()
    _add_official(args.official)
    r = Runner(args.child_variant, args.child_layout, args, torch.device("cpu"))
    r.step()  # warm-up (compiles the compiled variants): the figure is a steady-state step
    r.model.zero_grad(set_to_none=True)
    before = _rss_bytes()
    _reset_peak_rss()
    r.step()
    peak = _peak_rss_bytes()
    print(json.dumps({"peak_step_bytes": max(0, peak - before)}))


def _memory_cpu(args, variant: str, layout: str) -> float:
    cmd = [sys.executable, __file__, "--official", args.official, "--batch", str(args.batch), "--hidden",
           str(args.hidden), "--layers", str(args.layers), "--threads", str(args.threads),
           "--child-variant", variant, "--child-layout", layout]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["peak_step_bytes"] / 2**20


def _memory_cuda(runner: Runner) -> float:
    dev = runner.device
    torch.cuda.synchronize(dev)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    runner.step()
    torch.cuda.synchronize(dev)
    return (torch.cuda.max_memory_allocated(dev) - base) / 2**20


def run_device(args, device) -> list[str]:
    lines, misses = [], []
    for layout in args.layouts:
        runners = {v: Runner(v, layout, args, device) for v in VARIANTS}
        counts = {v: r.params() for v, r in runners.items()}
        for r in runners.values():  # warm-up
            r.step()
        times = {v: [] for v in VARIANTS}
        for _ in range(args.repeats):
            for v, r in runners.items():
                _sync(device)
                t0 = time.perf_counter()
                r.step()
                _sync(device)
                times[v].append(time.perf_counter() - t0)
        mem = {v: (_memory_cpu(args, v, layout) if device.type == "cpu" else _memory_cuda(runners[v]))
               for v in VARIANTS}
        rate = {v: args.batch / statistics.median(t) for v, t in times.items()}
        spec = NetworkSpec.from_text(LAYOUTS[layout][0])
        lines.append(f"\n[{device.type}] {layout} widths={list(spec.widths)} batch={args.batch} hidden={args.hidden} "
                     f"layers={args.layers} threads={args.threads} repeats={args.repeats}")
        lines.append(f"{'variant':20s} {'graphs/s':>9s} {'(min-max)':>15s} {'vs official-fwd':>16s} "
                     f"{'params':>10s} {'no grad':>8s} {'peak step MiB':>14s}")
        for v in VARIANTS:
            lo, hi = args.batch / max(times[v]), args.batch / min(times[v])
            lines.append(f"{v:20s} {rate[v]:9.2f} {f'({lo:.2f}-{hi:.2f})':>15s} "
                         f"{rate[v] / rate['official-fwd']:15.2f}x {counts[v][0]:10d} {counts[v][1]:8d} "
                         f"{mem[v]:14.1f}")
        checks = [
            ("ours-fwd >= 1.5x official-fwd graphs/s", rate["ours-fwd"] >= 1.5 * rate["official-fwd"]),
            ("ours-fwd-compiled >= 1.5x official-fwd graphs/s",
             rate["ours-fwd-compiled"] >= 1.5 * rate["official-fwd"]),
            ("ours-bidir >= official-fwd graphs/s", rate["ours-bidir"] >= rate["official-fwd"]),
            ("ours-fwd peak memory <= official-fwd", mem["ours-fwd"] <= mem["official-fwd"]),
            ("ours-fwd parameters <= 1.2x official-fwd", counts["ours-fwd"][0] <= 1.2 * counts["official-fwd"][0]),
            ("ours: 0 parameters without gradient", counts["ours-fwd"][1] == 0 and counts["ours-bidir"][1] == 0),
        ]
        for name, ok in checks:
            lines.append(f"  target {name}: {'MET' if ok else 'MISSED'}")
            if not ok:
                misses.append(f"{device.type}/{layout}: {name}")
        print("\n".join(lines[-(len(VARIANTS) + 2 + len(checks)):]), flush=True)
    return misses


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", default=None, help="path of a jkalogero/scalegmn checkout (outside this repo)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"])
    ap.add_argument("--child-variant", help=argparse.SUPPRESS)
    ap.add_argument("--child-layout", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.official or not (Path(args.official) / "src" / "scalegmn" / "models.py").is_file():
        print(HOW_TO if not args.official else f"no official checkout at {args.official!r}.\n\n{HOW_TO}")
        return 0
    if args.child_variant:
        _memory_child(args)
        return 0
    torch.set_num_threads(args.threads)
    _stub_optional_imports()
    _add_official(args.official)
    misses = []
    for dev in args.devices:
        if dev == "cuda" and not torch.cuda.is_available():
            print("\n[cuda] not available: skipped")
            continue
        misses += run_device(args, torch.device(dev))
    print(f"\n{len(misses)} target(s) missed" + (": " + "; ".join(misses) if misses else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
