"""Datasets: column roles, task, validation, splits and the model's raw inputs.

Reading sources (folders, zips, CSVs) lives in sources.py and image decoding in images.py;
their public names are re-exported here. Streamlit-free and TensorFlow-free, so pages that
only show data start fast. Every user-facing problem raises DataError with a message that names the
file, row (1-based CSV data row) or column and says what to do.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from multimodal.core.errors import DataError
from multimodal.data.images import image_size, load_images
from multimodal.data.sources import read_csv, resolve_source

MISSING_TOKEN = "(missing)"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ROLES = ("image", "numeric", "categorical", "id", "target", "split", "ignore")
TASKS = ("classification", "regression")
TARGET_NAMES = ("target", "label", "y", "class", "price", "diagnosis")
SPLIT_NAMES = ("split", "fold")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
MAX_CATEGORICAL_INTS = 10  # ints with at most this many distinct values are categories



@dataclass
class FeatureSpec:
    """The columns a model consumes (JSON-serialisable with dataclasses.asdict)."""

    image_cols: list[str] = field(default_factory=list)
    numeric_cols: list[str] = field(default_factory=list)
    categorical_cols: list[str] = field(default_factory=list)

    @property
    def tabular_cols(self) -> list[str]:
        return self.numeric_cols + self.categorical_cols


@dataclass
class Dataset:
    """A loaded, validated dataset: the CSV, its folder and the role of each column."""

    name: str
    csv_path: Path
    root: Path
    frame: pd.DataFrame
    roles: dict[str, str]
    target: str
    task: str
    classes: list[str]

    @property
    def features(self) -> FeatureSpec:
        by = lambda role: [c for c in self.frame.columns if self.roles.get(c) == role]  # noqa: E731
        return FeatureSpec(by("image"), by("numeric"), by("categorical"))

    @property
    def split_col(self) -> str | None:
        return next((c for c in self.frame.columns if self.roles.get(c) == "split"), None)


# ---------------------------------------------------------------- small helpers

def _rows_text(rows: Sequence[int], limit: int = 5) -> str:
    """'row 3' / 'rows 3, 17 and 4 more' for messages."""
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _row_numbers(frame: pd.DataFrame, mask: Any) -> list[int]:
    """1-based CSV data rows of the True entries; a subset frame keeps its original index."""
    mask = np.asarray(mask, dtype=bool)
    if pd.api.types.is_integer_dtype(frame.index):
        return [int(i) + 1 for i in frame.index[mask]]
    return [int(i) + 1 for i in np.flatnonzero(mask)]


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (not isinstance(v, str) and bool(pd.isna(v)))


def label_text(v: Any) -> str:
    """Category/label text: integral floats lose '.0' (an int column with gaps reads as float)."""
    if _is_missing(v):
        return MISSING_TOKEN
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else str(float(v))
    if isinstance(v, np.generic):
        v = v.item()
    return str(v).strip()


def _is_stringish(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s) or s.dtype == object


def _integral(s: pd.Series) -> bool:
    """Numeric column whose values are all whole numbers (ints, or ints read as float due to NaN)."""
    v = s.dropna()
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return False
    return pd.api.types.is_integer_dtype(s) or bool(np.all(np.isfinite(v) & (v == np.round(v))))


def input_name(column: str) -> str:
    """Keras-safe input name for a column."""
    return "col_" + re.sub(r"\W+", "_", str(column)).strip("_").lower()


# ---------------------------------------------------------------- roles and task

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


def _feature_role(s: pd.Series) -> str:
    """numeric / categorical / ignore for a non-image, non-id, non-target column.

    Rules: bools and strings -> categorical (strings unique for over half of >50 rows: free
    text -> ignore); whole numbers (ints, or ints read as floats because of gaps) with at
    most MAX_CATEGORICAL_INTS distinct values -> categorical; other numbers -> numeric;
    an all-empty or constant column -> ignore (it carries no information).
    """
    v = s.dropna()
    if v.nunique() <= 1:
        return "ignore"
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        n = v.astype(str).nunique()
        return "ignore" if n > 50 and n > 0.5 * len(v) else "categorical"
    return "categorical" if _integral(s) and v.nunique() <= MAX_CATEGORICAL_INTS else "numeric"


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


def detect_roles(frame: pd.DataFrame, root: Path | None = None) -> dict[str, str]:
    """Guess each column's role, deterministically.

    Precedence per column: image (>=80% of values end with an image extension) > split (named
    split/fold, mostly train/val/test values: a typo must not turn it into a feature; the rest
    are reported by load_dataset) > id (see _is_id) > numeric/categorical/ignore (see
    _feature_role). The target is the first column named like TARGET_NAMES (in that
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
            roles[c] = _feature_role(s)
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


# ---------------------------------------------------------------- loading and validation

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


def _numeric_column(s: pd.Series, column: str, frame: pd.DataFrame) -> np.ndarray:
    """float64 values with NaN for gaps; text or inf -> DataError naming column and rows."""
    num = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy()
    bad = np.isnan(num) & ~s.map(_is_missing).to_numpy(dtype=bool)
    if bad.any():
        example = s[bad].iloc[0]
        raise DataError(f"column '{column}', {_rows_text(_row_numbers(frame, bad))}: '{example}' is not a number; "
                        "fix the values or make the column categorical")
    inf = np.isinf(num)
    if inf.any():
        raise DataError(f"column '{column}', {_rows_text(_row_numbers(frame, inf))}: value is infinite; "
                        "replace it with a number or leave the cell empty")
    return num


def load_dataset(source: str | Path, *, workdir: Path | None = None, target: str | None = None,
                 task: str | None = None, overrides: dict[str, str] | None = None,
                 name: str | None = None) -> Dataset:
    """Resolve, read, detect roles, apply user choices and validate a dataset."""
    csv_path = resolve_source(source, workdir)
    frame = read_csv(csv_path)
    root = csv_path.parent
    cols = list(frame.columns)
    roles = detect_roles(frame, root)
    detected = next((c for c, r in roles.items() if r == "target"), None)
    overrides = dict(overrides or {})
    unknown = [c for c in list(overrides) + ([target] if target is not None else []) if c not in roles]
    if unknown:
        raise DataError(f"unknown column(s) {', '.join(map(repr, unknown))}; available: {', '.join(cols)}")
    for c, r in overrides.items():
        if r not in ROLES:
            raise DataError(f"column '{c}': unknown role '{r}'; use one of {', '.join(ROLES)}")
        roles[c] = r
    if target is not None:
        roles[target] = "target"
    targets = [c for c in cols if roles[c] == "target"]
    if len(targets) > 1 and detected in targets and overrides.get(detected) != "target":
        roles[detected] = _feature_role(frame[detected])  # the user's choice replaces the guess
        targets.remove(detected)
    if not targets:
        raise DataError(f"no target column; choose one of {', '.join(cols)}")
    if len(targets) > 1:
        raise DataError(f"several target columns ({', '.join(targets)}); keep one")
    tgt = targets[0]
    if task is None:
        task = detect_task(frame[tgt])
    if task not in TASKS:
        raise DataError(f"unknown task '{task}'; use classification or regression")
    if len([c for c in cols if roles[c] == "split"]) > 1:
        raise DataError("several split columns; keep one and set the others to ignore")

    missing = frame[tgt].map(_is_missing).to_numpy(dtype=bool)
    if missing.all():
        raise DataError(f"target column '{tgt}' is empty in every row; fill it in or choose another target")
    if missing.any():
        raise DataError(f"{_rows_text(_row_numbers(frame, missing))}: target '{tgt}' is empty; fill or drop them")
    classes: list[str] = []
    if task == "classification":
        vals = frame[tgt].map(label_text)
        uniq = vals.unique().tolist()
        num = pd.to_numeric(pd.Series(uniq), errors="coerce")
        # Numbers sort numerically ("2" before "10"), text alphabetically.
        classes = [uniq[i] for i in np.argsort(num.to_numpy(), kind="stable")] if num.notna().all() else sorted(uniq)
        if len(classes) < 2:
            raise DataError(f"target '{tgt}' has only one class ('{classes[0]}'); add rows of another class "
                            "or choose another target")
    else:
        if pd.api.types.is_bool_dtype(frame[tgt]):
            raise DataError(f"target '{tgt}' is true/false; use task classification")
        _numeric_column(frame[tgt], tgt, frame)
    for c in cols:
        if roles[c] in ("numeric", "categorical") and frame[c].map(_is_missing).all():
            # Only reachable by a user's override: detection already ignores empty columns.
            raise DataError(f"column '{c}' is empty in every row, so it cannot be a feature; "
                            "set its role to ignore or fill it in")
        if roles[c] == "numeric":
            _numeric_column(frame[c], c, frame)
        elif roles[c] == "split":
            checked_split_labels(frame, c)
    spec_cols = [c for c in cols if roles[c] in ("image", "numeric", "categorical")]
    if not spec_cols:
        raise DataError("no feature columns: every column is target, id or ignored; give some columns a role")
    names: dict[str, str] = {}
    for c in spec_cols:
        if input_name(c) in names:
            raise DataError(f"columns '{names[input_name(c)]}' and '{c}' differ only in punctuation or case; "
                            "rename one")
        names[input_name(c)] = c
    for c in (c for c in cols if roles[c] == "image"):
        _check_image_column(frame, root, c)
    if name is None:  # a zip extracts into a temporary folder: its own name is the useful one
        name = Path(source).stem if str(source).lower().endswith(".zip") else root.name
    return Dataset(name, csv_path, root, frame, roles, tgt, task, classes)


def _check_image_column(frame: pd.DataFrame, root: Path, column: str) -> None:
    """Paths must stay inside root and exist, and each file's header must be an image within the
    pixel limit (cheap: nothing is decoded; a file damaged after its header fails at decode time)."""
    missing: dict[str, list[int]] = {}
    for i, v in zip(frame.index, frame[column]):
        if _is_missing(v):
            continue  # an empty cell is allowed here; model_inputs decides (modality dropout)
        where = f"row {i + 1}, column '{column}'"
        p = resolve_image_path(root, v, where)
        if not p.is_file():
            missing.setdefault(str(v).strip(), []).append(i + 1)
            continue
        try:
            image_size(p, shown=str(v).strip())
        except DataError as e:
            raise DataError(f"{where}: {e}") from None
    if missing:
        rows = sorted(r for rs in missing.values() for r in rs)
        shown = "; ".join(f"row {rs[0]}: '{p}'" for p, rs in list(missing.items())[:3])
        raise DataError(f"column '{column}': {len(rows)} image file(s) not found ({shown}); "
                        "add the files or fix the paths (relative to the CSV's folder)")


def checked_split_labels(frame: pd.DataFrame, column: str) -> pd.Series:
    """A split column's values as train/val/test; other values -> DataError naming their rows."""
    labels = _split_labels(frame[column])
    bad = labels.isna().to_numpy()
    if bad.any():
        example = frame[column][bad].iloc[0]
        raise DataError(f"column '{column}', {_rows_text(_row_numbers(frame, bad))}: split value '{example}' "
                        "is not train/val/test; fix it or set the column's role to ignore")
    return labels


# ---------------------------------------------------------------- splits and targets

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


def encode_target(values: pd.Series, task: str, classes: list[str]) -> np.ndarray:
    """int32 class indices (classification) or float32 values (regression)."""
    values = pd.Series(values)
    if task == "classification":
        lookup = {c: i for i, c in enumerate(classes)}
        text = values.map(label_text)
        bad = ~text.isin(lookup).to_numpy()
        if bad.any():
            frame = values.to_frame()
            raise DataError(f"{_rows_text(_row_numbers(frame, bad))}: label '{text[bad].iloc[0]}' is not one of "
                            f"the classes ({', '.join(classes)}); fix the label")
        return text.map(lookup).to_numpy(dtype=np.int32)
    return _numeric_column(values, str(values.name or "target"), values.to_frame()).astype(np.float32)


# ---------------------------------------------------------------- model inputs and report

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
            rows = _row_numbers(frame, np.ones(n, dtype=bool))
            for i in range(n):
                for c in spec.image_cols:
                    v = frame[c].iloc[i]
                    where = f"row {rows[i]}, column '{c}'"
                    if _is_missing(v):
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
        out[input_name(c)] = _numeric_column(frame[c], c, frame).astype(np.float32)
    for c in spec.categorical_cols:
        out[input_name(c)] = np.array([label_text(v) for v in frame[c]], dtype=str).reshape(n)
    return out


def _stats(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max())} if a.size else {}


