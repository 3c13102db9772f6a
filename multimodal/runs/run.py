"""Run folders: save and load a trained model with everything needed to use and explain it.

A run folder holds config.json (the TrainConfig plus the resolved columns, classes and
statistics), history.csv, metrics.json, summary.json, model.keras, background.npz (the fixed
explanation background rows, raw inputs) and events.jsonl (the live training log).
"""
from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from multimodal.core import limits
from multimodal.core.errors import DataError
from multimodal.data.dataset import FeatureSpec, input_name, model_inputs

MODEL_FILE = "model.keras"
BACKGROUND_ROWS = 64          # explanation background sample per run (training.py uses the same)
# An uploaded model bigger than this is refused before it is read (the shipped ones are < 2 MB).
MAX_MODEL_BYTES = limits.MAX_MODEL_MB.get() * 2**20
KERAS_MEMBERS = ("config.json", "model.weights.h5")   # what every Keras 3 .keras archive holds


@dataclass
class Run:
    """A saved run. The Keras model loads on first use (safe mode), so listing runs is cheap."""
    dir: Path
    config: dict
    metrics: dict
    summary: dict
    history: pd.DataFrame
    _model: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def arch(self) -> str:
        return self.config["model"]["arch"]

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def classes(self) -> list[str]:
        return self.config["classes"]

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(**self.config["features"])

    @property
    def input_spec(self) -> FeatureSpec:
        """The columns the model actually reads (image_only / tabular_only ignore the rest)."""
        names = {t.name for t in self.model.inputs}
        spec = self.spec
        return FeatureSpec(spec.image_cols if "images" in names else [],
                           [c for c in spec.numeric_cols if input_name(c) in names],
                           [c for c in spec.categorical_cols if input_name(c) in names])

    @property
    def image_size(self) -> int:
        return self.config["model"]["image_size"]

    @property
    def model(self):
        if self._model is None:
            self._model = load_model_file(self.dir / MODEL_FILE)
        return self._model

    def background(self) -> dict[str, np.ndarray]:
        with np.load(self.dir / "background.npz", allow_pickle=False) as f:
            # Strings are stored as fixed-width unicode; Keras wants object arrays of str.
            return {k: f[k].astype(object) if f[k].dtype.kind == "U" else f[k] for k in f.files}


def save_run(run_dir: Path, *, config: dict, dataset, splits: dict, stats: dict, target_stats: dict | None,
             model, history: dict, metrics: dict, summary: dict, background: dict,
             background_rows: np.ndarray) -> None:
    run_dir = Path(run_dir)
    full_config = {**config, "task": dataset.task, "target": dataset.target, "classes": dataset.classes,
                   "features": asdict(dataset.features), "roles": dataset.roles, "dataset_name": dataset.name,
                   "tabular_stats": stats, "target_stats": target_stats,
                   "splits": {k: [int(i) for i in v] for k, v in splits.items()},
                   "background_rows": [int(i) for i in background_rows]}
    (run_dir / "config.json").write_text(json.dumps(full_config, indent=2))
    pd.DataFrame(history).rename_axis("epoch").rename(lambda i: i + 1).to_csv(run_dir / "history.csv")
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    # The folder is the run's identity; an absolute path inside it would go stale when it moves.
    kept = {k: v for k, v in summary.items() if k not in ("history", "run_dir")}
    (run_dir / "summary.json").write_text(json.dumps(kept, indent=2))
    model.save(run_dir / MODEL_FILE)
    np.savez_compressed(run_dir / "background.npz",
             **{k: v.astype(str) if v.dtype == object else v for k, v in background.items()})


def load_model_file(path: Path):
    """Load a .keras file with safe mode on: Lambda layers and arbitrary code are refused."""
    import keras

    import multimodal.models.layers  # noqa: F401  (registers the custom layers)
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types here; the user needs one clear message.
        text = str(exc)
        reason = (text.splitlines() or [type(exc).__name__])[0][:200]
        if "lambda" in text.lower():
            reason = "it contains a Lambda layer (arbitrary Python code), which is refused for safety"
        elif "safe_mode" in text or "could not locate" in text.lower():
            reason = f"it uses custom code Multimodal Studio does not know, which is refused for safety ({reason})"
        raise DataError(f"model file '{Path(path).name}' could not be loaded: {reason}. "
                        "Upload a .keras model saved by Multimodal Studio.") from None


