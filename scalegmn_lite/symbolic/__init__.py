"""Symbolic (sympy) derivations of the gauge group (notebooks 01 and 02).

- :mod:`.activations`: which diagonal scalings commute with each activation;
- :mod:`.mlp`: the gauge action on a symbolic MLP, and the proof that it preserves the function;
- :mod:`.conv`: convolutions as (doubly-block) Toeplitz matrices and the dimension of their scaling gauge
  (a CNN's is strictly smaller than the MLP's it unrolls to);
- :mod:`.latex`: LaTeX display for the notebooks.
"""
