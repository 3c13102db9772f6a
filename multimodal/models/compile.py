"""Compile a model for its task: the loss on the head's standardized target, metrics in the target's unit.

Used by training and by importing an uploaded model, so both measure the same metrics.
"""
from __future__ import annotations

import keras

from multimodal.core.tasks import top_k, top_k_metric
from multimodal.models.layers import NonzeroMAPE, TransformedLoss


def compile_model(model: keras.Model, task: str, n_classes: int, lr: float, loss: str | None,
                  target_stats: dict | None = None) -> None:
    """Compile for the task. Regression losses (mse/mae/huber) are computed on the standardized,
    possibly log-transformed target (layers.TransformedLoss), i.e. on the head's pre-TargetScale
    output; mape is a relative error and is computed in the original unit. Metrics are always in
    the original unit (the full model's output)."""
    loss_fn, metrics = task_objectives(task, n_classes, loss, target_stats)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss_fn, metrics=metrics)


def build_for_fit(model: keras.Model, data) -> None:
    """Create the compiled model's loss, metric and optimizer state from the data's element spec
    (a tf.data.Dataset of (x, y[, weights])), just before `fit`. Keras' TensorFlow trainer leaves
    that to the first traced train step, and TensorFlow then traces the whole step a second time
    because variables were created in it: building first saves one trace of the train step per
    fit (docs/ARCHITECTURE.md, "Training"; counted by tests/test_fit_traces.py)."""
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=data.element_spec)   # what Keras does itself under a strategy


def task_objectives(task: str, n_classes: int, loss: str | None,
                    target_stats: dict | None = None) -> tuple[keras.losses.Loss, list[keras.metrics.Metric]]:
    """(loss, fresh metric objects) of a task, as compile_model compiles them."""
    if task == "classification":
        if n_classes == 2:
            loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
            metrics = [keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy"),
                       keras.metrics.AUC(from_logits=True, name="auc")]
        else:
            loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                       # named by its k (top_5_accuracy from 10 classes on, top_2 with 3 classes)
                       keras.metrics.SparseTopKCategoricalAccuracy(k=top_k(n_classes), name=top_k_metric(n_classes))]
    else:
        loss = loss or "mse"
        if loss == "mape":
            loss_fn = keras.losses.MeanAbsolutePercentageError()
        else:
            t = target_stats or {"mean": 0.0, "std": 1.0, "log": False}
            loss_fn = TransformedLoss(loss, t["mean"], t["std"], t.get("log", False))
        metrics = [keras.metrics.MeanAbsoluteError(name="mae"), keras.metrics.RootMeanSquaredError(name="rmse"),
                   NonzeroMAPE(), keras.metrics.R2Score(name="r2")]
    return loss_fn, metrics
