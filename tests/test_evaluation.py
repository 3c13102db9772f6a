"""multimodal.evaluation: metric helpers on hand-made arrays with known answers, and evaluate_run on
tiny trained runs (one classification, one regression, 1 epoch at 16 px, trained once per module)."""
from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest

from multimodal.core.errors import DataError
from multimodal.data.cells import MISSING_TOKEN
from multimodal.data.dataset import load_dataset
from multimodal.models.assembly import raw_input_names
from multimodal.runs import evaluation as ev

# ---------------------------------------------------------------- classification helpers

def test_confusion_matrix_counts_true_rows_predicted_columns():
    cm = ev.confusion_matrix([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 0, 2, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert ev.accuracy([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 0, 2, 2]) == pytest.approx(5 / 7)


def test_roc_known_curve_and_auc():
    fpr, tpr, thr = ev.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thr[0] == np.inf and thr[1:].tolist() == [0.8, 0.4, 0.35, 0.1]
    assert ev.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert ev.roc_auc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == 1.0
    assert ev.roc_auc([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2]) == 0.0
    assert ev.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5   # ties: one diagonal step
    assert np.isnan(ev.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))         # one class: undefined


def test_auc_equals_mann_whitney_probability_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200).astype(bool)
    s = rng.integers(0, 6, 200) / 5.0 + y * 0.3   # many ties
    pos, neg = s[y], s[~y]
    pairs = [(a > b) + 0.5 * (a == b) for a, b in product(pos, neg)]
    assert ev.roc_auc(y, s) == pytest.approx(np.mean(pairs), abs=1e-12)


def test_roc_curves_binary_and_one_vs_rest():
    classes = ["a", "b"]
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    curves = ev.roc_curves([0, 1, 0, 1], probs, classes)
    assert [c.label for c in curves] == ["b"] and curves[0].auc == 1.0
    probs3 = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.6, 0.3]])
    curves = ev.roc_curves([0, 1, 2, 2], probs3, ["x", "y", "z"])
    assert [c.label for c in curves] == ["x vs rest", "y vs rest", "z vs rest"]
    assert [c.auc for c in curves] == pytest.approx([1.0, 1.0, 1.0])
    m = ev.classification_metrics(np.array([0, 1, 2, 2]), probs3, ["x", "y", "z"])
    assert m["accuracy"] == 0.75 and m["auc"] == pytest.approx(1.0) and m["top_2_accuracy"] == 1.0
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.8, 0.8, 0.3])))


# ---------------------------------------------------------------- regression helpers

def test_regression_metrics_known_values():
    m = ev.regression_metrics([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 3.0, 2.0])
    assert m["mae"] == pytest.approx(0.75)
    assert m["rmse"] == pytest.approx(np.sqrt(5 / 4))
    assert m["mape"] == pytest.approx(100 * (1 + 0 + 0 + 0.5) / 4)
    assert m["r2"] == pytest.approx(1 - 5 / 5)
    perfect = ev.regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert perfect["r2"] == 1.0 and perfect["mae"] == 0.0
    assert np.isnan(ev.regression_metrics([0.0, 0.0], [1.0, 1.0])["mape"])   # no non-zero target


# ---------------------------------------------------------------- slices

def test_numeric_slices_are_quantile_buckets_with_a_missing_slice():
    values = pd.Series([1, 2, 3, 4, 5, 6, 7, 8, np.nan] + list(range(9, 20)), dtype=float)
    labels = ev.slice_labels(values, bins=4)
    counts = labels.value_counts(sort=False)
    assert list(counts.index)[-1] == MISSING_TOKEN and counts[MISSING_TOKEN] == 1
    # Quantile edges 1, 5.5, 10, 14.5, 19; right-open buckets, the last one closed.
    assert counts.drop(MISSING_TOKEN).tolist() == [5, 4, 5, 5]
    assert str(labels[0]).startswith("[1, ") and str(labels[19]).endswith("19]")


def test_categorical_slices_each_value_and_missing():
    labels = ev.slice_labels(pd.Series(["F", "M", None, "M", " "]))
    assert list(labels.cat.categories) == ["F", "M", MISSING_TOKEN]
    assert labels.tolist() == ["F", "M", MISSING_TOKEN, "M", MISSING_TOKEN]
    # Few distinct numbers (e.g. bedrooms) are sliced by value, in numeric order.
    labels = ev.slice_labels(pd.Series([10, 2, 3, 2]))
    assert list(labels.cat.categories) == ["2", "3", "10"]


def test_metrics_by_slice_classification_and_regression():
    labels = ev.slice_labels(pd.Series(["a", "a", "b", "b", "b"]))
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])
    table = ev.metrics_by_slice(labels, np.array([0, 0, 1, 1, 0]), "classification", probs=probs,
                                classes=["no", "yes"])
    assert table["slice"].tolist() == ["a", "b"] and table["n"].tolist() == [2, 3]
    assert table["accuracy"].tolist() == pytest.approx([0.5, 1.0])
    assert np.isnan(table["auc"][0]) and table["auc"][1] == 1.0   # slice a has one class only
    reg = ev.metrics_by_slice(labels, np.array([1.0, 2.0, 3.0, 4.0, 5.0]), "regression",
                              y_pred=np.array([2.0, 2.0, 3.0, 3.0, 7.0]))
    assert reg["mae"].tolist() == pytest.approx([0.5, 1.0])
    assert reg["bias"].tolist() == pytest.approx([0.5, 1 / 3])


