"""Every fusion method builds, saves, loads and predicts, and trains on both tasks and both image paths.

The registry is tested by properties that hold for every registered method, so a new method needs
no edit here, only its own test (see test_bilinear_rank_sets_the_interaction_width).
"""
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from multimodal.app.diagram import fusion_dot
from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.dataset import load_dataset
from multimodal.data.inputs import FeatureSpec, model_inputs
from multimodal.models.assembly import branch_names, build_model, encode, head_of, select_inputs
from multimodal.models.branches import tabular_layout, tabular_stats
from multimodal.models.fusion import FUSION_METHODS, Param, baseline_names, methods_for
from multimodal.models.layers import BranchAttention, ImputeMissing, ModalityDropout, TargetScale
from multimodal.runs.run import describe_predictions, load_model_file, load_run, predict, run_inputs
from multimodal.train.training import train

DATASETS = ("skin_lesions", "house_prices", "growth_sequences")
SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


def applicable(name: str) -> list[str]:
    frames = 4 if name == "growth_sequences" else 1
    return methods_for(True, True, frames)


# Every method trains through train() on the regression sample (one image). On the classification
# sample with an ordered set of four images, train() runs the methods made for image sets (cnn_lstm,
# cnn_rnn_classifier) and the default late_concat: what else the four-image path adds is in each
# method's model, which test_save_and_load_give_same_predictions builds, trains, saves and reloads on
# those very inputs, not in the training pipeline, which is the same for every method. The one-image
# classification sample (their combination) would add no new path.
ON_IMAGE_SETS = ("cnn_lstm", "cnn_rnn_classifier", "late_concat")
PAIRS = [("house_prices", m) for m in applicable("house_prices")] + \
    [("growth_sequences", m) for m in applicable("growth_sequences") if m in ON_IMAGE_SETS]


# The registry: everything about a method is declared with it ---------------------------------

@pytest.mark.parametrize("arch", list(FUSION_METHODS))
def test_every_method_is_fully_described(arch):
    m = FUSION_METHODS[arch]
    assert m.name == arch and len(m.description) > 80 and m.title and m.origin and m.flow
    assert m.merge_label.strip() and m.branches
    assert m.takes_wide <= ("tabular" in m.branches)     # the linear term reads the tabular branch
    for name, param in m.params.items():
        assert param.description, name
        assert param.check(param.default) == param.default   # the default is within its own range
        if param.kind in ("int", "float"):
            assert param.low <= param.default <= param.high
    assert m.resolve({}) == {n: p.default for n, p in m.params.items()}
    spec = FeatureSpec(["photo", "photo2"] if "sequence" in m.branches else ["photo"], ["age"], ["sex"])
    for wide in (False, True):
        dot = fusion_dot(m, spec, target="y", classes=["a", "b"], wide=wide)
        assert dot.startswith("digraph") and dot.count("{") == dot.count("}")
        assert m.merge_label.split("\n")[0] in dot
        assert all(f"enc_{b} -> merge" in dot for b in m.branches)
        assert ("wide ->" in dot) == (wide and m.takes_wide)


def test_baselines_are_the_single_branch_methods():
    assert {"image_only", "tabular_only", "linear"} <= set(baseline_names())
    assert all(len(FUSION_METHODS[n].branches) == 1 for n in baseline_names())
    assert not FUSION_METHODS["linear"].takes_wide        # it is already the linear term
    assert [n for n, m in FUSION_METHODS.items() if m.shows_routing] == ["attention"]


def test_sequence_method_only_for_several_frames():
    assert "cnn_lstm" not in methods_for(True, True, 1)
    assert "cnn_lstm" in methods_for(True, True, 4)
    only = {b: [n for n, m in FUSION_METHODS.items() if m.branches == (b,)] for b in ("tabular", "image")}
    assert methods_for(False, True, 0) == only["tabular"] and "tabular_only" in only["tabular"]
    assert methods_for(True, False, 1) == only["image"] and "image_only" in only["image"]


