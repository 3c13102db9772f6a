"""The tabular branch reads its columns grouped by kind (one numeric matrix, one string matrix), while
raw values go in one array per column, runs saved with one input per column still work, and a
table of 5,000 columns builds and trains as a handful of layers."""
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.inputs import TABULAR_CATEGORICAL, TABULAR_NUMERIC, FeatureSpec, input_name, model_inputs
from multimodal.explain.attributions import branch_contributions, feature_attributions
from multimodal.explain.report import explain_row
from multimodal.models.assembly import (
    build_model,
    encode,
    grouped_columns,
    head_of,
    raw_input_names,
    select_inputs,
)
from multimodal.models.branches import tabular_encoder, tabular_layout, tabular_stats
from multimodal.models.layers import CategoricalOneHot, ImputeColumns, ImputeMissing
from multimodal.runs.run import Run, load_model_file, load_run, predict
from multimodal.train.training import train

SPEC = FeatureSpec([], ["age", "dose", "score"], ["site", "grade"])


def table(n: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(50, 10, n), "dose": rng.exponential(3, n), "score": rng.normal(0, 1, n),
                          "site": rng.choice(["arm", "leg", "back"], n), "grade": rng.choice(["1", "2"], n)})
    frame.loc[[2, 7], "age"] = np.nan          # 'was missing' flag on age only
    frame.loc[4, "site"] = None                # the missing token
    return frame


def per_column_encoder(spec: FeatureSpec, stats: dict) -> keras.Model:
    """The encoder as it was before grouping: one input, imputer, Normalization and StringLookup per
    column. Runs saved before the change hold exactly this."""
    inputs, parts = {}, []
    for col in spec.numeric_cols:
        s, name = stats["numeric"][col], input_name(col)
        inputs[name] = keras.Input((1,), name=name)
        x = ImputeMissing(s["fill"], s["indicator"], name=f"impute_{name}")(inputs[name])
        mean = [s["mean"], 0.0] if s["indicator"] else [s["mean"]]
        variance = [s["variance"], 1.0] if s["indicator"] else [s["variance"]]
        parts.append(keras.layers.Normalization(mean=mean, variance=variance, name=f"norm_{name}")(x))
    for col in spec.categorical_cols:
        name = input_name(col)
        inputs[name] = keras.Input((1,), dtype="string", name=name)
        parts.append(keras.layers.StringLookup(vocabulary=stats["categorical"][col], output_mode="one_hot",
                                               name=f"lookup_{name}")(inputs[name]))
    return keras.Model(inputs, keras.layers.Concatenate(name="features")(parts), name="tabular_encoder")


def legacy_model(grouped: keras.Model, spec: FeatureSpec, stats: dict) -> keras.Model:
    """`grouped`'s head on the per-column encoder, nested as a saved run had it."""
    encoder = per_column_encoder(spec, stats)
    inputs = {t.name: keras.Input(t.shape[1:], dtype=t.dtype, name=t.name) for t in encoder.inputs}
    return keras.Model(inputs, head_of(grouped)({"tabular": encoder(inputs)}), name=grouped.name)


@pytest.fixture(scope="module")
def raw():
    inputs = model_inputs(table(), ".", SPEC, 16)
    return inputs, tabular_stats(inputs, SPEC)


def test_grouped_encoder_equals_one_encoder_per_column(raw):
    inputs, stats = raw
    grouped = tabular_encoder(SPEC, stats)
    assert {t.name for t in grouped.inputs} == {TABULAR_NUMERIC, TABULAR_CATEGORICAL}
    assert len(grouped.layers) <= 6      # 2 inputs, impute, normalize, one-hot, concatenate
    legacy = per_column_encoder(SPEC, stats)
    fed = select_inputs(grouped, inputs)
    assert fed[TABULAR_NUMERIC].shape == (30, 3) and fed[TABULAR_CATEGORICAL].shape == (30, 2)
    ours = np.asarray(grouped(fed))
    theirs = np.asarray(legacy({k: v.reshape(-1, 1) for k, v in inputs.items()}))
    assert ours.shape == theirs.shape == (30, tabular_layout(SPEC, stats)[-1][2])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # An unseen category and a missing number take the same slots in both.
    odd = {**inputs, "col_site": np.array(["wrist"] * 30), "col_dose": np.full(30, np.nan, np.float32)}
    np.testing.assert_allclose(np.asarray(grouped(select_inputs(grouped, odd))),
                               np.asarray(legacy({k: v.reshape(-1, 1) for k, v in odd.items()})), atol=1e-6)


