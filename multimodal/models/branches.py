"""Branch encoders: raw inputs -> the embedding each branch hands to the fusion head.

Contract (the explanations rely on it):
- image / sequence encoder: uint8 images (N, T, S, S, 3) -> last conv maps (N, T, h, w, c).
  Keeping the spatial map as the embedding lets Grad-CAM differentiate the head with respect
  to it, and lets branch Shapley swap a whole branch for background rows.
- tabular encoder: one raw input per column -> preprocessed feature vector (N, d): numeric
  columns imputed (+ 'was missing' flag) and normalized, categoricals one-hot. Which slice of
  the vector belongs to which column is in `tabular_layout`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from multimodal.data.dataset import MISSING_TOKEN, FeatureSpec, input_name
from multimodal.models.layers import ImputeMissing

log = logging.getLogger(__name__)

IMAGE_ENCODERS = {
    "small_cnn": "Small CNN (3 conv blocks, trains in seconds on a CPU)",
    "mobilenet_v2": "MobileNetV2 (ImageNet weights if present locally, else random init)",
}
MOBILENET_WEIGHTS = Path.home() / ".keras" / "models" / \
    "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


def tabular_stats(inputs: dict[str, np.ndarray], spec: FeatureSpec) -> dict:
    """Statistics the tabular encoder bakes in, computed on the training rows only.

    JSON-serialisable, saved with the run so the encoder can be rebuilt exactly.
    """
    numeric = {}
    for col in spec.numeric_cols:
        values = np.asarray(inputs[input_name(col)], dtype="float64")
        present = values[~np.isnan(values)]
        if present.size == 0:
            numeric[col] = {"fill": 0.0, "mean": 0.0, "variance": 1.0, "indicator": True}
            continue
        numeric[col] = {
            "fill": float(np.median(present)),
            "mean": float(present.mean()),
            "variance": float(max(present.var(), 1e-12)),
            "indicator": bool(np.isnan(values).any()),
        }
    categorical = {}
    for col in spec.categorical_cols:
        values = {str(v) for v in inputs[input_name(col)]}
        # The missing token always gets a slot, so a row missing this value at predict time
        # is not confused with an unseen category.
        categorical[col] = sorted(values | {MISSING_TOKEN})
    return {"numeric": numeric, "categorical": categorical}


def tabular_layout(spec: FeatureSpec, stats: dict) -> list[tuple[str, int, int]]:
    """(column, start, stop) of each column's slice in the tabular feature vector."""
    layout, start = [], 0
    for col in spec.numeric_cols:
        width = 2 if stats["numeric"][col]["indicator"] else 1
        layout.append((col, start, start + width))
        start += width
    for col in spec.categorical_cols:
        width = len(stats["categorical"][col]) + 1  # +1: the out-of-vocabulary slot
        layout.append((col, start, start + width))
        start += width
    return layout


def tabular_inputs(spec: FeatureSpec) -> dict[str, keras.KerasTensor]:
    inputs = {input_name(c): keras.Input(shape=(1,), dtype="float32", name=input_name(c))
              for c in spec.numeric_cols}
    inputs.update({input_name(c): keras.Input(shape=(1,), dtype="string", name=input_name(c))
                   for c in spec.categorical_cols})
    return inputs


def tabular_encoder(spec: FeatureSpec, stats: dict) -> keras.Model:
    """Raw column values -> one preprocessed feature vector (preprocessing inside the model)."""
    inputs = tabular_inputs(spec)
    parts = []
    for col in spec.numeric_cols:
        s = stats["numeric"][col]
        name = input_name(col)
        x = ImputeMissing(s["fill"], s["indicator"], name=f"impute_{name}")(inputs[name])
        # The flag column passes through unchanged (mean 0, variance 1).
        mean = [s["mean"], 0.0] if s["indicator"] else [s["mean"]]
        variance = [s["variance"], 1.0] if s["indicator"] else [s["variance"]]
        parts.append(keras.layers.Normalization(mean=mean, variance=variance, name=f"norm_{name}")(x))
    for col in spec.categorical_cols:
        name = input_name(col)
        lookup = keras.layers.StringLookup(vocabulary=stats["categorical"][col], output_mode="one_hot",
                                           name=f"lookup_{name}")
        parts.append(lookup(inputs[name]))
    features = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    return keras.Model(inputs, features, name="tabular_encoder")


def _small_cnn(image_size: int, filters: tuple[int, ...] = (16, 32, 64)) -> keras.Model:
    inputs = keras.Input((image_size, image_size, 3), name="frame")
    x = inputs
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        if i < len(filters) - 1:
            x = keras.layers.MaxPooling2D(name=f"pool{i + 1}")(x)
    return keras.Model(inputs, x, name="small_cnn")


def _mobilenet_v2(image_size: int) -> keras.Model:
    weights = str(MOBILENET_WEIGHTS) if MOBILENET_WEIGHTS.exists() else None
    if weights is None:
        log.warning("MobileNetV2 ImageNet weights not found at %s (offline): using random init.",
                    MOBILENET_WEIGHTS)
    base = keras.applications.MobileNetV2(input_shape=(image_size, image_size, 3), include_top=False,
                                          weights=weights)
    return base  # frames arrive in [-1, 1], MobileNetV2's own input range


def pretrained_weights_available(encoder: str) -> bool:
    return encoder != "mobilenet_v2" or MOBILENET_WEIGHTS.exists()


def augmentation(seed: int) -> list[keras.layers.Layer]:
    """Small, label-preserving changes; active in training only."""
    return [keras.layers.RandomFlip("horizontal", seed=seed, name="flip"),
            keras.layers.RandomRotation(0.05, fill_mode="reflect", seed=seed, name="rotate"),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed, name="zoom")]


def image_encoder(encoder: str, image_size: int, frames: int, augment: bool, seed: int = 0,
                  name: str = "image_encoder") -> keras.Model:
    """uint8 frames (N, T, S, S, 3) -> conv maps (N, T, h, w, c); one CNN shared by all frames."""
    builders = {"small_cnn": _small_cnn, "mobilenet_v2": _mobilenet_v2}
    if encoder not in builders:
        raise ValueError(f"unknown image encoder '{encoder}'; choose one of {sorted(builders)}")
    frame = keras.Input((image_size, image_size, 3), name="frame")
    # Centred inputs ([-1, 1]) train markedly faster than [0, 1] for the small CNN from scratch.
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(frame)
    for layer in augmentation(seed) if augment else []:
        x = layer(x)
    per_frame = keras.Model(frame, builders[encoder](image_size)(x), name="frame_encoder")
    images = keras.Input((frames, image_size, image_size, 3), dtype="uint8", name="images")
    maps = keras.layers.TimeDistributed(per_frame, name="per_frame")(images)
    return keras.Model({"images": images}, maps, name=name)
