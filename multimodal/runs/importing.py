"""Importing an uploaded .keras model: check the archive, load it safely, match it to a dataset,
measure it and save it as a run folder usable like a trained run.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import keras

from multimodal.core import limits
from multimodal.core.config import TrainConfig, small_data_settings
from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset
from multimodal.data.inputs import TABULAR_CATEGORICAL, encode_target, input_name, model_inputs
from multimodal.data.splits import split_indices
from multimodal.models.assembly import grouped_columns, output_units, raw_input_names, select_inputs
from multimodal.models.batches import make_dataset, take
from multimodal.models.branches import tabular_stats
from multimodal.models.compile import compile_model
from multimodal.models.fusion import FUSION_METHODS
from multimodal.models.layers import TargetScale
from multimodal.runs.evaluation import evaluate_splits
from multimodal.runs.folders import config_dict, new_run_dir
from multimodal.runs.run import Run, background_rows, load_model_file, load_run, save_run

KERAS_MEMBERS = ("config.json", "model.weights.h5")   # what every Keras 3 .keras archive holds


def max_model_bytes() -> int:
    """An uploaded model bigger than this is refused before it is read (the shipped ones are < 2 MB)."""
    return limits.MAX_MODEL_MB.get() * 2**20


def _layers_of_class(config, class_name: str) -> list[str]:
    """Names of the layers of one class anywhere in a saved model's (nested) config."""
    found = []
    if isinstance(config, dict):
        if config.get("class_name") == class_name:
            found.append(str((config.get("config") or {}).get("name", "?")))
        for value in config.values():
            found += _layers_of_class(value, class_name)
    elif isinstance(config, list):
        for value in config:
            found += _layers_of_class(value, class_name)
    return found


def check_model_archive(path: Path, name: str | None = None) -> None:
    """Refuse what is not a whole .keras archive, or holds a Lambda layer, before Keras parses it.

    `name` is the file name the user knows (an upload is stored under a hashed name)."""
    path, name = Path(path), name or Path(path).name
    upload = "Upload the model.keras downloaded from the Train page"
    size, max_bytes = path.stat().st_size, max_model_bytes()
    if size > max_bytes:
        raise DataError(f"model file '{name}' is {size / 2**20:.0f} MB (limit {max_bytes // 2**20} MB); "
                        "upload a smaller model")
    with open(path, "rb") as f:
        head = f.read(8)
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK\x03\x04"):   # starts like a zip but has no directory at its end
            raise DataError(f"model file '{name}' is truncated or damaged (its zip directory is missing); "
                            "download it again and re-upload the whole file")
        kind = ("a PNG image" if head.startswith(b"\x89PNG") else "a JPEG image" if head.startswith(b"\xff\xd8")
                else "an HDF5 (.h5) file" if head.startswith(b"\x89HDF") else "not a zip archive")
        raise DataError(f"model file '{name}' is not a Keras .keras model (it is {kind}). {upload}.")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {i.filename: i for i in archive.infolist()}
            missing = [m for m in KERAS_MEMBERS if m not in members]
            if missing:
                raise DataError(f"model file '{name}' is a zip archive but not a Keras model (no "
                                f"{' or '.join(missing)} inside). {upload}.")
            unpacked = sum(i.file_size for i in members.values())
            if unpacked > max_bytes:
                raise DataError(f"model file '{name}' unpacks to {unpacked / 2**20:.0f} MB (limit "
                                f"{max_bytes // 2**20} MB); upload a smaller model")
            damaged = archive.testzip()     # CRC of every member: catches bytes cut or changed inside
            if damaged:
                raise DataError(f"model file '{name}' is damaged ('{damaged}' fails its checksum); download it "
                                "again and re-upload")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"model file '{name}' is truncated or damaged ({str(exc)[:120]}); download it again "
                        "and re-upload the whole file") from None
    lambdas = _layers_of_class(config, "Lambda")
    if lambdas:
        raise DataError(f"model file '{name}' contains a Lambda layer ('{lambdas[0]}'), which can run arbitrary "
                        "code and is refused for safety; rebuild the model without Lambda layers")


