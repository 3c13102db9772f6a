"""The fusion gain of saved runs: the best fusion run's validation metric against the best
single-branch baseline's (the Compare page's quick measure, one split per run, so it carries
verdicts.split_caveat). Only runs whose training ended on its own count: a run the user stopped
(Stop on the Train page or in "Train baselines") holds partial metrics, so it is left out and named.

The cross-validated gain, paired by fold and with an interval, is train/crossval.compare_with_baselines.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from multimodal.core.events import Status
from multimodal.core.tasks import main_metric
from multimodal.models.fusion import baseline_names
from multimodal.runs.verdicts import split_caveat


def _field(run: Any, key: str) -> Any:
    """A run's attribute, from a runs.Run or a plain mapping."""
    return run.get(key) if isinstance(run, Mapping) else getattr(run, key, None)


def _stopped(run: Any) -> bool:
    """Whether the user stopped the run's training (its summary's status), leaving partial metrics.

    Completed and early-stopped runs ended as their training meant to; imported models and runs
    without a status (mappings, older folders) have nothing saying they were cut short, so they count."""
    return (_field(run, "summary") or {}).get("status") == Status.STOPPED


def _left_out_note(left_out: list[dict]) -> str:
    """The sentence naming the stopped runs the gain ignored, so a missing run is not a mystery."""
    if not left_out:
        return ""
    their = "its" if len(left_out) == 1 else "their"
    names = ", ".join(f"{d['arch']} (run {d['name']})" for d in left_out)
    return f"Left out of the gain: {names}, stopped before {their} training ended: {their} metrics are partial."


def _validation_rows(run: Any) -> int | None:
    """How many rows a run's validation metrics come from (its config's split), if known."""
    val = ((_field(run, "config") or {}).get("splits") or {}).get("val")
    return len(val) if val is not None else None


def fusion_gain(runs: Iterable[Any], task: str | None = None, baselines: Sequence[str] | None = None) -> dict:
    """Best fusion run's validation metric minus the best single-branch baseline's.

    `runs` are runs.Run objects or mappings with arch, task and metrics (val_* keys, a config
    with its splits for the caveat, a summary whose status "stopped" leaves the run out).
    `baselines` are the ones the data allows (all of the registry's by default); a missing one
    (a stopped one too) is named. The sign is chosen so that a positive gain
    always means fusion is better (for MAE: baseline - fusion). Returns metric, higher_is_better,
    gain (None if it cannot be measured), the best fusion and baseline runs, the missing
    baselines, the stopped runs left out (like fusion and baseline: name, arch, value), a note for
    the page (naming those too) and the single-split caveat ("" when the split is unknown).
    """
    runs = list(runs)
    task = task or next((_field(r, "task") for r in runs), None) or "classification"
    metric, higher = main_metric(task)
    key = f"val_{metric}"
    every_baseline = baseline_names()
    baselines = list(baselines) if baselines is not None else list(every_baseline)
    every_scored = [(r, float((_field(r, "metrics") or {})[key])) for r in runs
                    if _field(r, "task") == task and key in (_field(r, "metrics") or {})]
    scored = [s for s in every_scored if not _stopped(s[0])]
    pick = max if higher else min
    fusion = [s for s in scored if _field(s[0], "arch") not in every_baseline]
    base = [s for s in scored if _field(s[0], "arch") in every_baseline]
    missing = [b for b in baselines if b not in {_field(r, "arch") for r, _ in base}]

    def describe(s):
        return {"name": _field(s[0], "name") or _field(s[0], "dir"), "arch": _field(s[0], "arch"), "value": s[1]}

    left_out = [describe(s) for s in every_scored if _stopped(s[0])]
    out = {"metric": metric, "key": key, "higher_is_better": higher, "gain": None, "fusion": None,
           "baseline": None, "missing": missing, "left_out": left_out, "note": "", "caveat": ""}

    best_fusion = pick(fusion, key=lambda s: s[1]) if fusion else None
    if best_fusion:
        out["fusion"] = describe(best_fusion)
    if base:
        out["baseline"] = describe(pick(base, key=lambda s: s[1]))
    if not fusion:
        out["note"] = "No fusion run yet: train a fusion method to measure the gain."
    elif not base:
        out["note"] = f"No single-branch baseline yet: train {', '.join(baselines)} to measure the gain."
    else:
        f, b = out["fusion"]["value"], out["baseline"]["value"]
        out["gain"] = f - b if higher else b - f
        rows = _validation_rows(best_fusion[0])
        out["caveat"] = split_caveat(rows) if rows is not None else ""
        if missing:
            out["note"] = (f"Baseline {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing, so the "
                           f"gain over the best one trained ({out['baseline']['arch']}) may be overstated.")
    out["note"] = " ".join(filter(None, [out["note"], _left_out_note(left_out)]))
    return out
