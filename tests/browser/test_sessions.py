"""Two browser sessions train at the same time; each sees only its own runs on Compare."""
from __future__ import annotations

import json
import re
import time
import warnings

from harness import (
    FINISHED,
    SETUP_REVERTS,
    Studio,
    all_runs,
    configure,
    new_runs,
    start_training,
    wait_for_text,
    worker_pids,
)

EPOCHS = 3
IMAGE_SIZE = 32
# A different fusion method per session, so the runs are told apart by name too.
SESSIONS = {"A": ("multiply", r"^multiplicative"), "B": ("late_concat", r"^late concatenation")}


def _events(run_dir) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def _span(run_dir) -> tuple[float, float]:
    times = [e["time"] for e in _events(run_dir) if e.get("type") in ("start", "batch", "end")]
    assert times, f"{run_dir.name}: no events in events.jsonl"
    return min(times), max(times)


def _visible_text(s: Studio) -> str:
    cells = s.page.evaluate("""() => Array.from(document.querySelectorAll(
        '[data-testid="stDataFrame"] [role="gridcell"], [data-testid="stTable"] td'))
        .map(e => e.textContent).join('\\n')""")
    return s.text() + "\n" + cells


def test_two_sessions_train_concurrently_and_stay_apart(new_studio, server):
    studios = {tag: new_studio(tag) for tag in SESSIONS}
    for tag, s in studios.items():
        configure(s, SESSIONS[tag][1], EPOCHS, IMAGE_SIZE)
        s.goto("Train")
    if SETUP_REVERTS:
        warnings.warn("Model page reverted settings by itself: " + " | ".join(SETUP_REVERTS))

    runs = {}
    for tag, s in studios.items():             # start both, back to back
        before = all_runs(server)
        start_training(s)
        fresh = new_runs(server, before)
        assert len(fresh) == 1, f"session {tag}: expected one new run folder after Start, found {fresh}"
        runs[tag] = fresh[0]
    assert runs["A"].parent != runs["B"].parent, \
        f"both sessions wrote runs into the same folder: {runs['A'].parent}"

    # Both jobs run at once (MMSTUDIO_MAX_JOBS=2): at some moment both pages show "running: epoch",
    # or two training workers are alive (the first job may take the worker started ahead,
    # train/warm_worker.py, and end its short training before the second's worker has imported
    # TensorFlow).
    both_running, workers, deadline = False, 0, time.monotonic() + 150
    running = re.compile(r"running: epoch \d+ of \d+", re.I)
    while not both_running and time.monotonic() < deadline:
        workers = max(workers, len(worker_pids(server)))
        texts = {tag: s.text() for tag, s in studios.items()}
        assert not any(re.search(r"\bqueued\b", t, re.I) for t in texts.values()), \
            "a job was queued although the server allows 2 at a time"
        both_running = all(running.search(t) for t in texts.values())
        if all(re.search(FINISHED, t, re.I) for t in texts.values()):
            break
        time.sleep(0.3)
    for tag, s in studios.items():
        wait_for_text(s, FINISHED, 180, f"session {tag} training finishes")
        s.shot("train-finished")

    # Their training spans (start to end events) overlap.
    (a0, a1), (b0, b1) = _span(runs["A"]), _span(runs["B"])
    assert both_running or workers >= 2 or max(a0, b0) < min(a1, b1), \
        f"the two trainings did not run at the same time: A {a0:.1f}-{a1:.1f}, B {b0:.1f}-{b1:.1f}"
    for tag, run in runs.items():
        summary = json.loads((run / "summary.json").read_text())
        assert summary["arch"] == SESSIONS[tag][0] and summary["epochs_run"] == EPOCHS, summary

    for tag, s in studios.items():
        other = "B" if tag == "A" else "A"
        s.goto("Compare")
        s.page.wait_for_timeout(800)
        s.wait_idle()
        s.shot("compare")
        text = _visible_text(s)
        assert runs[tag].name in text, \
            f"session {tag}: Compare does not list its own run {runs[tag].name}:\n{text[:1500]}"
        assert runs[other].name not in text, \
            f"session {tag}: Compare shows session {other}'s run {runs[other].name}"
        own_runs = [r.name for r in runs[tag].parent.iterdir() if r.is_dir()]
        shown = [n for n in re.findall(r"\d{8}-\d{6}-[A-Za-z0-9_]+(?:-\d+)?", text)]
        foreign = [n for n in shown if n not in own_runs and n != runs[tag].name]
        assert not any(n == runs[other].name for n in foreign), foreign
