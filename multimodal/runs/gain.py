"""The fusion gain of saved runs: the best fusion run's validation metric against the best
single-branch baseline's (the Compare page's quick measure, one split per run).

The cross-validated gain, paired by fold, is train/crossval.compare_with_baselines.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from multimodal.core.tasks import main_metric
from multimodal.models.fusion import baseline_names


def _field(run: Any, key: str) -> Any:
    """A run's attribute, from a runs.Run or a plain mapping."""
    return run.get(key) if isinstance(run, Mapping) else getattr(run, key, None)


def fusion_gain(runs: Iterable[Any], task: str | None = None) -> dict:
    """Best fusion run's validation metric minus the best single-branch baseline's.

    `runs` are runs.Run objects or mappings with arch, task and metrics (val_* keys). The sign is
    chosen so that a positive gain always means fusion is better (for MAE: baseline - fusion).
    Returns metric, higher_is_better, gain (None if it cannot be measured), the best fusion and
    baseline runs, the missing baselines and a note for the page.
    """
    runs = list(runs)
    task = task or next((_field(r, "task") for r in runs), None) or "classification"
    metric, higher = main_metric(task)
    key = f"val_{metric}"
    baselines = baseline_names()
    scored = [(r, float((_field(r, "metrics") or {})[key])) for r in runs
              if _field(r, "task") == task and key in (_field(r, "metrics") or {})]
    pick = max if higher else min
    fusion = [s for s in scored if _field(s[0], "arch") not in baselines]
    base = [s for s in scored if _field(s[0], "arch") in baselines]
    missing = [b for b in baselines if b not in {_field(r, "arch") for r, _ in base}]
    out = {"metric": metric, "key": key, "higher_is_better": higher, "gain": None, "fusion": None,
           "baseline": None, "missing": missing, "note": ""}

    def describe(s):
        return {"name": _field(s[0], "name") or _field(s[0], "dir"), "arch": _field(s[0], "arch"), "value": s[1]}

    if fusion:
        out["fusion"] = describe(pick(fusion, key=lambda s: s[1]))
    if base:
        out["baseline"] = describe(pick(base, key=lambda s: s[1]))
    if not fusion:
        out["note"] = "No fusion run yet: train a fusion method to measure the gain."
    elif not base:
        out["note"] = f"No single-branch baseline yet: train {' and '.join(baselines)} to measure the gain."
    else:
        f, b = out["fusion"]["value"], out["baseline"]["value"]
        out["gain"] = f - b if higher else b - f
        if missing:
            out["note"] = (f"Baseline {', '.join(missing)} is missing, so the gain is measured against "
                           f"{out['baseline']['arch']} only and may be overstated.")
    return out
