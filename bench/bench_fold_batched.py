"""Fold batching against today's fold-by-fold comparison, on the three samples.

    python -m bench.bench_fold_batched --out /tmp/new.json                      # run: the new code's comparisons
    python -m bench.bench_fold_batched --report /tmp/new.json --today /tmp/today.md   # prepend the section

Run: for each sample, the whole comparison `python -m multimodal compare SAMPLE --methods all --cv 3`
runs (crossval.compare_with_baselines, the default fast mode, an empty feature cache), timed from the
call, with the time at which each method's folds were all done (the first one is what the Compare
page shows first) and the load average before and after. `--end-to-end SAMPLES` adds end-to-end
comparisons. Report: reads today's numbers (bench/bench_compare.py's report of the code before fold
batching, run in the same session: its raw JSON block) and prepends a dated section to
bench/RESULTS_compare.md: wall times, time to the first method, and every method's held-out mean
against today's 95% interval (mean +- t(0.975, k-1) std / sqrt(k)).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
STARTED = time.perf_counter()

from multimodal.core.comparison import ComparisonOptions  # noqa: E402
from multimodal.core.config import ModelConfig, TrainConfig  # noqa: E402
from multimodal.data.dataset import load_dataset  # noqa: E402
from multimodal.data.samples import SAMPLES  # noqa: E402
from multimodal.models.fusion import methods_for  # noqa: E402
from multimodal.models.proposal import propose_method  # noqa: E402
from multimodal.train.crossval import compare_with_baselines  # noqa: E402
from multimodal.train.fold_batched import HEAD_BUDGET  # noqa: E402

TARGETS = {"skin_lesions": 60, "house_prices": 75, "growth_sequences": 75}


def run_one(sample: str, mode: str | None) -> dict:
    ds = load_dataset(ROOT / "sample_data" / sample)
    spec = ds.features
    methods = methods_for(bool(spec.image_cols), bool(spec.tabular_cols), len(spec.image_cols))
    config = TrainConfig(data=str(ds.csv_path), model=ModelConfig(arch=propose_method(spec).arch,
                                                                  image_size=SAMPLES[sample].image_size))
    done: dict[str, list[float]] = {}
    load_before, started = os.getloadavg(), time.perf_counter()

    def on_fold(arch: str, fold: dict) -> None:
        done.setdefault(arch, []).append(round(time.perf_counter() - started, 1))

    with tempfile.TemporaryDirectory(prefix="bench-features-") as cache:
        result = compare_with_baselines(config, ComparisonOptions(3, 1, archs=tuple(methods), mode=mode), dataset=ds,
                                        cache_dir=Path(cache), on_fold=on_fold)
    metric = result["metric"]
    return {"sample": sample, "mode": result["mode"], "metric": metric, "seconds": result["seconds"],
            "first_method": min(((a, t[-1]) for a, t in done.items()), key=lambda x: x[1]),
            "methods_done_at": {a: t[-1] for a, t in done.items()},
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "methods": {a: {"mean": r["mean"][metric], "std": r["std"][metric],
                            "folds": [f["metrics"][metric] for f in r["folds"]],
                            "epochs": [f["epochs_run"] for f in r["folds"]]} for a, r in result["results"].items()}}


def today_runs(path: Path) -> list[dict]:
    """bench/bench_compare.py's raw results (the JSON block at the end of its report)."""
    text = Path(path).read_text()
    return json.loads(text.split("```json", 1)[1].split("```", 1)[0])


def interval(method: dict) -> tuple[float, float]:
    k = len(method["folds"])
    half = stats.t.ppf(0.975, k - 1) * method["std"] / np.sqrt(k)
    return method["mean"] - half, method["mean"] + half


