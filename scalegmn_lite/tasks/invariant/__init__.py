"""Invariant metanetworks (notebook 06): :mod:`.fit` trains and scores any model that maps a batch of
networks to one prediction each (``fit`` / ``predict`` / ``score``); :mod:`.study` builds the tasks
(CNN accuracy prediction, INR classification) and compares ScaleGMN with GMN, StatNN and a flat MLP;
:mod:`.blocks` does the same for block networks (residual blocks, norms).
"""

from .blocks import BLOCK_MODEL_NAMES, gauge_transform, make_block_model, non_symmetry_transform
from .fit import FitConfig, FitResult, fit, predict, score
from .study import MODEL_NAMES, TaskData, accuracy_task, compare, inr_task, make_model

__all__ = ["BLOCK_MODEL_NAMES", "FitConfig", "FitResult", "MODEL_NAMES", "TaskData", "accuracy_task", "compare", "fit",
           "gauge_transform", "inr_task", "make_block_model", "make_model", "non_symmetry_transform", "predict",
           "score"]
