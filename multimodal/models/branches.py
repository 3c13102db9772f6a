"""Branch encoders: raw inputs -> the embedding each branch hands to the fusion head.

Contract (the explanations rely on it):
- image / sequence encoder: uint8 images (N, T, S, S, 3) -> last conv maps (N, T, h, w, c), the
  backbone (backbones.py) with its own input preprocessing and its weights (weights.py).
  Keeping the spatial map as the embedding lets Grad-CAM differentiate the head with respect
  to it, and lets branch Shapley swap a whole branch for background rows.
- rows encoder: the same uint8 images -> grayscale pixel rows (N, S, S) in [-1, 1] (the mean of
  R, G, B, frames averaged), for a head that reads the image row by row (fusion.cnn_rnn_classifier).
  No weights: the reading is the head's, so the explanations treat it as a branch of its own.
- tabular encoder: the numeric columns as one matrix and the categorical ones as another ->
  preprocessed feature vector (N, d): numeric columns imputed (+ 'was missing' flag) and
  normalized, categoricals one-hot. Which slice of the vector belongs to which column is in
  `tabular_layout`; which raw column feeds which position the layers' `columns` say.
"""
from __future__ import annotations

import keras
import numpy as np

from multimodal.data.cells import MISSING_TOKEN
from multimodal.data.inputs import TABULAR_CATEGORICAL, TABULAR_NUMERIC, FeatureSpec, input_name
from multimodal.models.augment import RandomFlipRotateZoom
from multimodal.models.backbones import build_backbone, encoder_spec, set_blocks_trainable
from multimodal.models.layers import CategoricalOneHot, FrameMean, ImputeColumns
from multimodal.models.weights import WeightsSource, load_encoder_weights, resolve_weights


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
    """One model input per kind of column, whatever the table's width: the numeric columns as one
    float matrix, the categorical ones as one string matrix (data/inputs.py, `group_inputs`)."""
    inputs = {}
    if spec.numeric_cols:
        inputs[TABULAR_NUMERIC] = keras.Input(shape=(len(spec.numeric_cols),), dtype="float32", name=TABULAR_NUMERIC)
    if spec.categorical_cols:
        inputs[TABULAR_CATEGORICAL] = keras.Input(shape=(len(spec.categorical_cols),), dtype="string",
                                                  name=TABULAR_CATEGORICAL)
    return inputs


def tabular_encoder(spec: FeatureSpec, stats: dict) -> keras.Model:
    """Raw column values -> one preprocessed feature vector (preprocessing inside the model).

    Three layers whatever the width (docs/ARCHITECTURE.md, "Tabular branch"): imputation with
    'was missing' flags and one Normalization over all numeric columns, one lookup table for all
    categorical ones; the vector's layout is `tabular_layout`'s."""
    inputs = tabular_inputs(spec)
    parts = []
    if spec.numeric_cols:
        s = [stats["numeric"][c] for c in spec.numeric_cols]
        x = ImputeColumns([input_name(c) for c in spec.numeric_cols], [c["fill"] for c in s],
                          [c["indicator"] for c in s], name="impute")(inputs[TABULAR_NUMERIC])
        # The flag columns pass through unchanged (mean 0, variance 1).
        mean = [v for c in s for v in ([c["mean"], 0.0] if c["indicator"] else [c["mean"]])]
        variance = [v for c in s for v in ([c["variance"], 1.0] if c["indicator"] else [c["variance"]])]
        parts.append(keras.layers.Normalization(mean=mean, variance=variance, name="normalize")(x))
    if spec.categorical_cols:
        parts.append(CategoricalOneHot([input_name(c) for c in spec.categorical_cols],
                                       [stats["categorical"][c] for c in spec.categorical_cols],
                                       name="one_hot")(inputs[TABULAR_CATEGORICAL]))
    features = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    return keras.Model(inputs, features, name="tabular_encoder")


