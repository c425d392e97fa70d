"""Which diagonal scalings commute with an activation, derived in sympy.

A diagonal ``Q = diag(q_1, ..., q_n)`` acts elementwise, so ``sigma(Q x) = Q sigma(x)`` for all
``x`` holds iff every ``q_i`` lies in the set

    ``S_sigma = { q in R \\ {0} : sigma(q x) = q sigma(x) for all real x }``

(``q = 0`` is excluded because ``Q`` must be invertible). :func:`derive_scalings` computes
``S_sigma`` for every activation of :data:`scalegmn_lite.weightspace.spec.ACTIVATIONS` and the
:class:`~scalegmn_lite.weightspace.spec.Symmetry` it implies; the spec stays the one source of truth and the
derivation confirms it (:func:`check_against_spec`).

Two methods:

* **Sign branches** (positively homogeneous, piecewise-linear: relu, leaky_relu, identity). Write
  ``q = s_q r`` and ``x = s_x t`` with ``r, t > 0`` and signs ``s_q, s_x``; sympy then evaluates the
  activation on each branch exactly. The residual ``sigma(q x) - q sigma(x)`` is ``c(r) t`` on each
  branch, and ``s_q r`` is a solution iff ``c(r) = 0`` on both ``x`` branches.
* **Taylor coefficients** (analytic: tanh, sine, sigmoid, gelu, silu). ``sigma(q x) - q sigma(x) =
  sum_k c_k(q) x^k``; every ``c_k(q) = 0`` is necessary, and each candidate ``q`` is then proved
  sufficient by direct substitution (sympy's automatic evaluation, e.g. ``tanh(-z) = -tanh(z)``).
  No ``simplify`` is used, so nothing can hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from ..weightspace.spec import ACTIVATIONS, DEFAULT_ACTIVATION_PARAM, SpecError, Symmetry, symmetry_of

__all__ = [
    "ReLU",
    "LeakyReLU",
    "ScalingSolution",
    "sympy_activation",
    "derive_scalings",
    "derive_all",
    "implied_symmetry",
    "check_against_spec",
]


def _pull_positive(z: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Split ``z = c * rest`` with ``c`` a product of factors known to be positive."""
    z = sp.factor_terms(z) if z.is_Add else z
    if not z.is_Mul:
        return sp.S.One, z
    pos = [f for f in z.args if f.is_positive]
    rest = [f for f in z.args if not f.is_positive]
    return sp.Mul(*pos), sp.Mul(*rest)


class ReLU(sp.Function):
    """``max(0, z)`` that evaluates when the sign of ``z`` is known and pulls positive factors out:
    ``ReLU(c z) = c ReLU(z)`` for ``c > 0`` (DESIGN.md section 5: this keeps the symbolic gauge check
    of a ReLU network at well under a second, where ``Max`` + ``simplify`` never reaches 0)."""

    nargs = 1

    @classmethod
    def eval(cls, z):
        if z.is_nonnegative:
            return z
        if z.is_nonpositive:
            return sp.S.Zero
        c, rest = _pull_positive(z)
        if c != 1:
            return c * cls(rest)
        return None

    def _eval_rewrite_as_Max(self, z, **kwargs):
        return sp.Max(0, z)

    def _latex(self, printer):
        return r"\operatorname{ReLU}\left(%s\right)" % printer._print(self.args[0])


class LeakyReLU(sp.Function):
    """``z`` for ``z >= 0``, ``a z`` otherwise (``a`` the negative slope); positively homogeneous like
    :class:`ReLU` (positive factors are pulled out)."""

    nargs = 2

    @classmethod
    def eval(cls, z, a):
        if z.is_nonnegative:
            return z
        if z.is_nonpositive:
            return a * z
        c, rest = _pull_positive(z)
        if c != 1:
            return c * cls(rest, a)
        return None

    def _eval_rewrite_as_Piecewise(self, z, a, **kwargs):
        return sp.Piecewise((z, z >= 0), (a * z, True))

    def _latex(self, printer):
        z, a = self.args
        return r"\operatorname{LeakyReLU}_{%s}\left(%s\right)" % (printer._print(a), printer._print(z))


def sympy_activation(name: str | None, param: float | None = None) -> Callable[[sp.Expr], sp.Expr]:
    """The activation ``name`` (spec.ACTIVATIONS; ``None`` = identity) as a sympy function of one
    expression. ``param`` is the LeakyReLU slope or the SIREN frequency ``w0`` (spec defaults)."""
    name = "identity" if name is None else name
    symmetry_of(name)  # validates the name
    if param is None:
        param = DEFAULT_ACTIVATION_PARAM.get(name)
    p = sp.nsimplify(param, rational=True) if param is not None else None
    table: dict[str, Callable[[sp.Expr], sp.Expr]] = {
        "identity": lambda z: z,
        "relu": lambda z: ReLU(z),
        "leaky_relu": lambda z: LeakyReLU(z, p),
        "tanh": sp.tanh,
        "sine": lambda z: sp.sin(p * z),
        "sigmoid": lambda z: 1 / (1 + sp.exp(-z)),
        "gelu": lambda z: z * (1 + sp.erf(z / sp.sqrt(2))) / 2,
        "silu": lambda z: z / (1 + sp.exp(-z)),
    }
    return table[name]


#: activations handled by the sign-branch method (positively homogeneous, piecewise linear)
_PIECEWISE_LINEAR = ("relu", "leaky_relu", "identity")

_Q = sp.Symbol("q", real=True, nonzero=True)
_X = sp.Symbol("x", real=True)


