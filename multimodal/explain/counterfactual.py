"""Counterfactuals for one row (docs/ARCHITECTURE.md, "Uncertainty and counterfactuals"): the
nearest real validation row with another prediction, the smallest edit of the unlocked table
features that changes the prediction, and the row's image swapped for the nearest real image of a
row predicted otherwise.

Distances follow the What-If Tool: a numeric feature costs |a - b| / (its training standard
deviation), a categorical one 1 when the values differ, a missing value against a present one 1.
Images compare on the image encoder's pooled embedding (the last conv map averaged over space and
frames), divided by the validation rows' RMS distance to their mean embedding, so one image
counts about as much as one feature.

The edit search tries candidate values (numeric: a grid over the feature's training range;
categorical: its training vocabulary) in batched model calls: all single edits in one call, then a
beam of the most promising partial edits grows one feature per call, keeping only edits cheaper than
the best change found. A numeric change is then pulled back toward the original value as far as the
prediction stays changed. Locked features never change; every reported edit is re-predicted with
the full model (`verified`). Classification: the predicted class changes (to any other class);
regression: the prediction moves by at least `delta` in its direction.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from multimodal.core.errors import DataError
from multimodal.data.cells import MISSING_TOKEN, label_text
from multimodal.data.dataset import Dataset
from multimodal.data.inputs import input_name
from multimodal.explain.attributions import compiled
from multimodal.models.assembly import encoders_of, select_inputs
from multimodal.runs.run import Run, predict, probabilities

NUMERIC_STEPS = 24      # candidate values per numeric feature over its training range
BEAM = 8                # partial edits kept per search step
MAX_FEATURES = 4        # the most features one edit changes
REFINE_STEPS = 16       # values tried between the original and the found value of a numeric change
CHUNK = 1024            # rows per model call
IMAGE_BRANCHES = ("image", "sequence")


# ---------------------------------------------------------------- rows and locks

def find_row(ds: Dataset, text: str) -> int:
    """The 0-based position of the row a user names: its id when the dataset has an id column, else
    its 1-based row number (as every page names rows)."""
    column = ds.id_col
    if column:
        hits = np.flatnonzero(ds.frame[column].map(label_text).to_numpy() == str(text).strip())
        if hits.size:
            return int(hits[0])
        raise DataError(f"row {column} '{text}' does not exist in '{ds.name}'; give a value of its '{column}' column "
                        f"(e.g. {label_text(ds.frame[column].iloc[0])})")
    if str(text).strip().isdigit() and 1 <= int(text) <= len(ds.frame):
        return int(text) - 1
    raise DataError(f"row '{text}' does not exist in '{ds.name}'; give a row number from 1 to {len(ds.frame)}")


def unlocked_features(run: Run, locks: list[str]) -> list[str]:
    """The model's table features that may change; a clear error for an unknown or total lock."""
    features = run.input_spec.tabular_cols
    if not features:
        raise DataError("this model reads no table column, so there is no feature to edit; try the image swap")
    unknown = [c for c in locks if c not in features]
    if unknown:
        raise DataError(f"locked feature(s) {', '.join(map(repr, unknown))} are not columns this model reads; "
                        f"choose from {', '.join(features)}")
    free = [c for c in features if c not in locks]
    if not free:
        raise DataError(f"every feature is locked ({', '.join(features)}), so nothing may change; unlock at least one")
    return free


# ---------------------------------------------------------------- the feature space

@dataclass(frozen=True)
class Space:
    """What each table feature may become and what changing it costs."""
    ranges: dict[str, tuple[float, float]]     # numeric: training (min, max)
    stds: dict[str, float]                     # numeric: training standard deviation
    integer: dict[str, bool]                   # numeric: only whole numbers in training
    vocab: dict[str, list[str]]                # categorical: training values (no missing token)

    def candidates(self, column: str) -> list:
        if column in self.vocab:
            return list(self.vocab[column])
        lo, hi = self.ranges[column]
        grid = np.linspace(lo, hi, NUMERIC_STEPS)
        return list(np.unique(np.round(grid)) if self.integer[column] else grid)

    def cell(self, column: str, value):
        """A JSON-ready value of a feature: None for missing, its text (categorical) or a float."""
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        return label_text(value) if column in self.vocab else float(value)

    def cost(self, column: str, before, after) -> float:
        if column in self.vocab:
            return 0.0 if label_text(before) == label_text(after) else 1.0
        if pd.isna(before) or pd.isna(after):
            return 0.0 if pd.isna(before) and pd.isna(after) else 1.0
        return abs(float(after) - float(before)) / self.stds[column]


