"""The Results page's 'Import a model (.keras)' uploader: a model trained elsewhere becomes one of
the session's runs (runs.importing.import_model) and the selected one."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from multimodal.app import model_service, state
from multimodal.core.errors import DataError
from multimodal.runs.importing import import_model, max_model_bytes

OUTCOMES_KEY = "_imported_models"   # (saved upload, dataset) -> ("ok", run folder) or ("error", message)


def import_model_uploader(key: str = "import_model") -> None:
    """The upload is stored under the session's folder, imported and selected; a refusal is an
    st.error and changes nothing. Each upload is imported once: the outcome is remembered while
    the file stays in the uploader."""
    ds = state.dataset()
    if ds is None:
        return
    max_bytes = max_model_bytes()
    limit_mb = max(1, max_bytes // 2**20)
    upload = st.file_uploader("Import a model (.keras)", type=["keras"], key=key, max_upload_size=limit_mb,
                              help=f"A model downloaded from the Train page, for the loaded dataset's columns "
                                   f"(up to {limit_mb} MB). It is loaded with Keras safe mode: Lambda layers "
                                   "and custom code are refused.")
    if upload is None:
        return
    data = upload.getvalue()
    if len(data) > max_bytes:   # the browser enforces the limit too; a script must not rely on it
        st.error(f"model file '{upload.name}' is {len(data) / 2**20:.0f} MB (limit {limit_mb} MB); "
                 "upload a smaller model", icon=":material/error:")
        return
    saved = state.save_upload(data, upload.name)
    outcomes = st.session_state.setdefault(OUTCOMES_KEY, {})
    token = (str(saved), model_service.dataset_key(ds))
    if token not in outcomes:
        try:
            with st.spinner(f"Checking and evaluating {upload.name}…"):
                run = import_model(saved, ds, state.runs_dir(), name=upload.name)
            outcomes[token] = ("ok", str(run.dir))
            state.select_run(run.dir)
        except DataError as exc:
            outcomes[token] = ("error", str(exc))
        finally:
            saved.unlink(missing_ok=True)   # the run folder keeps its own copy of an accepted model
    kind, detail = outcomes[token]
    if kind == "error":
        st.error(detail, icon=":material/error:")
    else:
        st.success(f"Imported {upload.name} as run {Path(detail).name}.", icon=":material/check_circle:")
