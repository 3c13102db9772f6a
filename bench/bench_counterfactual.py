"""Counterfactual search on the shipped sample models (issue 25; run through bench/bench_whatif.py,
or alone: `.venv/bin/python -m bench.bench_counterfactual`).

For every validation row of each sample's fusion model: the whole `counterfactual_report` (nearest
row, smallest edit, image swap) is timed, and every reported edit is re-checked here with a real
prediction of the edited row built from the dataset frame (run_inputs + predict), independent of the
search's own verification. skin_lesions runs once per pair of locked features.
"""
from __future__ import annotations

import itertools
import os
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from multimodal.data.sources import SAMPLE_ROOT  # noqa: E402
from multimodal.explain.nearest import counterfactual_report, pooled_embeddings  # noqa: E402
from multimodal.runs.evaluation import evaluate_run, run_dataset  # noqa: E402
from multimodal.runs.run import load_run, predict, probabilities, run_inputs  # noqa: E402

CASES = [("skin_lesions", "late_concat", lock) for lock in itertools.combinations(["age", "sex", "site",
                                                                                    "family_history"], 2)]
CASES += [("house_prices", "late_concat", ("zipcode", "bedrooms")), ("growth_sequences", "cnn_lstm", ("sex",))]


def recheck(run, ds, row: int, report: dict) -> bool:
    """The edited row, rebuilt from the frame and predicted by the full model, reaches the goal."""
    edited = ds.frame.iloc[[row]].copy()
    for change in report["edit"]["changes"]:
        edited[change["column"]] = edited[change["column"]].astype(object)
        edited.iloc[0, edited.columns.get_loc(change["column"])] = change["after"]
    out = predict(run, run_inputs(run, edited, ds.root))
    if run.task == "regression":
        return (out[0, 0] - report["prediction"]) * np.sign(report["delta"]) >= abs(report["delta"]) - 1e-6
    return run.classes[int(probabilities(out, len(run.classes)).argmax())] != report["prediction"]


def run_case(sample: str, arch: str, locks: tuple) -> dict:
    run = load_run(SAMPLE_ROOT / sample / "pretrained" / arch)
    ds = run_dataset(run)
    ev = evaluate_run(run, ds, keep_inputs=True)
    embeddings = pooled_embeddings(run, ev.inputs)
    delta = float(ev.metrics["mae"]) if run.task == "regression" else None
    counterfactual_report(run, ds, ev, int(ev.rows[0]), list(locks), delta, embeddings=embeddings)   # warm-up
    seconds, search, found, checked, swaps = [], [], 0, 0, 0
    for row in ev.rows:
        started = time.perf_counter()
        try:
            report = counterfactual_report(run, ds, ev, int(row), list(locks), delta, embeddings=embeddings)
        except Exception as exc:  # noqa: BLE001  (regression: no edit reaches the change; counted as not found)
            seconds.append(time.perf_counter() - started)
            if "training ranges" not in str(exc):
                raise
            continue
        seconds.append(time.perf_counter() - started)
        search.append(report["edit"]["seconds"])
        if report["edit"]["found"]:
            found += 1
            checked += recheck(run, ds, int(row), report) and report["edit"]["verified"]
        swaps += bool(report.get("image_swap") and report["image_swap"]["changed"])
    n = len(ev.rows)
    return {"data": sample, "model": arch, "locks": ", ".join(locks), "rows": n, "found": found, "checked": checked,
            "swaps": swaps, "p50": float(np.percentile(seconds, 50)), "p95": float(np.percentile(seconds, 95)),
            "search_p50": float(np.percentile(search, 50)) if search else float("nan")}


def counterfactual_lines() -> list[str]:
    lines = ["## Counterfactual search (shipped sample models, every validation row)", "",
             "Time per row: the whole answer (nearest row + smallest edit + image swap). house_prices: move the "
             "prediction by one validation MAE.", "",
             "| data | model | locked | rows | edit found | re-checked by a real prediction | image swap changes it | "
             "p50 s | p95 s | edit search p50 s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for case in CASES:
        r = run_case(*case)
        lines.append(f"| {r['data']} | {r['model']} | {r['locks']} | {r['rows']} | {r['found']} ({r['found'] / r['rows']:.0%}) "
                     f"| {r['checked']} of {r['found']} | {r['swaps']} ({r['swaps'] / r['rows']:.0%}) | {r['p50']:.3f} | "
                     f"{r['p95']:.3f} | {r['search_p50']:.3f} |")
    return lines + [""]


if __name__ == "__main__":
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("\n".join(counterfactual_lines()))
    print(f"load average {os.getloadavg()[0]:.1f}")
