"""Per-session state shared by the pages: the session's folder and uploads, dataset, model setup and runs.

Everything a session writes lives under its own temporary folder (`session_dir()`), so two
browser sessions never see each other's uploads or runs, and nothing lands elsewhere.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import weakref
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from multimodal.core.config import ModelConfig, auto_epochs, default_arch, train_defaults
from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset, load_dataset
from multimodal.data.sources import SAMPLE_ROOT
from multimodal.runs.run import Run, is_run_dir, list_runs

PRETRAINED_DIR = "pretrained"   # sample_data/<name>/pretrained/<run>: models shipped with the samples
DEFAULT_SAMPLE = "skin_lesions"


class _SessionFolder:
    """Owns a session's temporary folder and removes it when the session's state is dropped."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="mmstudio-session-"))
        weakref.finalize(self, shutil.rmtree, self.path, True)


def use_app_navigation() -> None:
    """Make sure app.py's st.navigation is in charge, even when a page is opened by its URL.

    The one home of Streamlit's legacy `pages/` workaround; every page calls this first. Streamlit
    still honours the legacy `pages/` folder: until some run calls st.navigation, a fresh server
    that first receives /results runs pages/results.py on its own, with an auto-generated sidebar
    and without app.py's page config. This switches the legacy mode off and, on a session's first
    run (no click can be lost then), reruns so that app.py routes the same URL.
    """
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
    """The run the Results / Explain / What-if pages show: chosen, else the newest available."""
    dirs = run_dirs()
    chosen = st.session_state.get("selected_run")
    if chosen and Path(chosen) in dirs:
        return Path(chosen)
    own = [d for d in dirs if d.is_relative_to(runs_dir())]
    if own:
        return own[-1]
    # Of the shipped runs, open on the fused model: it is the one worth explaining first.
    # lazy: the fusion registry imports Keras, and the light Home and Data pages import this module
    from multimodal.models.fusion import baseline_names
    fused = [d for d in dirs if d.name not in baseline_names()]
    return (fused or dirs or [None])[0]


def select_run(run_dir: Path) -> None:
    st.session_state.selected_run = str(run_dir)


def default_train_settings(ds: Dataset) -> dict:
    """The Model and Train pages' training settings before the user changes any: the library's
    (config.train_defaults), with the epoch budget chosen from the data size (training.auto_epochs;
    early stopping usually ends sooner)."""
    defaults = train_defaults()
    n_train = int(len(ds.frame) * (1 - defaults["val_fraction"]))
    return {**defaults, "epochs": auto_epochs(n_train, defaults["batch_size"])}


def model_config(ds: Dataset) -> ModelConfig:
    """The session's network: the Model page's choice, else the default for the dataset's columns."""
    spec = ds.features
    return st.session_state.get("model_config") or ModelConfig(
        arch=default_arch(len(spec.image_cols), len(spec.tabular_cols)))


def train_settings(ds: Dataset) -> dict:
    """The session's training settings: the Model page's choices over default_train_settings."""
    return {**default_train_settings(ds), **st.session_state.get("train_settings", {})}
