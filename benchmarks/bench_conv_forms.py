"""Batched convolution formulations for ``B`` networks with per-network inputs: one training step
(forward + cross-entropy + gradients w.r.t. every weight and bias) at ``B`` networks x ``N`` samples,
each variant timed against the previous library formulation ``unfold_bnc`` in the same run (speedup > 1:
faster).

Variants (all exact reformulations of the same conv; max |diff| vs the library is printed, float64):

* ``library``: ``scalegmn_lite.weightspace.weights.batched_forward`` as installed (grouped convolution);
* ``unfold_bnc``: the previous library formulation, layout ``[B, N, C, *S]``: ``Tensor.unfold`` + einsum
  ``bok,bnkp->bnop``;
* ``cn_unfold``: activations kept as ``[B, C, N, *S]`` between convs; im2col ``[B, C*k, N*P]`` from
  ``Tensor.unfold`` (one copy) and a plain ``baddbmm`` whose output ``[B, O, N*P]`` is already the
  next layer's layout;
* ``cn_slices``: the same layout, im2col by copying ``k`` shifted slices into the columns, with a custom
  autograd backward that adds the ``k`` column blocks back into shifted slices (a cheap col2im);
* ``cn_shift``: the same layout, no im2col: a sum over kernel taps of ``bmm``'s on shifted views of the
  flattened (polyphase for stride > 1) input, computed on the whole grid and cropped (custom backward);
* ``grouped``: ``F.conv1d/F.conv2d`` with ``groups=B`` on ``[N, B*C, *S]``;
* ``grouped_cl`` / ``grouped_2d``: ``F.conv2d`` (conv1d as height-1 conv2d), channels-last / contiguous.

    python benchmarks/bench_conv_forms.py --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import torch
import torch.nn.functional as F

from scalegmn_lite.weightspace.spec import NetworkSpec
from scalegmn_lite.weightspace.weights import WeightSpace, activation_fn, batched_forward

ARCHS = {"conv2d": ("conv2d 1-8-8/10 k3 relu 1x8x8", (1, 8, 8)),
         "conv1d": ("conv1d 1-8-8/10 k3 s2 relu 1x40", (1, 40))}


def _out_size(n: int, k: int, s: int) -> int:
    return (n - k) // s + 1


def _unfold_bnc(h, layer):
    B, N = h.shape[:2]
    flat = h.reshape(B * N, *h.shape[2:])
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    if p:
        flat = F.pad(flat, (p,) * (2 * len(k)))
    if layer.kind == "conv1d":
        cols = flat.unfold(2, k[0], s)
        spatial = (cols.shape[2],)
        cols = cols.permute(0, 1, 3, 2)
    else:
        cols = flat.unfold(2, k[0], s).unfold(3, k[1], s)
        spatial = (cols.shape[2], cols.shape[3])
        cols = cols.permute(0, 1, 4, 5, 2, 3)
    return cols.reshape(B, N, flat.shape[1] * math.prod(k), math.prod(spatial)), spatial


def fwd_unfold_bnc(ws, x):
    B = ws.batch_size
    h = x
    for layer, w, b in zip(ws.spec.layers, ws.weights, ws.biases):
        if layer.kind == "linear":
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        else:
            cols, spatial = _unfold_bnc(h, layer)
            out = torch.einsum("bok,bnkp->bnop", w.reshape(B, layer.out_dim, -1), cols) + b[:, None, :, None]
            h = out.reshape(B, out.shape[1], layer.out_dim, *spatial)
        h = activation_fn(layer.activation, layer.activation_param)(h)
        if layer.pool_after:
            h = h.flatten(3).mean(-1)
    return h


def _cols_unfold(h, layer):
    """``[B, C, N, *S] -> [B, C*k, N*P]`` via unfold views and one copy."""
    B, C, N = h.shape[:3]
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    if p:
        h = F.pad(h, (p,) * (2 * len(k)))
    if layer.kind == "conv1d":
        v = h.unfold(3, k[0], s)  # [B, C, N, P, k]
        spatial = (v.shape[3],)
        v = v.permute(0, 1, 4, 2, 3)
    else:
        v = h.unfold(3, k[0], s).unfold(4, k[1], s)  # [B, C, N, Ho, Wo, kh, kw]
        spatial = (v.shape[3], v.shape[4])
        v = v.permute(0, 1, 5, 6, 2, 3, 4)
    return v.reshape(B, C * math.prod(k), N * math.prod(spatial)), spatial


class _Im2ColSlices(torch.autograd.Function):
    """``[B, C, N, *S] -> [B, C*k, N*P]``: copy the ``k`` shifted (strided) slices; backward adds them back."""

    @staticmethod
    def forward(ctx, h, k, s, spatial):
        B, C, N = h.shape[:3]
        cols = h.new_empty(B, C, *k, N, *spatial)
        for off in itertools.product(*(range(kk) for kk in k)):
            src = h[(Ellipsis, *(slice(o, o + s * (n - 1) + 1, s) for o, n in zip(off, spatial)))]
            cols[(slice(None), slice(None), *off)] = src
        ctx.meta = (tuple(h.shape), k, s, spatial)
        return cols.view(B, C * math.prod(k), N * math.prod(spatial))

    @staticmethod
    def backward(ctx, g):
        shape, k, s, spatial = ctx.meta
        B, C, N = shape[:3]
        g = g.view(B, C, *k, N, *spatial)
        gh = g.new_zeros(shape)
        for off in itertools.product(*(range(kk) for kk in k)):
            dst = gh[(Ellipsis, *(slice(o, o + s * (n - 1) + 1, s) for o, n in zip(off, spatial)))]
            dst += g[(slice(None), slice(None), *off)]
        return gh, None, None, None


def _cols_slices(h, layer):
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    if p:
        h = F.pad(h, (p,) * (2 * len(k)))
    spatial = tuple(_out_size(n, kk, s) for n, kk in zip(h.shape[3:], k))
    return _Im2ColSlices.apply(h, k, s, spatial), spatial


def _fwd_cn(ws, x, cols_fn):
    B, N = x.shape[:2]
    h = x.transpose(1, 2)  # [B, C, N, *S]
    for layer, w, b in zip(ws.spec.layers, ws.weights, ws.biases):
        if layer.kind == "linear":
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        else:
            cols, spatial = cols_fn(h, layer)
            out = torch.baddbmm(b.unsqueeze(2), w.reshape(B, layer.out_dim, -1), cols)  # [B, O, N*P]
            h = out.view(B, layer.out_dim, N, *spatial)
        h = activation_fn(layer.activation, layer.activation_param)(h)
        if layer.pool_after:
            h = h.flatten(3).mean(-1).transpose(1, 2)  # [B, N, C]
    return h


def fwd_cn_unfold(ws, x):
    return _fwd_cn(ws, x, _cols_unfold)


def fwd_cn_slices(ws, x):
    return _fwd_cn(ws, x, _cols_slices)


def fwd_grouped(ws, x):
    B, N = x.shape[:2]
    h = x.transpose(0, 1).reshape(N, -1, *x.shape[3:])  # [N, B*C, *S]
    for layer, w, b in zip(ws.spec.layers, ws.weights, ws.biases):
        if layer.kind == "linear":
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        else:
            conv = F.conv1d if layer.kind == "conv1d" else F.conv2d
            h = conv(h, w.reshape(-1, *w.shape[2:]), b.reshape(-1), stride=layer.stride, padding=layer.padding,
                     groups=B)
        h = activation_fn(layer.activation, layer.activation_param)(h)
        if layer.pool_after:
            h = h.flatten(2).mean(-1).view(N, B, -1).transpose(0, 1)  # [B, N, C]
    return h


class _ShiftConv(torch.autograd.Function):
    """``out[b, :, m] = bias[b] + sum_t W_t[b] @ hp[b, :, phase_t, m + shift_t]`` for ``m < M``: a conv as a sum
    of ``bmm``'s over kernel taps on shifted views of the flattened (polyphase) input, no im2col."""

    @staticmethod
    def forward(ctx, hp, wt, bias, taps, M):
        # hp [B, C, S, L] (S = stride**d phases), wt [T, B, O, C], bias [B, O]
        out = torch.baddbmm(bias.unsqueeze(2), wt[0], hp[:, :, taps[0][0], taps[0][1]:taps[0][1] + M])
        for t in range(1, len(taps)):
            ph, sh = taps[t]
            out.baddbmm_(wt[t], hp[:, :, ph, sh:sh + M])
        ctx.save_for_backward(hp, wt)
        ctx.taps, ctx.M = taps, M
        return out

    @staticmethod
    def backward(ctx, g):
        hp, wt = ctx.saved_tensors
        taps, M = ctx.taps, ctx.M
        g = g.contiguous()
        gw = torch.stack([torch.bmm(g, hp[:, :, ph, sh:sh + M].transpose(1, 2)) for ph, sh in taps])
        gh = None
        if ctx.needs_input_grad[0]:
            gh = torch.zeros_like(hp)
            for t, (ph, sh) in enumerate(taps):
                gh[:, :, ph, sh:sh + M].baddbmm_(wt[t].transpose(1, 2), g)
        return gh, gw, g.sum(2), None, None