def test_layers_check_their_arguments_and_round_trip_their_config():
    with pytest.raises(ValueError, match="fills=2"):
        ImputeColumns(["a", "b", "c"], [0.0, 1.0], [False, False, True])
    with pytest.raises(ValueError, match="nan"):
        ImputeColumns(["a"], [float("nan")], [True])
    with pytest.raises(ValueError, match="vocabularies=1"):
        CategoricalOneHot(["a", "b"], [["x"]])
    layer = CategoricalOneHot(["a", "b"], [["x", "y"], ["z"]])
    again = CategoricalOneHot.from_config(layer.get_config())
    x = np.array([["y", "z"], ["q", "(missing)"]])
    expected = [[0, 0, 1, 0, 1], [1, 0, 0, 1, 0]]    # [oov, x, y] + [oov, z]
    np.testing.assert_array_equal(np.asarray(layer(x)), expected)
    np.testing.assert_array_equal(np.asarray(again(x)), expected)


def test_full_model_saves_takes_raw_values_and_predicts_like_the_per_column_model(raw, tmp_path):
    inputs, stats = raw
    model = build_model(ModelConfig(arch="tabular_only", width=8), SPEC, stats, "classification", ["no", "yes"])
    model.save(tmp_path / "m.keras")
    loaded = load_model_file(tmp_path / "m.keras")        # safe mode: the custom layers are registered
    assert grouped_columns(loaded) == {TABULAR_NUMERIC: ["col_age", "col_dose", "col_score"],
                                       TABULAR_CATEGORICAL: ["col_site", "col_grade"]}
    assert sorted(raw_input_names(loaded)) == sorted(input_name(c) for c in SPEC.tabular_cols)
    legacy = legacy_model(loaded, SPEC, stats)
    run = Run(tmp_path, {}, {}, {}, pd.DataFrame(), _model=loaded)
    ours = predict(run, inputs)                             # raw values, one array per column
    theirs = np.asarray(legacy({k: v.reshape(-1, 1) for k, v in inputs.items()}))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    with pytest.raises(Exception, match="dose"):            # a column left out is named
        predict(run, {k: v for k, v in inputs.items() if k != "col_dose"})


def test_a_run_saved_with_one_input_per_column_still_predicts_and_explains(raw, tmp_path):
    """Runs saved before the grouping (one Keras input per column) load, predict and explain."""
    inputs, stats = raw
    grouped = build_model(ModelConfig(arch="tabular_only", width=8), SPEC, stats, "regression", [],
                          {"mean": 5.0, "std": 2.0, "log": False})
    legacy_model(grouped, SPEC, stats).save(tmp_path / "legacy.keras")
    model = load_model_file(tmp_path / "legacy.keras")
    assert grouped_columns(model) == {} and set(raw_input_names(model)) == set(inputs)
    np.savez(tmp_path / "background.npz", **{k: v[:8].astype(str) if v.dtype.kind in "OU" else v[:8]
                                             for k, v in inputs.items()})
    config = {"task": "regression", "classes": [], "target": "y", "tabular_stats": stats,
              "features": {"image_cols": [], "numeric_cols": SPEC.numeric_cols,
                           "categorical_cols": SPEC.categorical_cols},
              "model": {"arch": "tabular_only", "image_size": 16}}
    run = Run(tmp_path, config, {}, {}, pd.DataFrame(), _model=model)
    assert run.input_spec.tabular_cols == SPEC.tabular_cols
    np.testing.assert_allclose(predict(run, inputs), np.asarray(grouped(select_inputs(grouped, inputs))), atol=1e-5)
    row = {k: v[10:11] for k, v in inputs.items()}
    report = explain_row(run, row)
    assert set(report["features"]) == set(SPEC.tabular_cols)


