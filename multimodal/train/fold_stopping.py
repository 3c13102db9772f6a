"""Per fold in a fold-batched fit (fold_batched.py): early stopping, best weights, the learning rate,
and when a stopped fold leaves the fit (docs/ARCHITECTURE.md, "Fold batching").

K folds train side by side in one compiled model, but each must train as it would alone: its own
best epoch on its own early-stopping rows, its own patience, and (`as_a_run`: stage 1's whole
image_only models, which stand for ordinary runs) what a single run (training.train) also does:
stop on Keras' val_loss, the loss plus the weights' L2 penalty, and halve the learning rate on a
plateau (phases.py's constants), here per fold through `FoldAdam`.
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from multimodal.train.phases import PLATEAU_FACTOR, PLATEAU_MIN_DELTA, PLATEAU_MIN_LR, plateau_patience


def fold_key(k: int) -> str:
    return f"fold{k}"


def fold_loss(logs: dict, k: int, folds: int, prefix: str = "") -> float | list | None:
    """Fold k's loss in Keras' logs or history (prefix "val_": its validation loss). With one
    fold (one output) Keras logs only its plain `loss`, which holds the weights' L2 penalty too."""
    return logs.get(f"{prefix}{fold_key(k)}_loss", logs.get(f"{prefix}loss") if folds == 1 else None)


class FoldAdam(keras.optimizers.Adam):
    """Adam whose fold k's variables step at the learning rate times `scale[k]` (1 until a plateau
    halves it); everything else is Adam's, moments per variable as ever."""

    def __init__(self, learning_rate: float, models: list[keras.Model]):
        super().__init__(learning_rate)
        self._fold_of = {self._var_key(v): k for k, m in enumerate(models) for v in m.trainable_variables}
        # A tf.Variable, not a Python number: changing it does not trace the step again.
        self.fold_scales = tf.Variable(np.ones(len(models), "float32"), trainable=False)

    def update_step(self, gradient, variable, learning_rate):
        scale = self.fold_scales[self._fold_of[self._var_key(variable)]]
        return super().update_step(gradient, variable, learning_rate * tf.cast(scale, learning_rate.dtype))


class FoldStopping(keras.callbacks.Callback):
    """Early stopping and best weights per fold on its own val loss (`val_fold<k>_loss`, plus its
    model's L2 penalty when `optimizer` is given: a FoldAdam whose per-fold rate decays on plateau).

    A fold stops counting when `patience` epochs passed without a new best: later epochs neither
    move its best epoch nor its kept weights. Training ends when every fold has stopped (or the
    budget ran out); `restore_best` then gives each fold's model its best weights back.

    A stopped fold still costs its share of every step while it stays in the fit. When that share,
    over the epochs the others must still run at least (each until its own patience is out), costs
    more than tracing the steps again (`trace_seconds`; None: the first epoch's extra time,
    measured), the fit ends with `shrink` set, and fit_folds goes on with the active folds only:
    worth it for whole image models, whose convolutions dominate a step, never for small heads."""

    def __init__(self, models: list[keras.Model], patience: int, trace_seconds: float | None = None,
                 optimizer: FoldAdam | None = None):
        super().__init__()
        self.folds, self.patience, self.optimizer = list(models), patience, optimizer
        k = len(self.folds)
        self.best, self.best_epoch = [np.inf] * k, [0] * k
        self.wait, self.active, self.stopped_at = [0] * k, [True] * k, [0] * k
        self.snapshots: list[list[np.ndarray] | None] = [None] * k
        self.plateau_best, self.plateau_wait = [np.inf] * k, [0] * k
        self.training, self.shrink = list(range(k)), False
        self.trace_seconds = trace_seconds
        self._epoch_seconds: list[float] = []          # this fit's epochs

    def begin(self, training: list[int]) -> None:
        """A fit of the folds `training` starts."""
        self.training, self.shrink, self._epoch_seconds = list(training), False, []

    def on_epoch_begin(self, epoch, logs=None):
        self._began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_done(epoch, logs or {}, time.perf_counter() - self._began)

    def monitored(self, k: int, logs: dict) -> float:
        """Fold k's value to minimise: its val loss (plus its L2 penalty, as a run's val_loss)."""
        value = fold_loss(logs, k, len(self.training), "val_")
        if value is None:
            return np.nan
        alone = len(self.training) == 1   # Keras' plain val_loss, which holds the penalty already
        sign = (self.optimizer is not None) - alone   # add it, take it out, or leave it be (0)
        return float(value) + (sign * sum(float(loss) for loss in self.folds[k].losses) if sign else 0.0)

    def epoch_done(self, epoch: int, logs: dict, seconds: float) -> None:
        """Epoch `epoch` (0-based) of the current fit ended after `seconds`, with these logs."""
        self._epoch_seconds.append(seconds)
        if len(self._epoch_seconds) == 2 and self.trace_seconds is None:
            self.trace_seconds = max(self._epoch_seconds[0] - self._epoch_seconds[1], 0.0)
        for k in self.training:
            if not self.active[k]:
                continue
            self.stopped_at[k] = epoch + 1
            value = self.monitored(k, logs)
            if np.isfinite(value) and value < self.best[k]:
                self.best[k], self.best_epoch[k], self.wait[k] = value, epoch + 1, 0
                self.snapshots[k] = [np.array(v) for v in self.folds[k].weights]
            else:
                self.wait[k] += 1
                if self.patience and self.wait[k] >= self.patience:
                    self.active[k] = False
            if self.optimizer is not None and self.patience:
                self._plateau(k, value)
        if not any(self.active):
            self.model.stop_training = True
        elif self._worth_shrinking():
            self.shrink = self.model.stop_training = True

    def _plateau(self, k: int, value: float) -> None:
        """Keras' ReduceLROnPlateau for fold k alone (phases.py's factor, patience and floor)."""
        if value < self.plateau_best[k] - PLATEAU_MIN_DELTA:
            self.plateau_best[k], self.plateau_wait[k] = value, 0
            return
        self.plateau_wait[k] += 1
        if self.plateau_wait[k] >= plateau_patience(self.patience):
            scales = self.optimizer.fold_scales.numpy()
            base = float(self.optimizer.learning_rate)
            scales[k] = max(scales[k] * PLATEAU_FACTOR, PLATEAU_MIN_LR / base) if scales[k] * base > PLATEAU_MIN_LR \
                else scales[k]
            self.optimizer.fold_scales.assign(scales)
            self.plateau_wait[k] = 0

    def _worth_shrinking(self) -> bool:
        stopped = [k for k in self.training if not self.active[k]]
        if not stopped or len(self._epoch_seconds) < 2 or self.trace_seconds is None:
            return False
        at_least = max(self.patience - self.wait[k] for k in self.training if self.active[k])
        share = self._epoch_seconds[-1] * len(stopped) / len(self.training)
        return share * at_least > self.trace_seconds

    def restore_best(self) -> None:
        for model, snapshot in zip(self.folds, self.snapshots):
            if snapshot is not None:
                for variable, value in zip(model.weights, snapshot):
                    variable.assign(value)
