"""Data page helpers: saving uploads safely, loading into the session, image grid, roles, health.

`save_uploads` and `new_upload_dir` are Streamlit-free (tested directly); the rest draw widgets.
Uploads are written only under `state.session_dir()/uploads/<n>/`, and every DataError becomes
an `st.error` while the previous dataset stays active.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from multimodal.app import figures, state, workspace_view
from multimodal.app.figures import fmt_number
from multimodal.app.row_ids import row_name
from multimodal.core import limits
from multimodal.core.errors import DataError
from multimodal.core.tasks import TASKS
from multimodal.data import cells, images, sources
from multimodal.data.dataset import Dataset, load_dataset
from multimodal.data.roles import IMAGE_EXTENSIONS, ROLES

ERROR_KEY = "data_error"
AUTO_TASK = "auto"


def uploader_limit_mb() -> int:
    """Per-file limit for the uploader: ours, but never above Streamlit's server.maxUploadSize
    (the server refuses bigger files with a message that does not say what to do)."""
    return min(limits.MAX_UPLOAD_MB.get(), int(st.get_option("server.maxUploadSize")))


# ---------------------------------------------------------------- uploads (Streamlit-free)

def new_upload_dir(session_dir: Path) -> Path:
    """A fresh numbered folder `session_dir/uploads/<n>/`."""
    root = Path(session_dir) / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name) for p in root.iterdir() if p.name.isdigit()]
    folder = root / str(max(taken, default=0) + 1)
    folder.mkdir()
    return folder


def _size(f: Any) -> int:
    return int(getattr(f, "size", None) if getattr(f, "size", None) is not None else len(f.getvalue()))


def _safe_relative(value: Any) -> PurePosixPath | None:
    """The relative path a CSV cell names, or None when it is absolute or climbs out ('..')."""
    text = str(value).strip().replace("\\", "/")
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    return None if not parts or ".." in parts else PurePosixPath(*parts)


def save_uploads(files: Sequence[Any], dest: Path) -> Path:
    """Save uploaded files (objects with .name, .size and .getvalue()) into dest; return the source.

    Either one .zip (returned as is; load_dataset extracts it safely), or one CSV plus image
    files saved by their base name. When the CSV names an image by a relative path such as
    `images/x.png` and `x.png` was uploaded, the file is also placed at that path, so both
    spellings resolve. Everything is checked before anything is written.
    """
    if not files:
        raise DataError("no files uploaded; choose a .zip, or a CSV plus its images")
    total = sum(_size(f) for f in files)
    max_files, max_mb = limits.MAX_ZIP_MEMBERS.get(), limits.MAX_UPLOAD_MB.get()
    if len(files) > max_files:
        raise DataError(f"{len(files):,} files uploaded (limit {max_files:,}); zip the folder or use the "
                        f"command line for big datasets, or {limits.MAX_ZIP_MEMBERS.hint()}")
    if total > max_mb * 2**20:
        raise DataError(f"the upload is {total / 2**20:,.0f} MB (limit {max_mb:,} MB); use fewer or smaller "
                        "images, or the command line (python -m multimodal train), or "
                        f"{limits.MAX_UPLOAD_MB.hint()}")
    named: dict[str, Any] = {}
    for f in files:
        base = PurePosixPath(str(f.name).replace("\\", "/")).name
        if not base or base.startswith(".") or base in ("..",):
            raise DataError(f"file name '{f.name}' is not allowed; rename the file")
        if base in named:
            raise DataError(f"two uploaded files are named '{base}'; give every file a unique name")
        named[base] = f
    kinds = {n: Path(n).suffix.lower() for n in named}
    zips = [n for n, s in kinds.items() if s == ".zip"]
    csvs = [n for n, s in kinds.items() if s == ".csv"]
    images = [n for n, s in kinds.items() if s in IMAGE_EXTENSIONS]
    other = [n for n in named if n not in zips + csvs + images]
    if other:
        raise DataError(f"'{other[0]}' is not a CSV, zip or image ({', '.join(IMAGE_EXTENSIONS)}); remove it")
    if len(zips) > 1:
        raise DataError(f"{len(zips)} zip files uploaded ({', '.join(zips[:3])}); remove all but one")
    if zips and len(named) > 1:
        raise DataError("upload either one .zip of the dataset folder, or a CSV plus image files, not both; "
                        "remove the extra files")
    if not zips and len(csvs) != 1:
        raise DataError("no CSV uploaded; add the one CSV that lists the rows" if not csvs else
                        f"{len(csvs)} CSV files uploaded ({', '.join(csvs[:3])}); upload exactly one")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, f in named.items():
        (dest / name).write_bytes(f.getvalue())
    if zips:
        return dest / zips[0]
    csv_path = dest / csvs[0]
    _place_images(csv_path, dest, set(images))
    return csv_path


def _place_images(csv_path: Path, dest: Path, images: set[str]) -> None:
    """Recreate the relative paths the CSV mentions for uploaded images that match by base name."""
    try:
        frame = sources.read_csv(csv_path, min_rows=1)
    except DataError:
        return  # load_dataset reports the CSV problem with its own message
    root = dest.resolve()
    for column in frame.columns:
        if not (frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column])):
            continue
        for value in frame[column].dropna().unique():
            rel = _safe_relative(value)
            if rel is None or rel.name not in images or str(rel) == rel.name:
                continue
            target = (root / rel).resolve()
            if not target.is_relative_to(root) or target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(root / rel.name, target)  # same bytes, no second copy
            except OSError:
                shutil.copyfile(root / rel.name, target)


# ---------------------------------------------------------------- loading into the session

def load_into_session(source: str | Path, *, shown_source: str | None = None, **kwargs: Any) -> bool:
    """Load a dataset and make it the session's; on DataError keep the old one and record the message.
    A sample as it comes (no options) is the server's shared copy (state.sample_dataset)."""
    try:
        shared = not kwargs and isinstance(source, str) and source in sources.list_samples()
        ds = state.sample_dataset(source) if shared else load_dataset(source, **kwargs)
    except DataError as e:
        st.session_state[ERROR_KEY] = str(e)
        return False
    state.set_dataset(ds, shown_source or str(source))
    st.session_state.pop(ERROR_KEY, None)
    return True


