"""A learner goes through a lesson in Chromium: the lesson's link, every question answered with a
confidence (Race unlocks only then), the race, the marked answers and claims, and the worksheet
downloaded. Small settings from the link (100 rows at 16 px, rows and size are free knobs): the
shipped lesson's truth at its own settings is bench/RESULTS_lessons.md's, not this test's."""
from __future__ import annotations

import re

from harness import Studio, wait_for_text

RACE_TIMEOUT = 240


def race_button(s: Studio):
    return s.page.locator('[data-testid^="stBaseButton"]', has_text=re.compile(r"Race$")).first


def test_predict_race_marked_answers_and_worksheet(studio: Studio, server):
    s = studio
    s.page.goto(f"{server.url}/playground?lesson=table_alone&rows=100&image_size=16")
    s.wait_idle()
    assert "The table alone is enough" in s.text() and "What this lesson checks" in s.text()
    assert race_button(s).is_disabled()                       # predict first
    groups = s.page.locator('[data-testid="stRadio"]')
    assert groups.count() == 4                                  # two questions, each with its confidence
    for i in range(groups.count()):
        assert race_button(s).is_disabled()
        options = groups.nth(i).locator('label[data-testid="stRadioOption"]')
        sure = options.filter(has_text="Very sure")
        (sure if sure.count() else options).first.click()
        s.wait_idle()
    s.shot("lesson-answered")
    race_button(s).click()
    wait_for_text(s, r"Race: \d+ s", RACE_TIMEOUT, "the race's end")
    s.wait_idle()
    text = s.text()
    s.shot("lesson-marked")
    # each answer marked against the race: right, wrong, or not settled by this race
    assert len(re.findall(r"Your answer: .*?: (right|wrong|not settled by this race)", text)) == 2, text[-3000:]
    assert "tabular_only above chance by 0.3" in text and re.search(r"\b(Holds|Does not hold): tabular_only", text)
    with s.page.expect_download() as got:
        s.page.get_by_role("button", name="Download worksheet (Markdown)").click()
    sheet = open(got.value.path(), encoding="utf-8").read()
    assert "The table alone is enough" in sheet and "Very sure" in sheet
    assert "Will the picture alone (image_only) do better than guessing by 0.3 or more?" in sheet
    assert re.search(r"\b(right|wrong|not settled by this race)\b", sheet)
