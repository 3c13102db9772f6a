"""A learner's answers to a lesson's questions, marked against the race and the generator's truth.

Each choice of a question is decided by a claim (runs/claims.py, checked on this race) or by a
truth about the generator's branch shares; never by stored text. An answer is right when its
choice held, wrong when another choice held, and unsettled when none did: the race did not show
either way, and the marking says why (each choice's sentence).
See docs/ARCHITECTURE.md, "Lessons".
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from multimodal.data.lesson_file import SHARE_PARTS, Choice, Question, Truth
from multimodal.runs.claims import check_claim

RIGHT, WRONG, UNSETTLED = "right", "wrong", "not settled by this race"


def decide(choice: Choice, race: dict, truth_shares: Mapping[str, float]) -> dict:
    """{"holds", "plain"} for one choice: its claim on the race, or its truth on the true shares."""
    rule = choice.decided_by
    if isinstance(rule, Truth):
        value = float(truth_shares[SHARE_PARTS[rule.part]])
        holds = rule.low <= value <= rule.high
        return {"holds": holds, "rule": rule.text,
                "plain": f"The data's true {rule.part} share is {value:.2f}, "
                         f"{'inside' if holds else 'outside'} {rule.low:g} to {rule.high:g}."}
    got = check_claim(rule, race)
    return {"holds": got["holds"], "rule": got["claim"], "plain": got["plain"], "detail": got["detail"]}


def mark(question: Question, answer: int | None, race: dict, truth_shares: Mapping[str, float]) -> dict:
    """{"prompt", "answer" (the chosen text or None), "mark": RIGHT / WRONG / UNSETTLED, "choices":
    [{"text", "holds", "plain", ...}], "explain"}."""
    choices = [{"text": c.text, **decide(c, race, truth_shares)} for c in question.choices]
    chosen = choices[answer] if answer is not None and 0 <= answer < len(choices) else None
    if chosen is None:
        result = None
    elif chosen["holds"]:
        result = RIGHT
    else:
        result = WRONG if any(c["holds"] for c in choices) else UNSETTLED
    return {"prompt": question.prompt, "answer": chosen["text"] if chosen else None, "mark": result,
            "choices": choices, "explain": question.explain}


def mark_all(questions: Sequence[Question], answers: Sequence[int | None], race: dict,
             truth_shares: Mapping[str, float]) -> list[dict]:
    return [mark(q, a, race, truth_shares) for q, a in zip(questions, answers)]