def load_upload(files: Sequence[Any]) -> bool:
    """Save the uploaded files in a new session folder and load them; failed folders are removed."""
    folder = new_upload_dir(state.session_dir())
    try:
        workspace_view.check_quota(sum(_size(f) for f in files))   # the workspace's quota (core/limits.py)
        source = save_uploads(files, folder)
    except DataError as e:
        shutil.rmtree(folder, ignore_errors=True)
        st.session_state[ERROR_KEY] = str(e)
        return False
    name = Path(source).stem
    if load_into_session(source, shown_source=str(source), workdir=folder, name=name):
        return True
    shutil.rmtree(folder, ignore_errors=True)
    return False


def show_error() -> None:
    if msg := st.session_state.get(ERROR_KEY):
        st.error(f"**Could not load the data:** {msg}. The previous dataset is still active.",
                 icon=":material/error:")


# ---------------------------------------------------------------- image grid

def _label(ds: Dataset, value: Any) -> str:
    if ds.task == "classification":
        return cells.label_text(value)
    return fmt_number(float(value))


def _thumb(ds: Dataset, value: Any, size: int = 96) -> np.ndarray | None:
    """The cell's image, None for an empty cell; an unreadable file raises DataError."""
    if cells.is_missing(value):
        return None
    return images.load_image(cells.resolve_image_path(ds.root, value), size)


def grid_rows(ds: Dataset, n: int = 12) -> list[int]:
    """Row positions spread evenly over the dataset (so several classes show), deterministic."""
    return sorted({int(i) for i in np.linspace(0, len(ds.frame) - 1, min(n, len(ds.frame)))})


def image_grid(ds: Dataset, n: int = 12) -> None:
    """~n rows with their images (all frames for multi-image rows) and labels."""
    cols = ds.features.image_cols
    if not cols:
        st.info("This dataset has no image column (set a column's role to *image* to use the CNN branch).")
        return
    per_line = 6 if len(cols) == 1 else 3
    rows = grid_rows(ds, n)
    # Loading only checks image headers, so a file cut short shows up here first: say which.
    problems: list[str] = []
    for start in range(0, len(rows), per_line):
        for cell, i in zip(st.columns(per_line), rows[start:start + per_line]):
            row = ds.frame.iloc[i]
            thumbs = []
            for c in cols:
                try:
                    thumbs.append(_thumb(ds, row[c]))
                except DataError as e:
                    thumbs.append(None)
                    problems.append(f"{row_name(ds, i)}, column '{c}': {e}")
            shown = [t for t in thumbs if t is not None]
            if shown:
                cell.image(np.concatenate(shown, axis=1) if len(shown) > 1 else shown[0],
                           width="stretch", alt=f"{', '.join(cols)} of {row_name(ds, i)}")
            missing = len(thumbs) - len(shown)
            note = f" · {missing} image(s) missing" if missing else ""
            cell.caption(f"{row_name(ds, i)} · **{_label(ds, row[ds.target])}**{note}")
    for problem in problems[:5]:
        st.error(f"{problem}. Training would stop at this image.", icon=":material/broken_image:")


# ---------------------------------------------------------------- roles

def role_key(ds: Dataset, column: str) -> str:
    """Widget key tied to this dataset and its roles, so a reload shows fresh choices."""
    token = hashlib.sha1(f"{ds.csv_path}|{sorted(ds.roles.items())}|{ds.task}".encode()).hexdigest()[:8]
    return f"role_{token}_{column}"


