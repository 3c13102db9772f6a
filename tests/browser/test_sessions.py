"""Two browser sessions train at the same time; each sees only its own runs on Compare."""
from __future__ import annotations

import json
import re

from harness import FINISHED, Studio, all_runs, configure, new_runs, start_training, wait_for_text

EPOCHS = 2
IMAGE_SIZE = 32
# A different fusion method per session, so the runs are told apart by name too.
SESSIONS = {"A": ("multiply", r"^multiplicative"), "B": ("late_concat", r"^late concatenation")}


def _events(run_dir) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []


def _batch_span(run_dir) -> tuple[float, float]:
    times = [e["time"] for e in _events(run_dir) if e.get("type") == "batch"]
    assert times, f"{run_dir.name}: no batch events in events.jsonl"
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

    runs = {}
    for tag, s in studios.items():             # start both, back to back
        before = all_runs(server)
        start_training(s)
        fresh = new_runs(server, before)
        assert len(fresh) == 1, f"session {tag}: expected one new run folder after Start, found {fresh}"
        runs[tag] = fresh[0]
    assert runs["A"].parent != runs["B"].parent, \
        f"both sessions wrote runs into the same folder: {runs['A'].parent}"

    for tag, s in studios.items():
        wait_for_text(s, FINISHED, 180, f"session {tag} training finishes")
        s.shot("train-finished")

    # They really overlapped in time (MMSTUDIO_MAX_JOBS=2 lets both run at once).
    (a0, a1), (b0, b1) = _batch_span(runs["A"]), _batch_span(runs["B"])
    assert max(a0, b0) < min(a1, b1), \
        f"the two trainings did not overlap: A {a0:.1f}-{a1:.1f}, B {b0:.1f}-{b1:.1f} (one was queued?)"
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
