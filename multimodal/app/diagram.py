"""Model page helpers: the fusion diagram (Graphviz DOT), the URL codec of the setup, parameter count.

`fusion_dot`, `setup_from_query` and `setup_to_query` are Streamlit-free and TensorFlow-free
(a registry entry is read by duck typing: name, title, branches, diagram), so they are cheap
to test. `param_count` imports Keras lazily: only the Model page calls it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from multimodal.data.dataset import Dataset, FeatureSpec

# ---------------------------------------------------------------- diagram

MERGE_LABELS = {
    "image_only": "dense head",
    "tabular_only": "dense head",
    "early_concat": "concatenate\n[CNN map | features]",
    "late_concat": "concatenate\nembeddings",
    "multiply": "elementwise ×\n(projected embeddings)",
    "gated": "sigmoid gate\nmixes the branches",
    "attention": "attention over\nbranch tokens",
    "film": "FiLM: tabular -> γ, β\nmap·(1+γ)+β",
    "late_decision": "weighted average\nof branch predictions",
    "cnn_lstm": "concatenate\n[LSTM summary | MLP]",
    "cnn_rnn_rows": "(pool × row-LSTM)\nconcat MLP",
}
BRANCH_LABELS = {
    "image": "CNN\n({encoder})",
    "sequence": "shared CNN per frame\n({encoder}) -> LSTM",
    "tabular": "MLP\n(normalize, one-hot)",
}
COLORS = {"image": ("#dbeafe", "#2563eb"), "sequence": ("#dbeafe", "#2563eb"),
          "tabular": ("#dcfce7", "#16a34a"), "merge": ("#fde68a", "#d97706"), "out": ("#f3e8ff", "#9333ea")}


def _q(text: str) -> str:
    """A DOT double-quoted string; newlines become centred line breaks."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _columns_label(cols: Sequence[str], limit: int = 6) -> str:
    shown = list(cols[:limit])
    if len(cols) > limit:
        shown.append(f"... and {len(cols) - limit} more")
    return "\n".join(shown)


def fusion_dot(method: Any, spec: FeatureSpec, *, encoder: str = "small_cnn", target: str = "target",
               task: str = "classification", classes: Sequence[str] = ()) -> str:
    """Graphviz DOT: input columns -> branch encoders -> merge node (named by the method) -> output."""
    lines = ["digraph fusion {", 'rankdir=LR; bgcolor="transparent"; nodesep=0.25; ranksep=0.45;',
             'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             'edge [color="#64748b", arrowsize=0.7];']

    def node(name: str, label: str, kind: str, shape: str = "box") -> None:
        fill, line = COLORS[kind]
        lines.append(f'{name} [label={_q(label)}, shape={shape}, fillcolor="{fill}", color="{line}"];')

    merge_label = f"{method.title}\n{MERGE_LABELS.get(method.name, '')}".strip()
    node("merge", merge_label, "merge", "ellipse")
    for branch in method.branches:
        cols = spec.image_cols if branch in ("image", "sequence") else spec.tabular_cols
        kind = "tabular" if branch == "tabular" else "image"
        if branch in ("image", "sequence") and len(cols) > 1:
            heading = "ordered frames" if branch == "sequence" else "images (averaged)"
        else:
            heading = "image column" if kind == "image" else "table columns"
        node(f"in_{branch}", f"{heading}\n{_columns_label(cols) or '(none)'}", kind, "note")
        node(f"enc_{branch}", BRANCH_LABELS[branch].format(encoder=encoder), kind)
        lines.append(f"in_{branch} -> enc_{branch};")
        lines.append(f"enc_{branch} -> merge;")
    if task == "classification":
        out = f"{target}\n{len(classes)} classes" + (f": {', '.join(classes[:4])}" if classes else "")
        out += "..." if len(classes) > 4 else ""
    else:
        out = f"{target}\n(regression)"
    node("out", out, "out")
    lines.append("merge -> out;")
    lines.append("}")
    return "\n".join(lines)


# ---------------------------------------------------------------- URL query parameters

IMAGE_SIZES = (32, 48, 64, 96)
WIDTHS = (16, 32, 64, 128, 256)
L2S = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
BATCH_SIZES = (8, 16, 32, 64, 128)
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
# name -> (kind, allowed): a set of choices (tuple), a closed range (list [low, high]) or None
QUERY_FIELDS: dict[str, tuple[str, Any]] = {
    "arch": ("str", None), "encoder": ("str", None),
    "image_size": ("int", IMAGE_SIZES), "width": ("int", WIDTHS), "dropout": ("float", [0.0, 0.7]),
    "l2": ("float", L2S), "augment": ("bool", None), "seed": ("int", [0, 1_000_000]),
    "epochs": ("int", [1, 500]), "batch_size": ("int", BATCH_SIZES), "lr": ("float", LRS),
    "val_fraction": ("float", [0.05, 0.5]), "patience": ("int", [0, 50]),
    "modality_dropout": ("float", [0.0, 0.5]), "loss": ("str", None), "target_transform": ("str", None),
}
TRAIN_FIELDS = ("epochs", "batch_size", "lr", "val_fraction", "patience", "seed", "loss", "target_transform")
REGRESSION_LOSSES = ("mse", "mae", "huber", "mape")


def _parse(name: str, raw: Any, choices: Mapping[str, Sequence[str]]) -> Any:
    """The typed value, or ValueError with a short reason."""
    kind, allowed = QUERY_FIELDS[name]
    text = str(raw[-1] if isinstance(raw, (list, tuple)) and raw else raw).strip()
    if kind == "str":
        if text not in choices.get(name, ()):
            raise ValueError(f"'{text}' is not available here")
        return text
    if kind == "bool":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"'{text}' is not true/false")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"'{text}' is not a finite number")
    if kind == "int":
        if value != int(value):
            raise ValueError(f"'{text}' is not a whole number")
        value = int(value)
    if isinstance(allowed, list):
        if not allowed[0] <= value <= allowed[1]:
            raise ValueError(f"{text} is outside {allowed[0]}..{allowed[1]}")
        return value
    match = [a for a in allowed if math.isclose(a, value, rel_tol=1e-6, abs_tol=1e-12)]
    if not match:
        raise ValueError(f"{text} is not one of {', '.join(_fmt(a) for a in allowed)}")
    return match[0]


