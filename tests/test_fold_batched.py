"""The fold-batched trainer: K folds' heads in one compiled model, each fed only its own rows,
early stopping and best weights per fold (train/fold_batched.py)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from multimodal.core.comparison import ComparisonOptions
from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.dataset import load_dataset
from multimodal.data.inputs import model_inputs
from multimodal.train.crossval import compare_with_baselines, cv_splits
from multimodal.train.feature_cache import FeatureCache
from multimodal.train.fold_batched import FitBudget, Fold, budget_for, fit_folds, head_folds
from multimodal.train.fold_stopping import FoldAdam, FoldStopping
from multimodal.train.stagewise import FastFolds, resolve_mode

SIZE = 16
BUDGET = FitBudget(lr=1e-2, patience=0, epochs=4)


def fast_folds(csv: Path, mode: str, change_row: int | None, **settings) -> FastFolds:
    """FastFolds on the data at csv; change_row: that row's label flipped and its pixels inverted first."""
    ds = load_dataset(csv)
    inputs = model_inputs(ds.frame, ds.root, ds.features, SIZE)
    if change_row is not None:
        column = ds.frame.columns.get_loc(ds.target)
        labels = ds.frame[ds.target].astype(str)
        ds.frame.iloc[change_row, column] = next(c for c in ds.classes if c != labels.iloc[change_row])
        inputs = {**inputs, "images": inputs["images"].copy()}
        inputs["images"][change_row] = 255 - inputs["images"][change_row]
    config = TrainConfig(data=str(csv), batch_size=8, **settings, model=ModelConfig(arch="late_concat", image_size=SIZE))
    _, weights = resolve_mode(mode, config, images=True)
    return FastFolds(mode, config, ds, inputs, weights, FeatureCache(None))


def trained_heads(csv: Path, change_row: int | None = None, splits: list[dict] | None = None) -> tuple[list, list[dict]]:
    """Every fold's late_concat head (frozen random-init encoder: maps of every row) trained
    fold-batched; change_row: as fast_folds'. splits: the folds (default: the data's; a changed
    label would otherwise move rows between stratified folds)."""
    fast = fast_folds(csv, "frozen", change_row)
    ds, inputs, config = fast.ds, fast.inputs, fast.config
    splits = splits or cv_splits(ds, 3, 1, config.seed, config.val_fraction)
    jobs = []
    for s in splits:
        frozen = fast._encoder_for(config, s)
        jobs.append((replace(config, seed=config.seed + s["fold"]), s, frozen, fast._maps(frozen)[0]))
    keras.backend.clear_session()
    folds, _ = head_folds(jobs, ds, inputs)
    fit_folds(folds, BUDGET, 8, config.seed)
    return [f.model.get_weights() for f in folds], splits


@pytest.fixture(scope="module")
def reference(tiny_samples):
    return trained_heads(tiny_samples["skin_lesions"])


def test_a_held_out_row_changes_none_of_its_folds_weights(tiny_samples, reference):
    weights, splits = reference
    held = int(splits[0]["test"][0])               # held out by fold 0, a training row of folds 1 and 2
    assert all(held in np.r_[s["train"], s["val"]] for s in splits[1:])
    changed, _ = trained_heads(tiny_samples["skin_lesions"], change_row=held, splits=splits)
    for before, after in zip(weights[0], changed[0]):
        np.testing.assert_array_equal(before, after)  # fold 0 never saw the row: bit for bit the same
    # The other folds learn from it: their heads moved (so the check above can fail).
    assert any(not np.array_equal(b, a) for b, a in zip(weights[1] + weights[2], changed[1] + changed[2]))


def test_stage_one_trains_each_folds_whole_model_on_its_own_rows_only(tiny_samples, reference):
    """Stage 1 (stage-wise image_only, whole models from raw pixels, augmented) fold-batched: a
    held-out row leaves its fold's encoder bit for bit the same and moves the others'."""
    _, splits = reference
    held = int(splits[0]["test"][0])

    def encoders(change_row: int | None) -> list[str]:
        fast = fast_folds(tiny_samples["skin_lesions"], "stagewise", change_row, epochs=1)
        trained = fast.folds_trainer("image_only")([(replace(fast.config, seed=fast.config.seed + s["fold"]), s)
                                                    for s in splits])
        assert [t["batched"] for t in trained] == [3, 3, 3] and all(t["maps"]["computed"] for t in trained)
        return [t["frozen_encoder"]["weights_sha256"] for t in trained]
    before, after = encoders(None), encoders(held)
    assert before[0] == after[0]
    assert before[1] != after[1] and before[2] != after[2]


