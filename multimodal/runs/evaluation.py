"""Evaluate a run on its validation rows: predictions, curves, error analysis, slices. Streamlit-free.

The metric helpers are pure functions on numpy arrays (tested on hand-made arrays with known
answers); `evaluate_run(run, dataset)` predicts the run's validation split in batches and
bundles everything the Results page shows into one `Evaluation`. `evaluate_splits` is the
compiled model's own metrics on the val and test rows: what training and importing a model save
as metrics.json.

Conventions: `row` is the dataset frame's index (the indices stored in the run's splits);
classification labels are class indices into `run.classes`; the per-row `loss` is the
cross-entropy of the true class (classification) or the squared error (regression), so
"worst errors" are the rows the training loss disliked most.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from multimodal.core.errors import DataError
from multimodal.core.tasks import MAPE_MIN_TARGET, top_k, top_k_metric
from multimodal.data.cells import MISSING_TOKEN
from multimodal.data.dataset import Dataset, load_dataset
from multimodal.data.inputs import encode_target
from multimodal.runs.run import predict, probabilities, run_inputs

EPS = 1e-12
SLICE_BINS = 4
MAX_CATEGORIES = 12   # a numeric column with at most this many distinct values is sliced by value


# ---------------------------------------------------------------- classification

def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    return float((y_true == y_pred).mean()) if y_true.size else float("nan")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts; rows are the true class, columns the predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=int).reshape(-1), np.asarray(y_pred, dtype=int).reshape(-1)), 1)
    return cm


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for a binary problem; tied scores form one step (no optimistic order).

    Starts at (0, 0) with threshold +inf. With no positives (or no negatives) the undefined rate
    is all zeros, and `auc` of such a curve is NaN (see `roc_auc`).
    """
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positive[order]
    # The last index of each run of equal scores: one point per distinct threshold.
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1] if s.size else np.array([], dtype=int)
    tp = np.cumsum(p)[last]
    fp = np.cumsum(~p)[last]
    n_pos, n_neg = int(p.sum()), int((~p).sum())
    tpr = np.r_[0.0, tp / n_pos] if n_pos else np.zeros(last.size + 1)
    fpr = np.r_[0.0, fp / n_neg] if n_neg else np.zeros(last.size + 1)
    return fpr, tpr, np.r_[np.inf, s[last]]


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under a curve by the trapezoid rule (x increasing)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)) if x.size > 1 else float("nan")


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present (the AUC is undefined)."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return float("nan")
    fpr, tpr, _ = roc_curve(positive, scores)
    return auc(fpr, tpr)


@dataclass
class RocCurve:
    label: str                 # the positive class ("malignant", or "benign vs rest")
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


