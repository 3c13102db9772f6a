"""Comparing every method: end to end against the fast mode (stage-wise / frozen), on the samples.

    .venv/bin/python bench/bench_compare.py                                  # fast on every sample, end to end on skin_lesions
    .venv/bin/python bench/bench_compare.py --end-to-end skin_lesions,house_prices --samples skin_lesions,house_prices

For each sample, the whole comparison the Compare page and `python -m multimodal compare` run
(train/crossval.compare_with_baselines): every method the data allows plus the baselines, 3 folds,
the sample's image size, the training settings left to the data (config.small_data_settings). Fast
mode is the default one (train/stagewise.default_mode: stage-wise for small_cnn); its feature cache
starts empty, so the time includes computing the maps. Both modes use the SAME folds. Recorded: wall
time, the load average (the machine is shared), each method's held-out mean +- std of the main
metric, and seconds per epoch (a fold's training seconds over its epochs, tracing included; median
over folds): of a head on cached maps, and of the same method end to end. The report is rewritten
after every comparison, so a long run keeps what it has.
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

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from multimodal.core.comparison import ComparisonOptions  # noqa: E402
from multimodal.core.config import ModelConfig, TrainConfig  # noqa: E402
from multimodal.data.dataset import load_dataset  # noqa: E402
from multimodal.data.samples import SAMPLES  # noqa: E402
from multimodal.models.fusion import methods_for  # noqa: E402
from multimodal.models.proposal import propose_method  # noqa: E402
from multimodal.train.crossval import compare_with_baselines  # noqa: E402

TARGET_SECONDS = 60


def trained(fold: dict) -> str:
    """What a fold trained: the whole model, stage 1 (the whole image_only model), or a head alone
    (on the cached maps, or on the table's preprocessed vector)."""
    if "encoder" not in fold:
        return "whole model"
    encoder = fold["encoder"]
    if encoder is None:
        return "head on table vector"
    return "stage 1" if isinstance((encoder.get("trained_on") or {}).get("train"), list) else "head on maps"


def run_one(sample: str, mode: str | None, folds: int) -> dict:
    """One whole comparison of `sample` in `mode` (None: the fast default), with its timing and load."""
    ds = load_dataset(ROOT / "sample_data" / sample)
    spec = ds.features
    default = propose_method(spec).arch
    methods = methods_for(bool(spec.image_cols), bool(spec.tabular_cols), len(spec.image_cols))
    config = TrainConfig(data=str(ds.csv_path), model=ModelConfig(arch=default, image_size=SAMPLES[sample].image_size))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-features-") as cache:
        result = compare_with_baselines(config, ComparisonOptions(folds, 1, archs=tuple(methods), mode=mode), dataset=ds,
                                        cache_dir=Path(cache))
    metric = result["metric"]
    per_method = {}
    for arch, r in result["results"].items():
        epochs = [f["train_seconds"] / max(f["epochs_run"], 1) for f in r["folds"]]
        per_method[arch] = {"mean": r["mean"][metric], "std": r["std"][metric],
                            "folds": [f["metrics"][metric] for f in r["folds"]],
                            "seconds_per_epoch": float(np.median(epochs)),
                            "train_seconds": float(sum(f["train_seconds"] for f in r["folds"])),
                            "epochs": [f["epochs_run"] for f in r["folds"]], "trained": trained(r["folds"][0])}
    return {"sample": sample, "mode": result["mode"], "default_method": default, "metric": metric,
            "higher_is_better": result["higher_is_better"], "seconds": result["seconds"],
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "methods": per_method, "gain": result["gain"]}


def report(runs: list[dict], args: argparse.Namespace, started: str) -> str:
    sizes = ", ".join(f"{name} {SAMPLES[name].image_size} px" for name in dict.fromkeys(r["sample"] for r in runs))
    lines = ["# Comparing every method: end to end vs fast", "",
             f"`bench/bench_compare.py` ({started}; {platform.node()}, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}); folds: {args.folds}, 1 repeat; "
             f"image size: each sample's ({sizes}); training settings left to the data (small-data defaults: batch 16, "
             "patience 15, up to 200 epochs); encoder small_cnn (random init: no pretrained weights on this machine). "
             "The machine is shared with other jobs: the load average (1, 5, 15 min) is recorded before and after "
             "each comparison, and wall times under load are longer than on an idle machine.", "",
             "Fast = the default comparison mode (train/stagewise.py): stage-wise for small_cnn, i.e. per fold "
             "image_only is trained once on the fold's training rows (stage 1), its encoder frozen, its maps cached, "
             "and every other image method trains only its head on those maps (no augmentation for the heads).", ""]
    lines += ["## Wall time of the whole comparison", "",
              f"| sample | mode | models | seconds | target <= {TARGET_SECONDS} s | load before | load after |",
              "|---|---|---:|---:|---|---|---|"]
    for r in runs:
        models = sum(len(m["folds"]) for m in r["methods"].values())
        meets = "" if r["mode"] == "end_to_end" else "yes" if r["seconds"] <= TARGET_SECONDS else "no"
        lines.append(f"| {r['sample']} | {r['mode']} | {models} | {r['seconds']:.0f} | {meets} "
                     f"| {r['load_before']} | {r['load_after']} |")
    lines += ["", "## Where the time goes", "",
              "Training seconds summed over the folds, by what was trained (the rest of the wall time: decoding "
              "the images, building the models, computing the maps, evaluating). `~`: estimated as each method's "
              "median seconds per epoch times its epochs (runs recorded before the sums were).", "",
              "| sample | mode | stage 1 | heads on maps | heads on the table vector | whole models | rest |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in runs:
        spent = {"stage 1": 0.0, "head on maps": 0.0, "head on table vector": 0.0, "whole model": 0.0}
        estimated = False
        for m in r["methods"].values():
            estimated = estimated or "train_seconds" not in m
            spent[m["trained"]] += m.get("train_seconds", m["seconds_per_epoch"] * sum(m["epochs"]))
        mark = "~" if estimated else ""
        lines.append(f"| {r['sample']} | {r['mode']} | " + " | ".join(f"{mark}{v:.0f}" for v in spent.values())
                     + f" | {mark}{r['seconds'] - sum(spent.values()):.0f} |")
    by_sample: dict[str, dict[str, dict]] = {}
    for r in runs:
        by_sample.setdefault(r["sample"], {})[r["mode"]] = r
    for sample, modes in by_sample.items():
        any_run = next(iter(modes.values()))
        metric = any_run["metric"].removeprefix("val_")
        order = list(any_run["methods"])
        names = list(modes)
        fast = next((m for m in names if m != "end_to_end"), None)
        lines += ["", f"## {sample}: held-out {metric} (mean +- std over folds) and seconds per epoch", "",
                  "| method | " + " | ".join(f"{m} {metric}" for m in names) + " | " +
                  " | ".join(f"{m} s/epoch" for m in names) + (" | fast mode trains |" if fast else " |"),
                  "|---|" + "---:|" * (2 * len(names)) + ("---|" if fast else "")]
        for arch in order:
            cells = [f"{modes[m]['methods'][arch]['mean']:.4g} +- {modes[m]['methods'][arch]['std']:.2g}"
                     if arch in modes[m]["methods"] else "" for m in names]
            speed = [f"{modes[m]['methods'][arch]['seconds_per_epoch']:.3f}" if arch in modes[m]["methods"] else ""
                     for m in names]
            mark = " (default)" if arch == any_run["default_method"] else ""
            how = f" {modes[fast]['methods'][arch]['trained']} |" if fast and arch in modes[fast]["methods"] else ""
            lines.append(f"| {arch}{mark} | " + " | ".join(cells) + " | " + " | ".join(speed) + " |" + how)
        if "end_to_end" in modes and fast:
            default = any_run["default_method"]
            e2e, quick = modes["end_to_end"]["methods"][default], modes[fast]["methods"][default]
            within = abs(quick["mean"] - e2e["mean"]) <= e2e["std"]
            lines += ["", f"Default method {default}: {fast} {quick['mean']:.4g} vs end to end {e2e['mean']:.4g} "
                          f"+- {e2e['std']:.2g}: {'within' if within else 'NOT within'} one std of end to end. "
                          f"Wall time {modes[fast]['seconds']:.0f} s vs {modes['end_to_end']['seconds']:.0f} s "
                          f"({modes['end_to_end']['seconds'] / modes[fast]['seconds']:.1f}x faster)."]
    lines += ["", "## Raw results", "", "```json", json.dumps(runs, indent=1), "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default=",".join(SAMPLES))
    parser.add_argument("--end-to-end", default="skin_lesions", help="samples also compared end to end")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_compare.md"))
    args = parser.parse_args()
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    runs: list[dict] = []
    slow = [s for s in args.end_to_end.split(",") if s]
    for sample in [s for s in args.samples.split(",") if s]:
        for mode in [None, "end_to_end"] if sample in slow else [None]:
            t = time.perf_counter()
            runs.append(run_one(sample, mode, args.folds))
            print(f"{sample} {runs[-1]['mode']}: {time.perf_counter() - t:.0f} s, load {os.getloadavg()}", flush=True)
            Path(args.out).write_text(report(runs, args, started))


if __name__ == "__main__":
    main()