def fold_models(k: int) -> list[keras.Model]:
    models = []
    for seed in range(k):
        keras.utils.set_random_seed(seed)
        models.append(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    return models


class Joint:   # what a callback reads of the model it serves
    stop_training = False


def test_early_stopping_and_best_weights_are_per_fold():
    models = fold_models(2)
    stopping = FoldStopping(models, patience=2)
    joint = Joint()
    stopping.set_model(joint)
    fold0 = [1.0, 0.5, 0.7, 0.8, 0.9, 0.3]          # best at epoch 2, stops counting after epoch 4
    fold1 = [1.0, 0.9, 0.8, 0.7, 0.6, 0.9]          # still improving until epoch 5
    seen = {0: {}, 1: {}}
    for epoch, (a, b) in enumerate(zip(fold0, fold1)):
        for k, model in enumerate(models):
            model.set_weights([np.full(w.shape, epoch + 10 * k, "float32") for w in model.get_weights()])
            seen[k][epoch + 1] = [w.copy() for w in model.get_weights()]
        # A first epoch (the trace) far longer than the rest: a stopped fold never pays a new trace.
        stopping.epoch_done(epoch, {"val_fold0_loss": a, "val_fold1_loss": b}, seconds=100.0 if epoch == 0 else 1.0)
        assert joint.stop_training is False          # fold 1 has not stopped
    assert stopping.best_epoch == [2, 5] and stopping.stopped_at == [4, 6]
    stopping.restore_best()
    for k, best in ((0, 2), (1, 5)):                  # fold 0's later 0.3 came after its stop
        for restored, kept in zip(models[k].get_weights(), seen[k][best]):
            np.testing.assert_array_equal(restored, kept)
    for epoch in range(2):                            # both stopped: the joint fit ends
        stopping.epoch_done(6 + epoch, {"val_fold0_loss": 2.0, "val_fold1_loss": 2.0}, seconds=1.0)
    assert joint.stop_training is True and not stopping.shrink


@pytest.mark.parametrize("first_epoch, shrinks", [(6.0, True), (30.0, False)])
def test_a_stopped_fold_leaves_the_fit_when_its_compute_outweighs_a_new_trace(first_epoch, shrinks):
    """3 folds, epochs of 3 s after a first one of `first_epoch` s (a trace of first_epoch - 3 s).
    Fold 0 stops after epoch 5 (4 epochs without a new best); folds 1 and 2 have just improved, so
    they run at least 4 more epochs (patience 4). Fold 0's third of an epoch over those 4 epochs
    costs 4 s: more than a 3 s trace (leave the fit), less than a 27 s one (stay)."""
    stopping = FoldStopping(fold_models(3), patience=4)
    joint = Joint()
    stopping.set_model(joint)
    stopping.begin([0, 1, 2])
    losses = {0: [1.0, 2.0, 2.0, 2.0, 2.0], 1: [1.0, 0.9, 0.8, 0.7, 0.6], 2: [1.0, 0.9, 0.8, 0.7, 0.6]}
    for epoch in range(5):
        stopping.epoch_done(epoch, {f"val_fold{k}_loss": v[epoch] for k, v in losses.items()},
                            seconds=first_epoch if epoch == 0 else 3.0)
        assert joint.stop_training is (shrinks and epoch == 4)
    assert stopping.active == [False, True, True] and stopping.stopped_at[0] == 5
    assert stopping.trace_seconds == first_epoch - 3.0
    assert stopping.shrink is shrinks


def test_a_shrunk_fit_goes_on_with_the_active_folds_only():
    """fit_folds: a fold whose early-stopping rows contradict its training rows (their targets
    negated) stops early and leaves the fit (a free trace: trace_seconds 0); the other goes on to
    the budget with the same optimizer, and every fold's history ends at its own stop."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    folds = []
    for k, model in enumerate(fold_models(2)):
        y = x @ np.array([[1.0], [-2.0]], "float32")
        if k == 1:
            y[48:] = -y[48:]
        splits = {"train": np.arange(48), "val": np.arange(48, 64), "test": np.arange(0)}
        folds.append(Fold(model, {model.inputs[0].name: x}, y, None, splits, "regression", 0, None, None))
    fit = fit_folds(folds, FitBudget(lr=2e-2, patience=3, epochs=10), batch_size=16, seed=0, trace_seconds=0.0)
    assert fit.epochs_run[0] == 10 and fit.epochs_run[1] < 10 and fit.fits == 2
    assert [len(h["loss"]) for h in fit.history] == fit.epochs_run
    assert fit.history[0]["val_loss"][-1] < fit.history[0]["val_loss"][0] / 2     # fold 0 kept learning
    assert all(np.isfinite(o).all() and o.shape == (64, 1) for o in fit.outputs)


def test_the_budget_yields_to_the_users_settings():
    budget = FitBudget(3e-3, 8, 80)
    assert budget_for(TrainConfig(data="x.csv"), budget) == budget
    assert budget_for(TrainConfig(data="x.csv", epochs=5, patience=2, lr=1e-2), budget) == FitBudget(1e-2, 2, 5)


def test_a_fast_comparison_trains_each_methods_folds_in_one_batch(tiny_samples, tmp_path):
    csv = tiny_samples["house_prices"]
    config = TrainConfig(data=str(csv), epochs=2, batch_size=8, model=ModelConfig(arch="late_concat", image_size=SIZE))
    result = compare_with_baselines(config, ComparisonOptions(2, 1), dataset=load_dataset(csv), cache_dir=tmp_path)
    for arch in ("image_only", "tabular_only", "linear", "late_concat"):   # image_only: stage 1, whole models
        folds = result["results"][arch]["folds"]
        assert [f["batched"] for f in folds] == [2, 2]
        assert all(np.isfinite(f["metrics"]["val_mae"]) and f["metrics"]["val_mae"] > 0 for f in folds)
        assert all(1 <= f["best_epoch"] <= f["epochs_run"] <= 2 for f in folds)
    assert result["gain"] is not None and {g["arch"] for g in result["gain"]["methods"]} >= {"late_concat"}


def test_fold_adam_steps_each_fold_at_its_own_rate():
    """Halving fold 1's scale halves its first Adam step (Adam's first step is lr * sign(gradient))
    and leaves fold 0's as it was."""
    models = fold_models(2)
    optimizer = FoldAdam(1e-2, models)
    optimizer.fold_scales.assign([1.0, 0.5])
    before = [[np.array(v) for v in m.trainable_variables] for m in models]
    grads = [np.ones(v.shape, "float32") for m in models for v in m.trainable_variables]
    optimizer.apply_gradients(zip(grads, [v for m in models for v in m.trainable_variables]))
    for k, scale in ((0, 1.0), (1, 0.5)):
        for b, v in zip(before[k], models[k].trainable_variables):
            np.testing.assert_allclose(b - np.array(v), 1e-2 * scale, rtol=1e-3)


