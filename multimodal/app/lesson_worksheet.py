"""A lesson race marked, and its worksheet: the questions, the learner's answers with how sure they
were, the marks and explanations, the leaderboard and which claims held, as Markdown or printable
HTML. Streamlit-free pure functions (the Playground page offers the two downloads).

A lesson's text is a teacher's file and the answers and name a learner's: every piece of it is
escaped in the HTML (html.escape). Nothing personal is written unless the learner typed a name.
See docs/ARCHITECTURE.md, "Lessons".
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from multimodal.data.lesson_file import Claim, Lesson, Question
from multimodal.runs.answers import RIGHT, UNSETTLED, WRONG, decide, mark
from multimodal.runs.claims import check_claims

CONFIDENCES = ("Not sure", "Fairly sure", "Very sure")
NAME_LABEL = "Learner"


def _unraced(claim: Claim, raced: set[str]) -> list[str]:
    return [m for m in claim.methods if m not in raced]


def _mark_partly(question: Question, answer: int | None, race: dict, truth: Mapping[str, float],
                 raced: set[str]) -> dict:
    """A question some of whose choices name a method the race left out: those choices are not checked."""
    choices = []
    for c in question.choices:
        missing = _unraced(c.decided_by, raced) if isinstance(c.decided_by, Claim) else []
        choices.append({"text": c.text, "holds": False, "rule": c.decided_by.text,
                        "plain": f"Not checked: {', '.join(missing)} did not race."} if missing
                       else {"text": c.text, **decide(c, race, truth)})
    chosen = choices[answer] if answer is not None and 0 <= answer < len(choices) else None
    result = None if chosen is None else RIGHT if chosen["holds"] else \
        WRONG if any(c["holds"] for c in choices) else UNSETTLED
    return {"prompt": question.prompt, "answer": chosen["text"] if chosen else None, "mark": result,
            "choices": choices, "explain": question.explain}


def mark_race(lesson: Lesson, answers: Sequence[int | None], race: dict,
              truth: Mapping[str, float]) -> tuple[list[dict], list[dict], list[str]]:
    """(marked answers as runs/answers.mark_all gives them, the claims checked on the race, the claims
    not checked because a method they name did not race). Claims hold on any task."""
    raced = {r["arch"] for r in race["rows"]}
    answers = list(answers) + [None] * (len(lesson.questions) - len(answers))
    marked = [mark(q, a, race, truth) if not any(isinstance(c.decided_by, Claim) and _unraced(c.decided_by, raced)
                                                  for c in q.choices)
              else _mark_partly(q, a, race, truth, raced) for q, a in zip(lesson.questions, answers)]
    checked = [c for c in lesson.claims if not _unraced(c, raced)]
    skipped = [c.text for c in lesson.claims if _unraced(c, raced)]
    return marked, check_claims(checked, race), skipped


def board_rows(race: dict) -> list[dict]:
    """The leaderboard (race.json's rows, best first) as plain rows: method, score, std, verdict."""
    return [{"method": r["arch"], "score": float(r["mean"]), "std": float(r["std"]),
             "verdict": "baseline" if r.get("baseline") else (r.get("verdict") or "")} for r in race["rows"]]


def _answer_line(item: Mapping, confidence: str | None) -> str:
    answer = item["answer"] if item["answer"] is not None else "(no answer)"
    return f"{answer} ({confidence or 'confidence not given'})"


def worksheet_markdown(lesson: Lesson, marked: Sequence[Mapping], confidences: Sequence[str | None],
                       board: Sequence[Mapping], claims: Sequence[Mapping], metric: str,
                       name: str | None = None) -> str:
    """The worksheet as Markdown."""
    lines = [f"# {lesson.title}", ""]
    if name and name.strip():
        lines += [f"**{NAME_LABEL}:** {name.strip()}", ""]
    lines += [lesson.text, "", "## Predictions", ""]
    for i, item in enumerate(marked):
        conf = confidences[i] if i < len(confidences) else None
        lines += [f"### {i + 1}. {item['prompt']}", "",
                  f"- Your answer: {_answer_line(item, conf)}",
                  f"- Mark: {item['mark'] or 'unanswered'}"]
        lines += [f"- {c['text']}: {'holds' if c['holds'] else 'does not hold'}. {c['plain']}" for c in item["choices"]]
        lines += ([f"- Why: {item['explain']}"] if item["explain"] else []) + [""]
    lines += ["## Leaderboard", "", f"| method | {metric} | ± std | vs best baseline |", "|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['score']:.3f} | {r['std']:.3f} | {r['verdict']} |" for r in board]
    lines += ["", "## What this lesson checks", ""]
    lines += [f"- {'Held' if c['holds'] else 'Did not hold'}: {c['claim']}. {c['plain']}" for c in claims]
    return "\n".join(lines) + "\n"


_STYLE = ("body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.4}"
          "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .6em;text-align:left}"
          ".right{color:#1b7f3b}.wrong{color:#b3261e}@media print{body{margin:0}}")


def worksheet_html(lesson: Lesson, marked: Sequence[Mapping], confidences: Sequence[str | None],
                   board: Sequence[Mapping], claims: Sequence[Mapping], metric: str,
                   name: str | None = None) -> str:
    """The worksheet as one printable HTML page; every lesson and learner text escaped."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(lesson.title)}</title><style>{_STYLE}</style></head><body>", f"<h1>{e(lesson.title)}</h1>"]
    if name and name.strip():
        out.append(f"<p><strong>{NAME_LABEL}:</strong> {e(name.strip())}</p>")
    out += [f"<p>{e(lesson.text)}</p>", "<h2>Predictions</h2>"]
    for i, item in enumerate(marked):
        conf = confidences[i] if i < len(confidences) else None
        got = item["mark"] or "unanswered"
        out += [f"<h3>{i + 1}. {e(item['prompt'])}</h3>", "<ul>",
                f"<li>Your answer: {e(_answer_line(item, conf))}</li>",
                f'<li>Mark: <strong class="{"right" if got == RIGHT else "wrong" if got == WRONG else ""}">'
                f"{e(got)}</strong></li>"]
        out += [f"<li>{e(c['text'])}: {'holds' if c['holds'] else 'does not hold'}. {e(c['plain'])}</li>"
                for c in item["choices"]]
        out += ([f"<li>Why: {e(item['explain'])}</li>"] if item["explain"] else []) + ["</ul>"]
    out += ["<h2>Leaderboard</h2>", f"<table><tr><th>method</th><th>{e(metric)}</th><th>± std</th>"
            "<th>vs best baseline</th></tr>"]
    out += [f"<tr><td>{e(r['method'])}</td><td>{r['score']:.3f}</td><td>{r['std']:.3f}</td>"
            f"<td>{e(r['verdict'])}</td></tr>" for r in board]
    out += ["</table>", "<h2>What this lesson checks</h2>", "<ul>"]
    out += [f"<li><strong>{'Held' if c['holds'] else 'Did not hold'}</strong>: {e(c['claim'])}. {e(c['plain'])}</li>"
            for c in claims]
    out += ["</ul>", "</body></html>"]
    return "\n".join(out) + "\n"
