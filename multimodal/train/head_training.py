"""One run whose encoders are fixed: the fusion head trains on cached maps, the whole model is saved.

The comparison's fast modes (stagewise.py) train every method this way. The model is built
whole (`assembly.build_model`: encoders + head), the frozen image encoder's weights are copied into
every image backbone, and only the head (`assembly.head_of`) is fitted, on the encoder's cached maps
(feature_cache.py) and the other branches' embeddings computed once (the tabular and rows encoders
have no trainable weights, so a table-only method trains exactly as it would whole, only faster).
The heads read the maps of the un-augmented images: augmentation is off in this mode (the saved
config says augment false). The saved `.keras` file holds the whole
model, encoder included, so it loads in safe mode and predicts from raw inputs with no dependence
on the cache, like any other run. With `finetune`, the whole model is then trained end to end
from raw images (phase 2: `finetune_epochs` at `finetune_lr`), off by default. See
docs/ARCHITECTURE.md, "Training".
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from multimodal.core.config import TrainConfig, with_auto_settings
from multimodal.data.dataset import Dataset
from multimodal.data.inputs import encode_target
from multimodal.data.targets import choose_transform, target_stats
from multimodal.models.assembly import build_model, encoders_of, head_of, raw_input_names, select_inputs
from multimodal.models.batches import make_dataset, take
from multimodal.models.branches import image_backbones, set_backbone_trainable, tabular_stats
from multimodal.models.compile import compile_model
from multimodal.models.weights import WeightsSource
from multimodal.runs.evaluation import evaluate_splits
from multimodal.runs.run import background_rows
from multimodal.train.phases import Phase, fit_phases
from multimodal.train.pipeline import announce_start, finish_run, run_summary
from multimodal.train.training import row_weights

IMAGE_BRANCHES = ("image", "sequence")   # the branches whose embedding is the image encoder's map


@dataclass
class FrozenEncoder:
    """A frozen image encoder: its backbone's weights and the digest its cached maps are keyed by.

    source: the weights it started from (the run records them); mode: "stagewise" (trained in stage 1
    on `trained_on` rows) or "frozen" (pretrained or random init, used as it is)."""
    encoder: str
    mode: str
    source: WeightsSource
    backbone_weights: list[np.ndarray]
    sha256: str
    trained_on: dict[str, list[int]] | None = None   # stage 1: {"train", "val"} row positions

    def load_into(self, model: keras.Model) -> None:
        """Copy the weights into every image backbone of `model` and freeze them."""
        for backbone in image_backbones(model):
            backbone.set_weights(self.backbone_weights)
        set_backbone_trainable(model, 0)

    def record(self, rows: bool = True) -> dict:
        """What a run and a comparison record about it (JSON); without `rows`, the stage-1 rows
        are counted instead of listed."""
        trained_on = self.trained_on if rows or self.trained_on is None else \
            {k: len(v) for k, v in self.trained_on.items()}
        return {"mode": self.mode, "encoder": self.encoder, "weights_sha256": self.sha256,
                "started_from": self.source.record(), "trained_on": trained_on}


def head_inputs(model: keras.Model, inputs: dict, maps: np.ndarray | None,
                batch_size: int = 256, skip: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The head's inputs for every row: the cached maps for the image branches (None: the model has
    none), and the other encoders' outputs computed once (they must have no trainable weights);
    the branches in `skip` are left out."""
    out = {}
    for branch, encoder in encoders_of(model).items():
        if branch in skip:
            continue
        if branch in IMAGE_BRANCHES:
            out[branch] = maps
            continue
        if encoder.trainable_weights:
            raise ValueError(f"the {branch} encoder has trainable weights: its embeddings cannot be computed once")
        rows = make_dataset(select_inputs(encoder, inputs), None, batch_size)
        out[branch] = np.asarray(encoder.predict(rows, verbose=0))
    return out


@dataclass
class HeadSetup:
    """One fold's model, ready to fit: the whole model and what trains of it, `head` (on frozen
    encoders: prepare_head) or the whole model itself (prepare_whole), and what that reads.

    embedded: head's input for every row (cached maps, the other branches' embeddings; for the
    whole model, its own inputs);
    loss_weights: every row's class weight (None: unweighted); config: with the data's settings."""
    config: TrainConfig
    splits: dict[str, np.ndarray]
    model: keras.Model
    head: keras.Model
    raw: dict[str, np.ndarray]
    fed: dict[str, np.ndarray]
    embedded: dict[str, np.ndarray]
    y: np.ndarray
    loss_weights: np.ndarray | None
    stats: dict
    transform: str | None
    target_stats: dict | None
    source: WeightsSource


