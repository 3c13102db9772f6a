"""The workspace's workers: starting a training or a comparison, and the jobs it started.

Every job belongs to the session's workspace (docs/ARCHITECTURE.md, "Workspaces"): its `owner` is
the workspace, so a session opened later on the same link (a reload) finds its jobs again, and its
`owner_alive` says whether a connected browser session has the workspace open, so the job manager
stops a worker nobody has open (after MMSTUDIO_ORPHAN_SECONDS) or whose workspace is gone.
Trainings get a fresh folder in the workspace's runs folder and are listed under
st.session_state["jobs"], the Train page showing the one in "train_focus" (the Compare page's
baselines, started together, also under "baseline_jobs"); comparisons are listed under "cv_jobs".
A session's first look at them adds the workspace's jobs of this server process and, read back
from their folders, its earlier trainings (`_adopt`).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from multimodal.app import state, workspace_view
from multimodal.core.comparison import default_processes
from multimodal.core.errors import DataError
from multimodal.core.events import EVENTS_FILE
from multimodal.data.dataset import Dataset
from multimodal.models.fusion import baseline_names
from multimodal.runs.folders import new_run_dir, reuse_config
from multimodal.runs.workspaces import Workspace
from multimodal.train.jobs import ACTIVE, Job, JobState, owned_jobs, recorded_job, start_job

FOCUS_KEY = "train_focus"    # the run folder the Train page shows
BASELINES_KEY = "baseline_jobs"   # the run folders of the last "Train baselines" click
ADOPTED_KEY = "_jobs_adopted"     # this session has added its workspace's earlier jobs


def session_alive_check() -> Callable[[], bool] | None:
    """For jobs.start_job(owner_alive=...): True while the session's workspace exists and a
    connected browser session has it open (workspace_view.workspace_in_use).

    Streamlit keeps a disconnected session for reconnection but no longer lists it as active, so
    the job manager can stop a training whose tab was closed, while a reload (a new session on the
    same link) keeps it. None outside a served script (bare mode), where there is no runtime to ask."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not runtime.exists():
        return None
    ws = state.workspace()
    if isinstance(ws, Workspace):
        return partial(workspace_view.workspace_in_use, ws.path)
    return partial(runtime.get_instance().is_active_session, ctx.session_id)


def owner() -> str | None:
    """The jobs' owner: the session's workspace (None for a test's plain folder)."""
    ws = state.workspace()
    return ws.key if isinstance(ws, Workspace) else None


def start(config: Mapping, folder: Path, name: str, dataset: Dataset | None = None) -> Job:
    """Queue a worker for `config` in a fresh folder under `folder` (named after `name`), owned by
    the workspace. `dataset`, when loaded already, saves the worker from reading the CSV again. A full
    workspace starts nothing: the job returned has failed, its error naming the quota and what to delete."""
    if problem := workspace_view.quota_problem():
        job = Job(dict(config), Path(folder) / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-not-started")
        job.state, job.error, job.ended = JobState.FAILED, problem, time.time()
        return job
    return start_job(dict(config), new_run_dir(folder, name), dataset=dataset, owner_alive=session_alive_check(),
                     owner=owner())


def _adopt() -> None:
    """Once per session: the workspace's jobs started by an earlier session (before a reload) in
    this server process, and its trainings read back from their folders (after a server restart)."""
    ss = st.session_state
    if ss.get(ADOPTED_KEY):
        return
    ss[ADOPTED_KEY] = True
    if owner() is None:
        return      # a test's plain folder: only the jobs it seeded
    trainings, comparisons = ss.setdefault("jobs", {}), ss.setdefault("cv_jobs", {})
    runs, compared = state.runs_dir(), state.session_dir() / "comparisons"
    live = {str(job.run_dir): job for job in owned_jobs(owner())}
    for key, job in live.items():
        if job.run_dir.parent == compared:
            comparisons.setdefault(key, job)
    found = {str(p) for p in runs.iterdir() if (p / EVENTS_FILE).is_file()}
    found |= {key for key, job in live.items() if job.run_dir.parent == runs}
    for key in sorted(found - set(trainings), key=lambda k: Path(k).name):
        trainings[key] = live.get(key) or recorded_job(Path(key))
    ss["jobs"] = dict(sorted(trainings.items(), key=lambda item: Path(item[0]).name))


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
    """The workspace's trainings by run folder, oldest first."""
    _adopt()
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
    """The workspace's cross-validation workers by output folder, oldest first."""
    _adopt()
    return st.session_state.setdefault("cv_jobs", {})


def start_comparison(config: Mapping, folder: Path, name: str) -> Job:
    job = start(config, folder, name)
    comparison_jobs()[str(job.run_dir)] = job
    return job