def _shift_conv(h, w, b, layer):
    """``h [B, C, N, *S] -> [B, O, N, *S_out]`` by :class:`_ShiftConv`."""
    B, C, N = h.shape[:3]
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    d = len(k)
    if p:
        h = F.pad(h, (p,) * (2 * d))
    S = h.shape[3:]
    out_sp = tuple(_out_size(n, kk, s) for n, kk in zip(S, k))
    if s > 1:  # polyphase: pad to a multiple of s, phases to the front
        h = F.pad(h, sum(((0, (-n) % s) for n in reversed(S)), ()))
        G = tuple(n // s for n in h.shape[3:])
        h = h.reshape(B, C, N, *sum(((g, s) for g in G), ()))
        perm = (0, 1) + tuple(4 + 2 * i for i in range(d)) + (2,) + tuple(3 + 2 * i for i in range(d))
        h = h.permute(perm)  # [B, C, s.., N, G..]
    else:
        G = tuple(S)
    M = N * math.prod(G)
    flat = h.reshape(B, C, s ** d, M)
    taps = []
    for off in itertools.product(*(range(kk) for kk in k)):
        phase = 0
        shift = 0
        for o, g in zip(off, G):
            phase = phase * s + o % s
            shift = shift * g + o // s
        taps.append((phase, shift))
    max_shift = max(sh for _, sh in taps)
    flat = F.pad(flat, (0, max_shift))
    wt = w.reshape(B, w.shape[1], C, -1).permute(3, 0, 1, 2).contiguous()  # [T, B, O, C]
    out = _ShiftConv.apply(flat, wt, b, taps, M)  # [B, O, M]
    out = out.view(B, -1, N, *G)
    return out[(Ellipsis, *(slice(0, n) for n in out_sp))]


def fwd_cn_shift(ws, x):
    B, N = x.shape[:2]
    h = x.transpose(1, 2)
    for layer, w, b in zip(ws.spec.layers, ws.weights, ws.biases):
        if layer.kind == "linear":
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        else:
            h = _shift_conv(h, w, b, layer)
        h = activation_fn(layer.activation, layer.activation_param)(h)
        if layer.pool_after:
            h = h.flatten(3).mean(-1).transpose(1, 2)
    return h


def fwd_grouped_cl(ws, x, channels_last=True):
    B, N = x.shape[:2]
    h = x.transpose(0, 1).reshape(N, -1, *x.shape[3:])
    if h.dim() == 3:
        h = h.unsqueeze(2)
    if channels_last:
        h = h.contiguous(memory_format=torch.channels_last)
    for layer, w, b in zip(ws.spec.layers, ws.weights, ws.biases):
        if layer.kind == "linear":
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        else:
            ww = w.reshape(-1, *w.shape[2:])
            st = layer.stride
            if layer.kind == "conv1d":
                ww, st, pd = ww.unsqueeze(2), (1, st), (0, layer.padding)
            else:
                pd = layer.padding
            h = F.conv2d(h, ww, b.reshape(-1), stride=st, padding=pd, groups=B)
        h = activation_fn(layer.activation, layer.activation_param)(h)
        if layer.pool_after:
            h = h.flatten(2).mean(-1).view(N, B, -1).transpose(0, 1)
    return h


VARIANTS = {"library": lambda ws, x: batched_forward(ws, x, per_network=True), "unfold_bnc": fwd_unfold_bnc,
            "cn_unfold": fwd_cn_unfold, "cn_slices": fwd_cn_slices, "grouped": fwd_grouped,
            "grouped_cl": fwd_grouped_cl,
            "grouped_2d": lambda ws, x: fwd_grouped_cl(ws, x, False), "cn_shift": fwd_cn_shift}


def step(fn, ws, x, y):
    leaves = [p.detach().requires_grad_(True) for p in ws.params()]
    cur = WeightSpace(ws.spec, leaves[0::2], leaves[1::2])
    logits = fn(cur, x)
    loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1).sum()
    return logits, torch.autograd.grad(loss, leaves)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--archs", nargs="*", default=sorted(ARCHS), choices=sorted(ARCHS))
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("-B", type=int, default=256)
    ap.add_argument("-N", type=int, default=64)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    for arch in args.archs:
        text, shape = ARCHS[arch]
        spec = NetworkSpec.from_text(text)
        # exactness, float64
        ws64 = WeightSpace.randn(spec, 4, generator=g, dtype=torch.float64)
        x64 = torch.randn(4, 5, *shape, generator=g, dtype=torch.float64)
        y64 = torch.randint(0, 10, (4, 5), generator=g)
        ref_out, ref_g = step(VARIANTS["unfold_bnc"], ws64, x64, y64)
        errs = {}
        for name in args.variants:
            out, gr = step(VARIANTS[name], ws64, x64, y64)
            errs[name] = max([float((out.detach() - ref_out.detach()).abs().max())] + [float((a - b).abs().max())
                                                                      for a, b in zip(gr, ref_g)])
        ws = WeightSpace.randn(spec, args.B, generator=g)
        x = torch.randn(args.B, args.N, *shape, generator=g)
        y = torch.randint(0, 10, (args.B, args.N), generator=g)
        for th in args.threads:
            torch.set_num_threads(th)
            times = {}
            for name in args.variants:
                step(VARIANTS[name], ws, x, y)
            for _ in range(args.reps):  # interleaved, best of reps (the machine is shared)
                for name in args.variants:
                    t0 = time.perf_counter()
                    step(VARIANTS[name], ws, x, y)
                    times[name] = min(times.get(name, math.inf), time.perf_counter() - t0)
            base = times["unfold_bnc"] if "unfold_bnc" in times else times[args.variants[0]]
            print(f"{arch} B={args.B} N={args.N} threads={th}  (train step fwd+bwd, best of {args.reps})")
            print(f"  {'variant':12s} {'ms':>8s} {'speedup':>8s} {'max|diff| f64':>14s}")
            for name in args.variants:
                print(f"  {name:12s} {1e3 * times[name]:8.2f} {base / times[name]:7.2f}x {errs[name]:14.1e}",
                      flush=True)


if __name__ == "__main__":
    main()
