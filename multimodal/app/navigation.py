"""The app's pages, declared once: app.py's st.navigation and every link between pages read PAGES.

A page is named by its key ("train"); `page(key)` is its st.Page, `link(key)` a link to it. See
docs/ARCHITECTURE.md, "The app".

Nothing here is shared between sessions, because the server runs many sessions' scripts at once
in threads (tests/browser/test_concurrent_sessions.py):
- st.Page objects are made per call, i.e. per script run: st.navigation marks the page it returns
  callable (`page._can_be_called = True`) and `page.run()` clears the mark, so one st.Page object
  shared by two sessions lets one session clear the other's mark between its st.navigation and its
  `.run()` ("This page cannot be called directly"; 1-6 of 40-60 sessions opening one page at once).
- whether this run was routed by app.py is a per-thread mark (`_routing`), not the process-wide
  `PagesManager.uses_pages_directory` flag, which the first session to pass switches off for all.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

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


def page(key: str) -> StreamlitPage:
    """A new st.Page of PAGES[key]. Made per call, never cached: an st.Page carries st.navigation's
    per-run "may run" mark, so sharing one between sessions races (see the module docstring)."""
    spec = PAGES[key]
    return st.Page(PAGES_DIR / spec.script, title=spec.title, icon=spec.icon, default=key == next(iter(PAGES)))


# The script thread that is running a page chosen by app.py's st.navigation has `active` set.
_routing = threading.local()
APP_SCRIPT = PAGES_DIR.parent / "app.py"


def run_app() -> None:
    """app.py's body after the page config: the navigation over every page, then the chosen page."""
    chosen = st.navigation([page(key) for key in PAGES])
    _routing.active = True
    try:
        chosen.run()
    finally:
        _routing.active = False


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

    Whether THIS run went through app.py is read from the thread (`_routing`), not from
    `PagesManager.uses_pages_directory`: that flag is one per process, so when several sessions
    open a fresh server at once, the first page to switch it off used to leave the others (already
    routed the legacy way) running their page without app.py. A page run on its own as the main
    script (AppTest.from_file("pages/x.py")) is left alone.
    """
    if getattr(_routing, "active", False):
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
    elif not _main_script_is_app():
        return
    if not st.session_state.get("_navigation_checked"):
        st.session_state["_navigation_checked"] = True
        st.rerun()


def _main_script_is_app() -> bool:
    """Whether this session's main script is app.py (a page outside run_app was then routed by the
    legacy pages/ mode), not a page run on its own."""
    ctx = get_script_run_ctx()
    return ctx is not None and Path(ctx.pages_manager.main_script_path).resolve() == APP_SCRIPT
