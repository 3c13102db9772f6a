"""Defaults that win on real data: log target, best weights, modality dropout, cross-validation."""
import json

import numpy as np
import pytest

from multimodal.cli import main
from multimodal.core.comparison import ComparisonOptions
from multimodal.core.config import ModelConfig, TrainConfig, auto_epochs
from multimodal.data.dataset import load_dataset
from multimodal.data.targets import choose_transform
from multimodal.models.assembly import select_inputs
from multimodal.runs.run import load_model_file, load_run, run_inputs
from multimodal.train.crossval import cross_validate, cv_splits, kfold_indices
from multimodal.train.training import train


def test_log_transform_chosen_for_skewed_positive_target_only():
    rng = np.random.default_rng(0)
    skewed = np.exp(rng.normal(12, 0.8, 300))          # prices: positive, long right tail
    symmetric = rng.normal(100, 10, 300)                # positive but symmetric
    assert choose_transform(skewed) == "log"
    assert choose_transform(symmetric) == "none"
    assert choose_transform(skewed - skewed.mean()) == "none"       # not positive
    assert choose_transform(symmetric, "log") == "log"              # the user's choice wins
    assert choose_transform(skewed, "none") == "none"


def test_auto_epoch_budget_shrinks_with_data_size():
    assert auto_epochs(30, 32) == 150 and auto_epochs(100_000, 32) == 20
    assert auto_epochs(400, 32) > auto_epochs(4000, 32)


@pytest.fixture(scope="module")
def log_run(tiny_samples, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("quality") / "log_run"
    config = TrainConfig(data=str(tiny_samples["house_prices"]), epochs=6, patience=0, batch_size=8, lr=0.03,
                         target_transform="log", model=ModelConfig(arch="late_concat", image_size=16))
    return train(config, run_dir), run_dir


def test_log_model_answers_in_original_units_and_reloads_in_safe_mode(log_run, tiny_samples):
    summary, run_dir = log_run
    assert summary["target_transform"] == "log"
    run = load_run(run_dir)
    assert run.config["target_stats"]["log"] is True
    ds = load_dataset(tiny_samples["house_prices"])
    inputs = run_inputs(run, ds.frame, ds.root)
    pred = np.asarray(run.model(select_inputs(run.model, inputs), training=False))[:, 0]
    price = ds.frame[ds.target].to_numpy(float)
    assert np.all(pred > 0)
    ratio = np.median(pred) / np.median(price)
    assert 0.2 < ratio < 5, ratio                                  # dollars, not log-dollars or z-scores
    reloaded = load_model_file(run_dir / "model.keras")           # safe mode
    np.testing.assert_allclose(np.asarray(reloaded(select_inputs(reloaded, inputs), training=False))[:, 0], pred, rtol=1e-5)
    assert summary["metrics"]["val_mae"] > 1000                   # metrics in dollars too


def test_final_weights_are_the_best_val_loss_epoch(log_run):
    summary, _ = log_run
    val_loss = summary["history"]["val_loss"]
    assert summary["best_epoch"] == int(np.argmin(val_loss)) + 1
    assert summary["metrics"]["val_loss"] == pytest.approx(min(val_loss), rel=1e-3, abs=1e-4)


def test_modality_dropout_trains_saves_and_is_inactive_without_missing_inputs(tiny_samples, tmp_path):
    from multimodal.models.assembly import has_modality_dropout, predict_with_missing
    config = TrainConfig(data=str(tiny_samples["skin_lesions"]), epochs=2, batch_size=16,
                         model=ModelConfig(arch="late_concat", image_size=16, modality_dropout=0.5))
    train(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    model = load_model_file(tmp_path / "run" / "model.keras")
    assert has_modality_dropout(model)
    ds = load_dataset(tiny_samples["skin_lesions"])
    inputs = run_inputs(run, ds.frame.iloc[:8], ds.root)
    plain = np.asarray(model(select_inputs(model, inputs), training=False))
    np.testing.assert_allclose(np.asarray(run.model(select_inputs(run.model, inputs), training=False)), plain, atol=1e-5)
    np.testing.assert_allclose(predict_with_missing(model, inputs, None), plain, atol=1e-5)
    none_missing = {"image": np.zeros(8, bool)}
    np.testing.assert_allclose(predict_with_missing(model, inputs, none_missing), plain, atol=1e-5)
    flagged = predict_with_missing(model, inputs, {"image": np.ones(8, bool)})
    assert np.all(np.isfinite(flagged))
    # With the image missing, every row gets the same image embedding: rows differ only by tabular values.
    images_swapped = {**inputs, "images": inputs["images"][::-1]}
    np.testing.assert_allclose(predict_with_missing(model, images_swapped, {"image": np.ones(8, bool)}), flagged,
                               atol=1e-5)


def test_modality_dropout_layer_replaces_rows_in_training_only():
    from multimodal.models.layers import ModalityDropout
    layer = ModalityDropout(1.0, seed=1)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), x)
    np.testing.assert_allclose(np.asarray(layer(x, training=True)), np.zeros_like(x))  # learned, zero-init
    x[2] = np.nan
    out = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(out[2], 0.0)
    np.testing.assert_allclose(out[[0, 1, 3, 4]], x[[0, 1, 3, 4]])


