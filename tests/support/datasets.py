"""Tiny image + table datasets written into a test's folder (test_data and the hostile corpus)."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
from PIL import Image

RED, BLUE = (255, 0, 0), (0, 0, 255)     # a malignant row's image is red, a benign one blue


def make_dataset(root: Path, n: int = 12, *, csv_name: str = "data.csv", rows: list[dict] | None = None,
                 image_col: str = "image_path") -> Path:
    """A tiny medical-like dataset: image_path, age, sex, target (+ 20x20 PNGs)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    if rows is None:
        rows = []
        for i in range(n):
            label = "malignant" if i % 3 == 0 else "benign"
            rows.append({image_col: f"img/{i}.png", "age": 30.5 + 1.25 * i,
                         "sex": "M" if i % 2 else "F", "target": label})
    for r in rows:
        v = r.get(image_col)
        if isinstance(v, str) and v.startswith("img/"):
            Image.new("RGB", (20, 20), RED if r.get("target") == "malignant" else BLUE).save(root / v)
    pd.DataFrame(rows).to_csv(root / csv_name, index=False)
    return root / csv_name


def med_rows(n=12):
    return [{"image_path": f"img/{i}.png", "age": 30.5 + i, "sex": "MF"[i % 2],
             "target": "malignant" if i % 3 == 0 else "benign"} for i in range(n)]


def zip_folder(folder: Path, out: Path, prefix: str = "ds/") -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in folder.rglob("*"):
            zf.write(p, prefix + str(p.relative_to(folder)))
    return out
