"""The K folds of one method trained as ONE compiled Keras model (docs/ARCHITECTURE.md, "Fold batching").

A comparison's fast modes (stagewise.py) train every method's head on cached inputs: the frozen
encoder's maps and the table's preprocessed vector. Trained one fold at a time, each of the K
heads pays its own model compilation, its own traced train and test steps and a few
milliseconds of Keras overhead per step, while the head's arithmetic is tiny. Here the K heads sit
side by side in one model (`FoldModels`): one compile, one trace of the train step, one of the
validation step and one of the prediction per method, and K heads per step cost about one.

Honesty: each fold's head reads only its own inputs and is fed only its own training rows. Every
step carries K sub-batches, sub-batch k drawn from fold k's training rows (padded to the longest
fold with weight-0 repeats of its own rows); fold k's loss is its own output's, so no gradient of
fold k's weights involves a row it must not see. Early stopping and the best weights are kept PER
FOLD (`FoldStopping`): fold k's best epoch is chosen among its epochs before its own patience ran
out, on its own early-stopping rows, whatever the other folds still do; training ends when every
fold has stopped. A held-out row therefore changes none of its fold's weights (tests/test_fold_batched.py).

The head budget (learning rate, patience, epoch cap) for heads on frozen inputs is HEAD_BUDGET,
measured by bench/bench_head_budget.py (bench/RESULTS_compare.md); a user's explicit epochs or
patience win over it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from multimodal.core.config import TrainConfig
from multimodal.data.dataset import Dataset
from multimodal.models.compile import build_for_fit, task_objectives
from multimodal.train.head_training import IMAGE_BRANCHES, FrozenEncoder, HeadSetup, prepare_head, saved_head_model
from multimodal.train.phases import Phase
from multimodal.train.pipeline import announce_start, finish_run, run_summary


@dataclass(frozen=True)
class FitBudget:
    """How a comparison's fast-mode model trains: Adam's learning rate, early-stopping patience, epoch cap."""
    lr: float
    patience: int
    epochs: int


# Chosen by bench/bench_head_budget.py on the three samples (bench/RESULTS_compare.md, "Head budget").
HEAD_BUDGET = FitBudget(lr=3e-3, patience=8, epochs=80)


def budget_for(config: TrainConfig, budget: FitBudget = HEAD_BUDGET) -> FitBudget:
    """The budget a comparison's model trains with: `budget`, except the epochs and patience the
    user set (config's own values, None when left to the data) and a learning rate other than the
    default."""
    default_lr = TrainConfig.__dataclass_fields__["lr"].default
    return FitBudget(budget.lr if config.lr == default_lr else config.lr,
                      budget.patience if config.patience is None else config.patience,
                      budget.epochs if config.epochs is None else config.epochs)


@dataclass
class Fold:
    """One fold's part of a batched training.

    model: what trains (a head on cached inputs, or a whole model); inputs: the model's inputs for
    EVERY row of the dataset, keyed by its input names; y: every row's target; weights: every row's
    loss weight (class weights; None: 1); splits: {"train", "val", "test"} row positions; loss and
    metrics: the task's (models/compile.task_objectives with this fold's target statistics)."""
    model: keras.Model
    inputs: dict[str, np.ndarray]
    y: np.ndarray
    weights: np.ndarray | None
    splits: dict[str, np.ndarray]
    task: str
    n_classes: int
    loss: str | None
    target_stats: dict | None


def fold_key(k: int) -> str:
    return f"fold{k}"


def input_key(k: int, name: str) -> str:
    return f"fold{k}__{name}"


class FoldModels(keras.Model):
    """K models side by side: fold k's model reads the inputs `fold<k>__<name>` and answers as
    output `fold<k>`. Nothing is shared between them but the optimizer's step counter."""

    def __init__(self, models: list[keras.Model], **kwargs):
        super().__init__(name="folds", **kwargs)
        self.folds = list(models)
        self.input_names_per_fold = [[t.name for t in m.inputs] for m in models]

    def call(self, inputs, training=None):
        return {fold_key(k): model({n: inputs[input_key(k, n)] for n in names}, training=training)
                for k, (model, names) in enumerate(zip(self.folds, self.input_names_per_fold))}


