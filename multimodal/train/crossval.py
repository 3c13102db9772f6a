"""Repeated k-fold cross-validation and baseline comparisons, on top of `training.train`.

Validation sets of 50-100 rows are noisy, so one split says little. `cross_validate` trains the
same config on k folds, `repeats` times with different seeded shuffles, and reports every fold
plus the mean and standard deviation of each metric.

Honesty rule: a fold's reported metrics (`val_*` here) come from the held-out fold, which no
training step sees and which early stopping does not look at either: early stopping and the
best-weights choice use an inner validation split carved (seeded, stratified) from the training
folds, `config.val_fraction` of them. A split column with test rows: those rows are left out.

A comparison runs in one of core/comparison.MODES (its ComparisonOptions' mode): the fast ones
train each image encoder once per fold (or load a pretrained one) and every head on its cached
maps; "end_to_end" trains every model whole.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from multimodal.core.comparison import MIN_FOLDS, ComparisonOptions
from multimodal.core.config import TrainConfig
from multimodal.core.errors import DataError
from multimodal.core.events import Event, Status, append_event, end_event, event, stop_requested
from multimodal.core.tasks import main_metric
from multimodal.data.cells import label_text
from multimodal.data.dataset import Dataset, load_dataset_for
from multimodal.data.inputs import FeatureSpec, model_inputs
from multimodal.data.roles import checked_split_labels
from multimodal.models.fusion import baseline_names, methods_for
from multimodal.runs.verdicts import gain_verdict, paired_differences
from multimodal.train.feature_cache import FeatureCache
from multimodal.train.second_process import SecondProcess, lanes
from multimodal.train.stagewise import FastFolds, FoldsTrainer, FoldTrainer, reads_images, resolve_mode
from multimodal.train.training import train

MIN_FOLD_ROWS = 2
COMPARISON_FILE = "comparison.json"
FoldCallback = Callable[[str, dict], None]   # (arch, the fold's result) after every trained fold


def _labels(ds: Dataset) -> np.ndarray | None:
    if ds.task != "classification":
        return None
    return ds.frame[ds.target].map(label_text).to_numpy()


def kfold_indices(n_or_rows, k: int, seed: int, labels: np.ndarray | None = None) -> list[np.ndarray]:
    """k disjoint sorted folds covering `rows` (an int n means 0..n-1). With labels, each class is
    dealt round-robin over the folds after a seeded shuffle, so every fold keeps the class mix."""
    rows = np.arange(n_or_rows) if np.isscalar(n_or_rows) else np.asarray(n_or_rows, dtype=np.int64)
    if k < MIN_FOLDS:
        raise DataError(f"cross-validation needs at least {MIN_FOLDS} folds, got {k}")
    if len(rows) < k * MIN_FOLD_ROWS:
        raise DataError(f"{len(rows)} rows are too few for {k} folds; use fewer folds")
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    if labels is None:
        for i, r in enumerate(rng.permutation(rows)):
            folds[i % k].append(int(r))
    else:
        labels = np.asarray(labels)[rows] if len(labels) != len(rows) else np.asarray(labels)
        offset = 0
        for c in sorted(set(labels.tolist())):
            members = rng.permutation(rows[labels == c])
            for i, r in enumerate(members):
                folds[(i + offset) % k].append(int(r))
            offset += len(members)  # the next class starts where this one ended: balanced sizes
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


def _inner_split(train_rows: np.ndarray, fraction: float, seed: int, labels: np.ndarray | None):
    """(fit rows, early-stopping rows) from the training folds; stratified when labels are given."""
    rng = np.random.default_rng(seed)
    groups = [train_rows] if labels is None else [train_rows[labels[train_rows] == c]
                                                  for c in sorted(set(labels[train_rows].tolist()))]
    val = []
    for g in groups:
        if len(g) >= 2:
            n = min(max(1, int(round(len(g) * fraction))), len(g) - 1)
            val.append(rng.permutation(g)[:n])
    val = np.sort(np.concatenate(val)) if val else train_rows[:1]
    return np.setdiff1d(train_rows, val), val


def cv_splits(ds: Dataset, k: int, repeats: int, seed: int, val_fraction: float) -> list[dict]:
    """Every (repeat, fold) split: {"repeat", "fold", "train", "val" (early stopping), "test" (held out)}."""
    labels = _labels(ds)
    rows = np.arange(len(ds.frame))
    if ds.split_col:  # rows marked test stay out of cross-validation
        rows = rows[checked_split_labels(ds.frame, ds.split_col).to_numpy() != "test"]
    out = []
    for r in range(repeats):
        folds = kfold_indices(rows, k, seed + 1000 * r, labels[rows] if labels is not None else None)
        for f, held in enumerate(folds):
            rest = np.setdiff1d(rows, held)
            fit, stop = _inner_split(rest, val_fraction, seed + 1000 * r + f, labels)
            out.append({"repeat": r, "fold": f, "train": fit, "val": stop, "test": held})
    return out


def _summarise(folds: list[dict]) -> tuple[dict, dict]:
    keys = sorted({k for f in folds for k in f["metrics"]})
    mean, std = {}, {}
    for key in keys:
        values = np.array([f["metrics"][key] for f in folds if key in f["metrics"]], dtype=float)
        mean[key] = float(values.mean())
        std[key] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return mean, std


def fold_jobs(config: TrainConfig, splits: list[dict]) -> list[tuple[TrainConfig, dict]]:
    """Every fold's (config, split): the config seeded per fold, so each fold trains as its own run."""
    return [(replace(config, seed=config.seed + 1000 * s["repeat"] + s["fold"]), s) for s in splits]


