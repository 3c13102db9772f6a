"""The Compare page in Chromium: "Train baselines" shows live progress (which model of how many,
epoch and step) near the button, and Stop ends the group.

Starts from the default sample's shipped runs (no training first); the baselines are stopped as
soon as one has shown its epoch and step, so the test takes as long as one worker's start-up.
"""
from __future__ import annotations

import re
import time

from harness import Studio, wait_for_text

START_TIMEOUT = 240        # seconds until a baseline's first batch (worker start, TensorFlow import, tracing)
STOP_TIMEOUT = 60


def test_train_baselines_shows_live_progress_and_stops(studio: Studio):
    s = studio
    s.goto("Compare")
    s.click(r"^\W*train baselines")
    headline = wait_for_text(s, r"Training baselines: 0 of 3 done[^\n]*", 30, "baselines-started")
    assert re.search(r"\b[12] running\b", headline), headline
    wait_for_text(s, r"1 of 3 · image_only · (queued|running)[^\n]*", 10, "baselines-rows")
    where = wait_for_text(s, r"[123] of 3 · \w+ · epoch \d+ of \d+ · step \d+ of \d+[^\n]*", START_TIMEOUT,
                          "baseline-epochs")
    s.shot("baselines-progress")
    assert re.search(r"\d+ s left|estimating time left", where), where

    s.click(r"stop baselines")
    deadline = time.monotonic() + STOP_TIMEOUT
    while "Training baselines" in s.text() and time.monotonic() < deadline:
        s.page.wait_for_timeout(500)
    s.shot("baselines-stopped")
    assert "Training baselines" not in s.text(), f"the baselines did not stop:\n{s.text()[-1000:]}"
    assert not s.button(r"^\W*train baselines").first.is_disabled()