def test_attributions_stay_one_per_column_and_exact(raw):
    inputs, stats = raw
    model = build_model(ModelConfig(arch="tabular_only", width=8, dropout=0.0), SPEC, stats, "classification",
                        ["no", "yes"])
    rows = encode(model, {k: v[:4] for k, v in inputs.items()})          # raw columns in, stacked inside
    background = encode(model, {k: v[10:] for k, v in inputs.items()})
    c = branch_contributions(model, rows, background, 0)
    np.testing.assert_allclose(c["values"]["tabular"], c["output"] - c["base_value"], atol=1e-5)  # efficiency
    f = feature_attributions(model, rows, background, tabular_layout(SPEC, stats), 0, steps=64,
                             tabular_value=c["values"]["tabular"])
    assert list(f["features"]) == SPEC.tabular_cols         # one per column, one-hot slots summed
    total = sum(np.asarray(v) for v in f["features"].values()) - f["residual"]
    np.testing.assert_allclose(total, c["values"]["tabular"], atol=1e-4)
    assert np.abs(f["residual"]).max() < 0.05 * max(1.0, np.abs(c["values"]["tabular"]).max())


def test_five_thousand_columns_build_in_seconds_and_train(tmp_path):
    rng = np.random.default_rng(0)
    columns = {f"marker_{j}": rng.integers(0, 13, 40) for j in range(5000)}
    frame = pd.DataFrame({**columns, "outcome": rng.choice(["case", "control"], 40)})
    frame.to_csv(tmp_path / "wide.csv", index=False)
    stats_inputs = model_inputs(frame, tmp_path, FeatureSpec([], list(columns), []), 16)
    spec = FeatureSpec([], list(columns), [])
    stats = tabular_stats(stats_inputs, spec)
    started = time.perf_counter()
    model = build_model(ModelConfig(arch="tabular_only", width=4), spec, stats, "classification", ["case", "control"])
    build_seconds = time.perf_counter() - started
    assert len(model.get_layer("tabular_encoder").layers) == 3     # input, impute, normalize
    assert build_seconds < 20          # one layer per column took about a minute (issue 15); generous for CI
    summary = train(TrainConfig(data=str(tmp_path / "wide.csv"), target="outcome", epochs=1, batch_size=16,
                                model=ModelConfig(arch="tabular_only", width=4)), tmp_path / "run")
    assert summary["epochs_run"] == 1 and np.isfinite(summary["metrics"]["val_loss"])
    run = load_run(tmp_path / "run")
    assert len(run.input_spec.tabular_cols) == 5000
    out = predict(run, {k: v[:3] for k, v in run.background().items()})
    assert out.shape == (3, 1) and np.isfinite(out).all()


def test_a_shipped_run_from_before_the_grouping_loads_predicts_and_explains():
    """A real run folder saved by the previous release (skin_lesions tabular_only, one Keras input
    per column), kept as a fixture: it loads in safe mode, reads the same columns, predicts the
    sample's rows and is explained with one attribution per column."""
    from multimodal.data.dataset import load_dataset
    from multimodal.data.sources import SAMPLE_ROOT
    from multimodal.runs.run import run_inputs
    run = load_run(Path(__file__).parent / "fixtures" / "run_before_grouped_inputs")
    assert grouped_columns(run.model) == {}
    assert run.input_spec.tabular_cols == ["age", "sex", "site", "family_history"]
    ds = load_dataset(SAMPLE_ROOT / "skin_lesions")
    inputs = run_inputs(run, ds.frame.iloc[:50], ds.root)
    probabilities = 1 / (1 + np.exp(-predict(run, inputs)[:, 0]))
    assert probabilities.shape == (50,) and np.all((probabilities > 0) & (probabilities < 1))
    # It learned something: its accuracy on these rows is well above always answering one class.
    labels = (ds.frame[ds.target].iloc[:50] == ds.classes[1]).to_numpy()
    assert np.mean((probabilities > 0.5) == labels) > max(labels.mean(), 1 - labels.mean()) - 0.02
    report = explain_row(run, {k: v[:1] for k, v in inputs.items()})
    assert set(report["features"]) == {"age", "sex", "site", "family_history"}