def report(new: dict, today: list[dict]) -> str:
    old = {r["sample"]: r for r in today if r["mode"] != "end_to_end"}
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    b = HEAD_BUDGET
    lines = [f"# Fold batching ({when})", "",
             f"`python -m bench.bench_fold_batched` ({platform.node()}, {os.cpu_count()} cores). The whole "
             "`compare SAMPLE --methods all --cv 3` (the default stage-wise mode, empty feature cache), the new code "
             "(every method's 3 fold heads trained as one compiled model, train/fold_batched.py; head budget "
             f"lr {b.lr:g}, patience {b.patience}, up to {b.epochs} epochs) against today's code (`bench/bench_compare.py` "
             "at the commit before, same folds), both measured in this session. **The machine was shared**: other "
             "engineers' tests and benchmarks ran at the same time (load averages below, 2 cores), so every wall time "
             "here is several times an idle machine's, and even the ratio moves with the load (see the reading below).", "",
             "| sample | today (s) | fold-batched (s) | ratio | target | first method's result (s) | load today | "
             "load fold-batched |", "|---|---:|---:|---:|---|---|---|---|"]
    for r in new["runs"]:
        if r["mode"] == "end_to_end":
            continue
        t = old.get(r["sample"])
        ratio = f"{t['seconds'] / r['seconds']:.1f}x" if t else ""
        target = TARGETS[r["sample"]]
        lines.append(f"| {r['sample']} | {t['seconds']:.0f} | {r['seconds']:.0f} | {ratio} | <= {target} s: "
                     f"{'met' if r['seconds'] <= target else 'not met'} | {r['first_method'][0]} at "
                     f"{r['first_method'][1]:.0f} | {t['load_before']} -> {t['load_after']} | {r['load_before']} -> "
                     f"{r['load_after']} |" if t else
                     f"| {r['sample']} | not measured | {r['seconds']:.0f} | | <= {target} s: "
                     f"{'met' if r['seconds'] <= target else 'not met'} | {r['first_method'][0]} at "
                     f"{r['first_method'][1]:.0f} | | {r['load_before']} -> {r['load_after']} |")
    for r in new["runs"]:
        if r["mode"] == "end_to_end":
            lines += ["", f"End to end on {r['sample']} (fold by fold as before, no target): {r['seconds']:.0f} s, "
                          f"load {r['load_before']} -> {r['load_after']}."]
    for r in new["runs"]:
        t = old.get(r["sample"])
        if r["mode"] == "end_to_end" or not t:
            continue
        name = r["metric"].removeprefix("val_")
        lines += ["", f"## {r['sample']}: held-out {name}, fold-batched vs today's 95% interval", "",
                  f"| method | today {name} | today's interval | fold-batched {name} | within | epochs (per fold) |",
                  "|---|---:|---|---:|---|---|"]
        for arch, m in r["methods"].items():
            o = t["methods"].get(arch)
            if not o:
                continue
            low, high = interval(o)
            inside = "yes" if low <= m["mean"] <= high else "NO"
            lines.append(f"| {arch} | {o['mean']:.4g} +- {o['std']:.2g} | {low:.4g} to {high:.4g} | "
                         f"{m['mean']:.4g} +- {m['std']:.2g} | {inside} | {m['epochs']} |")
    lines += ["", "Raw (fold-batched):", "", "```json", json.dumps(new, indent=1), "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default=",".join(SAMPLES))
    parser.add_argument("--end-to-end", default="", help="samples also compared end to end")
    parser.add_argument("--out", default="/tmp/fold_batched.json")
    parser.add_argument("--report", help="a --out file: prepend its section to --results")
    parser.add_argument("--today", help="bench/bench_compare.py's report of today's code (same session)")
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS_compare.md"))
    args = parser.parse_args()
    if args.report:
        section = report(json.loads(Path(args.report).read_text()), today_runs(Path(args.today)))
        results = Path(args.results)
        results.write_text(section + "\n" + results.read_text())
        return
    out = {"import_seconds": round(time.perf_counter() - STARTED, 1), "runs": []}
    slow = [s for s in args.end_to_end.split(",") if s]
    for sample in [s for s in args.samples.split(",") if s]:
        for mode in [None, "end_to_end"] if sample in slow else [None]:
            out["runs"].append(run_one(sample, mode))
            print(sample, out["runs"][-1]["mode"], out["runs"][-1]["seconds"], flush=True)
            Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
