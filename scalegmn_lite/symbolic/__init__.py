"""Symbolic (sympy) derivations of the gauge group: activations, MLPs, convolutions, LaTeX."""
