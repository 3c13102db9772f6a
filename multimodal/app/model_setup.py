"""The Model page's setup as widget state: the stored setup, then a shared link's values, and the
proposal's "Use" button (docs/ARCHITECTURE.md, "The app" and "Evidence picks the default")."""
from __future__ import annotations

import streamlit as st

from multimodal.app import setup_query as sq
from multimodal.app import state, workspace_view
from multimodal.app.encoder_view import OFFLINE, UPLOADS
from multimodal.core.config import ModelConfig
from multimodal.core.tasks import LOSSES, TARGET_TRANSFORMS
from multimodal.data.dataset import Dataset
from multimodal.models.backbones import ENCODERS
from multimodal.models.fusion import FUSION_METHODS
from multimodal.models.proposal import unused_image_choice


def fill_widget_state(ds: Dataset, archs: list[str], fallback: str) -> ModelConfig:
    """The Model page's widget state (`m_<name>`): from the stored setup, then from the URL when it
    differs from what the page last wrote there; one warning lists the link's ignored values.
    Returns the stored setup.

    The method is the session's (`state.model_config`: the user's choice, else the one proposed by
    the columns, which the Compare page also compares from); `fallback` only when it does not fit
    these columns. A comparison's proposal never switches it: the page offers it as a button
    (`use_proposal`)."""
    ss = st.session_state
    config = state.model_config(ds)
    current = {**config.to_dict(), **state.default_train_settings(ds), **ss.get("train_settings", {}),
               "seed": config.seed}
    if current["arch"] not in archs:
        current["arch"] = fallback
    current["loss"] = current.get("loss") or "mse"
    for name in sq.QUERY_FIELDS:
        if f"m_{name}" not in ss or (name == "arch" and ss.m_arch not in archs):
            ss[f"m_{name}"] = current[name]
    query = workspace_view.query()   # the URL's setup, without the workspace id
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


def use_proposal(arch: str) -> None:
    """The "Use <method>" button's callback: the user's click, the only way a proposal becomes the method."""
    st.session_state["m_arch"] = arch


def image_choice(encoder: str, weights_file: bool) -> str | None:
    """What the user chose for the images on this page (an encoder other than the default, an uploaded
    weights file), in the words the proposal's steering sentence uses; None when nothing was chosen."""
    named = [f"the {ENCODERS[encoder].title} encoder" if encoder != ModelConfig().encoder else "",
             "its uploaded weights file" if weights_file else ""]
    return " and ".join(n for n in named if n) or None


def unused_image_warning(arch: str, archs: list[str]) -> None:
    """When the picked method reads no images while the user chose an encoder or uploaded weights
    (`image_choice`), the sentence the CLI exits 2 with (models/proposal.unused_image_choice) as a
    warning, and a button that drops them. The method stays the user's: nothing changes without a click."""
    if arch not in FUSION_METHODS or FUSION_METHODS[arch].reads_images:
        return
    encoder = st.session_state.get("m_encoder", ModelConfig().encoder)
    chosen = image_choice(encoder, encoder in st.session_state.get(UPLOADS, {}))
    if chosen is None:
        return
    st.warning(unused_image_choice(arch, chosen, [a for a in archs if FUSION_METHODS[a].reads_images]) + ".",
               icon=":material/warning:")
    st.button("Drop " + ("them" if " and " in chosen else "it"), key="m_drop_image_choice",
              on_click=drop_image_choice, args=(encoder,), icon=":material/close:",
              help=f"Back to the {ENCODERS[ModelConfig().encoder].title} encoder, without an uploaded weights file.")


def drop_image_choice(encoder: str) -> None:
    """The "Drop" button's callback: the default encoder again, and no uploaded weights for `encoder`."""
    st.session_state["m_encoder"] = ModelConfig().encoder
    st.session_state.get(UPLOADS, {}).pop(encoder, None)
