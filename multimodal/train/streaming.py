"""Training data that streams from disk: images decoded once into an on-disk uint8 array.

Decoded images are what makes a big dataset big: 50,000 rows of 64 px images are 600 MB as
uint8 (2.4 GB as float32), and `tf.data.Dataset.from_tensor_slices` holds a second copy. Here
the images are decoded once, chunk by chunk, into a `.npy` file in the run's work folder, and a
tf.data pipeline reads each batch's rows from it with positioned reads (`os.preadv`). The bytes
pass through the page cache but are never mapped into the process, so peak RSS stays flat as
the dataset grows (reading through `np.memmap` would count every touched page as resident).
Tabular columns and targets stay in memory: a few bytes per row.

`training.train` streams when `TrainConfig.stream` is True, or when it is None (the default)
and the decoded images would exceed STREAM_IMAGE_BYTES.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from multimodal.data.inputs import FeatureSpec, model_inputs

STREAM_IMAGE_BYTES = 512 * 2**20   # auto mode: decoded images above this size stream from disk
CHUNK_ROWS = 1024                  # rows decoded (in parallel threads) per write to the file


def image_bytes(rows: int, frames: int, image_size: int) -> int:
    """Size of the decoded uint8 images of a dataset."""
    return rows * frames * image_size * image_size * 3


def should_stream(requested: bool | None, rows: int, frames: int, image_size: int) -> bool:
    """The user's choice, or (None) whether the decoded images exceed STREAM_IMAGE_BYTES."""
    if requested is not None:
        return bool(requested) and frames > 0
    return image_bytes(rows, frames, image_size) > STREAM_IMAGE_BYTES


@dataclass(frozen=True)
class ImageStore:
    """uint8 images (N, T, S, S, 3) in a .npy file; rows are read by file offset."""
    path: Path
    shape: tuple[int, ...]
    offset: int          # bytes of the .npy header before row 0

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:]))

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The images of these row positions, in the given order."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        out = np.empty((len(positions), *self.shape[1:]), dtype=np.uint8)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for i, position in enumerate(positions):
                got = os.preadv(fd, [memoryview(out[i]).cast("B")], self.offset + int(position) * self.row_bytes)
                if got != self.row_bytes:
                    raise OSError(f"'{self.path}' is truncated at row {int(position)}")
        finally:
            os.close(fd)
        return out


def decode_to_disk(frame: pd.DataFrame, root: Path, spec: FeatureSpec, image_size: int, folder: Path,
                   cache_dir: Path | None = None) -> ImageStore:
    """Decode the image columns of every row into `folder`/images-<size>px.npy, CHUNK_ROWS at a time.

    Decoding goes through `model_inputs` (same path checks, messages, parallel draft-mode decode
    and optional per-image disk cache as the in-memory path); only one chunk is in memory at once.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"images-{image_size}px.npy"
    shape = (len(frame), len(spec.image_cols), image_size, image_size, 3)
    # open_memmap writes a standard .npy header and sizes the file; the rows are then written with
    # plain file writes, which (unlike stores through the mapping) leave no resident pages behind.
    header = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    store = ImageStore(path, shape, int(header.offset))
    del header
    image_spec = FeatureSpec(image_cols=list(spec.image_cols))
    with open(path, "r+b") as f:
        for start in range(0, len(frame), CHUNK_ROWS):
            chunk = model_inputs(frame.iloc[start:start + CHUNK_ROWS], root, image_spec, image_size,
                                 cache_dir=cache_dir)["images"]
            f.seek(store.offset + start * store.row_bytes)
            f.write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
    return store


def make_streaming_dataset(store: ImageStore, tabular: dict[str, np.ndarray], y: np.ndarray | None,
                           rows: np.ndarray, batch_size: int, shuffle_seed: int | None = None,
                           sample_weight: np.ndarray | None = None) -> tf.data.Dataset:
    """tf.data over dataset rows `rows`: images read from `store` per batch, other inputs in memory.

    Yields exactly what `models.batches.make_dataset(take(inputs, rows), y[rows], ...)` yields (with
    `sample_weight[rows]` when given, per row of the whole dataset like `y`): the row
    order is shuffled the same way (a shuffle's permutation depends only on its seed and size, so
    shuffling row numbers equals shuffling the rows), then each batch gathers its rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    order = tf.data.Dataset.range(len(rows))
    if shuffle_seed is not None:
        order = order.shuffle(len(rows), seed=shuffle_seed, reshuffle_each_iteration=True)
    columns = {name: tf.constant(values[rows]) for name, values in tabular.items()}
    targets = None if y is None else tf.constant(y[rows])
    weights = None if sample_weight is None else tf.constant(sample_weight[rows])
    positions = tf.constant(rows)

    def read(batch):
        images = tf.numpy_function(store.rows, [tf.gather(positions, batch)], tf.uint8, stateful=False)
        images.set_shape((None, *store.shape[1:]))
        features = {"images": images, **{name: tf.gather(c, batch) for name, c in columns.items()}}
        if targets is None:
            return features
        return (features, tf.gather(targets, batch)) if weights is None else \
            (features, tf.gather(targets, batch), tf.gather(weights, batch))

    return (order.batch(batch_size)
            .map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))