def role_form(ds: Dataset) -> dict | None:
    """Role per column, target and task in one form; returns load_dataset kwargs when applied."""
    cols = list(ds.frame.columns)
    with st.form("roles_form"):
        st.caption("Roles decide what each column feeds: *image* -> CNN branch, *numeric* / *categorical* "
                   "-> tabular branch; *id*, *split* and *ignore* columns are not features.")
        grid = st.columns(4)
        chosen = {}
        for k, c in enumerate(cols):
            role = ds.roles.get(c, "ignore")
            chosen[c] = grid[k % 4].selectbox(c, ROLES, index=ROLES.index(role), key=role_key(ds, c))
        left, right = st.columns(2)
        target = left.selectbox("Target column (what to predict)", cols, index=cols.index(ds.target),
                                key=role_key(ds, "__target"))
        tasks = (AUTO_TASK, *TASKS)
        task = right.selectbox(f"Task (now: {ds.task})", tasks, key=role_key(ds, "__task"),
                               help="auto: text or few whole-number values -> classification, else regression")
        if not st.form_submit_button("Apply roles", icon=":material/check:"):
            return None
    overrides = {c: r for c, r in chosen.items() if r != "target" and c != target}
    # The user's "ordered" answer still holds while the image columns stay the same.
    same_images = [c for c in cols if overrides.get(c) == "image"] == ds.features.image_cols
    return {"overrides": overrides, "target": target, "task": None if task == AUTO_TASK else task,
            "ordered_images": ds.ordered_images and same_images}


def ordered_images_choice(ds: Dataset) -> None:
    """With 2+ image columns: are they one ordered sequence? Never guessed (three MRI views or
    photos of one object have no order); the method proposal reads the answer (models/proposal.py)."""
    cols = ds.features.image_cols
    if len(cols) < 2:
        return
    ordered = st.checkbox(
        f"These {len(cols)} image columns are an ordered sequence (frames in time)", value=ds.ordered_images,
        key=role_key(ds, "__ordered"),
        help=f"Tick when {', '.join(cols)} are frames, time points or slices in this column order: the Model page "
             "then proposes a sequence model (cnn_lstm). Unticked, they are separate views of each row, encoded "
             "by one shared CNN and averaged.")
    if ordered != ds.ordered_images:
        state.set_dataset(replace(ds, ordered_images=ordered), state.dataset_source() or ds.name)
        st.rerun()


# ---------------------------------------------------------------- health report

def _span(stats: dict) -> str:
    lo, mid, hi = (int(round(stats[k])) for k in ("min", "median", "max"))
    return f"{lo} px" if lo == hi else f"{lo}-{hi} px (median {mid})"


def health(ds: Dataset, report: dict) -> None:
    """Rows, missing values per column, class balance or target histogram, image sizes."""
    a, b, c, d = st.columns(4)
    a.metric("Rows", f"{report['rows']:,}")
    b.metric("Columns", len(report["columns"]))
    c.metric("Task", report["task"])
    d.metric("Duplicate rows", report["duplicate_rows"])
    left, right = st.columns(2)
    with left:
        st.markdown("**Columns and missing values**")
        table = pd.DataFrame(report["columns"]).rename(columns={"name": "column"})
        table["missing %"] = (100 * table["missing"] / max(report["rows"], 1)).round(1)
        st.dataframe(table, hide_index=True, width="stretch")
    with right:
        # Plain graph objects: plotly.express builds the same chart ~10x slower (0.3-0.5 s a visit).
        if ds.task == "classification":
            counts = report["class_counts"]
            fig = go.Figure(go.Bar(x=[str(c) for c in counts], y=list(counts.values()), text=list(counts.values())))
            fig.update_layout(title=f"Class balance of '{ds.target}'", xaxis_title="class", yaxis_title="rows")
            fig.update_xaxes(type="category")
            summary = f"Class balance of '{ds.target}', rows per class: " + ", ".join(
                f"{c} {n:,}" for c, n in counts.items()) + "."
        else:
            values = pd.to_numeric(ds.frame[ds.target], errors="coerce").dropna()
            fig = go.Figure(go.Histogram(x=ds.frame[ds.target], nbinsx=40))
            fig.update_layout(title=f"Distribution of '{ds.target}'", xaxis_title=ds.target, yaxis_title="rows")
            summary = (f"Distribution of '{ds.target}' over {len(values):,} rows: min {fmt_number(values.min())}, "
                       f"median {fmt_number(values.median())}, max {fmt_number(values.max())}.")
        fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10))
        figures.chart(fig, summary=summary)
    images = report["images"]
    if ds.features.image_cols:
        if images["sampled"]:
            st.markdown(f"**Image sizes** ({images['sampled']} images sampled): width {_span(images['width'])}, "
                        f"height {_span(images['height'])}. Images are resized to the model's image size "
                        "when training.")
        for problem in images["problems"][:5]:
            st.warning(problem, icon=":material/warning:")
    if report.get("encoding"):
        st.caption(f"CSV read as {report['encoding']} with delimiter {report['delimiter']!r}.")