def cross_validate(config: TrainConfig, k: int = 5, repeats: int = 1, *, dataset: Dataset | None = None,
                   out_dir: Path | None = None, workdir: Path | None = None, keep_runs: bool = False,
                   inputs: dict | None = None, splits: list[dict] | None = None,
                   on_fold: FoldCallback | None = None, fit_fold: FoldTrainer | None = None,
                   fit_folds: FoldsTrainer | None = None) -> dict:
    """Repeated (stratified for classification) k-fold cross-validation of one config.

    Returns {"arch", "task", "k", "repeats", "seed", "folds": [{"repeat", "fold", "rows",
    "epochs_run", "best_epoch", "metrics": {"val_<metric>": held-out value, ...}}],
    "mean": {...}, "std": {...}, "params" (the model's parameter count, when the trainer says)}
    (std over folds, ddof=1). Run folders go to out_dir (kept
    when keep_runs), else to a temporary folder that is removed. fit_fold(fold config, run folder,
    split) trains one fold (a fast mode's, stagewise.FastFolds); default `training.train`. A fold
    trained in a fast mode also records "encoder" (the frozen image encoder's record, stage 1: the
    rows it trained on; None for a method without images) and "maps" (how many were computed or
    read from the cache, and the seconds; None without images). fit_folds(every (fold config,
    split)) trains every fold at once (stagewise.FastFolds.folds_trainer: one compiled model,
    train/fold_batched.py) and returns their summaries; it wins over fit_fold, on_fold then follows
    the batch fold by fold.
    """
    ds = dataset or load_dataset_for(config, workdir)
    if inputs is None:
        inputs = model_inputs(ds.frame, ds.root, ds.features, config.model.image_size)
    splits = splits or cv_splits(ds, k, repeats, config.seed, config.val_fraction)
    root = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="multimodal-cv-"))
    folds, params = [], None
    jobs = fold_jobs(config, splits)
    fold_configs = [fold_config for fold_config, _ in jobs]
    batched = fit_folds(jobs) if fit_folds else None
    try:
        for i, (s, fold_config) in enumerate(zip(splits, fold_configs)):
            run_dir = root / f"{config.model.arch}-r{s['repeat']}-f{s['fold']}"
            if batched is not None:
                summary = batched[i]
            elif fit_fold is None:
                summary = train(fold_config, run_dir, dataset=ds, split={k_: s[k_] for k_ in ("train", "val", "test")},
                                inputs=inputs)
            else:
                summary = fit_fold(fold_config, run_dir, s)
            held = {f"val_{m[len('test_'):]}": v for m, v in summary["metrics"].items() if m.startswith("test_")}
            folds.append({"repeat": s["repeat"], "fold": s["fold"],
                          "rows": {n: int(len(s[n])) for n in ("train", "val", "test")},
                          "epochs_run": summary["epochs_run"], "best_epoch": summary.get("best_epoch"),
                          "target_transform": summary.get("target_transform"),
                          "train_seconds": summary["train_seconds"], "metrics": held,
                          "run_dir": str(run_dir) if keep_runs else None,
                          **({"encoder": summary["frozen_encoder"], "maps": summary["maps"]}
                             if "frozen_encoder" in summary else {}),
                          **({"batched": summary["batched"]} if "batched" in summary else {})})
            params = summary.get("params", params)
            if on_fold:
                on_fold(config.model.arch, folds[-1])
            if not keep_runs:
                shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        if not out_dir and not keep_runs:
            shutil.rmtree(root, ignore_errors=True)
    mean, std = _summarise(folds)
    return {"arch": config.model.arch, "task": ds.task, "k": len({s["fold"] for s in splits}),
            "repeats": len({s["repeat"] for s in splits}), "seed": config.seed, "folds": folds,
            "mean": mean, "std": std, **({"params": params} if params is not None else {})}


