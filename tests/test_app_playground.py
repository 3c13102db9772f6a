"""The Playground page (AppTest): the setup from the URL with its warnings and `_hide`, presets in
one click, a finished race's leaderboard with branch shares and the lesson's checks, and Stop."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from multimodal.data.playground import write_playground
from multimodal.data.playground_knobs import checked_knobs
from multimodal.train.jobs import Job
from multimodal.train.playground_race import MODELS_DIR, RACE_FILE, run_race

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 180


def page(session: Path, query: dict | None = None, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "playground.py"), default_timeout=TIMEOUT)
    at.session_state["session_folder"] = SimpleNamespace(path=session)
    for key, value in state.items():
        at.session_state[key] = value
    if query is not None:
        at.query_params = dict(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def labels(at: AppTest) -> set[str]:
    return {w.label for w in [*at.slider, *at.selectbox, *at.number_input, *at.multiselect]}


def test_url_setup_bad_values_and_hidden_controls(tmp_path):
    query = {"preset": "interaction", "rows": "150", "image": "7", "methods": "film,warp", "_hide": "seed,ghost"}
    at = page(tmp_path, query)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 3, warnings
    assert any("image=7 is out of range: 0 to 1" in w for w in warnings)
    assert any("unknown method 'warp'" in w for w in warnings) and any("'ghost'" in w for w in warnings)
    assert "seed" not in labels(at) and "rows" in labels(at)
    assert at.slider(key="pg_rows").value == 150 and at.slider(key="pg_interaction").value == 1.0
    assert at.multiselect(key="pg_methods").value == ["film"]
    assert any("Interaction" in i.value for i in at.info)    # the preset's lesson is shown
    assert at.query_params["rows"] == "150" and at.query_params["_hide"] == "seed"   # the bad values left the URL
    assert list(at.dataframe[0].value.columns)[:4] == ["id", "image", "reading", "grade"]   # the preview


def test_a_preset_in_one_click_and_a_moved_knob_leaves_it(tmp_path):
    at = page(tmp_path)
    next(b for b in at.button if b.label == "Redundant: no fusion gain").click().run()
    assert at.slider(key="pg_redundancy").value == 1.0 and at.query_params["preset"] == "redundant"
    at.slider(key="pg_redundancy").set_value(0.5).run()
    assert "preset" not in at.query_params and at.query_params["redundancy"] == "0.5"


@pytest.fixture(scope="module")
def finished_race(tmp_path_factory):
    root = tmp_path_factory.mktemp("pg-session") / "playground" / "race-1"
    knobs, _ = checked_knobs({"rows": 120, "image_size": 16}, "table_alone")
    csv = write_playground(knobs, root / "data")
    run_race(csv, root / "race", ["late_concat"], k=2, image_size=16, epochs=3, patience=2)
    job = Job({"data": str(csv)}, root / "race")
    job.state = "finished"
    return {"job": job, "root": str(root), "preset": "table_alone", "task": "classification"}


def test_finished_race_leaderboard_shares_and_lesson(tmp_path, finished_race):
    at = page(tmp_path, {"preset": "table_alone"}, pg_race=finished_race)
    board = at.dataframe[-1].value
    assert sorted(board["method"]) == ["image_only", "late_concat", "linear", "tabular_only"]
    assert {"accuracy", "verdict", "image share", "true table"} <= set(board.columns)
    assert (board["true table"] == 1.0).all()
    late = board[board["method"] == "late_concat"].iloc[0]
    assert late["verdict"] in ("better", "worse", "no detectable difference")
    assert any("against the best baseline, tabular_only" in c.value or "against the best baseline, linear" in c.value
               for c in at.caption)
    lesson = [m.value for m in [*at.success, *at.warning] if "The lesson" in m.value]
    assert len(lesson) == 1 and "tabular_only does well" in lesson[0]


def test_stopping_a_race_leaves_no_models_or_result(tmp_path):
    at = page(tmp_path, {"preset": "table_alone", "rows": "100", "image_size": "16", "folds": "2"})
    next(b for b in at.button if b.label == "Race").click().run()
    race = at.session_state["pg_race"]
    race["job"].stop()
    deadline = time.time() + TIMEOUT
    while race["job"].poll() in ("queued", "running", "stopping") and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    out = Path(race["root"]) / "race"
    assert str(out).startswith(str(tmp_path))           # the session's own folder
    assert not (out / RACE_FILE).exists() and not (out / MODELS_DIR).exists() and not (out / "features").exists()
    assert any("stopped" in w.value for w in at.warning)


def test_a_preset_survives_more_rows_in_the_url(tmp_path):
    at = page(tmp_path, {"preset": "table_alone", "rows": "150"})
    at.run()
    assert at.query_params["preset"] == "table_alone" and at.query_params["rows"] == "150"
    assert any("The table alone is enough" in i.value for i in at.info)


def test_a_bad_processes_setting_is_named_and_the_race_waits(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTIMODAL_COMPARE_PROCESSES", "four")
    at = page(tmp_path)
    assert any("MULTIMODAL_COMPARE_PROCESSES is 'four'; set it to a number of processes from 1 to 2" in e.value
               for e in at.error)
    assert next(b for b in at.button if b.label == "Race").disabled