class FoldStopping(keras.callbacks.Callback):
    """Early stopping and best weights per fold on its own val loss (`val_fold<k>_loss`).

    A fold stops counting when `patience` epochs passed without a new best: later epochs neither
    move its best epoch nor its kept weights. Training ends when every fold has stopped (or the
    budget ran out); then each fold's model gets its best weights back."""

    def __init__(self, models: list[keras.Model], patience: int):
        super().__init__()
        self.folds, self.patience = list(models), patience
        k = len(self.folds)
        self.best, self.best_epoch = [np.inf] * k, [0] * k
        self.wait, self.active, self.stopped_at = [0] * k, [True] * k, [0] * k
        self.snapshots: list[list[np.ndarray] | None] = [None] * k

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for k, model in enumerate(self.folds):
            if not self.active[k]:
                continue
            self.stopped_at[k] = epoch + 1
            value = float(logs.get(f"val_{fold_key(k)}_loss", np.nan))
            if np.isfinite(value) and value < self.best[k]:
                self.best[k], self.best_epoch[k], self.wait[k] = value, epoch + 1, 0
                self.snapshots[k] = [np.array(v) for v in model.weights]
            else:
                self.wait[k] += 1
                if self.patience and self.wait[k] >= self.patience:
                    self.active[k] = False
        if not any(self.active):
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        for model, snapshot in zip(self.folds, self.snapshots):
            if snapshot is not None:
                for variable, value in zip(model.weights, snapshot):
                    variable.assign(value)


