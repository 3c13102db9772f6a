"""A minimal client of Streamlit's own websocket protocol: many app sessions without a browser.

One `ProtocolSession` is one browser tab's worth of Streamlit session: it connects to
ws://HOST:PORT/_stcore/stream, sends `BackMsg.rerun_script` (a `ClientState`) as the frontend does,
and reads `ForwardMsg`s until the run's `script_finished`. Used by
tests/browser/test_concurrent_sessions.py and bench/bench_load.py.

    async with ProtocolSession(port) as s:
        opened = await s.open("whatif")                  # like loading http://HOST:PORT/whatif
        assert opened.ok, opened.errors
        wid = s.widget_id("number_input")                # first number input the page drew
        edited = await s.set_widget(wid, 3)              # like typing 3 + Enter in it
        print(opened.seconds, edited.seconds)

What the frontend sends (and this client copies): on a page load, `rerun_script` with the URL's
query string (without "?"), `page_name` = the URL path below the app root ("whatif"; "" for the
default page) and an empty `page_script_hash` (the server resolves the name through
st.navigation); on a widget edit, the changed `WidgetState` and the `page_script_hash` the
server's `navigation` message named. A run that ends FINISHED_EARLY_FOR_RERUN (an st.rerun) is
followed by another run, so `_run` waits for a run that really ends; fragment-only runs are ignored.

An error is any `exception` element (what the app shows as "This app has encountered an error"),
a `session_event.script_compilation_exception`, or a `page_not_found`.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect  # installed with streamlit (its own dependency)

RUN_TIMEOUT = 120.0
_DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


@dataclass
class RunResult:
    """One script run as the client saw it, from sending the rerun to its script_finished."""
    seconds: float
    errors: list[str] = field(default_factory=list)
    finished: bool = False          # False: the connection closed or RUN_TIMEOUT passed first
    elements: int = 0               # elements (deltas with a new element) received
    nav_titles: list[str] = field(default_factory=list)   # the sidebar's pages after the run

    @property
    def ok(self) -> bool:
        return self.finished and not self.errors


class ProtocolSession:
    """One Streamlit session over the websocket protocol (see the module docstring)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = RUN_TIMEOUT):
        self.url = f"ws://{host}:{port}/_stcore/stream"
        self.timeout = timeout
        self.ws = None
        self.page_script_hash = ""     # from the server's latest `navigation` message
        self.nav_titles: list[str] = []   # its pages' titles, as the sidebar lists them
        self.query_string = ""
        self.widgets: list[tuple[str, str, object]] = []   # (element type, widget id, element proto) of the last run

    async def __aenter__(self) -> ProtocolSession:
        # subprotocols: the frontend's first entry selects "streamlit" (the others carry tokens).
        self.ws = await connect(self.url, subprotocols=["streamlit"], max_size=None, open_timeout=self.timeout)
        return self

    async def __aexit__(self, *exc) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def open(self, path: str = "", query_string: str = "") -> RunResult:
        """Load the page at URL path `path` ("" = the default page), as a page load does."""
        self.query_string = query_string
        return await self._rerun(page_name=path.strip("/"), page_script_hash="")

    async def set_widget(self, widget_id: str, value) -> RunResult:
        """Change one widget's value (bool, int, float or str) and time the rerun it causes."""
        state = WidgetState(id=widget_id)
        if isinstance(value, bool):
            state.bool_value = value
        elif isinstance(value, int):
            state.int_value = value
        elif isinstance(value, float):
            state.double_value = value
        else:
            state.string_value = str(value)
        return await self._rerun(page_name="", page_script_hash=self.page_script_hash, widgets=[state])

    def widget_id(self, element_type: str, label_contains: str = "") -> str | None:
        """Id of the first widget of `element_type` ("number_input", "slider", ...) drawn by the last
        run whose label contains `label_contains`."""
        for kind, wid, element in self.widgets:
            if kind == element_type and label_contains.lower() in getattr(element, "label", "").lower():
                return wid
        return None

    def widget(self, widget_id: str):
        """The element proto of a widget drawn by the last run (its value, min, max, ...)."""
        return next((el for _, wid, el in self.widgets if wid == widget_id), None)

    async def _rerun(self, page_name: str, page_script_hash: str, widgets: list | None = None) -> RunResult:
        msg = BackMsg()
        rerun = msg.rerun_script
        rerun.query_string = self.query_string
        rerun.page_name = page_name
        rerun.page_script_hash = page_script_hash
        rerun.widget_states.widgets.extend(widgets or [])
        rerun.context_info.timezone = "UTC"
        rerun.context_info.locale = "en-US"
        started = time.monotonic()
        await self.ws.send(msg.SerializeToString())
        return await self._run(started)

    async def _run(self, started: float) -> RunResult:
        result = RunResult(0.0)
        widgets = []
        deadline = started + self.timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    result.errors.append(f"no script_finished within {self.timeout:.0f}s")
                    break
                fwd = ForwardMsg()
                fwd.ParseFromString(await asyncio.wait_for(self.ws.recv(), left))
                kind = fwd.WhichOneof("type")
                if kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                    result.elements += 1
                    element = fwd.delta.new_element
                    etype = element.WhichOneof("type")
                    if etype == "exception":
                        result.errors.append(f"exception: {element.exception.type} {element.exception.message}"[:500])
                    elif etype and getattr(getattr(element, etype), "id", ""):
                        widgets.append((etype, getattr(element, etype).id, getattr(element, etype)))
                elif kind == "session_event" and fwd.session_event.HasField("script_compilation_exception"):
                    result.errors.append(f"compile error: {fwd.session_event.script_compilation_exception.message}")
                elif kind == "page_not_found":
                    result.errors.append(f"page not found: {fwd.page_not_found.page_name!r}")
                elif kind == "navigation":
                    self.page_script_hash = fwd.navigation.page_script_hash
                    self.nav_titles = [p.page_name for p in fwd.navigation.app_pages]
                elif kind == "script_finished":
                    if fwd.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                        widgets = []          # a new run follows (st.rerun): its widgets count
                    elif fwd.script_finished in _DONE:
                        result.finished = True
                        break
        except TimeoutError:
            result.errors.append(f"no script_finished within {self.timeout:.0f}s")
        except Exception as exc:  # noqa: BLE001  (connection closed: reported, not raised)
            result.errors.append(f"connection: {type(exc).__name__}: {exc}")
        result.seconds = time.monotonic() - started
        result.nav_titles = list(self.nav_titles)
        if widgets or result.finished:
            self.widgets = widgets
        return result


async def open_many(port: int, paths: list[str], timeout: float = RUN_TIMEOUT) -> list[RunResult]:
    """Open one session per path, all at once, and return each session's first run."""
    async def one(path: str) -> RunResult:
        started = time.monotonic()
        try:
            async with ProtocolSession(port, timeout=timeout) as s:
                return await s.open(path)
        except Exception as exc:  # noqa: BLE001  (refused connection and the like)
            return RunResult(time.monotonic() - started, [f"connect: {type(exc).__name__}: {exc}"])
    return list(await asyncio.gather(*(one(p) for p in paths)))


def run_async(coro):
    """asyncio.run(coro) in a thread of its own: callable where an event loop already runs (the
    browser tests' Playwright sync API keeps one in the main thread)."""
    out: dict = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            out["error"] = exc

    thread = threading.Thread(target=target, name="st-protocol")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]
