"""The proposal rule on comparisons already recorded in bench/: what the old rule proposed, what the new one does.

    .venv/bin/python -m bench.bench_proposals      # seconds; trains nothing

Reads the per-fold held-out scores recorded by earlier benchmarks (no training):
- bench/RESULTS_compare.md, the raw JSON of the fold-batched session ("Raw (fold-batched)"): the
  three samples, `compare SAMPLE --methods all --cv 3`, every method; each fold's row counts are
  those the same file records for the same samples and folds (the "gain" rows of its last block);
- bench/quality.json (the three samples) and bench/quality_real.json, bench/quality_real_digits.json
  (scikit-learn's breast_cancer, wine, diabetes, digits): 5-fold (digits 3-fold) x 2 repeats, the
  methods the quality benchmark trained, beside scikit-learn's linear model (LogisticRegression /
  Ridge, `sklearn_linear`), the linear reference.
The old rule (issue 31: "the simplest method not detectably worse than the best") is re-stated below
as it was; the new one is train/evidence.evidence_proposal. Writes bench/RESULTS_proposals.md and
bench/proposals.json.
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from multimodal.core.config import ModelConfig
from multimodal.core.settings import equivalence_margin
from multimodal.runs.verdicts import WORSE, format_gain
from multimodal.train.evidence import evidence_proposal, interval_text, paired_verdict, simplicity

BENCH = Path(__file__).resolve().parent
REFERENCE = "sklearn_linear"


def _json_blocks(markdown: Path) -> list:
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", markdown.read_text(), flags=re.S)]


def compare_records() -> list[dict]:
    """The fold-batched session's `compare --cv 3` of the three samples, as comparison results."""
    blocks = _json_blocks(BENCH / "RESULTS_compare.md")
    session = next(b for b in blocks if isinstance(b, dict) and "runs" in b)
    rows = {r["sample"]: r["gain"]["rows"] for b in blocks if isinstance(b, list)
            for r in b if isinstance(r, dict) and r.get("gain") and "rows" in r["gain"]}
    out = []
    for run in session["runs"]:
        metric, fold_rows = run["metric"], rows[run["sample"]]
        results = {arch: {"mean": {metric: m["mean"]}, "k": len(m["folds"]), "repeats": 1,
                          "folds": [{"metrics": {metric: v}, "rows": {"train": fold_rows["train"], "val": 0,
                                                                       "test": fold_rows["test"]}}
                                    for v in m["folds"]]}
                   for arch, m in run["methods"].items()}
        out.append({"dataset": run["sample"], "source": "RESULTS_compare.md (compare --cv 3, fold-batched session)",
                    "image_size": ModelConfig().image_size,
                    "metric": metric, "higher_is_better": not metric.endswith(("mae", "rmse", "loss")),
                    "results": results, "reference": None})
    return out


def quality_records(name: str) -> list[dict]:
    """quality*.json: the library's methods and scikit-learn's linear reference on the same folds."""
    data = json.loads((BENCH / name).read_text())
    out = []
    for dataset, d in data["datasets"].items():
        metric, methods = d["metric"], d["methods"]
        results = {a: m for a, m in methods.items() if a != REFERENCE}
        out.append({"dataset": dataset, "image_size": data["settings"]["image_size"],
                    "source": f"{name} ({data['settings']['folds']}-fold x "
                    f"{data['settings']['repeats']})", "metric": metric,
                    "higher_is_better": not metric.endswith(("mae", "rmse", "loss")), "results": results,
                    "reference": methods.get(REFERENCE)})
    return out


def add_param_counts(records: list[dict]) -> float:
    """Each method's parameter count (the simplicity order within a group; the records hold none): a
    build of the method on the record's data with its image size and the default width, as the
    comparison's trainer would count it. Returns the seconds it took."""
    # lazy: Keras, and the quality benchmark's dataset writers
    from bench.quality_real import load_named
    from multimodal.app.param_count import param_count
    started, loaded = time.perf_counter(), {}
    with tempfile.TemporaryDirectory(prefix="proposals-") as root:
        for record in records:
            name = record["dataset"]
            if name not in loaded:
                loaded[name] = load_named(name, Path(root), 0, None)[0]
            config = ModelConfig(image_size=record["image_size"])
            for arch, entry in record["results"].items():
                entry["params"] = param_count(loaded[name], replace(config, arch=arch))
    return time.perf_counter() - started