def training_rows(run: Run, dataset: Dataset) -> np.ndarray:
    rows = np.asarray(run.config.get("splits", {}).get("train", []), dtype=np.int64)
    rows = rows[rows < len(dataset.frame)]
    return rows if rows.size else np.arange(len(dataset.frame))


def feature_range(run: Run, dataset: Dataset, column: str) -> tuple[float, float]:
    """(min, max) of a numeric column over the run's training rows."""
    values = pd.to_numeric(dataset.frame[column].iloc[training_rows(run, dataset)], errors="coerce").dropna()
    if values.empty:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def feature_space(run: Run, dataset: Dataset) -> Space:
    spec, stats = run.input_spec, run.config.get("tabular_stats", {})
    train = dataset.frame.iloc[training_rows(run, dataset)]
    ranges, stds, integer = {}, {}, {}
    for c in spec.numeric_cols:
        values = pd.to_numeric(train[c], errors="coerce").dropna()
        ranges[c] = feature_range(run, dataset, c)
        std = float(values.std()) if len(values) > 1 else 0.0
        stds[c] = std if std > 0 else 1.0
        integer[c] = bool(len(values)) and bool(np.all(np.equal(np.mod(values, 1), 0)))
    vocab = {c: [v for v in stats.get("categorical", {}).get(c, sorted(train[c].map(label_text).unique()))
                 if v != MISSING_TOKEN] for c in spec.categorical_cols}
    return Space(ranges, stds, integer, vocab)


