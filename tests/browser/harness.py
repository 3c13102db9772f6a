"""The browser-test harness, shared by tests/browser, bench/bench_app_training.py and
scripts/screenshots.py: start/stop `streamlit run app.py` on a free port, and `Studio`, one
browser session of the app (page switching through the sidebar, waiting for Streamlit to finish
running, exception checks, Plotly data, screenshots).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# MMSTUDIO_APP_ROOT lets the suite drive another checkout of the app (e.g. a scratch copy).
REPO = Path(os.environ.get("MMSTUDIO_APP_ROOT") or Path(__file__).resolve().parents[2]).resolve()
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = os.environ.get("MMSTUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}
HEALTH_TIMEOUT = 60.0
# The suite's server: a closed session's training stops 5 s after it disconnects and Streamlit
# forgets the session 5 s later (defaults 30 s and 120 s), so test_load can check that nothing
# outlives a closed tab without waiting minutes.
ORPHAN_SECONDS = 5
SESSION_TTL = 5
RUN_TIMEOUT_MS = 60_000          # one Streamlit script run (a page switch, a click)

# Page titles in app.py -> the URL path Streamlit gives them (the file's stem; Home is the default).
PAGES = {"Home": "", "Data": "data", "Model": "model", "Train": "train", "Results": "results",
         "Explain": "explain", "What-if": "whatif", "Compare": "compare", "Playground": "playground"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------- server

@dataclass
class Server:
    url: str
    port: int
    tmpdir: Path              # the server's TMPDIR: session folders are created here
    log: Path
    proc: subprocess.Popen
    first_visit: dict = field(default_factory=dict)   # what the server's first visit saw (first_visit())

    def session_dirs(self) -> list[Path]:
        """The workspaces' folders (multimodal/runs/workspaces.py), oldest first."""
        folders = (p for p in (self.tmpdir / "workspaces").glob("*") if p.is_dir())
        return sorted(folders, key=lambda p: p.stat().st_mtime)

    def run_dirs(self) -> dict[Path, list[Path]]:
        """Session folder -> its run folders (those that have a config.json or an events file)."""
        out = {}
        for s in self.session_dirs():
            runs = s / "runs"
            out[s] = sorted((r for r in runs.iterdir() if r.is_dir()), key=lambda p: p.stat().st_mtime) \
                if runs.is_dir() else []
        return out

    def last_error(self, n: int = 40) -> str:
        """The last traceback in the server log (what a page's redacted st.exception hides)."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        starts = [i for i, ln in enumerate(lines) if "Traceback (most recent call last)" in ln]
        return "\n".join(lines[starts[-1]:starts[-1] + n]) if starts else ""

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def start_server(tmpdir: Path, log: Path, extra_env: dict | None = None) -> Server:
    """Start the app exactly as `make run` does (Makefile: `streamlit run app.py --server.port $(PORT)`;
    .streamlit/config.toml decides the rest) on a free port, and wait for its health check (shared
    with bench/ and scripts/). Only the environment differs: a private TMPDIR, unbuffered output."""
    streamlit = REPO / ".venv" / "bin" / "streamlit"
    if not streamlit.exists():
        streamlit = Path(shutil.which("streamlit") or Path(sys.executable).with_name("streamlit"))
    port = _free_port()
    tmpdir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1",
           "MMSTUDIO_WORKSPACES_DIR": str(tmpdir / "workspaces"), **(extra_env or {})}
    logf = open(log, "wb")
    proc = subprocess.Popen(
        [str(streamlit), "run", "app.py", "--server.port", str(port)],
        cwd=REPO, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True)
    logf.close()
    server = Server(f"http://127.0.0.1:{port}", port, tmpdir, log, proc)
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before answering:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().decode().strip() == "ok":
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise RuntimeError(f"streamlit did not answer /_stcore/health within {HEALTH_TIMEOUT:.0f}s:\n"
                               f"{server.log_tail()}")
        time.sleep(0.25)


def stop_server(server: Server) -> None:
    """Stop the server and everything in its process group (training workers included)."""
    try:
        pgid = os.getpgid(server.proc.pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            server.proc.wait(timeout=wait)
            # The leader is gone; make sure no worker of the group survives it.
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------------------- pages

class PageError(AssertionError):
    pass


SKELETONS = '[data-testid="stSkeleton"], [data-testid="stSkeletonElement"], [data-testid="stAppSkeleton"]'
JS_PLOTLY_POINTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
    traces: (el.data || []).length,
    points: (el.data || []).reduce((n, t) => n + ((t.y || t.z || t.values || []).length || 0), 0),
    names: (el.data || []).map(t => t.name || ''),
}))"""


