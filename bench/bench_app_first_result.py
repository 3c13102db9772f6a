"""Time to the first result in the app, as a user meets it: the Playground's Race and the Compare
page's "Run cross-validation", clicked in Chromium on a server started as `make run` starts it.
Not a test: run it by hand on a quiet machine and read bench/RESULTS_compare.md and
bench/RESULTS_playground.md.

    .venv/bin/python -m bench.bench_app_first_result [--repeats 2] [--out bench/app_first_result.json]

For each click: the seconds until the first method's every fold is in the job's events file
(stamped by the worker: what the page shows at its next refresh, every 1 s on the Playground and
2 s on Compare), until the page itself shows that many folds trained, and until the job's end:
the race's, or the comparison's stop, asked for once its first method is in (every method takes
minutes), so nothing still runs when the next click is timed.
The comparison is the Compare page's default for the sample the app opens on (its folds, its
methods), in the app's default processes (core/comparison.default_processes).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from multimodal.core.comparison import default_processes
from tests.browser import harness
from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, open_studio, wait_for_text

TIMEOUT = 600.0
# The race: 3 baselines + 4 fusion methods, 3 folds, 600 rows at 24 px.
RACE_QUERY = "preset=complementary&rows=600&image_size=24&methods=late_concat,multiply,film,gated"


def _events_after(root: Path, since: float) -> list[dict]:
    """The events of the newest job folder under root whose events file started after `since`."""
    found = [p for p in root.rglob("events.jsonl") if p.stat().st_mtime >= since]
    for path in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True):
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if events and events[0].get("type") == "start" and "archs" in events[0] and events[0]["time"] >= since:
            return events
    return []


def _timeline(events: list[dict], clicked: float) -> dict:
    start = events[0]
    k = start["k"] * start.get("repeats", 1)
    seen: dict[str, list[float]] = {}
    for e in events:
        if e.get("type") == "fold":
            seen.setdefault(e["arch"], []).append(e["time"])
    done = {arch: times[k - 1] - clicked for arch, times in seen.items() if len(times) >= k}
    first = min(done, key=done.get) if done else None
    end = next((e["time"] - clicked for e in events if e.get("type") == "end"), None)
    return {"k": k, "methods": len(start["archs"]), "started_s": round(start["time"] - clicked, 1), "first_method": first,
            "first_method_in_events_s": round(done[first], 1) if first else None,
            "end_s": round(end, 1) if end is not None else None,
            "methods_done_s": {arch: round(t, 1) for arch, t in sorted(done.items(), key=lambda kv: kv[1])}}


def _measure(s: harness.Studio, server: harness.Server, button: str, folds_text: str, stop: bool) -> dict:
    clicked = time.time()
    s.page.locator('[data-testid^="stBaseButton"]', has_text=re.compile(button)).first.click()
    events: list[dict] = []
    while not events and time.time() - clicked < TIMEOUT:
        time.sleep(0.2)
        events = _events_after(server.tmpdir, clicked - 1)
    k = events[0]["k"] * events[0].get("repeats", 1) if events else 1
    wait_for_text(s, folds_text.format(k=k), TIMEOUT, "first method on screen")
    on_screen = time.time() - clicked
    events = _events_after(server.tmpdir, clicked - 1)
    if stop:
        s.page.locator('[data-testid^="stBaseButton"]', has_text=re.compile(r"Stop$")).first.click()
    while time.time() - clicked < TIMEOUT and not any(e.get("type") == "end" for e in events):   # stopped too
        time.sleep(1.0)
        events = _events_after(server.tmpdir, clicked - 1)
    return {**_timeline(events, clicked), "first_method_on_screen_s": round(on_screen, 1)}


def append_record(out: Path, entry: dict) -> None:
    """Add one measurement, with the processes and the machine's load, to the JSON list in `out`
    (a run cut short keeps what finished), and print it."""
    entry = {**entry, "processes": default_processes(), "load_1min": round(os.getloadavg()[0], 2),
             "cpus": os.cpu_count()}
    found = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps([*found, entry], indent=1))
    print(json.dumps(entry), flush=True)


@contextlib.contextmanager
def app_in_chromium(prefix: str):
    """(a server started as `make run` starts it, a Chromium browser), both closed after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = harness.start_server(Path(tmp) / "tmp", Path(tmp) / "server.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                yield server, browser
                browser.close()
        finally:
            harness.stop_server(server)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default="bench/app_first_result.json")
    args = p.parse_args()
    out = Path(args.out)
    with app_in_chromium("bench-first-result-") as (server, browser):
        for repeat in range(args.repeats):
            for where in ("Playground", "Compare"):
                s, ctx = open_studio(browser, server, f"first-result-{where}-{repeat}")
                if where == "Playground":
                    s.page.goto(f"{server.url}/playground?{RACE_QUERY}")
                    s.wait_idle()
                    result = _measure(s, server, r"Race$", r"\b([{k}-9]|\d\d+) of \d+ folds trained", False)
                else:
                    s.goto("Compare")
                    result = _measure(s, server, r"Run cross-validation",
                                      r"\b([{k}-9]|\d\d+) of \d+\s+folds trained", True)
                append_record(out, {"where": where, "repeat": repeat, **result})
                ctx.close()


if __name__ == "__main__":
    main()
