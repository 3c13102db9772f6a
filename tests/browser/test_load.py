"""Many users at once, for a fixed time, on the suite's server.

8 browser contexts (separate Streamlit sessions) open What-if on the shipped pretrained skin_lesions
model and keep changing a feature and waiting for the prediction to move, while 2 other contexts
train (a short run they then check on Compare, then a long one). Then every context is closed, the
long trainings with it. Checked: no page shows an exception or an error; each trainer sees only its
own run; no training worker survives its closed session past the orphan timeout; and the server's
memory after the sessions are gone is back near its post-warm-up baseline.

One Chromium with several contexts keeps the browser's memory down; Playwright's sync API is
single-threaded, so the test fires the 8 edits first and then waits for each page: the server runs
those reruns concurrently.
"""
from __future__ import annotations

import itertools
import os
import re
import time

from harness import (
    FINISHED,
    ORPHAN_SECONDS,
    SESSION_TTL,
    Studio,
    all_runs,
    close_studio,
    configure,
    new_runs,
    open_studio,
    process_rss_mb,
    start_training,
    wait_for_text,
    worker_pids,
)

PREDICTORS, TRAINERS = 8, 2
LOAD_SECONDS = float(os.environ.get("MMSTUDIO_LOAD_SECONDS", "20"))
AGES = (5, 95, 30, 70)      # What-if edits: far apart, so the predicted probability always moves
# Bound on server memory growth from the post-warm-up baseline to after all sessions are gone.
# Each What-if session holds its own loaded model (model_service caches per session, never shared),
# ~15-25 MB with its traced explanation graphs, ~50 MB at first use; 8 of them plus 2 trainers add
# ~450 MB at the peak. The bound is what a few leaked sessions would cost; 10 leaked ones fail it.
RSS_BOUND_MB = 120.0


def prediction(s: Studio) -> str:
    """The What-if 'Predicted class' metric's text (class and probability)."""
    metric = s.page.locator('[data-testid="stMetric"]').filter(has_text="Predicted class")
    return metric.first.inner_text() if metric.count() else ""


def error_alerts(s: Studio) -> list[str]:
    """Texts of st.error boxes on the page (st.exception is caught by Studio.check)."""
    texts = s.page.evaluate("""() => Array.from(document.querySelectorAll('[data-testid="stAlertContentError"]'))
        .map(e => e.innerText)""")
    return [t.strip()[:300] for t in texts]


def assert_clean(s: Studio) -> None:
    s.check()
    errors = error_alerts(s)
    assert not errors, f"[{s.name}] error shown on {s.page.url}: {errors}"


def set_age(s: Studio, value: int) -> None:
    """Type a new age into the What-if feature editor and submit, without waiting for the rerun."""
    box = s.widget(r"^age$", "stNumberInput").first.locator("input")
    box.fill(str(value))
    box.press("Enter")