@dataclass
class Studio:
    """One browser session of the app."""
    page: object
    server: Server
    name: str                   # screenshot prefix
    step: int = 0
    shots: list = field(default_factory=list)

    # -- navigation and waiting
    def open(self) -> None:
        self.page.goto(self.server.url + "/", wait_until="domcontentloaded")
        self.page.wait_for_selector('[data-testid="stApp"]', timeout=RUN_TIMEOUT_MS)
        self.wait_idle()

    def wait_idle(self, timeout_ms: int = RUN_TIMEOUT_MS, settle_ms: int = 250) -> None:
        """Wait until Streamlit is connected and not running a script (after a short settle, so a
        rerun triggered just before has begun). Pages with a live fragment toggle between running
        and not running; this returns at the first idle moment."""
        self.page.wait_for_timeout(settle_ms)
        self.page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]',
                                    state="attached", timeout=timeout_ms)
        self.page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                                    state="attached", timeout=timeout_ms)
        # Widgets' code loads lazily: a skeleton stands in until it has (slow on a busy machine).
        try:
            self.page.wait_for_function(f"() => !document.querySelector('{SKELETONS}')", timeout=30_000)
        except Exception:  # noqa: BLE001  (a skeleton that stays is reported by the step that needs it)
            pass
        self.page.wait_for_timeout(100)
        self.check()

    def goto(self, title: str) -> None:
        """Switch page through the sidebar navigation (a page load would start a new session)."""
        slug = PAGES[title]
        nav = self.page.locator('[data-testid="stSidebarNav"]')
        link = nav.locator(f'a[href$="/{slug}"]') if slug else nav.locator('a').filter(
            has_text=re.compile(rf"{re.escape(title)}\s*$")).first
        if link.count() == 0:
            link = nav.get_by_role("link", name=re.compile(rf"{re.escape(title)}\s*$"))
        link.first.click()
        if slug:
            self.page.wait_for_url(re.compile(rf"/{re.escape(slug)}(\?.*)?$"), timeout=RUN_TIMEOUT_MS)
        self.wait_idle()

    # -- checks and evidence
    def problems(self) -> list[str]:
        found = []
        exc = self.page.locator('[data-testid="stException"]')
        if exc.count():
            found.append("st.exception shown: " + " | ".join(t.strip()[:500] for t in exc.all_inner_texts()))
        body = self.page.evaluate("() => document.body ? document.body.innerText : ''")
        if "Traceback" in body:
            i = body.index("Traceback")
            found.append("'Traceback' in page text: " + body[i:i + 500])
        return found

    def check(self) -> None:
        problems = self.problems()
        if problems:
            self.shot("exception")
            raise PageError(f"[{self.name}] the page shows an error at {self.page.url}:\n" + "\n".join(problems)
                            + f"\n--- last traceback in the server log ({self.server.log}):\n{self.server.last_error()}")

    def shot(self, label: str, full_page: bool = True) -> Path:
        self.step += 1
        path = SCREENSHOTS / f"{self.name}-{self.step:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', label)}.png"
        try:
            if full_page:   # the app scrolls inside stMain, so grow the viewport to the content
                size = self.page.viewport_size or VIEWPORT
                height = self.page.evaluate("""() => { const m = document.querySelector('[data-testid="stMain"]');
                    return m ? m.scrollHeight : document.body.scrollHeight; }""")
                tall = min(max(int(height), size["height"]), 6000)
                if tall > size["height"]:
                    self.page.set_viewport_size({"width": size["width"], "height": tall})
                    self.page.wait_for_timeout(300)
                try:
                    self.page.screenshot(path=str(path), timeout=15_000)
                finally:
                    self.page.set_viewport_size(size)
            else:
                self.page.screenshot(path=str(path), timeout=15_000)
            self.shots.append(path)
        except Exception:  # noqa: BLE001  (a screenshot is evidence, never the failure itself)
            pass
        return path

    # -- reading the page
    def main(self):
        return self.page.locator('[data-testid="stMain"], [data-testid="stAppViewContainer"]').first

    def text(self) -> str:
        return self.main().inner_text()

    def plotly(self) -> list[dict]:
        return self.page.evaluate(JS_PLOTLY_POINTS)

    def plot_points(self) -> int:
        return sum(p["points"] for p in self.plotly())

    # -- widgets, found by label (regex, case-insensitive)
    def button(self, pattern: str):
        return self.page.get_by_role("button", name=re.compile(pattern, re.I))

    def click(self, pattern: str, wait: bool = True) -> None:
        self.button(pattern).first.click()
        if wait:
            self.wait_idle()

    def widget(self, pattern: str, testid: str):
        """The first widget container with this data-testid whose label matches."""
        rx = re.compile(pattern, re.I)
        return self.page.locator(f'[data-testid="{testid}"]').filter(
            has=self.page.locator('[data-testid="stWidgetLabel"]', has_text=rx))

    def select(self, label: str, option: str) -> bool:
        """Choose `option` in a selectbox, radio or segmented control labelled `label`. False if absent."""
        opt = re.compile(option, re.I)
        box = self.widget(label, "stSelectbox")
        if box.count():
            combo = box.first.get_by_role("combobox")
            if opt.search(combo.input_value() or ""):
                return True
            combo.click()
            self.page.get_by_role("option", name=opt).first.click()
            self.wait_idle()
            return True
        radio = self.widget(label, "stRadio")
        if radio.count():
            choice = radio.first.locator('[data-testid="stRadioOption"], label').filter(has_text=opt).first
            choice.click()
            self.wait_idle()
            return True
        for testid in ("stButtonGroup", "stSegmentedControl", "stPills"):
            group = self.widget(label, testid)
            if group.count():
                group.first.get_by_role("button", name=opt).first.click()
                self.wait_idle()
                return True
        return False

    def set_number(self, label: str, value) -> bool:
        """Set a number input, slider or select slider labelled `label`. False if absent."""
        box = self.widget(label, "stNumberInput")
        if box.count():
            inp = box.first.locator("input")
            if inp.input_value() == str(value):
                return True
            inp.fill(str(value))
            inp.press("Enter")
            self.wait_idle()
            return True
        slider = self.widget(label, "stSlider")
        if slider.count():
            return self._set_slider(slider.first, value)
        box = self.widget(label, "stSelectbox")
        if box.count():
            return self.select(label, rf"^{re.escape(str(value))}$")
        return False

    def _set_slider(self, slider, value) -> bool:
        """Move a (select) slider with the keyboard until its value text equals `value`."""
        thumb = slider.locator('input[type="range"], [role="slider"]').first

        def now() -> str:
            return (thumb.get_attribute("aria-valuetext") or thumb.input_value() or "").strip()

        if now() == str(value):
            return True
        thumb.focus()
        thumb.press("Home")
        for _ in range(500):
            current = now()
            try:
                hit = float(current) == float(value)
            except ValueError:
                hit = current == str(value)
            if hit:
                break
            before = thumb.input_value()
            thumb.press("ArrowRight")
            if thumb.input_value() == before:     # at the end without a match
                self.wait_idle()
                return False
        self.wait_idle()
        return True


