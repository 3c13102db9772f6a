"""The Playground page (AppTest): the setup from the URL with its warnings and `_hide`, lessons (the
picker, `?lesson=` and the old `?preset=` links, a published lesson's hash), predicting first, a
finished race's leaderboard with the one truth, the marked answers and claims, an earlier setup's
board, a teacher's upload, and Stop."""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from multimodal.app.playground_query import race_setup, read_upload, setup_from_query
from multimodal.app.playground_results import RECORD_FILE
from multimodal.data.lesson_store import publish, shipped_lesson
from multimodal.data.playground import write_playground
from multimodal.data.playground_knobs import checked_knobs
from multimodal.models.fusion import methods_for
from multimodal.train.jobs import Job
from multimodal.train.playground_race import MODELS_DIR, RACE_FILE, run_race

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 180
OFFERED = tuple(methods_for(True, True, 1))
TRUTH = re.compile(r"True shares of the generator's score over all [\d,]+ rows: image [\d.]+ / table [\d.]+ / "
                   r"interaction [\d.]+")
RACED = {"lesson": "table_alone", "rows": "120", "image_size": "16", "folds": "2",
         "methods": "image_only,tabular_only,linear,late_concat"}


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


def race_button(at: AppTest):
    return next(b for b in at.button if b.label == "Race")


def texts(at: AppTest) -> list[str]:
    return [m.value for m in [*at.markdown, *at.caption, *at.success, *at.error, *at.info, *at.warning]]


def test_url_setup_bad_values_and_hidden_controls(tmp_path):
    query = {"lesson": "interaction", "rows": "150", "image": "7", "methods": "film,warp", "_hide": "seed,ghost"}
    at = page(tmp_path, query)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 3, warnings
    assert any("image=7 is out of range: 0 to 1" in w for w in warnings)
    assert any("unknown method 'warp'" in w for w in warnings) and any("'ghost'" in w for w in warnings)
    assert "seed" not in labels(at) and "rows" in labels(at)
    assert at.slider(key="pg_rows").value == 150
    assert at.multiselect(key="pg_methods").value == ["film"]
    assert at.query_params["rows"] == "150" and at.query_params["_hide"] == "seed"   # the bad values left the URL
    assert list(at.dataframe[0].value.columns)[:4] == ["id", "image", "reading", "grade"]   # the preview


def test_a_lesson_link_shows_the_lesson_hides_its_controls_and_asks_first(tmp_path):
    lesson = shipped_lesson("interaction", OFFERED)
    at = page(tmp_path, {"lesson": "interaction", "rows": "100", "image_size": "16"})
    shown = "\n".join(texts(at))
    assert lesson.title in shown and lesson.text.split()[0] in shown
    assert all(c.text in shown for c in lesson.claims) and "What this lesson checks" in shown
    assert ("Held on" in shown) or ("Not yet verified: run `python -m multimodal lesson check" in shown)
    assert not set(lesson.hide) & labels(at) and "rows" in labels(at)    # the file's hidden controls
    assert "_hide" not in at.query_params                                 # the file's list stays out of the URL
    assert at.selectbox(key="pg_lesson").value == "interaction"
    assert race_button(at).disabled
    assert any("Answer every question" in c.value for c in at.caption)
    for i in range(len(lesson.questions)):
        assert at.radio(key=f"pg_ans_{i}").value is None                  # no default answer
        at.radio(key=f"pg_ans_{i}").set_value(0)
        if i < len(lesson.questions) - 1:
            at.radio(key=f"pg_sure_{i}").set_value("Fairly sure")
    at.run()
    assert race_button(at).disabled                                       # one confidence still missing
    at.radio(key=f"pg_sure_{len(lesson.questions) - 1}").set_value("Very sure").run()
    assert not race_button(at).disabled and not at.exception


def test_an_old_preset_link_opens_the_same_lesson(tmp_path):
    at = page(tmp_path, {"preset": "table_alone", "rows": "150"})
    at.run()
    assert at.query_params["lesson"] == "table_alone" and at.query_params["rows"] == "150"
    assert "preset" not in at.query_params
    assert any(shipped_lesson("table_alone", OFFERED).title in m for m in texts(at))


