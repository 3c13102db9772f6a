"""Results page, "Take the model out": export the run's model in a format of the user's choice, verified
on its validation rows, as a zip download, and its model card as a markdown download
(docs/ARCHITECTURE.md, "Export and model card").

Exports are written inside the session's folder (`exports/`) and kept for the session, keyed by the
run folder, the model file's time and the format, so a rerun of the page does not export again.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import streamlit as st

from multimodal.app import state
from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset
from multimodal.explain.model_card import CARD_FILE, latest_comparison, model_card
from multimodal.runs.export import VerificationRows, checked_format, export_run, verification_rows
from multimodal.runs.export_formats import FORMATS
from multimodal.runs.run import MODEL_FILE, Run

EXPORTS_KEY = "results_exports"       # session state: {(run folder, model time, format): (result, zip bytes)}


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return buffer.getvalue()


def card_for(run: Run, dataset: Dataset, rows: VerificationRows | None = None) -> str:
    rows = rows or verification_rows(run, dataset)
    return model_card(run, dataset, rows.inputs, rows.description,
                      latest_comparison(run, [state.session_dir() / "comparisons", run.dir.parent]))


def export_section(run_dir: Path, run: Run, dataset: Dataset) -> None:
    """The section: format choice, "Export and verify", the zip download and the model card download."""
    st.subheader("Take the model out")
    st.caption("Export the model with all its preprocessing inside: it takes raw column values and images. "
               "Each export is reloaded in its own runtime and checked against this model on the validation rows "
               "before you can download it; one that differs by more than 1e-4 is refused.")
    left, right = st.columns([2, 1])
    fmt = left.radio("Format", list(FORMATS), format_func=lambda f: FORMATS[f].title, horizontal=True,
                     key="results_export_format")
    store = st.session_state.setdefault(EXPORTS_KEY, {})
    key = (str(run_dir), (Path(run_dir) / MODEL_FILE).stat().st_mtime, fmt)
    if key not in store and right.button("Export and verify", icon=":material/ios_share:", key="results_export"):
        out = state.session_dir() / "exports" / f"{run.name}-{fmt}"
        try:
            checked_format(fmt)
            with st.spinner(f"Exporting as {FORMATS[fmt].title} and verifying…"):
                rows = verification_rows(run, dataset)
                result = export_run(run, fmt, out, rows=rows, force=True,
                                    extra_files={CARD_FILE: card_for(run, dataset, rows)})
            store[key] = (result, _zip(out))
        except DataError as exc:
            st.error(str(exc), icon=":material/error:")
    if key in store:
        result, data = store[key]
        st.success(f"{FORMATS[fmt].title}: verified on {result.rows_from}; largest difference "
                   f"{result.max_difference:.2g} ({result.measure}). Model file {result.model_bytes / 1024:,.0f} KB.",
                   icon=":material/verified:")
        for note in result.notes:
            st.caption(f"Note: {note}.")
        st.download_button(f"Download {FORMATS[fmt].title} export (.zip)", data, f"{run.name}-{fmt}.zip",
                           "application/zip", icon=":material/download:", key="results_export_download")
    if st.button("Write the model card", icon=":material/description:", key="results_card"):
        try:
            with st.spinner("Writing the model card…"):
                st.session_state["results_card_text"] = (str(run_dir), card_for(run, dataset))
        except DataError as exc:
            st.error(str(exc), icon=":material/error:")
    card = st.session_state.get("results_card_text")
    if card and card[0] == str(run_dir):
        st.download_button("Download the model card (model_card.md)", card[1], f"{run.name}-{CARD_FILE}",
                           "text/markdown", icon=":material/download:", key="results_card_download")
        with st.expander("Model card"):
            st.markdown(card[1])
