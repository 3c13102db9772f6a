"""One trace of the train step per fit (models/compile.build_for_fit): Keras' TensorFlow trainer
creates the metrics' and optimizer's variables inside the first traced step, and TensorFlow then
traces the whole step again; building them from the data's spec first saves that trace."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.models.compile import build_for_fit
from multimodal.train.training import train


@pytest.fixture
def train_step_traces(monkeypatch) -> list[int]:
    """A list that grows by one each time a train step is traced (the Python body runs only then)."""
    traces: list[int] = []
    original = TensorFlowTrainer.train_step

    def counted(self, data):
        traces.append(1)
        return original(self, data)

    monkeypatch.setattr(TensorFlowTrainer, "train_step", counted)
    return traces


def _fit(build_first: bool) -> None:
    keras.utils.set_random_seed(0)
    x = np.random.rand(40, 8).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dense(16, activation="relu")(inputs)))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    if build_first:
        build_for_fit(model, data)
    model.fit(data, epochs=3, verbose=0)


def test_keras_alone_traces_the_train_step_twice(train_step_traces):
    _fit(build_first=False)
    assert len(train_step_traces) == 2   # when Keras stops doing this, build_for_fit can go


def test_built_first_it_is_traced_once(train_step_traces):
    _fit(build_first=True)
    assert len(train_step_traces) == 1


def test_a_run_traces_its_train_step_once(train_step_traces, tiny_samples, tmp_path):
    config = TrainConfig(data=str(tiny_samples["house_prices"]), epochs=2, batch_size=16,
                         model=ModelConfig(arch="late_concat", image_size=16))
    train(config, tmp_path / "run")
    assert len(train_step_traces) == 1
