"""The workspace on the page (docs/ARCHITECTURE.md, "Workspaces"): app.py opens it on every run
(`enter`), tells once that the link is its key, shows a full quota with what to delete, and writes
what to reopen (`leave`). Pages read and write the URL's query through `query` / `write_query`, which
keep the `ws` parameter in place; `share_link` gives a link for others, never carrying it.

The browser sessions that have a workspace open are kept here (`workspace_in_use`): the jobs'
owner check, so a reload keeps a workspace's trainings and a closed tab stops them.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from multimodal.app import state
from multimodal.core import limits
from multimodal.core.errors import DataError
from multimodal.runs import workspaces
from multimodal.runs.workspaces import ID_PARAM, Workspace
from multimodal.train.jobs import owned_jobs

NOTICE_KEY = "_workspace_notice_shown"
TOUCH_KEY = "_workspace_touched"
TOUCH_SECONDS = 60.0       # a session marks its workspace used at most this often
SIZE_SECONDS = 15.0        # a workspace's size is measured again at most this often

# Workspace key -> the browser sessions (ids) that have it open, in this server process.
_open_sessions: dict[str, set[str]] = {}
_open_lock = threading.Lock()


def enter() -> None:
    """app.py, every run before the page: open the workspace, keep its id in the URL, mark it used,
    then the notice (once) and, when full, the quota box."""
    ws = state.workspace()
    if not isinstance(ws, Workspace):
        return
    if st.query_params.get_all(ID_PARAM) != [ws.id]:
        st.query_params[ID_PARAM] = ws.id
    _register(ws.key)
    ss, now = st.session_state, time.time()
    if now - ss.get(TOUCH_KEY, 0.0) > TOUCH_SECONDS:
        ss[TOUCH_KEY] = now
        try:
            ws.touch()
        except OSError:
            pass     # removed meanwhile: the session goes on from memory
    if not ss.get(NOTICE_KEY):
        ss[NOTICE_KEY] = True
        notice(ss.get(state.OPENED_KEY) or {}, page_link({ID_PARAM: ws.id}))
    quota_box(ws)


def leave() -> None:
    """app.py, after the page (also when it stopped or reran): write what to reopen."""
    state.remember()


# ---------------------------------------------------------------- the notice

def key_text(link: str) -> str:
    return (f"**This page's link is the key to your workspace**: your data, runs and comparisons are kept on "
            f"the server under it for {limits.WORKSPACE_DAYS.get()} days after their last use (up to "
            f"{limits.WORKSPACE_MB.get():,} MB). Bookmark it to come back after a reload or another day. Anyone "
            f"with it can open the workspace: to share a setup, use the links the app offers for sharing.\n\n"
            f"`{link}`")


def notice_text(opened: Mapping[str, Any], link: str) -> tuple[str, str] | None:
    """("info" or "warning", the text) of the one notice a session's first run shows, or None (a
    workspace reopened as it was)."""
    problems = [p[0].upper() + p[1:] for p in opened.get("problems", []) if p]
    if opened.get("fresh"):
        if not problems:
            return "info", key_text(link)
        return "warning", f"{'. '.join(problems)}. This is a new, empty workspace. " + key_text(link)
    if problems:
        return "warning", f"Your workspace was reopened, but: {'; '.join(problems)}."
    return None


def notice(opened: Mapping[str, Any], link: str) -> None:
    found = notice_text(opened, link)
    if found is not None:
        kind, text = found
        (st.info if kind == "info" else st.warning)(text, icon=":material/key:")


# ---------------------------------------------------------------- the URL

def query() -> dict[str, str]:
    """The URL's query as the page's own parameters: everything but the workspace id."""
    return {k: v for k, v in st.query_params.to_dict().items() if k != ID_PARAM}


def write_query(params: Mapping[str, str]) -> None:
    """Make the URL's query `params` plus the workspace id (a page rewrites its query whole)."""
    params = {k: v for k, v in params.items() if k != ID_PARAM}
    ws_id = state.workspace_id()
    if query() != params or (ws_id and st.query_params.get_all(ID_PARAM) != [ws_id]):
        st.query_params.from_dict({**params, **({ID_PARAM: ws_id} if ws_id else {})})


