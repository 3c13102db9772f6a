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
from multimodal.train.fold_stopping import FoldAdam, FoldStopping, fold_key, fold_loss
from multimodal.train.head_training import IMAGE_BRANCHES, FrozenEncoder, HeadSetup, prepare_head, saved_head_model
from multimodal.train.phases import Phase
from multimodal.train.pipeline import announce_start, finish_run, run_summary


@dataclass(frozen=True)
class FitBudget:
    """How a comparison's fast-mode model trains: Adam's learning rate, early-stopping patience, epoch
    cap, and `as_a_run`: stop on the loss plus the L2 penalty and halve the rate on a plateau, per
    fold, as a single run does (fold_stopping.py; stage 1's whole models)."""
    lr: float
    patience: int
    epochs: int
    as_a_run: bool = False


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


def input_key(k: int, name: str) -> str:
    return f"fold{k}__{name}"


class FoldModels(keras.Model):
    """K models side by side: the model of fold keys[i] (default i) reads the inputs `fold<k>__<name>`
    and answers as output `fold<k>`. Nothing is shared between them but the optimizer's step counter."""

    def __init__(self, models: list[keras.Model], keys: list[int] | None = None, **kwargs):
        super().__init__(name="folds", **kwargs)
        self.folds = list(models)
        self.keys = list(range(len(models))) if keys is None else list(keys)
        self.input_names_per_fold = [[t.name for t in m.inputs] for m in models]

    def call(self, inputs, training=None):
        return {fold_key(k): model({n: inputs[input_key(k, n)] for n in names}, training=training)
                for k, model, names in zip(self.keys, self.folds, self.input_names_per_fold)}


def _padded(rows: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(row positions, 1/0 mask) of `length`: the rows, then weight-0 repeats of the same rows."""
    rows = np.asarray(rows, dtype=np.int64)
    return np.concatenate([rows, np.resize(rows, length - len(rows))]), \
        np.r_[np.ones(len(rows), "float32"), np.zeros(length - len(rows), "float32")]


def _stream(folds: dict[int, Fold], part: str, batch_size: int, shuffle_seed: int | None,
            weighted: bool) -> tf.data.Dataset:
    """The `part` rows of every fold ({fold key: fold}) as one tf.data pipeline of (inputs, targets,
    weights) keyed per fold. A step holds `batch_size` rows of each fold (its own rows only). Every
    batch is full (the padding reaches a multiple of the batch): a shorter last batch would trace
    the step again."""
    longest = max(len(f.splits[part]) for f in folds.values())
    length = -(-longest // batch_size) * batch_size
    x, y, w = {}, {}, {}
    for k, fold in folds.items():
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
    fits: int = 1               # compiled fits: 1, plus one per shrink (FoldStopping)


def fit_folds(folds: list[Fold], budget: FitBudget, batch_size: int, seed: int,
              predict_batch: int | None = None, trace_seconds: float | None = None) -> FoldFit:
    """Train every fold's model at once (one compiled FoldModels; again without the stopped folds
    when FoldStopping says so), per-fold early stopping and best weights, then predict every row
    with each fold's best weights, `predict_batch` rows at a time (None: every row in one batch,
    one trace: right for heads on cached inputs, which are small). One Adam serves every fit: a
    fold's moments and step count go on across them as in a fit of its own. trace_seconds: what
    tracing the steps again costs (None: measured, FoldStopping)."""
    started = time.perf_counter()
    models = [f.model for f in folds]
    optimizer = FoldAdam(budget.lr, models) if budget.as_a_run else keras.optimizers.Adam(budget.lr)
    stopping = FoldStopping(models, budget.patience, trace_seconds, optimizer if budget.as_a_run else None)
    history = [{"loss": [], "val_loss": []} for _ in folds]
    epoch, fits = 0, 0
    while epoch < budget.epochs and any(stopping.active):
        training = {k: f for k, f in enumerate(folds) if stopping.active[k]}
        joint = FoldModels([f.model for f in training.values()], list(training))
        joint.compile(optimizer=optimizer, loss={fold_key(k): task_objectives(f.task, f.n_classes, f.loss,
                                                                              f.target_stats)[0]
                                                 for k, f in training.items()})
        train = _stream(training, "train", batch_size, seed, weighted=True)
        build_for_fit(joint, train)
        stopping.begin(list(training))
        val_rows = max(len(f.splits["val"]) for f in training.values())
        fitted = joint.fit(train, initial_epoch=epoch, epochs=budget.epochs, verbose=0, shuffle=False,
                           validation_data=_stream(training, "val", val_rows, None, weighted=False),
                           callbacks=[stopping])
        for k in training:
            for name, prefix in (("loss", ""), ("val_loss", "val_")):
                history[k][name] += [float(v) for v in fold_loss(fitted.history, k, len(training), prefix) or []]
        epoch, fits = epoch + len(fitted.epoch), fits + 1
        if not stopping.shrink:
            break
    stopping.restore_best()
    every = {input_key(k, n): v for k, f in enumerate(folds) for n, v in f.inputs.items()}
    predicted = FoldModels([f.model for f in folds]).predict(
        tf.data.Dataset.from_tensor_slices(every).batch(predict_batch or len(folds[0].y)), verbose=0)
    outputs = [np.asarray(predicted[fold_key(k)]) for k in range(len(folds))]
    history = [{name: values[:epochs] for name, values in h.items()} for h, epochs in zip(history, stopping.stopped_at)]
    return FoldFit(list(stopping.stopped_at), list(stopping.best_epoch), time.perf_counter() - started, outputs,
                   history, fits)


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


def setup_folds(setups: list[HeadSetup], ds: Dataset) -> list[Fold]:
    """Each fold's setup (head_training.prepare_head or prepare_whole) as fit_folds takes it."""
    return [Fold(s.head, {t.name: s.embedded[t.name] for t in s.head.inputs}, s.y, s.loss_weights, s.splits,
                 ds.task, len(ds.classes), s.config.loss, s.target_stats) for s in setups]


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
    return setup_folds(setups, ds), setups