def test_param_declarations_and_values_are_checked():
    assert (Param(3, "n", low=1, high=8).kind, Param(0.5, "x", low=0.0, high=1.0).kind,
            Param(True, "b").kind, Param("a", "c", choices=("a", "b")).kind) == ("int", "float", "bool", "choice")
    for bad in (lambda: Param(9, "n", low=1, high=8), lambda: Param(3, "n"), lambda: Param("z", "c", choices=("a",))):
        with pytest.raises(ValueError, match="Received"):
            bad()
    attention = FUSION_METHODS["attention"]
    assert attention.resolve({"heads": 4.0, "rank": 1000}) == {"heads": 4}   # other methods' names ignored
    for value in (0, 2.5, "two", True, float("nan")):
        with pytest.raises(ValueError, match=r"fusion method 'attention': parameter 'heads' .*Received: heads="):
            attention.resolve({"heads": value})
    with pytest.raises(ValueError, match="learned_weights"):
        FUSION_METHODS["late_decision"].resolve({"learned_weights": "yes"})


def test_layers_check_their_arguments():
    for build, name in ((lambda: BranchAttention(8, 0), "heads=0"), (lambda: ModalityDropout(1.5), "rate=1.5"),
                        (lambda: TargetScale(0.0, 0.0), "std=0.0"), (lambda: ImputeMissing(float("nan")), "nan")):
        with pytest.raises(ValueError, match=name):
            build()


# Building, training, saving ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_inputs(tiny_samples):
    ds = load_dataset(tiny_samples["growth_sequences"])
    inputs = model_inputs(ds.frame, ds.root, ds.features, 16)
    return ds, inputs, tabular_stats(inputs, ds.features)


# The regression output (TargetScale after the head, models/assembly.py) is the same for every
# method: its round trip is checked on the default, the linear floor and the decision average.
REGRESSION_ROUND_TRIP = ("late_concat", "linear", "late_decision")


@pytest.mark.parametrize("arch", list(FUSION_METHODS))
def test_save_and_load_give_same_predictions(arch, tiny_inputs, tmp_path):
    """Every method builds, trains one step, saves and reloads in safe mode with the same outputs."""
    ds, inputs, stats = tiny_inputs
    rng = np.random.default_rng(0)
    tasks = [("classification", ["a", "b", "c"], None), ("regression", [], {"mean": 5.0, "std": 2.0, "log": False})]
    for task, classes, target in tasks[:2 if arch in REGRESSION_ROUND_TRIP else 1]:
        model = build_model(ModelConfig(arch=arch, image_size=16, seed=3), ds.features, stats, task, classes, target)
        x = select_inputs(model, inputs)
        n = len(ds.frame)
        if task == "classification":
            y, loss = rng.integers(0, 3, n), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        else:
            y, loss = rng.normal(5.0, 2.0, (n, 1)).astype("float32"), "mse"
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
        weights = [w.numpy().copy() for w in model.trainable_weights]
        text_as_tensors = {k: tf.constant(v) if v.dtype.kind in "OU" else v for k, v in x.items()}  # fit wants tensors
        model.train_on_batch(text_as_tensors, y)
        assert any(not np.array_equal(w, v.numpy()) for w, v in zip(weights, model.trainable_weights))
        before = np.asarray(model(x, training=False))
        assert before.shape == (n, 3 if task == "classification" else 1) and np.isfinite(before).all()
        model.save(tmp_path / f"{task}.keras")
        after = np.asarray(load_model_file(tmp_path / f"{task}.keras")(x, training=False))
        np.testing.assert_allclose(after, before, atol=1e-5)


@pytest.mark.parametrize("arch", list(FUSION_METHODS))
def test_model_is_encoders_then_head(arch, tiny_inputs):
    ds, inputs, stats = tiny_inputs
    model = build_model(ModelConfig(arch=arch, image_size=16), ds.features, stats, "classification", ["a", "b"])
    assert branch_names(model) == list(FUSION_METHODS[arch].branches)
    x = select_inputs(model, inputs)
    composed = np.asarray(head_of(model)(encode(model, x), training=False))
    np.testing.assert_allclose(composed, np.asarray(model(x, training=False)), atol=1e-5)


