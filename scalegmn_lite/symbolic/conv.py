"""Convolutions as (doubly-block) Toeplitz matrices, and the dimension of their scaling gauge.

A conv layer with kernel ``K[o, c, *k]`` is the linear map ``y = M x`` on the flattened
("unrolled") signals ``x in R^{c_in * n}`` (conv1d; ``(c, y, x)`` row-major for conv2d) with

    ``M[(o, p), (c, p * stride + j - padding)] = K[o, c, j]``

(a block Toeplitz matrix; for conv2d a block matrix of Toeplitz blocks). We describe ``M`` by an
integer *index* matrix: ``index[r, s] = 1 + flat position of the kernel entry`` at ``(r, s)``, 0 for a
structural zero. Every nonzero kernel entry appears in many places of ``M``.

**Scaling gauge.** A diagonal scaling of the unrolled neurons acts by ``M -> D_out M D_in^{-1}``.
With log-scales ``D = diag(exp(u))`` the entry ``(r, s)`` is multiplied by ``exp(u_r - u_s)``; the
result is again a convolution iff all entries that share one kernel weight get the same factor:

    ``u_r - u_s = u_r' - u_s'``   whenever   ``index[r, s] = index[r', s'] != 0``.

These linear equations ``A u = 0`` (plus, optionally, the bias, shared by all positions of a
channel) define the Lie algebra of the group of scalings that keep every layer a convolution, so
``dim G_scale = nullity(A)``. A dense layer of the same unrolled size has a distinct weight per
entry, so no constraint and one factor per unrolled neuron. For a network (input and output neurons
fixed) this gives ``dim G_scale(CNN) = sum of hidden channels`` versus ``dim G_scale(MLP) = sum of
hidden unrolled neurons`` (channels x positions): strictly smaller unless every hidden layer has a
single position (the kernel covers the whole input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy as sp
import torch

from ..weightspace.spec import NetworkSpec, SpecError

__all__ = [
    "conv_output_size",
    "conv1d_index",
    "conv2d_index",
    "dense_index",
    "symbolic_kernel",
    "toeplitz_matrix",
    "unrolled_matrix",
    "is_convolution",
    "scaling_constraints",
    "scaling_dimension",
    "ScalingDims",
    "layer_scaling_dims",
    "network_index",
    "network_scaling_dims",
    "check_conv_scaling_numerically",
]


def conv_output_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """``floor((n + 2 padding - k) / stride) + 1``; raises if the kernel does not fit."""
    out = (n + 2 * padding - k) // stride + 1
    if out < 1:
        raise SpecError(f"kernel {k} does not fit an input of size {n} with padding {padding}")
    return out


def conv1d_index(c_out: int, c_in: int, k: int, n: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Index matrix ``[c_out * n_out, c_in * n]`` of a conv1d layer (see module docstring)."""
    return conv2d_index(c_out, c_in, (1, k), (1, n), stride, padding, _pad_h=0, _stride_h=1)


def conv2d_index(c_out: int, c_in: int, k: tuple[int, int], size: tuple[int, int], stride: int = 1,
                 padding: int = 0, *, _pad_h: int | None = None, _stride_h: int | None = None) -> np.ndarray:
    """Index matrix ``[c_out * oh * ow, c_in * h * w]`` of a conv2d layer: the doubly-block
    Toeplitz pattern (rows ``(o, oy, ox)``, columns ``(c, y, x)``, both row-major)."""
    c_out, c_in, stride, padding = int(c_out), int(c_in), int(stride), int(padding)
    kh, kw = (int(v) for v in k)
    h, w = (int(v) for v in size)
    ph = padding if _pad_h is None else _pad_h
    sh = stride if _stride_h is None else _stride_h
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, stride, padding)
    o, c, oy, ox, dy, dx = np.meshgrid(np.arange(c_out), np.arange(c_in), np.arange(oh), np.arange(ow),
                                       np.arange(kh), np.arange(kw), indexing="ij")
    y, x = oy * sh + dy - ph, ox * stride + dx - padding
    ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    rows = ((o * oh + oy) * ow + ox)[ok]
    cols = ((c * h + y) * w + x)[ok]
    ids = ((((o * c_in + c) * kh + dy) * kw + dx) + 1)[ok]
    index = np.zeros((c_out * oh * ow, c_in * h * w), dtype=np.int64)
    index[rows, cols] = ids
    return index


