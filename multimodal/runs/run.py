"""Run folders: save and load a trained model with everything needed to use and explain it.

A run folder holds config.json (the TrainConfig plus the resolved columns, classes and
statistics), history.csv, metrics.json, summary.json, model.keras, background.npz (the fixed
explanation background rows, raw inputs) and events.jsonl (the live training log).
New folders and the configs that go into them are folders.py; an uploaded model becomes a run
folder in importing.py.
"""
from __future__ import annotations

import json
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from multimodal.core.errors import DataError
from multimodal.data.inputs import FeatureSpec, input_name, model_inputs

MODEL_FILE = "model.keras"
BACKGROUND_ROWS = 64          # explanation background sample per run (see background_rows)


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
        # lazy: listing and reading run folders must not import TensorFlow (the model loads it anyway)
        from multimodal.models.assembly import raw_input_names
        names = set(raw_input_names(self.model))
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
    # lazy: listing and reading run folders (Home, Compare) must not import TensorFlow
    import keras

    import multimodal.models.augment  # noqa: F401  (registers the custom layers)
    import multimodal.models.layers  # noqa: F401
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


def background_rows(train_rows: np.ndarray, seed: int) -> np.ndarray:
    """The fixed, seeded sample of training rows explanations use as their baseline."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(train_rows, size=min(BACKGROUND_ROWS, len(train_rows)), replace=False))


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
    import tensorflow as tf  # lazy: listing and reading run folders must not import TensorFlow
    model = run.model
    specs = {t.name: tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=t.name) for t in model.inputs}
    cache = predict.__dict__.setdefault("compiled", weakref.WeakKeyDictionary())  # model -> tf.function
    compiled = cache.get(model)
    if compiled is None:
        model_ref = weakref.ref(model)
        compiled = tf.function(lambda batch: model_ref()(batch, training=False), input_signature=[specs])
        cache[model] = compiled
    batch = {name: tf.constant(values, dtype=specs[name].dtype) for name, values in model_feed(model, inputs).items()}
    return np.asarray(compiled(batch))


def model_feed(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays a saved model's own inputs take, from raw inputs (one array per column): grouped
    (`select_inputs`), with the rank and dtype of each input (strings as str). An exported model
    takes the same arrays (runs/export.py)."""
    from multimodal.models.assembly import select_inputs  # lazy: listing and reading run folders stay Keras-free
    fed, out = select_inputs(model, inputs), {}
    for t in model.inputs:
        values = np.asarray(fed[t.name])
        if values.ndim == len(t.shape) - 1:
            values = values[..., None]   # categorical columns arrive as (N,), the model reads (N, 1)
        out[t.name] = values.astype(str) if "string" in str(t.dtype) else values.astype(t.dtype)
    return out


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

