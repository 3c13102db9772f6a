"""Whether a Playground preset's lesson holds on a finished race: each claim of the lesson text
(data/playground_knobs.py) as a check on the leaderboard, with the Compare page's verdict code.

"At chance" means the method's cross-validated mean is within AT_CHANCE of the majority-class
rate; "does well" means at least WELL_ABOVE above it. "A beats B" is runs/verdicts' interval on the
paired per-fold differences excluding zero, as Compare judges fusion against a baseline. "No
fusion gain" allows a gain under PRACTICAL_GAIN: a gain of a point or two that the interval
resolves is still not one worth having.
See docs/ARCHITECTURE.md, "The Fusion Playground".
"""
from __future__ import annotations

from multimodal.data.playground_knobs import PRACTICAL_GAIN
from multimodal.runs.verdicts import BETTER, gain_verdict, paired_differences

AT_CHANCE = 0.1
WELL_ABOVE = 0.2


def _rows(race: dict) -> dict[str, dict]:
    return {r["arch"]: r for r in race["rows"]}


def beats(race: dict, method: str, other: str) -> dict:
    """runs/verdicts' verdict on `method` minus `other`, paired by fold."""
    rows = _rows(race)
    diffs = paired_differences(rows[method]["folds"], rows[other]["folds"], race["higher_is_better"])
    verdict = gain_verdict(diffs, *race["sizes"], race["metric"])
    return {"verdict": verdict.verdict, "sentence": verdict.sentence}


def _claim(text: str, holds: bool, detail: str) -> dict:
    return {"claim": text, "holds": bool(holds), "detail": detail}


def _at_chance(race: dict, names: list[str], chance: float) -> list[dict]:
    rows = _rows(race)
    return [_claim(f"{n} is at chance", abs(rows[n]["mean"] - chance) <= AT_CHANCE,
                   f"{rows[n]['mean']:.3f} vs chance {chance:.3f}") for n in names if n in rows]


def _does_well(race: dict, names: list[str], chance: float) -> list[dict]:
    rows = _rows(race)
    return [_claim(f"{n} does well", rows[n]["mean"] >= chance + WELL_ABOVE,
                   f"{rows[n]['mean']:.3f} vs chance {chance:.3f}") for n in names if n in rows]


def _fusion(race: dict) -> list[dict]:
    return [r for r in race["rows"] if not r["baseline"]]


def _no_fusion_gain(race: dict) -> list[dict]:
    return [_claim(f"{r['arch']} gains nothing worth having over {r['best_baseline']}",
                   r["verdict"] != BETTER or (r["gain"] or 0.0) < PRACTICAL_GAIN, r["sentence"] or "")
            for r in _fusion(race)]


def _interaction(race: dict, chance: float) -> list[dict]:
    """late_decision stays at chance; film and bilinear score above it on every fold; late_concat
    scores above it on average (multiply is raced but not claimed: it stays at chance on some seeds,
    bench/RESULTS_playground.md)."""
    rows = _rows(race)
    if "late_decision" not in rows:
        return []
    decision = rows["late_decision"]
    out = _at_chance(race, ["late_decision"], chance)
    for m in ("film", "bilinear"):
        if m in rows:
            diffs = paired_differences(rows[m]["folds"], decision["folds"], race["higher_is_better"])
            out.append(_claim(f"{m} scores above late_decision on every fold", min(diffs) > 0,
                              f"{beats(race, m, 'late_decision')['sentence']}; per fold "
                              + ", ".join(f"{d:+.3f}" for d in diffs)))
    out += [_claim(f"{m} scores above late_decision", rows[m]["mean"] > decision["mean"],
                   f"{rows[m]['mean']:.3f} vs {decision['mean']:.3f}") for m in ("late_concat",) if m in rows]
    return out


def lesson_checks(preset: str, race: dict, chance: float) -> list[dict]:
    """Every claim of `preset`'s lesson on `race` (run_race's result): [{"claim", "holds", "detail"}].
    chance: the majority-class rate (the generator's oracle "chance")."""
    if preset == "image_alone":
        return (_does_well(race, ["image_only"], chance) + _at_chance(race, ["tabular_only", "linear"], chance)
                + _no_fusion_gain(race))
    if preset == "table_alone":
        return (_does_well(race, ["tabular_only", "linear"], chance) + _at_chance(race, ["image_only"], chance)
                + _no_fusion_gain(race))
    if preset == "complementary":
        rows = _rows(race)
        return [_claim(f"{r['arch']} scores above {r['best_baseline']} on every fold",
                       min(paired_differences(r["folds"], rows[r["best_baseline"]]["folds"],
                                              race["higher_is_better"])) > 0, r["sentence"] or "")
                for r in _fusion(race)]
    if preset == "interaction":
        return _at_chance(race, ["image_only", "tabular_only", "linear"], chance) + _interaction(race, chance)
    if preset == "redundant":
        return _does_well(race, ["image_only", "tabular_only"], chance) + _no_fusion_gain(race)
    if preset == "small_noisy":
        return [_claim(f"{r['arch']} is not better than linear", (v := beats(race, r["arch"], "linear"))["verdict"]
                       != BETTER, v["sentence"]) for r in race["rows"] if r["arch"] != "linear"]
    raise KeyError(f"unknown preset {preset!r}")


def lesson_holds(preset: str, race: dict, chance: float) -> bool:
    checks = lesson_checks(preset, race, chance)
    return bool(checks) and all(c["holds"] for c in checks)