def dense_index(n_out: int, n_in: int) -> np.ndarray:
    """A dense layer: every entry its own weight (ids ``1 .. n_out * n_in``)."""
    return np.arange(1, n_out * n_in + 1, dtype=np.int64).reshape(n_out, n_in)


def symbolic_kernel(c_out: int, c_in: int, *k: int, name: str = "k") -> sp.Array:
    """Kernel symbols ``k_{o c j}`` (conv1d) or ``k_{o c y x}`` (conv2d), shape ``[c_out, c_in, *k]``."""
    shape = (c_out, c_in, *k)
    syms = [sp.Symbol(f"{name}_{{{''.join(map(str, idx))}}}", real=True) for idx in np.ndindex(*shape)]
    return sp.Array(syms, shape)


def toeplitz_matrix(kernel: sp.Array, size: int | tuple[int, int], stride: int = 1, padding: int = 0) -> sp.Matrix:
    """The unrolled (Toeplitz / doubly-block Toeplitz) sympy matrix of a conv layer with ``kernel``
    ``[c_out, c_in, k]`` or ``[c_out, c_in, kh, kw]`` on inputs of spatial ``size``."""
    shape = kernel.shape
    if len(shape) == 3:
        index = conv1d_index(shape[0], shape[1], shape[2], int(size), stride, padding)
    elif len(shape) == 4:
        index = conv2d_index(shape[0], shape[1], (shape[2], shape[3]), tuple(size), stride, padding)
    else:
        raise ValueError(f"kernel must be [c_out, c_in, k] or [c_out, c_in, kh, kw], got shape {shape}")
    flat = [sp.S.Zero, *sp.flatten(kernel)]
    return sp.Matrix(index.shape[0], index.shape[1], lambda r, s: flat[int(index[r, s])])


def unrolled_matrix(weight: torch.Tensor, index: np.ndarray) -> torch.Tensor:
    """Numeric unrolled matrix ``M = flat(weight)[index]`` (structural zeros 0), on ``weight``'s
    device and dtype. ``weight``: ``[c_out, c_in, *k]``."""
    flat = torch.cat([weight.new_zeros(1), weight.reshape(-1)])
    return flat[torch.as_tensor(index, device=weight.device)]


def is_convolution(M: torch.Tensor, index: np.ndarray, rtol: float | None = None) -> bool:
    """True iff ``M`` has the sparsity and weight sharing of ``index`` (structural zeros are 0 and
    all entries sharing a kernel weight are equal, up to a dtype-aware relative tolerance)."""
    idx = torch.as_tensor(index, device=M.device)
    rtol = (1e-10 if M.dtype == torch.float64 else 1e-5) if rtol is None else rtol
    n_ids = int(idx.max()) + 1
    # read one representative per id (the last writer wins; any occurrence works if M is a conv)
    flat = M.new_zeros(n_ids)
    flat[idx.reshape(-1)] = M.reshape(-1)
    flat[0] = 0
    rebuilt = flat[idx]
    scale = float(M.abs().max()) or 1.0
    return bool(((M - rebuilt).abs() <= rtol * scale).all())