_OPEN_STUDIOS: list[Studio] = []     # live pages, checked for exceptions when each test body ends


def open_studio(browser, server: Server, name: str) -> tuple[Studio, object]:
    """A new browser context (a separate Streamlit session) with the app open on Home."""
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(RUN_TIMEOUT_MS)
    studio = Studio(ctx.new_page(), server, re.sub(r"[^A-Za-z0-9_-]+", "_", name))
    _OPEN_STUDIOS.append(studio)
    studio.open()
    return studio, ctx


def close_studio(studio: Studio, ctx) -> None:
    if studio in _OPEN_STUDIOS:
        _OPEN_STUDIOS.remove(studio)
    ctx.close()


def first_visit(browser, server: Server, path: str, timeout_s: float = 60.0) -> dict:
    """Open `path` (a shared link) as the server's very first visit and watch it settle: every
    distinct sidebar text seen (with the second it was first seen), when the page's title showed,
    and the final title. Must run before any other session connects (the `server` fixture calls it)."""
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    navs: dict[str, float] = {}
    title, title_at = "", None
    started = time.monotonic()
    try:
        page.goto(f"{server.url}/{path}", wait_until="domcontentloaded")
        idle = '[data-testid="stApp"][data-test-script-state="notRunning"]'
        while time.monotonic() - started < timeout_s:
            nav = page.locator('[data-testid="stSidebarNav"]')
            text = " ".join(nav.first.inner_text().split()) if nav.count() else ""
            navs.setdefault(text, round(time.monotonic() - started, 2))
            heading = page.locator("h1")
            title = heading.first.inner_text() if heading.count() else ""
            if title and title_at is None:
                title_at = round(time.monotonic() - started, 2)
            if title and text and page.locator(idle).count():
                break
            page.wait_for_timeout(100)
        page.wait_for_selector(idle, state="attached", timeout=RUN_TIMEOUT_MS)
        page.screenshot(path=str(SCREENSHOTS / "first-visit-deep-link.png"))
        checked = page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid="stRadio"] input:checked'))
            .map(e => e.closest('label').innerText).join(' | ')""")
    finally:
        ctx.close()
    return {"path": path, "navs": navs, "title": title, "title_seconds": title_at, "checked": checked}




# ------------------------------------------------------------------------- the app's own steps
# Shared by the tests, the benchmark and the screenshot script. Labels follow the pages:
# Model has the "Fusion method" radio, "Image size (pixels)" and "Epochs (maximum)"; Train has
# Start / Stop buttons and a status line ("running: ...", "finished: ...", "stopped ...").

FINISHED = r"\b(finished|completed)\b[^\n]*"
STOPPED = r"\bstopped\b[^\n]*"
FAILED = r"\bfailed\b:[^\n]*"


def read_setup(s: Studio) -> dict:
    """The Model page's fusion method, image size and epochs as the widgets show them."""
    radio = s.widget(r"fusion|method|architecture", "stRadio")
    arch = ""
    if radio.count():
        checked = radio.first.locator('[data-testid="stRadioOption"]:has(input:checked)')
        arch = checked.first.inner_text().strip() if checked.count() else ""
    size = s.widget(r"image size", "stSlider")
    epochs = s.widget(r"^\W*epochs", "stNumberInput")
    return {"arch": arch,
            "image_size": size.first.locator('input[type="range"]').get_attribute("aria-valuetext")
            if size.count() else None,
            "epochs": epochs.first.locator("input").input_value() if epochs.count() else None}