def test_kfold_splits_are_disjoint_covering_stratified_and_seeded():
    labels = np.array(["a"] * 30 + ["b"] * 12)
    folds = kfold_indices(42, 3, seed=5, labels=labels)
    every = np.concatenate(folds)
    assert sorted(every.tolist()) == list(range(42))                     # disjoint and covering
    for f in folds:
        assert (labels[f] == "b").sum() == 4 and (labels[f] == "a").sum() == 10  # the class mix kept
    again = kfold_indices(42, 3, seed=5, labels=labels)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))
    other = kfold_indices(42, 3, seed=6, labels=labels)
    assert not all(np.array_equal(a, b) for a, b in zip(folds, other))


def test_cv_splits_hold_out_each_fold_once_and_never_train_on_it(tiny_samples):
    ds = load_dataset(tiny_samples["skin_lesions"])
    splits = cv_splits(ds, 2, 2, seed=0, val_fraction=0.2)
    assert len(splits) == 4
    for r in (0, 1):
        held = np.concatenate([s["test"] for s in splits if s["repeat"] == r])
        assert sorted(held.tolist()) == list(range(len(ds.frame)))
    for s in splits:
        parts = [s["train"], s["val"], s["test"]]
        assert sum(map(len, parts)) == len(ds.frame) and len(np.unique(np.concatenate(parts))) == len(ds.frame)
    assert not np.array_equal(splits[0]["test"], splits[2]["test"])    # repeats reshuffle


def test_cross_validate_reports_folds_mean_and_std(tiny_samples):
    config = TrainConfig(data=str(tiny_samples["house_prices"]), epochs=1, batch_size=16,
                         model=ModelConfig(arch="tabular_only", image_size=16))
    result = cross_validate(config, 2, 1)
    assert len(result["folds"]) == 2
    assert {"val_mae", "val_rmse", "val_mape", "val_r2"} <= set(result["mean"]) and set(result["std"]) == set(
        result["mean"])
    values = [f["metrics"]["val_mae"] for f in result["folds"]]
    assert result["mean"]["val_mae"] == pytest.approx(np.mean(values))


def test_cli_cv_json_prints_mean_and_std(tiny_samples, tmp_path, capsys):
    assert main(["train", str(tiny_samples["skin_lesions"]), "--cv", "2", "--repeats", "1", "--epochs", "1",
                 "--image-size", "16", "--arch", "tabular_only", "--out", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(result["folds"]) == 2 and result["k"] == 2 and result["repeats"] == 1
    assert {"val_accuracy", "val_auc", "val_loss"} <= set(result["mean"]) and set(result["std"]) == set(result["mean"])
    assert main(["train", str(tiny_samples["skin_lesions"]), "--cv", "1", "--out", str(tmp_path)]) == 2


def test_compare_with_baselines_pairs_folds_and_judges_every_method(tiny_samples):
    from multimodal.runs.verdicts import BETTER, NO_DIFFERENCE, WORSE, gain_verdict
    from multimodal.train.crossval import compare_with_baselines, fold_sizes
    config = TrainConfig(data=str(tiny_samples["skin_lesions"]), epochs=1, batch_size=16,
                         model=ModelConfig(arch="late_concat", image_size=16))
    result = compare_with_baselines(config, ComparisonOptions(2, 1, archs=("early_concat",)))
    # Every baseline the data allows (linear included) beside the chosen methods, on the same folds.
    assert list(result["results"]) == ["image_only", "tabular_only", "linear", "late_concat", "early_concat"]
    assert result["metric"] == "val_accuracy"
    gain = result["gain"]
    means = {a: r["mean"]["val_accuracy"] for a, r in result["results"].items()}
    assert gain["best_baseline"] == max(("image_only", "tabular_only", "linear"), key=means.get)
    ds = load_dataset(tiny_samples["skin_lesions"])
    n_train, n_test = fold_sizes(cv_splits(ds, 2, 1, config.seed, config.val_fraction))
    assert gain["rows"] == {"train": n_train, "test": n_test} == {"train": 20, "test": 20}   # 40 rows, 2 folds
    base = result["results"][gain["best_baseline"]]
    assert [g["arch"] for g in gain["methods"]] == ["late_concat", "early_concat"]
    for g in gain["methods"]:
        fusion = result["results"][g["arch"]]
        expected = [f["metrics"]["val_accuracy"] - b["metrics"]["val_accuracy"]
                    for f, b in zip(fusion["folds"], base["folds"])]
        np.testing.assert_allclose(g["per_fold"], expected)
        verdict = gain_verdict(expected, n_train, n_test, "val_accuracy")
        assert g["mean"] == pytest.approx(np.mean(expected)) and g["splits"] == 2
        assert (g["low"], g["high"]) == (pytest.approx(verdict.low), pytest.approx(verdict.high))
        assert g["verdict"] == (BETTER if g["low"] > 0 else WORSE if g["high"] < 0 else NO_DIFFERENCE)
        assert g["sentence"] == verdict.sentence and f": {g['verdict']}" in g["sentence"]
    assert gain["best"] == max(gain["methods"], key=lambda g: means[g["arch"]])
    assert json.loads(json.dumps(result))["gain"] == gain                # JSON as saved by the Compare page


def test_cli_baselines_prints_each_methods_verdict(tiny_samples, tmp_path, capsys):
    assert main(["train", str(tiny_samples["house_prices"]), "--cv", "2", "--baselines", "--epochs", "1",
                 "--image-size", "16", "--arch", "late_concat", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert all(f"  {a} " in out for a in ("image_only", "tabular_only", "linear", "late_concat"))
    line = next(x for x in out.splitlines() if x.strip().startswith("late_concat") and "CI" in x)
    assert "(95% CI " in line and "over 2 folds: " in line
    assert line.endswith(("better", "worse", "no detectable difference"))
