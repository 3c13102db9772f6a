"""A training run's progress as the Train page draws it, folded from its events file.

Light (standard library only): the app server reads progress without numpy or TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from multimodal.core.events import read_events


@dataclass
class Progress:
    """What the Train page draws: position, ETA, latest logs and the points of the curves."""
    epoch: int = 0                 # epochs completed
    epochs: int = 0                # epochs requested
    step: int = 0                  # batches done in the current epoch
    steps: int = 0                 # batches per epoch
    fraction: float = 0.0          # of all requested batches
    eta_seconds: float | None = None
    logs: dict = field(default_factory=dict)         # latest batch logs (running epoch means)
    epoch_logs: dict = field(default_factory=dict)   # latest epoch logs (with val_*)
    batch_points: list = field(default_factory=list)  # {"x": fractional epoch, **logs}
    epoch_points: list = field(default_factory=list)  # {"x": epoch, **logs}
    rows: dict = field(default_factory=dict)          # split sizes from the start event
    started: bool = False          # the model is built and fit has begun
    end: dict | None = None        # the end event: status, metrics, epochs_run
    error: str | None = None


class ProgressReader:
    """Tails one run folder's events file (by byte offset) and folds every new event into `progress`.

    The ETA is the time per batch since the first batch seen (which includes compiling) times the
    batches left."""

    def __init__(self, run_dir: Path, epochs: int = 0):
        self.run_dir = Path(run_dir)
        self.progress = Progress(epochs=epochs)
        self._offset = 0
        self._first_batch_time: float | None = None
        self._first_batch_done = 0

    def read(self) -> list[dict]:
        """Apply the events appended since the last call; return them."""
        events, self._offset = read_events(self.run_dir, self._offset)
        for event in events:
            self._apply(event)
        return events

    def _apply(self, e: dict) -> None:
        p, kind = self.progress, e.get("type")
        if kind == "start":
            p.started, p.epochs, p.steps, p.rows = True, int(e.get("epochs", p.epochs)), int(e.get("steps", 0)), e.get("rows", {})
        elif kind == "batch":
            p.step, p.steps = int(e["step"]), int(e.get("steps") or p.steps)
            p.logs = e.get("logs", {})
            done = int(e["epoch"]) * max(p.steps, 1) + p.step
            p.batch_points.append({"x": int(e["epoch"]) + p.step / max(p.steps, 1), **p.logs})
            if self._first_batch_time is None:
                self._first_batch_time, self._first_batch_done = e["time"], done
            total = max(p.epochs * p.steps, 1)
            p.fraction = min(done / total, 1.0)
            if done > self._first_batch_done:
                rate = (e["time"] - self._first_batch_time) / (done - self._first_batch_done)
                p.eta_seconds = max(rate * (total - done), 0.0)
        elif kind == "epoch":
            p.epoch, p.epoch_logs = int(e["epoch"]), e.get("logs", {})
            p.epoch_points.append({"x": p.epoch, **p.epoch_logs})
            p.step = 0
        elif kind == "end":
            p.end, p.eta_seconds = e, 0.0
            p.fraction = 1.0 if e.get("status") != "stopped" else p.fraction
        elif kind == "error":
            p.error = e.get("message", "training failed")
