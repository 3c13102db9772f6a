"""What a newcomer meets, in the browser, on a server started exactly as `make run` starts it.

`streamlit run app.py --server.port <port>` from the checkout, so .streamlit/config.toml decides
the file watcher (the shared `server` fixture turns it off on the command line instead). Checked:
a session through every page leaves no file-watcher lines in the server log and fetches nothing
from another host (the tab icon included); clearing a What-if number keeps it empty (Streamlit's
browser side puts a cleared input back to its default) and predicts with the value imputed.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from urllib.parse import urlparse

import pytest
from harness import ARTIFACTS, PAGES, REPO, VIEWPORT, Server, Studio, close_studio, open_studio, stop_server

LOG = ARTIFACTS / "streamlit-make-run.log"


@pytest.fixture(scope="module")
def make_run_server(browser, tmp_path_factory):
    """`make run`'s command (Makefile: `streamlit run app.py --server.port $(PORT)`), nothing added."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmpdir = tmp_path_factory.mktemp("make-run-tmp")
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(LOG, "wb") as log:
        proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "streamlit"), "run", "app.py", "--server.port", str(port)],
                                cwd=REPO, env={**os.environ, "TMPDIR": str(tmpdir)}, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", port, tmpdir, LOG, proc)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            pytest.fail(f"`streamlit run app.py` did not start:\n{server.log_tail()}", pytrace=False)
        time.sleep(0.25)
    yield server
    stop_server(server)


@pytest.fixture
def newcomer(browser, make_run_server, request):
    studio, ctx = open_studio(browser, make_run_server, request.node.name)
    yield studio
    close_studio(studio, ctx)


def test_a_full_session_is_quiet_and_offline(browser, make_run_server, request):
    hosts: set[str] = set()
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.on("request", lambda r: hosts.add(urlparse(r.url).hostname or r.url.split(":", 1)[0]))
    studio = Studio(ctx.new_page(), make_run_server, request.node.name)
    try:
        studio.open()
        for title in list(PAGES)[1:] + ["Home"]:
            studio.goto(title)
        icon = studio.page.evaluate("() => document.querySelector(\"link[rel='shortcut icon']\")?.href || ''")
    finally:
        ctx.close()
    assert icon.startswith("data:"), f"the tab icon is fetched from {icon!r}"
    assert hosts <= {"127.0.0.1", "data", "blob"}, f"requests left the machine: {sorted(hosts)}"
    log = make_run_server.log.read_text(errors="replace")
    watcher = [ln for ln in log.splitlines() if re.search(r"inotify|watch", ln, re.I)]
    assert not watcher, f"{len(watcher)} file-watcher lines in the server log, e.g. {watcher[:3]}"


def test_whatif_clearing_a_number_keeps_it_empty_and_imputes_it(newcomer):
    s = newcomer
    s.goto("What-if")
    box = s.widget(r"^\W*age\W*$", "stNumberInput").first.locator("input")
    explained = s.page.locator('[data-testid="stMetric"]').filter(has_text="Explained output").first
    before = explained.inner_text()
    assert box.input_value(), "the row's age should be shown before clearing it"
    box.fill("")
    box.press("Enter")
    s.page.wait_for_function("(b) => { const m = Array.from(document.querySelectorAll('[data-testid=\"stMetric\"]'))"
                             ".find(m => m.innerText.startsWith('Explained output')); return m && m.innerText !== b; }",
                             arg=before, timeout=60_000)
    s.wait_idle()
    assert box.input_value() == "", "the cleared number snapped back to a value"
    assert re.search(r"fills in its training median \(age → [\d.,]+\)", s.text()), s.text()[-1500:]
