"""Playground: set where the signal lives with knobs, and watch fusion methods race on it.

The whole setup is in the URL (a shared link reproduces it; `_hide=a,b` hides controls for a
class); logic in multimodal/app/playground_view.py and playground_results.py."""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import streamlit as st

from multimodal.app import playground_results as results
from multimodal.app import playground_view as view
from multimodal.app.session_jobs import comparison_processes

st.title(":material/sports_score: Fusion Playground")
st.caption("Choose how much of the answer sits in the picture, in the table and in their interaction, then race "
           "the fusion methods on it: every method is cross-validated on the same folds and judged against the "
           "best single-branch baseline, and each one's branch shares are shown beside the truth built into the data.")
setup = view.setup()
view.preset_buttons(setup)
with st.expander("Knobs", expanded=not setup["preset"]):
    knobs = view.knob_controls(setup)
methods, folds = view.race_controls(setup)
setup = view.settle(setup, knobs, methods, folds)
view.write_query(setup)
view.preview(knobs, setup["hidden"])

race = results.current()
running = race is not None and race["job"].poll() in ("queued", "running", "stopping")
processes = comparison_processes()
if st.button("Race", type="primary", icon=":material/play_arrow:", disabled=running or not methods or not processes):
    results.start_race(knobs, methods, folds, setup["preset"], processes)
    st.rerun()
if race is not None:
    st.subheader("Leaderboard")
    if running:
        results.live()
    else:
        results.finished(race)
