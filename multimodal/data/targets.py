"""A regression target's transform, chosen and measured on the training rows: log for skewed positive
targets, and the standardization the head predicts in. numpy only, so the Model page shows the
choice without TensorFlow. See docs/ARCHITECTURE.md, "Training defaults".
"""
from __future__ import annotations

import numpy as np

from multimodal.core.errors import DataError
from multimodal.core.tasks import TARGET_TRANSFORMS


def skewness(y: np.ndarray) -> float:
    y = np.asarray(y, dtype="float64").ravel()
    sd = y.std()
    return float(((y - y.mean()) ** 3).mean() / sd ** 3) if sd > 0 else 0.0


def choose_transform(y: np.ndarray, requested: str = "auto") -> str:
    """"log" or "none" for a regression target (training rows). auto: log when every value is
    positive and the distribution is right-skewed (skewness > 1), as prices and counts often are."""
    if requested not in TARGET_TRANSFORMS:
        raise DataError(f"unknown target transform '{requested}'; use auto, log or none")
    y = np.asarray(y, dtype="float64")
    if requested == "log":
        if (y <= 0).any():
            raise DataError(f"the log transform needs a positive target; its minimum is {y.min():g}. "
                            "Use target transform 'none'")
        return "log"
    if requested == "none":
        return "none"
    return "log" if y.min() > 0 and skewness(y) > 1.0 else "none"


def target_stats(y: np.ndarray, log: bool = False) -> dict:
    """Mean and std of the (log) target on the training rows: the head predicts the standardized value."""
    z = np.log(np.asarray(y, dtype="float64")) if log else np.asarray(y, dtype="float64")
    return {"mean": float(z.mean()), "std": float(z.std() or 1.0), "log": bool(log)}