def roc_curves(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> list[RocCurve]:
    """Binary: one curve for the positive class (classes[1]); multi-class: one-vs-rest per class."""
    y_true = np.asarray(y_true, dtype=int).reshape(-1)
    targets = [1] if len(classes) == 2 else range(len(classes))
    curves = []
    for c in targets:
        fpr, tpr, _ = roc_curve(y_true == c, probs[:, c])
        label = classes[c] if len(classes) == 2 else f"{classes[c]} vs rest"
        curves.append(RocCurve(label, fpr, tpr, roc_auc(y_true == c, probs[:, c])))
    return curves


def macro_auc(curves: list[RocCurve]) -> float:
    values = [c.auc for c in curves if np.isfinite(c.auc)]
    return float(np.mean(values)) if values else float("nan")


def cross_entropy(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-row -log p(true class)."""
    y_true = np.asarray(y_true, dtype=int).reshape(-1)
    return -np.log(np.clip(probs[np.arange(y_true.size), y_true], EPS, 1.0))


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, float]:
    y_true = np.asarray(y_true, dtype=int).reshape(-1)
    pred = probs.argmax(axis=1)
    out = {"accuracy": accuracy(y_true, pred), "auc": macro_auc(roc_curves(y_true, probs, classes)),
           "log_loss": float(cross_entropy(y_true, probs).mean()) if y_true.size else float("nan")}
    k = top_k(len(classes))
    if k:
        topk = np.argsort(-probs, axis=1)[:, :k]
        out[top_k_metric(len(classes))] = float((topk == y_true[:, None]).any(axis=1).mean()) if y_true.size \
            else float("nan")
    return out


# ---------------------------------------------------------------- regression

def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, MAPE (percent, over rows with a non-zero target) and R^2."""
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if not y.size:
        return {"mae": float("nan"), "rmse": float("nan"), "mape": float("nan"), "r2": float("nan")}
    err = p - y
    nonzero = np.abs(y) > MAPE_MIN_TARGET
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "mape": float(np.mean(np.abs(err[nonzero] / y[nonzero])) * 100) if nonzero.any() else float("nan"),
            "r2": float(1 - (err ** 2).sum() / ss_tot) if ss_tot > EPS else float("nan")}


# ---------------------------------------------------------------- slices

def slice_labels(values: pd.Series | np.ndarray, bins: int = SLICE_BINS, numeric: bool | None = None) -> pd.Series:
    """An ordered categorical label per row: each value (categorical) or a quantile bucket (numeric).

    Numeric buckets come from `pd.qcut` (ties merge buckets, so there may be fewer than `bins`)
    and read like "[30, 45)"; missing values get their own slice, MISSING_TOKEN.
    """
    s = pd.Series(values).reset_index(drop=True)
    if numeric is None:
        numeric = is_numeric_slice(s)
    if not numeric:
        text = s.map(lambda v: MISSING_TOKEN if v is None or (not isinstance(v, str) and pd.isna(v))
                     or (isinstance(v, str) and not v.strip()) else str(v))
        order = sorted(text.unique(), key=lambda v: (v == MISSING_TOKEN, _natural_key(v)))
        return pd.Series(pd.Categorical(text, categories=order, ordered=True))
    num = pd.to_numeric(s, errors="coerce")
    present = num.dropna()
    if present.empty:
        return pd.Series(pd.Categorical([MISSING_TOKEN] * len(s), categories=[MISSING_TOKEN], ordered=True))
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:
        edges = np.array([present.min(), present.max()])
    names = [f"[{_fmt(a)}, {_fmt(b)}{']' if i == edges.size - 2 else ')'}" for i, (a, b) in
             enumerate(zip(edges[:-1], edges[1:]))]
    # Right-open buckets except the last, which holds the maximum.
    codes = np.clip(np.searchsorted(edges, num.to_numpy(), side="right") - 1, 0, edges.size - 2)
    labels = np.array(names, dtype=object)[codes]
    labels[num.isna().to_numpy()] = MISSING_TOKEN
    categories = names + ([MISSING_TOKEN] if num.isna().any() else [])
    return pd.Series(pd.Categorical(labels, categories=categories, ordered=True))


def is_numeric_slice(values: pd.Series, max_categories: int = MAX_CATEGORIES) -> bool:
    """Numeric columns with many distinct values are bucketed; the rest are sliced by value."""
    s = pd.Series(values)
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return False
    return s.dropna().nunique() > max_categories


def _natural_key(v: str):
    try:
        return (0, float(v), "")
    except ValueError:
        return (1, 0.0, v)


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def metrics_by_slice(labels: pd.Series, y_true: np.ndarray, task: str, *, probs: np.ndarray | None = None,
                     y_pred: np.ndarray | None = None, classes: list[str] | None = None) -> pd.DataFrame:
    """One row per slice: slice, n and the task's metrics on that slice's rows (empty slices dropped).

    Classification (pass probs and classes): accuracy, auc (NaN when the slice has one class), log_loss.
    Regression (pass y_pred): mae, rmse, mape, r2, bias (mean of predicted - true).
    """
    labels = pd.Series(labels).reset_index(drop=True)
    y_true = np.asarray(y_true).reshape(-1)
    rows = []
    cats = labels.cat.categories if hasattr(labels, "cat") else pd.unique(labels)
    for value in cats:
        mask = (labels == value).to_numpy()
        if not mask.any():
            continue
        if task == "classification":
            m = classification_metrics(y_true[mask], probs[mask], classes)
            m.pop(top_k_metric(len(classes)), None)   # a slice's few rows make top-k noise
        else:
            m = regression_metrics(y_true[mask], y_pred[mask])
            m["bias"] = float(np.mean(np.asarray(y_pred, dtype=np.float64).reshape(-1)[mask] - y_true[mask]))
        rows.append({"slice": str(value), "n": int(mask.sum()), **m})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- tables

def prediction_table(rows: np.ndarray, y_true: np.ndarray, task: str, *, probs: np.ndarray | None = None,
                     y_pred: np.ndarray | None = None, classes: list[str] | None = None) -> pd.DataFrame:
    """One row per example: row, true, predicted, and confidence/probability or error, plus loss.

    Classification: confidence (probability of the predicted class), p_true (of the true class),
    probability (of the positive class, binary only), correct, loss = -log p_true.
    Regression: error = predicted - true, abs_error, loss = squared error.
    """
    rows = np.asarray(rows).reshape(-1)
    if task == "classification":
        y = np.asarray(y_true, dtype=int).reshape(-1)
        pred = probs.argmax(axis=1)
        table = pd.DataFrame({"row": rows, "true": [classes[i] for i in y], "predicted": [classes[i] for i in pred],
                              "confidence": probs.max(axis=1), "p_true": probs[np.arange(y.size), y]})
        if len(classes) == 2:
            table["probability"] = probs[:, 1]
        table["correct"] = y == pred
        table["loss"] = cross_entropy(y, probs)
        return table
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    return pd.DataFrame({"row": rows, "true": y, "predicted": p, "error": p - y, "abs_error": np.abs(p - y),
                         "loss": (p - y) ** 2})


def worst_errors(table: pd.DataFrame, n: int = 8, only_wrong: bool = True) -> pd.DataFrame:
    """The n rows with the highest loss (classification: misclassified ones first, if any)."""
    ranked = table.sort_values("loss", ascending=False, kind="stable")
    if only_wrong and "correct" in ranked and (~ranked["correct"]).any():
        ranked = ranked[~ranked["correct"]]
    return ranked.head(n)


# ---------------------------------------------------------------- a whole run

def evaluate_splits(model: Any, splits: dict[str, np.ndarray], batches: Callable[[np.ndarray], Any]) -> dict[str, float]:
    """The compiled model's metrics on the val and test rows, as {"val_loss": ..., "test_accuracy": ...}.

    `batches(rows)` gives those rows' (inputs, target) batches: in memory or streamed from disk.
    """
    metrics = {}
    for split in ("val", "test"):
        rows = splits[split]
        if len(rows):
            values = model.evaluate(batches(rows), verbose=0, return_dict=True)
            metrics.update({f"{split}_{name}": float(value) for name, value in values.items()})
    return metrics


@dataclass
class Evaluation:
    """Everything the Results page shows about one run on one split of its dataset."""
    task: str
    target: str
    classes: list[str]
    split: str
    rows: np.ndarray                       # dataset row indices, in order
    frame: pd.DataFrame                    # the dataset rows (all columns, for slicing and images)
    y_true: np.ndarray                     # class indices (classification) or values (regression)
    outputs: np.ndarray                    # raw model outputs (N, units): logits or target units
    table: pd.DataFrame                    # prediction_table(...)
    metrics: dict[str, float]
    probs: np.ndarray | None = None        # (N, classes), classification only
    confusion: np.ndarray | None = None
    roc: list[RocCurve] = field(default_factory=list)
    inputs: dict | None = None             # raw model inputs of these rows (when kept)
    roles: dict[str, str] = field(default_factory=dict)   # column -> role the run was trained with

    @property
    def y_pred(self) -> np.ndarray:
        """Predicted class indices (classification) or values (regression)."""
        return self.probs.argmax(axis=1) if self.task == "classification" else self.outputs[:, 0]

    def worst(self, n: int = 8) -> pd.DataFrame:
        return worst_errors(self.table, n)

    def by_slice(self, column: str, bins: int = SLICE_BINS) -> pd.DataFrame:
        if column not in self.frame:
            raise DataError(f"column '{column}' is not in the dataset; choose one of {', '.join(self.frame.columns)}")
        role = self.roles.get(column)
        numeric = True if role == "numeric" else False if role == "categorical" else None
        labels = slice_labels(self.frame[column], bins, numeric)
        return metrics_by_slice(labels, self.y_true, self.task, probs=self.probs, y_pred=self.outputs[:, 0],
                                classes=self.classes)


def evaluation_rows(run, dataset: Dataset) -> tuple[str, np.ndarray]:
    """(split name, row indices) to evaluate: the run's validation rows, else its test rows."""
    splits = run.config.get("splits", {})
    for name in ("val", "test"):
        rows = np.asarray(splits.get(name, []), dtype=np.int64)
        if rows.size:
            break
    else:
        raise DataError(f"run '{run.name}' has no validation or test rows to evaluate; retrain with a "
                        "validation fraction above 0")
    if rows.max() >= len(dataset.frame):
        raise DataError(f"run '{run.name}' was trained on a bigger dataset ({rows.max() + 1}+ rows) than "
                        f"'{dataset.name}' ({len(dataset.frame)} rows); load the dataset it was trained on")
    return name, rows


def run_dataset(run) -> Dataset:
    """The dataset a run was trained on, read again from its config (the CLI's calibration and
    counterfactuals need the validation rows); a clear error when it cannot be found any more."""
    config = run.config
    if not config.get("data") or not config.get("splits"):
        raise DataError(f"run '{run.name}' records no training data or splits (an imported model?), so it has no "
                        "validation rows; train it with Multimodal Studio to get them")
    try:
        return load_dataset(config["data"], target=config.get("target"), task=config.get("task"),
                            overrides=config.get("overrides"), ordered_images=config.get("ordered_images", False))
    except DataError as exc:
        raise DataError(f"the data run '{run.name}' was trained on ('{config['data']}') cannot be read "
                        f"again: {exc}") from None


def check_compatible(run, dataset: Dataset) -> None:
    """A clear error when a run cannot be evaluated on this dataset (columns or target differ)."""
    spec = run.spec
    needed = spec.image_cols + spec.tabular_cols + [run.config["target"]]
    missing = [c for c in needed if c not in dataset.frame.columns]
    if missing:
        raise DataError(f"run '{run.name}' needs column(s) {', '.join(map(repr, missing))}, which dataset "
                        f"'{dataset.name}' does not have; load the dataset it was trained on")


def evaluate_run(run, dataset: Dataset, batch_size: int = 128, keep_inputs: bool = False) -> Evaluation:
    """Predict the run's validation rows in batches and compute every view of the Results page."""
    check_compatible(run, dataset)
    split, rows = evaluation_rows(run, dataset)
    frame = dataset.frame.iloc[rows]
    target = run.config["target"]
    y_true = encode_target(frame[target], run.task, run.classes)
    outputs, kept = [], []
    for start in range(0, len(rows), batch_size):
        inputs = run_inputs(run, frame.iloc[start:start + batch_size], dataset.root)
        outputs.append(predict(run, inputs))
        if keep_inputs:
            kept.append(inputs)
    outputs = np.concatenate(outputs).astype(np.float64)
    inputs = {k: np.concatenate([b[k] for b in kept]) for k in kept[0]} if keep_inputs else None
    common = dict(task=run.task, target=target, classes=list(run.classes), split=split, rows=rows,
                  frame=frame.reset_index(drop=True), y_true=y_true, outputs=outputs, inputs=inputs,
                  roles=dict(run.config.get("roles", {})))
    if run.task == "classification":
        probs = probabilities(outputs, len(run.classes))
        return Evaluation(**common, probs=probs,
                          table=prediction_table(rows, y_true, run.task, probs=probs, classes=run.classes),
                          metrics=classification_metrics(y_true, probs, run.classes),
                          confusion=confusion_matrix(y_true, probs.argmax(axis=1), len(run.classes)),
                          roc=roc_curves(y_true, probs, run.classes))
    return Evaluation(**common, table=prediction_table(rows, y_true, run.task, y_pred=outputs[:, 0]),
                      metrics=regression_metrics(y_true, outputs[:, 0]))