def test_wide_term_is_a_linear_map_of_the_heads_tabular_input(tiny_inputs):
    ds, inputs, stats = tiny_inputs
    features = tabular_layout(ds.features, stats)[-1][2]   # width of the preprocessed tabular vector

    def head(arch: str, wide: bool, **kw) -> keras.Model:
        return head_of(build_model(ModelConfig(arch=arch, image_size=16, wide=wide, **kw), ds.features, stats,
                                   "classification", ["a", "b", "c"]))

    for arch in ("late_concat", "late_decision", "cnn_lstm"):
        on, off = head(arch, True), head(arch, False)
        assert "wide" not in [layer.name for layer in off.layers]    # without it: the model as before
        wide = on.get_layer("wide")
        assert wide.input is on.input["tabular"] and wide.kernel.shape == (features, 3) and not wide.use_bias
        assert on.count_params() - off.count_params() == features * 3
    with_dropout = head("late_concat", True, modality_dropout=0.2)   # it reads the embedding the head uses
    assert with_dropout.get_layer("wide").input is with_dropout.get_layer("tabular_modality_dropout").output
    for arch in ("image_only", "linear"):   # no tabular branch / already linear: the option changes nothing
        assert head(arch, True).count_params() == head(arch, False).count_params()


def test_linear_baseline_is_one_linear_layer(tiny_inputs):
    ds, inputs, stats = tiny_inputs
    model = build_model(ModelConfig(arch="linear", params={"l2": 0.01}), ds.features, stats, "regression", [],
                        {"mean": 0.0, "std": 1.0, "log": False})
    tabular = encode(model, select_inputs(model, inputs))["tabular"]
    dense = [layer for layer in head_of(model).layers if isinstance(layer, keras.layers.Dense)]
    assert [d.name for d in dense] == ["logits"] and head_of(model).count_params() == tabular.shape[1] + 1
    assert dense[0].kernel_regularizer.l2 == pytest.approx(0.01)


def test_bilinear_rank_sets_the_interaction_width(tiny_inputs):
    ds, inputs, stats = tiny_inputs
    head = head_of(build_model(ModelConfig(arch="bilinear", image_size=16, params={"rank": 5}), ds.features, stats,
                               "classification", ["a", "b"]))
    assert head.get_layer("bilinear_product").output.shape == (None, 5)
    with pytest.raises(ValueError, match="'bilinear': parameter 'rank'.*rank=0"):
        build_model(ModelConfig(arch="bilinear", params={"rank": 0}), ds.features, stats, "classification", ["a", "b"])


def test_configs_saved_before_wide_existed_keep_their_model():
    assert ModelConfig().wide and TrainConfig(data="x").model.wide
    assert not TrainConfig.from_dict({"data": "x", "model": {"arch": "late_concat"}}).model.wide
    assert TrainConfig.from_dict(TrainConfig(data="x").to_dict()).model.wide


SAVED_BEFORE = Path(__file__).resolve().parent / "fixtures" / "run_before_grouped_inputs"   # no wide term either


@pytest.mark.parametrize("run_dir", sorted(SAMPLE_DATA.glob("*/pretrained/*")) + [SAVED_BEFORE],
                         ids=lambda p: p.name if p == SAVED_BEFORE else f"{p.parts[-3]}-{p.name}")
def test_saved_runs_load_and_reproduce_their_metrics(run_dir):
    """The shipped models and a run saved two releases ago (before the linear term and the grouped
    inputs) load, have the linear term exactly when their config asks for it, and score on their
    validation rows as when they were saved."""
    run = load_run(run_dir)
    has_wide = "wide" in [layer.name for layer in head_of(run.model).layers]
    assert has_wide == (run.config["model"].get("wide", False) and FUSION_METHODS[run.arch].takes_wide)
    assert has_wide == (run_dir != SAVED_BEFORE and FUSION_METHODS[run.arch].takes_wide)
    ds = load_dataset(SAMPLE_DATA / run.config["dataset_name"] / "data.csv")
    rows = ds.frame.iloc[run.config["splits"]["val"]]
    outputs = predict(run, run_inputs(run, rows, ds.root))
    if run.task == "classification":
        truth = rows[ds.target].astype(str).map(run.classes.index).to_numpy()
        pred = (outputs[:, 0] > 0).astype(int) if len(run.classes) == 2 else outputs.argmax(axis=1)
        assert (pred == truth).mean() == pytest.approx(run.metrics["val_accuracy"], abs=1e-6)
    else:
        mae = np.abs(outputs[:, 0] - rows[ds.target].to_numpy(float)).mean()
        assert mae == pytest.approx(run.metrics["val_mae"], rel=1e-3)


