"""A training job: data -> tf.data -> fit with live events -> a saved run folder.

The same `train()` runs headless (CLI, tests) and inside the app's worker process. Progress goes
to `events.jsonl` in the run folder (the protocol of core/events.py), which the Train page tails;
creating the file `STOP` in the run folder ends training within one batch.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from multimodal.core.config import TrainConfig, auto_epochs
from multimodal.core.errors import DataError
from multimodal.core.events import append_event, stop_requested
from multimodal.core.tasks import TARGET_TRANSFORMS
from multimodal.data.dataset import Dataset, load_dataset
from multimodal.data.inputs import FeatureSpec, encode_target, model_inputs
from multimodal.data.splits import split_indices
from multimodal.models.assembly import build_model
from multimodal.models.batches import make_dataset, take
from multimodal.models.branches import tabular_stats
from multimodal.models.compile import compile_model
from multimodal.models.fusion import FUSION_METHODS
from multimodal.runs.evaluation import evaluate_splits
from multimodal.runs.run import background_rows, save_run
from multimodal.train import streaming


class LiveEvents(keras.callbacks.Callback):
    """Appends per-batch and per-epoch events, and ends training when STOP appears."""

    def __init__(self, run_dir: Path, steps: int):
        super().__init__()
        self.run_dir, self.steps, self.epoch, self.stopped = run_dir, steps, 0, False

    def on_train_batch_end(self, batch, logs=None):
        append_event(self.run_dir, {"type": "batch", "epoch": self.epoch, "step": batch + 1,
                                    "steps": self.steps, "logs": _floats(logs)})
        if stop_requested(self.run_dir):
            self.model.stop_training = True
            self.stopped = True

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        append_event(self.run_dir, {"type": "epoch", "epoch": epoch + 1, "logs": _floats(logs)})


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the lowest val_loss and puts them back when training
    ends for any reason (budget used up, early stopping, STOP). Keras' own EarlyStopping only
    restores them when it triggers."""

    def __init__(self):
        super().__init__()
        self.best, self.best_epoch, self.weights = np.inf, 0, None

    def on_epoch_end(self, epoch, logs=None):
        value = float((logs or {}).get("val_loss", np.nan))
        if np.isfinite(value) and value < self.best:
            self.best, self.best_epoch = value, epoch + 1
            self.weights = [np.array(w) for w in self.model.get_weights()]

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