SETUP_REVERTS: list[str] = []   # Model-page settings that reverted by themselves (a page race; see report)


def configure(s: Studio, arch_label: str, epochs: int, image_size: int | None = None, attempts: int = 3) -> None:
    """On the Model page: choose the fusion method, epochs and image size, and check they stuck
    (re-applying them if the page reverted one; each revert is recorded in SETUP_REVERTS)."""
    if not s.page.url.split("?")[0].rstrip("/").endswith("/model"):
        s.goto("Model")
    for attempt in range(attempts):
        if not s.select(r"fusion|method|architecture", arch_label):
            raise PageError(f"Model page: no 'Fusion method' picker offering /{arch_label}/")
        if image_size is not None and not s.set_number(r"image size", image_size):
            raise PageError(f"Model page: could not set 'Image size' to {image_size}")
        if not s.set_number(r"^\W*epochs", epochs):
            raise PageError("Model page: no 'Epochs' input")
        s.page.wait_for_timeout(1000)
        s.wait_idle()
        got = read_setup(s)
        ok = (re.search(arch_label, got["arch"], re.I) and got["epochs"] == str(epochs)
              and (image_size is None or got["image_size"] == str(image_size)))
        if ok:
            return
        SETUP_REVERTS.append(f"[{s.name}] attempt {attempt + 1}: asked arch /{arch_label}/, image size "
                             f"{image_size}, epochs {epochs}; the Model page shows {got}")
    raise PageError("Model page keeps reverting the settings: " + "; ".join(SETUP_REVERTS[-attempts:]))


def start_training(s: Studio) -> None:
    """On the Train page: click Start (its label begins with 'Start' or 'Train')."""
    if not s.page.url.rstrip("/").endswith("/train"):
        s.goto("Train")
    button = s.button(r"^\W*(start|train)\b")
    if not button.count():
        raise PageError("Train page: no Start button")
    button.first.click()


def wait_for_text(s: Studio, pattern: str, timeout: float, what: str, on_poll=None) -> str:
    """Poll the page text until `pattern` matches; fail with the page's text otherwise."""
    rx = re.compile(pattern, re.I)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.check()
        if on_poll:
            on_poll()
        m = rx.search(s.text())
        if m:
            return m.group(0)
        failed = re.search(FAILED, s.text(), re.I)
        if failed:
            s.shot(f"failed-{what}")
            raise PageError(f"{what}: the page reports '{failed.group(0)}'")
        s.page.wait_for_timeout(250)
    s.shot(f"timeout-{what}")
    raise AssertionError(f"{what}: no text matching /{pattern}/ within {timeout:.0f}s on {s.page.url}. "
                         f"Page text ends with:\n{s.text()[-1500:]}")


def new_runs(server: Server, before: set, timeout: float = 15.0, count: int = 1) -> list[Path]:
    """Run folders created since `before` (waits for `count` to appear)."""
    deadline = time.monotonic() + timeout
    while True:
        now = {r for runs in server.run_dirs().values() for r in runs}
        fresh = sorted(now - before, key=lambda p: p.stat().st_mtime)
        if len(fresh) >= count or time.monotonic() > deadline:
            return fresh
        time.sleep(0.2)


def all_runs(server: Server) -> set:
    return {r for runs in server.run_dirs().values() for r in runs}


# ------------------------------------------------------------------- server processes (load test)

def process_rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def worker_pids(server: Server, prefix: str = "mmstudio-train-") -> list[int]:
    """Live (non-zombie) training workers of this server: processes in its process group whose OS
    name (/proc/<pid>/comm, set by multimodal.jobs) starts with the worker prefix. Other servers'
    workers (other tests running at the same time) are in other groups and not counted."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgid = fields[0], int(fields[2])     # after the name: state, ppid, pgrp
        if comm.startswith(prefix[:15]) and pgid == server.proc.pid and state != "Z":
            found.append(int(proc.name))
    return found
