"""Invariant metanetworks (notebook 06): :mod:`.fit` trains and scores any model that maps a batch of
networks to one prediction each (``fit`` / ``predict`` / ``score``); :mod:`.study` builds the tasks
(CNN accuracy prediction, INR classification) and compares ScaleGMN with GMN, StatNN and a flat MLP.
"""

from .fit import FitConfig, FitResult, fit, predict, score
from .study import MODEL_NAMES, TaskData, accuracy_task, compare, inr_task, make_model

__all__ = ["FitConfig", "FitResult", "MODEL_NAMES", "TaskData", "accuracy_task", "compare", "fit", "inr_task",
           "make_model", "predict", "score"]
