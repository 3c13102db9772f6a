"""A fresh server's first minutes, as a newcomer meets them. Not a test: run it by hand and read
bench/RESULTS_first_visit.md.

    .venv/bin/python -m bench.bench_first_visit [--repeats 3]

For each repeat, a server is started as `make run` starts it (tests/browser/harness.start_server)
and, at once, its first visit is a shared link, /model?arch=multiply: timed until the Model page's
title shows, and until the page's run has ended (its parameter count, which builds the model, is
the last step). Then, once the server has been up 20 s, a fresh session opens /explain by its URL,
timed until the page is drawn. The same is measured on a server started with MMSTUDIO_PRELOAD=0
(no background import of TensorFlow, multimodal/app/warmup.py): the explanation then pays the
import. The load average before each part is recorded.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_app_training import machine
from bench.bench_pages import fresh_open, load
from tests.browser import harness

OUT = Path(__file__).with_name("RESULTS_first_visit.md")
LINK = "model?arch=multiply"
UP_SECONDS = 20.0


def one_server(browser, tmp: Path, preload: bool) -> dict:
    env = {} if preload else {"MMSTUDIO_PRELOAD": "0"}
    before = load()
    server = harness.start_server(tmp, harness.ARTIFACTS / "bench-first-visit.log", extra_env=env)
    started = time.monotonic()
    try:
        visit = harness.first_visit(browser, server, LINK)
        idle = round(time.monotonic() - started, 2)
        time.sleep(max(0.0, UP_SECONDS - (time.monotonic() - started)))
        explain = fresh_open(browser, server, "Explain")
    finally:
        harness.stop_server(server)
    return {"preload": preload, "load_before": before, "model_title_s": visit["title_seconds"],
            "model_done_s": idle, "first_explain_s": explain, "checked": visit["checked"],
            "sidebars": list(visit["navs"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    rows = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=harness.CHROMIUM, headless=True, args=harness.CHROMIUM_ARGS)
        for r in range(args.repeats):
            for preload in (True, False):
                rows.append(one_server(browser, Path(tmp) / f"s{r}{int(preload)}", preload))
                print(json.dumps(rows[-1]))
        browser.close()

    m = machine()

    def med(key: str, preload: bool) -> float:
        return round(statistics.median(r[key] for r in rows if r["preload"] == preload), 2)
    lines = [
        "# A fresh server's first visit and first explanation",
        "",
        f"Recorded {datetime.datetime.now():%Y-%m-%d %H:%M} by `python -m bench.bench_first_visit "
        f"--repeats {args.repeats}`; {m['cpu']}, {m['cores']} cores, {m['memory']}, TensorFlow {m['tensorflow']}, "
        f"Streamlit {m['streamlit']}. Each row is a new server started as `make run` starts it.",
        "",
        "| preload | load before | Model title (s) | Model page done (s) | first Explain after 20 s up (s) |",
        "|---|---|---|---|---|",
        *[f"| {'on' if r['preload'] else 'off'} | {r['load_before']} | {r['model_title_s']} | {r['model_done_s']} | "
          f"{r['first_explain_s']} |" for r in rows],
        "",
        f"Medians: Model title {med('model_title_s', True)} s; first explanation {med('first_explain_s', True)} s "
        f"with the background import, {med('first_explain_s', False)} s without it (targets: 1.5 s and 2 s).",
        "",
        "The Model page's title is timed from the link's navigation to its heading; its run then ends with the "
        "parameter count, which builds the model and so waits for Keras. The sidebars seen during the first "
        "visit are in the JSON lines the script prints.",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
