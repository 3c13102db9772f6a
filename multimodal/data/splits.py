"""Train/val/test row positions of a dataset: from its split column, else seeded and stratified.

Streamlit-free and TensorFlow-free.
"""
from __future__ import annotations

import numpy as np

from multimodal.core.errors import DataError
from multimodal.data.cells import label_text
from multimodal.data.dataset import Dataset
from multimodal.data.roles import checked_split_labels


def _random_val(idx: np.ndarray, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random val subset of idx: at least one row when there are two or more, never all."""
    if len(idx) < 2:
        return idx[:0]
    n_val = min(max(1, int(round(len(idx) * val_fraction))), len(idx) - 1)
    return rng.permutation(idx)[:n_val]


def split_indices(ds: Dataset, val_fraction: float = 0.2, seed: int = 0) -> dict[str, np.ndarray]:
    """Sorted row positions for train/val/test (test may be empty).

    With a split column its values decide (train/test only: val is carved from train as
    below). Otherwise a seeded random split, stratified per class for classification.
    """
    if not 0 < val_fraction < 1:
        raise DataError(f"validation fraction {val_fraction} must be between 0 and 1")
    rng = np.random.default_rng(seed)
    train, test = np.arange(len(ds.frame)), np.arange(0)
    if ds.split_col:
        labels = checked_split_labels(ds.frame, ds.split_col).to_numpy()
        train, test = np.flatnonzero(labels == "train"), np.flatnonzero(labels == "test")
        val = np.flatnonzero(labels == "val")
        if len(train) == 0:
            raise DataError(f"split column '{ds.split_col}' has no 'train' rows; mark some rows train")
        if len(val):
            return {"train": train, "val": val, "test": test}
    if ds.task == "classification":
        y = ds.frame[ds.target].map(label_text).to_numpy()[train]
        val = np.concatenate([_random_val(train[y == c], val_fraction, rng) for c in ds.classes] or [train[:0]])
    else:
        val = _random_val(train, val_fraction, rng)
    val = np.sort(val).astype(np.int64)
    return {"train": np.setdiff1d(train, val), "val": val, "test": np.sort(test)}
