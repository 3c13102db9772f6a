"""What-if benchmark (issue 25): conformal coverage and counterfactual search speed.

    .venv/bin/python -m bench.bench_whatif                   # everything, writes bench/RESULTS_whatif.md
    .venv/bin/python -m bench.bench_whatif --parts conformal # one part (conformal, early_stopping, counterfactual)

conformal: for each shipped sample model, its validation rows are split at random 20 times into
halves; the split-conformal predictor (runs/conformal.py) is calibrated on one half at 90% and its
coverage and mean set size / interval width measured on the other. Two scikit-learn datasets
(breast_cancer, diabetes; written as folders like bench/quality_real.py does) get a small
tabular_only model trained with a split column: train 50%, val 15% (early stopping), test 35%.

early_stopping: the validation rows chose the early-stopping epoch. On the scikit-learn models,
20 times: 15% of all rows drawn from the test rows as fresh calibration rows, the rest of the test
rows scored; coverage when calibrated on the early-stopping rows vs on the fresh rows, on the same
scored rows. If the early-stopping rows cost coverage, calibration needs rows of its own.

counterfactual: per validation row of each shipped fusion model, the smallest edit search
(explain/counterfactual.py) with 2 locked features, timed; every edit re-predicted.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.quality_real import write_dataset  # noqa: E402
from multimodal.core.config import ModelConfig, TrainConfig  # noqa: E402
from multimodal.data.dataset import load_dataset  # noqa: E402
from multimodal.data.inputs import encode_target  # noqa: E402
from multimodal.data.sources import SAMPLE_ROOT  # noqa: E402
from multimodal.runs.conformal import calibrate, coverage_and_size  # noqa: E402
from multimodal.runs.evaluation import evaluate_run, run_dataset  # noqa: E402
from multimodal.runs.run import load_run, predict, run_inputs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COVERAGE = 0.9
SPLITS = 20
SAMPLE_MODELS = {"skin_lesions": "late_concat", "house_prices": "late_concat", "growth_sequences": "cnn_lstm"}
SKLEARN = ("breast_cancer", "diabetes")


def split_coverage(task: str, outputs: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0,
                   splits: int = SPLITS) -> dict:
    """Mean coverage and size over `splits` random half/half calibration/test splits of the rows."""
    rng = np.random.default_rng(seed)
    covs, sizes = [], []
    for _ in range(splits):
        order = rng.permutation(len(y))
        cal, test = order[: len(y) // 2], order[len(y) // 2:]
        c = calibrate(task, outputs[cal], y[cal], COVERAGE, n_classes)
        cov, size = coverage_and_size(c, outputs[test], y[test], n_classes)
        covs.append(cov)
        sizes.append(size)
    return {"coverage": float(np.mean(covs)), "coverage_sd": float(np.std(covs)), "size": float(np.mean(sizes)),
            "cal_rows": len(y) // 2, "test_rows": len(y) - len(y) // 2}


def outputs_of(run, ds, rows: np.ndarray) -> np.ndarray:
    return np.concatenate([predict(run, run_inputs(run, ds.frame.iloc[rows[i:i + 128]], ds.root))
                           for i in range(0, len(rows), 128)]).astype(np.float64)


def sample_coverage() -> list[dict]:
    out = []
    for sample in SAMPLE_MODELS:
        for folder in sorted((SAMPLE_ROOT / sample / "pretrained").iterdir()):
            run = load_run(folder)
            ev = evaluate_run(run, run_dataset(run))
            out.append({"data": sample, "model": run.arch, "task": run.task,
                        **split_coverage(run.task, ev.outputs, ev.y_true, len(run.classes))})
    return out


def sklearn_run(name: str, root: Path, seed: int) -> tuple:
    """A small tabular_only model on a scikit-learn dataset: train 50% / val 15% / test 35%."""
    folder, task, _ = write_dataset(name, root, seed)
    frame = pd.read_csv(folder / "data.csv")
    rng = np.random.default_rng(seed)
    parts = np.array(["train"] * len(frame), dtype=object)
    order = rng.permutation(len(frame))
    parts[order[: int(0.35 * len(frame))]] = "test"
    parts[order[int(0.35 * len(frame)): int(0.5 * len(frame))]] = "val"
    frame["split"] = parts
    frame.to_csv(folder / "data.csv", index=False)
    ds = load_dataset(folder, task=task, target="target")
    # lazy: TensorFlow only for the parts that train
    from multimodal.train.training import train
    run_dir = root / f"{name}_run"
    started = time.perf_counter()
    train(TrainConfig(data=str(folder), target="target", task=task, seed=seed,
                      model=ModelConfig(arch="tabular_only")), run_dir, dataset=ds)
    seconds = time.perf_counter() - started
    return load_run(run_dir), ds, seconds


def sklearn_coverage(seeds: int) -> tuple[list[dict], list[dict]]:
    """(coverage rows, early-stopping rows) for the scikit-learn datasets, `seeds` trainings each."""
    cover, early = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in SKLEARN:
            for seed in range(seeds):
                run, ds, seconds = sklearn_run(name, Path(tmp) / f"{name}_{seed}", seed)
                n_classes = len(run.classes)
                splits = run.config["splits"]
                val, test = np.asarray(splits["val"]), np.asarray(splits["test"])
                y_val = encode_target(ds.frame[ds.target].iloc[val], run.task, run.classes)
                y_test = encode_target(ds.frame[ds.target].iloc[test], run.task, run.classes)
                out_val, out_test = outputs_of(run, ds, val), outputs_of(run, ds, test)
                cover.append({"data": name, "model": f"tabular_only (seed {seed}, {seconds:.0f} s)", "task": run.task,
                              **split_coverage(run.task, out_test, y_test, n_classes, seed)})
                on_val = calibrate(run.task, out_val, y_val, COVERAGE, n_classes)
                rng = np.random.default_rng(seed)
                a, b = [], []
                for _ in range(SPLITS):
                    order = rng.permutation(len(test))
                    fresh, scored = order[: len(val)], order[len(val):]
                    held = calibrate(run.task, out_test[fresh], y_test[fresh], COVERAGE, n_classes)
                    a.append(coverage_and_size(on_val, out_test[scored], y_test[scored], n_classes))
                    b.append(coverage_and_size(held, out_test[scored], y_test[scored], n_classes))
                early.append({"data": name, "seed": seed, "cal_rows": len(val), "scored_rows": len(test) - len(val),
                              "es_coverage": float(np.mean([x[0] for x in a])), "es_size": float(np.mean([x[1] for x in a])),
                              "fresh_coverage": float(np.mean([x[0] for x in b])),
                              "fresh_size": float(np.mean([x[1] for x in b])),
                              "epochs_run": run.summary.get("epochs_run"), "best_epoch": run.summary.get("best_epoch")})
    return cover, early


def coverage_table(rows: list[dict]) -> list[str]:
    lines = ["| data | model | task | cal / test rows | mean coverage (sd) | within 3 pts | mean set size / interval width |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = "yes" if abs(r["coverage"] - COVERAGE) <= 0.03 else "**no**"
        lines.append(f"| {r['data']} | {r['model']} | {r['task']} | {r['cal_rows']} / {r['test_rows']} | "
                     f"{r['coverage']:.3f} ({r['coverage_sd']:.3f}) | {ok} | {r['size']:,.3f} |")
    return lines


def early_table(rows: list[dict]) -> list[str]:
    lines = ["| data | seed | epochs run (best) | cal rows | scored rows | coverage, ES rows | coverage, fresh rows | "
             "size, ES rows | size, fresh rows |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['data']} | {r['seed']} | {r['epochs_run']} ({r['best_epoch']}) | {r['cal_rows']} | "
                     f"{r['scored_rows']} | {r['es_coverage']:.3f} | {r['fresh_coverage']:.3f} | "
                     f"{r['es_size']:,.3f} | {r['fresh_size']:,.3f} |")
    gap = np.mean([r["fresh_coverage"] - r["es_coverage"] for r in rows])
    lines.append("")
    lines.append(f"Mean coverage lost by calibrating on the early-stopping rows: **{gap * 100:+.1f} points** "
                 "(fresh minus early-stopping rows; positive = the early-stopping rows under-cover).")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="conformal,early_stopping,counterfactual")
    parser.add_argument("--seeds", type=int, default=3, help="trainings per scikit-learn dataset")
    parser.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_whatif.md"))
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    started = time.perf_counter()
    lines = ["# What-if benchmark (issue 25)", "",
             f"Command: `.venv/bin/python -m bench.bench_whatif --parts {args.parts} --seeds {args.seeds}`", "",
             f"- Machine: {os.cpu_count()} cores, Python {platform.python_version()}, shared with other engineers' "
             f"jobs; load average at the start {os.getloadavg()[0]:.1f}", ""]
    if parts & {"conformal", "early_stopping"}:
        cover, early = sklearn_coverage(args.seeds)
        if "conformal" in parts:
            lines += [f"## Conformal coverage at {COVERAGE:.0%} ({SPLITS} random calibration/test splits)", "",
                      "Shipped models: their validation rows split in halves; scikit-learn models: their test rows "
                      "(never seen in training nor early stopping) split in halves.", ""]
            lines += coverage_table(sample_coverage() + cover) + [""]
        if "early_stopping" in parts:
            lines += ["## Do the early-stopping rows cost coverage?", ""] + early_table(early) + [""]
    if "counterfactual" in parts:
        # lazy: the counterfactual part is its own module (imports TensorFlow models)
        from bench.bench_counterfactual import counterfactual_lines
        lines += counterfactual_lines()
    lines += [f"- Load average at the end {os.getloadavg()[0]:.1f}; total {time.perf_counter() - started:.0f} s", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
