"""A lesson race's worksheet (app/lesson_worksheet.py): Markdown and printable HTML with the
questions, answers, confidence, marks, leaderboard and claims; every lesson and learner text
escaped in the HTML; no name field unless the learner typed a name."""
from __future__ import annotations

import dataclasses

from multimodal.app.lesson_worksheet import NAME_LABEL, mark_race, worksheet_html, worksheet_markdown
from multimodal.data.lesson_store import shipped_lesson
from multimodal.runs.answers import RIGHT, UNSETTLED, WRONG

OFFERED = ("image_only", "tabular_only", "linear", "early_concat", "late_concat", "multiply", "bilinear", "gated",
           "attention", "film", "late_decision")
HOSTILE = "<script>alert(1)</script>"


def race(late: list[float], tab: list[float]) -> dict:
    """A race.json-like result: 3 folds of 40 held-out rows, chance 0.5."""
    rows = [{"arch": "tabular_only", "baseline": True, "mean": sum(tab) / 3, "std": 0.01, "folds": tab, "verdict": None},
            {"arch": "image_only", "baseline": True, "mean": 0.5, "std": 0.01, "folds": [0.5, 0.51, 0.49],
             "verdict": None},
            {"arch": "linear", "baseline": True, "mean": 0.9, "std": 0.01, "folds": [0.9, 0.91, 0.89], "verdict": None},
            {"arch": "late_concat", "baseline": False, "mean": sum(late) / 3, "std": 0.01, "folds": late,
             "verdict": "no detectable difference"}]
    return {"metric": "val_accuracy", "higher_is_better": True, "rows": rows, "sizes": [80, 40],
            "chance": [0.5, 0.5, 0.5]}


def marked_table_alone():
    lesson = shipped_lesson("table_alone", OFFERED)
    n = len(lesson.questions)
    result = race([0.95, 0.96, 0.94], [0.95, 0.96, 0.94])
    marked, claims, skipped = mark_race(lesson, [0, 1, *[None] * (n - 2)], result,
                                        {"image": 0.0, "tabular": 1.0, "interaction": 0.0})
    return lesson, marked, claims, skipped, result


def sheets(lesson, marked, claims, result, name=None):
    sure = ["Very sure", "Not sure"] + [None] * (len(marked) - 2)
    board = [{"method": r["arch"], "score": r["mean"], "std": r["std"],
              "verdict": "baseline" if r["baseline"] else r["verdict"]} for r in result["rows"]]
    return (worksheet_markdown(lesson, marked, sure, board, claims, "accuracy", name=name),
            worksheet_html(lesson, marked, sure, board, claims, "accuracy", name=name))


def test_marks_and_a_claim_naming_an_unraced_method_is_left_out():
    lesson, marked, claims, skipped, _ = marked_table_alone()
    assert len(marked) == len(lesson.questions)
    assert all(m["mark"] in (RIGHT, WRONG, UNSETTLED, None) for m in marked)
    assert marked[0]["answer"] == lesson.questions[0].choices[0].text
    raced = {"image_only", "tabular_only", "linear", "late_concat"}
    assert all(set(c.methods) <= raced for c in lesson.claims if c.text not in skipped)
    assert len(claims) + len(skipped) == len(lesson.claims)


def test_markdown_and_html_hold_the_whole_worksheet():
    lesson, marked, claims, _, result = marked_table_alone()
    md, page = sheets(lesson, marked, claims, result, name="Ada")
    for text in (md, page):
        assert lesson.title in text and "Very sure" in text and "Not sure" in text
        assert all(q.prompt.replace("'", "&#x27;") in text or q.prompt in text for q in lesson.questions)
        assert marked[0]["answer"] in text and (marked[0]["mark"] or "unanswered") in text
        assert "late_concat" in text and "no detectable difference" in text and "0.950" in text
        assert all(c["claim"] in text for c in claims)
        assert ("Held" in text) or ("Did not hold" in text)
        assert f"{NAME_LABEL}:" in text and "Ada" in text
    assert page.startswith("<!DOCTYPE html>") and "@media print" in page


def test_html_escapes_every_hostile_text_and_no_name_means_no_name_field():
    lesson, marked, claims, _, result = marked_table_alone()
    lesson = dataclasses.replace(lesson, title=HOSTILE, text=f"Read this {HOSTILE}")
    marked = [{**marked[0], "answer": HOSTILE, "explain": HOSTILE}, *marked[1:]]
    md, page = sheets(lesson, marked, claims, result, name=HOSTILE)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    md, page = sheets(lesson, marked, claims, result)
    assert NAME_LABEL not in md and NAME_LABEL not in page
