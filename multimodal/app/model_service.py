"""Fast predictions and explanations in the server process (docs/ARCHITECTURE.md, "The app").

Two things make a model call on the What-if / Explain / Results pages fast:

1. **The clear_session hook is neutralised.** After every script run and every fragment rerun,
   Streamlit 1.67 calls `streamlit.runtime.scriptrunner.script_runner._clean_problem_modules()`,
   which runs `keras.backend.clear_session()` (plus a full garbage collection) whenever `keras`
   is imported, and closes all matplotlib figures. Clearing Keras' global state after every
   click would throw away compiled graphs (the explainer's `tf.function`s retrace) and can reset
   Keras' state under a model in use by another session's script thread. `install_keras_guard()`
   deliberately replaces that module-level hook with `_clean_problem_modules_keep_keras`, which
   does everything the original does except the Keras part (it still closes matplotlib
   figures). The script runner looks the name up in its module globals at call time, so the
   replacement takes effect for every session from the next run on. It is installed once
   (idempotent) when this module is imported. Training never runs here (it is a worker
   process), so nothing relies on the cleared state. `tests/test_app_results_whatif.py` fails
   if Streamlit renames or removes the hook or stops calling `clear_session` in it, so an
   upgrade forces a fresh look at this decision.

2. **Loaded runs are cached per browser session** in `st.session_state` (run folder -> `Run`,
   whose Keras model loads lazily in safe mode). Nothing goes into `st.cache_resource`: two
   sessions never share a model object, and a session's models go away with the session.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import script_runner

from multimodal.data.dataset import Dataset
from multimodal.explain.report import global_branch_importance, permutation_importance
from multimodal.runs.evaluation import Evaluation, evaluate_run
from multimodal.runs.run import MODEL_FILE, Run, load_run

RUNS_KEY = "_model_service_runs"
MAX_CACHED_RUNS = 6          # per session; the least recently used run is dropped beyond this
GUARD_FLAG = "_multimodal_keeps_keras"

_original_hook = getattr(script_runner, "_clean_problem_modules", None)


def _clean_problem_modules_keep_keras() -> None:
    """Streamlit's post-run cleanup without `keras.backend.clear_session()` (see module docstring)."""
    if "matplotlib.pyplot" in sys.modules:
        try:
            sys.modules["matplotlib.pyplot"].close("all")
        except Exception:  # noqa: BLE001, S110 - like Streamlit: cleanup must never break the app
            pass


setattr(_clean_problem_modules_keep_keras, GUARD_FLAG, True)


def install_keras_guard() -> bool:
    """Replace Streamlit's cleanup hook once; True when the guard is (now or already) in place."""
    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        return False   # Streamlit changed: the hook test flags it, nothing to patch here
    if not getattr(current, GUARD_FLAG, False):
        script_runner._clean_problem_modules = _clean_problem_modules_keep_keras
    return True


def original_hook() -> Callable[[], None] | None:
    """Streamlit's own hook, as it was before the guard (for the tests)."""
    return _original_hook


install_keras_guard()


# ---------------------------------------------------------------- runs per session

def _cache() -> dict:
    if RUNS_KEY not in st.session_state:
        st.session_state[RUNS_KEY] = {}
    return st.session_state[RUNS_KEY]


def _stamp(run_dir: Path) -> float:
    try:
        return (run_dir / MODEL_FILE).stat().st_mtime
    except OSError:
        return 0.0


def get_run(run_dir: Path | str) -> Run:
    """The session's loaded Run for a folder (model loaded once, reloaded if the file changed)."""
    run_dir = Path(run_dir)
    cache, key = _cache(), str(run_dir)
    entry = cache.pop(key, None)
    if entry is None or entry[0] != _stamp(run_dir):
        entry = (_stamp(run_dir), load_run(run_dir))
    cache[key] = entry       # re-inserted last: most recently used
    while len(cache) > MAX_CACHED_RUNS:
        cache.pop(next(iter(cache)))
    return entry[1]


def session_memo(name: str, key: Hashable, compute: Callable[[], Any]) -> Any:
    """Per-session memo for derived results (evaluations, global views), keyed by name and key."""
    store = st.session_state.setdefault("_model_service_memo", {})
    slot = store.setdefault(name, {})
    if key not in slot:
        slot.clear()          # one entry per name: results for an old run or dataset are dropped
        slot[key] = compute()
    return slot[key]


# ---------------------------------------------------------------- derived results, memoised per session

def dataset_key(dataset: Dataset) -> tuple:
    return (str(dataset.csv_path), len(dataset.frame), id(dataset))


def evaluation(run_dir: Path, dataset: Dataset) -> Evaluation:
    """The run's Evaluation on this dataset's validation rows (inputs kept for the global views)."""
    run = get_run(run_dir)
    return session_memo("evaluation", (str(run_dir), _stamp(Path(run_dir)), dataset_key(dataset)),
                        lambda: evaluate_run(run, dataset, keep_inputs=True))


def global_views(run_dir: Path, dataset: Dataset, compute: bool = False) -> dict | None:
    """{"branches": mean |Shapley value| per branch, "permutation": metric drop per column} over the
    validation rows; computed only when `compute` is set (a button), then kept for the session."""
    key = (str(run_dir), _stamp(Path(run_dir)), dataset_key(dataset))
    store = st.session_state.setdefault("_model_service_memo", {}).setdefault("global", {})
    if key not in store and compute:
        run, ev = get_run(run_dir), evaluation(run_dir, dataset)
        started = time.perf_counter()
        branches = global_branch_importance(run, ev.inputs)
        middle = time.perf_counter()
        permutation = permutation_importance(run, ev.inputs, ev.y_true)
        store.clear()
        store[key] = {"branches": branches, "permutation": permutation, "rows": len(ev.rows),
                      "seconds": {"branches": middle - started, "permutation": time.perf_counter() - middle}}
    return store.get(key)