# ---------------------------------------------------------------- importing an uploaded model

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
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise DataError(f"model file '{name}' is {size / 2**20:.0f} MB (limit {MAX_MODEL_BYTES // 2**20} MB); "
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
            if unpacked > MAX_MODEL_BYTES:
                raise DataError(f"model file '{name}' unpacks to {unpacked / 2**20:.0f} MB (limit "
                                f"{MAX_MODEL_BYTES // 2**20} MB); upload a smaller model")
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


def _imported_dataset(model, dataset, name: str):
    """The dataset with its roles narrowed to the columns the model reads (numeric or categorical as
    the model's input types say), after checking that the dataset can feed the model."""
    from multimodal.models.assembly import output_units

    inputs = {t.name: t for t in model.inputs}
    by_input = {input_name(c): c for c in dataset.frame.columns if c != dataset.target}
    absent = [n.removeprefix("col_") for n in inputs if n != "images" and n not in by_input]
    if absent:
        raise DataError(f"model file '{name}' reads column(s) {', '.join(map(repr, absent))}, which dataset "
                        f"'{dataset.name}' does not have; load the dataset the model was trained on")
    roles = {c: ("ignore" if r in ("image", "numeric", "categorical") else r) for c, r in dataset.roles.items()}
    for n, tensor in inputs.items():
        if n != "images":
            roles[by_input[n]] = "categorical" if "string" in str(tensor.dtype) else "numeric"
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


def _target_scale(model):
    """The regression head's TargetScale layer (it holds the target's mean, std and log), if any."""
    from multimodal.models.layers import TargetScale
    for layer in model.layers:
        if isinstance(layer, TargetScale):
            return layer
        found = _target_scale(layer) if hasattr(layer, "layers") else None
        if found is not None:
            return found
    return None


def background_rows(train_rows: np.ndarray, seed: int) -> np.ndarray:
    """The fixed, seeded sample of training rows explanations use as their baseline."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(train_rows, size=min(BACKGROUND_ROWS, len(train_rows)), replace=False))


def evaluate_splits(model, inputs: dict, y: np.ndarray, splits: dict, batch_size: int) -> dict[str, float]:
    """Keras' compiled metrics on the val and test rows, as {"val_loss": ..., "test_accuracy": ...}."""
    from multimodal.train.training import make_dataset, take
    metrics = {}
    for split in ("val", "test"):
        idx = splits[split]
        if len(idx):
            values = model.evaluate(make_dataset(take(inputs, idx), y[idx], batch_size), verbose=0, return_dict=True)
            metrics.update({f"{split}_{k}": float(v) for k, v in values.items()})
    return metrics


def import_model(path: Path, dataset, run_root: Path, name: str | None = None) -> Run:
    """Turn an uploaded .keras file into a run folder under run_root, usable like a trained run.

    The file is checked (size, archive, Lambda layers), loaded in safe mode, matched against the
    dataset (columns, image frames and size, outputs), evaluated on the dataset's default seeded
    validation split (the one training uses, so a model trained here on this data is measured on
    rows it never saw) and saved with config.json (`"imported": true`), metrics and a background
    sample. `name` is the uploaded file's own name, for messages and the record."""
    from multimodal.core.config import TrainConfig
    from multimodal.data.dataset import encode_target, split_indices
    from multimodal.models.assembly import select_inputs
    from multimodal.models.branches import tabular_stats
    from multimodal.models.fusion import FUSION_METHODS
    from multimodal.train.jobs import config_dict, new_run_dir
    from multimodal.train.training import compile_model, take

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
    inputs = select_inputs(model, model_inputs(ds.frame, ds.root, ds.features, image_size))
    y = encode_target(ds.frame[ds.target], ds.task, ds.classes)
    t_stats = None
    if ds.task == "regression":
        y = y.reshape(-1, 1)
        scale = _target_scale(model)     # the loss is computed on the head's own standardized target
        t_stats = {"mean": float(scale.mean), "std": float(scale.std), "log": bool(scale.log)}
    compile_model(model, ds.task, len(ds.classes), defaults.lr, None, t_stats)
    metrics = evaluate_splits(model, inputs, y, splits, defaults.batch_size)
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


def is_run_dir(path: Path) -> bool:
    return (Path(path) / "config.json").exists() and (Path(path) / MODEL_FILE).exists()


def load_run(run_dir: Path) -> Run:
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise DataError(f"'{run_dir}' is not a run folder (config.json and {MODEL_FILE} expected); "
                        "pass the folder printed by `train`.")
    def read(name: str) -> dict:
        return json.loads((run_dir / name).read_text()) if (run_dir / name).exists() else {}

    history = pd.read_csv(run_dir / "history.csv") if (run_dir / "history.csv").exists() else pd.DataFrame()
    return Run(run_dir, read("config.json"), read("metrics.json"), read("summary.json"), history)


def list_runs(root: Path) -> list[Run]:
    """Run folders directly under root, oldest first."""
    root = Path(root)
    if not root.exists():
        return []
    return [load_run(p) for p in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime) if is_run_dir(p)]


