"""Dataset loading, column roles, validation, splits and image decoding/caching.

Streamlit-free and TensorFlow-free: numpy, pandas and Pillow only, so pages that only show
data start fast. Every user-facing problem raises DataError with a message that names the
file, row (1-based CSV data row) or column and says what to do.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import threading
import warnings
import zipfile
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageOps


class DataError(ValueError):
    """User-facing data problem; the message names the file/row/column and what to do."""


MIN_ROWS = 10
MISSING_TOKEN = "(missing)"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ROLES = ("image", "numeric", "categorical", "id", "target", "split", "ignore")
TASKS = ("classification", "regression")
TARGET_NAMES = ("target", "label", "y", "class", "price", "diagnosis")
SPLIT_NAMES = ("split", "fold")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
MAX_CATEGORICAL_INTS = 10  # ints with at most this many distinct values are categories
SAMPLE_ROOT = Path(__file__).resolve().parent.parent / "sample_data"
MAX_ZIP_MEMBERS = 5000
MAX_ZIP_BYTES = 500 * 1024 * 1024
MAX_ZIP_RATIO = 200  # deflate rarely beats ~20x on real data; bombs reach 1000x
MAX_IMAGE_PIXELS = 50_000_000
_MEMORY_CACHE_BYTES = 256 * 1024 * 1024

# Our pixel limit is below Pillow's warning threshold, so a DecompressionBombWarning only ever
# fires for an image we reject anyway; turning it into an exception keeps the logs clean and
# lets load_image report it as a DataError (a warnings filter, unlike catch_warnings, is safe
# with the decoding threads).
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


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


def _to_str(v: Any) -> str:
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


# ---------------------------------------------------------------- sources and zips

def list_samples() -> list[str]:
    """Names of the sample datasets (folders under SAMPLE_ROOT holding a CSV)."""
    if not SAMPLE_ROOT.is_dir():
        return []
    return sorted(p.name for p in SAMPLE_ROOT.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")) and any(p.glob("*.csv")))


def _csvs_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() == ".csv" and not p.name.startswith("."))


def _find_csv(folder: Path, shown: str) -> Path:
    """The one CSV in folder (top level first, then one level down)."""
    found = _csvs_in(folder)
    if not found:
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and not sub.name.startswith(".") and sub.name != "__MACOSX":
                found += _csvs_in(sub)
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"'{shown}' holds no .csv file; add one CSV that lists the rows")
    names = ", ".join(str(p.relative_to(folder)) for p in found[:5])
    raise DataError(f"'{shown}' holds several CSV files ({names}); keep exactly one")


def _safe_member_path(name: str) -> PurePosixPath:
    """Reject absolute names, drive letters and '..' components; return the relative path."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise DataError(f"zip member '{name}' has an absolute path; re-create the zip from the folder")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DataError(f"zip member '{name}' points outside the folder ('..'); re-create the zip")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _extract_zip(zip_path: Path, dest: Path) -> None:
    """Validate every member first, then stream-extract with byte limits; never outside dest."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"'{zip_path.name}' is not a readable zip ({e}); re-create it") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise DataError(f"'{zip_path.name}' has {len(infos)} files (limit {MAX_ZIP_MEMBERS}); "
                            "split the dataset or remove files")
        total = 0
        plan = []
        for info in infos:
            rel = _safe_member_path(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise DataError(f"zip member '{info.filename}' is a symbolic link; "
                                "zip the real files instead")
            if info.flag_bits & 0x1:
                raise DataError(f"zip member '{info.filename}' is encrypted; use an unencrypted zip")
            if rel.parts and rel.parts[0] == "__MACOSX":
                continue  # macOS resource forks: never data
            total += info.file_size
            if info.file_size > 1_000_000 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
                raise DataError(f"zip member '{info.filename}' expands {info.file_size // max(info.compress_size, 1)}x "
                                "(zip bomb?); re-create the zip normally")
            plan.append((info, rel))
        if total > MAX_ZIP_BYTES:
            raise DataError(f"'{zip_path.name}' unpacks to {total / 2**20:.0f} MB "
                            f"(limit {MAX_ZIP_BYTES // 2**20} MB); use fewer or smaller images")
        dest_res = dest.resolve()
        written = 0
        for info, rel in plan:
            target = (dest_res / rel).resolve()
            if not target.is_relative_to(dest_res):  # defence in depth after the name checks
                raise DataError(f"zip member '{info.filename}' points outside the folder; re-create the zip")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                # Count real bytes: the sizes in the zip header can lie.
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_ZIP_BYTES:
                        raise DataError(f"'{zip_path.name}' unpacks to more than "
                                        f"{MAX_ZIP_BYTES // 2**20} MB; use fewer or smaller images")
                    out.write(chunk)


def resolve_source(source: str | Path, workdir: Path | None = None) -> Path:
    """Path of the one CSV for a sample name, folder, .zip (extracted safely) or .csv path."""
    path = Path(source)
    if not path.exists():
        if isinstance(source, str) and source in list_samples():
            return _find_csv(SAMPLE_ROOT / source, source)
        samples = ", ".join(list_samples()) or "none"
        raise DataError(f"'{source}' is not a file, folder or sample name (samples: {samples}); check the path")
    if path.is_dir():
        return _find_csv(path, path.name)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return path.resolve()
    if suffix != ".zip":
        raise DataError(f"'{path.name}' is neither a .csv nor a .zip; upload a CSV or a zip of the folder")
    base = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="mm_data_"))
    base.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(prefix="zip_", dir=base))  # fresh folder: uploads never collide
    try:
        _extract_zip(path, dest)
        return _find_csv(dest, path.name)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # leave nothing half-extracted behind
        raise


# ---------------------------------------------------------------- CSV reading

def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the header into >1 fields and most rows into the same count."""
    sample = text[:65536]
    truncated = len(text) > len(sample)
    best, best_score = ",", (-1.0, 0)
    for d in (",", ";", "\t", "|"):
        try:
            rows = [r for r in csv.reader(io.StringIO(sample), delimiter=d) if r][:50]
        except csv.Error:
            continue
        if truncated and len(rows) > 2:
            rows = rows[:-1]  # last row may be cut mid-way
        if not rows or len(rows[0]) < 2:
            continue
        same = sum(len(r) == len(rows[0]) for r in rows[1:]) / max(len(rows) - 1, 1)
        if (same, len(rows[0])) > best_score:
            best, best_score = d, (same, len(rows[0]))
    return best


