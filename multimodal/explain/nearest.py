"""The real-row side of counterfactuals, and the whole answer for one row (docs/ARCHITECTURE.md,
"Uncertainty and counterfactuals"): the nearest validation row the model predicts otherwise (the
What-If Tool's closest counterfactual), the row's image swapped for the nearest image of such a
row, and `counterfactual_report`, which adds the smallest edit (counterfactual.py) and is what the
CLI's `whatif --counterfactual` prints and the What-if page shows."""
from __future__ import annotations

import numpy as np
import pandas as pd

from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset
from multimodal.explain.counterfactual import (
    IMAGE_BRANCHES,
    Goal,
    RowPredictor,
    feature_space,
    smallest_edit,
    table_distances,
    unlocked_features,
)
from multimodal.models.assembly import encoders_of, select_inputs
from multimodal.runs.evaluation import Evaluation
from multimodal.runs.run import Run, predict, run_inputs


def image_branch(run: Run) -> str | None:
    return next((b for b in encoders_of(run.model) if b in IMAGE_BRANCHES), None)


def pooled_embeddings(run: Run, inputs: dict, batch: int = 128) -> np.ndarray | None:
    """(N, channels) image embeddings: the encoder's last conv map averaged over frames and space;
    None for a model without an image branch."""
    branch = image_branch(run)
    if branch is None:
        return None
    encoder = encoders_of(run.model)[branch]
    n = len(next(iter(inputs.values())))
    parts = []
    for start in range(0, n, batch):
        chunk = {k: v[start:start + batch] for k, v in inputs.items()}
        maps = np.asarray(encoder(select_inputs(encoder, chunk), training=False), dtype=np.float64)
        parts.append(maps.reshape(maps.shape[0], -1, maps.shape[-1]).mean(axis=1))
    return np.concatenate(parts)


def image_scale(embeddings: np.ndarray) -> float:
    """RMS distance of the validation embeddings to their mean: one 'image unit' of distance."""
    scale = float(np.sqrt(((embeddings - embeddings.mean(axis=0)) ** 2).sum(axis=1).mean()))
    return scale if scale > 0 else 1.0


def _others(goal: Goal, ev: Evaluation, row: int) -> np.ndarray:
    """Positions (in ev.rows) of validation rows, not the row itself, whose prediction reaches the goal."""
    return np.flatnonzero(goal.reached(ev.outputs) & (ev.rows != row))


def nearest_row(run: Run, ds: Dataset, ev: Evaluation, row: int, this: pd.Series, goal: Goal, space, row_embedding,
                embeddings) -> dict | None:
    """The validation row predicted otherwise at the smallest WIT distance (table + image)."""
    candidates = _others(goal, ev, row)
    if not candidates.size:
        return None
    columns = run.input_spec.tabular_cols
    others = ds.frame.iloc[ev.rows[candidates]]
    table = table_distances(space, this, others, columns)
    image = np.zeros(len(candidates))
    if embeddings is not None:
        image = np.linalg.norm(embeddings[candidates] - row_embedding, axis=1) / image_scale(embeddings)
    best = int(np.argmin(table + image))
    at = int(ev.rows[candidates[best]])
    differences = [{"column": c, "this row": space.cell(c, this[c]), "nearest row": space.cell(c, ds.frame.iloc[at][c])}
                   for c in columns if space.cost(c, this[c], ds.frame.iloc[at][c]) > 0]
    return {"row": at, "distance": float(table[best] + image[best]), "table_distance": float(table[best]),
            "image_distance": float(image[best]) if embeddings is not None else None,
            "prediction": goal.describe(ev.outputs[candidates[best]][None]), "differences": differences}


def image_swap(run: Run, ev: Evaluation, row: int, inputs: dict, goal: Goal, row_embedding, embeddings) -> dict | None:
    """The row with its image replaced by the nearest image of a validation row predicted otherwise
    (the table unchanged), re-predicted; None when no validation row is predicted otherwise."""
    candidates = _others(goal, ev, row)
    if not candidates.size:
        return None
    best = int(candidates[np.argmin(np.linalg.norm(embeddings[candidates] - row_embedding, axis=1))])
    swapped = {k: v.copy() for k, v in inputs.items()}
    swapped["images"] = ev.inputs["images"][best:best + 1].copy()
    outputs = predict(run, swapped)
    return {"row": int(ev.rows[best]), "prediction": goal.describe(outputs), "changed": bool(goal.reached(outputs)[0]),
            "image_distance": float(np.linalg.norm(embeddings[best] - row_embedding) / image_scale(embeddings))}


def counterfactual_report(run: Run, ds: Dataset, ev: Evaluation, row: int, locks: list[str] | tuple = (),
                          delta: float | None = None, swap_image: bool = True, edit: bool = True,
                          embeddings: np.ndarray | None = None, frame: pd.DataFrame | None = None,
                          inputs: dict | None = None) -> dict:
    """Everything for one row (a 0-based dataset position): its prediction, the nearest real row
    predicted otherwise, the smallest edit of the unlocked features and the image swap.
    ev: the run's Evaluation on its validation rows with their inputs kept. embeddings: the
    validation rows' pooled image embeddings when already computed (the app caches them).
    frame / inputs: the row as edited on the What-if page (1-row frame, raw inputs), else the dataset's."""
    if ev.split != "val":
        raise DataError(f"run '{run.name}' has no validation rows to search for counterfactuals; retrain it "
                        "with a validation fraction above 0")
    if ev.inputs is None:
        raise DataError("the evaluation kept no inputs; evaluate with keep_inputs=True")
    if not 0 <= row < len(ds.frame):
        raise DataError(f"row {row + 1} does not exist in '{ds.name}' ({len(ds.frame)} rows)")
    locks = list(locks)
    free = unlocked_features(run, locks) if edit else []
    frame = ds.frame.iloc[[row]] if frame is None else frame
    inputs = run_inputs(run, frame, ds.root) if inputs is None else inputs
    before = predict(run, inputs)
    goal = Goal(run, before, delta)
    space = feature_space(run, ds)
    if embeddings is None and image_branch(run):
        embeddings = pooled_embeddings(run, ev.inputs)
    row_embedding = pooled_embeddings(run, inputs)[0] if embeddings is not None else None
    report = {"row": row, "prediction": goal.describe(before), "locked": locks, "delta": delta,
              "nearest": nearest_row(run, ds, ev, row, frame.iloc[0], goal, space, row_embedding, embeddings)}
    if edit:
        report["edit"] = smallest_edit(run, frame.iloc[0], inputs, space, free, goal, RowPredictor(run, inputs))
    if swap_image:
        if embeddings is None:
            raise DataError("this model has no image branch (it reads only the table), so there is no image to "
                            "swap; drop the image swap")
        report["image_swap"] = image_swap(run, ev, row, inputs, goal, row_embedding, embeddings)
    return report
