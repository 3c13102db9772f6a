"""The three export formats: how a run's model is written (Keras' own `model.export` wherever it can
take the model) and loaded back with each format's own runtime to be verified
(docs/ARCHITECTURE.md, "Export and model card").

- saved_model: Keras' `ExportArchive` (what `model.export(format="tf_saved_model")` uses) with the
  model called in inference mode, reloaded with `tf.saved_model.load`.
- tflite: Keras' LiteRT export (TFLite builtins, Select TF ops allowed). The model's one lookup
  table keyed by joined strings (`CategoricalOneHot`) would need Select TF ops (StringJoin,
  BroadcastTo, DenseBincount), which TensorFlow 2.21's own `tf.lite.Interpreter` no longer links;
  so the export looks each column up in its own small table and builds the same one-hot, all
  builtin ops. Reloaded with `tf.lite.Interpreter`; any Select TF op left is named in the notes.
- onnx: tf2onnx has no string ops, so the categorical columns go in as integer codes (0 = a value
  not seen in training, i = the i-th value of the column's vocabulary, written to vocabulary.json)
  and the one-hot is rebuilt from the codes; then Keras' own `export_onnx` converts the model.
  Reloaded with onnxruntime. A model that reads strings any other way is refused, naming the layer.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras.src.export.litert import export_litert

from multimodal.core.errors import DataError
from multimodal.data.inputs import TABULAR_CATEGORICAL
from multimodal.models.assembly import all_layers
from multimodal.models.layers import CategoricalOneHot
from multimodal.runs.run import model_feed

CODES_INPUT = f"{TABULAR_CATEGORICAL}_codes"     # the ONNX model's categorical input: int64 codes


@dataclass(frozen=True)
class ExportFormat:
    name: str                      # the CLI's --format value
    title: str
    file: str                      # the model's file or folder inside the export folder
    packages: tuple[str, ...]      # Python packages (import names) it needs to be written and verified
    runtime: str                   # how it is loaded again


FORMATS = {
    "saved_model": ExportFormat("saved_model", "TensorFlow SavedModel", "saved_model", ("tensorflow",),
                                "tf.saved_model.load (TensorFlow)"),
    "tflite": ExportFormat("tflite", "TensorFlow Lite (LiteRT)", "model.tflite", ("tensorflow",),
                           "tf.lite.Interpreter (TensorFlow)"),
    "onnx": ExportFormat("onnx", "ONNX", "model.onnx", ("tf2onnx", "onnx", "onnxruntime"),
                         "onnxruntime.InferenceSession"),
}


def export_format(name: str) -> ExportFormat:
    if name not in FORMATS:
        raise DataError(f"unknown export format '{name}'; choose one of {', '.join(FORMATS)}")
    return FORMATS[name]


def missing_packages(fmt: ExportFormat) -> list[str]:
    """The packages this format needs that are not installed."""
    return [p for p in fmt.packages if importlib.util.find_spec(p) is None]


# ---------------------------------------------------------------- ONNX: categorical columns as codes

def one_hot_layer(model: keras.Model) -> CategoricalOneHot | None:
    return next((layer for layer in all_layers(model) if isinstance(layer, CategoricalOneHot)), None)


def check_onnx_inputs(model: keras.Model) -> None:
    """Refuse a model whose string inputs are read by anything but one CategoricalOneHot layer: tf2onnx
    converts no string op, and the codes path rebuilds exactly that layer."""
    encoded = one_hot_layer(model)
    for t in model.inputs:
        if "string" not in str(t.dtype) or (t.name == TABULAR_CATEGORICAL and encoded is not None):
            continue
        readers = [layer for layer in all_layers(model) if any(
            getattr(node_input, "name", None) == t.name for node in getattr(layer, "_inbound_nodes", [])
            for node_input in node.arguments.keras_tensors)]
        layer = readers[0] if readers else None
        named = f"layer '{layer.name}' ({type(layer).__name__})" if layer else "the model"
        raise DataError(f"ONNX export refused: {named} reads the string input '{t.name}', and the ONNX converter "
                        "(tf2onnx) has no string operations; only Multimodal Studio's CategoricalOneHot layer can be "
                        "exported with integer codes. Export as saved_model or tflite instead.")


def vocabularies(model: keras.Model) -> dict[str, list[str]]:
    """{categorical input column: its vocabulary}, code i = the i-th entry (1-based), 0 = unseen."""
    layer = one_hot_layer(model)
    return dict(zip(layer.columns, layer.vocabularies)) if layer is not None else {}


def category_codes(model: keras.Model, strings: np.ndarray) -> np.ndarray:
    """(N, k) int64 codes of an (N, k) string matrix, by the model's own vocabularies."""
    layer = one_hot_layer(model)
    lookup = [{v: i + 1 for i, v in enumerate(vocab)} for vocab in layer.vocabularies]
    strings = np.asarray(strings).astype(str)
    return np.array([[lookup[j].get(v, 0) for j, v in enumerate(row)] for row in strings], dtype=np.int64).reshape(
        len(strings), len(lookup))