def held_out_metric(task: str) -> tuple[str, bool]:
    """(fold metric key, higher is better): the task's main metric on the held-out fold (val_*)."""
    metric, higher = main_metric(task)
    return f"val_{metric}", higher


def allowed_baselines(spec: FeatureSpec) -> list[str]:
    """The baselines (image_only, tabular_only, linear, ...) the data's columns allow: the
    registry's `branches` of each method decide, as on the Model page."""
    usable = set(methods_for(bool(spec.image_cols), bool(spec.tabular_cols), len(spec.image_cols)))
    return [name for name in baseline_names() if name in usable]


def comparison_archs(spec: FeatureSpec, arch: str, archs: Sequence[str] | None = None) -> list[str]:
    """What a comparison trains: the baselines the data allows, then `arch`, then any extra methods
    (a baseline the data does not allow is left out wherever it is named)."""
    allowed = allowed_baselines(spec)
    names = [*allowed, arch, *(archs or [])]
    return [n for n in dict.fromkeys(names) if n in allowed or n not in baseline_names()]


def fold_sizes(splits: list[dict]) -> tuple[int, int]:
    """(n_train, n_test) for the verdict's interval: the rows a fold learns from (every row outside
    its held-out fold, early-stopping rows included) and the held-out rows, averaged over folds."""
    n_train = np.mean([len(s["train"]) + len(s["val"]) for s in splits])
    n_test = np.mean([len(s["test"]) for s in splits])
    return int(round(n_train)), int(round(n_test))


def fusion_gains(results: dict[str, dict], arch: str, metric: str, higher: bool,
                 n_train: int, n_test: int) -> dict | None:
    """Every compared method's gain over the best baseline (the one with the best mean), paired by
    fold, with its verdict (runs/verdicts.gain_verdict); None when there is no baseline to beat.

    Compared methods: every non-baseline trained, or `arch` itself when it is a baseline."""
    sign = 1.0 if higher else -1.0
    baselines = [b for b in baseline_names() if b in results and b != arch]
    methods = [a for a in results if a not in baselines]
    if not baselines or not methods:
        return None
    best_baseline = max(baselines, key=lambda b: sign * results[b]["mean"][metric])

    def scores(name: str) -> list[float]:
        return [f["metrics"][metric] for f in results[name]["folds"]]

    gains = []
    for name in methods:
        diffs = paired_differences(scores(name), scores(best_baseline), higher)
        verdict = gain_verdict(diffs, n_train, n_test, metric, repeats=results[name]["repeats"])
        gains.append({"arch": name, "per_fold": [float(d) for d in diffs], **asdict(verdict)})
    best = max(gains, key=lambda g: sign * results[g["arch"]]["mean"][metric])
    return {"best_baseline": best_baseline, "best": best, "methods": gains,
            "rows": {"train": n_train, "test": n_test}}