def test_picking_a_lesson_and_a_moved_knob_leaves_it(tmp_path):
    at = page(tmp_path)
    lesson = shipped_lesson("redundant", OFFERED)
    at.selectbox(key="pg_lesson").set_value("redundant").run()
    assert at.query_params["lesson"] == "redundant" and "redundancy" not in labels(at)
    assert at.multiselect(key="pg_methods").value == list(lesson.raced) and at.selectbox(key="pg_folds").value == lesson.folds
    at.slider(key="pg_rows").set_value(200).run()
    assert at.query_params["lesson"] == "redundant"                      # rows stay free
    at.slider(key="pg_label_noise").set_value(0.2).run()
    assert "lesson" not in at.query_params and at.query_params["label_noise"] == "0.2"
    assert at.selectbox(key="pg_lesson").value == "" and "redundancy" in labels(at)


@pytest.fixture(scope="module")
def finished_race(tmp_path_factory):
    root = tmp_path_factory.mktemp("pg-session") / "playground" / "race-1"
    setup, warnings = setup_from_query(RACED, OFFERED)
    assert not warnings
    write_playground(setup["knobs"], root / "data")
    run_race(root / "data" / "data.csv", root / "race", ["late_concat"], k=2, image_size=16, epochs=3, patience=2)
    job = Job({"data": str(root / "data" / "data.csv")}, root / "race")
    job.state = "finished"
    n = len(setup["lesson"].questions)
    return {"job": job, "root": str(root), "setup": race_setup(setup), "lesson": setup["lesson"],
            "task": "classification", "answers": {"answers": [0, 1, *[None] * (n - 2)],
                                                  "sure": ["Very sure", "Not sure", *[None] * (n - 2)]}}


def test_finished_race_leaderboard_marks_and_claims(tmp_path, finished_race):
    at = page(tmp_path, RACED, pg_race=finished_race)
    board = at.dataframe[-1].value
    assert sorted(board["method"]) == ["image_only", "late_concat", "linear", "tabular_only"]
    verdict = next(c for c in board.columns if c.startswith("vs best baseline ("))
    assert verdict in ("vs best baseline (tabular_only)", "vs best baseline (linear)", "vs best baseline (image_only)")
    assert len(board.columns) <= 7 and not any(c.startswith("true") for c in board.columns)
    late = board[board["method"] == "late_concat"].iloc[0]
    assert late[verdict] in ("better", "worse", "no detectable difference")
    assert re.fullmatch(r"image [\d.]+ / table [\d.]+ / interaction [\d.]+", late[next(
        c for c in board.columns if c.startswith("model shares"))])
    marks = [m.value for m in [*at.success, *at.error, *at.info] if "Your answer:" in m.value]
    assert len(marks) == len(finished_race["lesson"].questions)
    assert all(re.search(r": (right|wrong|not settled by this race|not answered)$", m) for m in marks)
    assert "(Very sure)" in marks[0] and "(Not sure)" in marks[1]
    claims = [m.value for m in [*at.success, *at.warning] if m.value.startswith(("**Holds", "**Does not hold"))]
    assert len(claims) == len(finished_race["lesson"].claims)
    assert all("This race did not show" in c for c in claims if c.startswith("**Does not hold"))
    assert any(e.label == "Statistics" for e in at.expander)
    assert {b.label for b in at.get("download_button")} >= {"Download worksheet (Markdown)",
                                                            "Download worksheet (printable HTML)"}


def test_the_preview_truth_is_the_leaderboard_truth(tmp_path, finished_race):
    at = page(tmp_path, RACED, pg_race=finished_race)
    found = [m.group(0) for c in at.caption for m in [TRUTH.search(c.value)] if m]
    assert len(found) == 2 and found[0] == found[1], found