def test_prediction_table_and_worst_errors():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.95, 0.05], [0.6, 0.4]])
    table = ev.prediction_table(np.array([10, 11, 12, 13]), np.array([0, 0, 1, 1]), "classification",
                                probs=probs, classes=["no", "yes"])
    assert table["predicted"].tolist() == ["no", "yes", "no", "no"]
    assert table["correct"].tolist() == [True, False, False, False]
    assert table["loss"].tolist() == pytest.approx(-np.log([0.9, 0.2, 0.05, 0.4]))
    assert ev.worst_errors(table, 2)["row"].tolist() == [12, 11]
    reg = ev.prediction_table(np.array([5, 6, 7]), np.array([1.0, 2.0, 3.0]), "regression",
                              y_pred=np.array([1.5, 0.0, 3.0]))
    assert reg["error"].tolist() == [0.5, -2.0, 0.0]
    assert ev.worst_errors(reg, 1)["row"].tolist() == [6]


# ---------------------------------------------------------------- evaluate_run on real tiny runs

def _train(csv, out):
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.runs.run import load_run
    from multimodal.train.training import train
    train(TrainConfig(data=str(csv), epochs=1, batch_size=8, patience=0, model=ModelConfig(image_size=16)), out)
    return load_run(out)


@pytest.fixture(scope="module")
def classification_run(tiny_samples, tmp_path_factory):
    return _train(tiny_samples["skin_lesions"], tmp_path_factory.mktemp("eval") / "clf"), \
        load_dataset(tiny_samples["skin_lesions"])


@pytest.fixture(scope="module")
def regression_run(tiny_samples, tmp_path_factory):
    return _train(tiny_samples["house_prices"], tmp_path_factory.mktemp("eval") / "reg"), \
        load_dataset(tiny_samples["house_prices"])


def test_evaluate_run_classification(classification_run):
    run, ds = classification_run
    result = ev.evaluate_run(run, ds, batch_size=3, keep_inputs=True)   # several batches
    val = run.config["splits"]["val"]
    assert result.split == "val" and result.rows.tolist() == val
    assert result.table["row"].tolist() == val and len(result.frame) == len(val)
    assert result.confusion.sum() == len(val) and result.confusion.shape == (2, 2)
    assert result.metrics["accuracy"] == pytest.approx(run.metrics["val_accuracy"], abs=1e-6)
    # (Keras' val_loss adds the L2 penalty, so log_loss is only checked for sanity.)
    assert 0 < result.metrics["log_loss"] < 10
    assert len(result.roc) == 1 and 0 <= result.roc[0].auc <= 1
    assert set(result.inputs) == set(raw_input_names(run.model)) and "col_age" in result.inputs
    assert len(result.inputs["images"]) == len(val)
    # Same predictions in one batch as in several.
    assert np.allclose(ev.evaluate_run(run, ds).outputs, result.outputs, atol=1e-5)
    sliced = result.by_slice("sex")
    assert sliced["n"].sum() == len(val)
    assert result.worst(3)["loss"].is_monotonic_decreasing


def test_evaluate_run_regression(regression_run):
    run, ds = regression_run
    result = ev.evaluate_run(run, ds)
    assert result.probs is None and result.confusion is None
    assert result.metrics["mae"] == pytest.approx(run.metrics["val_mae"], rel=1e-3)
    assert result.metrics["rmse"] == pytest.approx(run.metrics["val_rmse"], rel=1e-3)
    table = result.by_slice("area_sqft", bins=4)   # a numeric feature: quantile buckets, even with few rows
    assert table["n"].sum() == len(result.rows) and len(table) == 4
    assert (result.table["error"] == result.table["predicted"] - result.table["true"]).all()


def test_evaluate_run_refuses_a_dataset_without_its_columns(classification_run, regression_run):
    run, _ = classification_run
    with pytest.raises(DataError, match="load the dataset it was trained on"):
        ev.evaluate_run(run, regression_run[1])


def test_mape_is_one_definition_in_keras_and_numpy():
    """metrics.json (Keras, during training) and the Results page (numpy) report the same MAPE,
    zero targets included: both skip them (Keras' stock metric would divide by its epsilon)."""
    from multimodal.models.layers import NonzeroMAPE
    y = np.array([0.0, 2.0, -4.0, 10.0, 0.0])
    p = np.array([5.0, 1.0, -5.0, 12.0, -1.0])
    metric = NonzeroMAPE()
    metric.update_state(y[:3], p[:3])
    metric.update_state(y[3:], p[3:])          # batches accumulate like one pass
    expected = np.mean([0.5, 0.25, 0.2]) * 100
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)
    assert ev.regression_metrics(y, p)["mape"] == pytest.approx(expected, rel=1e-12)
    metric.reset_state()
    metric.update_state(np.zeros(3), np.ones(3))
    assert np.isnan(float(metric.result())) and np.isnan(ev.regression_metrics(np.zeros(3), np.ones(3))["mape"])