def _fold_model(config: TrainConfig, ds: Dataset, split: dict, inputs: dict, source: WeightsSource,
                augment: bool) -> tuple[TrainConfig, dict, np.ndarray, dict, str | None, dict | None, keras.Model]:
    """config's whole model for one fold, built as training.train builds it: (config with the data's
    settings, splits, every row's target, the table's statistics, the target transform and its
    statistics, all from the fold's training rows, and the model, with `source`'s weights)."""
    splits = {k: np.sort(np.asarray(split.get(k, []), dtype=np.int64)) for k in ("train", "val", "test")}
    train_idx = splits["train"]
    y = encode_target(ds.frame[ds.target], ds.task, ds.classes)
    regression = ds.task == "regression"
    y = y.reshape(-1, 1) if regression else y
    stats = tabular_stats(take(inputs, train_idx), ds.features)
    transform = choose_transform(y[train_idx], config.target_transform) if regression else None
    t_stats = target_stats(y[train_idx], transform == "log") if regression else None
    config = with_auto_settings(config, len(train_idx))
    if not augment:
        config = replace(config, model=replace(config.model, augment=False))
    keras.utils.set_random_seed(config.seed)
    model = build_model(config.model, ds.features, stats, ds.task, ds.classes, t_stats, source)
    return config, splits, y, stats, transform, t_stats, model


def _setup(parts: tuple, ds: Dataset, inputs: dict, source: WeightsSource, head: keras.Model | None) -> HeadSetup:
    """A HeadSetup of `_fold_model`'s parts, its head fed the model's own inputs (prepare_head then
    sets the head's); head None: the whole model trains."""
    config, splits, y, stats, transform, t_stats, model = parts
    raw = {k: inputs[k] for k in raw_input_names(model)}   # one array per column (the background)
    fed = select_inputs(model, raw)                         # the model's own inputs, columns stacked
    loss_weights = row_weights(y, splits["train"], len(ds.classes)) \
        if ds.task == "classification" and config.class_weight else None
    return HeadSetup(config, splits, model, head or model, raw, fed, fed, y, loss_weights, stats, transform,
                     t_stats, source)


def prepare_head(config: TrainConfig, ds: Dataset, split: dict, inputs: dict, frozen: FrozenEncoder | None,
                 maps: np.ndarray | None, embedded: dict[str, np.ndarray] | None = None) -> HeadSetup:
    """Build config's model for one fold (statistics and target transform from its training rows,
    the frozen encoder's weights copied in) and its head's inputs. embedded: the non-image
    branches' embeddings when already computed for this fold (they depend only on its rows)."""
    # No weights file loaded here: the frozen encoder's weights are copied in right after.
    parts = _fold_model(config, ds, split, inputs, WeightsSource(config.model.encoder, "none"), augment=False)
    model = parts[-1]
    if frozen is not None:
        frozen.load_into(model)
    source = frozen.source if frozen is not None else WeightsSource(config.model.encoder, "none")
    setup = _setup(parts, ds, inputs, source, head_of(model))
    known = {b: v for b, v in (embedded or {}).items() if b in encoders_of(model)}
    setup.embedded = {**head_inputs(model, setup.fed, maps, skip=tuple(known)), **known}
    return setup


def prepare_whole(config: TrainConfig, ds: Dataset, split: dict, inputs: dict, weights: WeightsSource) -> HeadSetup:
    """Build config's whole model for one fold, to be trained whole from raw inputs (stage 1 of a
    stage-wise comparison): `weights` loaded into its image encoder, augmentation as configured."""
    parts = _fold_model(config, ds, split, inputs, weights, augment=True)
    return _setup(parts, ds, inputs, weights, None)


