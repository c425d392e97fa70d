"""LaTeX output for the notebooks: sympy objects and equations shown with ``IPython.display.Math``
(plain text outside IPython)."""

from __future__ import annotations

from typing import Any, Mapping

import sympy as sp

__all__ = ["to_latex", "show_math", "gauge_action_latex", "scalings_table_latex"]


def to_latex(obj: Any) -> str:
    """``sympy.latex`` for sympy objects (and matrices), ``str`` passthrough."""
    return obj if isinstance(obj, str) else sp.latex(obj)


def show_math(*parts: Any, sep: str = r"\quad ") -> str:
    """Display the parts (sympy objects or LaTeX strings) as one formula; returns the LaTeX.

    In a notebook this renders with ``IPython.display.Math``; elsewhere it prints the LaTeX.
    """
    tex = sep.join(to_latex(p) for p in parts)
    try:
        from IPython import get_ipython
        from IPython.display import Math, display

        if get_ipython() is not None:
            display(Math(tex))
            return tex
    except ImportError:  # pragma: no cover
        pass
    print(tex)
    return tex


def gauge_action_latex() -> str:
    """The gauge action on weights and biases (DESIGN.md section 1)."""
    return (r"W_l \mapsto Q_l P_l\, W_l\, P_{l-1}^{\top} Q_{l-1}^{-1},\qquad b_l \mapsto Q_l P_l\, b_l,"
            r"\qquad P_0 = Q_0 = I,\ P_L = Q_L = I")


def scalings_table_latex(solutions: Mapping[str, Any]) -> str:
    """A LaTeX ``array`` with one row per activation: name, solution set, symmetry.

    ``solutions``: ``{name: ScalingSolution}`` as returned by ``derive_all``.
    """
    head = r"\sigma & \{q \ne 0 : \sigma(qx) = q\sigma(x)\ \forall x\} & \text{symmetry}\\ \hline"
    rows = [r"\begin{array}{lll}", head]
    for name, sol in solutions.items():
        label = name.replace("_", r"\_")
        sym = sol.symmetry.value.replace("_", " ")
        rows.append(rf"\text{{{label}}} & {sp.latex(sol.solutions)} & \text{{{sym}}}\\")
    rows.append(r"\end{array}")
    return "\n".join(rows)