def health_report(ds: Dataset) -> dict:
    """JSON-able summary: columns and roles, missing values, target balance, image sizes, duplicates."""
    f = ds.frame
    report: dict[str, Any] = {
        "name": ds.name, "rows": int(len(f)), "task": ds.task, "target": ds.target,
        "encoding": f.attrs.get("encoding"), "delimiter": f.attrs.get("delimiter"),
        "duplicate_rows": int(f.duplicated().sum()),
        "columns": [{"name": c, "role": ds.roles.get(c, "ignore"), "dtype": str(f[c].dtype),
                     "missing": int(f[c].map(_is_missing).sum()), "distinct": int(f[c].nunique())}
                    for c in f.columns],
    }
    report["missing"] = {c["name"]: c["missing"] for c in report["columns"]}
    y = f[ds.target]
    if ds.task == "classification":
        counts = y.map(label_text).value_counts()
        report["class_counts"] = {c: int(counts.get(c, 0)) for c in ds.classes}
    else:
        v = pd.to_numeric(y, errors="coerce")
        report["target_stats"] = {"min": float(v.min()), "mean": float(v.mean()), "max": float(v.max())}
    widths, heights, problems = [], [], []
    for c in ds.features.image_cols:
        vals = [v for v in f[c] if not _is_missing(v)]
        for v in [vals[int(i)] for i in np.unique(np.linspace(0, len(vals) - 1, min(50, len(vals))).astype(int))]:
            try:
                with Image.open(resolve_image_path(ds.root, v)) as img:  # header only: cheap
                    widths.append(img.size[0])
                    heights.append(img.size[1])
            except Exception as e:  # report, don't fail: this is a diagnosis page
                problems.append(str(e) if isinstance(e, DataError) else f"image '{v}' could not be read")
    report["images"] = {"sampled": len(widths), "width": _stats(widths), "height": _stats(heights),
                        "problems": problems}
    return report