def wait_prediction_change(s: Studio, before: str, timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = prediction(s)
        if now and now != before:
            s.wait_idle()
            return prediction(s)
        s.page.wait_for_timeout(150)
    s.shot("no-prediction-change")
    raise AssertionError(f"[{s.name}] the prediction did not change within {timeout_s:.0f}s (still {before!r})")


def server_rss(server) -> float:
    return process_rss_mb(server.proc.pid)


def forget_closed_sessions(browser, server) -> None:
    """Wait past the disconnected-session TTL, then connect one short session: Streamlit evicts
    expired sessions lazily, when its session storage is next written (a disconnect)."""
    time.sleep(SESSION_TTL + 2)
    probe, ctx = open_studio(browser, server, "load-probe")
    close_studio(probe, ctx)
    time.sleep(2)


class Trainer:
    """A training session: a short run, checked on Compare, then a long run left going."""

    def __init__(self, studio: Studio, tag: str):
        self.s, self.tag, self.phase, self.runs = studio, tag, "short", []

    def start(self) -> None:
        before = all_runs(self.s.server)
        start_training(self.s)
        fresh = new_runs(self.s.server, before, timeout=30)
        assert len(fresh) == 1, f"trainer {self.tag}: expected one new run folder after Start, found {fresh}"
        self.runs.append(fresh[0])
        self.s.wait_idle()

    def step(self, others: list[Trainer]) -> None:
        """Advance without blocking the predictors for long: check the short run once it finished."""
        if self.phase != "short" or not re.search(FINISHED, self.s.text(), re.I):
            assert_clean(self.s)
            return
        self.s.goto("Compare")
        self.s.page.wait_for_timeout(500)
        self.s.wait_idle()
        text = self.s.text() + "\n" + self.s.page.evaluate(
            """() => Array.from(document.querySelectorAll('[data-testid="stDataFrame"] [role="gridcell"]'))
               .map(e => e.textContent).join('\\n')""")
        assert self.runs and all(r.name in text for r in self.runs[:1]), \
            f"trainer {self.tag}: Compare does not list its run {self.runs[:1]}"
        foreign = [r.name for t in others for r in t.runs if r.name in text]
        assert not foreign, f"trainer {self.tag} sees another session's run(s) on Compare: {foreign}"
        configure(self.s, r"^late concatenation", 500, 32)      # a long run, closed mid-training below
        self.start()
        wait_for_text(self.s, r"running: epoch", 120, f"trainer {self.tag} long run starts")
        self.phase = "long"


def test_many_sessions_predict_while_two_train(browser, server):
    # Warm-up: as many What-if sessions as the load below, then closed. The first imports TensorFlow;
    # together they take the allocator to its working size, which it keeps and reuses rather than
    # returning to the OS (measured: 8 sessions, closed, then 8 new ones: +7 MB). The baseline is
    # therefore taken after this, and a leak shows as growth beyond it.
    warm = [open_studio(browser, server, f"load-warmup-{i}") for i in range(PREDICTORS)]
    for s, _ in warm:
        s.goto("What-if")
    for value in AGES[:2]:      # concurrent edits, as below: each script thread gets its own malloc arena
        before = {s.name: prediction(s) for s, _ in warm}
        for s, _ in warm:
            set_age(s, value)
        for s, _ in warm:
            wait_prediction_change(s, before[s.name])
    trainers = []
    for i in range(TRAINERS):   # ...and the trainers' path: a short training watched live, then Compare
        s, ctx = open_studio(browser, server, f"load-warmup-trainer-{i}")
        configure(s, r"^late concatenation", 1, 32)     # the Model page builds the model to count it
        start_training(s)
        trainers.append(s)
        warm.append((s, ctx))
    for s in trainers:
        wait_for_text(s, FINISHED, 240, f"[{s.name}] warm-up training")
        s.goto("Compare")
    for s, ctx in warm:
        close_studio(s, ctx)
    forget_closed_sessions(browser, server)
    baseline = server_rss(server)

    opened: list[tuple[Studio, object]] = []
    try:
        # Pages open before the trainings start: on 2 cores a page load competing with two workers
        # can take longer than a script run's timeout, and opening is not what this test measures.
        predictors = []
        for i in range(PREDICTORS):
            s, ctx = open_studio(browser, server, f"load-predict-{i}")
            opened.append((s, ctx))
            s.goto("What-if")
            assert prediction(s), f"[{s.name}] What-if shows no prediction"
            predictors.append(s)
        trainers = []
        for i in range(TRAINERS):
            s, ctx = open_studio(browser, server, f"load-trainer-{i}")
            opened.append((s, ctx))
            configure(s, r"^late concatenation", 2, 32)
            trainers.append(Trainer(s, str(i)))
        for t in trainers:
            t.start()

        ages, rounds, changes = itertools.cycle(AGES), 0, 0
        peak = server_rss(server)
        end = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < end or any(t.phase == "short" for t in trainers):
            assert time.monotonic() < end + 240, "the short trainings did not finish in time"
            value = next(ages)
            before = {s.name: prediction(s) for s in predictors}
            for s in predictors:                   # all edits first: the server handles them together
                set_age(s, value)
            for s in predictors:
                wait_prediction_change(s, before[s.name])
                assert_clean(s)
                changes += 1
            for t in trainers:
                t.step([o for o in trainers if o is not t])
            rounds += 1
            peak = max(peak, server_rss(server))
        assert all(t.phase == "long" for t in trainers)
        running_workers = len(worker_pids(server))
        assert running_workers >= 1, "no long training is running, so closing the sessions tests nothing"
        for s, _ in opened:
            assert_clean(s)
    finally:
        for s, ctx in opened:                      # every session closes, the trainings mid-run
            close_studio(s, ctx)
    closed_at = time.monotonic()

    # No worker outlives its session: stopped after ORPHAN_SECONDS, terminated after the grace at worst.
    from multimodal.train.jobs import GRACE_SECONDS
    limit = ORPHAN_SECONDS + GRACE_SECONDS + 30
    while worker_pids(server) and time.monotonic() - closed_at < limit:
        time.sleep(0.5)
    assert not worker_pids(server), f"training workers still alive {limit:.0f} s after their sessions closed"
    workers_gone = time.monotonic() - closed_at

    forget_closed_sessions(browser, server)
    after = server_rss(server)
    print(f"\nload: {rounds} rounds, {changes} prediction changes in {LOAD_SECONDS:.0f}+ s; server RSS "
          f"baseline {baseline:.0f} MB, peak {peak:.0f} MB, after close {after:.0f} MB; workers gone "
          f"{workers_gone:.1f} s after close ({running_workers} were running)")
    assert rounds >= 1 and changes >= PREDICTORS
    assert after - baseline < RSS_BOUND_MB, \
        f"server memory did not return near its baseline: {baseline:.0f} MB -> {after:.0f} MB (peak {peak:.0f} MB)"