def test_an_earlier_setups_board_is_labelled_and_not_marked(tmp_path, finished_race):
    at = page(tmp_path, {**RACED, "seed": "5"}, pg_race=finished_race)
    assert any("Leaderboard of an earlier setup" in i.value and "race again for this one" in i.value for i in at.info)
    assert not [m for m in [*at.success, *at.error, *at.info] if "Your answer:" in m.value]
    assert at.radio(key="pg_ans_0").value is None                         # the questions ask again


def test_a_bad_upload_is_one_error_and_the_page_keeps_working(tmp_path):
    bad = (ROOT / "sample_data/lessons/table_alone.toml").read_text().replace(
        'check = "image_only at chance', 'check = "film at chance', 1).encode()
    lesson, problem = read_upload(bad, OFFERED)
    assert lesson is None and "'film' is not raced" in problem and "claims[" in problem
    assert read_upload(b"title = \"x\xff\"", OFFERED)[1].startswith("the uploaded lesson, line 1: not UTF-8")
    at = page(tmp_path)
    at.file_uploader[0].set_value(("lesson.toml", bad, "application/toml"))
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "'film' is not raced" in errors[0]
    assert not any(b.label == "Publish for my class" for b in at.button) and "rows" in labels(at)


def test_a_published_lesson_opens_by_its_hash_and_an_unknown_one_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSTUDIO_LESSONS_DIR", str(tmp_path / "published"))
    data = (ROOT / "sample_data/lessons/image_alone.toml").read_text().replace(
        'title = "', 'title = "Our class: ', 1).encode()
    lesson = publish(data, OFFERED)
    at = page(tmp_path, {"lesson": lesson.name})
    assert any("Our class: " in m for m in texts(at)) and at.query_params["lesson"] == lesson.name
    at = page(tmp_path, {"lesson": "0" * 64})
    assert len(at.warning) == 1 and "no published lesson" in at.warning[0].value
    assert "lesson" not in at.query_params and at.selectbox(key="pg_lesson").value == ""


def test_stopping_a_race_leaves_no_models_or_result(tmp_path):
    at = page(tmp_path, {"rows": "100", "image_size": "16", "folds": "2", "methods": "late_concat"})
    race_button(at).click().run()
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


def test_a_bad_processes_setting_is_named_and_the_race_waits(tmp_path, monkeypatch):
    monkeypatch.setenv("MULTIMODAL_COMPARE_PROCESSES", "four")
    at = page(tmp_path)
    assert any("MULTIMODAL_COMPARE_PROCESSES is 'four'; set it to a number of processes from 1 to 2" in e.value
               for e in at.error)
    assert race_button(at).disabled


def test_checked_knobs_over_a_lesson_keeps_its_values():
    lesson = shipped_lesson("table_alone", OFFERED)
    knobs, warnings = checked_knobs({"rows": 150}, lesson.knobs)
    assert not warnings and knobs["rows"] == 150 and all(knobs[k] == v for k, v in lesson.knobs.items())


def test_a_reload_finds_the_workspaces_race_again_with_its_answers_marked(tmp_path, finished_race):
    root = tmp_path / "playground" / "race-1"
    shutil.copytree(finished_race["root"], root)
    record = {k: finished_race[k] for k in ("setup", "task", "answers")}
    (root / RECORD_FILE).write_text(json.dumps(record))
    at = page(tmp_path, RACED)                       # a new session: nothing in its state but the folder
    reopened = at.session_state["pg_race"]
    assert reopened["root"] == str(root) and reopened["job"].state == "finished"
    assert reopened["lesson"].name == finished_race["lesson"].name
    assert sorted(at.dataframe[-1].value["method"]) == ["image_only", "late_concat", "linear", "tabular_only"]
    marks = " ".join(m.value for m in [*at.success, *at.error, *at.info])
    assert re.search(r"Your answer: .*: (right|wrong|not settled by this race)", marks)
    (root / RECORD_FILE).write_text("{not json")    # a record this version cannot read: no race, no traceback
    assert page(tmp_path, RACED).session_state["pg_race"] is None
