"""A loaded, validated dataset: its CSV, folder, column roles, target, task and classes.

Reading sources (folders, zips, CSVs) lives in sources.py, role detection in roles.py and cell
meanings in cells.py. Streamlit-free and TensorFlow-free, so pages that only show data start fast.
Every user-facing problem raises DataError with a message that names the file, row (1-based CSV
data row) or column and says what to do.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from multimodal.core.config import TrainConfig
from multimodal.core.errors import DataError
from multimodal.core.tasks import TASKS
from multimodal.data.cells import is_missing, label_text, missing_mask, numeric_column, resolve_image_path, row_numbers, rows_text
from multimodal.data.images import image_size
from multimodal.data.inputs import FeatureSpec, input_name
from multimodal.data.roles import ROLES, checked_split_labels, detect_roles, detect_task, feature_role
from multimodal.data.sources import read_csv, resolve_source


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
    ordered_images: bool = False   # the user says the image columns are frames in time (FeatureSpec)

    @property
    def features(self) -> FeatureSpec:
        by = lambda role: [c for c in self.frame.columns if self.roles.get(c) == role]  # noqa: E731
        images = by("image")
        return FeatureSpec(images, by("numeric"), by("categorical"), self.ordered_images and len(images) > 1)

    @property
    def split_col(self) -> str | None:
        return next((c for c in self.frame.columns if self.roles.get(c) == "split"), None)

    @property
    def id_col(self) -> str | None:
        """The id column (the first with the role 'id') that names rows, if any."""
        return next((c for c in self.frame.columns if self.roles.get(c) == "id"), None)


def load_dataset(source: str | Path, *, workdir: Path | None = None, target: str | None = None,
                 task: str | None = None, overrides: dict[str, str] | None = None,
                 name: str | None = None, ordered_images: bool = False) -> Dataset:
    """Resolve, read, detect roles, apply user choices and validate a dataset.

    ordered_images: the user's word that the image columns are an ordered sequence (it holds only
    with 2+ image columns; see Dataset.features)."""
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
        roles[detected] = feature_role(frame[detected])  # the user's choice replaces the guess
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

    missing = missing_mask(frame[tgt])
    if missing.all():
        raise DataError(f"target column '{tgt}' is empty in every row; fill it in or choose another target")
    if missing.any():
        raise DataError(f"{rows_text(row_numbers(frame, missing))}: target '{tgt}' is empty; fill or drop them")
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
        numeric_column(frame[tgt], tgt, frame)
    for c in cols:
        if roles[c] in ("numeric", "categorical") and missing_mask(frame[c]).all():
            # Only reachable by a user's override: detection already ignores empty columns.
            raise DataError(f"column '{c}' is empty in every row, so it cannot be a feature; "
                            "set its role to ignore or fill it in")
        if roles[c] == "numeric":
            numeric_column(frame[c], c, frame)
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
    return Dataset(name, csv_path, root, frame, roles, tgt, task, classes, ordered_images)


def load_dataset_for(config: TrainConfig | Mapping, workdir: Path | None = None) -> Dataset:
    """The dataset a training config (or its saved dict: config.json, a worker's copy) describes:
    its source, target, task, role overrides and ordered images."""
    c = config.to_dict() if isinstance(config, TrainConfig) else config
    return load_dataset(c["data"], workdir=Path(workdir) if workdir else None, target=c.get("target"),
                        task=c.get("task"), overrides=c.get("overrides"), ordered_images=bool(c.get("ordered_images")))


def _check_image_column(frame: pd.DataFrame, root: Path, column: str) -> None:
    """Paths must stay inside root and exist, and each file's header must be an image within the
    pixel limit (cheap: nothing is decoded; a file damaged after its header fails at decode time)."""
    missing: dict[str, list[int]] = {}
    for i, v in zip(frame.index, frame[column]):
        if is_missing(v):
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