@dataclass(frozen=True)
class ScalingSolution:
    """Result of :func:`derive_scalings`.

    Attributes:
        activation: the activation name.
        solutions: ``S_sigma`` as a sympy ``Set`` (subset of ``R \\ {0}``).
        symmetry: the :class:`Symmetry` this set implies (largest of positive scalings, sign flips,
            trivial scaling contained in ``S_sigma``).
        method: ``"sign branches"`` or ``"taylor + substitution"``.
        conditions: the equations in ``q`` that were solved (Taylor coefficients or branch residuals).
        latex: a LaTeX line ``\\sigma(qx) = q\\sigma(x)\\ \\forall x \\iff q \\in S``.
    """

    activation: str
    solutions: sp.Set
    symmetry: Symmetry
    method: str
    conditions: tuple[sp.Expr, ...]
    latex: str

    @property
    def matches_spec(self) -> bool:
        return self.symmetry is symmetry_of(self.activation)


def implied_symmetry(solutions: sp.Set) -> Symmetry:
    """The symmetry kind a solution set implies: contains ``(0, oo)`` -> positive scaling;
    equals ``{-1, 1}`` -> sign flips; equals ``{1}`` -> permutations only."""
    if sp.Interval.open(0, sp.oo).is_subset(solutions):
        return Symmetry.POSITIVE_SCALE
    if solutions == sp.FiniteSet(-1, 1):
        return Symmetry.SIGN
    if solutions == sp.FiniteSet(1):
        return Symmetry.PERMUTATION
    raise ValueError(f"solution set {solutions} is none of (0, oo) (superset), {{-1, 1}}, {{1}}")


def _sign_branches(sigma: Callable[[sp.Expr], sp.Expr]) -> tuple[sp.Set, tuple[sp.Expr, ...]]:
    r, t = sp.symbols("r t", positive=True)
    result: sp.Set = sp.S.EmptySet
    conditions = []
    for s_q in (1, -1):
        allowed: sp.Set = sp.Interval.open(0, sp.oo)
        for s_x in (1, -1):
            residual = sigma(s_q * r * s_x * t) - s_q * r * sigma(s_x * t)
            coeff = sp.expand(residual / t)  # positively homogeneous: residual = c(r) * t
            if t in coeff.free_symbols:
                raise ValueError(f"activation is not positively homogeneous (residual {residual})")
            conditions.append(sp.Eq(coeff, 0, evaluate=False))  # branch (s_q, s_x), q = s_q r
            allowed = allowed.intersect(sp.solveset(coeff, r, sp.Interval.open(0, sp.oo)))
        if s_q == -1:
            allowed = sp.imageset(sp.Lambda(r, -r), allowed)
        result = sp.Union(result, allowed)
    return result, tuple(conditions)


def _taylor(sigma: Callable[[sp.Expr], sp.Expr], order: int) -> tuple[sp.Set, tuple[sp.Expr, ...]]:
    residual = sigma(_Q * _X) - _Q * sigma(_X)
    poly = sp.series(residual, _X, 0, order + 1).removeO()
    coeffs = [sp.factor(sp.expand(poly).coeff(_X, k)) for k in range(order + 1)]
    conditions = tuple(sp.Eq(c, 0) for c in coeffs if c != 0)
    candidates: sp.Set = sp.S.Reals - sp.FiniteSet(0)
    for c in coeffs:
        if c != 0:
            candidates = candidates.intersect(sp.solveset(c, _Q, sp.S.Reals))
    if not isinstance(candidates, sp.FiniteSet):
        raise ValueError(f"Taylor conditions up to order {order} leave {candidates}; raise the order")
    proved = []
    for q in candidates:  # sufficiency: direct substitution, no simplify
        diff = sp.expand(sigma(q * _X) - q * sigma(_X))
        if diff == 0:
            proved.append(q)
    return sp.FiniteSet(*proved), conditions


def derive_scalings(name: str | None, param: float | None = None, order: int = 5) -> ScalingSolution:
    """Solve ``sigma(q x) = q sigma(x)`` for all ``x`` over ``q in R \\ {0}``.

    Args:
        name: an activation of ``spec.ACTIVATIONS`` (``None`` = identity).
        param: LeakyReLU slope / SIREN ``w0`` (default: the spec's default).
        order: Taylor order for analytic activations (5 suffices for all of them).
    """
    name = "identity" if name is None else name
    if name not in ACTIVATIONS:
        raise SpecError(f"unknown activation {name!r}; supported activations: {sorted(ACTIVATIONS)}")
    sigma = sympy_activation(name, param)
    if name in _PIECEWISE_LINEAR:
        sols, conds = _sign_branches(sigma)
        method = "sign branches"
    else:
        sols, conds = _taylor(sigma, order)
        method = "taylor + substitution"
    sym = implied_symmetry(sols)
    tex_sigma = sp.latex(sigma(_X))
    tex = (rf"\sigma(x) = {tex_sigma}:\quad \sigma(qx) = q\,\sigma(x)\ \forall x \iff q \in "
           rf"{sp.latex(sols)}\quad(\text{{{sym.value.replace('_', ' ')}}})")
    return ScalingSolution(name, sols, sym, method, conds, tex)


def derive_all(order: int = 5) -> dict[str, ScalingSolution]:
    """:func:`derive_scalings` for every activation of ``spec.ACTIVATIONS``."""
    return {name: derive_scalings(name, order=order) for name in ACTIVATIONS}


def check_against_spec(solutions: dict[str, ScalingSolution] | None = None) -> dict[str, bool]:
    """``{activation: derived symmetry == spec.symmetry_of(activation)}``."""
    solutions = derive_all() if solutions is None else solutions
    return {name: s.matches_spec for name, s in solutions.items()}