def scaling_constraints(indices: Sequence[np.ndarray], bias_indices: Sequence[np.ndarray | None] | None = None,
                        free_input: bool = False, free_output: bool = False):
    """The sparse constraint matrix ``A`` (scipy CSR, ``[n_constraints, n_unknowns]``) of
    log-scalings that keep every layer's weight sharing.

    Args:
        indices: index matrices of layers ``1..L`` (``[n_l, n_{l-1}]``, consecutive shapes match).
        bias_indices: optional per-layer ``[n_l]`` bias ids (0 = no bias); shared ids tie neurons.
        free_input, free_output: whether the input (output) neurons get a scaling too (a single
            layer ``D_out M D_in^{-1}``); in a network both are fixed.
    Unknowns: the log-scales of the free neurons, boundary by boundary.
    """
    import scipy.sparse as sparse

    L = len(indices)
    sizes = [indices[0].shape[1]] + [m.shape[0] for m in indices]
    for l in range(1, L):
        if indices[l].shape[1] != indices[l - 1].shape[0]:
            raise ValueError(f"layer {l + 1} expects {indices[l].shape[1]} inputs, "
                             f"layer {l} has {indices[l - 1].shape[0]} outputs")
    free = [free_input] + [True] * (L - 1) + [free_output]
    offsets, n = [], 0
    for size, f in zip(sizes, free):
        offsets.append(n if f else None)
        n += size if f else 0
    rows, cols, vals, n_rows = [], [], [], 0

    def add_group(ids: np.ndarray, out_units: np.ndarray, in_units: np.ndarray | None, lo: int | None, li: int | None):
        nonlocal n_rows
        order = np.argsort(ids, kind="stable")
        ids, out_units = ids[order], out_units[order]
        in_units = None if in_units is None else in_units[order]
        _, first = np.unique(ids, return_index=True)
        first_of = np.repeat(first, np.diff(np.append(first, len(ids))))
        others = np.nonzero(np.arange(len(ids)) != first_of)[0]
        k = len(others)
        r = np.arange(n_rows, n_rows + k)
        # row: f(e) - f(first), f(e) = e_out(r) - e_in(s)
        for units, sign, off in ((out_units, 1.0, lo), (in_units, -1.0, li)):
            if units is None or off is None:
                continue
            rows.extend([r, r])
            cols.extend([off + units[others], off + units[first_of[others]]])
            vals.extend([np.full(k, sign), np.full(k, -sign)])
        n_rows += k

    for l, m in enumerate(indices):
        rr, ss = np.nonzero(m)
        if len(rr):
            add_group(m[rr, ss], rr, ss, offsets[l + 1], offsets[l])
        if bias_indices is not None and bias_indices[l] is not None:
            b = np.asarray(bias_indices[l])
            rr = np.nonzero(b)[0]
            if len(rr):
                add_group(b[rr], rr, None, offsets[l + 1], None)
    if rows:
        A = sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(n_rows, n)).tocsr()
    else:
        A = sparse.csr_matrix((0, n))
    A.sum_duplicates()
    return A


def scaling_dimension(indices: Sequence[np.ndarray], bias_indices=None, free_input: bool = False,
                      free_output: bool = False, exact: bool = False) -> int:
    """``nullity(A)`` of :func:`scaling_constraints`: numerically via the eigenvalues of the
    symmetric ``A^T A`` (numpy; ``O(n^3)`` in the number ``n`` of free neurons, about 1 s at
    ``n = 1500``), or ``exact=True`` with sympy's rational rank (small sizes only)."""
    A = scaling_constraints(indices, bias_indices, free_input, free_output)
    n = A.shape[1]
    if A.shape[0] == 0 or A.nnz == 0:
        return n
    if exact:
        return n - sp.Matrix(A.toarray().astype(int)).rank()
    n_classes, B = _merge_equalities(A)
    if B.shape[0] == 0 or B.nnz == 0:
        return n_classes
    gram = (B.T @ B).toarray()  # rank(B^T B) = rank(B); symmetric PSD -> eigenvalues
    eig = np.linalg.eigvalsh(gram)
    tol = max(float(eig.max()), 1.0) * gram.shape[0] * np.finfo(np.float64).eps * 10
    return n_classes - int((eig > tol).sum())