def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV robustly (BOM, UTF-16, cp1252/latin-1 fallback, sniffed delimiter).

    frame.attrs gets 'encoding' and 'delimiter' so the UI can show what was assumed.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read '{path.name}' ({e.strerror}); check the file") from None
    if not raw.strip():
        raise DataError(f"'{path.name}' is empty; upload a CSV with a header row and data rows")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text, enc = raw.decode("utf-16"), "utf-16"
    elif b"\x00" in raw[:65536]:
        raise DataError(f"'{path.name}' is binary, not a text CSV; export it as CSV (UTF-8)")
    else:
        for enc in ("utf-8-sig", "cp1252", "latin-1"):  # latin-1 decodes any byte: last resort
            try:
                text = raw.decode(enc)
                break
            except UnicodeDecodeError:
                continue
    sep = _sniff_delimiter(text)
    header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise DataError(f"'{path.name}': duplicate column name(s) {', '.join(repr(d) for d in dupes)}; "
                        "rename them so each header is unique")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep)
    except pd.errors.EmptyDataError:
        raise DataError(f"'{path.name}' has no header row; add one") from None
    except (pd.errors.ParserError, ValueError) as e:
        raise DataError(f"'{path.name}' could not be parsed ({str(e).strip()}); "
                        "check the delimiter and quotes on that line") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    # Excel often leaves fully empty rows at the end; drop only trailing ones so row numbers stay right.
    empty = frame.isna().all(axis=1).to_numpy()
    n = len(frame)
    while n and empty[n - 1]:
        n -= 1
    frame = frame.iloc[:n].reset_index(drop=True)
    if sep != ",":  # ';'-separated files usually use decimal commas ("1,5")
        for c in frame.columns:
            if _is_stringish(frame[c]):
                v = frame[c].dropna().astype(str).str.strip()
                if len(v) and v.str.fullmatch(r"-?\d+,\d+|-?\d+").all() and v.str.contains(",").any():
                    frame[c] = pd.to_numeric(frame[c].str.strip().str.replace(",", ".", regex=False))
    if len(frame) == 0:
        raise DataError(f"'{path.name}' has a header but no data rows; add rows")
    if len(frame) < MIN_ROWS:
        raise DataError(f"'{path.name}' has only {len(frame)} data rows; at least {MIN_ROWS} are needed, "
                        "add more rows")
    frame.attrs.update(encoding=enc, delimiter=sep)
    return frame
