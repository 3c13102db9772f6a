"""Multimodal Studio: the entry point. `streamlit run app.py`."""
from pathlib import Path

import streamlit as st

from multimodal.core.quiet import quiet_tensorflow

PAGES = Path(__file__).parent / "pages"


def run() -> None:
    quiet_tensorflow()   # TensorFlow, imported later by the pages that need it, keeps the log clean
    # An emoji tab icon is drawn by the browser; a ":material/..." one is fetched from a font server
    # (fails offline). The sidebar's material icons use the font bundled with Streamlit.
    st.set_page_config(page_title="Multimodal Studio", page_icon="🧩", layout="wide")
    page = st.navigation([
        st.Page(PAGES / "home.py", title="Home", icon=":material/home:", default=True),
        st.Page(PAGES / "data.py", title="Data", icon=":material/table:"),
        st.Page(PAGES / "model.py", title="Model", icon=":material/account_tree:"),
        st.Page(PAGES / "train.py", title="Train", icon=":material/monitoring:"),
        st.Page(PAGES / "results.py", title="Results", icon=":material/analytics:"),
        st.Page(PAGES / "explain.py", title="Explain", icon=":material/psychology:"),
        st.Page(PAGES / "whatif.py", title="What-if", icon=":material/tune:"),
        st.Page(PAGES / "compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page(PAGES / "playground.py", title="Playground", icon=":material/sports_score:"),
    ])
    page.run()


run()
