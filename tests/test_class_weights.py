"""Class weights batched with the rows (`training.row_weights`) train exactly like Keras'
`fit(class_weight=...)`, which train() no longer uses (it maps every batch after the prefetch)."""
import keras
import numpy as np

from multimodal.models.batches import make_dataset
from multimodal.train.training import class_weights, row_weights


def test_row_weights_come_from_the_training_rows_classes():
    y = np.array([0, 0, 0, 1, 1, 0])
    train = np.array([0, 1, 2, 3])                      # 3 of class 0, 1 of class 1
    assert class_weights(y[train], 2) == {0: 4 / 6, 1: 2.0}
    np.testing.assert_allclose(row_weights(y, train, 2), [4 / 6, 4 / 6, 4 / 6, 2.0, 2.0, 4 / 6], rtol=1e-6)
    assert row_weights(y, train, 2).dtype == np.float32


def _fit(weighting: str) -> list[np.ndarray]:
    """Two epochs of a small model on unbalanced rows: class weights the Keras way ("keras"),
    batched with the rows ("rows") or none ("none")."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 5)).astype("float32")
    y = (rng.random(96) < 0.25).astype("int32")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,), name="x")
    model = keras.Model({"x": inputs}, keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(inputs)))
    model.compile(keras.optimizers.Adam(0.01), keras.losses.BinaryCrossentropy(from_logits=True))
    weights = row_weights(y, np.arange(96), 2) if weighting == "rows" else None
    model.fit(make_dataset({"x": x}, y, 16, sample_weight=weights), epochs=2, verbose=0,
              class_weight=class_weights(y, 2) if weighting == "keras" else None)
    return model.get_weights()


def test_batched_row_weights_train_like_keras_class_weight():
    keras_way, ours, unweighted = _fit("keras"), _fit("rows"), _fit("none")
    for a, b in zip(keras_way, ours):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The weights do change training, so the equality above is not vacuous.
    assert max(np.abs(a - b).max() for a, b in zip(unweighted, ours)) > 1e-3
