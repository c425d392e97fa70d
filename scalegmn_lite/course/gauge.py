"""Exercise checks for notebooks 01 (gauge symmetries) and 02 (CNN vs MLP gauge freedom).

Every check recomputes the right answer with the library (sympy derivation, the gauge action, the
constraint nullity) instead of storing it, so the checks stay true if the library's conventions change.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import sympy as sp
import torch

from ..symbolic.conv import network_scaling_dims
from ..weightspace.gauge import GaugeElement
from ..weightspace.layer import Symmetry
from ..weightspace.spec import NetworkSpec
from ..weightspace.weights import WeightSpace, batched_forward
from .feedback import Feedback, require, run_check

__all__ = ["check_cubic_and_abs", "check_siren_shift", "check_composition", "check_conv_dims_formula",
           "cubic_scalings"]


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
