"""Run-level explanations: one row as the CLI and the What-if page show it, and global importance.

Uses the run's fixed background set of training rows as the baseline (attributions.py says how);
the probability is shown beside the explained logit. See docs/ARCHITECTURE.md, "Explanations".
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from multimodal.data.inputs import input_name
from multimodal.explain.attributions import (
    as_embeddings,
    branch_contributions,
    branch_names,
    compiled,
    default_output_index,
    feature_attributions,
    grad_cam,
)
from multimodal.models.assembly import encoders_of, raw_input_names, select_inputs
from multimodal.models.branches import tabular_layout
from multimodal.models.fusion import IMAGE_BRANCHES


def background_embeddings(run) -> dict[str, tf.Tensor]:
    """The run's background rows, encoded once and cached with the model."""
    cache = compiled(run.model)["background"]
    key = str(run.dir)
    if key not in cache:
        cache[key] = as_embeddings(run.model, run.background())
    return cache[key]


def _describe_output(run, index: int, k: int) -> tuple[str, str]:
    """(target, baseline text) for the explained output."""
    if run.task == "regression":
        target, unit = run.config.get("target", "target"), "prediction in target units"
    else:
        target = run.classes[1] if len(run.classes) == 2 else run.classes[index]
        unit = f"logit of class {target}"
    return str(target), f"mean over {k} training rows (background); output = {unit}"


def _probability(run, logits: np.ndarray, index: int) -> float | None:
    """Sigmoid of the binary logit / softmax at the explained class; None for regression."""
    if run.task == "regression":
        return None
    e = np.exp(logits - logits.max())
    return float(1 / (1 + np.exp(-logits[0]))) if logits.shape[-1] == 1 else float(e[index] / e.sum())


def explain_row(run, inputs: dict, output_index: int | None = None, steps: int = 32) -> dict:
    """Full explanation of ONE row of raw inputs (leading dim 1): branches, features, Grad-CAM."""
    model, branches = run.model, branch_names(run.model)
    emb = as_embeddings(model, inputs)
    bg = background_embeddings(run)
    logits = compiled(model)["head"](emb).numpy()
    index = int(default_output_index(logits)[0] if output_index is None else output_index)
    contrib = branch_contributions(model, emb, bg, index)
    target, baseline = _describe_output(run, index, int(next(iter(bg.values())).shape[0]))
    expl = {"output": float(contrib["output"][0]), "probability": _probability(run, logits[0], index),
            "base_value": float(contrib["base_value"][0]),
            "branches": {b: float(v[0]) for b, v in contrib["values"].items()},
            "interactions": {p: float(v[0]) for p, v in contrib["interactions"].items()},
            "features": {}, "feature_residual": None, "baseline": baseline, "target": target, "grad_cam": None}
    if "tabular" in branches:
        layout = tabular_layout(run.spec, run.config["tabular_stats"])
        feats = feature_attributions(model, emb, bg, layout, index, steps,
                                     tabular_value=contrib["values"]["tabular"])
        expl["features"] = {c: float(v[0]) for c, v in feats["features"].items()}
        expl["feature_residual"] = float(feats["residual"][0])
    if any(b in IMAGE_BRANCHES for b in branches):
        expl["grad_cam"] = grad_cam(model, emb, index)
    return expl


def to_json(expl: dict) -> dict:
    """The explanation without arrays (Grad-CAM), ready for json.dumps."""
    return {k: v for k, v in expl.items() if k != "grad_cam"}


# Global views -------------------------------------------------------------------------------

def global_branch_importance(run, inputs: dict, output_index=None) -> dict[str, float]:
    """Mean |branch Shapley value| over the rows (default output: each row's predicted class)."""
    model = run.model
    emb = as_embeddings(model, inputs)
    index = default_output_index(compiled(model)["head"](emb).numpy()) if output_index is None else output_index
    values = branch_contributions(model, emb, background_embeddings(run), index)["values"]
    return {b: float(np.abs(v).mean()) for b, v in values.items()}


def default_metric(task: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """Higher is better: accuracy from logits (classification), R^2 (regression)."""
    def accuracy(y, out):
        pred = out.argmax(axis=1) if out.shape[1] > 1 else (out[:, 0] > 0).astype(int)
        return float((pred == np.asarray(y).reshape(-1)).mean())

    def r2(y, out):
        y = np.asarray(y, dtype=float).reshape(-1)
        return float(1 - ((y - out[:, 0]) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12))
    return accuracy if task == "classification" else r2


def permutation_importance(run, inputs: dict, y: np.ndarray, metric: Callable | None = None,
                           repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Metric drop (intact - shuffled, mean over repeats) per tabular column and per image column.

    Only the encoders that read the shuffled input are re-run (the image and the rows encoder both
    read the images): the other embeddings are cached.
    """
    model, spec = run.model, run.spec
    metric = metric or default_metric(run.task)
    fns, encoders = compiled(model), encoders_of(model)
    # Raw inputs, one array per column: each column is shuffled on its own, then regrouped.
    inputs = {k: inputs[k] for k in raw_input_names(model)}
    emb = fns["encode"](select_inputs(model, inputs))
    base = metric(y, fns["head"](emb).numpy())
    targets = [(c, input_name(c), None) for c in spec.tabular_cols]
    targets += [(c, "images", t) for t, c in enumerate(spec.image_cols)]
    rng = np.random.default_rng(seed)
    drops = {}
    for column, key, frame in targets:
        readers = [b for b, e in encoders.items() if key in raw_input_names(e)]
        if not readers:
            continue  # a baseline model that does not read this input
        scores = []
        for _ in range(repeats):
            shuffled = _shuffled(inputs, key, frame, rng.permutation(len(inputs[key])))
            new = {b: encoders[b](select_inputs(encoders[b], shuffled), training=False) for b in readers}
            scores.append(metric(y, fns["head"]({**emb, **new}).numpy()))
        drops[column] = float(base - np.mean(scores))
    return drops


def _shuffled(inputs: dict, key: str, frame: int | None, perm: np.ndarray) -> dict:
    """Copy of inputs with one column (or one image frame) permuted across rows."""
    values = inputs[key].copy()
    if frame is None:
        values = values[perm]
    else:
        values[:, frame] = inputs[key][perm, frame]
    return {**inputs, key: values}
