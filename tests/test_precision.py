"""Mixed precision on the CPU (train/precision.py): bfloat16 for the image encoder where the CPU has
it natively, float32 everywhere else, and a saved model that computes in float32.

The GPU (float16) side of the same code is tests/test_gpu_path.py.
"""
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.core.errors import DataError
from multimodal.data.dataset import load_dataset
from multimodal.data.inputs import model_inputs
from multimodal.models.assembly import all_layers, build_model, compute_in_float32, head_of, select_inputs
from multimodal.models.branches import tabular_stats
from multimodal.runs.run import load_model_file
from multimodal.train import precision, training
from multimodal.train.precision import cpu_has_bfloat16, image_policy

FLAGS = "flags\t\t: fpu vme sse sse2 avx2 avx512f {extra}\n"


def cpuinfo(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / f"cpuinfo-{extra or 'plain'}"
    path.write_text("processor\t: 0\n" + FLAGS.format(extra=extra) + "processor\t: 1\n" + FLAGS.format(extra=extra))
    return path


@pytest.mark.parametrize("extra, native", [("avx512_bf16 avx512_vnni", True), ("amx_bf16 amx_tile", True),
                                           ("avx512_vnni", False), ("", False)])
def test_bfloat16_is_native_only_with_its_cpu_flags(tmp_path, extra, native):
    path = cpuinfo(tmp_path, extra)
    assert cpu_has_bfloat16(path) is native
    assert image_policy("auto", on_gpu=False, cpuinfo=path) == ("mixed_bfloat16" if native else "float32")


def test_policy_choices(tmp_path):
    bf16 = cpuinfo(tmp_path, "avx512_bf16")
    assert image_policy("auto", on_gpu=True, cpuinfo=bf16) == "mixed_float16"
    assert image_policy("float32", on_gpu=True, cpuinfo=bf16) == "float32"
    assert image_policy("float32", on_gpu=False, cpuinfo=bf16) == "float32"
    assert cpu_has_bfloat16(tmp_path / "no-such-file") is False     # not Linux: no claim, float32
    with pytest.raises(DataError, match="unknown precision 'half'; use auto or float32"):
        image_policy("half", on_gpu=False)


@pytest.fixture(scope="module")
def lesions(tiny_samples):
    ds = load_dataset(tiny_samples["skin_lesions"])
    inputs = model_inputs(ds.frame, ds.root, ds.features, 16)
    return ds, inputs, tabular_stats(inputs, ds.features)


def test_bfloat16_encoder_float32_head_and_a_lossless_switch_to_float32(lesions):
    ds, inputs, stats = lesions
    config = ModelConfig(arch="late_concat", image_size=16)
    mixed = build_model(config, ds.features, stats, ds.task, ds.classes, image_policy="mixed_bfloat16")
    convs = [layer for layer in all_layers(mixed) if isinstance(layer, keras.layers.Conv2D)]
    assert convs and {layer.compute_dtype for layer in convs} == {"bfloat16"}
    assert {layer.compute_dtype for layer in all_layers(head_of(mixed))} == {"float32"}
    assert {layer.compute_dtype for layer in all_layers(mixed.get_layer("tabular_encoder"))} <= {"float32", "string"}
    assert {w.dtype for w in mixed.weights} == {"float32"}            # weights stay float32 under a mixed policy
    feed = select_inputs(mixed, inputs)
    before = np.asarray(mixed(feed, training=False))
    compute_in_float32(mixed)
    assert {layer.dtype_policy.name for layer in [mixed, *all_layers(mixed)]} == {"float32"}
    after = np.asarray(mixed(feed, training=False))
    plain = build_model(config, ds.features, stats, ds.task, ds.classes)
    plain.set_weights(mixed.get_weights())
    np.testing.assert_allclose(after, np.asarray(plain(feed, training=False)), atol=1e-5)
    # bfloat16 keeps 8 significant bits: the mixed outputs are close to, but not, the float32 ones.
    assert 0 < np.abs(before - after).max() < 0.05
    keras.backend.clear_session()


@pytest.mark.parametrize("setting, native, expected", [("auto", True, "mixed_bfloat16"), ("auto", False, "float32"),
                                                       ("float32", True, "float32")])
def test_train_records_its_precision_and_saves_a_float32_model(tiny_samples, tmp_path, monkeypatch,
                                                               setting, native, expected):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda cpuinfo=None: native)
    config = TrainConfig(data=str(tiny_samples["skin_lesions"]), epochs=1, batch_size=16, precision=setting,
                         model=ModelConfig(arch="late_concat", image_size=16))
    summary = training.train(config, tmp_path / "run")
    assert summary["precision"] == expected
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["precision"] == expected
    assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == setting
    saved = load_model_file(tmp_path / "run" / "model.keras")
    assert {layer.dtype_policy.name for layer in [saved, *all_layers(saved)]} == {"float32"}
    keras.backend.clear_session()
