"""Fully-amortized optimization (notebook 07, the one-shot paper): an equivariant operator maps a network to an
improved one in a single forward pass.

- :mod:`.operator`: :class:`AmortizedOperator` and :func:`train_operator`;
- :mod:`.protocol`: settings, splits by network, operator caching, the SGD baselines, one table row;
- :mod:`.study`: the whole study (operators against SGD, transfer, ablation) and its claims.
"""

from .operator import AmortizedOperator, OperatorTrainConfig, network_metrics, timed_apply, train_operator
from .protocol import Setting, StudyConfig
from .study import StudyResult, compute_claims, run_study

__all__ = ["AmortizedOperator", "OperatorTrainConfig", "Setting", "StudyConfig", "StudyResult", "compute_claims",
           "network_metrics", "run_study", "timed_apply", "train_operator"]
