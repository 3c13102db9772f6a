"""A reload keeps the work (docs/ARCHITECTURE.md, "Workspaces"): pick a dataset, start a tiny
training, reload the page mid-training, and find the dataset and the run (its progress, then its
result) again, on the same `?ws=` link."""
from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

from harness import FINISHED, all_runs, configure, new_runs, start_training, wait_for_text

EPOCHS, IMAGE_SIZE = 2, 32
HOUSES = "House prices"


def ws_of(url: str) -> str:
    found = parse_qs(urlparse(url).query).get("ws", [])
    assert len(found) == 1, f"the page's link carries no single workspace id: {url}"
    return found[0]


def test_reload_keeps_the_dataset_and_the_running_training(studio, server):
    s = studio
    ws = ws_of(s.page.url)
    assert re.search(r"link is the key to your workspace", s.text(), re.I), "no notice that the link is the key"
    s.goto("Data")
    assert s.select(r"sample dataset", HOUSES)        # picking a sample loads it
    if s.button(rf"^\W*use {HOUSES}").count():
        s.click(rf"^\W*use {HOUSES}")
    assert ws_of(s.page.url) == ws                     # page switches and widget reruns keep the id
    configure(s, r"^late concatenation", EPOCHS, IMAGE_SIZE)
    assert ws_of(s.page.url) == ws                     # so does the Model page's query rewrite
    before = all_runs(server)
    start_training(s)
    run = new_runs(server, before)
    assert len(run) == 1 and run[0].parent.parent.name != ws   # the folder is not named by the id
    wait_for_text(s, r"running|queued|finished", 60, "training starts")

    started = time.monotonic()
    s.page.reload(wait_until="domcontentloaded")       # a new browser session on the same link
    s.page.wait_for_selector('[data-testid="stApp"]')
    s.wait_idle()
    reopened = time.monotonic() - started
    assert ws_of(s.page.url) == ws
    assert "late_concat" in s.text() and run[0].name in s.text(), "the training is not shown after the reload"
    assert not re.search(r"link is the key", s.text(), re.I)   # told once, on the new workspace only
    wait_for_text(s, FINISHED, 120, "the training, watched again after the reload, finishes")
    s.shot("train-after-reload")
    s.goto("Data")
    assert HOUSES in s.text(), "the dataset went back to the default sample after the reload"
    print(f"reopened after the reload in {reopened:.1f} s (page idle)")
