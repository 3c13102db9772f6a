"""The model's raw inputs: which columns it reads, their Keras input names, their arrays and the target.

Images are (N, T, S, S, 3) uint8, numeric columns float32 with NaN for gaps, categorical columns
label text; the model's own preprocessing takes it from there. Streamlit-free and TensorFlow-free.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from multimodal.core.errors import DataError
from multimodal.data.cells import is_missing, label_column, label_text, numeric_column, resolve_image_path, row_numbers, rows_text
from multimodal.data.images import load_images


@dataclass
class FeatureSpec:
    """The columns a model consumes (JSON-serialisable with dataclasses.asdict)."""

    image_cols: list[str] = field(default_factory=list)
    numeric_cols: list[str] = field(default_factory=list)
    categorical_cols: list[str] = field(default_factory=list)
    # The user's word that the image columns are frames of one sequence, in column order (time
    # points, slices); never guessed. Only the method proposal reads it (models/proposal.py).
    ordered_images: bool = False

    @property
    def tabular_cols(self) -> list[str]:
        return self.numeric_cols + self.categorical_cols


# The tabular encoder's model inputs: all numeric columns as one (N, k) float matrix, all categorical
# ones as one (N, k) string matrix (models/branches.py). Raw inputs stay one array per column
# (`model_inputs`); `stack_columns` builds a group at the model's door (models/assembly.select_inputs).
TABULAR_NUMERIC = "tabular_numeric"
TABULAR_CATEGORICAL = "tabular_categorical"


def stack_columns(inputs: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """The per-column arrays `names` of raw inputs as one (N, len(names)) matrix, in that order."""
    absent = [n for n in names if n not in inputs]
    if absent:
        raise DataError(f"the model reads column(s) {', '.join(n.removeprefix('col_') for n in absent[:5])} "
                        "that these inputs do not have; give every column the model was trained on")
    return np.stack([np.asarray(inputs[n]).reshape(-1) for n in names], axis=1)


def input_name(column: str) -> str:
    """Keras-safe input name for a column."""
    return "col_" + re.sub(r"\W+", "_", str(column)).strip("_").lower()


def model_inputs(frame: pd.DataFrame, root: Path, spec: FeatureSpec, image_size: int,
                 images: np.ndarray | None = None, cache_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Raw model inputs for these rows: 'images' (N,T,S,S,3) uint8, numeric float32 with NaN, categorical str."""
    n = len(frame)
    absent = [c for c in spec.image_cols + spec.tabular_cols if c not in frame.columns]
    if absent:
        raise DataError(f"missing column(s) {', '.join(map(repr, absent))}; the model needs "
                        f"{', '.join(spec.image_cols + spec.tabular_cols)}")
    out: dict[str, np.ndarray] = {}
    if spec.image_cols:
        t = len(spec.image_cols)
        if images is None:
            paths: list[Path] = []
            rows = row_numbers(frame, np.ones(n, dtype=bool))
            for i in range(n):
                for c in spec.image_cols:
                    v = frame[c].iloc[i]
                    where = f"row {rows[i]}, column '{c}'"
                    if is_missing(v):
                        raise DataError(f"{where}: no image given; add an image path or drop the row")
                    paths.append(resolve_image_path(root, v, where))
            images = load_images(paths, image_size, cache_dir).reshape(n, t, image_size, image_size, 3)
        images = np.asarray(images, dtype=np.uint8)
        if images.ndim == 4 and t == 1:
            images = images[:, None]
        if images.shape != (n, t, image_size, image_size, 3):
            raise ValueError(f"images has shape {images.shape}, expected {(n, t, image_size, image_size, 3)}")
        out["images"] = images
    for c in spec.numeric_cols:
        out[input_name(c)] = numeric_column(frame[c], c, frame).astype(np.float32)
    for c in spec.categorical_cols:
        out[input_name(c)] = label_column(frame[c])
    return out


def encode_target(values: pd.Series, task: str, classes: list[str]) -> np.ndarray:
    """int32 class indices (classification) or float32 values (regression)."""
    values = pd.Series(values)
    if task == "classification":
        lookup = {c: i for i, c in enumerate(classes)}
        text = values.map(label_text)
        bad = ~text.isin(lookup).to_numpy()
        if bad.any():
            frame = values.to_frame()
            raise DataError(f"{rows_text(row_numbers(frame, bad))}: label '{text[bad].iloc[0]}' is not one of "
                            f"the classes ({', '.join(classes)}); fix the label")
        return text.map(lookup).to_numpy(dtype=np.int32)
    return numeric_column(values, str(values.name or "target"), values.to_frame()).astype(np.float32)
