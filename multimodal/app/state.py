"""Per-session state shared by the pages: the session's workspace and uploads, dataset, model setup and runs.

Everything a session writes lives in its workspace (`session_dir()`; runs/workspaces.py), a folder
named by the id the URL carries (`?ws=`), so a reload or a server restart reopens the dataset, the
runs and comparisons, the chosen run and the setup, and two workspaces never see each other's files
(docs/ARCHITECTURE.md, "Workspaces"). `remember()` writes what to reopen into the workspace's
record; `workspace()` reads it back on a session's first run.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from multimodal.app import navigation
from multimodal.core.config import ModelConfig, small_data_settings, train_defaults
from multimodal.core.errors import DataError
from multimodal.core.events import Status
from multimodal.core.tasks import main_metric
from multimodal.data.dataset import Dataset, load_dataset
from multimodal.data.sources import SAMPLE_ROOT, list_samples, resolve_source
from multimodal.data.splits import split_indices
from multimodal.models.fusion import baseline_names
from multimodal.models.proposal import propose_method
from multimodal.runs import workspaces
from multimodal.runs.evaluation import check_compatible, evaluation_rows
from multimodal.runs.run import Run, is_run_dir, list_runs, load_run

PRETRAINED_DIR = "pretrained"   # sample_data/<name>/pretrained/<run>: models shipped with the samples
DEFAULT_SAMPLE = "skin_lesions"
# The Model page's setup for the current dataset: its stored choices, the URL it last wrote, and its
# widgets' state (keys "m_<setting>" and "mp_<method>_<param>" in pages/model.py).
MODEL_SETUP_KEYS = ("model_config", "train_settings", "_model_query_written", "_model_query_warnings")
MODEL_WIDGET_PREFIXES = ("m_", "mp_")
# The session's folder: a runs/workspaces.Workspace (tests may seed any object with a .path).
WORKSPACE_KEY = "session_folder"
OPENED_KEY = "_workspace_opened"     # what opening it found: {"fresh": bool, "problems": [...]}
SAVED_KEY = "_workspace_saved"       # the record last written, so remember() writes only changes


def workspace() -> Any:
    """This session's workspace: on its first run, the one the URL's ?ws= names (its dataset, setup
    and chosen run restored), else a fresh one; what went wrong is kept for the page's notice."""
    ss = st.session_state
    if WORKSPACE_KEY not in ss:
        asked = st.query_params.get_all(workspaces.ID_PARAM)
        opened = workspaces.open_workspace(asked[0] if len(asked) == 1 else "" if not asked else None)
        if len(asked) > 1:
            opened = workspaces.Opened(opened.workspace, True, "the link names several workspaces")
        ss[WORKSPACE_KEY] = opened.workspace
        problems = [opened.problem] if opened.problem else []
        if not opened.fresh and (reason := _restore(opened.workspace)):
            problems.append(reason)
        ss[OPENED_KEY] = {"fresh": opened.fresh, "asked": bool(asked), "problems": problems}
    return ss[WORKSPACE_KEY]


def workspace_id() -> str | None:
    """The id in this session's URL (None when a test seeded a plain folder)."""
    return getattr(workspace(), "id", None)


def session_dir() -> Path:
    return workspace().path


# ---------------------------------------------------------------- what a workspace remembers

