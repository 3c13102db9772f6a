"""What one CSV cell means: missing or not, its label text, its number, its image path.

Also the 1-based row numbers that every DataError message names. Streamlit-free and
TensorFlow-free.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from multimodal.core.errors import DataError

MISSING_TOKEN = "(missing)"


def rows_text(rows: Sequence[int], limit: int = 5) -> str:
    """'row 3' / 'rows 3, 17 and 4 more' for messages."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def row_numbers(frame: pd.DataFrame, mask: Any) -> list[int]:
    """1-based CSV data rows of the True entries; a subset frame keeps its original index."""
    mask = np.asarray(mask, dtype=bool)
    if pd.api.types.is_integer_dtype(frame.index):
        return [int(i) + 1 for i in frame.index[mask]]
    return [int(i) + 1 for i in np.flatnonzero(mask)]


def is_missing(v: Any) -> bool:
    """None, NaN or blank text."""
    return v is None or (isinstance(v, str) and not v.strip()) or (not isinstance(v, str) and bool(pd.isna(v)))


def missing_mask(s: pd.Series) -> np.ndarray:
    """`is_missing` of every cell of a column, vectorised (a wide table has millions of cells)."""
    missing = s.isna().to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return missing
    blank = s.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool) \
        if pd.api.types.infer_dtype(s, skipna=True) != "string" else s.str.strip().eq("").to_numpy(dtype=bool,
                                                                                              na_value=False)
    return missing | blank


def label_column(s: pd.Series) -> np.ndarray:
    """`label_text` of every cell of a column, as str; vectorised for text and integer columns."""
    if pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.astype(str).to_numpy(dtype=str)
    if pd.api.types.infer_dtype(s, skipna=True) == "string":
        text = s.str.strip()
        return text.where(~missing_mask(s), MISSING_TOKEN).to_numpy(dtype=str)
    return np.array([label_text(v) for v in s], dtype=str).reshape(len(s))


def label_text(v: Any) -> str:
    """Category/label text: integral floats lose '.0' (an int column with gaps reads as float)."""
    if is_missing(v):
        return MISSING_TOKEN
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else str(float(v))
    if isinstance(v, np.generic):
        v = v.item()
    return str(v).strip()


def numeric_column(s: pd.Series, column: str, frame: pd.DataFrame) -> np.ndarray:
    """float64 values with NaN for gaps; text or inf -> DataError naming column and rows."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        num = s.to_numpy(dtype="float64")      # already numbers: a NaN is a gap, never bad text
        bad = np.zeros(len(num), dtype=bool)
    else:
        num = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
        bad = np.isnan(num) & ~missing_mask(s)
    if bad.any():
        example = s[bad].iloc[0]
        raise DataError(f"column '{column}', {rows_text(row_numbers(frame, bad))}: '{example}' is not a number; "
                        "fix the values or make the column categorical")
    inf = np.isinf(num)
    if inf.any():
        raise DataError(f"column '{column}', {rows_text(row_numbers(frame, inf))}: value is infinite; "
                        "replace it with a number or leave the cell empty")
    return num


def resolve_image_path(root: Path, value: Any, where: str = "") -> Path:
    """Absolute path of an image cell, refusing absolute paths and escapes (also via symlinks)."""
    text = str(value).strip().replace("\\", "/")
    prefix = f"{where}: " if where else ""
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise DataError(f"{prefix}image path '{value}' is absolute; use a path relative to the CSV's folder")
    root_res = Path(root).resolve()
    full = (root_res / text).resolve()
    if not full.is_relative_to(root_res):
        raise DataError(f"{prefix}image path '{value}' points outside the dataset folder; "
                        "move the image into the folder")
    return full
