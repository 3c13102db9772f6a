"""Playground: set where the signal lives with knobs, and watch fusion methods race on it; or open a
lesson, predict first, race, and see which of its claims held.

The whole setup is in the URL (`lesson=`, the knobs that differ from it, `_hide=a,b` hides controls
for a class); logic in multimodal/app/playground_view.py, playground_results.py and lesson_view.py
(docs/ARCHITECTURE.md, "The Fusion Playground" and "Lessons")."""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import streamlit as st

from multimodal.app import accessibility, workspace_view
from multimodal.app import lesson_view as lessons
from multimodal.app import playground_query as pq
from multimodal.app import playground_results as results
from multimodal.app import playground_view as view
from multimodal.app.session_jobs import comparison_processes

st.title(":material/sports_score: Fusion Playground")
st.caption("Choose how much of the answer sits in the picture, in the table and in their interaction, then race "
           "the fusion methods on it: every method is cross-validated on the same folds and judged against the "
           "best single-branch baseline, and each one's branch shares are shown beside the truth built into the data.")
setup = view.setup()
picker_box, lesson_box = st.container(), st.container()   # filled once the widgets below have settled the setup
with st.expander("Knobs", expanded=setup["lesson"] is None):
    knobs = view.knob_controls(setup)
methods, folds = view.race_controls(setup)
had_lesson = setup["lesson"] is not None
setup = view.settle(setup, knobs, methods, folds)
view.write_query(setup)
with st.popover("Share this setup", icon=":material/share:"):   # the address bar also holds your workspace's key
    st.caption("A link to this setup (with its hidden controls) for a class or a colleague, without your workspace:")
    st.code(workspace_view.share_link(pq.setup_to_query(setup)), language=None, wrap_lines=True)
if had_lesson and setup["lesson"] is None:
    st.rerun()   # a moved knob left the lesson: draw the controls it hid
lesson = setup["lesson"]
with picker_box:
    lessons.picker(setup)
if lesson is not None:
    with lesson_box:
        lessons.box(lesson, knobs)
view.preview(knobs, pq.hidden_controls(setup))
lessons.teacher_upload()

race = results.current()
running = race is not None and race["job"].poll() in ("queued", "running", "stopping")
answers = lessons.sync_answers(lesson)
ready = True
if lesson is not None and lesson.questions:
    marked_here = race is not None and not running and results.same_setup(race, setup) and results.has_result(race)
    ready = lessons.complete(answers) if marked_here else lessons.predictions(lesson, locked=running)
processes = comparison_processes()
if st.button("Race", type="primary", icon=":material/play_arrow:",
             disabled=running or not methods or not processes or not ready):
    results.start_race(setup, processes, answers if lesson is not None else None)
    st.rerun()
if not ready:
    st.caption("Answer every question, and say how sure you are, to start the race.")
if race is not None:
    st.subheader("Leaderboard")
    if running:
        accessibility.live_fragment(results.live, 1.0, "playground")()
    else:
        results.finished(race, setup)