def inside(path: Path, root: Path) -> str | None:
    """path relative to root (posix), or None when it is not inside."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except (ValueError, OSError):
        return None


def _dataset_record(ds: Dataset, source: str | None, folder: Path) -> dict | None:
    """Where the dataset comes from (inside the workspace or the samples, never elsewhere) and the
    choices that made it, to load it again."""
    where = {"workspace": inside(ds.csv_path, folder)} if inside(ds.csv_path, folder) else \
        {"samples": inside(ds.csv_path, SAMPLE_ROOT)} if inside(ds.csv_path, SAMPLE_ROOT) else None
    if where is None:
        return None
    shown = source if source in list_samples() else inside(source, folder) if source else None
    return {**where, "name": ds.name, "target": ds.target, "task": ds.task, "roles": dict(ds.roles),
            "ordered_images": ds.ordered_images, "source": shown}


def remember() -> None:
    """Write what to reopen (dataset, setup, chosen run) into the workspace's record when it changed."""
    ss = st.session_state
    ws = ss.get(WORKSPACE_KEY)
    if not isinstance(ws, workspaces.Workspace) or not ws.path.is_dir():
        return
    ds = ss.get("dataset")
    record: dict[str, Any] = {"dataset": _dataset_record(ds, ss.get("dataset_source"), ws.path) if ds else None,
                              "setup": None, "selected_run": None}
    if ss.get("model_config") is not None:
        record["setup"] = {"model": ss.model_config.to_dict(), "train": dict(ss.get("train_settings") or {})}
    if chosen := ss.get("selected_run"):
        record["selected_run"] = inside(chosen, ws.path) or (str(chosen) if is_pretrained(Path(chosen)) else None)
    try:
        text = json.dumps(record, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return
    if text != ss.get(SAVED_KEY):
        previous, _ = ws.read_record()
        try:
            ws.save_record({**previous, **json.loads(text)})
        except OSError:
            return   # a full disk or a removed workspace: the session goes on from memory
        ss[SAVED_KEY] = text


def _restore(ws: workspaces.Workspace) -> str | None:
    """Put a reopened workspace's dataset, setup and chosen run back into the session; the reason
    when some of it cannot be (the rest still opens)."""
    record, problem = ws.read_record()
    data = record.get("dataset")
    if not isinstance(data, dict):
        return problem
    try:
        ds, source = _reopen_dataset(ws.path, data)
    except (DataError, OSError, TypeError, ValueError, KeyError) as exc:
        return f"its dataset could not be loaded again ({exc}); the sample dataset is shown instead"
    st.session_state.dataset, st.session_state.dataset_source = ds, source
    setup = record.get("setup")
    if isinstance(setup, dict):
        try:
            st.session_state.model_config = ModelConfig(**setup["model"])
            st.session_state.train_settings = dict(setup["train"])
        except (TypeError, KeyError, ValueError):
            problem = "its model setup is from another version and was left out; the proposed one is shown"
    chosen = record.get("selected_run")
    if isinstance(chosen, str):
        path = ws.path / chosen if inside(ws.path / chosen, ws.path) else Path(chosen)
        if is_run_dir(path) and (inside(path, ws.path) or is_pretrained(path)):
            st.session_state.selected_run = str(path)
    return problem


def _reopen_dataset(folder: Path, data: dict) -> tuple[Dataset, str]:
    """The dataset a record names, from the workspace's own files or the samples only."""
    base, rel = (folder, data.get("workspace")) if data.get("workspace") else (SAMPLE_ROOT, data.get("samples"))
    if not isinstance(rel, str) or inside(Path(base) / rel, base) is None:
        raise DataError("its record points outside the workspace")
    csv = Path(base) / rel
    if not csv.is_file():
        raise DataError(f"its file {rel} is missing")
    name, source = str(data["name"]), data.get("source")
    roles, ordered = dict(data["roles"]), bool(data.get("ordered_images"))
    if base == SAMPLE_ROOT and name in list_samples():
        shared = sample_dataset(name)
        if shared.roles == roles and shared.target == data["target"] and shared.task == data["task"]:
            return (replace(shared, ordered_images=True) if ordered else shared), str(source or name)
    ds = _reloaded(str(csv), csv.stat().st_mtime, name, str(data["target"]), str(data["task"]),
                   tuple(sorted(roles.items())), ordered)
    shown = source if source in list_samples() else str(folder / source) if isinstance(source, str) and \
        inside(folder / source, folder) else str(csv)
    return ds, shown


@st.cache_resource(max_entries=16, show_spinner=False)
def _reloaded(csv: str, stamp: float, name: str, target: str, task: str, roles: tuple, ordered: bool) -> Dataset:
    """A workspace's dataset loaded again, shared by the sessions that reopen it (read-only, like
    every Dataset in the app): a reload is then a dictionary lookup."""
    return load_dataset(csv, name=name, target=target, task=task, overrides=dict(roles), ordered_images=ordered)


def runs_dir() -> Path:
    path = session_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(data: bytes, name: str) -> Path:
    """Store uploaded bytes in the session's uploads folder under a safe, content-addressed name."""
    folder = session_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(name).suffix.lower()
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,6}", suffix) else ""
    path = folder / f"{hashlib.sha256(data).hexdigest()[:24]}{suffix}"
    if not path.exists():
        path.write_bytes(data)
    return path


def dataset() -> Dataset | None:
    """The session's dataset: its workspace's, else the default sample, loaded on first use so
    every page works."""
    workspace()
    if "dataset" not in st.session_state:
        try:
            set_dataset(sample_dataset(DEFAULT_SAMPLE), DEFAULT_SAMPLE)
        except DataError:
            st.session_state.dataset = None
    return st.session_state.dataset


def sample_dataset(name: str) -> Dataset:
    """A sample dataset as load_dataset gives it, loaded once per server and shared by every session
    (loading checks every image's header: 0.1-0.4 s a session). Shared read-only, like every
    Dataset in the app: pages copy rows before changing them."""
    csv = resolve_source(name)
    return _shared_sample(name, csv.stat().st_mtime)


@st.cache_resource(max_entries=8, show_spinner=False)
def _shared_sample(name: str, stamp: float) -> Dataset:
    return load_dataset(name)


def require_dataset() -> Dataset:
    """The session's dataset, or a pointer to the Data page and a stop (pages that need data)."""
    ds = dataset()
    if ds is None:
        st.warning("Load a dataset first.")
        navigation.link("data", "Open Data")
        st.stop()
    return ds


def set_dataset(ds: Dataset, source: str) -> None:
    """Switch dataset (or its roles, or its ordered-images flag). The run selection and the Model
    page's setup reset: old runs may not fit the new columns, and a method, its column-dependent
    parameters and the data-sized training settings chosen for other data would carry over unseen."""
    st.session_state.dataset = ds
    st.session_state.dataset_source = source
    st.session_state.pop("selected_run", None)
    for key in [k for k in st.session_state if k in MODEL_SETUP_KEYS or k.startswith(MODEL_WIDGET_PREFIXES)]:
        del st.session_state[key]
    remember()


