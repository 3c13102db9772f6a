"""A training job: data -> encoder weights -> tf.data -> fit with live events -> a saved run folder.

The same `train()` runs headless (CLI, tests) and inside the app's worker process. Progress goes
to `events.jsonl` in the run folder (the protocol of core/events.py), which the Train page tails;
creating the file `STOP` in the run folder ends training within one batch. The fit itself, in one
phase or two (a pretrained backbone frozen, then fine-tuned), is phases.py.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from multimodal.core.config import TrainConfig, with_auto_settings
from multimodal.core.errors import DataError
from multimodal.core.events import Event, append_event, event
from multimodal.data.dataset import Dataset, load_dataset_for
from multimodal.data.inputs import FeatureSpec, encode_target, model_inputs
from multimodal.data.splits import split_indices
from multimodal.data.targets import choose_transform, target_stats
from multimodal.models.assembly import build_model, compute_in_float32, raw_input_names, select_inputs
from multimodal.models.batches import make_dataset, take
from multimodal.models.branches import tabular_stats
from multimodal.models.compile import compile_model
from multimodal.models.fusion import FUSION_METHODS
from multimodal.models.weights import WeightsSource, resolve_weights
from multimodal.runs.evaluation import evaluate_splits
from multimodal.runs.run import background_rows
from multimodal.train import streaming
from multimodal.train.devices import configure_devices, distribution
from multimodal.train.multiworker import logs_as_vectors
from multimodal.train.phases import fit_phases, plan_phases
from multimodal.train.pipeline import announce_start, finish_run, run_summary
from multimodal.train.precision import image_policy


def default_image_cache() -> Path:
    """Where the CLI keeps decoded images between runs: $MULTIMODAL_CACHE_DIR, else
    $XDG_CACHE_HOME/multimodal/images, else ~/.cache/multimodal/images. Entries are keyed by the
    image file's absolute path, modification time, size and the decode size (images.py), so an
    edited photo is decoded again; deleting the folder is always safe."""
    if os.environ.get("MULTIMODAL_CACHE_DIR"):
        return Path(os.environ["MULTIMODAL_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "multimodal" / "images"


def _build_for_strategy(model, strategy, dataset) -> None:
    """Work around Keras 3.15 under a tf.distribute strategy: fit() and evaluate() first average
    one batch across the replicas to build the metrics (TF trainer `_maybe_symbolic_build`), and
    averaging fails on string inputs (categorical columns). Build that state from the dataset's
    element spec instead, once, and skip the averaging step for this model."""
    with strategy.scope():
        model._symbolic_build(data_batch=dataset.element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    logs_as_vectors(model, strategy)


def class_weights(y: np.ndarray, n_classes: int) -> dict[int, float]:
    counts = np.bincount(y, minlength=n_classes).astype(float)
    return {c: float(len(y) / (n_classes * counts[c])) if counts[c] else 1.0 for c in range(n_classes)}


def row_weights(y: np.ndarray, train_rows: np.ndarray, n_classes: int) -> np.ndarray:
    """Each row's class weight (`class_weights` of the training rows), batched with the rows: the
    loss of Keras' fit(class_weight=...) without the per-batch map Keras appends after the
    pipeline's prefetch, which cost 0.4-0.5 ms a step (a third of a small table's step)."""
    per_class = class_weights(y[train_rows], n_classes)
    return np.array([per_class[c] for c in range(n_classes)], dtype="float32")[np.asarray(y, dtype=int).ravel()]


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
    configure_devices(config.devices, config.multi_worker)
    # Drop the models, layer names and graphs of earlier trainings in this process (cross-validation,
    # the quality bench). TensorFlow still keeps a few MB per run (tests/test_memory.py bounds it);
    # the app trains each run in a process of its own.
    keras.backend.clear_session()
    ds = dataset or load_dataset_for(config, workdir)
    run_dir = Path(run_dir)
    spec, size = ds.features, config.model.image_size
    tabular_spec = FeatureSpec([], spec.numeric_cols, spec.categorical_cols)
    method = FUSION_METHODS.get(config.model.arch)  # unknown: build_model reports it, nothing decoded
    reads_images = bool(spec.image_cols) and method is not None and method.reads_images
    weights = run_weights(config, run_dir, reads_images)   # before decoding: "stop" ends it at once
    run_dir.mkdir(parents=True, exist_ok=True)   # only once the data is good: no empty run folders
    append_event(run_dir, event(Event.WEIGHTS, encoder=config.model.encoder, **weights.record(),
                                notice=weights.notice))
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
        return _fit_and_save(config, run_dir, ds, split, inputs, store, weights)


def run_weights(config: TrainConfig, run_dir: Path, reads_images: bool) -> WeightsSource:
    """The image encoder's weights for this run, resolved once (models/weights.py): the config's
    file, Keras' cache, a download (its progress as "weights" events when the run folder exists:
    the app's) or none, then random init or a stop as `on_missing_weights` says. Source "none"
    without looking when the model reads no image."""
    encoder = config.model.encoder
    if not reads_images:
        return WeightsSource(encoder, "none")

    def downloading(done: int) -> None:
        if run_dir.is_dir():
            append_event(run_dir, event(Event.WEIGHTS, encoder=encoder, status="downloading", bytes=done))
    return resolve_weights(encoder, config.model.encoder_weights_file, on_missing=config.on_missing_weights,
                           on_progress=downloading)


def _fit_and_save(config: TrainConfig, run_dir: Path, ds: Dataset, split: dict | None, inputs: dict,
                  store: streaming.ImageStore | None, weights: WeightsSource) -> dict:
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
    # Settings left to the data (None) come from the training rows (config.small_data_settings);
    # the run's config.json records the values used.
    config = with_auto_settings(config, len(train_idx))
    phases = plan_phases(config, pretrained=weights.path is not None)

    # The image encoder trains in mixed precision where the hardware computes it natively; the
    # rest of the model, and the whole saved model, in float32 (train/precision.py).
    strategy, devices, on_gpu = distribution(config.devices, config.multi_worker)
    policy = image_policy(config.precision, on_gpu)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_model(config.model, spec, stats, ds.task, ds.classes, t_stats, weights, image_policy=policy)
    # Raw inputs (one array per column) are kept for the saved background rows the explanations
    # perturb; the model is fed its own inputs (tabular columns stacked once, models/assembly.py).
    inputs = {k: inputs[k] for k in raw_input_names(model) if k in inputs}
    # Streamed images are not in memory: the store reads them per batch.
    feed = select_inputs(model, inputs, skip=("images",) if store is not None else ())

    loss_weights = row_weights(y, train_idx, len(ds.classes)) \
        if ds.task == "classification" and config.class_weight else None

    def batches(idx: np.ndarray, shuffle_seed: int | None = None, weighted: bool = False):
        """Rows `idx` as batches; `weighted`: with the class weights (the training rows only)."""
        w = loss_weights if weighted else None
        if store is not None:
            return streaming.make_streaming_dataset(store, feed, y, idx, config.batch_size, shuffle_seed, w)
        return make_dataset(take(feed, idx), y[idx], config.batch_size, shuffle_seed,
                            None if w is None else w[idx])

    steps = int(np.ceil(len(train_idx) / config.batch_size))
    epochs = announce_start(run_dir, config.model.arch, splits, steps, phases)
    train_batches = batches(train_idx, config.seed, weighted=True)

    def compile_for(lr: float) -> None:
        with strategy.scope() if strategy else contextlib.nullcontext():
            compile_model(model, ds.task, len(ds.classes), lr, config.loss, t_stats)
        if strategy is not None:
            _build_for_strategy(model, strategy, train_batches)

    started = time.perf_counter()
    fit = fit_phases(model, phases, compile_for, run_dir=run_dir, steps=steps, patience=config.patience,
                     restore_best=config.restore_best, x=train_batches, validation_data=batches(val_idx))
    train_seconds = time.perf_counter() - started
    history, epochs_run = fit.history, fit.epochs_run

    # The saved model computes in float32, and its metrics are those of the model as saved (the
    # loss with its L2 terms, as in training: evaluated before freezing, which drops them).
    if policy != "float32":
        compute_in_float32(model)
        compile_for(config.lr)   # drops the steps traced in the mixed policy
    metrics = evaluate_splits(model, splits, batches)
    # It predicts and is explained, never trained further: frozen and compiled afresh it carries no
    # optimizer state, which would triple a backbone's file (Adam keeps two moments per weight) and
    # push Xception past the import limit. Frozen, its BatchNormalization runs in inference mode,
    # as it does whenever the model predicts.
    model.trainable = False
    compile_for(config.lr)
    background_idx = background_rows(train_idx, config.seed)
    background = take(inputs, background_idx)
    if store is not None:
        background["images"] = store.rows(background_idx)
    summary = run_summary(run_dir, config.model.arch, ds.task, stopped=fit.stopped, epochs_run=epochs_run, epochs=epochs,
                          best_epoch=fit.best_epoch, phases=fit.phases, history=history, metrics=metrics,
                          train_rows=len(train_idx), train_seconds=train_seconds, encoder_weights=weights.record(),
                          target_transform=transform, replicas=len(devices), devices=devices, precision=policy,
                          streamed=store is not None)
    return finish_run(run_dir, summary, dict(config={**config.to_dict(), "encoder_weights": weights.record()},
                                             dataset=ds, splits=splits, stats=stats, target_stats=t_stats, model=model,
                                             background=background, background_rows=background_idx))
