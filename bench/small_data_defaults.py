"""Small-data training defaults, measured: the former fixed defaults against core/config.small_data_settings.

    .venv/bin/python bench/small_data_defaults.py              # old vs new on every dataset (~17 min, 2 loaded cores)
    .venv/bin/python bench/small_data_defaults.py --arms batch,patience,regularise,schedule \
        --datasets skin_lesions_150,house_prices_150               # one change at a time (~12 min)
    .venv/bin/python bench/small_data_defaults.py --report     # rewrite bench/SMALL_DATA.md from the JSON

The proposed method (models/proposal.propose_method) of each sample, at 32 px, trained with repeated
k-fold cross-validation (3 folds x 2 repeats, train/crossval.cv_splits, stratified for
classification) on the full samples and on seeded 150-row subsamples. Every arm of a dataset uses the
SAME folds; early stopping looks at an inner split of the training folds, the numbers are the
held-out folds'. Arms:

- old: the former fixed defaults (batch 32, patience 8, the 600-step epoch budget of
  config.auto_epochs, dropout 0.2, L2 1e-4);
- new: batch size, patience, epochs, dropout and L2 left to the data (None), so training picks them
  with config.small_data_settings, exactly as the app and the CLI do;
- batch / patience / regularise: one candidate change at a time on top of `old` (batch 16;
  patience 15 with a 200-epoch budget; dropout 0.3 and L2 1e-3), to see which change earns its place;
  schedule: batch 16, patience and budget together; schedule_regularise: all four candidates.

Verdicts: new (or an arm) minus old, per fold, with runs/verdicts.gain_verdict (corrected
resampled t-interval). Results are appended to bench/small_data_results.json after every arm.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

# TensorFlow quiet before Keras loads (multimodal is installed: make test / pip install -e .).
ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from multimodal.core.config import ModelConfig, TrainConfig, auto_epochs, small_data_settings  # noqa: E402
from multimodal.core.tasks import main_metric  # noqa: E402
from multimodal.data.dataset import Dataset, load_dataset  # noqa: E402
from multimodal.data.inputs import model_inputs  # noqa: E402
from multimodal.models.proposal import propose_method  # noqa: E402
from multimodal.runs.verdicts import gain_verdict, paired_differences  # noqa: E402
from multimodal.train.crossval import cross_validate, cv_splits  # noqa: E402

RESULTS = ROOT / "bench" / "small_data_results.json"
REPORT = ROOT / "bench" / "SMALL_DATA.md"
DATASETS = ("skin_lesions_150", "house_prices_150", "skin_lesions", "house_prices")
SUBSAMPLE_ROWS = 150
ARMS = ("old", "new")
OLD = {"batch_size": 32, "patience": 8, "dropout": 0.2, "l2": 1e-4}   # the defaults before small_data_settings
CANDIDATES = {"batch": {"batch_size": 16}, "patience": {"patience": 15, "epochs": 200},
              "regularise": {"dropout": 0.3, "l2": 1e-3},
              "schedule": {"batch_size": 16, "patience": 15, "epochs": 200},
              "schedule_regularise": {"batch_size": 16, "patience": 15, "epochs": 200, "dropout": 0.3, "l2": 1e-3}}
MODEL_KEYS = ("dropout", "l2")


def dataset(name: str, seed: int) -> Dataset:
    """A sample, or a seeded random SUBSAMPLE_ROWS of it (`<sample>_150`)."""
    if not name.endswith(f"_{SUBSAMPLE_ROWS}"):
        return load_dataset(name)
    ds = load_dataset(name.removesuffix(f"_{SUBSAMPLE_ROWS}"))
    frame = ds.frame.sample(n=SUBSAMPLE_ROWS, random_state=seed).reset_index(drop=True)
    return replace(ds, name=name, frame=frame)


def arm_config(arm: str, base: TrainConfig, n_fit: int, max_epochs: int | None) -> TrainConfig:
    """The TrainConfig of one arm for folds of `n_fit` training rows."""
    if arm == "new":
        chosen, _ = small_data_settings(n_fit)
        cap = {"epochs": min(chosen["epochs"], max_epochs)} if max_epochs else {}
        return replace(base, **cap)                         # the rest stays None: training chooses
    values = {**OLD, "epochs": auto_epochs(n_fit, OLD["batch_size"]), **CANDIDATES.get(arm, {})}
    if max_epochs:
        values["epochs"] = min(values["epochs"], max_epochs)
    model = replace(base.model, **{k: values.pop(k) for k in MODEL_KEYS})
    return replace(base, model=model, **values)


def run(args) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() and not args.fresh else {}
    results["settings"] = {
        "folds": args.folds, "repeats": args.repeats, "image_size": args.image_size, "seed": args.seed,
        "max_epochs": args.max_epochs, "old": OLD, "candidates": CANDIDATES,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared, loaded)",
    }
    results.setdefault("datasets", {})
    started = time.perf_counter()
    for name in args.datasets.split(","):
        ds = dataset(name, args.seed)
        arch = propose_method(ds.features).arch
        base = TrainConfig(data=name, seed=args.seed, model=ModelConfig(arch=arch, image_size=args.image_size,
                                                                        seed=args.seed))
        inputs = model_inputs(ds.frame, ds.root, ds.features, args.image_size)
        splits = cv_splits(ds, args.folds, args.repeats, args.seed, base.val_fraction)
        n_fit = int(np.median([len(s["train"]) for s in splits]))
        entry = results["datasets"].setdefault(name, {"task": ds.task, "rows": len(ds.frame), "arms": {}})
        entry.update(arch=arch, fit_rows=n_fit, fold_rows={"train": int(len(splits[0]["train"]) + len(splits[0]["val"])),
                                                            "test": int(len(splits[0]["test"]))},
                     small_data=small_data_settings(n_fit)[1])
        metric = f"val_{main_metric(ds.task)[0]}"
        for arm in args.arms.split(","):
            if arm in entry["arms"] and not args.fresh:
                continue
            config = arm_config(arm, base, n_fit, args.max_epochs)
            t0 = time.perf_counter()
            r = cross_validate(config, args.folds, args.repeats, dataset=ds, inputs=inputs, splits=splits)
            r["seconds"] = round(time.perf_counter() - t0, 1)
            entry["arms"][arm] = r
            results["seconds"] = round(results.get("seconds", 0.0) + time.perf_counter() - started, 1)
            started = time.perf_counter()
            RESULTS.write_text(json.dumps(results, indent=1))
            print(f"{name:18} {arm:11} {metric} {r['mean'][metric]:.4g} +- {r['std'][metric]:.3g} "
                  f"({r['seconds']:.0f}s)", flush=True)
    write_report(results)


def _fmt(value: float, metric: str) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def write_report(results: dict) -> None:
    s = results["settings"]
    cap = f", epochs capped at {s['max_epochs']}" if s.get("max_epochs") else ""
    lines = ["# Small-data training defaults, measured", "",
             "Produced by `bench/small_data_defaults.py` (raw numbers: `bench/small_data_results.json`). The proposed "
             f"method of each sample at {s['image_size']} px{cap}; {s['folds']}-fold cross-validation x {s['repeats']} "
             "repeats, the same folds for every arm, held-out folds only. Machine: "
             f"{s['machine']}; total {results.get('seconds', 0) / 60:.1f} min.", "",
             f"- **old**: batch {OLD['batch_size']}, patience {OLD['patience']}, epoch budget of about 600 steps "
             f"(`config.auto_epochs`), dropout {OLD['dropout']}, L2 {OLD['l2']:g}.",
             "- **new**: batch size, patience, epochs, dropout and L2 left to `config.small_data_settings` (what the "
             "app and the CLI now do).",
             *(f"- **{arm}**: old with {', '.join(f'{k} {v:g}' for k, v in change.items())}."
               for arm, change in CANDIDATES.items()),
             "", "Differences are arm minus old, paired by fold, positive = better (`runs/verdicts.gain_verdict`: "
             "95% corrected resampled t-interval). The loss column is Keras' held-out loss, which includes the L2 "
             "penalty: arms with a different L2 are not comparable on it.", ""]
    for name, entry in results["datasets"].items():
        metric, higher = f"val_{main_metric(entry['task'])[0]}", main_metric(entry["task"])[1]
        arms = entry["arms"]
        lines += [f"## {name} ({entry['task']}, {entry['rows']} rows, `{entry['arch']}`, {entry['fit_rows']} "
                  f"training rows per fold)", "", f"small_data_settings: {entry['small_data']}.", "",
                  f"| arm | {metric[4:]} mean ± std | loss mean ± std | epochs run (best), per fold | time | "
                  "minus old |", "|---|---|---|---|---|---|"]
        for arm, r in arms.items():
            vs = "-"
            if arm != "old" and "old" in arms:
                diffs = paired_differences([f["metrics"][metric] for f in r["folds"]],
                                           [f["metrics"][metric] for f in arms["old"]["folds"]], higher)
                vs = gain_verdict(diffs, entry["fold_rows"]["train"], entry["fold_rows"]["test"], metric,
                                  repeats=r["repeats"]).sentence
            epochs = ", ".join(f"{f['epochs_run']} ({f['best_epoch']})" for f in r["folds"])
            lines.append(f"| {arm} | {_fmt(r['mean'][metric], metric)} ± {_fmt(r['std'][metric], metric)} | "
                         f"{r['mean']['val_loss']:.3f} ± {r['std']['val_loss']:.3f} | {epochs} | {r['seconds']:.0f}s | "
                         f"{vs} |")
        lines.append("")
    # The hand-written "## What was kept" section (the decision) survives a regenerated report.
    if REPORT.exists() and "\n## What was kept" in REPORT.read_text():
        lines.append(REPORT.read_text()[REPORT.read_text().index("\n## What was kept") + 1:].rstrip())
    REPORT.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=None, help="cap every arm's epoch budget (quicker runs)")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--fresh", action="store_true", help="ignore earlier results in the JSON")
    p.add_argument("--report", action="store_true", help="only rewrite SMALL_DATA.md from the JSON")
    args = p.parse_args()
    if args.report:
        write_report(json.loads(RESULTS.read_text()))
    else:
        run(args)


if __name__ == "__main__":
    main()
