"""This browser session's workers: starting a training or a comparison, and the jobs it started.

Every job is owned by the session that started it (`owner_alive`), so the job manager stops a
worker whose tab was closed (after MMSTUDIO_ORPHAN_SECONDS). Trainings get a fresh folder in the
session's runs folder and are listed under st.session_state["jobs"], the Train page showing the
one in "train_focus" (the Compare page's baselines, started together, also under
"baseline_jobs"); comparisons are listed under "cv_jobs".
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from multimodal.app import state
from multimodal.core.comparison import default_processes
from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset
from multimodal.models.fusion import baseline_names
from multimodal.runs.folders import new_run_dir, reuse_config
from multimodal.train.jobs import ACTIVE, Job, start_job

FOCUS_KEY = "train_focus"    # the run folder the Train page shows
BASELINES_KEY = "baseline_jobs"   # the run folders of the last "Train baselines" click


def session_alive_check() -> Callable[[], bool] | None:
    """For jobs.start_job(owner_alive=...): True while this browser session is connected.

    Streamlit keeps a disconnected session for reconnection but no longer lists it as active, so
    the job manager can stop a training whose tab was closed. None outside a served script (bare
    mode), where there is no runtime to ask."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not runtime.exists():
        return None
    return partial(runtime.get_instance().is_active_session, ctx.session_id)


def start(config: Mapping, folder: Path, name: str, dataset: Dataset | None = None) -> Job:
    """Queue a worker for `config` in a fresh folder under `folder` (named after `name`), owned by
    this session. `dataset`, when loaded already, saves the worker from reading the CSV again."""
    return start_job(dict(config), new_run_dir(folder, name), dataset=dataset, owner_alive=session_alive_check())


def comparison_processes() -> int | None:
    """How many processes this server's comparisons and races use (core/comparison.default_processes);
    None, with the reason shown on the page, when $MULTIMODAL_COMPARE_PROCESSES holds a bad value."""
    try:
        return default_processes()
    except DataError as exc:
        st.error(f"{exc} (and restart the app).", icon=":material/error:")
        return None


def active(jobs: Iterable[Job]) -> list[Job]:
    """The jobs still queued, running or stopping (polling advances every job's state)."""
    return [job for job in jobs if job.poll() in ACTIVE]


# ---------------------------------------------------------------- trainings

def training_jobs() -> dict[str, Job]:
    """This session's trainings by run folder, oldest first."""
    return st.session_state.setdefault("jobs", {})


def start_training(config: Mapping, dataset: Dataset | None = None, *, keep_watched: bool = False) -> Job:
    """Queue a training in the session's runs folder; the Train page shows it from now on (with
    keep_watched, only if the training it shows has ended)."""
    job = start(config, state.runs_dir(), config["model"]["arch"], dataset)
    trainings = training_jobs()
    trainings[str(job.run_dir)] = job
    watched = st.session_state.get(FOCUS_KEY)
    if not (keep_watched and watched in trainings and trainings[watched].active):
        st.session_state[FOCUS_KEY] = str(job.run_dir)
    return job


def watched_training() -> Job | None:
    """The training the Train page shows: the one last watched, else the newest. Kept under a plain
    key, not a widget key: Streamlit drops widget state when the page is left, and coming back
    must show the run the user was watching."""
    trainings = training_jobs()
    if not trainings:
        return None
    if st.session_state.get(FOCUS_KEY) not in trainings:
        st.session_state[FOCUS_KEY] = list(trainings)[-1]
    return trainings[st.session_state[FOCUS_KEY]]


def watch_training(run_dir: str) -> None:
    st.session_state[FOCUS_KEY] = run_dir


def baselines_training() -> bool:
    """Whether one of this session's baselines (image_only, tabular_only, linear, ...) is still
    queued or training."""
    return any(job.arch in baseline_names() for job in active(training_jobs().values()))


def start_baselines(run_config: Mapping, baselines: Iterable[str]) -> list[Job]:
    """Train `baselines` (the Compare page passes every one the run's data allows) with the
    settings of a saved run (its config.json): one training job each, remembered as one group."""
    started = [start_training(reuse_config(run_config, arch), keep_watched=True) for arch in baselines]
    st.session_state[BASELINES_KEY] = [str(job.run_dir) for job in started]
    return started


def baseline_jobs() -> list[Job]:
    """The trainings the last "Train baselines" click started, in the order they were queued."""
    trainings = training_jobs()
    return [trainings[run_dir] for run_dir in st.session_state.get(BASELINES_KEY, []) if run_dir in trainings]


# ---------------------------------------------------------------- cross-validated comparisons

def comparison_jobs() -> dict[str, Job]:
    """This session's cross-validation workers by output folder, oldest first."""
    return st.session_state.setdefault("cv_jobs", {})


def start_comparison(config: Mapping, folder: Path, name: str) -> Job:
    job = start(config, folder, name)
    comparison_jobs()[str(job.run_dir)] = job
    return job