def _codes_one_hot(layer: CategoricalOneHot, codes):
    """The one-hot CategoricalOneHot computes, from codes instead of strings (same slot layout)."""
    starts = np.cumsum([0] + [1 + len(v) for v in layer.vocabularies[:-1]])
    positions = tf.cast(codes, tf.int64) + tf.constant(starts, tf.int64)[None, :]
    return tf.reduce_max(tf.one_hot(positions, layer.width, dtype=tf.float32), axis=1)


def _inference_graph(functional: keras.Model, flat_inputs: list):
    """Run a functional model's graph in inference mode with the two substitutions ONNX needs: the
    categorical one-hot from codes, and Normalization with its statistics as graph constants (they
    are captured tensors otherwise, which the converter leaves as extra inputs)."""
    def operation(op):
        if isinstance(op, CategoricalOneHot):
            return lambda codes, **_: _codes_one_hot(op, codes)
        if isinstance(op, keras.layers.Normalization) and not op.invert:
            mean, scale = np.asarray(op.mean), np.maximum(np.sqrt(np.asarray(op.variance)), keras.backend.epsilon())
            return lambda x, **_: (tf.cast(x, tf.float32) - tf.constant(mean)) / tf.constant(scale)
        if isinstance(op, keras.Model):
            return lambda x, **_: _inference_graph(
                op, [x[t.name] for t in op.inputs] if isinstance(x, dict) else keras.tree.flatten(x))

        def call(*args, **kwargs):
            if "training" in getattr(op, "_call_context_args", ()):
                kwargs["training"] = False
            return op(*args, **kwargs)
        return call
    # Keras' own graph walk (Functional.call does the same with training passed along).
    out = functional._run_through_graph(flat_inputs, operation_fn=operation)
    return out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out


class _InferenceModel(keras.layers.Layer):
    """The model in inference mode with its categorical one-hot rebuilt from integer codes: given as
    codes (ONNX, `CODES_INPUT`), or looked up from the strings in one small table per column (TFLite:
    its builtin hash-table ops, where the model's single table keyed by joined strings needs Select
    TF ops that TensorFlow's own interpreter no longer links). Keras' exporters convert this layer."""

    def __init__(self, model: keras.Model, codes_input: bool, **kwargs):
        super().__init__(**kwargs)
        self.model, self.codes_input = model, codes_input
        self.one_hot = one_hot_layer(model)
        self.tables = [] if codes_input or self.one_hot is None else [
            tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocab + [""] if not vocab else vocab, tf.string),
                tf.constant(list(range(1, len(vocab) + 1)) or [0], tf.int64)), default_value=0)
            for vocab in self.one_hot.vocabularies]
        self.built = True

    def _codes(self, inputs):
        if self.codes_input:
            return inputs[CODES_INPUT]
        strings = inputs[TABULAR_CATEGORICAL]
        return tf.stack([table.lookup(strings[:, j]) for j, table in enumerate(self.tables)], axis=1)

    def call(self, inputs):
        grouped = self.one_hot is not None
        return _inference_graph(self.model, [self._codes(inputs) if grouped and t.name == TABULAR_CATEGORICAL
                                             else inputs[t.name] for t in self.model.inputs])


def input_specs(model: keras.Model) -> dict[str, tf.TensorSpec]:
    """The model's inputs as TensorSpecs with any batch size: what an export is traced with."""
    return {t.name: tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=t.name) for t in model.inputs}


