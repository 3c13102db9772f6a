"""Widgets that show a run on the Results, Explain and What-if pages: its headline metrics, a row's images,
Grad-CAM overlays, a grid of columns, and the unit an explanation's numbers are in.

Choosing the run and the row is in run_picker.py; the figures are in figures.py.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from multimodal.app import state
from multimodal.data.cells import resolve_image_path
from multimodal.data.dataset import Dataset
from multimodal.data.images import load_image
from multimodal.explain.attributions import upsample_overlay
from multimodal.runs.evaluation import Evaluation
from multimodal.runs.headline import headline_metrics, record_evaluation
from multimodal.runs.run import Run


def headline(run_dir: Path, run: Run, dataset: Dataset, ev: Evaluation) -> dict:
    """The run's headline metrics on Results: its evaluation record (runs/headline.py), the numbers the
    Train page, the model card and the CLI show. Evaluated on another dataset than its own, the
    metrics are that evaluation's, not recorded. A shipped sample run's folder stays read-only."""
    record = headline_metrics(run, dataset, ev, write=not state.is_pretrained(run_dir))
    if record.get("dataset") == dataset.name and record.get("dataset_rows") == len(dataset.frame):
        return record
    return record_evaluation(run, ev, dataset, write=False)


def output_unit(run: Run, target: str | None = None) -> str:
    """What an explanation's numbers are in: 'logit of class X' or 'price (target units)'."""
    if run.task == "regression":
        return f"{run.config.get('target', 'target')} (target units)"
    return f"logit of class {target}" if target else "logit"


def slice_columns(dataset: Dataset) -> list[str]:
    """Columns worth slicing by: features and other non-image, non-target columns (not ids)."""
    return [c for c in dataset.frame.columns
            if dataset.roles.get(c) in ("numeric", "categorical", "ignore", "split")]


# ---------------------------------------------------------------- a row's images

def row_image_paths(dataset: Dataset, run: Run, row: int) -> list[Path]:
    """Image file(s) of a dataset row, in the order of the run's image columns."""
    return [resolve_image_path(dataset.root, dataset.frame.at[row, c], f"row {row}, column '{c}'")
            for c in run.spec.image_cols]


def load_row_images(dataset: Dataset, run: Run, row: int) -> np.ndarray:
    """uint8 (T, S, S, 3) images of a row at the run's image size."""
    return np.stack([load_image(p, run.image_size) for p in row_image_paths(dataset, run, row)])


def grad_cam_overlays(cam: np.ndarray, images: np.ndarray) -> list[np.ndarray]:
    """One RGB overlay per frame: cam (T, h, w) maps in [0, 1] on images (T, S, S, 3)."""
    return [upsample_overlay(cam[t], images[t]) for t in range(len(images))]


def grad_cam_section(cam: np.ndarray, images: np.ndarray, names: list[str], unit: str) -> None:
    """Each frame next to its Grad-CAM overlay, with a plain note when the map is zero everywhere."""
    overlays = grad_cam_overlays(cam, images)
    # One image: the overlay beside it. Several frames: frames in one row, their maps below.
    frames, maps = st.columns(2) if len(names) == 1 else (st.container(), st.container())
    frames.image(list(images), width=180, caption=list(names), alt=[f"Input image {n}" for n in names])
    maps.image(overlays, width=180, caption=[f"Grad-CAM {n}" for n in names],
               alt=[f"Grad-CAM heat map over image {n}: the regions that raise the output" for n in names])
    vanished = [n for n, m in zip(names, cam) if not np.any(m > 0)]
    if vanished:
        st.caption(f"Grad-CAM is zero everywhere for {', '.join(vanished)}: no region of the image raises the "
                   f"{unit} (the image lowers it here, or the map vanished), so the overlay shows no hot spot.")


def grid(n: int, per_row: int = 4) -> Iterator[DeltaGenerator]:
    """Columns for n items, per_row at a time (yields one column per item)."""
    for start in range(0, n, per_row):
        cols = st.columns(per_row)
        for i in range(min(per_row, n - start)):
            yield cols[i]
