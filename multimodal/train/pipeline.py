"""The steps every training shares, whichever trainer runs the fit (docs/ARCHITECTURE.md, "Training").

`train()` (the whole model, `training.py`) and the head trainer (`head_training.py`, a head on a
frozen encoder's cached maps) differ only in what they fit. Both announce the run with the same
start event, fold the fit into the same summary and status, and finish the same way: the run
folder written (when the model is kept) and the end event last, so a watcher that sees "end" finds
the folder complete.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from multimodal.core.events import append_event, end_event, start_event, training_status
from multimodal.runs.evaluation import evaluate_run
from multimodal.runs.headline import record_evaluation
from multimodal.runs.run import load_run, save_run
from multimodal.train.phases import Phase


def announce_start(run_dir: Path, arch: str, splits: dict[str, np.ndarray], steps: int, phases: list[Phase],
                   **extra: Any) -> int:
    """The start event (the epoch budget over every phase, batches per epoch, rows per split);
    returns the epoch budget."""
    epochs = sum(phase.epochs for phase in phases)
    append_event(run_dir, start_event(epochs=epochs, steps=steps, arch=arch, rows={k: len(v) for k, v in splits.items()},
                                      phases=[phase.record() for phase in phases], **extra))
    return epochs


def run_summary(run_dir: Path, arch: str, task: str, *, stopped: bool, epochs_run: int, epochs: int,
                best_epoch: int, phases: list, history: dict, metrics: dict, train_rows: int,
                train_seconds: float, **facts: Any) -> dict:
    """summary.json's content: how the fit ended, its speed and metrics, and the trainer's `facts`
    (encoder weights, target transform, devices, precision, ...)."""
    return {"run_dir": str(run_dir), "arch": arch, "task": task,
            "status": training_status(stopped, epochs_run, epochs), "epochs_run": epochs_run, "epochs": epochs,
            "best_epoch": best_epoch, "phases": phases, **facts, "train_seconds": round(train_seconds, 3),
            "samples_per_second": round(epochs_run * train_rows / train_seconds, 1) if train_seconds else 0.0,
            "metrics": metrics, "history": history}


def finish_run(run_dir: Path, summary: dict, saved: dict | None) -> dict:
    """Write the run folder (`saved`: save_run's arguments besides the folder, the summary and its
    metrics and history; None: the model is not kept, as a comparison's folds) and then the end event."""
    if saved is not None:
        save_run(run_dir, summary=summary, metrics=summary["metrics"], history=summary["history"], **saved)
        # The run's evaluation record, the one home of its headline metrics (runs/headline.py),
        # from the model in memory on the validation rows, before "end" says the folder is complete.
        run, ds = replace(load_run(run_dir), _model=saved["model"]), saved["dataset"]
        if any(len(saved["splits"].get(k, [])) for k in ("val", "test")):   # else nothing to evaluate on
            summary["evaluation"] = record_evaluation(run, evaluate_run(run, ds), ds)
    append_event(run_dir, end_event(summary["status"], metrics=summary["metrics"], epochs_run=summary["epochs_run"]))
    return summary
