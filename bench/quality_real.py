"""Quality on small REAL datasets: does the library's default ever lose to a linear model?

    .venv/bin/python -m bench.quality_real                 # 5 folds x 2 repeats, library epoch budget
    .venv/bin/python -m bench.quality_real --quick         # 3 folds x 1, 3 epochs, <= 150 rows, 1 extra fusion: a smoke check
    .venv/bin/python -m bench.quality_real --datasets wine,digits --fusions late_concat,film

Datasets are the ones scikit-learn ships: breast_cancer and wine (classification, table only),
diabetes (regression, table only) and digits (8x8 scans of handwritten digits saved as 16 px PNGs,
with a table side derived from each image, see DIGITS_TABLE). Each is written as a dataset folder
(one CSV + images) in a temporary folder and loaded by the library like any user's data.

Per dataset, every method is scored on the SAME folds (train/crossval.cv_splits, repeated k-fold,
stratified for classification): scikit-learn's LogisticRegression (standardized features,
default C) or Ridge (standardized, default alpha) on the table columns, and the library's
`linear`, `tabular_only`, `image_only`, the proposed default (models/proposal.propose_method) and,
when the data has images and a table, every fusion method it allows (the best is reported). The
library holds out an inner split of each fold's training rows for early stopping; scikit-learn
needs none and is fit on the whole training part of the fold (fit + early-stopping rows). Held-out
metrics only. Verdicts: runs/verdicts.gain_verdict (corrected resampled t-interval) on the paired
per-fold differences, default minus each reference.

The shipped samples (skin_lesions, house_prices, growth_sequences) run the same way, loaded with
their intended roles and, for the frames, as an ordered sequence:

    .venv/bin/python -m bench.quality_real --datasets skin_lesions,house_prices,growth_sequences \
        --image-size 32 --fusions early_concat --report quality

Writes bench/<REPORT>.md and bench/<report>.json, by default QUALITY_REAL.md and quality_real.json
(--quick: into --out, default a temp folder).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn import datasets as sk_datasets
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# TensorFlow quiet before Keras loads (multimodal is installed: make test / pip install -e .).
ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from multimodal.core.config import ModelConfig, TrainConfig  # noqa: E402
from multimodal.core.tasks import main_metric  # noqa: E402
from multimodal.data.dataset import Dataset, load_dataset  # noqa: E402
from multimodal.data.inputs import model_inputs  # noqa: E402
from multimodal.data.samples import SAMPLES  # noqa: E402
from multimodal.data.sources import SAMPLE_ROOT  # noqa: E402
from multimodal.models.fusion import FUSION_METHODS, methods_for  # noqa: E402
from multimodal.models.proposal import propose_method  # noqa: E402
from multimodal.runs.verdicts import gain_verdict, paired_differences  # noqa: E402
from multimodal.train.crossval import cross_validate, cv_splits  # noqa: E402

DATASETS = ("breast_cancer", "wine", "diabetes", "digits")
SAMPLE_NAMES = tuple(SAMPLES)   # the shipped samples, loaded as the app loads them (roles, ordered frames)
SKLEARN = "sklearn_linear"     # LogisticRegression or Ridge, labelled by task in the report
REFERENCES = (SKLEARN, "tabular_only", "image_only")   # the default must hold its own against the best of these
DIGITS_PX = 16
DIGITS_TABLE = ("ink_pixels: the number of the image's 64 pixels darker than 8 (of 16), plus Gaussian noise "
                "(sd 2); mass_row: the row (0 top to 7 bottom) of the image's centre of mass, plus Gaussian "
                "noise (sd 0.5). Both are derived from the image itself: the table adds little the image "
                "lacks, so a good fusion should at least match image_only.")


# ---------------------------------------------------------------- datasets as folders

def _write_table(folder: Path, frame: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "data.csv", index=False)
    return folder


def write_dataset(name: str, root: Path, seed: int) -> tuple[Path, str, str]:
    """(dataset folder, task, what the columns are) for one scikit-learn dataset."""
    if name in ("breast_cancer", "wine"):
        bunch = getattr(sk_datasets, f"load_{name}")(as_frame=True)
        frame = bunch.data.copy()
        frame["target"] = [str(bunch.target_names[t]) for t in bunch.target]
        return _write_table(root / name, frame), "classification", f"{bunch.data.shape[1]} numeric measurements"
    if name == "diabetes":
        bunch = sk_datasets.load_diabetes(as_frame=True, scaled=False)
        frame = bunch.data.copy()
        frame["target"] = bunch.target.astype(float)
        return (_write_table(root / name, frame), "regression",
                "10 baseline variables (age, sex, BMI, blood pressure, 6 serum measurements); target: disease "
                "progression one year later")
    if name == "digits":
        bunch = sk_datasets.load_digits()
        rng = np.random.default_rng(seed)
        (root / name / "images").mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (pixels, label) in enumerate(zip(bunch.images, bunch.target)):
            path = f"images/{i:04d}.png"
            gray = (255 - pixels * 255 / 16).clip(0, 255).astype(np.uint8)   # dark ink on white
            Image.fromarray(gray, "L").resize((DIGITS_PX, DIGITS_PX), Image.NEAREST).save(root / name / path)
            mass = pixels.sum()
            row = float((pixels.sum(axis=1) * np.arange(8)).sum() / mass) if mass else 3.5
            rows.append({"image": path, "ink_pixels": round(float((pixels > 8).sum() + rng.normal(0, 2)), 2),
                         "mass_row": round(row + float(rng.normal(0, 0.5)), 3), "target": f"digit {label}"})
        return (_write_table(root / name, pd.DataFrame(rows)), "classification",
                f"1 image column (8x8 scan upscaled to {DIGITS_PX} px) and 2 table columns: {DIGITS_TABLE}")
    raise SystemExit(f"unknown dataset {name!r}; choose from {', '.join(DATASETS + SAMPLE_NAMES)}")


def load_named(name: str, root: Path, seed: int, rows: int | None) -> tuple[Dataset, str]:
    """(dataset, what the columns are): a scikit-learn dataset written as a folder, or a shipped sample
    copied and loaded with its intended roles and, for frames, the user's word that they are ordered."""
    if name in SAMPLES:
        info = SAMPLES[name]
        folder = root / name
        shutil.copytree(SAMPLE_ROOT / name, folder, ignore=shutil.ignore_patterns("pretrained"))
        if rows:
            subsample(folder, rows, seed)
        overrides = {c: r for c, r in info.column_roles.items() if r != "target"}
        ds = load_dataset(folder, task=info.task, target=info.target, overrides=overrides,
                          ordered_images=bool(info.image_sequence))
        spec = ds.features
        columns = (f"{len(spec.image_cols)} image column(s){' (ordered frames)' if spec.ordered_images else ''}, "
                   f"{len(spec.numeric_cols)} numeric and {len(spec.categorical_cols)} categorical column(s); "
                   f"generated sample, see sample_data/{name}/README.md")
        return ds, columns
    folder, task, columns = write_dataset(name, root, seed)
    if rows:
        subsample(folder, rows, seed)
    return load_dataset(folder, task=task, target="target"), columns


