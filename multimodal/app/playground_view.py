"""The Playground page's parts: the setup (from and to the URL), the knobs, the preview, the race
in a worker process and its live leaderboard with branch shares beside the generator's truth.

The race is train/playground_race.run_race in a worker of the app's queue (train/jobs.py); the
generated data and the race live in the session's folder (app/state.py) under `playground/`.
The shares of each saved model are computed in the server, as the Explain page's are
(docs/ARCHITECTURE.md, "The app" and "The Fusion Playground").
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from multimodal.app import playground_query as pq
from multimodal.data.playground import background_rows, generate_frame, oracle, truth_table
from multimodal.data.playground_knobs import KNOBS, PRESETS, checked_knobs, preset_methods
from multimodal.explain.shapley import shares_from_table

SETUP_KEY, WRITTEN_KEY, WARNINGS_KEY = "pg_setup", "_pg_query_written", "_pg_query_warnings"
PREVIEW_IMAGES = 8
FREE_KNOBS = ("rows", "image_size", "seed")   # changing these keeps the preset


def race_methods() -> list[str]:
    """The methods the playground races: every baseline and two-branch image + table method."""
    # lazy: the registry imports Keras; the page needs it only here and for the shares
    from multimodal.models.fusion import methods_for
    return methods_for(True, True, 1)


# ---------------------------------------------------------------- setup and URL

def setup() -> dict:
    """The setup, read again from the URL whenever the URL is not the one this page wrote."""
    ss = st.session_state
    query = st.query_params.to_dict()
    if SETUP_KEY not in ss or query != ss.get(WRITTEN_KEY):
        ss[SETUP_KEY], ss[WARNINGS_KEY] = pq.setup_from_query(query, race_methods())
        _to_widgets(ss[SETUP_KEY])
    for warning in ss.get(WARNINGS_KEY, []):
        st.warning(f"Link setting dropped: {warning}", icon=":material/link_off:")
    return ss[SETUP_KEY]


def _to_widgets(s: dict) -> None:
    for name, value in s["knobs"].items():
        st.session_state[f"pg_{name}"] = value
    st.session_state["pg_methods"] = list(s["methods"])
    st.session_state["pg_folds"] = s["folds"]


def apply_preset(name: str) -> None:
    """A preset button's callback: its knobs (the rest default, the seed kept) and its methods."""
    s = st.session_state[SETUP_KEY]
    knobs, _ = checked_knobs({"seed": s["knobs"]["seed"]}, name)
    st.session_state[SETUP_KEY] = {**s, "preset": name, "knobs": knobs, "methods": list(preset_methods(name))}
    _to_widgets(st.session_state[SETUP_KEY])


def settle(s: dict, knobs: dict, methods: list[str], folds: int) -> dict:
    """The setup the widgets now show, kept for the next run. A signal knob (or one the preset
    sets itself) moved away from the preset's value leaves the preset: its lesson no longer applies.
    Size and seed stay free (a class may race a lesson on more rows or another seed)."""
    s = {**s, "knobs": knobs, "methods": list(methods), "folds": folds}
    if s["preset"]:
        own, _ = checked_knobs({}, s["preset"])
        judged = set(PRESETS[s["preset"]].knobs) | (set(KNOBS) - set(FREE_KNOBS))
        if any(own[k] != knobs[k] for k in judged):
            s["preset"] = None
    st.session_state[SETUP_KEY] = s
    return s


def write_query(s: dict) -> None:
    written = pq.setup_to_query(s)
    if st.query_params.to_dict() != written:
        st.query_params.from_dict(written)
    st.session_state[WRITTEN_KEY] = written
    st.session_state[WARNINGS_KEY] = []   # shown once; the URL now says what the page shows


# ---------------------------------------------------------------- controls

def preset_buttons(s: dict) -> None:
    if "preset" in s["hidden"]:
        return
    cols = st.columns(3)
    for i, (name, preset) in enumerate(PRESETS.items()):
        col = cols[i % 3]
        col.button(preset.title, key=f"pg_preset_{name}", on_click=apply_preset, args=(name,), width="stretch",
                   type="primary" if s["preset"] == name else "secondary")
    if s["preset"]:
        st.info(f"**{PRESETS[s['preset']].title}.** {PRESETS[s['preset']].lesson}", icon=":material/school:")


def _widget(name: str) -> float | int | str:
    knob = KNOBS[name]
    if knob.choices:
        return st.selectbox(name, knob.choices, key=f"pg_{name}", help=knob.help)
    if knob.integer and name == "seed":
        return int(st.number_input(name, int(knob.low), int(knob.high), step=1, key=f"pg_{name}", help=knob.help))
    step = 1 if knob.integer else 0.05
    kind = int if knob.integer else float
    return st.slider(name, kind(knob.low), kind(knob.high), step=kind(step), key=f"pg_{name}", help=knob.help)


def knob_controls(s: dict) -> dict:
    """The knobs a teacher did not hide, as widgets; returns the full knob setting."""
    knobs = dict(s["knobs"])
    shown = [n for n in KNOBS if n not in s["hidden"]]
    cols = st.columns(3)
    for i, name in enumerate(shown):
        with cols[i % 3]:
            knobs[name] = _widget(name)
    return knobs


def race_controls(s: dict) -> tuple[list[str], int]:
    """The methods to race and the folds (hidden ones keep the setup's values)."""
    methods, folds = list(s["methods"]), s["folds"]
    left, right = st.columns([4, 1])
    if "methods" not in s["hidden"]:
        methods = left.multiselect("Methods to race", race_methods(), key="pg_methods",
                                   help="image_only, tabular_only and linear always race: the verdicts are "
                                        "against the best of them")
    if "folds" not in s["hidden"]:
        folds = right.selectbox("Folds", pq.FOLDS, key="pg_folds")
    return methods, folds


# ---------------------------------------------------------------- preview

@st.cache_data(max_entries=16, show_spinner=False)
def preview_data(knobs_items: tuple) -> tuple[pd.DataFrame, np.ndarray, dict, dict]:
    knobs = dict(knobs_items)
    frame, images, lat = generate_frame(knobs)
    n = len(frame)
    truth = shares_from_table(truth_table(knobs, lat, np.arange(n), background_rows(n, int(knobs["seed"]))),
                              ["image", "tabular"])
    return frame, images[:PREVIEW_IMAGES], oracle(knobs, frame, lat), truth


def preview(knobs: dict, hidden: list[str]) -> dict:
    """A grid of pictures with their labels, a few table rows, the oracle and the true shares."""
    frame, images, best, truth = preview_data(tuple(sorted(knobs.items())))
    if "preview" in hidden:
        return truth
    target = "label" if "label" in frame else "target"
    cols = st.columns(PREVIEW_IMAGES)
    for col, picture, label in zip(cols, images, frame[target]):
        col.image(picture, caption=str(label), width="stretch", clamp=True)
    st.dataframe(frame.head(5), hide_index=True, width="stretch")
    score = "accuracy" if knobs["task"] == "classification" else "R²"
    st.caption(f"The generator's own score, knowing only the image / only the table / both ({score}): "
               f"{best['image']:.2f} / {best['table']:.2f} / {best['both']:.2f}; chance {best['chance']:.2f}. "
               f"True branch shares: image {truth['image']:.2f}, table {truth['tabular']:.2f}, "
               f"interaction {truth['interaction']:.2f}.")
    return truth