def test_tabular_encoder_imputes_and_normalizes_inside_the_model():
    spec = FeatureSpec([], ["age"], ["sex"])
    raw = {"col_age": np.array([20.0, 40.0, np.nan, 60.0], "float32"),
           "col_sex": np.array(["F", "M", "(missing)", "X"], dtype=object)}
    stats = tabular_stats({k: v[:3] for k, v in raw.items()}, spec)  # "X" is unseen in training
    model = build_model(ModelConfig(arch="tabular_only"), spec, stats, "regression", [])
    features = np.asarray(encode(model, raw)["tabular"])
    layout = dict((c, (a, b)) for c, a, b in tabular_layout(spec, stats))
    age = features[:, layout["age"][0]]
    assert stats["numeric"]["age"]["fill"] == 30.0  # median of the training values 20, 40
    np.testing.assert_allclose(age, (np.array([20, 40, 30, 60]) - 30.0) / np.sqrt(stats["numeric"]["age"]["variance"]),
                               atol=1e-5)
    np.testing.assert_array_equal(features[:, layout["age"][0] + 1], [0, 0, 1, 0])  # the 'was missing' flag
    sex = features[:, layout["sex"][0]:layout["sex"][1]]
    assert sex.sum(axis=1).tolist() == [1, 1, 1, 1]  # one-hot, the unseen "X" in the OOV slot
    assert sex[3, 0] == 1


@pytest.mark.parametrize("dataset,arch", PAIRS)
def test_train_one_epoch_and_predict_with_saved_run(dataset, arch, tiny_samples, tmp_path):
    config = TrainConfig(data=str(tiny_samples[dataset]), epochs=1, batch_size=16,
                         model=ModelConfig(arch=arch, image_size=16))
    summary = train(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    for name in ("config.json", "history.csv", "metrics.json", "model.keras", "background.npz", "events.jsonl"):
        assert (tmp_path / "run" / name).is_file(), name
    assert summary["epochs_run"] == 1 and summary["arch"] == arch
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == summary["metrics"]
    main_metric = "val_accuracy" if run.task == "classification" else "val_mae"
    assert np.isfinite(summary["metrics"][main_metric])

    ds = load_dataset(tiny_samples[dataset])
    rows = ds.frame.iloc[:5]
    outputs = predict(run, run_inputs(run, rows, ds.root))
    described = describe_predictions(run, outputs)
    assert len(described) == 5
    if run.task == "classification":
        for row in described:
            assert row["prediction"] in ds.classes
            assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    else:
        assert all(np.isfinite(r["prediction"]) for r in described)
    # The reloaded config reproduces the columns the model was trained on.
    assert run.spec == ds.features
    assert pd.read_csv(tmp_path / "run" / "history.csv").shape[0] == 1


def test_mobilenet_encoder_builds_offline_with_random_init(tiny_inputs, caplog):
    from multimodal.models.weights import resolve_weights
    ds, inputs, stats = tiny_inputs
    model = build_model(ModelConfig(arch="image_only", encoder="mobilenet_v2", image_size=32), ds.features, stats,
                        "classification", ["a", "b"])
    images = np.repeat(np.repeat(inputs["images"][:2], 2, axis=2), 2, axis=3)  # 16 px -> 32 px
    maps = np.asarray(encode(model, {"images": images})["image"])
    assert maps.shape == (2, 4, 1, 1, 1280)  # 4 frames, MobileNetV2's 32x downsampling, 1280 channels
    if resolve_weights("mobilenet_v2", download=False).source == "none":
        assert "random init" in caplog.text


def test_predict_traces_once_for_any_row_count_and_matches_the_eager_call(tiny_inputs, tmp_path):
    """runs.predict goes through one tf.function per model (What-if latency); it must give the
    eager call's outputs for 1 row or many, with categorical columns passed as (N,) text."""
    from multimodal.runs.run import Run
    ds, inputs, stats = tiny_inputs
    model = build_model(ModelConfig(arch="late_concat", image_size=16, seed=1), ds.features, stats,
                        "classification", ["a", "b", "c"])
    run = Run(tmp_path, {}, {}, {}, pd.DataFrame(), _model=model)
    assert any(v.dtype.kind == "U" and v.ndim == 1 for v in inputs.values())   # the (N,) text case is covered
    eager = np.asarray(model(select_inputs(model, inputs), training=False))
    for rows in (slice(0, 1), slice(0, 7), slice(None)):
        part = {k: v[rows] for k, v in inputs.items()}
        np.testing.assert_allclose(predict(run, part), eager[rows], atol=1e-5)
    compiled = predict.compiled[model]
    assert compiled.experimental_get_tracing_count() == 1
