"""Browser tests: `streamlit run app.py` headless on a free port, driven by Debian's Chromium.

Fixtures
- `server`  (session): the Streamlit server subprocess (own process group, killed at the end).
  Its TMPDIR is a private folder, and its workspaces (one folder per session's `?ws=` link) live
  in `workspaces/` there, so they can
  be inspected by the tests; its log goes to test-artifacts/streamlit.log.
- `browser` (session): Chromium through Playwright.
- `studio`  (function): a fresh browser context + page wrapped in `Studio`, the helper the tests
  use: open the app, switch pages through the sidebar (the same browser session), wait for
  Streamlit to finish running, read Plotly charts, and save a screenshot per step.
- an autouse check fails the test if any page shows a Streamlit exception or a "Traceback".

When Chromium or Playwright is missing the tests skip, unless MMSTUDIO_REQUIRE_BROWSER=1 (CI),
where they fail with the reason.
"""
from __future__ import annotations

import os

import pytest
from harness import (
    _OPEN_STUDIOS,
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ORPHAN_SECONDS,
    SCREENSHOTS,
    SESSION_TTL,
    PageError,
    Studio,
    close_studio,
    first_visit,
    open_studio,
    start_server,
    stop_server,
)


def require_browser() -> bool:
    return os.environ.get("MMSTUDIO_REQUIRE_BROWSER") == "1"


def unavailable(reason: str):
    """Skip, or fail when CI demands the browser tests (MMSTUDIO_REQUIRE_BROWSER=1)."""
    if require_browser():
        pytest.fail(f"browser tests cannot run: {reason} (MMSTUDIO_REQUIRE_BROWSER=1 demands them)", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="session")
def playwright_api():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"the playwright package is not installed ({exc})")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_api):
    try:
        b = playwright_api.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001  (Playwright raises its own Error types)
        unavailable(f"Chromium at {CHROMIUM} did not start: {str(exc).splitlines()[0]}")
    yield b
    b.close()


FIRST_VISIT = "model?arch=multiply"     # a shared link, opened as the fresh server's first visit


@pytest.fixture(scope="session")
def server(browser, tmp_path_factory):
    """Depends on `browser` so a missing browser skips/fails before a server is started. Its first
    visit is a deep link (`server.first_visit`, checked by test_newcomer). The one server of the
    whole browser suite, started as `make run` starts it, with short orphan and session timeouts."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):   # this run's evidence only
        old.unlink()
    try:
        srv = start_server(tmp_path_factory.mktemp("streamlit-tmp"), ARTIFACTS / "streamlit.log",
                           extra_env={"MMSTUDIO_ORPHAN_SECONDS": str(ORPHAN_SECONDS),
                                      "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(SESSION_TTL)})
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        srv.first_visit = first_visit(browser, srv, FIRST_VISIT)
    except Exception:
        stop_server(srv)
        raise
    yield srv
    stop_server(srv)


@pytest.fixture
def new_studio(browser, server, request):
    """Factory: each call opens a new browser context (a separate Streamlit session)."""
    opened = []

    def make(tag: str = "") -> Studio:
        studio, ctx = open_studio(browser, server, request.node.name + (f"-{tag}" if tag else ""))
        opened.append((studio, ctx))
        return studio

    yield make
    for studio, ctx in opened:
        close_studio(studio, ctx)


@pytest.fixture
def studio(new_studio) -> Studio:
    return new_studio()


@pytest.fixture(autouse=True)
def no_exception_on_pages():
    """Autouse: `pytest_runtest_call` below fails the test if any page still open shows a Streamlit
    exception or a traceback when the test body ends (pages are also checked after every wait)."""
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    if "no_exception_on_pages" not in item.fixturenames:   # only this folder's tests
        return result
    failures = []
    for s in list(_OPEN_STUDIOS):
        try:
            if s.page.is_closed():
                continue
            problems = s.problems()
        except Exception:  # noqa: BLE001  (the page may be gone after a failure)
            continue
        if problems:
            s.shot("exception-at-end")
            failures.append(f"[{s.name}] {s.page.url}: " + "\n".join(problems))
    if failures:
        raise PageError("page shows an exception:\n" + "\n".join(failures)
                        + f"\n--- last traceback in the server log:\n{_OPEN_STUDIOS[0].server.last_error()}")
    return result
