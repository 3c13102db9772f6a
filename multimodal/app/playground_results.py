"""The Playground page's race: started in a worker of the app's queue, its leaderboard drawn live
method by method (each saved model's branch shares, the generator's true shares once in a caption),
Stop, and a finished lesson race's marks and claims (lesson_view.results).

A race keeps the setup it ran with (lesson, knobs, methods, folds) and the learner's answers; when
the page's setup has moved on, its board is shown as an earlier setup's and nothing is marked on it.

The data and the race live in the workspace (app/state.py) under `playground/`, each race with its
record (RECORD_FILE), so a reload finds the newest race again, running or ended; a stopped
race keeps only its events (the leaderboard rows that came in), its saved models are removed (the
feature maps stay in the worker's memory). See docs/ARCHITECTURE.md, "The Fusion Playground".
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import streamlit as st

from multimodal.app import lesson_view, state
from multimodal.app import playground_query as pq
from multimodal.app import playground_view as view
from multimodal.app.session_jobs import owner, session_alive_check
from multimodal.core.errors import DataError
from multimodal.core.events import read_events
from multimodal.data.lesson_store import find_lesson
from multimodal.data.playground import read_playground, write_playground
from multimodal.runs.folders import new_run_dir
from multimodal.train.jobs import Job, owned_jobs, recorded_job, start_job
from multimodal.train.playground_race import MODELS_DIR, RACE_FILE, ranked

RACE_KEY = "pg_race"
RECORD_FILE = "race_record.json"   # the setup a race ran with and the learner's answers
SHARES_COLUMN = "model shares, on its held-out rows (image / table / interaction)"


def playground_dir() -> Path:
    folder = state.session_dir() / "playground"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def start_race(setup: dict, processes: int, answers: dict | None = None) -> Job:
    """Write the data into a fresh folder of the session's and queue the race on it; the race's
    record keeps the setup it ran with and the learner's answers (copied: they belong to this race)."""
    knobs, methods, folds = setup["knobs"], setup["methods"], setup["folds"]
    root = new_run_dir(playground_dir(), "race")
    csv = write_playground(knobs, root / "data")
    config = {"data": str(csv), "playground": {"methods": list(methods), "k": folds,
                                               "image_size": int(knobs["image_size"]), "seed": int(knobs["seed"]),
                                               "processes": processes}}
    job = start_job(config, root / "race", owner_alive=session_alive_check(), owner=owner())
    record = {"setup": pq.race_setup(setup), "task": knobs["task"],
              "answers": {k: list(v) for k, v in answers.items() if k != "lesson"} if answers else None}
    (root / RECORD_FILE).write_text(json.dumps(record))   # the race found again after a reload
    st.session_state[RACE_KEY] = {"job": job, "root": str(root), "lesson": setup["lesson"], **record}
    return job


def _reopened() -> dict | None:
    """The workspace's newest race, found again after a reload or a server restart: its live job
    when it still runs in this server, else read back from its folder (train/jobs.recorded_job)."""
    records = sorted(playground_dir().glob(f"*/{RECORD_FILE}"), key=lambda p: p.stat().st_mtime)
    if not records:
        return None
    root = records[-1].parent
    try:
        record = json.loads(records[-1].read_text())
        key = record["setup"]["lesson"]
    except (OSError, ValueError, KeyError, TypeError):
        return None   # a record this version cannot read: the page starts without a race
    live = {str(job.run_dir): job for job in owned_jobs(owner())}
    job = live.get(str(root / "race")) or recorded_job(root / "race")
    try:
        lesson = find_lesson(key, view.race_methods()) if key else None
    except DataError:
        lesson = None   # the lesson's file is gone: the leaderboard still shows
    return {"job": job, "root": str(root), "lesson": lesson, **record}


def has_result(race: dict) -> bool:
    return (race["job"].run_dir / RACE_FILE).exists()


def same_setup(race: dict, setup: dict) -> bool:
    """The race ran with the page's current setup (so its answers may be marked on it)."""
    return race.get("setup") == pq.race_setup(setup)


def current() -> dict | None:
    if RACE_KEY not in st.session_state:
        st.session_state[RACE_KEY] = _reopened()
    return st.session_state[RACE_KEY]


def clean_stopped(race: dict) -> None:
    """A race that ended without its result file leaves no models behind (its feature maps never
    touch the disk)."""
    out = Path(race["root"]) / "race"
    if not (out / RACE_FILE).exists():
        shutil.rmtree(out / MODELS_DIR, ignore_errors=True)


@st.cache_data(max_entries=64, show_spinner=False)
def _shares(run_dir: str, data_dir: str) -> dict:
    # lazy: TensorFlow loads in the server only once a model is there to explain (as model_service does)
    from multimodal.explain.branch_shares import method_shares
    return method_shares(Path(run_dir), Path(data_dir))


