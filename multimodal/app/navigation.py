"""The app's pages, declared once: app.py's st.navigation and every link between pages read PAGES.

A page is named by its key ("train"); `page(key)` is its st.Page, `link(key)` a link to it. See
docs/ARCHITECTURE.md, "The app".
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager

PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"


@dataclass(frozen=True)
class PageSpec:
    """One page: its script in pages/, its title in the navigation and its Material icon."""

    script: str
    title: str
    icon: str


# In navigation order; the first is the default page.
PAGES: dict[str, PageSpec] = {
    "home": PageSpec("home.py", "Home", ":material/home:"),
    "data": PageSpec("data.py", "Data", ":material/table:"),
    "model": PageSpec("model.py", "Model", ":material/account_tree:"),
    "train": PageSpec("train.py", "Train", ":material/monitoring:"),
    "results": PageSpec("results.py", "Results", ":material/analytics:"),
    "explain": PageSpec("explain.py", "Explain", ":material/psychology:"),
    "whatif": PageSpec("whatif.py", "What-if", ":material/tune:"),
    "compare": PageSpec("compare.py", "Compare", ":material/compare_arrows:"),
    "playground": PageSpec("playground.py", "Playground", ":material/sports_score:"),
}


@cache
def page(key: str) -> StreamlitPage:
    """The st.Page of PAGES[key] (made once per server process; st.Page objects hold no session state)."""
    spec = PAGES[key]
    return st.Page(PAGES_DIR / spec.script, title=spec.title, icon=spec.icon, default=key == next(iter(PAGES)))


def run_app() -> None:
    """app.py's body after the page config: the navigation over every page, then the chosen page."""
    st.navigation([page(key) for key in PAGES]).run()


def link(key: str, label: str | None = None, icon: str | None = None, container=st) -> None:
    """A link to PAGES[key]: its title and icon unless the caller words it for its place."""
    spec = PAGES[key]
    container.page_link(page(key), label=label or spec.title, icon=icon or spec.icon)


def enter_through_app() -> None:
    """Make sure app.py's st.navigation is in charge, even when a page is opened by its URL.

    Every page calls this FIRST, before its other imports. Streamlit still honours the legacy
    `pages/` folder: until some run calls st.navigation, a fresh server that first receives
    /results runs pages/results.py on its own, with the folder's file names as the sidebar and
    without app.py (its page config and its quiet TensorFlow import). This switches the legacy
    mode off and, on a session's first run (no click can be lost then), reruns at once, before the
    page imports anything heavy, so app.py routes the same URL.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if not st.session_state.get("_navigation_checked"):
            st.session_state["_navigation_checked"] = True
            st.rerun()