def _imported_dataset(model: keras.Model, dataset: Dataset, name: str) -> Dataset:
    """The dataset with its roles narrowed to the columns the model reads (numeric or categorical as
    the model's input types say), after checking that the dataset can feed the model."""
    inputs = {t.name: t for t in model.inputs}
    groups = grouped_columns(model)   # a model made here reads its columns stacked, by kind
    kinds = {}
    for n, tensor in inputs.items():
        if n in groups:
            kinds.update({c: "categorical" if n == TABULAR_CATEGORICAL else "numeric" for c in groups[n]})
        elif n != "images":
            kinds[n] = "categorical" if "string" in str(tensor.dtype) else "numeric"
    by_input = {input_name(c): c for c in dataset.frame.columns if c != dataset.target}
    absent = [n.removeprefix("col_") for n in kinds if n not in by_input]
    if absent:
        raise DataError(f"model file '{name}' reads column(s) {', '.join(map(repr, absent))}, which dataset "
                        f"'{dataset.name}' does not have; load the dataset the model was trained on")
    roles = {c: ("ignore" if r in ("image", "numeric", "categorical") else r) for c, r in dataset.roles.items()}
    for n, kind in kinds.items():
        roles[by_input[n]] = kind
    image_cols = dataset.features.image_cols
    if "images" in inputs:
        shape = tuple(inputs["images"].shape[1:])
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or not shape[1]:
            raise DataError(f"model file '{name}' expects images of shape {shape}; Multimodal Studio feeds "
                            "(frames, size, size, 3) RGB images")
        if shape[0] != len(image_cols):
            raise DataError(f"model file '{name}' reads {shape[0]} image(s) per row, but dataset '{dataset.name}' "
                            f"has {len(image_cols)} image column(s) ({', '.join(image_cols) or 'none'}); load "
                            "the dataset the model was trained on")
        roles.update({c: "image" for c in image_cols})
    units, expected = int(model.outputs[0].shape[-1]), output_units(dataset.task, dataset.classes)
    regression_head = _target_scale(model) is not None
    what = (f"a regression of '{dataset.target}'" if dataset.task == "regression"
            else f"a classification of '{dataset.target}' into {len(dataset.classes)} classes")
    if units != expected or regression_head != (dataset.task == "regression"):
        made_for = "a regression" if regression_head else f"a classification into {max(units, 2)} classes"
        raise DataError(f"model file '{name}' was made for {made_for}, but dataset '{dataset.name}' is {what} "
                        f"({expected} output(s)); load the dataset the model was trained on")
    return replace(dataset, roles=roles)


def _target_scale(model: keras.Model) -> TargetScale | None:
    """The regression head's TargetScale layer (it holds the target's mean, std and log), if any."""
    for layer in model.layers:
        if isinstance(layer, TargetScale):
            return layer
        found = _target_scale(layer) if hasattr(layer, "layers") else None
        if found is not None:
            return found
    return None


def import_model(path: Path, dataset: Dataset, run_root: Path, name: str | None = None) -> Run:
    """Turn an uploaded .keras file into a run folder under run_root, usable like a trained run.

    The file is checked (size, archive, Lambda layers), loaded in safe mode, matched against the
    dataset (columns, image frames and size, outputs), evaluated on the dataset's default seeded
    validation split (the one training uses, so a model trained here on this data is measured on
    rows it never saw) and saved with config.json (`"imported": true`), metrics and a background
    sample. `name` is the uploaded file's own name, for messages and the record."""
    name = name or Path(path).name
    check_model_archive(path, name)
    model = load_model_file(path)
    ds = _imported_dataset(model, dataset, name)
    defaults = TrainConfig(data="")
    images = next((t for t in model.inputs if t.name == "images"), None)
    image_size = int(images.shape[2]) if images is not None else defaults.model.image_size
    arch = model.name if model.name in FUSION_METHODS else "imported"
    config = {**config_dict(ds, {"arch": arch, "image_size": image_size}, {}), "imported": True,
              "source_file": name}
    splits = split_indices(ds, defaults.val_fraction, defaults.seed)
    inputs = {k: v for k, v in model_inputs(ds.frame, ds.root, ds.features, image_size).items()
              if k in raw_input_names(model)}     # raw, one array per column (background, stats)
    feed = select_inputs(model, inputs)
    y = encode_target(ds.frame[ds.target], ds.task, ds.classes)
    t_stats = None
    if ds.task == "regression":
        y = y.reshape(-1, 1)
        scale = _target_scale(model)     # the loss is computed on the head's own standardized target
        t_stats = {"mean": float(scale.mean), "std": float(scale.std), "log": bool(scale.log)}
    # Keras counts the L2 penalty in the loss only for trainable weights: evaluated trainable, the
    # loss is the one the trainer reported (its models are saved frozen); frozen again before saving.
    model.trainable = True
    compile_model(model, ds.task, len(ds.classes), defaults.lr, None, t_stats)
    batch = small_data_settings(len(splits["train"]))[0]["batch_size"]   # as training would batch this data
    metrics = evaluate_splits(model, splits, lambda rows: make_dataset(take(feed, rows), y[rows], batch))
    model.trainable = False
    rows = background_rows(splits["train"], defaults.seed)
    run_dir = new_run_dir(run_root, f"imported_{arch}")
    summary = {"arch": arch, "task": ds.task, "status": "imported", "epochs_run": 0, "source_file": name,
               "metrics": metrics}
    try:
        save_run(run_dir, config=config, dataset=ds, splits=splits,
                 stats=tabular_stats(take(inputs, splits["train"]), ds.features), target_stats=t_stats,
                 model=model, history={}, metrics=metrics, summary=summary, background=take(inputs, rows),
                 background_rows=rows)
    except Exception:
        shutil.rmtree(run_dir, ignore_errors=True)   # no half-written run in the list
        raise
    return load_run(run_dir)
