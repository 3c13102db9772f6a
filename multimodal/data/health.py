"""The Data page's health report of a dataset: roles, missing values, balance, image sizes.

Streamlit-free and TensorFlow-free.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from multimodal.core.errors import DataError
from multimodal.data.cells import is_missing, label_text, resolve_image_path
from multimodal.data.dataset import Dataset


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
                     "missing": int(f[c].map(is_missing).sum()), "distinct": int(f[c].nunique())}
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
        vals = [v for v in f[c] if not is_missing(v)]
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