def _padded(rows: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(row positions, 1/0 mask) of `length`: the rows, then weight-0 repeats of the same rows."""
    rows = np.asarray(rows, dtype=np.int64)
    return np.concatenate([rows, np.resize(rows, length - len(rows))]), \
        np.r_[np.ones(len(rows), "float32"), np.zeros(length - len(rows), "float32")]


def _stream(folds: list[Fold], part: str, batch_size: int, shuffle_seed: int | None,
            weighted: bool) -> tf.data.Dataset:
    """Every fold's `part` rows as one tf.data pipeline of (inputs, targets, weights) keyed per fold.
    A step holds `batch_size` rows of each fold (its own rows only). Every batch is full (the
    padding reaches a multiple of the batch): a shorter last batch would trace the step again."""
    longest = max(len(f.splits[part]) for f in folds)
    length = -(-longest // batch_size) * batch_size
    x, y, w = {}, {}, {}
    for k, fold in enumerate(folds):
        idx, mask = _padded(fold.splits[part], length)
        x.update({input_key(k, n): v[idx] for n, v in fold.inputs.items()})
        y[fold_key(k)] = fold.y[idx]
        w[fold_key(k)] = mask * (fold.weights[idx] if weighted and fold.weights is not None else 1.0)
    ds = tf.data.Dataset.from_tensor_slices((x, y, w))
    if shuffle_seed is not None:
        ds = ds.shuffle(length, seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


@dataclass
class FoldFit:
    epochs_run: list[int]       # per fold: the epochs it counted (up to its own stop)
    best_epoch: list[int]
    seconds: float              # the whole batched fit (compile and tracing included)
    outputs: list[np.ndarray]   # per fold: its model's output for every row (best weights)
    history: list[dict[str, list[float]]]   # per fold: its "loss" and "val_loss" per counted epoch


def fit_folds(folds: list[Fold], budget: FitBudget, batch_size: int, seed: int) -> FoldFit:
    """Train every fold's model at once (one compiled FoldModels), per-fold early stopping and best
    weights, then predict every row with each fold's best weights (one traced prediction)."""
    started = time.perf_counter()
    joint = FoldModels([f.model for f in folds])
    losses = {fold_key(k): task_objectives(f.task, f.n_classes, f.loss, f.target_stats)[0]
              for k, f in enumerate(folds)}
    joint.compile(optimizer=keras.optimizers.Adam(budget.lr), loss=losses)
    stopping = FoldStopping([f.model for f in folds], budget.patience)
    train = _stream(folds, "train", batch_size, seed, weighted=True)
    build_for_fit(joint, train)
    fitted = joint.fit(train, epochs=budget.epochs, verbose=0, shuffle=False,
              validation_data=_stream(folds, "val", max(len(f.splits["val"]) for f in folds), None, weighted=False),
              callbacks=[stopping])
    every = {input_key(k, n): v for k, f in enumerate(folds) for n, v in f.inputs.items()}
    rows = len(folds[0].y)   # one batch of every row: one trace (heads on cached inputs are small)
    predicted = joint.predict(tf.data.Dataset.from_tensor_slices(every).batch(rows), verbose=0)
    outputs = [np.asarray(predicted[fold_key(k)]) for k in range(len(folds))]
    history = [{name: [float(v) for v in fitted.history.get(f"{prefix}{fold_key(k)}_loss", [])[:epochs]]
                for name, prefix in (("loss", ""), ("val_loss", "val_"))}
               for k, epochs in enumerate(stopping.stopped_at)]
    return FoldFit(list(stopping.stopped_at), list(stopping.best_epoch), time.perf_counter() - started, outputs,
                   history)


def split_metrics(fold: Fold, outputs: np.ndarray, parts: tuple[str, ...] = ("val", "test")) -> dict[str, float]:
    """The task's loss and metrics (models/compile.task_objectives: what `model.evaluate` reports,
    without the weights' L2 penalty) of one fold's outputs on its `parts` rows, as {"test_accuracy": ...}."""
    values = {}
    for part in parts:
        rows = fold.splits[part]
        if not len(rows):
            continue
        loss, metrics = task_objectives(fold.task, fold.n_classes, fold.loss, fold.target_stats)
        y, out = fold.y[rows], outputs[rows]
        values[f"{part}_loss"] = float(loss(y, out))
        for metric in metrics:
            metric.update_state(y, out)
            values[f"{part}_{metric.name}"] = float(metric.result())
    return values


def head_folds(jobs: list[tuple[TrainConfig, dict, FrozenEncoder | None, np.ndarray | None]], ds: Dataset,
               inputs: dict, embedded: dict[tuple[int, int], dict[str, np.ndarray]] | None = None
               ) -> tuple[list[Fold], list[HeadSetup]]:
    """Each fold's head and its inputs (head_training.prepare_head), as fit_folds takes them. jobs:
    per fold (its config, its split {"repeat", "fold", "train", "val", "test"}, its frozen image
    encoder and maps, None for a method without images). embedded: the non-image branches'
    embeddings per (repeat, fold), filled here and reused by the next method (they depend only on
    the fold's rows)."""
    embedded = {} if embedded is None else embedded
    setups = []
    for config, split, frozen, maps in jobs:
        key = (split["repeat"], split["fold"])
        setup = prepare_head(config, ds, split, inputs, frozen, maps, embedded.get(key))
        embedded.setdefault(key, {}).update({b: v for b, v in setup.embedded.items() if b not in IMAGE_BRANCHES})
        setups.append(setup)
    folds = [Fold(s.head, {t.name: s.embedded[t.name] for t in s.head.inputs}, s.y, s.loss_weights, s.splits,
                  ds.task, len(ds.classes), s.config.loss, s.target_stats) for s in setups]
    return folds, setups


def train_heads(jobs: list[tuple[TrainConfig, dict, FrozenEncoder | None, np.ndarray | None]], ds: Dataset,
                inputs: dict, embedded: dict[tuple[int, int], dict[str, np.ndarray]] | None = None,
                budget: FitBudget = HEAD_BUDGET, keep: dict[int, Path] | None = None) -> list[dict]:
    """One method's heads on frozen inputs, every fold at once (head_folds, fit_folds); budget:
    before the user's settings (budget_for). keep: {job index: run folder}: those folds' whole
    models (their best weights) saved as run folders, as any run (the Playground explains them).

    Returns per fold what crossval.cross_validate reads of a run summary: "metrics" (val_* and test_*),
    "epochs_run", "best_epoch", "target_transform", "train_seconds" (the batched fit's seconds over K:
    the folds share them), "batched" (K) and "params" (the whole model's parameter count)."""
    keras.backend.clear_session()
    folds, setups = head_folds(jobs, ds, inputs, embedded)
    first = jobs[0][0]
    used = budget_for(first, budget)
    fit = fit_folds(folds, used, setups[0].config.batch_size, first.seed)
    summaries = [{"metrics": split_metrics(fold, out), "epochs_run": epochs, "best_epoch": best,
                  "target_transform": setup.transform, "train_seconds": round(fit.seconds / len(folds), 3),
                  "batched": len(folds), "params": int(setup.model.count_params())}
                 for fold, out, epochs, best, setup in zip(folds, fit.outputs, fit.epochs_run, fit.best_epoch, setups)]
    for i, run_dir in (keep or {}).items():
        setup, frozen, summary = setups[i], jobs[i][2], summaries[i]
        phase = Phase(1, used.epochs, used.lr, None)
        announce_start(run_dir, setup.config.model.arch, setup.splits, -(-len(setup.splits["train"]) //
                       setup.config.batch_size), [phase], frozen_encoder=frozen.mode if frozen else None)
        record = run_summary(
            run_dir, setup.config.model.arch, ds.task, stopped=False, epochs_run=summary["epochs_run"],
            epochs=used.epochs, best_epoch=summary["best_epoch"],
            phases=[{**phase.record(), "lr": used.lr, "epochs_run": summary["epochs_run"]}],
            history=fit.history[i], metrics=summary["metrics"],
            train_rows=len(setup.splits["train"]), train_seconds=summary["train_seconds"],
            encoder_weights=setup.source.record(), frozen_encoder=frozen.record() if frozen else None,
            target_transform=setup.transform, batched=len(folds), replicas=1, devices=[], precision="float32",
            streamed=False)
        finish_run(run_dir, record, saved_head_model(setup, ds, frozen))
    return summaries
