"""The Playground page's setup in the URL: preset, knobs, methods, folds, and `_hide` (controls a
teacher hides, as TensorFlow Playground's `_hide` keys do). Streamlit-free, so cheap to test.

Every bad value is dropped with one warning and the page keeps its default (setup_from_query);
setup_to_query writes only what differs from the defaults, so a link stays short.
See docs/ARCHITECTURE.md, "The Fusion Playground".
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from multimodal.data.playground_knobs import KNOBS, PRESETS, checked_knobs, default_knobs, preset_methods

HIDE_KEY = "_hide"
OTHER_CONTROLS = ("preset", "methods", "folds", "preview")
CONTROLS = (*OTHER_CONTROLS[:1], *KNOBS, *OTHER_CONTROLS[1:])   # what `_hide` may name
FOLDS = (2, 3, 4, 5)
DEFAULT_FOLDS = 3


def _last(raw: Any) -> str:
    return str(raw[-1] if isinstance(raw, (list, tuple)) and raw else raw).strip()


def _items(raw: Any) -> list[str]:
    values = raw if isinstance(raw, (list, tuple)) else [raw]
    return [part.strip() for v in values for part in str(v).split(",") if part.strip()]


def setup_from_query(query: Mapping[str, Any], race_methods: Iterable[str]) -> tuple[dict, list[str]]:
    """({"preset", "knobs", "methods", "folds", "hidden"}, warnings) from the URL's parameters.

    race_methods: the fusion methods the page offers (the registry's two-branch methods)."""
    offered = list(race_methods)
    warnings: list[str] = []
    preset = _last(query["preset"]) if "preset" in query else None
    knob_values = {k: _last(v) for k, v in query.items() if k in KNOBS}
    knobs, knob_warnings = checked_knobs(knob_values, preset)
    warnings += knob_warnings
    if preset not in PRESETS:
        preset = None
    methods = [m for m in preset_methods(preset) if m in offered]
    if "methods" in query:
        named = _items(query["methods"])
        unknown = [m for m in named if m not in offered]
        warnings += [f"unknown method '{m}' ignored" for m in unknown]
        methods = [m for m in named if m in offered] or methods
    folds = DEFAULT_FOLDS
    if "folds" in query:
        text = _last(query["folds"])
        if text.isdigit() and int(text) in FOLDS:
            folds = int(text)
        else:
            warnings.append(f"folds={text} is out of range: {FOLDS[0]} to {FOLDS[-1]}; kept {DEFAULT_FOLDS}")
    hidden = []
    for name in _items(query.get(HIDE_KEY, [])):
        if name in CONTROLS:
            hidden.append(name)
        else:
            warnings.append(f"{HIDE_KEY}: there is no control '{name}' to hide; the controls are {', '.join(CONTROLS)}")
    known = {"preset", "methods", "folds", HIDE_KEY, *KNOBS}
    warnings += [f"unknown setting '{k}' ignored" for k in query if k not in known]
    return {"preset": preset, "knobs": knobs, "methods": methods, "folds": folds, "hidden": hidden}, warnings


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setup_to_query(setup: Mapping[str, Any]) -> dict[str, str]:
    """The URL parameters of a setup: the preset, the knobs that differ from it, the methods and
    folds when not the defaults, and `_hide`."""
    preset = setup.get("preset")
    base = {**default_knobs(), **(PRESETS[preset].knobs if preset in PRESETS else {})}
    query = {"preset": preset} if preset in PRESETS else {}
    query.update({k: _text(v) for k, v in setup["knobs"].items() if k in KNOBS and v != base[k]})
    if list(setup["methods"]) != list(preset_methods(preset)):
        query["methods"] = ",".join(setup["methods"])
    if setup["folds"] != DEFAULT_FOLDS:
        query["folds"] = str(setup["folds"])
    if setup.get("hidden"):
        query[HIDE_KEY] = ",".join(setup["hidden"])
    return query
