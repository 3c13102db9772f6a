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
from multimodal.train.fold_batched import FitBudget, FoldStopping, budget_for, fit_folds, head_folds
from multimodal.train.stagewise import FastFolds, resolve_mode

SIZE = 16
BUDGET = FitBudget(lr=1e-2, patience=0, epochs=4)


def trained_heads(csv: Path, change_row: int | None = None, splits: list[dict] | None = None) -> tuple[list, list[dict]]:
    """Every fold's late_concat head (frozen random-init encoder: maps of every row) trained
    fold-batched; change_row: that row's label flipped and its pixels inverted first. splits: the
    folds (default: the data's; a changed label would otherwise move rows between stratified folds)."""
    ds = load_dataset(csv)
    inputs = model_inputs(ds.frame, ds.root, ds.features, SIZE)
    if change_row is not None:
        column = ds.frame.columns.get_loc(ds.target)
        labels = ds.frame[ds.target].astype(str)
        ds.frame.iloc[change_row, column] = next(c for c in ds.classes if c != labels.iloc[change_row])
        inputs = {**inputs, "images": inputs["images"].copy()}
        inputs["images"][change_row] = 255 - inputs["images"][change_row]
    config = TrainConfig(data=str(csv), batch_size=8, model=ModelConfig(arch="late_concat", image_size=SIZE))
    _, weights = resolve_mode("frozen", config, images=True)
    fast = FastFolds("frozen", config, ds, inputs, weights, FeatureCache(csv.parent / f"cache-{change_row}"))
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


def test_early_stopping_and_best_weights_are_per_fold():
    models = []
    for k in range(2):
        keras.utils.set_random_seed(k)
        models.append(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))

    class Joint:   # what a callback reads of the model it serves
        stop_training = False

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
        stopping.on_epoch_end(epoch, {"val_fold0_loss": a, "val_fold1_loss": b})
        assert joint.stop_training is False          # fold 1 has not stopped
    assert stopping.best_epoch == [2, 5] and stopping.stopped_at == [4, 6]
    stopping.on_train_end()
    for k, best in ((0, 2), (1, 5)):                  # fold 0's later 0.3 came after its stop
        for restored, kept in zip(models[k].get_weights(), seen[k][best]):
            np.testing.assert_array_equal(restored, kept)
    for epoch in range(2):                            # both stopped: the joint fit ends
        stopping.on_epoch_end(6 + epoch, {"val_fold0_loss": 2.0, "val_fold1_loss": 2.0})
    assert joint.stop_training is True


def test_the_budget_yields_to_the_users_settings():
    budget = FitBudget(3e-3, 8, 80)
    assert budget_for(TrainConfig(data="x.csv"), budget) == budget
    assert budget_for(TrainConfig(data="x.csv", epochs=5, patience=2, lr=1e-2), budget) == FitBudget(1e-2, 2, 5)


def test_a_fast_comparison_trains_each_methods_folds_in_one_batch(tiny_samples, tmp_path):
    csv = tiny_samples["house_prices"]
    config = TrainConfig(data=str(csv), epochs=2, batch_size=8, model=ModelConfig(arch="late_concat", image_size=SIZE))
    result = compare_with_baselines(config, ComparisonOptions(2, 1), dataset=load_dataset(csv), cache_dir=tmp_path)
    stage1 = result["results"]["image_only"]["folds"]
    assert all("batched" not in f for f in stage1)     # stage 1 trains fold by fold (whole image_only runs)
    for arch in ("tabular_only", "linear", "late_concat"):
        folds = result["results"][arch]["folds"]
        assert [f["batched"] for f in folds] == [2, 2]
        assert all(np.isfinite(f["metrics"]["val_mae"]) and f["metrics"]["val_mae"] > 0 for f in folds)
        assert all(1 <= f["best_epoch"] <= f["epochs_run"] <= 2 for f in folds)
    assert result["gain"] is not None and {g["arch"] for g in result["gain"]["methods"]} >= {"late_concat"}
