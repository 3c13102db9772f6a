"""Multimodal Studio: the entry point. `streamlit run app.py`."""
import streamlit as st

from multimodal.app import workspace_view
from multimodal.app.accessibility import inject_styles
from multimodal.app.navigation import run_app
from multimodal.app.warmup import import_in_background, preload_enabled
from multimodal.core.quiet import quiet_tensorflow
from multimodal.train.jobs import prepare_worker


def run() -> None:
    quiet_tensorflow()   # TensorFlow, imported later by the pages that need it, keeps the log clean
    # An emoji tab icon is drawn by the browser; a ":material/..." one is fetched from a font server
    # (fails offline). The sidebar's material icons use the font bundled with Streamlit.
    st.set_page_config(page_title="Multimodal Studio", page_icon="🧩", layout="wide")
    inject_styles()          # a visible keyboard focus ring on every page (multimodal/app/accessibility.py)
    import_in_background()   # TensorFlow loads while the first pages render (multimodal/app/warmup.py)
    if preload_enabled():    # the next job's worker too, imports done (multimodal/train/warm_worker.py)
        prepare_worker()
    workspace_view.enter()   # the workspace the URL names (?ws=), reopened; docs/ARCHITECTURE.md, "Workspaces"
    try:
        run_app()
    finally:
        workspace_view.leave()   # what to reopen after a reload: dataset, setup, chosen run


run()
