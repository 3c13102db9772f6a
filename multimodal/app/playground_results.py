"""The Playground page's race: started in a worker of the app's queue, its leaderboard drawn live
method by method, each saved model's branch shares beside the generator's true shares, and Stop.

The data and the race live in the session's folder (app/state.py) under `playground/`; a stopped
race keeps only its events (the leaderboard rows that came in), its saved models are removed (the
feature maps stay in the worker's memory). See docs/ARCHITECTURE.md, "The Fusion Playground".
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import streamlit as st

from multimodal.app import state
from multimodal.app.session_jobs import session_alive_check
from multimodal.core.events import read_events
from multimodal.data.playground import read_playground, write_playground
from multimodal.data.playground_knobs import PRESETS
from multimodal.runs.folders import new_run_dir
from multimodal.train.jobs import Job, start_job
from multimodal.train.playground_lessons import lesson_checks
from multimodal.train.playground_race import MODELS_DIR, RACE_FILE, ranked

RACE_KEY = "pg_race"
SHARE_TITLES = {"image": "image", "tabular": "table", "interaction": "interaction"}


def playground_dir() -> Path:
    folder = state.session_dir() / "playground"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def start_race(knobs: dict, methods: list[str], folds: int, preset: str | None, processes: int) -> Job:
    """Write the data into a fresh folder of the session's and queue the race on it."""
    root = new_run_dir(playground_dir(), "race")
    csv = write_playground(knobs, root / "data")
    config = {"data": str(csv), "playground": {"methods": list(methods), "k": folds,
                                               "image_size": int(knobs["image_size"]), "seed": int(knobs["seed"]),
                                               "processes": processes}}
    job = start_job(config, root / "race", owner_alive=session_alive_check())
    st.session_state[RACE_KEY] = {"job": job, "root": str(root), "preset": preset, "task": knobs["task"]}
    return job


def current() -> dict | None:
    return st.session_state.get(RACE_KEY)


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


def leaderboard(events: list[dict], data_dir: Path, metric: str) -> pd.DataFrame:
    """One row per finished method, best first (playground_race.ranked): mean, spread, verdict,
    shares and true shares."""
    models = {e["arch"]: e["run_dir"] for e in events if e.get("type") == "model"}
    start = next(e for e in events if e.get("type") == "start")
    rows = []
    for e in ranked([e for e in events if e.get("type") == "method"], start["archs"], start["higher_is_better"]):
        row = {"method": e["arch"], metric: e["mean"], "± std": e["std"],
               "gain (95% CI)": "" if e["baseline"] else
               f"{e['gain']:+.3f} ({e['low']:+.3f} to {e['high']:+.3f})" if e["low"] is not None else "",
               "verdict": "baseline" if e["baseline"] else e["verdict"]}
        if e["arch"] in models:
            shares = _shares(models[e["arch"]], str(data_dir))
            row.update({f"{SHARE_TITLES[p]} share": shares["model"][p] for p in SHARE_TITLES})
            row.update({f"true {SHARE_TITLES[p]}": shares["truth"][p] for p in SHARE_TITLES})
        rows.append(row)
    return pd.DataFrame(rows)


@st.fragment(run_every=1.0)
def live() -> None:
    """While the race runs: progress, the leaderboard so far and Stop; then the page reruns once."""
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
    board = leaderboard(events, Path(race["root"]) / "data", metric)
    against = next((e["best_baseline"] for e in events if e.get("type") == "method" and not e["baseline"]), None)
    if against:
        st.caption(f"Gains and verdicts are against the best baseline, {against}, paired by fold (as on Compare); "
                   "shares are each model's branch Shapley shares, the true ones the generator's own.")
    if len(board):
        number = st.column_config.NumberColumn(format="%.3f")
        st.dataframe(board, hide_index=True, width="stretch",
                     column_config={c: number for c in board.columns if c not in ("method", "gain (95% CI)", "verdict")})


def finished(race: dict) -> None:
    """The race's final state: the leaderboard, the lesson's checks, or why it ended early."""
    job: Job = race["job"]
    events, _ = read_events(job.run_dir)
    end = next((e for e in reversed(events) if e.get("type") in ("end", "error")), None)
    if end and end.get("type") == "error":
        st.error(end["message"], icon=":material/error:")
    elif not end or end.get("status") == "stopped" or job.state != "finished":
        clean_stopped(race)
        st.warning("The race was stopped; the methods that had finished are shown, nothing else was kept.",
                   icon=":material/stop_circle:")
    show(race, events, running=False)
    result_file = job.run_dir / RACE_FILE
    if result_file.exists() and race["preset"] in PRESETS and race["task"] == "classification":
        result = json.loads(result_file.read_text())
        chance = read_playground(Path(race["root"]) / "data")[1]["chance"]
        checks = lesson_checks(race["preset"], result, chance)
        held = all(c["holds"] for c in checks)
        lines = "\n".join(f"- {':material/check_circle:' if c['holds'] else ':material/cancel:'} {c['claim']}: {c['detail']}"
                          for c in checks)
        (st.success if held else st.warning)(f"**The lesson {'holds' if held else 'does not hold'} on this race.**\n"
                                             f"{lines}")
    if result_file.exists():
        st.caption(f"Race: {json.loads(result_file.read_text())['seconds']:.0f} s.")