def page_link(params: Mapping[str, str]) -> str:
    """This page's address with `params` as its query (the browser's URL when known, else a path)."""
    base = st.context.url or "/"
    return base + ("?" + urlencode(dict(params)) if params else "")


def share_link(params: Mapping[str, str]) -> str:
    """A link to this page with `params` for others to open: never the workspace id."""
    return page_link({k: v for k, v in params.items() if k != ID_PARAM})


# ---------------------------------------------------------------- who has it open

def _register(key: str) -> None:
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not runtime.exists():
        return
    instance = runtime.get_instance()
    with _open_lock:
        sessions = _open_sessions.setdefault(key, set())
        if ctx.session_id not in sessions:   # forget sessions gone meanwhile (a reconnect registers again)
            sessions.intersection_update({s for s in sessions if instance.is_active_session(s)})
            sessions.add(ctx.session_id)


def workspace_in_use(path: Path) -> bool:
    """For the jobs' owner_alive: the workspace still exists and a connected browser session has it
    open. A reload opens it again within a second or two, so its jobs keep running."""
    if not Path(path).is_dir():
        return False
    if not runtime.exists():
        return True
    instance = runtime.get_instance()
    with _open_lock:
        sessions = set(_open_sessions.get(Path(path).name, ()))
    return any(instance.is_active_session(s) for s in sessions)


# ---------------------------------------------------------------- the quota

@st.cache_data(ttl=SIZE_SECONDS, max_entries=256, show_spinner=False)
def _size(path: str) -> int:
    return Workspace("", Path(path)).size_bytes()


def in_use() -> tuple[str, ...]:
    """The workspace's items (Workspace.items names) the session uses now: its dataset's upload."""
    ds = st.session_state.get("dataset")
    rel = state.inside(ds.csv_path, state.session_dir()) if ds is not None else None
    return ("/".join(rel.split("/")[:2]),) if rel and rel.startswith("uploads/") else ()


def quota_problem(adding: int = 0) -> str | None:
    """The workspace's full quota in words (runs/workspaces.quota_problem), counting `adding` bytes
    about to be written; None while there is room (or for a test's plain folder)."""
    ws = state.workspace()
    if not isinstance(ws, Workspace) or not ws.path.is_dir():
        return None
    return workspaces.quota_problem(ws, keep=in_use(), size=ws.size_bytes() + adding)


def check_quota(adding: int = 0) -> None:
    """DataError with quota_problem's message when the workspace is full."""
    if problem := quota_problem(adding):
        raise DataError(problem)


def _delete(ws: Workspace, item: str) -> None:
    ws.delete(item)
    _size.clear()


def quota_box(ws: Workspace) -> None:
    """When the workspace is full: the quota, what it holds and a Delete button for each of its
    largest items (not the dataset in use, nor a running job's folder). The app keeps working."""
    if not ws.path.is_dir() or _size(str(ws.path)) < limits.WORKSPACE_MB.get() * 2**20:
        return
    problem = workspaces.quota_problem(ws, keep=in_use())
    if problem is None:
        return
    st.warning(f"{problem[0].upper()}{problem[1:]}. New uploads and trainings wait until there is room.",
               icon=":material/folder_off:")
    busy = {job.run_dir.relative_to(ws.path).as_posix() for job in owned_jobs(ws.key)
            if job.active and job.run_dir.is_relative_to(ws.path)}
    with st.expander("Free space in this workspace", icon=":material/delete:"):
        for name, size in ws.items()[:8]:
            if name in in_use() or any(b == name or b.startswith(name + "/") for b in busy):
                continue
            left, right = st.columns([4, 1], vertical_alignment="center")
            left.markdown(f"`{name}` · {workspaces.mb(size)}")
            right.button("Delete", key=f"ws_delete_{name}", icon=":material/delete:", on_click=_delete,
                         args=(ws, name))
