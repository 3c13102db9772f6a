"""The plain-Keras reference: what a user writes by hand instead of using `multimodal`.

Images are loaded with `keras.utils.load_img(..., target_size=...)` into float arrays, the
numeric columns are standardised with numpy on the training rows and the categorical columns
one-hot encoded by hand, and a two-input Keras model with the SAME layers as multimodal's
`late_concat` with the default small CNN encoder and tabular MLP (branches.py, fusion.py,
model.py; 64 units, dropout 0.2, L2 1e-4, the same augmentation) is trained with `model.fit` on a
`tf.data.Dataset` with the same batch size, epochs, optimizer, loss and metrics.

Runnable (whole-process timing by bench/bench_vs_keras.py):

    .venv/bin/python bench/reference_keras.py DATA_FOLDER [--epochs 5] [--image-size 64] [--out DIR]

and importable (in-process throughput): `load_images`, `tabular_matrix`, `build_model`, `fit`.
The dataset layout is the bench's generated one: DATA_FOLDER/data.csv with an image path column
and the columns named below.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

IMAGE_COL = "image"
NUMERIC = ["age", "size_mm"]
CATEGORICAL = ["sex", "site"]
TARGET = "label"
POSITIVE = "malignant"


def load_images(paths: list[Path], size: int) -> np.ndarray:
    """float32 (N, size, size, 3) in 0..255, the way the Keras tutorials load images."""
    return np.stack([keras.utils.img_to_array(keras.utils.load_img(p, target_size=(size, size)))
                     for p in paths])


def tabular_matrix(frame: pd.DataFrame, train_rows: np.ndarray) -> np.ndarray:
    """Standardised numeric columns and one-hot categoricals (statistics from the training rows)."""
    parts = []
    for col in NUMERIC:
        values = frame[col].to_numpy(dtype="float32")
        mean, std = values[train_rows].mean(), values[train_rows].std() or 1.0
        parts.append(((values - mean) / std)[:, None])
    for col in CATEGORICAL:
        values = frame[col].astype(str).to_numpy()
        categories = np.unique(values[train_rows])
        parts.append((values[:, None] == categories[None, :]).astype("float32"))
    return np.concatenate(parts, axis=1).astype("float32")


def split(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def build_model(image_size: int, tabular_width: int, width: int = 64, dropout: float = 0.2, l2: float = 1e-4,
                seed: int = 0) -> keras.Model:
    """late_concat + small_cnn, layer for layer: CNN -> dense | features -> dense -> concat -> dense -> logit."""
    keras.utils.set_random_seed(seed)
    reg = keras.regularizers.L2(l2)
    image = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(image)
    x = keras.layers.RandomFlip("horizontal", seed=seed)(x)
    x = keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed)(x)
    x = keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed)(x)
    for i, filters in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        if i < 2:
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(keras.layers.Dense(width, activation="relu", kernel_regularizer=reg)(x))
    tabular = keras.Input((tabular_width,), name="tabular")
    t = keras.layers.Dropout(dropout)(keras.layers.Dense(width, activation="relu", kernel_regularizer=reg)(tabular))
    joint = keras.layers.Concatenate()([x, t])
    joint = keras.layers.Dropout(dropout)(keras.layers.Dense(width, activation="relu", kernel_regularizer=reg)(joint))
    logit = keras.layers.Dense(1, kernel_regularizer=reg)(joint)
    model = keras.Model({"image": image, "tabular": tabular}, logit)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy"),
                           keras.metrics.AUC(from_logits=True, name="auc")])
    return model


def make_dataset(images: np.ndarray, tabular: np.ndarray, y: np.ndarray, batch_size: int,
                 shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices(({"image": images, "tabular": tabular}, y))
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def fit(images: np.ndarray, tabular: np.ndarray, y: np.ndarray, train_rows: np.ndarray, val_rows: np.ndarray,
        epochs: int, batch_size: int = 32, seed: int = 0,
        callbacks: list[keras.callbacks.Callback] | None = None) -> tuple[keras.Model, dict]:
    """Build, compile and fit; returns the model and {fit_seconds, samples_per_second, history}.
    callbacks: instrumentation only (the bench's epoch clock)."""
    keras.backend.clear_session()
    model = build_model(images.shape[1], tabular.shape[1], seed=seed)
    train = make_dataset(images[train_rows], tabular[train_rows], y[train_rows], batch_size, shuffle=True, seed=seed)
    val = make_dataset(images[val_rows], tabular[val_rows], y[val_rows], batch_size)
    started = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - started
    return model, {"fit_seconds": seconds, "samples_per_second": epochs * len(train_rows) / seconds,
                   "history": {k: [float(v) for v in vals] for k, vals in history.history.items()}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="folder with data.csv")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", type=Path, default=Path("reference-run"))
    args = p.parse_args()

    started = time.perf_counter()
    frame = pd.read_csv(args.data / "data.csv")
    images = load_images([args.data / v for v in frame[IMAGE_COL]], args.image_size)
    decoded = time.perf_counter()
    train_rows, val_rows = split(len(frame))
    tabular = tabular_matrix(frame, train_rows)
    y = (frame[TARGET] == POSITIVE).to_numpy(dtype="float32")[:, None]
    model, result = fit(images, tabular, y, train_rows, val_rows, args.epochs, args.batch_size)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "model.keras")
    print(json.dumps({"decode_seconds": decoded - started, "fit_seconds": result["fit_seconds"],
                      "samples_per_second": result["samples_per_second"],
                      "val_accuracy": result["history"]["val_accuracy"][-1],
                      "seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
