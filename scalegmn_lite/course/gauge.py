"""Exercise checks for notebooks 01 (gauge symmetries) and 02 (CNN vs MLP gauge freedom).

Every check recomputes the right answer with the library (sympy derivation, the gauge action, the
constraint nullity) instead of storing it, so the checks stay true if the library's conventions change.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import sympy as sp
import torch

from ..symbolic.activations import derive_scalings
from ..symbolic.conv import dense_index, network_index, network_scaling_dims, scaling_dimension
from ..weightspace.gauge import GaugeElement
from ..weightspace.layer import Symmetry
from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace, batched_forward
from .feedback import Feedback, require, run_check

__all__ = ["check_cubic_and_abs", "check_leaky_slopes", "check_siren_shift", "check_composition",
           "check_conv_dims_formula", "check_bias_dims", "check_circular_dims", "check_flatten_dims",
           "circular_conv1d_index", "cubic_scalings", "LEAKY_CANDIDATES", "EXERCISE_02_2_NETWORK",
           "EXERCISE_02_4_NETWORK"]

#: notebook 01, exercise 2: the scalings ``q`` to sort into allowed / not allowed
LEAKY_CANDIDATES = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
#: notebook 02, exercise 2: the network whose gauge dimensions with bias constraints are asked for
EXERCISE_02_2_NETWORK = "conv1d 1-4-4/3 k3 s2 p1 relu 1x16"
#: notebook 02, exercise 4: the network whose last conv layer is flattened into the dense layer
EXERCISE_02_4_NETWORK = "conv1d 1-4-4/3 k3 relu 1x16"


def cubic_scalings() -> set[int]:
    """All ``q != 0`` with ``(q x)^3 = q x^3`` for every ``x`` (solved with sympy)."""
    q, x = sp.symbols("q x")
    coeff = sp.expand((q * x) ** 3 - q * x**3).coeff(x, 3)
    return {int(s) for s in sp.solve(coeff, q) if s != 0}


def _group_of(sigma: Callable[[float], float]) -> Symmetry:
    """The group of scalings ``q`` with ``sigma(q x) = q sigma(x)``, read off sample ``q`` and ``x``."""
    xs = [-2.0, -0.5, 0.5, 2.0]
    ok = {q for q in (-2.0, -1.0, -0.5, 0.5, 2.0) if all(abs(sigma(q * x) - q * sigma(x)) < 1e-12 for x in xs)}
    if {0.5, 2.0} <= ok and not ok & {-2.0, -1.0, -0.5}:
        return Symmetry.POSITIVE_SCALE
    if ok == {-1.0}:
        return Symmetry.SIGN
    return Symmetry.PERMUTATION


def check_cubic_and_abs(cubic: Iterable[float], absolute: Symmetry | str) -> Feedback:
    """Notebook 01, exercise 1. ``cubic``: the allowed scalings ``q`` of ``sigma(x) = x^3`` (a set of
    numbers); ``absolute``: the :class:`Symmetry` (or its value) of ``sigma(x) = |x|``."""

    def body():
        require(cubic, absolute)
        got = {float(v) for v in cubic}
        want = {float(v) for v in cubic_scalings()}
        if got != want:
            return False, f"x^3: your set {sorted(got)} is not the solution set of the x^3 coefficient"
        sym = Symmetry(absolute) if not isinstance(absolute, Symmetry) else absolute
        if sym is not _group_of(abs):
            return False, f"|x|: {sym.value} is not the group; try q = -1 and q = 2 at x = 1"
        return True, f"x^3 allows q in {sorted(want)}, |x| allows {sym.value}"

    return run_check("01.1", body)


def check_leaky_slopes(slope_one: Iterable[float], slope_minus_one: Iterable[float]) -> Feedback:
    """Notebook 01, exercise 2. The candidates of :data:`LEAKY_CANDIDATES` that commute with LeakyReLU
    of slope ``a = 1`` (``slope_one``) and ``a = -1`` (``slope_minus_one``), as sets; compared with
    ``derive_scalings("leaky_relu", param=a).solutions``."""

    def body():
        require(slope_one, slope_minus_one)
        for a, answer in ((1.0, slope_one), (-1.0, slope_minus_one)):
            got = {float(v) for v in answer}
            if not got <= set(LEAKY_CANDIDATES):
                return False, f"a = {a:g}: pick your q among LEAKY_CANDIDATES = {list(LEAKY_CANDIDATES)}"
            sol = derive_scalings("leaky_relu", param=a).solutions
            want = {q for q in LEAKY_CANDIDATES if bool(sol.contains(q))}
            if got != want:
                wrong = sorted(got ^ want)
                return False, f"a = {a:g}: check q = {wrong[0]:g} at x = 1 and x = -1"
        return True, "a = 1 is the identity (every q != 0 works), a = -1 is |x| (only q > 0)"

    return run_check("01.2", body)


def check_siren_shift(transform: Callable[[WeightSpace, int, int], WeightSpace], w0: float = 30.0) -> Feedback:
    """Notebook 01, exercise 3. ``transform(ws, layer, neuron)`` returns the SIREN ``ws`` with the bias
    of hidden ``neuron`` of hidden ``layer`` (1-based) shifted by ``pi / w0`` and whatever else keeps the
    function. Checked: same outputs (float64), incoming weights untouched, the bias moved by ``pi/w0``."""

    def body():
        spec = NetworkSpec.from_text(f"mlp 2-8-8-1 sine a={w0:g}")
        gen = torch.Generator().manual_seed(0)
        ws = WeightSpace.randn(spec, 2, generator=gen, dtype=torch.float64)
        x = torch.rand(64, 2, generator=gen, dtype=torch.float64) * 2 - 1
        for layer, neuron in [(1, 3), (2, 0)]:
            new = transform(ws, layer, neuron)
            if not isinstance(new, WeightSpace) or new.spec.layers != spec.layers:
                return False, "return a WeightSpace of the same architecture"
            if not torch.equal(new.weights[layer - 1], ws.weights[layer - 1]):
                return False, "the incoming weights of the neuron should stay as they are (that is a sign flip)"
            shift = (new.biases[layer - 1] - ws.biases[layer - 1])[:, neuron].abs()
            if not torch.allclose(shift, torch.full_like(shift, math.pi / w0), atol=1e-9):
                return False, f"the bias should move by pi / w0 = {math.pi / w0:.4f}, it moved by {float(shift[0]):.4f}"
            err = float((batched_forward(new, x) - batched_forward(ws, x)).abs().max())
            if err > 1e-9:
                return False, f"the function changed (max |diff| = {err:.2e}); what must the outgoing weights do?"
        return True, "shifting the bias by pi/w0 and negating the outgoing weights keeps the SIREN's function"

    return run_check("01.3", body)


def check_composition(compose: Callable[[GaugeElement, GaugeElement], GaugeElement]) -> Feedback:
    """Notebook 01, exercise 4. ``compose(g1, g2)`` returns the element "apply ``g1``, then ``g2``";
    checked against ``g2.apply(g1.apply(ws))`` on random ReLU networks (permutations and scalings)."""

    def body():
        spec = NetworkSpec.from_text("mlp 3-5-4-2 relu")
        gen = torch.Generator().manual_seed(1)
        ws = WeightSpace.randn(spec, 3, generator=gen, dtype=torch.float64)
        for _ in range(3):
            g1, g2 = (GaugeElement.sample(spec, 3, gen, dtype=torch.float64) for _ in range(2))
            g = compose(g1, g2)
            if not isinstance(g, GaugeElement):
                return False, "return a GaugeElement"
            err = g.apply(ws).max_abs_diff(g2.apply(g1.apply(ws)))
            if err > 1e-9:
                return False, f"compose(g1, g2).apply(ws) differs from g2.apply(g1.apply(ws)) by {err:.2e}"
        return True, "composition matches applying g1 then g2"

    return run_check("01.4", body)


def check_conv_dims_formula(formula: Callable[[int, int, int, int], tuple[int, int]]) -> Feedback:
    """Notebook 02, exercise 1. ``formula(c, n, stride, padding)`` returns ``(dim_cnn, dim_mlp)`` for
    ``conv1d 1-c-c/3 k3 s{stride} p{padding} relu 1x{n}``, compared with the nullity computed by
    :func:`~scalegmn_lite.symbolic.conv.network_scaling_dims` on a grid of sizes."""

    def body():
        for c in (1, 3):
            for n in (9, 16):
                for s, p in ((1, 0), (2, 1), (2, 0), (1, 1)):
                    d = network_scaling_dims(f"conv1d 1-{c}-{c}/3 k3 s{s} p{p} relu 1x{n}")
                    got = tuple(int(v) for v in formula(c, n, s, p))
                    if got != (d.dim_cnn, d.dim_mlp):
                        return False, (f"c={c}, n={n}, stride={s}, padding={p}: you say {got}, the constraint "
                                       f"nullity gives {(d.dim_cnn, d.dim_mlp)}")
        return True, "closed form matches the nullity on 16 sizes"

    return run_check("02.1", body)


def check_bias_dims(dims: tuple[int, int]) -> Feedback:
    """Notebook 02, exercise 2. ``dims = (dim_cnn, dim_mlp)`` of :data:`EXERCISE_02_2_NETWORK` with the
    bias constraints included, compared with ``network_scaling_dims(..., bias=True)``."""

    def body():
        require(dims)
        got = tuple(int(v) for v in dims)
        d = network_scaling_dims(EXERCISE_02_2_NETWORK, bias=True)
        if got[0] != d.dim_cnn:
            return False, f"CNN: {got[0]} is not it; which neurons does a channel's bias tie together?"
        if got[1] != d.dim_mlp:
            return False, f"MLP: {got[1]} is not it; stride 2 and padding 1 set the positions per layer"
        plain = network_scaling_dims(EXERCISE_02_2_NETWORK)
        same = (plain.dim_cnn, plain.dim_mlp) == (d.dim_cnn, d.dim_mlp)
        return True, f"({d.dim_cnn}, {d.dim_mlp})" + (", the same as without biases" if same else "")

    return run_check("02.2", body)


def circular_conv1d_index(c_out: int, c_in: int, k: int, n: int) -> np.ndarray:
    """The index matrix (as :func:`~scalegmn_lite.symbolic.conv.conv1d_index`) of a conv1d layer with
    circular padding and stride 1: ``M[(o, p), (c, (p + j) mod n)] = K[o, c, j]``, ``n`` output positions."""
    if not 1 <= k <= n:
        raise ValueError(f"kernel size {k} must be between 1 and the length {n}")
    index = np.zeros((c_out * n, c_in * n), dtype=np.int64)
    for o in range(c_out):
        for c in range(c_in):
            for j in range(k):
                p = np.arange(n)
                index[o * n + p, c * n + (p + j) % n] = 1 + (o * c_in + c) * k + j
    return index


def check_circular_dims(dim: Callable[[int, int, int, int], int]) -> Feedback:
    """Notebook 02, exercise 3. ``dim(c_out, c_in, k, n)``: the scaling-gauge dimension of one
    circular conv1d layer (both sides free, kernel ``k >= 2``, length ``n``), compared with the nullity
    of the constraints of :func:`circular_conv1d_index` on a grid of sizes."""

    def body():
        for c_out, c_in in ((1, 1), (2, 3), (3, 1)):
            for k, n in ((2, 4), (3, 5), (3, 8)):
                want = scaling_dimension([circular_conv1d_index(c_out, c_in, k, n)], free_input=True,
                                         free_output=True)
                got = int(dim(c_out, c_in, k, n))
                if got != want:
                    hint = " (is the ramp still there?)" if got == want + 1 else ""
                    return False, (f"c_out={c_out}, c_in={c_in}, k={k}, n={n}: you say {got}, "
                                   f"the nullity is {want}{hint}")
        return True, "one factor per input and per output channel; the wrap-around removes the ramp"

    return run_check("02.3", body)


def _flattened_dims(text: str) -> tuple[int, int]:
    """``(dim_cnn, dim_mlp)`` of ``text`` with its first dense layer reading the flattened conv output
    (one weight per channel and position) instead of the globally pooled one."""
    spec = NetworkSpec.from_text(text)
    first_dense = sum(layer.is_conv for layer in spec.layers)
    out = []
    for dense in (False, True):
        idx, _, _ = network_index(spec, dense=dense)
        flat = dense_index(*idx[first_dense].shape) + int(max(m.max() for m in idx))
        out.append(scaling_dimension(idx[:first_dense] + [flat] + idx[first_dense + 1:]))
    return out[0], out[1]


def check_flatten_dims(dims: tuple[int, int]) -> Feedback:
    """Notebook 02, exercise 4. ``dims = (dim_cnn, dim_mlp)`` of :data:`EXERCISE_02_4_NETWORK` when the
    last conv layer is flattened into the dense layer (no pooling), from the constraint nullity."""

    def body():
        require(dims)
        got = tuple(int(v) for v in dims)
        want = _flattened_dims(EXERCISE_02_4_NETWORK)
        pooled = network_scaling_dims(EXERCISE_02_4_NETWORK)
        if got[0] != want[0]:
            return False, (f"CNN: {got[0]} is not it; which weights tie the positions of a channel, "
                           "the pooling or the kernels?")
        if got[1] != want[1]:
            return False, f"MLP: {got[1]} is not it; count the hidden neurons (channels x positions)"
        same = want == (pooled.dim_cnn, pooled.dim_mlp)
        return True, f"({want[0]}, {want[1]})" + (", the same as with pooling" if same else "")

    return run_check("02.4", body)
