"""A run's headline metrics: their names, their rounding and their one home, the evaluation record
(docs/ARCHITECTURE.md, "One number, one definition"). Streamlit-free.

The record (`evaluation.json` in the run folder) holds the metrics of `evaluation.evaluate_run` on the
run's validation rows: log loss, ROC AUC (exact, every threshold) and accuracy, or MAE, RMSE, MAPE and
R². Training writes it (train/pipeline.py: finish_run); the Train page's tiles, Results, the model card
and the CLI all read it and print it with `METRIC_NAMES` and `metric_text`, so they show one number.
Keras' own values while training (its loss with the L2 penalty, its AUC over 200 thresholds) are other
quantities: the live curves name them so.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from multimodal.core.tasks import top_k, top_k_metric
from multimodal.data.dataset import Dataset
from multimodal.runs.evaluation import Evaluation, evaluate_run, run_dataset

EVALUATION_FILE = "evaluation.json"

# The metrics' names wherever a number is shown (app, model card, CLI): one name per quantity.
# Top-k is named by its k (core/tasks.top_k); "top_k_accuracy" is how runs saved before that name it.
METRIC_NAMES = {"accuracy": "Accuracy", "auc": "ROC AUC", "log_loss": "Log loss",
                **{top_k_metric(n): f"Top-{top_k(n)} accuracy" for n in range(3, 11)},
                "top_k_accuracy": "Top-k accuracy",
                "mae": "MAE", "rmse": "RMSE", "mape": "MAPE %", "r2": "R²", "bias": "Bias"}
# Keras' values while training, as the live curves and the CLI name them (not the record's numbers).
KERAS_NAMES = {"loss": "loss (incl. L2 penalty)", "auc": "AUC (Keras, approximate)"}


def metric_text(value: float | None) -> str:
    """A headline metric as every screen prints it: 3 significant digits (thousands with separators),
    "n/a" when undefined (NaN or None: ROC AUC on one class)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    text = f"{value:.3g}"
    return f"{value:,.0f}" if abs(value) >= 1000 or "e+" in text else text


def probability_text(p: float) -> str:
    """A class probability as every screen prints it (What-if, Explain, Results' worst errors): 73.1%."""
    return f"{p:.1%}"


def record_evaluation(run, evaluation: Evaluation, dataset: Dataset, write: bool = True) -> dict:
    """The run's evaluation record (the split, its rows and `evaluation.metrics` on `dataset`), written
    into the run folder as evaluation.json when `write`; an unwritable folder keeps it in memory only."""
    record = {"split": evaluation.split, "rows": int(len(evaluation.rows)), "dataset": dataset.name,
              "dataset_rows": len(dataset.frame),
              "metrics": {k: (float(v) if np.isfinite(v) else None) for k, v in evaluation.metrics.items()}}
    if write:
        try:
            (Path(run.dir) / EVALUATION_FILE).write_text(json.dumps(record, indent=2))
        except OSError:
            pass
    return record


def recorded_evaluation(run_dir: Path) -> dict | None:
    """The run's evaluation record as written, or None when it has none (or it cannot be read)."""
    try:
        record = json.loads((Path(run_dir) / EVALUATION_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("metrics"), dict) else None


def headline_metrics(run, dataset: Dataset | None = None, evaluation: Evaluation | None = None,
                     write: bool = True) -> dict:
    """The run's evaluation record: {"split", "rows", "dataset", "dataset_rows", "metrics": {name: value
    or None}}. A run without one (imported, or saved before the record existed) gets it from
    `evaluation` (of `dataset`), else by evaluating the run on `dataset` (default: the data it was
    trained on), written into its folder when `write` and the data is the run's own (a shipped sample
    run's folder stays read-only)."""
    found = recorded_evaluation(run.dir)
    if found is not None:
        return found
    dataset = dataset if dataset is not None else run_dataset(run)
    evaluation = evaluation if evaluation is not None else evaluate_run(run, dataset)
    own = dataset.name == run.config.get("dataset_name", dataset.name)
    return record_evaluation(run, evaluation, dataset, write=write and own)


def headline_lines(record: dict) -> list[str]:
    """The record's metrics as "Log loss 0.64" lines: the names and rounding of every screen."""
    return [f"{METRIC_NAMES.get(k, k)} {metric_text(v)}" for k, v in record["metrics"].items()]


def best_epoch_text(summary: dict) -> str:
    """Which epoch's weights the saved model has, as every screen says it: "best epoch 3 of 5" ("" when
    not recorded)."""
    best, run = summary.get("best_epoch"), summary.get("epochs_run")
    if not best:
        return ""
    return f"best epoch {best} of {run}" if run else f"best epoch {best}"