def _merge_equalities(A):
    """Exact reduction of ``A u = 0`` before the rank: rows that say ``u_a = u_b`` (or ``u_a = 0``)
    merge the two unknowns (or fix one), repeatedly, with connected components. Returns the
    number of remaining free unknowns and the constraint matrix on them (the nullity is unchanged)."""
    import scipy.sparse as sparse
    from scipy.sparse.csgraph import connected_components

    n = A.shape[1]
    coo = A.tocoo()
    rows, cols, vals = coo.row, coo.col, coo.data.astype(np.float64)
    labels = np.arange(n + 1)  # node n: the fixed value 0
    while True:
        zero = labels[n]
        c = labels[cols]
        v = np.where(c == zero, 0.0, vals)
        B = sparse.coo_matrix((v, (rows, c)), shape=(A.shape[0], n + 1)).tocsr()
        B.sum_duplicates()
        B.eliminate_zeros()
        nnz = np.diff(B.indptr)
        edges = []
        one = np.nonzero(nnz == 1)[0]
        if len(one):
            edges.append(np.stack([B.indices[B.indptr[one]], np.full(len(one), zero)]))
        two = np.nonzero(nnz == 2)[0]
        if len(two):
            a, b = B.indptr[two], B.indptr[two] + 1
            eq = np.abs(B.data[a] + B.data[b]) <= 1e-12 * np.abs(B.data[a])
            if eq.any():
                edges.append(np.stack([B.indices[a[eq]], B.indices[b[eq]]]))
        if not edges:
            break
        e = np.concatenate(edges, axis=1)
        graph = sparse.coo_matrix((np.ones(e.shape[1]), (e[0], e[1])), shape=(n + 1, n + 1))
        _, comp = connected_components(graph, directed=False)
        labels = comp[labels]
    zero = labels[n]
    keep = np.unique(labels[:n])
    keep = keep[keep != zero]
    remap = np.full(n + 1, -1)
    remap[keep] = np.arange(len(keep))
    B = B[:, keep] if len(keep) else sparse.csr_matrix((B.shape[0], 0))
    B = B[np.diff(B.tocsr().indptr) > 0] if B.shape[1] else B
    return len(keep), B.tocsr()


@dataclass(frozen=True)
class ScalingDims:
    """Scaling-gauge dimensions of a conv layer/network and its dense counterpart.

    ``degenerate``: every hidden (free) layer has one spatial position, so channels = neurons and the
    two dimensions coincide by construction."""

    size: str
    dim_cnn: int
    dim_mlp: int
    degenerate: bool

    @property
    def strictly_smaller(self) -> bool:
        return self.dim_cnn < self.dim_mlp

    def as_tuple(self) -> tuple[str, int, int]:
        return (self.size, self.dim_cnn, self.dim_mlp)


def layer_scaling_dims(c_out: int, c_in: int, k: int | tuple[int, int], size: int | tuple[int, int],
                       stride: int = 1, padding: int = 0, exact: bool = False) -> ScalingDims:
    """One layer ``D_out M D_in^{-1}`` with both sides free: conv (Toeplitz) vs dense of the same
    unrolled shape."""
    if isinstance(k, int):
        index = conv1d_index(c_out, c_in, k, int(size), stride, padding)
        desc = f"conv1d {c_in}->{c_out} n={size} k={k} s={stride} p={padding}"
    else:
        index = conv2d_index(c_out, c_in, tuple(k), tuple(size), stride, padding)
        desc = f"conv2d {c_in}->{c_out} {size[0]}x{size[1]} k={k[0]}x{k[1]} s={stride} p={padding}"
    dense = dense_index(*index.shape)
    d_cnn = scaling_dimension([index], free_input=True, free_output=True, exact=exact)
    d_mlp = scaling_dimension([dense], free_input=True, free_output=True, exact=exact)
    return ScalingDims(desc, d_cnn, d_mlp, degenerate=index.shape[0] == c_out and index.shape[1] == c_in)


