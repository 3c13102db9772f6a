"""The Fusion Playground's generator: a seeded dataset whose signal sits where the knobs say.

Two latent variables per row: z_image, drawn in the picture as the colour of a disc (red for high,
blue for low; its position and size are nuisance), and z_table, which the table carries exactly as
`reading + grade effect` (a number and a category; either alone shows only part of it). The
redundancy knob r makes z_table = r z_image + sqrt(1 - r^2) u. The generator's score is

    s(z_image, z_table) = image * z_image + table * z_table + interaction * z_image * z_table

(knob names), cut at its quantiles into balanced classes (two classes with only the interaction:
the XOR of the two signs), or scaled into a regression target; label noise, blank cells, blank
pictures and distractor columns are added after. Knobs: playground_knobs.py.

Ground truth (docs/ARCHITECTURE.md, "The Fusion Playground"): `truth_table` is the coalition table
of s exactly as the models' branch Shapley values are (docs/ARCHITECTURE.md, "Explanations"): a
branch absent = its latent taken from a background row, the same row for every absent branch,
averaged over the background rows. The oracle scores each coalition's value as a predictor.
Streamlit-free and TensorFlow-free.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from multimodal.data.playground_knobs import KNOBS, MAX_DISTRACTORS

LATENTS_FILE = "latents.npz"       # z_image, z_table, score: the ground truth, beside data.csv
SETTINGS_FILE = "playground.json"  # the knobs and the oracle
GRADES = np.array(["A", "B", "C", "D"])
GRADE_EFFECT = np.array([-0.9, -0.3, 0.3, 0.9])
BACKGROUND = 64                    # background rows of the truth (as runs/run.py's background)
COALITIONS = ("none", "image", "table", "both")   # bit 0 = image, bit 1 = table (explain/shapley.py's order)


def latents(knobs: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, r = int(knobs["rows"]), float(knobs["redundancy"])
    z_image = rng.standard_normal(n)
    z_table = r * z_image + np.sqrt(max(0.0, 1 - r * r)) * rng.standard_normal(n)
    return {"z_image": z_image, "z_table": z_table, "score": score(knobs, z_image, z_table)}


def score(knobs: dict, z_image: np.ndarray, z_table: np.ndarray) -> np.ndarray:
    """The generator's score function (its own 'model'), on the two latents."""
    return (float(knobs["image"]) * z_image + float(knobs["table"]) * z_table
            + float(knobs["interaction"]) * z_image * z_table)


def class_edges(knobs: dict, s: np.ndarray) -> np.ndarray:
    """The score's cut points into balanced classes (its quantiles)."""
    k = int(knobs["classes"])
    return np.quantile(s, np.arange(1, k) / k)