def test_as_a_run_a_fold_stops_on_loss_plus_penalty_and_halves_its_rate_on_a_plateau():
    """Stage 1's folds train as single runs do: the monitored value is the val loss plus the fold
    model's L2 penalty, and a fold whose value stalls for plateau_patience epochs gets half its rate."""
    models = []
    for seed in range(2):
        keras.utils.set_random_seed(seed)
        models.append(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_regularizer="l2")]))
    optimizer = FoldAdam(1e-2, models)
    stopping = FoldStopping(models, patience=4, optimizer=optimizer)
    stopping.set_model(Joint())
    penalty = [sum(float(x) for x in m.losses) for m in models]
    assert all(p > 0 for p in penalty)
    assert stopping.monitored(0, {"val_fold0_loss": 1.0, "val_fold1_loss": 2.0}) == pytest.approx(1.0 + penalty[0])
    alone = {"val_loss": 1.0 + penalty[1]}        # one fold left: Keras logs its val_loss, penalty included
    heads = FoldStopping(models, patience=4)
    for callback in (stopping, heads):
        callback.begin([1])
    assert stopping.monitored(1, alone) == pytest.approx(1.0 + penalty[1])
    assert heads.monitored(1, alone) == pytest.approx(1.0)
    stopping.begin([0, 1])
    for epoch in range(3):   # fold 0 stalls (plateau patience 2 for patience 4), fold 1 keeps improving
        stopping.epoch_done(epoch, {"val_fold0_loss": 1.0, "val_fold1_loss": 1.0 - 0.1 * epoch}, seconds=1.0)
    np.testing.assert_allclose(optimizer.fold_scales.numpy(), [0.5, 1.0])
    assert stopping.active == [True, True] and stopping.wait == [2, 0]
