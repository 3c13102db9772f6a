"""Fitting a model in phases, with live events and the best weights kept across them.

One phase (the whole model trained) unless the image encoder's pretrained weights were loaded.
Then phase 1 trains the head on the frozen backbone with the run's optimizer (Adam at its learning
rate, as every other run, so encoders compare on the same footing), and phase 2 unfreezes the
backbone's top `unfreeze` blocks, BatchNormalization kept in inference mode, and recompiles with
Adam at `finetune_lr`. Each phase has its own early stopping; both share one history and one epoch
counter, their events carry the phase, and a "phase" event marks where each begins. The
best-val_loss weights are kept across the phases: phase 2 starts from phase 1's best and the
saved model is the best of both (docs/ARCHITECTURE.md, "Training").
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from multimodal.core.config import TrainConfig
from multimodal.core.events import Event, append_event, event, stop_requested
from multimodal.models.branches import set_backbone_trainable
from multimodal.models.compile import build_for_fit


@dataclass(frozen=True)
class Phase:
    number: int
    epochs: int                 # the phase's budget; early stopping usually ends it sooner
    lr: float
    unfreeze: int | str | None  # backbone blocks trained: None = the whole model as built, 0 = frozen, "all"

    @property
    def backbone(self) -> str:
        """What the phase trains of the backbone, in words (summary.json, the Train page)."""
        if self.unfreeze is None:
            return "trained"
        if self.unfreeze == 0:
            return "frozen"
        return "all blocks fine-tuned" if self.unfreeze == "all" else f"top {self.unfreeze} blocks fine-tuned"

    def record(self) -> dict:
        """The phase as the start event lists it."""
        return {"phase": self.number, "epochs": self.epochs, "backbone": self.backbone}


def plan_phases(config: TrainConfig, pretrained: bool) -> list[Phase]:
    """The run's phases: one, or two when the image encoder's pretrained weights are loaded (a
    random-init backbone has nothing worth freezing). `config` has its epochs resolved."""
    if not pretrained:
        return [Phase(1, config.epochs, config.lr, None)]
    freeze = config.epochs if config.freeze_epochs is None else config.freeze_epochs
    return [Phase(1, freeze, config.lr, 0), Phase(2, config.finetune_epochs, config.finetune_lr, config.unfreeze)]


class LiveEvents(keras.callbacks.Callback):
    """Appends batch and epoch events (with the phase), and ends training when STOP appears.

    A batch event is written for an epoch's first and last batch and otherwise at most every
    BATCH_EVENT_SECONDS: the Train page redraws twice a second, and an event per batch cost a tenth
    of a small table's step (0.15 of 1.4 ms). STOP is checked after every batch."""

    BATCH_EVENT_SECONDS = 0.1

    def __init__(self, run_dir: Path, steps: int):
        super().__init__()
        self.run_dir, self.steps, self.epoch, self.phase, self.stopped = run_dir, steps, 0, 1, False
        self.written = 0.0   # time.monotonic() of the latest batch event

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if batch == 0 or batch + 1 >= self.steps or now - self.written >= self.BATCH_EVENT_SECONDS:
            self.written = now
            append_event(self.run_dir, event(Event.BATCH, epoch=self.epoch, step=batch + 1, steps=self.steps,
                                             phase=self.phase, logs=_floats(logs)))
        if stop_requested(self.run_dir):
            self.model.stop_training = True
            self.stopped = True

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        append_event(self.run_dir, event(Event.EPOCH, epoch=epoch + 1, phase=self.phase, logs=_floats(logs)))


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest val_loss and puts them back when a fit ends
    for any reason (budget used up, early stopping, STOP). Keras' own EarlyStopping only restores
    them when it triggers. One instance serves every phase; weights are kept by variable, since
    unfreezing reorders a model's weight list."""

    def __init__(self):
        super().__init__()
        self.best, self.best_epoch, self.snapshot = np.inf, 0, None

    def on_epoch_end(self, epoch, logs=None):
        value = float((logs or {}).get("val_loss", np.nan))
        if np.isfinite(value) and value < self.best:
            self.best, self.best_epoch = value, epoch + 1
            self.snapshot = [(v, np.array(v)) for v in self.model.weights]

    def on_train_end(self, logs=None):
        for variable, value in self.snapshot or []:
            variable.assign(value)


def _floats(logs: dict | None) -> dict:
    return {k: float(v) for k, v in (logs or {}).items() if np.isfinite(float(v))}


# The learning-rate decay on a plateau of val_loss: halved after plateau_patience(patience) epochs
# without a gain of PLATEAU_MIN_DELTA (Keras' ReduceLROnPlateau default), never below PLATEAU_MIN_LR.
PLATEAU_FACTOR, PLATEAU_MIN_LR, PLATEAU_MIN_DELTA = 0.5, 1e-5, 1e-4


def plateau_patience(patience: int) -> int:
    return max(2, patience // 2)


def _stopping(patience: int) -> list:
    """A phase's own early stopping (and learning-rate decay) on val_loss; none for patience 0."""
    if not patience:
        return []
    return [keras.callbacks.EarlyStopping(patience=patience, monitor="val_loss"),
            keras.callbacks.ReduceLROnPlateau(patience=plateau_patience(patience), factor=PLATEAU_FACTOR,
                                              monitor="val_loss", min_lr=PLATEAU_MIN_LR,
                                              min_delta=PLATEAU_MIN_DELTA)]


@dataclass
class FitResult:
    history: dict[str, list]    # per epoch, both phases; "phase" says which
    epochs_run: int
    best_epoch: int
    stopped: bool               # ended by STOP
    phases: list[dict]          # {"phase", "backbone", "lr", "epochs", "epochs_run"} of each planned phase


def fit_phases(model: keras.Model, phases: list[Phase], compile_for: Callable[[float], None], *, run_dir: Path,
               steps: int, patience: int, restore_best: bool, **fit_kwargs) -> FitResult:
    """Fit `model` phase by phase. compile_for(lr) (re)compiles it (Keras fixes the trainable
    weights at compile time); fit_kwargs go to every `model.fit` (data, class weights, ...)."""
    live, best = LiveEvents(run_dir, steps), BestWeights() if restore_best else None
    history: dict[str, list] = {}
    done, summary = 0, []
    for phase in phases:
        ran = 0
        if phase.epochs > 0 and not live.stopped:
            if phase.unfreeze is not None:
                set_backbone_trainable(model, phase.unfreeze)
            compile_for(phase.lr)
            if len(phases) > 1:
                append_event(run_dir, event(Event.PHASE, phase=phase.number, epoch=done,
                                            backbone=phase.backbone, lr=phase.lr))
            live.phase = phase.number
            build_for_fit(model, fit_kwargs["x"])
            fit = model.fit(initial_epoch=done, epochs=done + phase.epochs, verbose=0, shuffle=False,
                            callbacks=[live, *([best] if best else []), *_stopping(patience)], **fit_kwargs)
            ran = len(fit.history.get("loss", []))
            for key, values in fit.history.items():
                history.setdefault(key, [float("nan")] * done).extend(float(v) for v in values)
            history.setdefault("phase", []).extend([phase.number] * ran)
            done += ran
            for values in history.values():   # a key one phase lacks stays aligned (NaN)
                values.extend([float("nan")] * (done - len(values)))
        summary.append({"phase": phase.number, "backbone": phase.backbone, "lr": phase.lr, "epochs": phase.epochs,
                        "epochs_run": ran})
    best_epoch = best.best_epoch if best and best.snapshot else done
    return FitResult(history, done, best_epoch, live.stopped, summary)