@st.cache_data(max_entries=16, show_spinner=False)
def truth(data_dir: str) -> tuple[dict, int]:
    """(the data's true shares, its rows): explain/branch_shares.generator_shares, as the preview's."""
    # lazy: branch_shares imports TensorFlow, loaded only once a race has data to show
    from multimodal.explain.branch_shares import generator_shares
    knobs, _, lat = read_playground(Path(data_dir))
    return generator_shares(knobs, lat), len(lat["z_image"])


def leaderboard(events: list[dict], data_dir: Path, metric: str) -> pd.DataFrame:
    """One row per finished method, best first (playground_race.ranked): mean, spread, the verdict
    against the best baseline (named in the column), and the model's shares."""
    models = {e["arch"]: e["run_dir"] for e in events if e.get("type") == "model"}
    start = next(e for e in events if e.get("type") == "start")
    against = _against(events)
    rows = []
    for e in ranked([e for e in events if e.get("type") == "method"], start["archs"], start["higher_is_better"]):
        row = {"method": e["arch"], metric: e["mean"], "± std": e["std"],
               _verdict_column(against): "baseline" if e["baseline"] else (e["verdict"] or "")}
        row[SHARES_COLUMN] = view.shares_text(_shares(models[e["arch"]], str(data_dir))["model"]) \
            if e["arch"] in models else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _against(events: list[dict]) -> str | None:
    return next((e["best_baseline"] for e in events if e.get("type") == "method" and not e["baseline"]), None)


def _verdict_column(against: str | None) -> str:
    return f"vs best baseline ({against})" if against else "vs best baseline"


def live() -> None:
    """While the race runs: progress, the leaderboard so far and Stop; then the page reruns once.
    pages/playground.py runs it as a fragment every second, under a pause toggle."""
    race = current()
    job: Job = race["job"]
    if job.poll() not in ("queued", "running", "stopping"):
        st.rerun()
    events, _ = read_events(job.run_dir)
    show(race, events, running=True)
    if job.state != "stopping" and st.button("Stop the race", icon=":material/stop:", key="pg_stop"):
        job.stop()


def show(race: dict, events: list[dict], running: bool) -> None:
    start = next((e for e in events if e.get("type") == "start"), None)
    job: Job = race["job"]
    if start is None:
        st.caption(f"Race: {job.status_text()}")
        return
    metric = start["metric"].removeprefix("val_")
    folds = [e for e in events if e.get("type") == "fold"]
    total = len(start["archs"]) * start["k"]
    models = sum(e.get("type") == "model" for e in events)
    text = (f"{len(folds)} of {total} folds trained" if len(folds) < total
            else f"cross-validation done; explaining: {models} of {len(start['archs'])} models")
    if running:
        st.progress(min(1.0, (len(folds) + models) / (total + len(start["archs"]))), text=text)
    data_dir = Path(race["root"]) / "data"
    board = leaderboard(events, data_dir, metric)
    shares, rows = truth(str(data_dir))
    st.caption(f"{view.truth_caption(shares, rows)} Each model's shares are its branch Shapley shares on its "
               "held-out rows.")
    if len(board):
        number = st.column_config.NumberColumn(format="%.3f")
        st.dataframe(board, hide_index=True, width="stretch",
                     column_config={metric: number, "± std": number})
    methods = [e for e in events if e.get("type") == "method" and not e["baseline"] and e.get("sentence")]
    if methods:
        with st.expander("How the verdicts were reached"):
            st.markdown(f"Each method against the best baseline, {_against(events)}, paired by fold (as on "
                        "Compare):\n\n" + "\n".join(f"- **{e['arch']}**: {e['sentence']}" for e in methods))


def finished(race: dict, setup: dict) -> None:
    """The race's final state: the leaderboard (labelled when the page's setup has moved on), the
    lesson's marks and claims, or why it ended early."""
    job: Job = race["job"]
    events, _ = read_events(job.run_dir)
    end = next((e for e in reversed(events) if e.get("type") in ("end", "error")), None)
    if end and end.get("type") == "error":
        st.error(end["message"], icon=":material/error:")
    elif not end or end.get("status") == "stopped" or job.state != "finished":
        clean_stopped(race)
        st.warning("The race was stopped; the methods that had finished are shown, nothing else was kept.",
                   icon=":material/stop_circle:")
    current = same_setup(race, setup)
    if not current and race.get("setup"):
        lesson = race.get("lesson")
        st.info(f"Leaderboard of an earlier setup: {pq.describe_setup(race['setup'], lesson.title if lesson else None)}"
                " — race again for this one.", icon=":material/history:")
    show(race, events, running=False)
    result_file = job.run_dir / RACE_FILE
    if not result_file.exists():
        return
    result = json.loads(result_file.read_text())
    st.caption(f"Race: {result['seconds']:.0f} s.")
    if current and race.get("lesson") is not None:
        lesson_view.results(race, result, truth(str(Path(race["root"]) / "data"))[0])