def network_index(spec: NetworkSpec, input_shape: Sequence[int] | None = None,
                  dense: bool = False) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Unrolled index matrices and bias ids of every layer of ``spec`` (``dense=True``: the MLP of
    the same unrolled sizes, every entry its own weight), and the number of spatial positions of
    each layer's output (1 for dense layers).

    Global average pooling followed by a Linear layer unrolls to ``W[j, o] / P`` at every position of
    channel ``o``: one weight shared by the positions.
    """
    shape = tuple(input_shape or spec.input_shape or ())
    if spec.family != "mlp" and len(shape) != {"conv1d": 2, "conv2d": 3}[spec.family]:
        raise SpecError(f"{spec.family} network needs an input shape (C, *spatial), got {shape or None}; "
                        "pass input_shape or put it in the spec text, e.g. 'conv1d 1-4-4/3 k3 relu 1x16'")
    spatial = shape[1:] if spec.family != "mlp" else ()
    indices, biases, positions = [], [], []
    next_id = 1
    for layer in spec.layers:
        if layer.is_conv:
            s_, p_ = layer.stride, layer.padding
            if layer.kind == "conv1d":
                idx = conv1d_index(layer.out_dim, layer.in_dim, layer.kernel_size[0], spatial[0], s_, p_)
            else:
                idx = conv2d_index(layer.out_dim, layer.in_dim, layer.kernel_size, spatial, s_, p_)
            spatial = tuple(conv_output_size(n, k, s_, p_) for n, k in zip(spatial, layer.kernel_size))
            npos = math.prod(spatial)
            bias = np.repeat(np.arange(layer.out_dim), npos) + 1
        else:
            npos_in = math.prod(spatial) if spatial else 1  # positions pooled into this Linear
            idx = np.repeat(dense_index(layer.out_dim, layer.in_dim), npos_in, axis=1)
            spatial, npos = (), 1
            bias = np.arange(layer.out_dim) + 1
        if dense:
            idx = dense_index(*idx.shape)
            bias = np.arange(idx.shape[0]) + 1
        mask = idx > 0
        idx = np.where(mask, idx + next_id, 0)
        bias = bias + next_id + int(idx.max())
        next_id = int(bias.max()) + 1
        indices.append(idx)
        biases.append(bias)
        positions.append(npos)
    return indices, biases, positions


def network_scaling_dims(spec: NetworkSpec | str, input_shape: Sequence[int] | None = None,
                         bias: bool = False, exact: bool = False) -> ScalingDims:
    """Whole network (input/output fixed): ``dim G_scale`` of the conv net vs the MLP of the same
    unrolled sizes. ``bias=True`` adds the bias sharing constraints (they tie the same neurons)."""
    spec = NetworkSpec.from_text(spec) if isinstance(spec, str) else spec
    idx, b, pos = network_index(spec, input_shape)
    idx_d, b_d, _ = network_index(spec, input_shape, dense=True)
    d_cnn = scaling_dimension(idx, b if bias else None, exact=exact)
    d_mlp = scaling_dimension(idx_d, b_d if bias else None, exact=exact)
    desc = spec.to_text()
    if input_shape is not None:
        desc += " on " + "x".join(map(str, input_shape))
    return ScalingDims(desc, d_cnn, d_mlp, degenerate=all(p == 1 for p in pos[:-1]))


def check_conv_scaling_numerically(c_out: int, c_in: int, k: int, n: int, stride: int = 1, padding: int = 0,
                                   generator: torch.Generator | None = None, device=None,
                                   dtype=torch.float64) -> dict[str, float | bool]:
    """Confirm the theorem on a real ``torch`` conv1d layer.

    Returns ``{"unrolled_matches_conv": max |M x - conv1d(x)|, "per_channel_is_conv": bool,
    "per_channel_matches_kernel": max error of D_out M D_in^{-1} vs the kernel K[o,c]*d_o/d_c,
    "per_position_is_conv": bool}``. A per-channel scaling keeps ``M`` a convolution; a random
    per-position scaling does not (unless there is a single position).
    """
    index = conv1d_index(c_out, c_in, k, n, stride, padding)
    n_out = index.shape[0] // c_out
    w = torch.randn(c_out, c_in, k, generator=generator, dtype=dtype).to(device)
    x = torch.randn(3, c_in, n, generator=generator, dtype=dtype).to(device)
    M = unrolled_matrix(w, index)
    y = torch.nn.functional.conv1d(x, w, stride=stride, padding=padding).reshape(3, -1)
    err = float((x.reshape(3, -1) @ M.T - y).abs().max())
    d_out = torch.exp(torch.randn(c_out, generator=generator, dtype=dtype)).to(device)
    d_in = torch.exp(torch.randn(c_in, generator=generator, dtype=dtype)).to(device)
    M_ch = d_out.repeat_interleave(n_out)[:, None] * M / d_in.repeat_interleave(n)[None, :]
    w_ch = w * d_out[:, None, None] / d_in[None, :, None]
    pos_out = torch.exp(torch.randn(c_out * n_out, generator=generator, dtype=dtype)).to(device)
    pos_in = torch.exp(torch.randn(c_in * n, generator=generator, dtype=dtype)).to(device)
    M_pos = pos_out[:, None] * M / pos_in[None, :]
    return {
        "unrolled_matches_conv": err,
        "per_channel_is_conv": is_convolution(M_ch, index),
        "per_channel_matches_kernel": float((M_ch - unrolled_matrix(w_ch, index)).abs().max()),
        "per_position_is_conv": is_convolution(M_pos, index),
    }
