"""A lesson's claims checked on a finished race, each one falsifiable with its margin fixed in advance.

- `A beats B`: the paired interval of A minus B (runs/verdicts.gain_verdict, Compare's verdict
  code) lies above zero;
- `A matches B within M`: that whole interval lies inside [-M, +M] (an equivalence test: an
  interval that merely includes zero does not pass);
- `A at chance within M`: A's own interval (verdicts.score_interval, the same corrected t
  interval on its fold scores) lies inside chance +- M;
- `A above chance by M`: that interval's low end is at least chance + M.

Chance is the score of the constant predictor fitted on each fold's training rows (the majority
class; for regression the training mean), on the same held-out rows (`chance_scores`). For an
error metric (regression's MAE, lower is better) margins are shares of chance's error, so a
margin is unit-free in (0, 1) for either task.
See docs/ARCHITECTURE.md, "Lessons".
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multimodal.data.lesson_file import ABOVE_CHANCE, AT_CHANCE, BEATS, MATCHES, Claim
from multimodal.runs.verdicts import BETTER, format_gain, gain_verdict, paired_differences, score_interval


def chance_scores(y: np.ndarray, splits: Sequence[dict], task: str) -> list[float]:
    """Per fold: the held-out score of the constant predictor fitted on the fold's training rows
    (train + early-stopping rows): accuracy of the majority class, or MAE of the mean."""
    y = np.asarray(y)
    out = []
    for s in splits:
        fit = np.concatenate([s["train"], s["val"]])
        held = np.asarray(s["test"])
        if task == "classification":
            values, counts = np.unique(y[fit], return_counts=True)
            out.append(float(np.mean(y[held] == values[np.argmax(counts)])))
        else:
            out.append(float(np.mean(np.abs(y[held].astype(float) - y[fit].astype(float).mean()))))
    return out


def race_chance(race: dict) -> float:
    return float(np.mean(race["chance"]))


def _folds(race: dict, arch: str) -> list[float]:
    for row in race["rows"]:
        if row["arch"] == arch:
            return row["folds"]
    raise KeyError(f"{arch} was not raced (raced: {', '.join(r['arch'] for r in race['rows'])})")


def _num(value: float, metric: str) -> str:
    return format_gain(value, metric, None).lstrip("+")


def _result(claim: Claim, holds: bool, plain: str, detail: str, **numbers: float | None) -> dict:
    return {"claim": claim.text, "kind": claim.kind, "holds": bool(holds), "plain": plain, "detail": detail,
            "why": claim.why, **numbers}


def _pair(claim: Claim, race: dict) -> dict:
    metric, higher = race["metric"], race["higher_is_better"]
    diffs = paired_differences(_folds(race, claim.a), _folds(race, claim.b), higher)
    v = gain_verdict(diffs, *race["sizes"], metric)
    if v.low is None:
        return _result(claim, False, f"one split gives no interval: this race cannot show '{claim.text}'",
                       v.sentence, mean=v.mean, low=None, high=None)
    shown = f"{format_gain(v.mean, metric, None)} (95% interval {format_gain(v.low, metric, None)} to " \
            f"{format_gain(v.high, metric, None)})"
    if claim.kind == BEATS:
        holds = v.verdict == BETTER
        plain = (f"{claim.a} scored better than {claim.b} by {shown}: the whole interval lies above zero."
                 if holds else f"This race did not show that {claim.a} beats {claim.b}: the difference was {shown}, "
                 f"{'an interval that includes zero' if v.low <= 0 <= v.high else 'an interval below zero'}.")
        return _result(claim, holds, plain, v.sentence, mean=v.mean, low=v.low, high=v.high)
    margin = claim.margin * (1.0 if higher else race_chance(race))
    holds = -margin <= v.low and v.high <= margin
    bound = f"+-{_num(margin, metric)}"
    plain = (f"{claim.a} and {claim.b} are within {bound} of each other: the difference {shown} lies inside it."
             if holds else f"This race did not show that {claim.a} matches {claim.b} within {bound}: the difference "
             f"was {shown}, which reaches outside it.")
    return _result(claim, holds, plain, f"{v.sentence}; margin {bound}", mean=v.mean, low=v.low, high=v.high)


def _against_chance(claim: Claim, race: dict) -> dict:
    metric, higher = race["metric"], race["higher_is_better"]
    chance = race_chance(race)
    mean, low, high = score_interval(_folds(race, claim.a), *race["sizes"], metric)
    if low is None:
        return _result(claim, False, f"one split gives no interval: this race cannot show '{claim.text}'",
                       f"{claim.a} {_num(mean, metric)} on one split", mean=mean, low=None, high=None, chance=chance)
    margin = claim.margin * (1.0 if higher else chance)
    shown = f"{_num(mean, metric)} (95% interval {_num(low, metric)} to {_num(high, metric)})"
    detail = f"{claim.a} {shown}; chance {_num(chance, metric)}, margin {_num(margin, metric)}"
    if claim.kind == AT_CHANCE:
        lo, hi = chance - margin, chance + margin
        holds = lo <= low and high <= hi
        plain = (f"{claim.a} stayed at chance: it scored {shown}, inside chance {_num(chance, metric)} +- "
                 f"{_num(margin, metric)}." if holds else
                 f"This race did not show {claim.a} at chance: it scored {shown}, which reaches outside "
                 f"{_num(lo, metric)} to {_num(hi, metric)}.")
        return _result(claim, holds, plain, detail, mean=mean, low=low, high=high, chance=chance)
    need = chance + margin if higher else chance - margin
    holds = low >= need if higher else high <= need
    word = "at least" if higher else "at most"
    plain = (f"{claim.a} beat chance ({_num(chance, metric)}) by the margin: it scored {shown}, {word} "
             f"{_num(need, metric)} over the whole interval." if holds else
             f"This race did not show {claim.a} above chance by {claim.margin:g}: it scored {shown}, and the whole "
             f"interval needed to be {word} {_num(need, metric)}.")
    return _result(claim, holds, plain, detail, mean=mean, low=low, high=high, chance=chance)


def check_claim(claim: Claim, race: dict) -> dict:
    """{"claim", "holds", "plain" (a sentence for a learner), "detail" (the statistics), "mean", "low",
    "high", ...} for one claim on a finished race (train/playground_race.run_race's result)."""
    if claim.kind in (BEATS, MATCHES):
        return _pair(claim, race)
    if claim.kind in (AT_CHANCE, ABOVE_CHANCE):
        return _against_chance(claim, race)
    raise ValueError(f"unknown claim kind {claim.kind!r}")


def check_claims(claims: Sequence[Claim], race: dict) -> list[dict]:
    return [check_claim(c, race) for c in claims]
