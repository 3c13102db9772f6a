"""A lesson as a learner meets it in the app, clicked in Chromium on a server started as `make run`
starts it: open the lesson's link, answer every question (the first choice, "Fairly sure"), click
Race, and time the first leaderboard row on screen and the race's end from the click. Screenshots
of the questions and of the marked answers go to test-artifacts/screenshots/. Not a test: run it
by hand on a quiet machine and read bench/RESULTS_lessons.md.

    .venv/bin/python -m bench.bench_app_lesson [--lessons interaction,complementary] [--out bench/app_lesson.json]
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from bench.bench_app_first_result import TIMEOUT, _events_after, _timeline, app_in_chromium, append_record
from tests.browser import harness
from tests.browser.harness import SCREENSHOTS, open_studio, wait_for_text


def answer_everything(s: harness.Studio) -> int:
    """Click the first choice of every unanswered question and 'Fairly sure' for every confidence."""
    groups = s.page.locator('[data-testid="stRadio"]')
    for i in range(groups.count()):
        options = groups.nth(i).locator('label[data-testid="stRadioOption"]')
        sure = options.filter(has_text="Fairly sure")
        (sure if sure.count() else options).first.click()
        s.wait_idle()
    return groups.count()


def race_lesson(s: harness.Studio, server: harness.Server, name: str) -> dict:
    s.page.goto(f"{server.url}/playground?lesson={name}")
    s.wait_idle()
    radios = answer_everything(s)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    s.page.screenshot(path=str(SCREENSHOTS / f"lesson-{name}-questions.png"), full_page=True)
    clicked = time.time()
    s.page.locator('[data-testid^="stBaseButton"]', has_text=re.compile(r"Race$")).first.click()
    events: list[dict] = []
    while not events and time.time() - clicked < TIMEOUT:
        time.sleep(0.2)
        events = _events_after(server.tmpdir, clicked - 1)
    k = events[0]["k"] if events else 1
    wait_for_text(s, rf"\b([{k}-9]|\d\d+) of \d+ folds trained", TIMEOUT, "first method on screen")
    on_screen = time.time() - clicked
    wait_for_text(s, r"Race: \d+ s", TIMEOUT, "the race's end on screen")
    finished_on_screen = time.time() - clicked
    s.wait_idle()
    s.page.screenshot(path=str(SCREENSHOTS / f"lesson-{name}-marked.png"), full_page=True)
    events = _events_after(server.tmpdir, clicked - 1)
    return {"lesson": name, "radios_answered": radios, **_timeline(events, clicked),
            "first_method_on_screen_s": round(on_screen, 1), "finished_on_screen_s": round(finished_on_screen, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lessons", default="interaction,complementary")
    p.add_argument("--out", default="bench/app_lesson.json")
    args = p.parse_args()
    out = Path(args.out)
    with app_in_chromium("bench-lesson-") as (server, browser):
        for name in args.lessons.split(","):
            s, ctx = open_studio(browser, server, f"lesson-{name}")
            append_record(out, race_lesson(s, server, name))
            ctx.close()


if __name__ == "__main__":
    main()