def subsample(folder: Path, rows: int, seed: int) -> None:
    """Keep a seeded random `rows` of the CSV (quick mode), in place."""
    frame = pd.read_csv(folder / "data.csv")
    if len(frame) > rows:
        frame.sample(n=rows, random_state=seed).to_csv(folder / "data.csv", index=False)


# ---------------------------------------------------------------- methods

def sklearn_folds(ds: Dataset, splits: list[dict], metric: str) -> dict:
    """LogisticRegression / Ridge on the standardized table (gaps: the median plus a 'was missing' flag, as
    the library does), fit on each fold's whole training part."""
    spec = ds.features
    x = pd.get_dummies(ds.frame[spec.tabular_cols], columns=spec.categorical_cols, dtype=float).to_numpy(float)
    y = ds.frame[ds.target].to_numpy()
    folds = []
    for s in splits:
        fit = np.concatenate([s["train"], s["val"]])
        model = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler(),
                              LogisticRegression(max_iter=5000) if ds.task == "classification" else Ridge())
        model.fit(x[fit], y[fit])
        predicted = model.predict(x[s["test"]])
        value = (accuracy_score(y[s["test"]], predicted) if ds.task == "classification"
                 else mean_absolute_error(y[s["test"]].astype(float), predicted))
        folds.append({"repeat": s["repeat"], "fold": s["fold"], "metrics": {metric: float(value)},
                      "rows": {n: int(len(s[n])) for n in ("train", "val", "test")}})
    values = np.array([f["metrics"][metric] for f in folds])
    return {"arch": SKLEARN, "folds": folds, "mean": {metric: float(values.mean())},
            "std": {metric: float(values.std(ddof=1)) if len(values) > 1 else 0.0}}