def train_on_maps(config: TrainConfig, run_dir: Path, ds: Dataset, split: dict, inputs: dict,
                  frozen: FrozenEncoder | None, maps: np.ndarray | None, *, finetune: bool = False,
                  save: bool = True) -> dict:
    """Train config's method on the frozen encoder's `maps` (every row of `inputs`, in order) and
    save the run folder; returns the summary `training.train` returns, plus "frozen_encoder" (its
    record; None, with no maps, for a method that reads no image).

    split: {"train", "val", "test"} row positions (cross-validation's). inputs: `model_inputs` of
    the whole dataset. save=False leaves the model unsaved (only the events are written): a
    comparison keeps its folds' scores, not their models."""
    keras.backend.clear_session()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    setup = prepare_head(config, ds, split, inputs, frozen, maps)
    config, splits, model, head, fed, embedded = (setup.config, setup.splits, setup.model, setup.head,
                                                  setup.fed, setup.embedded)
    y, loss_weights, transform, t_stats, source = (setup.y, setup.loss_weights, setup.transform,
                                                   setup.target_stats, setup.source)
    train_idx, val_idx = splits["train"], splits["val"]

    def compiler(target: keras.Model):
        return lambda lr: compile_model(target, ds.task, len(ds.classes), lr, config.loss, t_stats)

    def batches_of(values: dict):
        def batches(idx: np.ndarray, shuffle_seed: int | None = None, weighted: bool = False):
            w = loss_weights[idx] if weighted and loss_weights is not None else None
            return make_dataset(take(values, idx), y[idx], config.batch_size, shuffle_seed, w)
        return batches

    steps = int(np.ceil(len(train_idx) / config.batch_size))
    plan = [Phase(1, config.epochs, config.lr, None)]
    if finetune and config.finetune_epochs and frozen is not None:
        unfreeze = config.unfreeze if frozen.source.path is not None else "all"
        plan.append(Phase(2, config.finetune_epochs, config.finetune_lr, unfreeze))
    epochs = announce_start(run_dir, config.model.arch, splits, steps, plan,
                            frozen_encoder=frozen.mode if frozen else None)
    started = time.perf_counter()
    on_maps = batches_of(embedded)
    fit = fit_phases(head, plan[:1], compiler(head), run_dir=run_dir, steps=steps, patience=config.patience,
                     restore_best=config.restore_best, x=on_maps(train_idx, config.seed, weighted=True),
                     validation_data=on_maps(val_idx))
    history, epochs_run, phases, stopped, best_epoch = fit.history, fit.epochs_run, fit.phases, fit.stopped, fit.best_epoch
    evaluate_on = (head, on_maps)
    if len(plan) > 1 and not stopped:   # phase 2: the whole model from raw images, encoder unfrozen
        on_raw = batches_of(fed)
        tune = fit_phases(model, plan[1:], compiler(model), run_dir=run_dir, steps=steps, patience=config.patience,
                          restore_best=config.restore_best, x=on_raw(train_idx, config.seed, weighted=True),
                          validation_data=on_raw(val_idx))
        for key in set(history) | set(tune.history):
            history[key] = history.get(key, [float("nan")] * epochs_run) + \
                tune.history.get(key, [float("nan")] * tune.epochs_run)
        epochs_run, stopped = epochs_run + tune.epochs_run, tune.stopped
        best_epoch = epochs_run - tune.epochs_run + tune.best_epoch
        phases = phases + tune.phases
        evaluate_on = (model, on_raw)
    train_seconds = time.perf_counter() - started
    metrics = evaluate_splits(evaluate_on[0], splits, evaluate_on[1])

    frozen_record = frozen.record() if frozen else None
    summary = run_summary(run_dir, config.model.arch, ds.task, stopped=stopped, epochs_run=epochs_run, epochs=epochs,
                          best_epoch=best_epoch, phases=phases, history=history, metrics=metrics,
                          train_rows=len(train_idx), train_seconds=train_seconds, encoder_weights=source.record(),
                          frozen_encoder=frozen_record, target_transform=transform, replicas=1, devices=[],
                          precision="float32", streamed=False)
    return finish_run(run_dir, summary, saved_head_model(setup, ds, frozen) if save else None)


def saved_head_model(setup: HeadSetup, ds: Dataset, frozen: FrozenEncoder | None) -> dict:
    """pipeline.finish_run's `saved` for setup's whole model (its head trained), as training.train
    saves a model: frozen, compiled afresh, no optimizer state."""
    config, model = setup.config, setup.model
    model.trainable = False
    compile_model(model, ds.task, len(ds.classes), config.lr, config.loss, setup.target_stats)
    background_idx = background_rows(setup.splits["train"], config.seed)
    return dict(config={**config.to_dict(), "encoder_weights": setup.source.record(),
                        "frozen_encoder": frozen.record() if frozen else None},
                dataset=ds, splits=setup.splits, stats=setup.stats, target_stats=setup.target_stats, model=model,
                background=take(setup.raw, background_idx), background_rows=background_idx)
