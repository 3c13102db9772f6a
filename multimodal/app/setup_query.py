"""The Model page's setup in the URL: which values each query parameter may take, and the codec.

Streamlit-free and TensorFlow-free, so it is cheap to test. A shared link reproduces the setup;
an invalid value is dropped with one warning per parameter rather than failing the page.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from multimodal.core.config import TRAIN_SETTINGS

# 128 and 160 px for the pretrained encoders (Xception needs 71 px and more; ImageNet features are
# learned at 224 px, so larger images serve them better).
IMAGE_SIZES = (32, 48, 64, 96, 128, 160)
WIDTHS = (16, 32, 64, 128, 256)
L2S = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
BATCH_SIZES = (8, 16, 32, 64, 128)
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
FINETUNE_LRS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
UNFREEZE = (1, 2, 3, 4, 6, "all")        # top blocks of the backbone fine-tuned in phase 2
# name -> (kind, allowed): a set of choices (tuple), a closed range (list [low, high]) or None.
# Kind "blocks": a count from `allowed` or "all".
QUERY_FIELDS: dict[str, tuple[str, Any]] = {
    "arch": ("str", None), "encoder": ("str", None),
    "image_size": ("int", IMAGE_SIZES), "width": ("int", WIDTHS), "dropout": ("float", [0.0, 0.7]),
    "l2": ("float", L2S), "augment": ("bool", None), "seed": ("int", [0, 1_000_000]),
    "epochs": ("int", [1, 500]), "batch_size": ("int", BATCH_SIZES), "lr": ("float", LRS),
    "val_fraction": ("float", [0.05, 0.5]), "patience": ("int", [0, 50]),
    "modality_dropout": ("float", [0.0, 0.5]), "wide": ("bool", None), "loss": ("str", None),
    "target_transform": ("str", None), "on_missing_weights": ("str", None),
    "freeze_epochs": ("int", [0, 500]), "finetune_epochs": ("int", [0, 200]), "finetune_lr": ("float", FINETUNE_LRS),
    "unfreeze": ("blocks", UNFREEZE),
}


def _parse(name: str, raw: Any, choices: Mapping[str, Sequence[str]]) -> Any:
    """The typed value, or ValueError with a short reason."""
    kind, allowed = QUERY_FIELDS[name]
    text = str(raw[-1] if isinstance(raw, (list, tuple)) and raw else raw).strip()
    if kind == "str":
        if text not in choices.get(name, ()):
            raise ValueError(f"'{text}' is not available here")
        return text
    if kind == "blocks":
        value = "all" if text == "all" else int(text) if text.isdigit() else None
        if value not in allowed:
            raise ValueError(f"'{text}' is not one of {', '.join(map(str, allowed))}")
        return value
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

    choices: allowed strings for 'arch' (methods for this dataset), 'encoder', 'loss',
    'target_transform' and 'on_missing_weights'.
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
    return {k: _fmt(v) for k, v in {**model, **{k: train[k] for k in TRAIN_SETTINGS if k in train}}.items()
            if v is not None}
