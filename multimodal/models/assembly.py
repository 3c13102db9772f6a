"""Assemble branch encoders and a fusion head into one Keras model.

The model is a composition of named sub-models: `<branch>_encoder` for each branch (raw inputs
-> embedding) and `head` (embeddings -> output). It takes raw column values and uint8 images,
saves as one `.keras` file, and the explanations can run the head alone on cached embeddings.
"""
from __future__ import annotations

import contextlib
import weakref

import keras
import numpy as np

from multimodal.core.config import ModelConfig
from multimodal.core.errors import DataError
from multimodal.data.inputs import TABULAR_CATEGORICAL, TABULAR_NUMERIC, FeatureSpec, stack_columns
from multimodal.models.branches import image_encoder, rows_encoder, tabular_encoder
from multimodal.models.fusion import FUSION_METHODS, HeadSettings
from multimodal.models.layers import CategoricalOneHot, ImputeColumns, ModalityDropout, TargetScale
from multimodal.models.weights import WeightsSource


def output_units(task: str, classes: list[str]) -> int:
    return len(classes) if task == "classification" and len(classes) > 2 else 1


def build_model(config: ModelConfig, spec: FeatureSpec, stats: dict, task: str, classes: list[str],
                target_stats: dict | None = None, weights: WeightsSource | None = None,
                image_policy: str = "float32") -> keras.Model:
    """Build the full model for `config.arch` on the columns of `spec`.

    stats: from `branches.tabular_stats` on the training rows. target_stats: {"mean", "std",
    "log"} for regression, so the head predicts a standardized value and the model answers in
    the target's own unit. weights: the image encoder's, from `weights.resolve_weights` (training
    resolves them once, first); None looks in Keras' cache only (see `branches.image_encoder`).
    image_policy: the Keras dtype policy the image encoders compute in ("mixed_bfloat16" /
    "mixed_float16" while training on hardware that has it, train/precision.py); the tabular
    branch, the head and the output are float32 whatever it is.
    """
    if config.arch not in FUSION_METHODS:
        raise DataError(f"unknown architecture '{config.arch}'; choose one of {', '.join(FUSION_METHODS)}")
    method = FUSION_METHODS[config.arch]
    keras.utils.set_random_seed(config.seed)

    encoders: dict[str, keras.Model] = {}
    for branch in method.branches:
        if branch in ("image", "sequence", "rows") and not spec.image_cols:
            raise DataError(f"'{config.arch}' needs an image column and this dataset has none; "
                            "pick tabular_only or mark a column as image")
        if branch in ("image", "sequence"):
            with global_policy(image_policy):
                encoders[branch] = image_encoder(config.encoder, config.image_size, len(spec.image_cols),
                                                 config.augment, config.seed, name=f"{branch}_encoder",
                                                 weights=weights)
        elif branch == "rows":
            encoders[branch] = rows_encoder(config.image_size, len(spec.image_cols), config.augment, config.seed)
        else:
            if not spec.tabular_cols:
                raise DataError(f"'{config.arch}' needs tabular columns and this dataset has none; "
                                "pick image_only or mark columns as numeric/categorical")
            encoders[branch] = tabular_encoder(spec, stats)

    settings = HeadSettings(units=output_units(task, classes), width=config.width, dropout=config.dropout,
                            l2=config.l2, wide=config.wide, params=method.resolve(config.params))
    embeddings = {b: keras.Input(e.output.shape[1:], name=b) for b, e in encoders.items()}
    fused = embeddings
    if config.modality_dropout > 0:
        # Still {branch: embedding} -> head; the layer sits at the head's input, one per branch.
        fused = {b: ModalityDropout(config.modality_dropout, seed=config.seed + i, name=f"{b}_modality_dropout")(x)
                 for i, (b, x) in enumerate(embeddings.items())}
    # The linear (wide) term reads the head's tabular input, so branch explanations credit it to the table.
    out = method.outputs(fused, settings)
    if task == "regression":
        t = target_stats or {"mean": 0.0, "std": 1.0, "log": False}
        out = TargetScale(t["mean"], t["std"], t.get("log", False), name="target_scale")(out)
    head = keras.Model(embeddings, out, name="head")

    inputs = {}
    for encoder in encoders.values():
        inputs.update({t.name: t for t in encoder.inputs})
    encoded = {b: e(select_inputs(e, inputs)) for b, e in encoders.items()}
    return keras.Model(inputs, head(encoded), name=config.arch)


