"""Model-page widgets made from declarations: the settings spec (core/settings.py), so the page
offers exactly the values the CLI and a shared link accept (widget keys are the setup's
`m_<name>`), and a fusion method's own parameters (models/fusion.Param)."""
from __future__ import annotations

from typing import Any

import streamlit as st

from multimodal.core.settings import SETTINGS
from multimodal.models.fusion import Param

FLOAT_STEP = 0.05   # the float sliders' step (dropout, validation fraction, modality dropout)


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_slider(name: str, label: str, *, at_least: float | None = None, **kwargs) -> Any:
    """A slider over SETTINGS[name]: its offered steps (plus the current value when a link or the
    CLI set another valid one), or its whole range for a float without steps. `at_least` drops the
    steps below it (an encoder's smallest image)."""
    spec, key = SETTINGS[name], f"m_{name}"
    if spec.offered:
        options = [v for v in spec.options(st.session_state.get(key))
                   if at_least is None or isinstance(v, str) or v >= at_least]
        return st.select_slider(label, options, key=key, format_func=_fmt, **kwargs)
    return st.slider(label, float(spec.low), float(spec.high), step=FLOAT_STEP, key=key, **kwargs)


def setting_number(name: str, label: str, **kwargs) -> Any:
    """A whole-number input over SETTINGS[name]'s range."""
    spec = SETTINGS[name]
    return st.number_input(label, int(spec.low), int(spec.high), step=1, key=f"m_{name}", **kwargs)


def param_widget(name: str, param: Param, value, key: str):
    """One widget for a method's hyperparameter, from its declaration alone (kind, range, meaning)."""
    label = name.replace("_", " ").capitalize()
    if param.kind == "bool":
        return st.toggle(label, value=value, key=key, help=param.description)
    if param.kind == "choice":
        return st.selectbox(label, param.choices, index=param.choices.index(value), key=key, help=param.description)
    if param.kind == "int":
        low, high = int(param.low), int(param.high)
        if high - low <= 32:
            return st.slider(label, low, high, int(value), step=1, key=key, help=param.description)
        return int(st.number_input(label, low, high, int(value), step=1, key=key, help=param.description))
    return float(st.number_input(label, float(param.low), float(param.high), float(value),
                                 step=param.step or (param.high - param.low) / 100, format="%g", key=key,
                                 help=param.description))