def library_methods(ds: Dataset, default: str, fusions: list[str] | None) -> list[str]:
    """linear, the baselines, the default, then every other fusion the data allows (or `fusions`)."""
    spec = ds.features
    allowed = methods_for(bool(spec.image_cols), bool(spec.tabular_cols), len(spec.image_cols))
    first = [m for m in dict.fromkeys(("linear", "tabular_only", "image_only", default)) if m in allowed]
    rest = [m for m in allowed if m not in first and not FUSION_METHODS[m].is_baseline]
    if fusions is not None:
        rest = [m for m in rest if m in fusions]
    return first + (rest if spec.image_cols and spec.tabular_cols else [])


def fold_sizes(result: dict) -> tuple[int, int]:
    """(rows a fold learns from, held-out rows), averaged over folds, for the corrected interval."""
    rows = [f["rows"] for f in result["folds"]]
    return (round(np.mean([r["train"] + r["val"] for r in rows])), round(np.mean([r["test"] for r in rows])))


def verdicts(methods: dict, default: str, metric: str, higher: bool, repeats: int) -> dict:
    """The default against each reference it can be compared with, on the paired folds."""
    out = {}
    for ref in [SKLEARN, "linear", "tabular_only", "image_only"]:
        if ref not in methods or ref == default or default not in methods:
            continue
        values = lambda m: [f["metrics"][metric] for f in methods[m]["folds"]]  # noqa: E731
        diffs = paired_differences(values(default), values(ref), higher)
        n_train, n_test = fold_sizes(methods[default])
        v = gain_verdict(diffs, n_train, n_test, metric, repeats=repeats)
        out[ref] = {"mean": v.mean, "low": v.low, "high": v.high, "verdict": v.verdict, "sentence": v.sentence}
    return out


