"""The Model page's setup in the URL: which values each query parameter may take, and the codec.

Streamlit-free and TensorFlow-free, so it is cheap to test. A shared link reproduces the setup;
an invalid value is dropped with one warning per parameter rather than failing the page.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from multimodal.core.config import TRAIN_SETTINGS
from multimodal.core.settings import SETTINGS

# name -> kind: the numeric settings are core/settings.SETTINGS (parsed and checked there, as the
# CLI checks them); the others are true/false or one of the strings the page passes as `choices`.
QUERY_FIELDS: dict[str, str] = {
    "arch": "str", "encoder": "str", "augment": "bool", "wide": "bool", "loss": "str",
    "target_transform": "str", "on_missing_weights": "str", **{name: "setting" for name in SETTINGS},
}


def _parse(name: str, raw: Any, choices: Mapping[str, Sequence[str]]) -> Any:
    """The typed value, or ValueError with a short reason."""
    kind = QUERY_FIELDS[name]
    text = str(raw[-1] if isinstance(raw, (list, tuple)) and raw else raw).strip()
    if kind == "setting":
        return SETTINGS[name].parse(text)
    if kind == "str":
        if text not in choices.get(name, ()):
            raise ValueError(f"'{text}' is not available here")
        return text
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"'{text}' is not true/false")


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