def default_folds(rows: int) -> int:
    """The comparison's default k: 3 folds below 400 rows (each held-out fold keeps 100+ rows
    only when there are enough), else 5."""
    return 3 if rows < 400 else 5


def compare_with_baselines(config: TrainConfig, options: ComparisonOptions, *, dataset: Dataset | None = None,
                           workdir: Path | None = None, out_dir: Path | None = None,
                           on_fold: FoldCallback | None = None, cache_dir: Path | None = None,
                           image_cache: Path | None = None, keep_models: Path | None = None) -> dict:
    """Cross-validate every baseline the data allows, config's method and `options.archs` on the SAME folds
    with the same settings, and judge each method's gain over the best baseline (fusion_gains).

    options: k folds x repeats, the extra methods (archs), the mode and finetune. mode None is the
    fast default (stagewise.default_mode: "stagewise" for small_cnn, "frozen" for a pretrained
    encoder with its weights at hand). In a fast mode the image methods' heads train on cached maps
    of un-augmented images (stagewise.py); finetune then trains each of them end to end.
    cache_dir: where the maps are cached on disk (None: in memory only, for this comparison);
    image_cache: the decoded-image cache (training.default_image_cache). keep_models: every method's
    model of the first fold saved whole under keep_models/<method> as it finishes (fast modes only:
    stagewise.FastFolds' keep_dir; the Playground explains them). options.processes 2: a second
    process trains methods at the same time (fast modes, not finetune; train/second_process.py),
    with the same results; each method's result says which trained it ("process": "main" or "second").

    Returns {"metric", "higher_is_better", "arch", "mode", "seconds" (wall time), "results": {arch:
    cross_validate(...)}, "gain": {"best_baseline", "best": the best method's gain, "methods":
    [every method's gain], "rows": {"train", "test"}} or None}. A gain is {"arch", "per_fold"
    (positive = better than the baseline: accuracy up or MAE down), and runs/verdicts.GainVerdict's
    fields: "mean", "low", "high", "splits", "confidence", "verdict", "sentence", "caveat"}.
    JSON-serialisable.
    """
    started = time.perf_counter()
    ds = dataset or load_dataset_for(config, workdir)
    k, repeats = options.k, options.repeats
    names = comparison_archs(ds.features, config.model.arch, options.archs)
    mode, weights = resolve_mode(options.mode, config, any(reads_images(a) for a in names))
    if keep_models is not None and mode == "end_to_end":
        raise ValueError("keep_models needs a fast mode (stagewise or frozen), not end_to_end")
    fast_mode = mode != "end_to_end"
    # Started first: it imports TensorFlow while this process reads the images.
    second = SecondProcess.started() if options.processes > 1 and fast_mode and not options.finetune \
        and len(names) > 1 else None

    def config_of(arch: str) -> TrainConfig:
        return replace(config, model=replace(config.model, arch=arch))

    try:
        inputs = model_inputs(ds.frame, ds.root, ds.features, config.model.image_size, cache_dir=image_cache)
        splits = cv_splits(ds, k, repeats, config.seed, config.val_fraction)
        results = {}
        fast = FastFolds(mode, config, ds, inputs, weights, FeatureCache(cache_dir), finetune=options.finetune,
                         workdir=workdir, keep_dir=keep_models) if fast_mode else None
        # The methods without images first: their results come in seconds, before stage 1's encoders.
        order = sorted(names, key=reads_images)
        reporting = threading.Lock()   # on_fold is called from the second process's thread too

        def reported(arch: str, fold: dict) -> None:
            with reporting:
                if on_fold:
                    on_fold(arch, fold)

        def validate(arch: str, fit_folds: FoldsTrainer | None, process: str) -> None:
            results[arch] = cross_validate(config_of(arch), k, repeats, dataset=ds, inputs=inputs, splits=splits,
                                           out_dir=Path(out_dir) / arch if out_dir else None, on_fold=reported,
                                           fit_fold=fast.fold_trainer(arch) if fast else None, fit_folds=fit_folds)
            results[arch]["process"] = process

        def trained_there(arch: str, summaries: list[dict]) -> None:   # the second process's, as they come
            validate(arch, lambda jobs: summaries, "second")

        for arch in lanes(order, fast, lambda a: fold_jobs(config_of(a), splits), second, trained_there):
            validate(arch, fast.folds_trainer(arch) if fast else None, "main")
    finally:
        if second is not None:
            second.close()
    results = {arch: results[arch] for arch in names}
    metric, higher = held_out_metric(ds.task)
    gain = fusion_gains(results, config.model.arch, metric, higher, *fold_sizes(splits))
    return {"metric": metric, "higher_is_better": higher, "arch": config.model.arch, "mode": mode,
            "finetune": options.finetune and mode != "end_to_end", "results": results, "gain": gain,
            "seconds": round(time.perf_counter() - started, 3)}