def onnx_specs(model: keras.Model) -> dict[str, tf.TensorSpec]:
    """input_specs with the categorical matrix as int64 codes."""
    specs = input_specs(model)
    if TABULAR_CATEGORICAL in specs and one_hot_layer(model) is not None:
        width = specs.pop(TABULAR_CATEGORICAL).shape[1]
        specs[CODES_INPUT] = tf.TensorSpec((None, width), tf.int64, name=CODES_INPUT)
    return specs


# ---------------------------------------------------------------- writing, feeding, loading

@contextlib.contextmanager
def _quiet_converters():
    """The converters' warnings (tf2onnx's numpy notice, TensorFlow's "table_initializer" collection
    warning, tf2onnx's per-op notes) are theirs, not the user's: a refusal says what went wrong."""
    loggers = [logging.getLogger(name) for name in ("tensorflow", "tf2onnx")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def write_model(fmt: ExportFormat, model: keras.Model, path: Path) -> None:
    """Write the model in this format to `path` (a folder for saved_model, else a file)."""
    with _quiet_converters():
        _write_model(fmt, model, path)


def _write_model(fmt: ExportFormat, model: keras.Model, path: Path) -> None:
    if fmt.name == "onnx":
        # lazy: onnx is an optional runtime; this module must import without it
        from keras.src.export.onnx import export_onnx
        check_onnx_inputs(model)
        export_onnx(_InferenceModel(model, codes_input=True, name="codes_model"), str(path),
                    input_signature=[onnx_specs(model)], verbose=False)
        return
    if fmt.name == "tflite":
        # Keras' LiteRT export (TFLite builtins, Select TF ops allowed where nothing else converts).
        specs = input_specs(model)
        # A recurrent layer's loop over frames converts to TensorList ops (Select TF ops); over a fixed,
        # small number of frames it is unrolled into builtin ops instead, for the conversion only.
        loops = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.RNN) and not layer.unroll]
        try:
            for layer in loops:
                layer.unroll = True
            export_litert(_InferenceModel(model, codes_input=False, name="tflite_model"), str(path),
                          input_signature=[specs], verbose=False)
        finally:
            for layer in loops:
                layer.unroll = False
        return
    # Keras' `model.export(format="tf_saved_model")` serves `model.__call__` with no training flag,
    # and random augmentation layers default to training=True: the SavedModel would augment every
    # image it predicts. Its own ExportArchive with the call in inference mode, as its LiteRT export does.
    archive = keras.export.ExportArchive()
    archive.track(model)
    specs = input_specs(model)
    archive.add_endpoint("serve", functools.partial(model.__call__, training=False), input_signature=[specs])
    archive.write_out(str(path), verbose=False)


def export_feed(fmt: ExportFormat, model: keras.Model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a user of the exported file passes it, from raw inputs: the model's own input arrays, with
    ONNX's categorical matrix replaced by its integer codes."""
    feed = model_feed(model, inputs)
    if fmt.name == "onnx" and TABULAR_CATEGORICAL in feed and one_hot_layer(model) is not None:
        feed[CODES_INPUT] = category_codes(model, feed.pop(TABULAR_CATEGORICAL))
    return feed


def flex_ops(path: Path) -> list[str]:
    """The Select TF ops a .tflite file uses (their custom op codes are named 'Flex<Op>')."""
    return sorted({m.decode() for m in re.findall(rb"Flex[A-Z][A-Za-z0-9]+", Path(path).read_bytes())})


def load_exported(fmt: ExportFormat, path: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """The exported file loaded with its own runtime, as a function feed -> (N, units) outputs."""
    if fmt.name == "saved_model":
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        return lambda feed: next(iter(serve(**{k: tf.constant(v) for k, v in feed.items()}).values())).numpy()
    if fmt.name == "tflite":
        with warnings.catch_warnings():   # tf.lite.Interpreter's notice about the ai_edge_litert package
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_path=str(path))
        runner = interpreter.get_signature_runner("serving_default")

        def run_tflite(feed):
            # Row by row: the interpreter's tensors have the batch size of the last call.
            rows = len(next(iter(feed.values())))
            return np.concatenate([next(iter(runner(**{k: v[i:i + 1] for k, v in feed.items()}).values()))
                                   for i in range(rows)])
        return run_tflite
    # lazy: onnxruntime is an optional runtime
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0]
