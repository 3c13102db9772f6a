"""The Playground page's parts: the setup (from and to the URL, a lesson applied in one pick), the
knobs, the race controls and the preview with the generator's true shares.

The race and its leaderboard are playground_results.py, lesson mode's widgets lesson_view.py
(docs/ARCHITECTURE.md, "The app" and "The Fusion Playground").
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from multimodal.app import playground_query as pq
from multimodal.app import workspace_view
from multimodal.data.playground import generate_frame, oracle
from multimodal.data.playground_knobs import KNOBS

SETUP_KEY, WRITTEN_KEY, WARNINGS_KEY = "pg_setup", "_pg_query_written", "_pg_query_warnings"
PREVIEW_IMAGES = 8


def race_methods() -> tuple[str, ...]:
    """The methods the playground may race ("offered"): every baseline and two-branch image + table method."""
    # lazy: the registry imports Keras; the page needs it only here and for the shares
    from multimodal.models.fusion import methods_for
    return tuple(methods_for(True, True, 1))


def shares_text(shares: dict) -> str:
    """Shares in one line, the same wording on every screen: "image 0.50 / table 0.50 / interaction 0.00"."""
    return f"image {shares['image']:.2f} / table {shares['tabular']:.2f} / interaction {shares['interaction']:.2f}"


def truth_caption(shares: dict, rows: int) -> str:
    return f"True shares of the generator's score over all {rows:,} rows: {shares_text(shares)}."


# ---------------------------------------------------------------- setup and URL

def setup() -> dict:
    """The setup, read again from the URL whenever the URL is not the one this page wrote."""
    ss = st.session_state
    query = workspace_view.query()   # without the workspace id (?ws=)
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


def apply_lesson(lesson) -> None:
    """Open `lesson` (None: free play): its knobs (the rest default, the seed kept), methods and folds."""
    s = st.session_state[SETUP_KEY]
    st.session_state[SETUP_KEY] = pq.lesson_setup(lesson, int(s["knobs"]["seed"]), race_methods(), s["hidden"])
    _to_widgets(st.session_state[SETUP_KEY])


def settle(s: dict, knobs: dict, methods: list[str], folds: int) -> dict:
    """The setup the widgets now show, kept for the next run. A signal knob (or one the lesson sets
    itself) moved away from the lesson's value leaves the lesson: its claims no longer apply."""
    s = {**s, "knobs": knobs, "methods": list(methods), "folds": folds}
    if s["lesson"] is not None and pq.leaves_lesson(s["lesson"], knobs):
        s["lesson"] = None
    st.session_state[SETUP_KEY] = s
    return s


def write_query(s: dict) -> None:
    written = pq.setup_to_query(s)
    workspace_view.write_query(written)   # keeps the workspace id in place
    st.session_state[WRITTEN_KEY] = written
    st.session_state[WARNINGS_KEY] = []   # shown once; the URL now says what the page shows


# ---------------------------------------------------------------- controls

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
    hidden = pq.hidden_controls(s)
    shown = [n for n in KNOBS if n not in hidden]
    cols = st.columns(3)
    for i, name in enumerate(shown):
        with cols[i % 3]:
            knobs[name] = _widget(name)
    return knobs


def race_controls(s: dict) -> tuple[list[str], int]:
    """The methods to race and the folds (hidden ones keep the setup's values)."""
    methods, folds = list(s["methods"]), s["folds"]
    left, right = st.columns([4, 1])
    hidden = pq.hidden_controls(s)
    if "methods" not in hidden:
        methods = left.multiselect("Methods to race", race_methods(), key="pg_methods",
                                   help="image_only, tabular_only and linear always race: the verdicts are "
                                        "against the best of them")
    if "folds" not in hidden:
        folds = right.selectbox("Folds", pq.FOLDS, key="pg_folds")
    return methods, folds


# ---------------------------------------------------------------- preview

@st.cache_data(max_entries=16, show_spinner=False)
def preview_data(knobs_items: tuple) -> tuple[pd.DataFrame, np.ndarray, dict, dict]:
    # lazy: branch_shares imports TensorFlow (already loaded by race_methods' registry)
    from multimodal.explain.branch_shares import generator_shares
    knobs = dict(knobs_items)
    frame, images, lat = generate_frame(knobs)
    return frame, images[:PREVIEW_IMAGES], oracle(knobs, frame, lat), generator_shares(knobs, lat)


def preview(knobs: dict, hidden: list[str]) -> dict:
    """A grid of pictures with their labels, a few table rows, the oracle and the true shares
    (explain/branch_shares.generator_shares: the one truth the leaderboard shows too)."""
    frame, images, best, truth = preview_data(tuple(sorted(knobs.items())))
    if "preview" in hidden:
        return truth
    target = "label" if "label" in frame else "target"
    cols = st.columns(PREVIEW_IMAGES)
    for col, picture, label in zip(cols, images, frame[target]):
        col.image(picture, caption=str(label), width="stretch", clamp=True, alt=f"Generated picture, label {label}")
    st.dataframe(frame.head(5), hide_index=True, width="stretch")
    score = "accuracy" if knobs["task"] == "classification" else "R²"
    st.caption(f"The generator's own score, knowing only the image / only the table / both ({score}): "
               f"{best['image']:.2f} / {best['table']:.2f} / {best['both']:.2f}; chance {best['chance']:.2f}. "
               + truth_caption(truth, len(frame)))
    return truth