def dataset_source() -> str | None:
    return st.session_state.get("dataset_source")


def pretrained_runs_dir(ds: Dataset | None = None) -> Path | None:
    """Folder of the ready-made runs shipped for a sample dataset, if it is one."""
    ds = ds or dataset()
    if ds is None:
        return None
    folder = SAMPLE_ROOT / ds.name / PRETRAINED_DIR
    return folder if folder.is_dir() and ds.csv_path.parent == SAMPLE_ROOT / ds.name else None


def is_pretrained(run_dir: Path) -> bool:
    """A run shipped with a sample dataset (sample_data/<name>/pretrained/<run>), not the session's."""
    return Path(run_dir).parent.name == PRETRAINED_DIR


def run_dirs() -> list[Path]:
    """Runs this session can use: its own finished runs, then the samples' pretrained ones."""
    own = sorted((p for p in runs_dir().iterdir() if is_run_dir(p)), key=lambda p: p.stat().st_mtime)
    shipped = pretrained_runs_dir()
    pretrained = sorted(p for p in shipped.iterdir() if is_run_dir(p)) if shipped else []
    return own + pretrained


def runs() -> list[Run]:
    """The runs of run_dirs(), loaded (their models load only when used)."""
    shipped = pretrained_runs_dir()
    return list_runs(runs_dir()) + (list_runs(shipped) if shipped else [])


def selected_run_dir() -> Path | None:
    """The run the Results / Explain / What-if pages show: the one chosen, else default_run_dir."""
    dirs = run_dirs()
    chosen = st.session_state.get("selected_run")
    if chosen and Path(chosen) in dirs:
        return Path(chosen)
    return default_run_dir(dirs, dataset())


def run_is_chosen() -> bool:
    """Whether the shown run was chosen (run picker, a completed training, an import), not the default."""
    chosen = st.session_state.get("selected_run")
    return bool(chosen) and Path(chosen) in run_dirs()


def default_run_dir(dirs: list[Path], ds: Dataset | None) -> Path | None:
    """The best completed run that fits the dataset, not the newest (after a Stop that is a partial one).

    Ranked: runs that fit the dataset (its target, task, columns and rows) first; then completed
    runs before ones the user stopped; then fusions before single-branch baselines (a fused model
    is the one worth explaining first); then the best main validation metric (core/tasks.py).
    """
    baselines = baseline_names()

    def rank(run_dir: Path) -> tuple:
        try:
            run = load_run(run_dir)
        except DataError:
            return (True, True, True, math.inf)
        metric, higher_is_better = main_metric(run.task)
        value = run.metrics.get(f"val_{metric}")
        score = float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
        return (not _fits(run, ds), run.summary.get("status") == Status.STOPPED, run.arch in baselines,
                math.inf if score is None else -score if higher_is_better else score)
    return min(dirs, key=rank, default=None)


def _fits(run: Run, ds: Dataset | None) -> bool:
    if ds is None or run.config.get("target") != ds.target or run.task != ds.task:
        return False
    try:
        check_compatible(run, ds)
        evaluation_rows(run, ds)
    except DataError:
        return False
    return True


def set_setup(config: ModelConfig, train: dict) -> None:
    """The Model page's setup (its network and training settings), kept in the workspace."""
    st.session_state.model_config, st.session_state.train_settings = config, train
    remember()


def select_run(run_dir: Path) -> None:
    st.session_state.selected_run = str(run_dir)
    remember()


def training_rows(ds: Dataset, val_fraction: float, seed: int) -> int:
    """The rows a run on this dataset learns from (its seeded split): what small_data_settings reads."""
    return len(split_indices(ds, val_fraction, seed)["train"])


def data_sized_settings(ds: Dataset) -> dict:
    """config.small_data_settings for the rows this dataset's default split trains on: the values
    training would choose for the settings the user leaves open."""
    defaults = train_defaults()
    return small_data_settings(training_rows(ds, defaults["val_fraction"], defaults["seed"]))[0]


def default_train_settings(ds: Dataset) -> dict:
    """The Model and Train pages' training settings before the user changes any: the library's
    (config.train_defaults), with those it leaves to the data chosen for this dataset."""
    defaults = train_defaults()
    return {**defaults, **{k: v for k, v in data_sized_settings(ds).items() if k in defaults}}


def model_config(ds: Dataset) -> ModelConfig:
    """The session's network: the Model page's choice, else the method proposed for the dataset
    with the head's data-sized settings (dropout, L2)."""
    if st.session_state.get("model_config"):
        return st.session_state.model_config
    proposed = ModelConfig(arch=propose_method(ds.features).arch)
    return replace(proposed, **{k: v for k, v in data_sized_settings(ds).items() if hasattr(proposed, k)})


def train_settings(ds: Dataset) -> dict:
    """The session's training settings: the Model page's choices over default_train_settings."""
    return {**default_train_settings(ds), **st.session_state.get("train_settings", {})}