@contextlib.contextmanager
def global_policy(name: str):
    """Layers created inside take the dtype policy `name` (Keras reads the global policy when a
    layer is created); the previous policy is back afterwards."""
    saved = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(saved)


def compute_in_float32(model: keras.Model) -> None:
    """Switch every layer of `model` (nested models and wrapped layers too) to the float32 policy,
    in place. Under a mixed policy the weights are float32 already, so nothing is lost: the model
    just computes in full precision from its next call (recompile it to drop traced steps)."""
    for layer in [model, *all_layers(model)]:
        if layer.dtype_policy.name != "float32":
            layer.dtype_policy = "float32"


def branch_names(model: keras.Model) -> list[str]:
    """Branches of a built (or loaded) model, in the head's input order."""
    return [layer.name.removesuffix("_encoder") for layer in model.layers if layer.name.endswith("_encoder")]


def encoders_of(model: keras.Model) -> dict[str, keras.Model]:
    return {b: model.get_layer(f"{b}_encoder") for b in branch_names(model)}


def head_of(model: keras.Model) -> keras.Model:
    return model.get_layer("head")


def grouped_columns(model: keras.Model) -> dict[str, list[str]]:
    """{grouped model input: the per-column input names it stacks, in order}, read from the tabular
    encoder's own layers (so a saved model says it itself); empty for models saved before inputs
    were grouped and for imported models, which read one input per column."""
    found = _GROUPS.get(model)
    if found is None:
        found = {}
        for layer in all_layers(model):
            if isinstance(layer, ImputeColumns):
                found[TABULAR_NUMERIC] = layer.columns
            elif isinstance(layer, CategoricalOneHot):
                found[TABULAR_CATEGORICAL] = layer.columns
        _GROUPS[model] = found
    return found


_GROUPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # model -> grouped_columns(model)


def all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer inside `model`, depth first: nested models, wrappers (TimeDistributed) and what
    they wrap, and their layers."""
    out = []
    for layer in model.layers:
        out.append(layer)
        inner = getattr(layer, "layer", None)   # a wrapper's layer
        if inner is not None:
            out.append(inner)
        for nested in (layer, inner):
            if hasattr(nested, "layers"):
                out += all_layers(nested)
    return out


def raw_input_names(model: keras.Model) -> list[str]:
    """The raw inputs (`data.inputs.model_inputs` keys: 'images' and one per column) the model reads."""
    groups = grouped_columns(model)
    return [n for t in model.inputs for n in groups.get(t.name, [t.name])]


def select_inputs(model: keras.Model, inputs: dict, skip: tuple[str, ...] = ()) -> dict:
    """What this model (or encoder) takes, from raw inputs (one array per column): its own entries,
    with the tabular columns stacked into the grouped inputs it reads. Entries already grouped pass
    through; the model inputs named in `skip` are left out (streamed images, fed per batch)."""
    groups = grouped_columns(model)
    return {t.name: inputs[t.name] if t.name in inputs or t.name not in groups
            else stack_columns(inputs, groups[t.name]) for t in model.inputs if t.name not in skip}


def encode(model: keras.Model, inputs: dict) -> dict:
    """Embeddings of every branch for these raw inputs: the head's input dict."""
    return {branch: encoder(select_inputs(encoder, inputs), training=False)
            for branch, encoder in encoders_of(model).items()}


def mark_missing(embeddings: dict, missing: dict[str, np.ndarray]) -> dict:
    """Head inputs with the rows flagged in `missing` ({branch: bool (N,)}) set to NaN, which a
    model trained with modality dropout reads as "this branch is missing" (its learned embedding)."""
    out = {}
    for branch, x in embeddings.items():
        x = np.array(x, dtype="float32")
        if branch in missing:
            x[np.asarray(missing[branch], dtype=bool)] = np.nan
        out[branch] = x
    return out


def has_modality_dropout(model: keras.Model) -> bool:
    return any(isinstance(layer, ModalityDropout) for layer in head_of(model).layers)


def predict_with_missing(model: keras.Model, inputs: dict, missing: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Outputs with some branches declared missing per row (needs a modality-dropout model for
    meaningful answers). A missing branch's raw inputs may hold any values: they are ignored."""
    if missing and not has_modality_dropout(model):
        raise DataError("this model was trained without modality dropout, so it cannot predict with a missing "
                        "branch; retrain with modality dropout or supply every input")
    emb = mark_missing(encode(model, inputs), missing or {})
    return np.asarray(head_of(model)(emb, training=False))
