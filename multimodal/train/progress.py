"""A training run's progress as the Train page draws it, folded from its events file.

Light (standard library only): the app server reads progress without numpy or TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from multimodal.core.events import Event, Status, read_events


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
    weights: dict = field(default_factory=dict)       # the latest "weights" event: download progress, then source
    phase_starts: list = field(default_factory=list)  # {"phase", "epoch", "backbone", "lr"} of a two-phase run
    started: bool = False          # the model is built and fit has begun
    end: dict | None = None        # the end event: status, metrics, epochs_run
    error: str | None = None


class ProgressReader:
    """Tails one run folder's events file (by byte offset) and folds every new event into `progress`.

    The ETA is the time per batch times the batches left, plus the time an epoch end takes (from its
    last batch to the epoch event: validation, callbacks) times the epoch ends left. The time per
    batch is measured between batches of the same epoch, so it leaves out the first batch's
    tracing; epoch ends are timed from the second one on, leaving out the first validation's
    tracing. Until the first epoch of a run that validates has ended, the ETA is unknown (None)."""

    def __init__(self, run_dir: Path, epochs: int = 0):
        self.run_dir = Path(run_dir)
        self.progress = Progress(epochs=epochs)
        self._offset = 0
        self._last_batch: tuple[float, int, int] | None = None   # (time, epoch, step) of the latest batch event
        self._batch_seconds, self._batches_timed = 0.0, 0
        self._epoch_ends: list[float] = []       # seconds from an epoch's last batch to its epoch event
        self._epoch_times: list[float] = []      # times of the epoch events

    def read(self) -> list[dict]:
        """Apply the events appended since the last call; return them."""
        events, self._offset = read_events(self.run_dir, self._offset)
        for event in events:
            self._apply(event)
        return events

    def _apply(self, e: dict) -> None:
        p, kind = self.progress, e.get("type")
        if kind == Event.START:
            p.started, p.epochs, p.steps, p.rows = True, int(e.get("epochs", p.epochs)), int(e.get("steps", 0)), e.get("rows", {})
        elif kind == Event.BATCH:
            p.step, p.steps = int(e["step"]), int(e.get("steps") or p.steps)
            p.logs = e.get("logs", {})
            done = int(e["epoch"]) * max(p.steps, 1) + p.step
            p.batch_points.append({"x": int(e["epoch"]) + p.step / max(p.steps, 1), **p.logs})
            if self._last_batch is not None and int(e["epoch"]) == self._last_batch[1]:
                # Batch events are thinned out on fast runs (train/phases.py): time per batch, not per event.
                self._batch_seconds += e["time"] - self._last_batch[0]
                self._batches_timed += p.step - self._last_batch[2]
            self._last_batch = (e["time"], int(e["epoch"]), p.step)
            p.fraction = min(done / max(p.epochs * p.steps, 1), 1.0)
            p.eta_seconds = self._eta(done)
        elif kind == Event.WEIGHTS:
            p.weights = e
        elif kind == Event.PHASE:
            p.phase_starts.append(e)
        elif kind == Event.EPOCH:
            p.epoch, p.epoch_logs = int(e["epoch"]), e.get("logs", {})
            p.epoch_points.append({"x": p.epoch, **p.epoch_logs})
            p.step = 0
            if self._last_batch is not None and "time" in e:
                self._epoch_ends.append(e["time"] - self._last_batch[0])
                self._epoch_times.append(e["time"])
            p.eta_seconds = self._eta(p.epoch * max(p.steps, 1))
        elif kind == Event.END:
            p.end, p.eta_seconds = e, 0.0
            p.fraction = 1.0 if e.get("status") != Status.STOPPED else p.fraction
        elif kind == Event.ERROR:
            p.error = e.get("message", "training failed")

    def _eta(self, done: int) -> float | None:
        """Seconds left after `done` batches (see the class docstring), None while unknown."""
        p = self.progress
        if not self._batches_timed:     # one batch per epoch: time whole epochs, from the second on
            if len(self._epoch_times) < 2:
                return None
            per_epoch = (self._epoch_times[-1] - self._epoch_times[0]) / (len(self._epoch_times) - 1)
            return max(per_epoch * (p.epochs - p.epoch), 0.0)
        per_batch = self._batch_seconds / self._batches_timed
        timed = self._epoch_ends[1:] or self._epoch_ends     # the first one includes tracing
        if not timed and p.rows.get("val"):
            return None
        epoch_end = sum(timed) / len(timed) if timed else 0.0
        return max(per_batch * (p.epochs * p.steps - done) + epoch_end * max(p.epochs - p.epoch, 0), 0.0)
