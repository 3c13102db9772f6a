"""Facts about the two tasks: their names, the losses each offers and the metric runs are ranked by.

Standard library only, so light pages and the CLI's argument parser can read them without
TensorFlow. See docs/ARCHITECTURE.md, "One home for each fact".
"""
from __future__ import annotations

TASKS = ("classification", "regression")
LOSSES = {"classification": ("crossentropy",), "regression": ("mse", "mae", "huber", "mape")}
TARGET_TRANSFORMS = ("auto", "log", "none")
# MAPE is the mean of |error / target| * 100 over the rows whose |target| exceeds this: a zero target
# has no relative error. The Keras metric (models/layers.NonzeroMAPE) and numpy
# (runs/evaluation.regression_metrics) both use it, so metrics.json and the Results page agree.
MAPE_MIN_TARGET = 1e-12


def main_metric(task: str) -> tuple[str, bool]:
    """The metric runs and folds are compared by, without a split prefix, and whether higher is better."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return ("accuracy", True) if task == "classification" else ("mae", False)


def top_k(n_classes: int) -> int | None:
    """The k of the top-k accuracy a classification with `n_classes` classes reports, named by it
    (`top_5_accuracy`): 5 from 10 classes on, else 3, or 2 with three classes; None when top-k
    says nothing accuracy does not (two classes)."""
    if n_classes <= 2:
        return None
    return 5 if n_classes >= 10 else min(3, n_classes - 1)


def top_k_metric(n_classes: int) -> str | None:
    """The metric's name for `n_classes` classes: "top_3_accuracy", ...; None below three classes."""
    k = top_k(n_classes)
    return f"top_{k}_accuracy" if k else None
