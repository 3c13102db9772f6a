"""The Model page's setup as widget state: the stored setup, then a shared link's values (docs/ARCHITECTURE.md, "The app")."""
from __future__ import annotations

import streamlit as st

from multimodal.app import setup_query as sq
from multimodal.app import state
from multimodal.app.encoder_view import OFFLINE
from multimodal.core.config import ModelConfig
from multimodal.core.tasks import LOSSES, TARGET_TRANSFORMS
from multimodal.data.dataset import Dataset
from multimodal.models.backbones import ENCODERS


def fill_widget_state(ds: Dataset, archs: list[str], proposed: str) -> ModelConfig:
    """The Model page's widget state (`m_<name>`): from the stored setup, then from the URL when it
    differs from what the page last wrote there; one warning lists the link's ignored values.
    Returns the stored setup."""
    ss = st.session_state
    config = state.model_config(ds)
    current = {**config.to_dict(), **state.default_train_settings(ds), **ss.get("train_settings", {}),
               "seed": config.seed}
    if current["arch"] not in archs or not ss.get("model_config"):   # a new setup starts from the proposal
        current["arch"] = proposed
    current["loss"] = current.get("loss") or "mse"
    for name in sq.QUERY_FIELDS:
        if f"m_{name}" not in ss or (name == "arch" and ss.m_arch not in archs):
            ss[f"m_{name}"] = current[name]
    query = st.query_params.to_dict()
    if query != ss.get("_model_query_written"):
        values, ss["_model_query_warnings"] = sq.setup_from_query(
            query, {"arch": archs, "encoder": list(ENCODERS), "loss": LOSSES["regression"],
                    "target_transform": TARGET_TRANSFORMS, "on_missing_weights": list(OFFLINE)})
        for name, value in values.items():
            ss[f"m_{name}"] = value
    if ss.get("_model_query_warnings"):
        st.warning("Ignored invalid link settings: " + "; ".join(ss["_model_query_warnings"]),
                   icon=":material/link_off:")
    return config
