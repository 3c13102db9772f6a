"""Every fusion method builds, trains, saves, loads and predicts on every dataset it applies to."""
import json

import numpy as np
import pandas as pd
import pytest

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.dataset import FeatureSpec, load_dataset, model_inputs
from multimodal.models.assembly import branch_names, build_model, encode, head_of, select_inputs
from multimodal.models.branches import tabular_layout, tabular_stats
from multimodal.models.fusion import FUSION_METHODS, methods_for
from multimodal.runs.run import describe_predictions, load_model_file, load_run, predict, run_inputs
from multimodal.train.training import train

DATASETS = ("skin_lesions", "house_prices", "growth_sequences")


def applicable(name: str) -> list[str]:
    frames = 4 if name == "growth_sequences" else 1
    return methods_for(True, True, frames)


PAIRS = [(d, m) for d in DATASETS for m in applicable(d)]


def test_registry_lists_every_design_method():
    expected = {"image_only", "tabular_only", "early_concat", "late_concat", "multiply", "gated", "attention",
                "film", "late_decision", "cnn_lstm", "cnn_rnn_rows"}
    assert set(FUSION_METHODS) == expected
    for m in FUSION_METHODS.values():
        assert len(m.description) > 80 and m.title and m.origin and m.diagram


def test_sequence_method_only_for_several_frames():
    assert "cnn_lstm" not in methods_for(True, True, 1)
    assert "cnn_lstm" in methods_for(True, True, 4)
    assert methods_for(False, True, 0) == ["tabular_only"]
    assert methods_for(True, False, 1) == ["image_only"]


@pytest.fixture(scope="module")
def tiny_inputs(tiny_samples):
    ds = load_dataset(tiny_samples["growth_sequences"])
    inputs = model_inputs(ds.frame, ds.root, ds.features, 16)
    return ds, inputs, tabular_stats(inputs, ds.features)


@pytest.mark.parametrize("arch", list(FUSION_METHODS))
def test_save_and_load_give_same_predictions(arch, tiny_inputs, tmp_path):
    ds, inputs, stats = tiny_inputs
    for task, classes, target in (("classification", ["a", "b", "c"], None),
                                  ("regression", [], {"mean": 5.0, "std": 2.0, "log": False})):
        model = build_model(ModelConfig(arch=arch, image_size=16, seed=3), ds.features, stats, task, classes, target)
        x = select_inputs(model, inputs)
        before = np.asarray(model(x, training=False))
        assert before.shape == (len(ds.frame), 3 if task == "classification" else 1)
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
    from multimodal.models.branches import pretrained_weights_available
    ds, inputs, stats = tiny_inputs
    model = build_model(ModelConfig(arch="image_only", encoder="mobilenet_v2", image_size=32), ds.features, stats,
                        "classification", ["a", "b"])
    images = np.repeat(np.repeat(inputs["images"][:2], 2, axis=2), 2, axis=3)  # 16 px -> 32 px
    maps = np.asarray(encode(model, {"images": images})["image"])
    assert maps.shape == (2, 4, 1, 1, 1280)  # 4 frames, MobileNetV2's 32x downsampling, 1280 channels
    if not pretrained_weights_available("mobilenet_v2"):
        assert "random init" in caplog.text


def test_default_arch_follows_the_columns():
    from multimodal.core.config import default_arch
    assert default_arch(4, 2) == "cnn_lstm"      # ordered frames: keep their order
    assert default_arch(1, 3) == "late_concat"
    assert default_arch(1, 0) == "image_only" and default_arch(0, 3) == "tabular_only"
    for images, tabular in ((4, 2), (1, 3), (1, 0), (0, 3)):
        assert default_arch(images, tabular) in methods_for(images > 0, tabular > 0, images)


def test_predict_traces_once_for_any_row_count_and_matches_the_eager_call(tiny_inputs, tmp_path):
    """runs.predict goes through one tf.function per model (What-if latency); it must give the
    eager call's outputs for 1 row or many, with categorical columns passed as (N,) text."""
    from multimodal.runs.run import Run
    ds, inputs, stats = tiny_inputs
    model = build_model(ModelConfig(arch="late_concat", image_size=16, seed=1), ds.features, stats,
                        "classification", ["a", "b", "c"])
    run = Run(tmp_path, {}, {}, {}, pd.DataFrame(), _model=model)
    x = select_inputs(model, inputs)
    assert any(v.dtype.kind == "U" and v.ndim == 1 for v in x.values())   # the (N,) text case is covered
    eager = np.asarray(model(x, training=False))
    for rows in (slice(0, 1), slice(0, 7), slice(None)):
        part = {k: v[rows] for k, v in x.items()}
        np.testing.assert_allclose(predict(run, part), eager[rows], atol=1e-5)
    compiled = predict.compiled[model]
    assert compiled.experimental_get_tracing_count() == 1