def run(args) -> dict:
    fusions = args.fusions.split(",") if args.fusions else None
    settings = {"folds": args.folds, "repeats": args.repeats, "seed": args.seed, "image_size": args.image_size,
                "epochs": args.epochs or "auto (library budget)", "rows": args.rows or "all", "quick": args.quick,
                "batch_size": TrainConfig(data="").batch_size or "auto (small_data_settings)",
                "patience": TrainConfig(data="").patience or "auto (small_data_settings)",
                "linear_in_registry": "linear" in FUSION_METHODS}
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
               f"{platform.platform(terse=True)}")
    results = {"report": args.report, "settings": settings, "machine": machine,
               "date": time.strftime("%Y-%m-%d %H:%M"), "datasets": {}}
    workdir = Path(tempfile.mkdtemp(prefix="quality-real-"))
    started = time.perf_counter()
    try:
        for name in args.datasets.split(","):
            ds, columns = load_named(name, workdir, args.seed, args.rows)
            task, folder = ds.task, ds.root
            metric, higher = main_metric(ds.task)
            metric = f"val_{metric}"
            proposal = propose_method(ds.features)
            base = TrainConfig(data=str(folder), target=ds.target, task=task, epochs=args.epochs, seed=args.seed,
                               ordered_images=ds.ordered_images,
                               model=ModelConfig(image_size=args.image_size, seed=args.seed))
            splits = cv_splits(ds, args.folds, args.repeats, args.seed, base.val_fraction)
            inputs = model_inputs(ds.frame, ds.root, ds.features, args.image_size)
            entry = {"task": task, "rows": len(ds.frame), "columns": columns, "metric": metric,
                     "default": proposal.arch, "default_reason": proposal.reason, "methods": {}}
            results["datasets"][name] = entry
            t0 = time.perf_counter()
            entry["methods"][SKLEARN] = {**sklearn_folds(ds, splits, metric), "seconds": round(time.perf_counter() - t0, 1)}
            _print(name, SKLEARN, entry["methods"][SKLEARN], metric)
            for arch in library_methods(ds, proposal.arch, fusions):
                t0 = time.perf_counter()
                config = replace(base, model=replace(base.model, arch=arch))
                r = cross_validate(config, args.folds, args.repeats, dataset=ds, inputs=inputs, splits=splits)
                entry["methods"][arch] = {**r, "seconds": round(time.perf_counter() - t0, 1)}
                _print(name, arch, entry["methods"][arch], metric)
            fused = [m for m in entry["methods"] if m in FUSION_METHODS and not FUSION_METHODS[m].is_baseline]
            sign = 1 if higher else -1
            if fused:
                entry["best_fusion"] = max(fused, key=lambda m: sign * entry["methods"][m]["mean"][metric])
            entry["verdicts"] = verdicts(entry["methods"], proposal.arch, metric, higher, args.repeats)
            entry["check"] = done_check(entry, metric, higher)
            results["total_seconds"] = round(time.perf_counter() - started, 1)
            write(results, args.out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _print(dataset: str, method: str, r: dict, metric: str) -> None:
    print(f"{dataset:14} {method:16} {metric} {r['mean'][metric]:.4g} +- {r['std'][metric]:.3g} "
          f"({r['seconds']:.0f}s)", flush=True)


def done_check(entry: dict, metric: str, higher: bool) -> dict:
    """The issue's bar: the default within one std of the best reference (or better), and never below
    the scikit-learn linear model by more than one std."""
    methods, default = entry["methods"], entry["default"]
    if default not in methods:
        return {}
    sign = 1 if higher else -1
    refs = [m for m in REFERENCES if m in methods and m != default]
    best = max(refs, key=lambda m: sign * methods[m]["mean"][metric])
    d, b, s = methods[default], methods[best], methods[SKLEARN]
    within = sign * (d["mean"][metric] - b["mean"][metric]) >= -max(d["std"][metric], b["std"][metric])
    vs_linear = sign * (d["mean"][metric] - s["mean"][metric]) >= -max(d["std"][metric], s["std"][metric])
    return {"best_reference": best, "within_one_std_of_best": bool(within), "not_below_linear": bool(vs_linear)}


# ---------------------------------------------------------------- report

def _fmt(value: float, metric: str) -> str:
    if metric == "val_accuracy":
        return f"{value:.3f}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"


def _label(method: str, classification: bool) -> str:
    return ("LogisticRegression" if classification else "Ridge") if method == SKLEARN else method


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{results['report']}.json").write_text(json.dumps(results, indent=1))
    s = results["settings"]
    title = ("the shipped samples" if set(results["datasets"]) <= set(SAMPLE_NAMES)
             else "small real datasets (scikit-learn's bundled data)")
    lines = [f"# Quality on {title}", "",
             f"Produced by `bench/quality_real.py` (raw numbers: `{results['report']}.json` beside this file).", ""]
    if s["quick"]:
        lines += ["**Quick mode: a smoke check of the script (few rows, few epochs), not a measurement.**", ""]
    lines += ["## Settings", "",
              f"- {s['folds']}-fold cross-validation x {s['repeats']} repeat(s), seed {s['seed']}: the SAME folds for "
              "every method of a dataset (stratified for classification); rows: "
              f"{s['rows']}; image size {s['image_size']} px; epochs {s['epochs']}; batch {s['batch_size']}; "
              f"patience {s['patience']}; other settings are the library defaults.",
              "- `sklearn_linear`: scikit-learn LogisticRegression (classification) or Ridge (regression) on the "
              "standardized table columns (gaps filled with the median plus a 'was missing' flag), default "
              "regularisation, fit on the fold's whole training part. The "
              "library's methods hold out an inner 20% of those rows for early stopping.",
              "- The default is `models/proposal.propose_method` on the data. Verdicts: default minus the "
              "reference per fold, 95% corrected resampled t-interval (Nadeau & Bengio 2003), "
              "`runs/verdicts.py`.",
              "- `linear` in the registry: " + ("yes" if s["linear_in_registry"] else "NO (not measured)") + ".",
              f"- Machine: {results['machine']}. Date: {results['date']}. "
              f"Total time: {results.get('total_seconds', 0.0):.0f} s.", ""]
    for name, entry in results["datasets"].items():
        metric, default = entry["metric"], entry["default"]
        higher = metric == "val_accuracy"
        lines += [f"## {name} ({entry['task']}, {entry['rows']} rows)", "",
                  f"Columns: {entry['columns']}", "",
                  f"Proposed default: `{default}` ({entry['default_reason']}).", "",
                  f"| method | {metric[4:]} mean ± std | folds | time |", "|---|---|---|---|"]
        order = sorted(entry["methods"], key=lambda m: (-1 if higher else 1) * entry["methods"][m]["mean"][metric])
        for m in order:
            r = entry["methods"][m]
            label = f"**{m}** (default)" if m == default else _label(m, higher)
            if m == entry.get("best_fusion"):
                label += " (best fusion)"
            folds = ", ".join(_fmt(f["metrics"][metric], metric) for f in r["folds"])
            lines.append(f"| {label} | {_fmt(r['mean'][metric], metric)} ± {_fmt(r['std'][metric], metric)} | "
                         f"{folds} | {r['seconds']:.0f} s |")
        lines.append("")
        for ref, v in entry["verdicts"].items():
            lines.append(f"- `{default}` minus {_label(ref, higher)} (positive: default better): {v['sentence']}")
        c = entry.get("check")
        if c:
            lines.append(f"- Bar: best reference {_label(c['best_reference'], higher)}; default within one std of it: "
                         f"{'yes' if c['within_one_std_of_best'] else 'NO'}; not below the linear model by more "
                         f"than one std: {'yes' if c['not_below_linear'] else 'NO'}.")
        lines.append("")
    (out / f"{results['report'].upper()}.md").write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--epochs", type=int, default=None, help="default: the library's budget from the data size")
    p.add_argument("--image-size", type=int, default=DIGITS_PX)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows", type=int, default=None, help="keep a seeded random subset of each dataset")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--fusions", default=None, help="fusion methods to try besides the default (default: all allowed)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: bench/, or a temp folder with --quick)")
    p.add_argument("--report", default="quality_real",
                   help="report name: <NAME>.json and <NAME upper>.md (the samples: --report quality)")
    p.add_argument("--quick", action="store_true",
                   help="3 folds x 1, 3 epochs, at most 150 rows, one extra fusion: checks the script")
    args = p.parse_args()
    if args.quick:
        args.folds, args.repeats = 3, 1
        args.epochs = args.epochs or 3
        args.rows = args.rows or 150
        args.fusions = args.fusions or "early_concat"
    args.out = args.out or (Path(tempfile.mkdtemp(prefix="quality-real-report-")) if args.quick else ROOT / "bench")
    run(args)
    print(f"report: {args.out / (args.report.upper() + '.md')}")


if __name__ == "__main__":
    main()
