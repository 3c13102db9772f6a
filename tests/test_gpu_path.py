"""The GPU code path, checked on this CPU-only machine where it can be.

- Mixed precision (what `train` uses when TensorFlow sees a GPU) serves regression too: the image
  encoder computes in float16, the head and TargetScale, its output layer, in float32, so target
  values past float16's 65504 (house prices) come out finite; the saved model is float32 throughout
  (the bfloat16 CPU path is tests/test_precision.py).
- The GPU install (`make run GPU=1`, `make test GPU=1`) pins TensorFlow's CUDA build at the
  version of tensorflow-cpu, with every other pin the same, in a venv of its own.
"""
import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.dataset import load_dataset
from multimodal.data.inputs import model_inputs
from multimodal.models.assembly import all_layers, build_model, head_of
from multimodal.models.branches import tabular_stats
from multimodal.models.layers import TargetScale
from multimodal.runs.run import load_model_file, load_run, predict, run_inputs
from multimodal.train import training

ROOT = Path(__file__).resolve().parents[1]
FLOAT16_MAX = 65504.0


def test_target_scale_answers_in_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        z = keras.Input((1,))
        hidden = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")
        standardized = hidden(z)
        out = TargetScale(mean=12.0, std=1.0, log=True)(standardized)          # exp(12) = 162,755
        float16 = TargetScale(mean=12.0, std=1.0, log=True, dtype="mixed_float16")(standardized)
        model = keras.Model(z, [out, float16])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert hidden.compute_dtype == "float16"            # the policy applies to the layers before it
    assert model.outputs[0].dtype == "float32"
    y, y16 = model.predict(np.zeros((2, 1), "float32"), verbose=0)
    np.testing.assert_allclose(y, np.exp(12.0), rtol=1e-6)
    assert np.isinf(y16).all()                           # what a float16 output layer gives: the old overflow


def test_regression_trains_with_mixed_precision_and_predicts_past_float16(tiny_samples, tmp_path, monkeypatch):
    """train() as on a GPU machine (distribution() says a GPU) but on the CPU: the image encoder
    trains under mixed_float16, and the saved model computes in float32 and predicts prices
    (about 370,000)."""
    real = training.distribution
    monkeypatch.setattr(training, "distribution",
                        lambda devices, multi_worker=False: (*real(devices, multi_worker)[:2], True))
    trained_in = set()

    def build(*args, **kwargs):   # what the image encoder computes in while it trains
        model = build_model(*args, **kwargs)
        trained_in.update(layer.dtype_policy.name for layer in all_layers(model.get_layer("image_encoder"))
                          if layer.weights)
        return model
    monkeypatch.setattr(training, "build_model", build)
    data = tiny_samples["house_prices"]
    config = TrainConfig(data=str(data), epochs=1, batch_size=16, target_transform="log",
                         model=ModelConfig(arch="late_concat", image_size=16, augment=False))
    summary = training.train(config, tmp_path / "run")
    assert summary["precision"] == "mixed_float16" and summary["task"] == "regression"
    assert np.isfinite(list(summary["metrics"].values())).all()
    model = load_model_file(tmp_path / "run" / "model.keras")
    assert {layer.dtype_policy.name for layer in all_layers(model)} == {"float32"}
    assert model.outputs[0].dtype == "float32"
    ds = load_dataset(data)
    run = load_run(tmp_path / "run")
    prices = predict(run, run_inputs(run, ds.frame, ds.root))
    assert np.isfinite(prices).all() and prices.min() > 0 and np.median(prices) > FLOAT16_MAX
    assert trained_in == {"mixed_float16"}
    keras.backend.clear_session()


def test_the_head_stays_float32_when_the_image_encoder_is_mixed(tiny_samples):
    ds = load_dataset(tiny_samples["skin_lesions"])
    stats = tabular_stats(model_inputs(ds.frame, ds.root, ds.features, 16), ds.features)
    mixed = build_model(ModelConfig(arch="late_concat", image_size=16), ds.features, stats, ds.task, ds.classes,
                        image_policy="mixed_float16")
    encoder = mixed.get_layer("image_encoder")
    assert {layer.dtype_policy.name for layer in all_layers(encoder) if layer.weights} == {"mixed_float16"}
    assert {layer.dtype_policy.name for layer in all_layers(head_of(mixed))} == {"float32"}
    assert mixed.outputs[0].dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"   # the build leaves the global policy alone
    keras.backend.clear_session()


def pins(path: Path) -> dict[str, str]:
    """name (extras dropped) -> version of every `name==version` line."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]+\])?==(\S+)", line.split("#")[0].strip())
        if match:
            found[match.group(1).lower()] = match.group(3)
    return found


def test_the_gpu_requirements_are_the_cpu_ones_with_the_cuda_build_of_the_same_tensorflow():
    cpu, gpu = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-gpu.txt")
    assert "tensorflow[and-cuda]==" in (ROOT / "requirements-gpu.txt").read_text()
    assert gpu.pop("tensorflow") == cpu.pop("tensorflow-cpu")
    assert gpu == cpu


@pytest.mark.parametrize("target", ["run", "test"])
def test_make_gpu_installs_the_gpu_requirements_in_a_venv_of_its_own(target):
    def commands(*args: str) -> str:   # make -n: print what would run, run nothing
        return subprocess.run(["make", "-n", "-B", target, *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
    default, gpu = commands(), commands("GPU=1")
    assert ".venv/bin/pip install --quiet -r requirements.txt" in default and ".venv-gpu" not in default
    assert ".venv-gpu/bin/pip install --quiet -r requirements-gpu.txt" in gpu
    assert "-r requirements.txt" not in gpu and " .venv/" not in gpu