class ComparisonStopped(Exception):
    """The user asked a running comparison to stop (the STOP file in its folder)."""


def run_comparison(config: TrainConfig, out_dir: Path, options: ComparisonOptions, *,
                   dataset: Dataset | None = None, workdir: Path | None = None,
                   cache_dir: str | Path | None = None) -> dict | None:
    """compare_with_baselines as a background job (the Compare page runs it in a worker process,
    its cache_dir inside the session's folder).

    Progress goes to out_dir/events.jsonl: one "start" (the methods, the mode, how many folds will be trained),
    a "fold" line after each trained fold (its method, held-out value and seconds), and an "end"
    line. The result is out_dir/comparison.json. A STOP file in out_dir ends it after the current
    fold (returns None; nothing is saved); a fold-batched method's folds end together, so its
    "fold" lines come together when the method is done (train/fold_batched.py).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = dataset or load_dataset_for(config, workdir)
    k, repeats = options.k, options.repeats
    names = comparison_archs(ds.features, config.model.arch, options.archs)
    mode, _ = resolve_mode(options.mode, config, any(reads_images(a) for a in names))
    total = len(names) * k * repeats
    metric, _ = held_out_metric(ds.task)
    append_event(out_dir, event(Event.START, archs=names, folds=total, k=k, repeats=repeats, mode=mode))
    done = 0

    def progress(arch: str, fold: dict) -> None:
        nonlocal done
        done += 1
        append_event(out_dir, event(Event.FOLD, arch=arch, done=done, total=total,
                                    value=fold["metrics"].get(metric), seconds=fold["train_seconds"]))
        if stop_requested(out_dir):
            raise ComparisonStopped

    try:
        # Fold runs go to a temporary folder: only the summary is kept.
        # The mode resolved above: resolving it again could differ if the weights came or went meanwhile.
        result = compare_with_baselines(config, replace(options, mode=mode), dataset=ds, on_fold=progress,
                                        cache_dir=Path(cache_dir) if cache_dir else None, workdir=workdir)
    except ComparisonStopped:
        append_event(out_dir, end_event(Status.STOPPED, done=done, total=total))
        return None
    result.update(dataset=ds.name, target=ds.target, task=ds.task, k=k, repeats=repeats, config=config.to_dict(),
                  features=asdict(ds.features))
    (out_dir / COMPARISON_FILE).write_text(json.dumps(result, indent=2))
    append_event(out_dir, end_event(Status.FINISHED, done=done, total=total, seconds=result["seconds"]))
    return result


def load_comparisons(root: Path) -> list[dict]:
    """Finished comparisons (comparison.json) in the folders directly under root, oldest first."""
    found = sorted(Path(root).glob(f"*/{COMPARISON_FILE}"), key=lambda p: p.stat().st_mtime) if Path(root).exists() else []
    return [{**json.loads(p.read_text()), "dir": str(p.parent)} for p in found]


def comparison_summary(result: dict) -> list[dict]:
    """One row per method of a comparison: arch, held-out mean and std of the main metric and its
    per-fold values, best first (baselines included)."""
    metric, higher = result["metric"], result["higher_is_better"]
    rows = [{"arch": arch, "mean": r["mean"][metric], "std": r["std"][metric],
             "folds": [f["metrics"][metric] for f in r["folds"]]} for arch, r in result["results"].items()]
    return sorted(rows, key=lambda row: -row["mean"] if higher else row["mean"])
