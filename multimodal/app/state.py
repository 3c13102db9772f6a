"""Per-session state shared by the pages: the session's folder, dataset, model setup and runs.

Everything a session writes lives under its own temporary folder (`session_dir()`), so two
browser sessions never see each other's uploads or runs, and nothing lands elsewhere.
"""
from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable
from functools import partial
from pathlib import Path

import streamlit as st

from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset, load_dataset
from multimodal.data.sources import SAMPLE_ROOT

PRETRAINED_DIR = "pretrained"   # sample_data/<name>/pretrained/<run>: models shipped with the samples
DEFAULT_SAMPLE = "skin_lesions"


class _SessionFolder:
    """Owns a session's temporary folder and removes it when the session's state is dropped."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="mmstudio-session-"))
        weakref.finalize(self, shutil.rmtree, self.path, True)


def use_app_navigation() -> None:
    """Make sure app.py's st.navigation is in charge, even when a page is opened by its URL.

    Streamlit still honours its legacy `pages/` folder: until some run calls st.navigation, a
    fresh server that first receives /results runs pages/results.py on its own, with an
    auto-generated sidebar and without app.py's page config. Every page calls this first; it
    switches the legacy mode off and, on a session's first run (no click can be lost then),
    reruns so that app.py routes the same URL.
    """
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if not st.session_state.get("_navigation_checked"):
            st.session_state["_navigation_checked"] = True
            st.rerun()


def session_dir() -> Path:
    if "session_folder" not in st.session_state:
        st.session_state.session_folder = _SessionFolder()
    return st.session_state.session_folder.path


def runs_dir() -> Path:
    path = session_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def dataset() -> Dataset | None:
    """The session's dataset; the default sample is loaded on first use so every page works."""
    if "dataset" not in st.session_state:
        try:
            set_dataset(load_dataset(DEFAULT_SAMPLE), DEFAULT_SAMPLE)
        except DataError:
            st.session_state.dataset = None
    return st.session_state.dataset


def require_dataset() -> Dataset:
    """The session's dataset, or a pointer to the Data page and a stop (pages that need data)."""
    ds = dataset()
    if ds is None:
        st.warning("Load a dataset first.")
        st.page_link("pages/data.py", label="Open Data", icon=":material/table:")
        st.stop()
    return ds


def set_dataset(ds: Dataset, source: str) -> None:
    """Switch dataset; the run selection resets because old runs may not fit the new columns."""
    st.session_state.dataset = ds
    st.session_state.dataset_source = source
    st.session_state.pop("selected_run", None)


def dataset_source() -> str | None:
    return st.session_state.get("dataset_source")


def pretrained_runs_dir(ds: Dataset | None = None) -> Path | None:
    """Folder of the ready-made runs shipped for a sample dataset, if it is one."""
    ds = ds or dataset()
    if ds is None:
        return None
    folder = SAMPLE_ROOT / ds.name / PRETRAINED_DIR
    return folder if folder.is_dir() and ds.csv_path.parent == SAMPLE_ROOT / ds.name else None


def run_dirs() -> list[Path]:
    """Runs this session can use: its own finished runs, then the samples' pretrained ones."""
    from multimodal.runs.run import is_run_dir
    own = sorted((p for p in runs_dir().iterdir() if is_run_dir(p)), key=lambda p: p.stat().st_mtime)
    shipped = pretrained_runs_dir()
    pretrained = sorted(p for p in shipped.iterdir() if is_run_dir(p)) if shipped else []
    return own + pretrained


def selected_run_dir() -> Path | None:
    """The run the Results / Explain / What-if pages show: chosen, else the newest available."""
    dirs = run_dirs()
    chosen = st.session_state.get("selected_run")
    if chosen and Path(chosen) in dirs:
        return Path(chosen)
    own = [d for d in dirs if d.is_relative_to(runs_dir())]
    if own:
        return own[-1]
    # Of the shipped runs, open on the fused model: it is the one worth explaining first.
    fused = [d for d in dirs if d.name not in ("image_only", "tabular_only")]
    return (fused or dirs or [None])[0]


def select_run(run_dir: Path) -> None:
    st.session_state.selected_run = str(run_dir)


def session_alive_check() -> Callable[[], bool] | None:
    """For jobs.start_job(owner_alive=...): True while this browser session is connected.

    Streamlit keeps a disconnected session for reconnection but no longer lists it as active, so
    the job manager can stop a training whose tab was closed (after jobs.ORPHAN_SECONDS). None
    outside a served script (bare mode), where there is no runtime to ask."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not runtime.exists():
        return None
    return partial(runtime.get_instance().is_active_session, ctx.session_id)


def default_train_settings(ds: Dataset) -> dict:
    """The Model and Train pages' training settings before the user changes any: the library's,
    with the epoch budget chosen from the data size (training.auto_epochs; early stopping usually
    ends sooner)."""
    from multimodal.train.jobs import TRAIN_DEFAULTS
    from multimodal.train.training import auto_epochs
    n_train = int(len(ds.frame) * (1 - TRAIN_DEFAULTS["val_fraction"]))
    return {**TRAIN_DEFAULTS, "epochs": auto_epochs(n_train, TRAIN_DEFAULTS["batch_size"])}
