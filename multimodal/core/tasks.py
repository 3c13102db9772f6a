"""Facts about the two tasks: their names, the losses each offers and the metric runs are ranked by.

Standard library only, so light pages and the CLI's argument parser can read them without
TensorFlow. See docs/ARCHITECTURE.md, "One home for each fact".
"""
from __future__ import annotations

TASKS = ("classification", "regression")
LOSSES = {"classification": ("crossentropy",), "regression": ("mse", "mae", "huber", "mape")}
TARGET_TRANSFORMS = ("auto", "log", "none")


def main_metric(task: str) -> tuple[str, bool]:
    """The metric runs and folds are compared by, without a split prefix, and whether higher is better."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return ("accuracy", True) if task == "classification" else ("mae", False)
