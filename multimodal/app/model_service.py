"""Fast predictions and explanations in the server process (docs/ARCHITECTURE.md, "The app").

Three things make a model call on the What-if / Explain / Results pages fast:

1. **The clear_session hook is neutralised** (`app/keras_guard.py`). After every script run and every fragment rerun,
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

2. **Loaded runs are shared by every session.** `get_run` returns one `Run` per run folder and
   model-file version from `st.cache_resource`: the model is loaded once, its predict function
   traced once (the explainer's graphs are cached with the model, so they too are traced once),
   and every session's script thread calls that same model. This is safe because the server
   only ever reads a model: nothing here trains or changes weights (training is a worker
   process), TensorFlow graph functions may be called from several threads at once, and a new
   model file (a new mtime) is a new cache entry. A session's own runs live in its own folder,
   so their keys never meet another session's.

3. **Results that depend only on a model and its inputs are computed once**, whichever session
   asks: a row's explanation, a What-if prediction with its sweep (`shared_result`) and a run's
   evaluation on a dataset (`evaluation`). Keys are content fingerprints of the inputs and the
   dataset (`inputs_key`, `dataset_key`), never object ids, so equal inputs find the answer and
   a rerun that did not change them (a slider elsewhere on the page) costs nothing. Cached
   values are shared objects: callers only read them.
"""
from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from multimodal.app.keras_guard import install_keras_guard
from multimodal.data.dataset import Dataset
from multimodal.explain.attributions import attention_routing
from multimodal.explain.report import explain_row, global_branch_importance, permutation_importance
from multimodal.runs.evaluation import Evaluation, evaluate_run
from multimodal.runs.run import MODEL_FILE, Run, load_run, predict

# Server-wide bounds of the shared caches (least recently used entries go first). An evaluation
# keeps its rows' inputs, images included, so few are kept.
MAX_SHARED_RUNS = 16
MAX_SHARED_RESULTS = 512      # explanations and What-if predictions: a few KB each
MAX_EVALUATIONS = 4
DATASET_KEY = "_model_service_dataset_key"
GLOBAL_VIEWS_KEY = "_model_service_global_views"
install_keras_guard()
# Move everything alive now (TensorFlow, Keras, Plotly, pandas: modules that stay for the process's
# life) out of the garbage collector's sight, so Python's own full collections stay cheap (see
# .streamlit/config.toml, runner.postScriptGC). Objects created later are collected as usual.
gc.freeze()


# ---------------------------------------------------------------- runs shared by all sessions

def _stamp(run_dir: Path) -> float:
    try:
        return (run_dir / MODEL_FILE).stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(max_entries=MAX_SHARED_RUNS, show_spinner=False)
def _loaded_run(run_dir: str, stamp: float) -> Run:
    """A run with its model loaded and its predict function traced (Streamlit runs this once per
    key, holding other sessions that ask for the same key until it is done)."""
    run = load_run(Path(run_dir))
    run.model  # noqa: B018 - loads now; a damaged model file raises DataError (nothing is cached)
    try:
        background = run.background()
    except OSError:
        return run     # no background rows saved: the first prediction traces instead
    predict(run, {k: v[:1] for k, v in background.items()})   # traces the one predict graph
    return run


def get_run(run_dir: Path | str) -> Run:
    """The shared, read-only Run of a folder (model loaded once; reloaded when the file changes)."""
    run_dir = Path(run_dir)
    return _loaded_run(str(run_dir), _stamp(run_dir))


# ---------------------------------------------------------------- results shared by all sessions

def inputs_key(inputs: dict[str, np.ndarray]) -> str:
    """Content fingerprint of model inputs: equal arrays give equal keys (text cells by value,
    not by the object pointers an object array holds)."""
    digest = hashlib.sha1()
    for name in sorted(inputs):
        values = np.asarray(inputs[name])
        digest.update(f"{name}|{values.dtype.str}|{values.shape}|".encode())
        if values.dtype == object:
            digest.update("\x1f".join(map(str, values.ravel())).encode())
        else:
            digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


@st.cache_resource(max_entries=MAX_SHARED_RESULTS, show_spinner=False)
def _result(kind: str, run_dir: str, stamp: float, key: Hashable, _compute: Callable[[], Any]) -> Any:
    return _compute()


def shared_result(kind: str, run_dir: Path, key: Hashable, compute: Callable[[], Any]) -> Any:
    """compute() once for (kind, run folder and version, key), kept for every session (read-only)."""
    run_dir = Path(run_dir)
    return _result(kind, str(run_dir), _stamp(run_dir), key, compute)


def explanation(run_dir: Path, inputs: dict[str, np.ndarray], output_index: int | None = None) -> dict:
    """explain_row for one row of raw inputs, computed once per model and inputs."""
    run = get_run(run_dir)
    return shared_result("explanation", run_dir, (inputs_key(inputs), output_index),
                         lambda: explain_row(run, inputs, output_index=output_index))


def routing(run_dir: Path, inputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Where an attention head looked for one row (branch -> weight), computed once per model and
    inputs. ValueError when the model has no attention layer to read."""
    run = get_run(run_dir)
    weights = shared_result("routing", run_dir, inputs_key(inputs), lambda: attention_routing(run.model, inputs))
    return {branch: float(values[0]) for branch, values in weights.items()}


def dataset_key(dataset: Dataset) -> str:
    """Content fingerprint of a dataset (frame, roles, target, task, image folder), computed once
    per session and dataset: two sessions that loaded the same data share evaluations."""
    memo = st.session_state.get(DATASET_KEY)
    if memo is None or memo[0] is not dataset:
        frame_hash = pd.util.hash_pandas_object(dataset.frame, index=True).to_numpy()
        digest = hashlib.sha1(frame_hash.tobytes())
        digest.update(repr((list(dataset.frame.columns), sorted(dataset.roles.items()), dataset.target,
                            dataset.task, str(dataset.root))).encode())
        memo = st.session_state[DATASET_KEY] = (dataset, digest.hexdigest())
    return memo[1]


@st.cache_resource(max_entries=MAX_EVALUATIONS, show_spinner=False)
def _evaluation(run_dir: str, stamp: float, data_key: str, _dataset: Dataset) -> Evaluation:
    return evaluate_run(get_run(run_dir), _dataset, keep_inputs=True)


def evaluation(run_dir: Path, dataset: Dataset) -> Evaluation:
    """The run's Evaluation on this dataset's validation rows (inputs kept for the global views)."""
    run_dir = Path(run_dir)
    return _evaluation(str(run_dir), _stamp(run_dir), dataset_key(dataset), dataset)


def global_views(run_dir: Path, dataset: Dataset, compute: bool = False) -> dict | None:
    """{"branches": mean |Shapley value| per branch, "permutation": metric drop per column} over the
    validation rows; computed only when `compute` is set (a button), then kept for the session."""
    key = (str(run_dir), _stamp(Path(run_dir)), dataset_key(dataset))
    store = st.session_state.setdefault(GLOBAL_VIEWS_KEY, {})
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