def table_distances(space: Space, row: pd.Series, others: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """WIT's distance from one row to each of `others` over `columns`."""
    total = np.zeros(len(others))
    for c in columns:
        total += np.array([space.cost(c, row[c], v) for v in others[c]])
    return total


# ---------------------------------------------------------------- fast batched predictions

class RowPredictor:
    """Outputs of one row with table features replaced, batched: the row's other branches are
    encoded once, only the table encoder and the head run per call."""

    def __init__(self, run: Run, inputs: dict[str, np.ndarray]):
        self.run, self.inputs, self.calls, self.rows = run, inputs, 0, 0
        self.encoders = encoders_of(run.model)
        fixed = {b: e for b, e in self.encoders.items() if b != "tabular"}
        self.fixed = {b: np.asarray(e(select_inputs(e, inputs), training=False)) for b, e in fixed.items()}
        self.head = compiled(run.model)["head"] if "tabular" in self.encoders else None

    def __call__(self, changes: list[dict]) -> np.ndarray:
        """(len(changes), units) outputs, one row per {column: new value}."""
        out = []
        for start in range(0, len(changes), CHUNK):
            part = changes[start:start + CHUNK]
            batch = {k: np.repeat(_editable(v[:1]), len(part), axis=0) for k, v in self.inputs.items() if k != "images"}
            for i, change in enumerate(part):
                for column, value in change.items():
                    name = input_name(column)
                    batch[name][i] = value if batch[name].dtype == object else np.float32(value)
            tab = self.encoders["tabular"]
            emb = {"tabular": tab(select_inputs(tab, batch), training=False),
                   **{b: np.repeat(e, len(part), axis=0) for b, e in self.fixed.items()}}
            out.append(np.asarray(self.head(emb)))
            self.calls, self.rows = self.calls + 1, self.rows + len(part)
        return np.concatenate(out).astype(np.float64)


def _classes(run: Run, outputs: np.ndarray) -> np.ndarray:
    return probabilities(outputs, len(run.classes)).argmax(axis=1)


class Goal:
    """What counts as a changed prediction, and how close a non-changed one came."""

    def __init__(self, run: Run, before: np.ndarray, delta: float | None):
        self.run, self.before = run, before
        self.regression = run.task == "regression"
        if self.regression and not delta:
            raise DataError("a regression counterfactual needs the change of the prediction to reach "
                            "(delta, in target units, not 0)")
        self.delta = float(delta or 0.0)
        self.start = float(before[0, 0]) if self.regression else int(_classes(run, before)[0])

    def reached(self, outputs: np.ndarray) -> np.ndarray:
        if self.regression:
            return (outputs[:, 0] - self.start) * np.sign(self.delta) >= abs(self.delta)
        return _classes(self.run, outputs) != self.start

    def gap(self, outputs: np.ndarray) -> np.ndarray:
        """Lower is closer to the goal."""
        if self.regression:
            return -(outputs[:, 0] - self.start) * np.sign(self.delta)
        probs = probabilities(outputs, len(self.run.classes))
        others = np.delete(probs, self.start, axis=1).max(axis=1)
        return probs[:, self.start] - others

    def describe(self, outputs: np.ndarray):
        if self.regression:
            return float(outputs[0, 0])
        return self.run.classes[int(_classes(self.run, outputs[:1])[0])]


# ---------------------------------------------------------------- the smallest edit

def smallest_edit(run: Run, row: pd.Series, inputs: dict, space: Space, free: list[str], goal: Goal,
                  predictor: RowPredictor | None = None) -> dict:
    """The cheapest found change of `free` features that reaches the goal (see the module docstring)."""
    started = time.perf_counter()
    predictor = predictor or RowPredictor(run, inputs)
    options = {c: [v for v in space.candidates(c) if space.cost(c, row[c], v) > 0] for c in free}
    states: list[tuple[float, dict]] = [(0.0, {})]
    best: tuple[float, dict] | None = None
    closest = None
    for _ in range(min(len(free), MAX_FEATURES)):
        grown = [(cost + space.cost(c, row[c], v), {**change, c: v})
                 for cost, change in states for c in free if c not in change for v in options[c]]
        grown = [s for s in grown if best is None or s[0] < best[0]]
        if not grown:
            break
        outputs = predictor([change for _, change in grown])
        done, gap = goal.reached(outputs), goal.gap(outputs)
        for i in np.flatnonzero(done):
            if best is None or grown[i][0] < best[0]:
                best = grown[i]
        closest = float(gap.min()) if closest is None else min(closest, float(gap.min()))
        keep = [i for i in np.lexsort(([s[0] for s in grown], gap)) if not done[i]][:BEAM]
        states = [grown[i] for i in keep]
    result = {"found": best is not None, "changes": [], "cost": None, "prediction": None, "verified": False}
    if best is not None:
        change = _refine(row, best[1], space, goal, predictor)
        outputs = predict(run, _apply(inputs, change))             # the real model, every input
        result.update(changes=[{"column": c, "before": space.cell(c, row[c]), "after": space.cell(c, v)}
                               for c, v in change.items()],
                      cost=float(sum(space.cost(c, row[c], v) for c, v in change.items())),
                      prediction=goal.describe(outputs), verified=bool(goal.reached(outputs)[0]))
    elif goal.regression:
        moved = -closest * np.sign(goal.delta) if closest is not None else 0.0
        raise DataError(f"no edit of {', '.join(free)} within their training ranges moves the predicted "
                        f"{run.config.get('target', 'target')} by {goal.delta:+,.4g} (the largest move found is "
                        f"{moved:+,.4g}); ask for a smaller change or unlock more features")
    result.update(model_calls=predictor.calls, rows_tried=predictor.rows, seconds=time.perf_counter() - started)
    return result


def _refine(row: pd.Series, change: dict, space: Space, goal: Goal, predictor: RowPredictor) -> dict:
    """Pull each numeric change back toward the row's own value while the goal stays reached."""
    change = dict(change)
    for c, v in list(change.items()):
        if c in space.vocab or pd.isna(row[c]):
            continue
        values = np.linspace(float(row[c]), float(v), REFINE_STEPS + 1)[1:]
        if space.integer[c]:
            values = np.unique(np.round(values))
        outputs = predictor([{**change, c: x} for x in values])
        ok = np.flatnonzero(goal.reached(outputs))
        if ok.size:
            change[c] = min((values[i] for i in ok), key=lambda x: abs(x - float(row[c])))
    return change


def _apply(inputs: dict, change: dict) -> dict:
    out = {k: _editable(v) for k, v in inputs.items()}
    for c, v in change.items():
        name = input_name(c)
        out[name][0] = v if out[name].dtype == object else np.float32(v)
    return out


def _editable(values: np.ndarray) -> np.ndarray:
    """A copy that takes any value of its kind: text columns as object arrays (a fixed-width
    unicode array would cut a longer category)."""
    return values.astype(object) if values.dtype.kind in "UO" else values.copy()
