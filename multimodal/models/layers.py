"""Small custom Keras layers the models need, registered so `.keras` files load in safe mode.

Each layer does one thing that no stock Keras layer does, and keeps its state in `get_config`,
so a saved model takes raw column values and needs no Python code beyond this module.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from multimodal.core.tasks import MAPE_MIN_TARGET

PACKAGE = "multimodal"


def _require(ok: bool, layer: str, expected: str, **received) -> None:
    """Keras-style argument check: the layer, what was expected and what was received."""
    if not ok:
        got = ", ".join(f"{k}={v!r}" for k, v in received.items())
        raise ValueError(f"{layer}: expected {expected}. Received: {got}")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImputeMissing(keras.layers.Layer):
    """Replace NaN by a fill value (the training median); optionally append a 'was missing' flag.

    Input (N, 1) float; output (N, 1) or (N, 2) = [value, flag]. New models use ImputeColumns (one
    layer for all columns); this one stays registered so runs saved before that still load.
    """

    def __init__(self, fill_value: float = 0.0, add_indicator: bool = False, **kwargs):
        super().__init__(**kwargs)
        _require(math.isfinite(fill_value), "ImputeMissing", "a finite fill_value", fill_value=fill_value)
        self.fill_value = float(fill_value)
        self.add_indicator = bool(add_indicator)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        missing = ops.isnan(x)
        filled = ops.where(missing, self.fill_value, x)
        if not self.add_indicator:
            return filled
        return ops.concatenate([filled, ops.cast(missing, "float32")], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 if self.add_indicator else 1)

    def get_config(self):
        return {**super().get_config(), "fill_value": self.fill_value, "add_indicator": self.add_indicator}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImputeColumns(keras.layers.Layer):
    """ImputeMissing for all numeric columns at once: one layer whatever the table's width.

    Input (N, k) float, column j = `columns[j]` (their input names, so the model says which raw
    column feeds which position). Output: per column its value with NaN replaced by `fills[j]`,
    followed by a 0/1 'was missing' flag when `indicators[j]`; the order of `branches.tabular_layout`.
    """

    def __init__(self, columns: list[str], fills: list[float], indicators: list[bool], **kwargs):
        super().__init__(**kwargs)
        _require(len(columns) == len(fills) == len(indicators) >= 1, "ImputeColumns",
                 "one fill value and one indicator per column (at least one column)",
                 columns=len(columns), fills=len(fills), indicators=len(indicators))
        _require(all(math.isfinite(f) for f in fills), "ImputeColumns", "finite fill values",
                 fills=[f for f in fills if not math.isfinite(f)][:3])
        self.columns, self.fills = [str(c) for c in columns], [float(f) for f in fills]
        self.indicators = [bool(b) for b in indicators]
        flagged = [j for j, b in enumerate(self.indicators) if b]
        # Values first, flags after them, then one gather puts each flag right after its value.
        rank = {j: len(self.columns) + r for r, j in enumerate(flagged)}
        self._flagged = flagged
        self._order = [p for j in range(len(self.columns)) for p in ([j, rank[j]] if j in rank else [j])]

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        missing = ops.isnan(x)
        filled = ops.where(missing, ops.convert_to_tensor(self.fills, "float32"), x)
        if not self._flagged:
            return filled
        flags = ops.take(ops.cast(missing, "float32"), self._flagged, axis=1)
        return ops.take(ops.concatenate([filled, flags], axis=1), self._order, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self._order))

    def get_config(self):
        return {**super().get_config(), "columns": self.columns, "fills": self.fills, "indicators": self.indicators}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CategoricalOneHot(keras.layers.Layer):
    """One-hot encode all categorical columns with one lookup table, whatever the table's width.

    Input (N, k) strings, column j = `columns[j]` (input names). Output: per column a block of
    1 + len(vocabularies[j]) slots, [out-of-vocabulary, vocabulary...], exactly as a StringLookup
    per column with one OOV index would give (the order of `branches.tabular_layout`). One hash
    table keyed "j<sep>value" replaces k StringLookup layers: the model's size and tracing time no
    longer grow with a layer per column.
    """

    SEPARATOR = "\x1f"   # ASCII unit separator: cannot be confused with a value's own characters

    def __init__(self, columns: list[str], vocabularies: list[list[str]], **kwargs):
        super().__init__(**kwargs)
        _require(len(columns) == len(vocabularies) >= 1, "CategoricalOneHot",
                 "one vocabulary per column (at least one column)", columns=len(columns),
                 vocabularies=len(vocabularies))
        self.columns = [str(c) for c in columns]
        self.vocabularies = [[str(v) for v in vocab] for vocab in vocabularies]
        starts, keys, positions, start = [], [], [], 0
        for j, vocab in enumerate(self.vocabularies):
            starts.append(start)
            keys += [f"{j}{self.SEPARATOR}{v}" for v in vocab]
            positions += range(start + 1, start + 1 + len(vocab))
            start += 1 + len(vocab)
        self.width = start
        self._oov = tf.constant(starts, dtype="int64")
        self._prefix = tf.constant([f"{j}{self.SEPARATOR}" for j in range(len(self.columns))])
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys, dtype="string"),
                                                tf.constant(positions, dtype="int64")), default_value=-1)

    def call(self, inputs):
        keys = tf.strings.join([tf.broadcast_to(self._prefix, tf.shape(inputs)), inputs])
        found = self._table.lookup(keys)
        positions = tf.where(found < 0, self._oov[None, :], found)
        hot = tf.math.bincount(positions, minlength=self.width, maxlength=self.width, binary_output=True, axis=-1)
        return tf.cast(hot, "float32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def get_config(self):
        return {**super().get_config(), "columns": self.columns, "vocabularies": self.vocabularies}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FrameMean(keras.layers.Layer):
    """Average over the frame axis (axis 1): several images of one row become one feature map."""

    def call(self, inputs):
        return ops.mean(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])


@keras.saving.register_keras_serializable(package=PACKAGE)
class TargetScale(keras.layers.Layer):
    """Map a standardized prediction back to the target's unit: y = z * std + mean (exp'd if log).

    Always computes in float32, under a mixed_float16 policy too (GPU training): the target's unit
    may exceed float16's 65504 (a price, or any exp of a log target), so the model's output stays
    float32 whatever the policy of the layers before it."""

    def __init__(self, mean: float = 0.0, std: float = 1.0, log: bool = False, **kwargs):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        _require(math.isfinite(mean) and math.isfinite(std) and std > 0, "TargetScale",
                 "a finite mean and a finite std > 0", mean=mean, std=std)
        self.mean, self.std, self.log = float(mean), float(std), bool(log)

    def call(self, inputs):
        y = inputs * self.std + self.mean
        return ops.exp(y) if self.log else y

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "log": self.log}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FeatureModulation(keras.layers.Layer):
    """FiLM: scale and shift each channel of a feature map, x * (1 + gamma) + beta.

    Inputs [feature_map (N, ..., C), gamma (N, C), beta (N, C)]. The `1 +` keeps the identity
    at initialisation, so a fresh FiLM model starts as the plain CNN.
    """

    def call(self, inputs):
        feature_map, gamma, beta = inputs
        extra_axes = len(feature_map.shape) - 2
        shape = (-1,) + (1,) * extra_axes + (feature_map.shape[-1],)
        return feature_map * (1.0 + ops.reshape(gamma, shape)) + ops.reshape(beta, shape)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package=PACKAGE)
class GatedMix(keras.layers.Layer):
    """h = g * a + (1 - g) * b with a per-unit gate g in (0, 1). Inputs [a, b, gate]."""

    def call(self, inputs):
        a, b, gate = inputs
        return gate * a + (1.0 - gate) * b

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


@keras.saving.register_keras_serializable(package=PACKAGE)
class BranchAttention(keras.layers.Layer):
    """A learned query attends over one token per branch; returns the attended vector.

    `call(tokens, return_scores=True)` also returns the (N, heads, 1, M) attention weights, which
    the app shows as routing (where the query looked), never as contribution.
    """

    def __init__(self, width: int = 32, heads: int = 2, **kwargs):
        super().__init__(**kwargs)
        _require(int(width) == width >= 1 and int(heads) == heads >= 1, "BranchAttention",
                 "positive integers width and heads", width=width, heads=heads)
        self.width, self.heads = int(width), int(heads)
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=self.heads, key_dim=max(1, self.width // self.heads), name="mha")

    def build(self, input_shape):
        n_tokens = input_shape[1]
        self.query = self.add_weight(shape=(1, 1, self.width), initializer="glorot_uniform", name="query")
        # Tells the branches apart: without it the attention is permutation-invariant over them.
        self.branch_embedding = self.add_weight(
            shape=(1, n_tokens, self.width), initializer="zeros", name="branch_embedding")
        self.attention.build((None, 1, self.width), (None, n_tokens, self.width))

    def call(self, tokens, return_scores: bool = False):
        tokens = tokens + self.branch_embedding
        query = ops.broadcast_to(self.query, (ops.shape(tokens)[0], 1, self.width))
        attended, scores = self.attention(query, tokens, return_attention_scores=True)
        attended = ops.squeeze(attended, axis=1)
        return (attended, scores) if return_scores else attended

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "heads": self.heads}


@keras.saving.register_keras_serializable(package=PACKAGE)
class WeightedAverage(keras.layers.Layer):
    """Average branch predictions with learned softmax weights (or fixed equal weights)."""

    def __init__(self, learned: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.learned = bool(learned)

    def build(self, input_shapes):
        self.logits = self.add_weight(shape=(len(input_shapes),), initializer="zeros",
                                      trainable=self.learned, name="branch_logits")

    def call(self, inputs):
        weights = ops.softmax(self.logits)
        return sum(weights[i] * x for i, x in enumerate(inputs))

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "learned": self.learned}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ModalityDropout(keras.layers.Layer):
    """Replace a branch's embedding by a learned "missing" embedding, per row.

    Training: each row is replaced with probability `rate`, so the head learns to predict
    without this branch and leans less on it. Inference: the identity, except for rows
    flagged missing, i.e. rows whose embedding is entirely NaN (see model.mark_missing); those
    get the learned embedding. A model without missing rows predicts exactly as without the layer.
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        _require(0.0 <= rate <= 1.0, "ModalityDropout", "a rate in [0, 1]", rate=rate)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.missing = self.add_weight(shape=tuple(input_shape[1:]), initializer="zeros", name="missing")

    def _row_mask(self, mask, x):
        return ops.reshape(mask, (-1,) + (1,) * (len(x.shape) - 1))

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        axes = tuple(range(1, len(x.shape)))
        flagged = ops.all(ops.isnan(x), axis=axes) if axes else ops.isnan(x)
        if training and self.rate > 0:
            drop = keras.random.uniform(ops.shape(x)[:1], seed=self.seed_generator) < self.rate
            flagged = ops.logical_or(flagged, drop)
        return ops.where(self._row_mask(flagged, x), self.missing[None], x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TransformedLoss(keras.losses.Loss):
    """A regression loss computed on the standardized (optionally log) target.

    The model answers in the target's unit (TargetScale); this loss maps both y_true and
    y_pred back through t(y) = (log?(y) - mean) / std, so training fits the transformed target
    (z for the prediction is exactly the head's pre-TargetScale output) while metrics stay in
    the original unit. base: mse | mae | huber.
    """

    def __init__(self, base: str = "mse", mean: float = 0.0, std: float = 1.0, log: bool = False,
                 name: str | None = None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name or f"transformed_{base}", reduction=reduction, dtype=dtype)
        self.base, self.mean, self.std, self.log = str(base), float(mean), float(std), bool(log)

    def _t(self, y):
        y = ops.cast(y, "float32")
        if self.log:
            y = ops.log(ops.maximum(y, 1e-30))
        return (y - self.mean) / self.std

    def call(self, y_true, y_pred):
        t, p = self._t(y_true), self._t(y_pred)
        err = p - t
        if self.base == "mae":
            per = ops.abs(err)
        elif self.base == "huber":
            a = ops.abs(err)
            per = ops.where(a <= 1.0, 0.5 * ops.square(err), a - 0.5)
        else:
            per = ops.square(err)
        return ops.mean(per, axis=-1)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "base": self.base, "mean": self.mean,
                "std": self.std, "log": self.log}


@keras.saving.register_keras_serializable(package=PACKAGE)
class NonzeroMAPE(keras.metrics.Metric):
    """Mean absolute percentage error over the rows with a non-zero target (core/tasks.MAPE_MIN_TARGET).

    Keras' own MeanAbsolutePercentageError divides by max(|y|, epsilon), so one zero target turns
    it into a huge number; this is the definition the numpy evaluation uses."""

    def __init__(self, name: str = "mape", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y = ops.reshape(ops.cast(y_true, "float32"), (-1,))
        p = ops.reshape(ops.cast(y_pred, "float32"), (-1,))
        kept = ops.cast(ops.abs(y) > MAPE_MIN_TARGET, "float32")
        ratio = ops.abs(p - y) / ops.where(kept > 0, ops.abs(y), 1.0)
        self.total.assign_add(ops.sum(ratio * kept) * 100.0)
        self.count.assign_add(ops.sum(kept))

    def result(self):
        return ops.where(self.count > 0, self.total / ops.maximum(self.count, 1.0), float("nan"))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)