def augmentation(seed: int) -> list[keras.layers.Layer]:
    """Small, label-preserving changes, active in training only: a left-right flip, up to 5% of a
    turn of rotation and 10% of zoom, in one resampling (models/augment.py). Runs saved before
    keep the three stock layers they were built with (flip, rotate, zoom)."""
    return [RandomFlipRotateZoom(rotation=0.05, zoom=0.1, fill_mode="reflect", seed=seed, name="augment")]


def image_encoder(encoder: str, image_size: int, frames: int, augment: bool, seed: int = 0,
                  name: str = "image_encoder", weights: WeightsSource | None = None,
                  trainable_backbone: bool = True) -> keras.Model:
    """uint8 frames (N, T, S, S, 3) -> the backbone's last conv maps (N, T, h, w, c); one CNN shared by all frames.

    weights: from `weights.resolve_weights`, which the caller runs first (it may download and
    must say when it cannot). None looks in Keras' cache only, never the network, and falls
    back to random init with a logged notice. trainable_backbone=False freezes the whole
    backbone (training the head only); `set_backbone_trainable` unfreezes it later.
    """
    backbone = build_backbone(encoder, image_size)
    weights = weights if weights is not None else resolve_weights(encoder, download=False)
    if weights.encoder != encoder:
        raise ValueError(f"weights resolved for '{weights.encoder}' cannot load into '{encoder}'")
    load_encoder_weights(backbone, weights)
    if not trainable_backbone:
        set_blocks_trainable(backbone, 0)
    frame = keras.Input((image_size, image_size, 3), name="frame")
    x = frame
    rescale = encoder_spec(encoder).rescale
    if rescale is not None:  # the family's preprocess_input, inside the model (no Lambda: safe-mode loading)
        x = keras.layers.Rescaling(rescale[0], offset=rescale[1], name="rescale")(x)
    for layer in augmentation(seed) if augment else []:
        x = layer(x)
    per_frame = keras.Model(frame, backbone(x), name="frame_encoder")
    images = keras.Input((frames, image_size, image_size, 3), dtype="uint8", name="images")
    maps = keras.layers.TimeDistributed(per_frame, name="per_frame")(images)
    return keras.Model({"images": images}, maps, name=name)


def rows_encoder(image_size: int, frames: int, augment: bool, seed: int = 0,
                 name: str = "rows_encoder") -> keras.Model:
    """uint8 frames (N, T, S, S, 3) -> grayscale rows (N, S, S) in [-1, 1]: each frame's channel mean,
    averaged over the frames; augmented like the image encoder. Stock layers only (safe-mode loading)."""
    frame = keras.Input((image_size, image_size, 3), name="frame")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(frame)
    for layer in augmentation(seed) if augment else []:
        x = layer(x)
    x = keras.layers.Reshape((image_size * image_size, 3), name="pixels")(x)
    # channels_first: the last axis (R, G, B) is the one averaged.
    x = keras.layers.GlobalAveragePooling1D(data_format="channels_first", name="grayscale")(x)
    x = keras.layers.Reshape((image_size, image_size), name="rows")(x)
    per_frame = keras.Model(frame, x, name="frame_rows")
    images = keras.Input((frames, image_size, image_size, 3), dtype="uint8", name="images")
    rows = FrameMean(name="frame_mean")(keras.layers.TimeDistributed(per_frame, name="per_frame")(images))
    return keras.Model({"images": images}, rows, name=name)


def image_backbones(model: keras.Model) -> list[keras.Model]:
    """The backbone of every image encoder in `model` (a full model or an image encoder)."""
    found = []
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
        if inner.name == "frame_encoder":
            found += [sub for sub in inner.layers if isinstance(sub, keras.Model)]
        elif isinstance(inner, keras.Model):
            found += image_backbones(inner)
    return found


def set_backbone_trainable(model: keras.Model, unfreeze: str | int, freeze_batch_norm: bool = True) -> None:
    """Unfreeze the top `unfreeze` blocks ("all", or a count; 0 freezes) of every image backbone in
    `model`, BatchNormalization kept in inference mode (see `backbones.set_blocks_trainable`).
    Recompile the model afterwards: Keras fixes the trainable weights at compile time."""
    for backbone in image_backbones(model):
        set_blocks_trainable(backbone, unfreeze, freeze_batch_norm)
