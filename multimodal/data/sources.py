"""Where a dataset comes from: a sample name, a folder, a .zip or a CSV, and reading that CSV.

Zips are extracted defensively (no absolute or '..' paths, no symlinks, bounded member count,
size and compression ratio) into the caller's work folder; CSVs are read whatever their
encoding, delimiter or line ends, with clear messages for what cannot be read.
"""
from __future__ import annotations

import csv
import io
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import pandas as pd

from multimodal.core import limits
from multimodal.core.errors import DataError

MIN_ROWS = 10
SAMPLE_ROOT = Path(__file__).resolve().parents[2] / "sample_data"


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
        return found[0].resolve()
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
        max_members, max_mb = limits.MAX_ZIP_MEMBERS.get(), limits.MAX_ZIP_MB.get()
        if len(infos) > max_members:
            raise DataError(f"'{zip_path.name}' has {len(infos):,} files (limit {max_members:,}); "
                            f"remove files or split the dataset, or {limits.MAX_ZIP_MEMBERS.hint()}")
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
            plan.append((info, rel))
        # The declared total first: for a bomb it is the more telling message.
        if total > max_mb * 2**20:
            raise DataError(f"'{zip_path.name}' unpacks to {total / 2**20:,.0f} MB (limit {max_mb:,} MB); "
                            f"use fewer or smaller images, or {limits.MAX_ZIP_MB.hint()}")
        for info, _ in plan:
            if info.file_size > 1_000_000 and info.file_size > limits.MAX_ZIP_RATIO * max(info.compress_size, 1):
                ratio = info.file_size // max(info.compress_size, 1)
                raise DataError(f"zip member '{info.filename}' in '{zip_path.name}' expands {ratio:,}x "
                                "(zip bomb?); re-create the zip normally")
        try:
            _write_members(zf, plan, dest.resolve(), zip_path.name, max_mb)
        except (OSError, zipfile.BadZipFile, NotImplementedError, EOFError) as e:
            raise DataError(f"'{zip_path.name}' could not be unpacked ({e}); re-create the zip") from None


def _write_members(zf: zipfile.ZipFile, plan: list, dest_res: Path, shown: str, max_mb: int) -> None:
    """Stream members into dest_res, counting real bytes (the sizes in the zip header can lie)."""
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
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > max_mb * 2**20:
                    raise DataError(f"'{shown}' unpacks to more than {max_mb:,} MB; use fewer or smaller "
                                    f"images, or {limits.MAX_ZIP_MB.hint()}")
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
        # Leave nothing half-extracted behind (and no empty temp folder we made ourselves).
        shutil.rmtree(dest if workdir is not None else base, ignore_errors=True)
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


def read_csv(path: Path, min_rows: int = MIN_ROWS) -> pd.DataFrame:
    """Read a CSV robustly (BOM, UTF-16, cp1252/latin-1 fallback, sniffed delimiter).

    frame.attrs gets 'encoding' and 'delimiter' so the UI can show what was assumed.
    min_rows: MIN_ROWS for training data; pass 1 for a CSV of rows to predict.
    At most limits.MAX_ROWS data rows (only one more is parsed to find out).
    """
    path = Path(path)
    max_rows = limits.MAX_ROWS.get()
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
        # index_col=False: a trailing delimiter on every data row must not turn column 1 into the index.
        frame = pd.read_csv(io.StringIO(text), sep=sep, index_col=False, nrows=max_rows + 1)
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
    if len(frame) > max_rows:
        raise DataError(f"'{path.name}' has more than {max_rows:,} data rows (the limit); use a sample of the "
                        f"rows, or {limits.MAX_ROWS.hint()}")
    if sep != ",":  # ';'-separated files usually use decimal commas ("1,5")
        for c in frame.columns:
            if pd.api.types.is_string_dtype(frame[c]) or frame[c].dtype == object:
                v = frame[c].dropna().astype(str).str.strip()
                if len(v) and v.str.fullmatch(r"-?\d+,\d+|-?\d+").all() and v.str.contains(",").any():
                    frame[c] = pd.to_numeric(frame[c].str.strip().str.replace(",", ".", regex=False))
    if len(frame) == 0:
        raise DataError(f"'{path.name}' has a header but no data rows; add rows")
    if len(frame) < min_rows:
        raise DataError(f"'{path.name}' has only {len(frame)} data rows; at least {min_rows} are needed, "
                        "add more rows")
    frame.attrs.update(encoding=enc, delimiter=sep)
    return frame