def labels_from_score(knobs: dict, s: np.ndarray, edges: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
    """Classification: class index of each score; regression: the target (50 + 10 standardized score)."""
    if knobs["task"] == "classification":
        return np.searchsorted(edges, s, side="right")
    return 50.0 + 10.0 * s + (0.0 if noise is None else noise)


def _draw(size: int, z_image: np.ndarray, blank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, size, size, 3) uint8: grey noise and, unless blank, a disc whose colour is z_image."""
    n = len(z_image)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    centre = rng.uniform(0.35, 0.65, (n, 2)) * size
    radius = rng.uniform(0.2, 0.32, n) * size
    inside = (yy[None] - centre[:, 0, None, None]) ** 2 + (xx[None] - centre[:, 1, None, None]) ** 2 \
        <= radius[:, None, None] ** 2
    inside &= ~blank[:, None, None]
    t = np.tanh(z_image / 1.2)
    colour = np.stack([128 + 100 * t, np.full(n, 90.0), 128 - 100 * t], axis=1)   # red high, blue low
    images = 110.0 + rng.normal(0.0, 12.0, (n, size, size, 1))
    images = np.where(inside[..., None], colour[:, None, None, :], images)
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


def _blank_cells(values: pd.Series, share: float, rng: np.random.Generator) -> pd.Series:
    return values.mask(rng.random(len(values)) < share) if share > 0 else values


def generate_frame(knobs: dict) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """(the table, the pictures (n, S, S, 3), the latents) for a full knob setting."""
    rng = np.random.default_rng(int(knobs["seed"]))
    lat = latents(knobs, rng)
    n, size = int(knobs["rows"]), int(knobs["image_size"])
    grade = rng.integers(0, len(GRADES), n)
    reading = lat["z_table"] - GRADE_EFFECT[grade]   # reading + grade effect = z_table exactly
    s = lat["score"]
    spread = float(s.std()) or 1.0
    noise = rng.random(n) < float(knobs["label_noise"])
    if knobs["task"] == "classification":
        y = labels_from_score(knobs, s, class_edges(knobs, s))
        y = np.where(noise, rng.integers(0, int(knobs["classes"]), n), y)
        target = ("label", np.array([f"class_{i}" for i in range(int(knobs["classes"]))])[y])
    else:
        extra = 10.0 * spread * 2.0 * float(knobs["label_noise"]) * rng.standard_normal(n)
        target = ("target", np.round(labels_from_score(knobs, s / spread, np.array([]), extra / spread), 3))
    blank = rng.random(n) < float(knobs["missing_images"])
    images = _draw(size, lat["z_image"], blank, rng)
    frame = pd.DataFrame({"id": np.arange(1, n + 1), "image": [f"images/{i:05d}.png" for i in range(1, n + 1)],
                          "reading": np.round(reading, 3), "grade": GRADES[grade]})
    for j in range(int(round(float(knobs["distractors"]) * MAX_DISTRACTORS))):
        frame[f"noise_{j + 1}"] = (np.round(rng.standard_normal(n), 3) if j % 2 == 0
                                   else np.array(["x", "y", "z"])[rng.integers(0, 3, n)])
    missing = float(knobs["missing_cells"])
    for col in [c for c in frame.columns if c not in ("id", "image")]:
        frame[col] = _blank_cells(frame[col], missing, rng)
    frame[target[0]] = target[1]
    return frame, images, {**lat, "image_blank": blank}


def background_rows(n: int, seed: int) -> np.ndarray:
    """The truth's background: BACKGROUND seeded rows (a run uses its own seeded training rows)."""
    return np.sort(np.random.default_rng([seed, 2]).choice(n, size=min(BACKGROUND, n), replace=False))


def truth_table(knobs: dict, lat: dict, rows: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(len(rows), 4) coalition values v(S) of the score, S in COALITIONS order: the absent latents
    from each background row (the same row for both), averaged over the background rows."""
    zi, zt = lat["z_image"], lat["z_table"]
    shape = (len(rows), len(background))
    row_i, row_t = zi[rows][:, None], zt[rows][:, None]
    bg_i, bg_t = zi[background][None, :], zt[background][None, :]

    def value(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return score(knobs, np.broadcast_to(a, shape), np.broadcast_to(b, shape)).mean(axis=1)
    return np.stack([value(bg_i, bg_t), value(row_i, bg_t), value(bg_i, row_t), value(row_i, row_t)], axis=1)


def oracle(knobs: dict, frame: pd.DataFrame, lat: dict) -> dict[str, float]:
    """The score of the generator's own predictor knowing only image / only table / both latents
    (its coalition value, cut at the class edges) against the noisy labels, and chance.
    Accuracy for classification, R^2 for regression."""
    n = len(frame)
    table = truth_table(knobs, lat, np.arange(n), background_rows(n, int(knobs["seed"])))
    if knobs["task"] == "classification":
        classes = sorted(frame["label"].unique())
        y = frame["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        edges = class_edges(knobs, lat["score"])
        got = {name: float(np.mean(labels_from_score(knobs, table[:, i], edges) == y))
               for i, name in enumerate(COALITIONS) if i}
        return {**got, "chance": float(np.bincount(y).max() / n)}
    y = frame["target"].to_numpy(float)
    spread = float(lat["score"].std()) or 1.0

    def r2(pred: np.ndarray) -> float:
        pred = labels_from_score(knobs, pred / spread, np.array([]))
        return float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
    return {**{name: r2(table[:, i]) for i, name in enumerate(COALITIONS) if i}, "chance": 0.0}


def write_playground(knobs: dict, out_dir: Path) -> Path:
    """Write data.csv, images/, latents.npz and playground.json into out_dir; return the CSV path.

    Written into a sibling temporary folder and renamed into place, so a stopped or failed write
    leaves no half-written dataset; an existing out_dir is replaced."""
    for name, knob in KNOBS.items():   # the library refuses what the UI and CLI would have dropped
        knob.parse(knobs[name])
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".playground-", dir=out_dir.parent))
    try:
        frame, images, lat = generate_frame(knobs)
        (tmp / "images").mkdir()
        for rel, picture in zip(frame["image"], images):
            Image.fromarray(picture).save(tmp / rel)
        frame.to_csv(tmp / "data.csv", index=False, lineterminator="\n")
        np.savez(tmp / LATENTS_FILE, **lat)
        (tmp / SETTINGS_FILE).write_text(json.dumps({"knobs": knobs, "oracle": oracle(knobs, frame, lat)}, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir / "data.csv"


def read_playground(folder: Path) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """(knobs, oracle, latents) of a written playground dataset."""
    settings = json.loads((Path(folder) / SETTINGS_FILE).read_text())
    with np.load(Path(folder) / LATENTS_FILE) as f:
        lat = {k: f[k] for k in f.files}
    return settings["knobs"], settings["oracle"], lat
