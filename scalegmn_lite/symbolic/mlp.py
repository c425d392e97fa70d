"""The gauge action on a symbolic MLP, and the proof (by sympy) that it preserves the function.

For hidden layer ``l`` the gauge element acts on the neurons by ``M_l = Q_l P_l`` with
``(P_l h)[i] = h[p_l[i]]`` and ``Q_l = diag(q_l)`` in the new order (the convention of
:mod:`scalegmn_lite.weightspace.gauge`: ``h'_l[i] = q_l[i] h_l[p_l[i]]``), and ``M_0 = M_L = I``:

    ``W'_l = M_l W_l M_{l-1}^{-1}``,   ``b'_l = M_l b_l``,
    i.e. ``W'_l[i, j] = q_l[i] W_l[p_l[i], p_{l-1}[j]] / q_{l-1}[j]``.

:func:`check_gauge_invariance` builds ``f_{W'}(x) - f_W(x)`` and reduces it to 0 *without*
``simplify`` (DESIGN.md section 5): positive scalings are positive symbols that :class:`ReLU`
pulls out of the activation; sign flips are the numbers ``+-1`` substituted directly, which sympy
evaluates through ``tanh(-z) = -tanh(z)``, ``sin(-z) = -sin(z)``. A non-symmetry is detected
cheaply by evaluating the difference at random numbers (:func:`numeric_difference`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import sympy as sp

from ..weightspace.spec import NetworkSpec, SpecError, Symmetry
from .activations import sympy_activation

__all__ = [
    "SymbolicMLP",
    "GaugeCheck",
    "symbolic_mlp",
    "gauge_matrices",
    "sample_symbolic_gauge",
    "apply_gauge",
    "check_gauge_invariance",
    "numeric_difference",
]


@dataclass(frozen=True)
class SymbolicMLP:
    """An MLP with symbolic parameters: ``weights[l]`` is an ``n_{l+1} x n_l`` sympy Matrix,
    ``biases[l]`` an ``n_{l+1} x 1`` Matrix, ``x`` the ``n_0 x 1`` input symbols."""

    spec: NetworkSpec
    weights: tuple[sp.Matrix, ...]
    biases: tuple[sp.Matrix, ...]
    x: sp.Matrix

    def forward(self, x: sp.Matrix | None = None) -> sp.Matrix:
        """``f(x)``: ``h_l = sigma_l(W_l h_{l-1} + b_l)`` layer by layer (``n_L x 1`` Matrix)."""
        h = self.x if x is None else x
        for layer, w, b in zip(self.spec.layers, self.weights, self.biases):
            sigma = sympy_activation(layer.activation, layer.activation_param)
            h = (w * h + b).applyfunc(sigma)
        return h

    def replace(self, weights: Sequence[sp.Matrix], biases: Sequence[sp.Matrix]) -> "SymbolicMLP":
        return SymbolicMLP(self.spec, tuple(weights), tuple(biases), self.x)

    @property
    def symbols(self) -> list[sp.Symbol]:
        out: set[sp.Symbol] = set(self.x)
        for m in (*self.weights, *self.biases):
            out |= m.free_symbols
        return sorted(out, key=str)


def symbolic_mlp(spec: NetworkSpec | str) -> SymbolicMLP:
    """Symbols ``w{l}_{i}{j}``, ``b{l}_{i}`` (layers numbered from 1) and inputs ``x_{j}``."""
    spec = NetworkSpec.from_text(spec) if isinstance(spec, str) else spec
    if spec.family != "mlp":
        raise SpecError(f"symbolic_mlp needs an mlp spec, got {spec.family!r}; use symbolic.conv for convolutions")
    ws, bs = [], []
    for l, layer in enumerate(spec.layers, start=1):
        ws.append(sp.Matrix(layer.out_dim, layer.in_dim, lambda i, j, l=l: sp.Symbol(f"w{l}_{i}{j}", real=True)))
        bs.append(sp.Matrix(layer.out_dim, 1, lambda i, j, l=l: sp.Symbol(f"b{l}_{i}", real=True)))
    x = sp.Matrix(spec.widths[0], 1, lambda i, j: sp.Symbol(f"x_{i}", real=True))
    return SymbolicMLP(spec, tuple(ws), tuple(bs), x)


def gauge_matrices(perm: Sequence[int], scale: Sequence[sp.Expr]) -> tuple[sp.Matrix, sp.Matrix]:
    """``(P, Q)`` with ``P[i, perm[i]] = 1`` and ``Q = diag(scale)``, so ``(Q P h)[i] = scale[i] h[perm[i]]``."""
    n = len(perm)
    if sorted(perm) != list(range(n)) or len(scale) != n:
        raise ValueError(f"perm must be a permutation of 0..{n - 1} and scale have {n} entries")
    P = sp.zeros(n, n)
    for i, p in enumerate(perm):
        P[i, int(p)] = 1
    return P, sp.diag(*scale)


def sample_symbolic_gauge(spec: NetworkSpec, seed: int = 0, symbolic_scales: bool = True
                          ) -> tuple[list[list[int]], list[list[sp.Expr]]]:
    """A random gauge element of ``spec`` for sympy: per hidden layer a permutation and scalings
    allowed by its symmetry (positive scalings: positive symbols ``q{l}_{i}`` if ``symbolic_scales``,
    else random positive rationals; sign flips: random ``+-1``; permutation-only: ``1``)."""
    rng = random.Random(seed)
    perms, scales = [], []
    for l, (n, sym) in enumerate(zip(spec.hidden_widths, spec.symmetries), start=1):
        p = list(range(n))
        rng.shuffle(p)
        if sym is Symmetry.POSITIVE_SCALE:
            s = [sp.Symbol(f"q{l}_{i}", positive=True) if symbolic_scales
                 else sp.Rational(rng.randint(1, 9), rng.randint(1, 9)) for i in range(n)]
        elif sym is Symmetry.SIGN:
            s = [sp.Integer(rng.choice((-1, 1))) for _ in range(n)]
        else:
            s = [sp.Integer(1)] * n
        perms.append(p)
        scales.append(s)
    return perms, scales


def apply_gauge(net: SymbolicMLP, perms: Sequence[Sequence[int]], scales: Sequence[Sequence[sp.Expr]],
                uncoupled: bool = False) -> SymbolicMLP:
    """``W'_l = Q_l P_l W_l P_{l-1}^T Q_{l-1}^{-1}``, ``b'_l = Q_l P_l b_l`` (input/output fixed).

    ``uncoupled=True`` transforms each layer's outputs but leaves the next layer's inputs alone
    (a non-symmetry, for negative controls).
    """
    widths = net.spec.widths
    if len(perms) != len(widths) - 2 or len(scales) != len(widths) - 2:
        raise ValueError(f"need one permutation and scaling per hidden layer ({len(widths) - 2})")
    mats = [sp.eye(widths[0])]
    for p, s in zip(perms, scales):
        P, Q = gauge_matrices(p, s)
        mats.append(Q * P)
    mats.append(sp.eye(widths[-1]))
    ws, bs = [], []
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        m_in_inv = sp.eye(widths[l]) if uncoupled else mats[l].inv()
        ws.append(mats[l + 1] * w * m_in_inv)
        bs.append(mats[l + 1] * b)
    return net.replace(ws, bs)


def numeric_difference(expr: sp.Matrix | sp.Expr, symbols: Sequence[sp.Symbol], trials: int = 3,
                       seed: int = 0) -> float:
    """``max |expr|`` over ``trials`` random points (symbols ~ U(0.5, 2) if positive, else
    U(-2, 2)): a cheap test of whether a difference vanishes, never calls ``simplify``."""
    rng = random.Random(seed)
    exprs = list(expr) if isinstance(expr, sp.MatrixBase) else [expr]
    worst = 0.0
    for _ in range(trials):
        vals = {s: sp.Float(rng.uniform(0.5, 2.0) if s.is_positive else rng.uniform(-2.0, 2.0), 30)
                for s in symbols}
        for e in exprs:
            worst = max(worst, abs(float(sp.N(e.xreplace(vals), 20))))
    return worst


@dataclass(frozen=True)
class GaugeCheck:
    """Outcome of :func:`check_gauge_invariance`.

    Attributes:
        difference: ``f_{W'}(x) - f_W(x)`` after sympy's automatic evaluation (and ``expand`` when
            the random points do not already show it nonzero); never ``simplify``.
        is_zero: the difference is identically 0 symbolically.
        numeric_max_abs: ``max |difference|`` at random points (see :func:`numeric_difference`).
    """

    difference: sp.Matrix
    is_zero: bool
    numeric_max_abs: float

    @property
    def preserved(self) -> bool:
        """True iff proved symbolically; a nonzero symbolic residual that evaluates to 0 numerically
        is reported as not proved."""
        return self.is_zero


def check_gauge_invariance(spec: NetworkSpec | str, perms=None, scales=None, *, seed: int = 0,
                           uncoupled: bool = False, expand: bool = True) -> GaugeCheck:
    """Apply a gauge element (default: :func:`sample_symbolic_gauge`) to the symbolic MLP of ``spec``
    and reduce ``f_{W'} - f_W``. Returns a :class:`GaugeCheck`."""
    spec = NetworkSpec.from_text(spec) if isinstance(spec, str) else spec
    net = symbolic_mlp(spec)
    if perms is None or scales is None:
        perms, scales = sample_symbolic_gauge(spec, seed)
    new = apply_gauge(net, perms, scales, uncoupled=uncoupled)
    diff = new.forward() - net.forward()
    is_zero = all(e == 0 for e in diff)
    num = 0.0
    if not is_zero:
        # cheap first: a non-symmetry shows up at random points, no expansion needed
        num = numeric_difference(diff, sorted(diff.free_symbols, key=str), seed=seed)
        if expand and num < 1e-12:
            diff = diff.applyfunc(sp.expand)
            is_zero = all(e == 0 for e in diff)
    return GaugeCheck(diff, is_zero, num)