def train_heads(jobs: list[tuple[TrainConfig, dict, FrozenEncoder | None, np.ndarray | None]], ds: Dataset,
                inputs: dict, embedded: dict[tuple[int, int], dict[str, np.ndarray]] | None = None,
                budget: FitBudget = HEAD_BUDGET, keep: dict[int, Path] | None = None) -> list[dict]:
    """One method's heads on frozen inputs, every fold at once (head_folds, train_setups); budget:
    before the user's settings (budget_for). keep: as train_setups'."""
    keras.backend.clear_session()
    folds, setups = head_folds(jobs, ds, inputs, embedded)
    return train_setups(setups, folds, ds, budget_for(jobs[0][0], budget), [job[2] for job in jobs], keep)


def train_setups(setups: list[HeadSetup], folds: list[Fold], ds: Dataset, budget: FitBudget,
                 frozen: list[FrozenEncoder | None], keep: dict[int, Path] | None = None,
                 predict_batch: int | None = None) -> list[dict]:
    """Train `folds` (setup_folds of `setups`) at once under `budget`; frozen: each fold's frozen
    image encoder (None: none, or the whole model trains). keep: {fold index: run folder}: those
    folds' whole models (their best weights) saved as run folders, as any run (the Playground
    explains them). predict_batch: as fit_folds'.

    Returns per fold what crossval.cross_validate reads of a run summary: "metrics" (val_* and test_*),
    "epochs_run", "best_epoch", "target_transform", "train_seconds" (the batched fit's seconds over K:
    the folds share them), "batched" (K) and "params" (the whole model's parameter count)."""
    first = setups[0].config
    fit = fit_folds(folds, budget, first.batch_size, first.seed, predict_batch)
    summaries = [{"metrics": split_metrics(fold, out), "epochs_run": epochs, "best_epoch": best,
                  "target_transform": setup.transform, "train_seconds": round(fit.seconds / len(folds), 3),
                  "batched": len(folds), "params": int(setup.model.count_params())}
                 for fold, out, epochs, best, setup in zip(folds, fit.outputs, fit.epochs_run, fit.best_epoch, setups)]
    for i, run_dir in (keep or {}).items():
        setup, encoder, summary = setups[i], frozen[i], summaries[i]
        phase = Phase(1, budget.epochs, budget.lr, None)
        announce_start(run_dir, setup.config.model.arch, setup.splits, -(-len(setup.splits["train"]) //
                       setup.config.batch_size), [phase], frozen_encoder=encoder.mode if encoder else None)
        record = run_summary(
            run_dir, setup.config.model.arch, ds.task, stopped=False, epochs_run=summary["epochs_run"],
            epochs=budget.epochs, best_epoch=summary["best_epoch"],
            phases=[{**phase.record(), "lr": budget.lr, "epochs_run": summary["epochs_run"]}],
            history=fit.history[i], metrics=summary["metrics"],
            train_rows=len(setup.splits["train"]), train_seconds=summary["train_seconds"],
            encoder_weights=setup.source.record(), frozen_encoder=encoder.record() if encoder else None,
            target_transform=setup.transform, batched=len(folds), replicas=1, devices=[], precision="float32",
            streamed=False)
        finish_run(run_dir, record, saved_head_model(setup, ds, encoder))
    return summaries