def _callbacks(run_dir: Path, config: TrainConfig, steps: int) -> tuple[LiveEvents, BestWeights | None, list]:
    live = LiveEvents(run_dir, steps)
    callbacks = [live]
    best = BestWeights() if config.restore_best else None
    if best is not None:
        callbacks.append(best)
    if config.patience:
        callbacks += [keras.callbacks.EarlyStopping(patience=config.patience, monitor="val_loss"),
                      keras.callbacks.ReduceLROnPlateau(patience=max(2, config.patience // 2), factor=0.5,
                                                        monitor="val_loss", min_lr=1e-5)]
    return live, best, callbacks


def _floats(logs: dict | None) -> dict:
    return {k: float(v) for k, v in (logs or {}).items() if np.isfinite(float(v))}


def default_image_cache() -> Path:
    """Where the CLI keeps decoded images between runs: $MULTIMODAL_CACHE_DIR, else
    $XDG_CACHE_HOME/multimodal/images, else ~/.cache/multimodal/images. Entries are keyed by the
    image file's absolute path, modification time, size and the decode size (images.py), so an
    edited photo is decoded again; deleting the folder is always safe."""
    if os.environ.get("MULTIMODAL_CACHE_DIR"):
        return Path(os.environ["MULTIMODAL_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "multimodal" / "images"


def configure_devices(devices: int) -> None:
    """On a CPU-only machine, split the CPU into `devices` logical devices for MirroredStrategy.

    TensorFlow accepts this only before its runtime initialises (importing it is fine; the first
    op or device listing is too late), so train() calls it before anything else touches TF."""
    cpus = tf.config.list_physical_devices("CPU")
    if devices <= 1 or tf.config.list_physical_devices("GPU") or not cpus:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError:
        # Already initialised: fine if an earlier call (an earlier run in this process) split it.
        if len(tf.config.list_logical_devices("CPU")) >= devices:
            return
        raise DataError(f"training on {devices} devices needs a fresh process (TensorFlow has already "
                        "started with one CPU device); run it from the command line with --devices") from None


def distribution(devices: int) -> tuple[tf.distribute.Strategy | None, list[str], bool]:
    """(strategy or None, replica device names, mixed precision?) for `devices` devices.

    GPUs when TensorFlow sees any (mixed float16 compute there), else the logical CPUs from
    configure_devices. One CPU device needs no strategy: plain fit() is what runs."""
    gpus = tf.config.list_logical_devices("GPU")
    pool = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
    if devices > len(pool):
        raise DataError(f"{devices} devices requested but TensorFlow sees {len(pool)} "
                        f"({', '.join(pool) or 'none'}); lower --devices")
    if devices == 1 and not gpus:
        return None, pool[:1], False
    return tf.distribute.MirroredStrategy(pool[:devices]), pool[:devices], bool(gpus)


def _build_for_strategy(model, strategy, dataset) -> None:
    """Work around Keras 3.15 under a tf.distribute strategy: fit() and evaluate() first average
    one batch across the replicas to build the metrics (TF trainer `_maybe_symbolic_build`), and
    averaging fails on string inputs (categorical columns). Build that state from the dataset's
    element spec instead, once, and skip the averaging step for this model."""
    with strategy.scope():
        model._symbolic_build(data_batch=dataset.element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return {c: float(len(y) / (n_classes * counts[c])) if counts[c] else 1.0 for c in range(n_classes)}


def skewness(y: np.ndarray) -> float:
    y = np.asarray(y, dtype="float64").ravel()
    sd = y.std()
    return float(((y - y.mean()) ** 3).mean() / sd ** 3) if sd > 0 else 0.0


def choose_transform(y: np.ndarray, requested: str = "auto") -> str:
    """"log" or "none" for a regression target (training rows). auto: log when every value is
    positive and the distribution is right-skewed (skewness > 1), as prices and counts often are."""
    if requested not in TARGET_TRANSFORMS:
        raise DataError(f"unknown target transform '{requested}'; use auto, log or none")
    y = np.asarray(y, dtype="float64")
    if requested == "log":
        if (y <= 0).any():
            raise DataError(f"the log transform needs a positive target; its minimum is {y.min():g}. "
                            "Use target transform 'none'")
        return "log"
    if requested == "none":
        return "none"
    return "log" if y.min() > 0 and skewness(y) > 1.0 else "none"


def target_stats(y: np.ndarray, log: bool = False) -> dict:
    """Mean and std of the (log) target on the training rows: the head predicts the standardized value."""
    z = np.log(np.asarray(y, dtype="float64")) if log else np.asarray(y, dtype="float64")
    return {"mean": float(z.mean()), "std": float(z.std() or 1.0), "log": bool(log)}


def _check_split(split: dict, n: int) -> dict[str, np.ndarray]:
    out = {k: np.sort(np.asarray(split.get(k, []), dtype=np.int64)) for k in ("train", "val", "test")}
    if not len(out["train"]) or not len(out["val"]):
        raise DataError("an explicit split needs train and val rows")
    every = np.concatenate(list(out.values()))
    if len(np.unique(every)) != len(every) or every.min() < 0 or every.max() >= n:
        raise DataError("an explicit split must hold disjoint row positions inside the dataset")
    return out


def train(config: TrainConfig, run_dir: Path, dataset: Dataset | None = None,
          workdir: Path | None = None, split: dict | None = None, inputs: dict | None = None,
          image_cache: Path | None = None) -> dict:
    """Train one model, save the run folder, and return its summary (the CLI's JSON).

    split: explicit {"train", "val"[, "test"]} row positions (cross-validation) instead of the
    config's seeded split. inputs: precomputed `model_inputs` of the whole dataset at the
    config's image size (cross-validation decodes the images once). image_cache: folder of the
    per-image decode cache (the CLI passes `default_image_cache()`); None decodes every image.
    When the images stream (streaming.py), their decoded file lives in a temporary folder inside
    `workdir` (else the system temp dir) and is deleted when training ends."""
    configure_devices(config.devices)
    # Drop the models, layer names and graphs of earlier trainings in this process (cross-validation,
    # the quality bench). TensorFlow still keeps a few MB per run (tests/test_memory.py bounds it);
    # the app trains each run in a process of its own.
    keras.backend.clear_session()
    ds = dataset or load_dataset(config.data, workdir=workdir, target=config.target, task=config.task,
                                 overrides=config.overrides)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)   # only once the data is good: no empty run folders
    spec, size = ds.features, config.model.image_size
    tabular_spec = FeatureSpec([], spec.numeric_cols, spec.categorical_cols)
    method = FUSION_METHODS.get(config.model.arch)  # unknown: build_model reports it, nothing decoded
    reads_images = bool(spec.image_cols) and method is not None and \
        any(b in ("image", "sequence") for b in method.branches)
    stream = inputs is None and reads_images and \
        streaming.should_stream(config.stream, len(ds.frame), len(spec.image_cols), size)
    with tempfile.TemporaryDirectory(prefix="multimodal-stream-", dir=workdir) if stream \
            else contextlib.nullcontext() as stream_dir:
        store = None
        if inputs is None:
            inputs = model_inputs(ds.frame, ds.root, spec if reads_images and not stream else tabular_spec, size,
                                  cache_dir=image_cache)
            if stream:
                store = streaming.decode_to_disk(ds.frame, ds.root, spec, size, Path(stream_dir), image_cache)
        return _fit_and_save(config, run_dir, ds, split, inputs, store)


def _fit_and_save(config: TrainConfig, run_dir: Path, ds: Dataset, split: dict | None, inputs: dict,
                  store: streaming.ImageStore | None) -> dict:
    """train() once the inputs are decoded: in memory, or tabular in memory + images in `store`."""
    spec = ds.features
    splits = _check_split(split, len(ds.frame)) if split is not None else \
        split_indices(ds, config.val_fraction, config.seed)
    y = encode_target(ds.frame[ds.target], ds.task, ds.classes)
    if ds.task == "regression":
        y = y.reshape(-1, 1)
    train_idx, val_idx = splits["train"], splits["val"]
    stats = tabular_stats(take(inputs, train_idx), spec)
    transform = choose_transform(y[train_idx], config.target_transform) if ds.task == "regression" else None
    t_stats = target_stats(y[train_idx], transform == "log") if ds.task == "regression" else None
    epochs = config.epochs or auto_epochs(len(train_idx), config.batch_size)

    strategy, devices, mixed = distribution(config.devices)
    # Float16 stops at 65504: a log-target regression's TargetScale (exp) would overflow there.
    mixed = mixed and ds.task == "classification"
    keras.utils.set_random_seed(config.seed)
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with strategy.scope() if strategy else contextlib.nullcontext():
            model = build_model(config.model, spec, stats, ds.task, ds.classes, t_stats)
            compile_model(model, ds.task, len(ds.classes), config.lr, config.loss, t_stats)
    finally:
        keras.mixed_precision.set_global_policy("float32")  # layers keep the policy they were built with
    names = {t.name for t in model.inputs}
    inputs = {k: v for k, v in inputs.items() if k in names}

    def batches(idx: np.ndarray, shuffle_seed: int | None = None):
        if store is not None:
            return streaming.make_streaming_dataset(store, inputs, y, idx, config.batch_size, shuffle_seed)
        return make_dataset(take(inputs, idx), y[idx], config.batch_size, shuffle_seed)

    steps = int(np.ceil(len(train_idx) / config.batch_size))
    live, best, callbacks = _callbacks(run_dir, config, steps)
    append_event(run_dir, {"type": "start", "epochs": epochs, "steps": steps, "arch": config.model.arch,
                           "rows": {k: len(v) for k, v in splits.items()}})
    weights = class_weights(y[train_idx], len(ds.classes)) if ds.task == "classification" and config.class_weight else None
    train_batches = batches(train_idx, config.seed)
    if strategy is not None:
        _build_for_strategy(model, strategy, train_batches)
    started = time.perf_counter()
    fit = model.fit(train_batches, validation_data=batches(val_idx),
                    epochs=epochs, callbacks=callbacks, class_weight=weights, shuffle=False, verbose=0)
    train_seconds = time.perf_counter() - started
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    epochs_run = len(history.get("loss", []))

    metrics = evaluate_splits(model, splits, batches)
    background_idx = background_rows(train_idx, config.seed)
    background = take(inputs, background_idx)
    if store is not None:
        background["images"] = store.rows(background_idx)
    status = "stopped" if live.stopped else ("early_stopped" if epochs_run < epochs else "completed")
    summary = {
        "run_dir": str(run_dir), "arch": config.model.arch, "task": ds.task, "status": status,
        "epochs_run": epochs_run, "epochs": epochs, "best_epoch": best.best_epoch if best and best.weights else epochs_run,
        "target_transform": transform, "train_seconds": round(train_seconds, 3),
        "samples_per_second": round(epochs_run * len(train_idx) / train_seconds, 1) if train_seconds else 0.0,
        "replicas": len(devices), "devices": devices, "mixed_precision": mixed, "streamed": store is not None,
        "metrics": metrics, "history": history,
    }
    save_run(run_dir, config=config.to_dict(), dataset=ds, splits=splits, stats=stats, target_stats=t_stats,
             model=model, history=history, metrics=metrics, summary=summary,
             background=background, background_rows=background_idx)
    append_event(run_dir, {"type": "end", "status": status, "metrics": metrics, "epochs_run": epochs_run})
    return summary