def run_inputs(run: Run, frame: pd.DataFrame, root: Path | None = None,
               images: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Raw model inputs for rows of a frame: only the columns the model reads are required and
    decoded (a tabular_only model never opens an image); images from paths or given."""
    spec = run.input_spec
    missing = [c for c in spec.tabular_cols + ([] if images is not None else spec.image_cols) if c not in frame]
    if missing:
        raise DataError(f"missing column(s) {missing}; this model reads {spec.image_cols + spec.tabular_cols}.")
    if not spec.image_cols:
        images = None
    return model_inputs(frame, Path(root or "."), spec, run.image_size, images=images)


def predict(run: Run, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Raw model outputs (logits for classification, target units for regression), shape (N, units).

    Calls the model through a `tf.function` traced once per model for any number of rows: an
    eager call of the nested functional model costs tens of ms of Python per call, too slow for
    What-if, and `model.predict` adds a tf.data pipeline per call. The function holds the model
    weakly, so dropping a Run frees its model."""
    import weakref

    import tensorflow as tf
    model = run.model
    specs = {t.name: tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=t.name) for t in model.inputs}
    cache = predict.__dict__.setdefault("compiled", weakref.WeakKeyDictionary())  # model -> tf.function
    compiled = cache.get(model)
    if compiled is None:
        model_ref = weakref.ref(model)
        compiled = tf.function(lambda batch: model_ref()(batch, training=False), input_signature=[specs])
        cache[model] = compiled
    batch = {}
    for name, spec in specs.items():
        values = np.asarray(inputs[name])
        if values.ndim == len(spec.shape) - 1:
            values = values[..., None]   # categorical columns arrive as (N,), the model reads (N, 1)
        batch[name] = tf.constant(values.astype(str) if spec.dtype == tf.string else values, dtype=spec.dtype)
    return np.asarray(compiled(batch))


def probabilities(outputs: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, n_classes) class probabilities from logits."""
    if n_classes == 2:
        p = 1.0 / (1.0 + np.exp(-outputs[:, 0]))
        return np.stack([1 - p, p], axis=1)
    e = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def describe_predictions(run: Run, outputs: np.ndarray) -> list[dict]:
    """One dict per row: prediction (class label or value) and class probabilities."""
    if run.task == "regression":
        return [{"row": i, "prediction": float(v)} for i, v in enumerate(outputs[:, 0])]
    probs = probabilities(outputs, len(run.classes))
    return [{"row": i, "prediction": run.classes[int(p.argmax())],
             "probabilities": {c: float(v) for c, v in zip(run.classes, p)}} for i, p in enumerate(probs)]