def setup_from_query(query: Mapping[str, Any], choices: Mapping[str, Sequence[str]]) -> tuple[dict, list[str]]:
    """Valid setup values found in the query, and one warning per ignored value.

    choices: allowed strings for 'arch' (methods for this dataset) and 'encoder'.
    """
    values, warnings = {}, []
    for name, raw in query.items():
        if name not in QUERY_FIELDS:
            continue  # other pages' parameters are not ours to judge
        try:
            values[name] = _parse(name, raw, choices)
        except (ValueError, TypeError) as e:
            warnings.append(f"{name}: {e}")
    return values, warnings


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def setup_to_query(config: Any, train: Mapping[str, Any]) -> dict[str, str]:
    """The URL parameters of a setup (ModelConfig + train settings)."""
    model = {k: getattr(config, k) for k in QUERY_FIELDS if hasattr(config, k)}
    return {k: _fmt(v) for k, v in {**model, **{k: train[k] for k in TRAIN_FIELDS if k in train}}.items()
            if v is not None}


# ---------------------------------------------------------------- parameter count

def count_key(ds: Dataset, config: Any, train: Mapping[str, Any]) -> str:
    return json.dumps([str(ds.csv_path), sorted(ds.roles.items()), ds.task, config.to_dict(),
                       train.get("val_fraction"), train.get("seed")], sort_keys=True, default=str)


def param_count(ds: Dataset, config: Any, val_fraction: float = 0.2, seed: int = 0) -> int:
    """Parameters of the model Train would build: tabular stats from the same training rows."""
    from multimodal.data.dataset import model_inputs, split_indices
    from multimodal.models.assembly import build_model
    from multimodal.models.branches import tabular_stats

    spec = ds.features
    train_rows = split_indices(ds, val_fraction, seed)["train"]
    tabular = FeatureSpec([], spec.numeric_cols, spec.categorical_cols)
    inputs = model_inputs(ds.frame.iloc[train_rows], ds.root, tabular, config.image_size)
    stats = tabular_stats(inputs, spec)
    target_stats = {"mean": 0.0, "std": 1.0, "log": False} if ds.task == "regression" else None
    model = build_model(config, spec, stats, ds.task, ds.classes, target_stats)
    return int(model.count_params())
