"""Column roles and the task: which column is an image, a feature, the id, the split or the target.

Detection is deterministic and only guesses: load_dataset applies the user's choices on top.
Streamlit-free and TensorFlow-free.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from multimodal.core.errors import DataError
from multimodal.data.cells import row_numbers, rows_text

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ROLES = ("image", "numeric", "categorical", "id", "target", "split", "ignore")
TARGET_NAMES = ("target", "label", "y", "class", "price", "diagnosis")
SPLIT_NAMES = ("split", "fold")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
MAX_CATEGORICAL_INTS = 10  # ints with at most this many distinct values are categories


def _is_stringish(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s) or s.dtype == object


def _integral(s: pd.Series) -> bool:
    """Numeric column whose values are all whole numbers (ints, or ints read as float due to NaN)."""
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return False
    v = s.dropna().to_numpy(dtype="float64")    # numpy, not pandas ops: wide tables call this per column
    return pd.api.types.is_integer_dtype(s) or bool(np.all(np.isfinite(v) & (v == np.round(v))))


def _looks_like_images(s: pd.Series, root: Path | None) -> bool:
    if not _is_stringish(s):
        return False
    v = s.dropna().astype(str).str.strip()
    v = v[v != ""]
    if v.empty:
        return False
    if v.str.lower().str.endswith(IMAGE_EXTENSIONS).mean() >= 0.8:
        return True
    # Extension-less image files: accept when the first values exist as files under root.
    return root is not None and all((Path(root) / x).is_file() for x in v.iloc[:20])


def feature_role(s: pd.Series) -> str:
    """numeric / categorical / ignore for a non-image, non-id, non-target column.

    Rules: bools and strings -> categorical (strings unique for over half of >50 rows: free
    text -> ignore); whole numbers (ints, or ints read as floats because of gaps) with at
    most MAX_CATEGORICAL_INTS distinct values -> categorical; other numbers -> numeric;
    an all-empty or constant column -> ignore (it carries no information).
    """
    v = s.dropna()
    distinct = v.nunique()
    if distinct <= 1:
        return "ignore"
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        n = v.astype(str).nunique()
        return "ignore" if n > 50 and n > 0.5 * len(v) else "categorical"
    return "categorical" if distinct <= MAX_CATEGORICAL_INTS and _integral(s) else "numeric"


def _is_id(name: str, s: pd.Series) -> bool:
    """Named id / *_id, all-unique non-numeric text, or unique ints forming a range (a row number)."""
    low = name.lower()
    if low == "id" or low.endswith(("_id", " id")):
        return True
    if s.isna().any() or s.nunique() != len(s) or len(s) < 2:
        return False
    if pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return int(s.max()) - int(s.min()) == len(s) - 1
    return _is_stringish(s) and pd.to_numeric(s, errors="coerce").isna().all()


def _split_labels(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip().str.lower().map(SPLIT_ALIASES)


def checked_split_labels(frame: pd.DataFrame, column: str) -> pd.Series:
    """A split column's values as train/val/test; other values -> DataError naming their rows."""
    labels = _split_labels(frame[column])
    bad = labels.isna().to_numpy()
    if bad.any():
        example = frame[column][bad].iloc[0]
        raise DataError(f"column '{column}', {rows_text(row_numbers(frame, bad))}: split value '{example}' "
                        "is not train/val/test; fix it or set the column's role to ignore")
    return labels


def detect_roles(frame: pd.DataFrame, root: Path | None = None) -> dict[str, str]:
    """Guess each column's role, deterministically.

    Precedence per column: image (>=80% of values end with an image extension) > split (named
    split/fold, mostly train/val/test values: a typo must not turn it into a feature; the rest
    are reported by load_dataset) > id (see _is_id) > numeric/categorical/ignore (see
    feature_role). The target is the first column named like TARGET_NAMES (in that
    priority), else the last numeric or categorical column.
    """
    roles: dict[str, str] = {}
    for c in frame.columns:
        s = frame[c]
        if _looks_like_images(s, root):
            roles[c] = "image"
        elif (c.lower() in SPLIT_NAMES and "split" not in roles.values()
              and _split_labels(s).notna().mean() >= 0.5):
            roles[c] = "split"
        elif _is_id(c, s) and c.lower() not in TARGET_NAMES:
            roles[c] = "id"
        else:
            roles[c] = feature_role(s)
    lowered = {c.lower(): c for c in reversed(list(frame.columns))}  # first wins on case clashes
    named = [lowered[n] for n in TARGET_NAMES if n in lowered]
    target = next((c for c in named if roles[c] not in ("image", "split")), None)
    if target is None:
        target = next((c for c in reversed(list(frame.columns)) if roles[c] in ("numeric", "categorical")), None)
    if target is not None:
        roles[target] = "target"
    return roles


def detect_task(series: pd.Series) -> str:
    """classification for text/bools or whole numbers with <= 10 distinct values, else regression."""
    s = series.dropna()
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "classification"
    if _integral(series) and s.nunique() <= MAX_CATEGORICAL_INTS:
        return "classification"
    return "regression"