def old_rule(result: dict) -> tuple[str, str]:
    """Before issue 31: the simplest compared method whose verdict against the best is not "worse"."""
    results, metric, higher = result["results"], result["metric"], result["higher_is_better"]
    sign = 1.0 if higher else -1.0
    best = max(results, key=lambda a: sign * results[a]["mean"][metric])
    for arch in sorted(results, key=lambda a: simplicity(result, a)):
        if arch == best:
            return best, "every simpler method worse"
        verdict = paired_verdict(result, arch, best)
        if verdict.verdict != WORSE:
            return arch, f"{arch} minus {best}: {interval_text(verdict, metric)}, {verdict.verdict}"
    return best, ""


def versus_reference(record: dict, arch: str) -> str:
    """The proposed method minus scikit-learn's linear model, paired by fold."""
    reference = record["reference"]
    if reference is None:
        return "not recorded"
    result = {**record, "results": {**record["results"], REFERENCE: reference}}
    verdict = paired_verdict(result, arch, REFERENCE)
    return f"{verdict.verdict} ({interval_text(verdict, record['metric'])})"


def main() -> None:
    records = compare_records() + quality_records("quality.json") + quality_records("quality_real.json") + \
        quality_records("quality_real_digits.json")
    counting = add_param_counts(records)
    rows, lines = [], []
    for record in records:
        metric, results = record["metric"], record["results"]
        sign = 1.0 if record["higher_is_better"] else -1.0
        best = max(results, key=lambda a: sign * results[a]["mean"][metric])
        margin = equivalence_margin(metric, results[best]["mean"][metric])
        old_arch, old_why = old_rule(record)
        new = evidence_proposal(record)
        row = {"dataset": record["dataset"], "source": record["source"], "metric": metric,
               "means": {a: results[a]["mean"][metric] for a in results}, "best": best, "margin": margin,
               "params": {a: results[a]["params"] for a in results},
               "old": {"arch": old_arch, "why": old_why}, "new": {"arch": new.arch, "reason": new.reason},
               "new_vs_reference": versus_reference(record, new.arch),
               "reference_mean": None if record["reference"] is None else
               record["reference"]["mean"][metric]}
        rows.append(row)
        name = metric.removeprefix("val_")
        ref = "" if row["reference_mean"] is None else f"; scikit-learn linear {row['reference_mean']:.4g}"
        lines += [f"### {record['dataset']} ({record['source']}, {name})", "",
                  "Means: " + ", ".join(f"{a} {v:.4g}" for a, v in sorted(row["means"].items(),
                                                                         key=lambda kv: -sign * kv[1])) + ref + ".",
                  f"Margin M = {format_gain(margin, metric, margin).lstrip('+')}.", "",
                  f"- Old rule: **{old_arch}** ({old_why}).",
                  f"- New rule: **{new.arch}**: {new.reason}.",
                  f"- New proposal minus scikit-learn's linear model: {row['new_vs_reference']}.", ""]
    table = ["| dataset | source | metric | best | old rule | new rule | new vs scikit-learn linear |",
             "|---|---|---|---|---|---|---|"]
    table += [f"| {r['dataset']} | {r['source'].split(' (')[0]} | {r['metric'].removeprefix('val_')} | {r['best']} | "
              f"{r['old']['arch']} | {r['new']['arch']} | {r['new_vs_reference']} |" for r in rows]
    text = "\n".join([
        "# Proposals: the old rule and the new one on recorded comparisons",
        "",
        "Produced by `python -m bench.bench_proposals` (raw: `proposals.json` beside this file). Nothing is "
        "trained: the rule is applied to per-fold held-out scores already recorded in bench/ (sources in the "
        "script's docstring). Old rule: the simplest method not detectably worse than the best. New rule "
        "(`train/evidence.py`, issue 31): a simpler method only when its whole 95% interval against the best "
        "lies inside +-M (`core/settings.EQUIVALENCE_MARGINS`: 0.02 for accuracy, 5% of the best MAE), else "
        "the best-scoring method with its verdicts against the runner-up and the simplest. Intervals: "
        "`runs/verdicts.gain_verdict` on the paired fold scores. The recorded comparisons carry no parameter "
        "counts; the script counts them on a build of each method with the record's image size and the default "
        f"width ({counting:.0f} s for all).",
        "",
        *table, "", "## Per dataset", "", *lines,
        "## Not covered",
        "",
        "Every dataset named in the issue has recorded fold scores (above), so no comparison was run. The "
        "quality records (`quality*.json`) hold only the methods that benchmark trained (linear, tabular_only, "
        "image_only, late_concat or cnn_lstm, early_concat), not every fusion method.",
        ""])
    (BENCH / "RESULTS_proposals.md").write_text(text)
    (BENCH / "proposals.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(table))


if __name__ == "__main__":
    main()
