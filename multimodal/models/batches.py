"""Rows of in-memory model inputs as tf.data batches (training, evaluation, importing a model).

The streamed counterpart, images read from disk per batch, is train/streaming.py.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def take(inputs: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The given rows of every input."""
    return {name: values[rows] for name, values in inputs.items()}


def make_dataset(inputs: dict[str, np.ndarray], y: np.ndarray | None, batch_size: int,
                 shuffle_seed: int | None = None, sample_weight: np.ndarray | None = None) -> tf.data.Dataset:
    """tf.data pipeline over in-memory arrays (uint8 images stay uint8 until the model casts).
    sample_weight: one loss weight per row (class weights), batched with the rows."""
    parts = inputs if y is None else (inputs, y) if sample_weight is None else (inputs, y, sample_weight)
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(next(iter(inputs.values()))), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
