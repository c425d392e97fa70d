"""Course helpers for the notebooks: exercise checks with feedback, and plotting helpers.

Each notebook's exercises have a ``check_*`` function in the module of its part of the course:

* :mod:`.gauge` -- notebooks 01 (gauge symmetries) and 02 (CNN vs MLP gauge freedom);
* :mod:`.zoos` -- notebook 03 (model zoos);
* :mod:`.layers` -- notebooks 04 (networks as graphs) and 05 (equivariant layers);
* :mod:`.metanets` -- notebooks 06-08 (invariant metanetworks, amortized optimization, merging);
* :mod:`.beyond` and :mod:`.block_figures` -- notebook 09 (residual connections and normalization layers).

A check takes the learner's answer (a value or a function), returns a :class:`Feedback` that prints
one line ("correct", "not yet: ...", or "not attempted") and never raises on a wrong answer: a stub that
raises ``NotImplementedError`` counts as not attempted. :mod:`.plots` holds the figure helpers the
notebooks share (graph drawing with one colour scale for every panel).
"""

from .feedback import Feedback

__all__ = ["Feedback"]
