"""A cross-validated comparison straight from the loaded data, and the proposal its evidence makes.

The Compare page needs no trained run: without one, its comparison takes the Model page's setup
(the session's network and training settings, as the Train page would train them) on the loaded
data. Once a comparison of the same columns and target has finished in this session, the Model
page proposes its best method, or a simpler one shown equivalent to it (train/evidence.py), and
offers it as a button: the session's method changes only on the user's click.
"""
from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from multimodal.app import comparison_view, navigation, state
from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset
from multimodal.models.proposal import Proposal
from multimodal.runs.folders import config_dict
from multimodal.train.evidence import propose

SETUP_SOURCE = "the Model page's setup"


def setup_reference(ds: Dataset) -> dict:
    """The loaded data and the Model page's setup as the comparison form's reference config
    (what a run's config.json holds: the training settings, the model, the columns)."""
    config = config_dict(ds, state.model_config(ds), state.train_settings(ds))
    return {**config, "features": asdict(ds.features), "dataset_name": ds.name, "rows": len(ds.frame),
            "source": SETUP_SOURCE}


def comparison_without_runs() -> None:
    """The Compare page before any run: the cross-validated comparison of the loaded data, or
    where to load data."""
    ds = state.dataset()
    if ds is None:
        st.info("No data loaded: load a dataset on the Data page, then compare the methods here.")
        navigation.link("data", "Open Data")
        return
    st.info(f"No runs yet. Cross-validate every method on **{ds.name}** right away, with {SETUP_SOURCE} "
            "(no trained run needed), or train one on the Train page.", icon=":material/info:")
    comparison_view.comparison_section(setup_reference(ds))


def proposed_method(ds: Dataset, encoder: str | None = None, image_choice: str | None = None) -> Proposal:
    """The Model page's proposal: this session's newest comparison on the same data decides, else the
    columns; steered to the methods that read images by the user's explicit `image_choice` (the same
    sentence as the CLI's). A choice no method can use (no image columns) is said, not raised."""
    try:
        return propose(ds, comparison_view.comparisons_dir(), encoder, image_choice)
    except DataError as err:
        unsteered = propose(ds, comparison_view.comparisons_dir(), encoder)
        return Proposal(unsteered.arch, f"{unsteered.reason} ({err})")
