"""The Fusion Playground's race: the project's cross-validated comparison on a generated dataset,
reported method by method as each one finishes, then one saved model per method to explain.

The leaderboard is `crossval.compare_with_baselines` (every baseline the data allows, then the
chosen fusion methods, on the same folds) and its verdicts are `crossval.fusion_gains` on the
methods finished so far: the Compare page's verdict code, applied as soon as a method's folds
are in. Every method's model of the first fold is kept whole (`compare_with_baselines`' keep_models:
the very model whose score is on the leaderboard, no second training) so its branch Shapley shares
can be computed (explain/branch_shares.py, by the CLI or the app's server); this layer never
imports explain/.

Progress goes to out_dir/events.jsonl (core/events.py): "start", "fold", "method" (a leaderboard
row), "model" (a saved model's folder), "end". A STOP file ends the race after the current fold or
model; the result file RACE_FILE is written whole (temporary name, then renamed) only when the
race finishes, and saved models appear under out_dir/models/ only once complete.
See docs/ARCHITECTURE.md, "The Fusion Playground".
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from multimodal.core.comparison import ComparisonOptions
from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.core.events import append_event, stop_requested
from multimodal.data.dataset import load_dataset
from multimodal.models.fusion import baseline_names
from multimodal.runs.claims import chance_scores
from multimodal.train.crossval import (
    compare_with_baselines,
    comparison_archs,
    cv_splits,
    fold_sizes,
    fusion_gains,
    held_out_metric,
)

RACE_FILE = "race.json"
# A race trains every model with a short budget: the generated signals are simple (a colour, two
# columns) and a learner waits for the leaderboard. Measured in bench/RESULTS_playground.md.
RACE_EPOCHS = 30
RACE_PATIENCE = 5
MODELS_DIR = "models"
RaceListener = Callable[[dict], None]   # every event, as it is appended


class RaceStopped(Exception):
    """A STOP file in the race's folder: the race ends after the current fold or model."""


def race_config(csv: Path, methods: list[str], image_size: int, seed: int, epochs: int | None,
                patience: int | None) -> TrainConfig:
    fusion = [m for m in methods if m not in baseline_names()]
    arch = fusion[0] if fusion else ModelConfig().arch
    return TrainConfig(data=str(csv), seed=seed, epochs=epochs, patience=patience,
                       model=ModelConfig(arch=arch, image_size=image_size, seed=seed))


class _Board:
    """The leaderboard as folds come in: a method's row once all its folds are in, and fusion rows
    only once every baseline is in (their verdict is against the best baseline)."""

    def __init__(self, names: list[str], k: int, metric: str, higher: bool, sizes: tuple[int, int]):
        self.names, self.k, self.metric, self.higher, self.sizes = names, k, metric, higher, sizes
        self.folds: dict[str, list[dict]] = {n: [] for n in names}
        self.sent: list[str] = []

    def results(self) -> dict[str, dict]:
        done = {n: f for n, f in self.folds.items() if len(f) == self.k}
        return {n: {"folds": f, "repeats": 1, "mean": {self.metric: float(np.mean([x["metrics"][self.metric]
                                                                             for x in f]))}}
                for n, f in done.items()}

    def add(self, arch: str, fold: dict) -> list[dict]:
        """The rows that became final with this fold."""
        self.folds[arch].append(fold)
        results = self.results()
        baselines = [n for n in self.names if n in baseline_names()]
        ready = [n for n in self.names if n in results and n not in self.sent
                 and (n in baselines or all(b in results for b in baselines))]
        gains = fusion_gains(results, "", self.metric, self.higher, *self.sizes) if ready else None
        verdicts = {g["arch"]: g for g in gains["methods"]} if gains else {}
        rows = []
        for name in ready:
            values = [f["metrics"][self.metric] for f in self.folds[name]]
            gain = verdicts.get(name)
            rows.append({"arch": name, "baseline": name in baselines, "mean": float(np.mean(values)),
                         "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, "folds": values,
                         "best_baseline": gains["best_baseline"] if gains else None,
                         "verdict": gain["verdict"] if gain else None, "sentence": gain["sentence"] if gain else None,
                         "low": gain["low"] if gain else None, "high": gain["high"] if gain else None,
                         "gain": gain["mean"] if gain else None})
            self.sent.append(name)
        return rows


def ranked(rows: list[dict], archs: list[str], higher: bool) -> list[dict]:
    """Leaderboard rows (each with "arch" and "mean") best first. A tie goes to the method listed
    first in `archs` (the baselines, then the methods in the order chosen): the order never depends
    on which method finished first (two processes finish them in varying order). Means equal to 6
    significant digits tie: the same held-out rows right, summed in another order over the folds,
    differ in the last bits of a float32."""
    def key(row: dict) -> tuple[float, int]:
        mean = float(f"{row['mean']:.6g}")
        return -mean if higher else mean, archs.index(row["arch"])
    return sorted(rows, key=key)


def _emit(out_dir: Path, listener: RaceListener | None, event: dict) -> None:
    append_event(out_dir, event)
    if listener:
        listener(event)


def _write_whole(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_race(csv: Path, out_dir: Path, methods: list[str], *, k: int = 3, image_size: int, seed: int = 0,
             epochs: int | None = RACE_EPOCHS, patience: int | None = RACE_PATIENCE, explain: bool = True,
             listener: RaceListener | None = None, processes: int = 1) -> dict | None:
    """Race `methods` (plus every baseline the data allows) on the dataset at `csv`, k folds.

    processes: ComparisonOptions' (2: a second process trains methods at the same time).

    Returns {"metric", "higher_is_better", "k", "archs", "rows": [leaderboard rows, best first],
    "chance" (each fold's score of the constant predictor, runs/claims.chance_scores), "sizes",
    "gain" (crossval's), "models": {arch: saved run folder} (explain=True), "seconds", "first_result_seconds"}
    and writes it to out_dir/RACE_FILE; None when stopped (nothing but the events is left)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(csv)
    config = race_config(csv, methods, image_size, seed, epochs, patience)
    names = comparison_archs(ds.features, config.model.arch, list(methods))
    metric, higher = held_out_metric(ds.task)
    splits = cv_splits(ds, k, 1, config.seed, config.val_fraction)
    board = _Board(names, k, metric, higher, fold_sizes(splits))
    chance = chance_scores(ds.frame[ds.target].to_numpy(), splits, ds.task)
    emit = lambda event: _emit(out_dir, listener, event)  # noqa: E731
    emit({"type": "start", "archs": names, "k": k, "metric": metric, "higher_is_better": higher, "task": ds.task,
          "rows_total": len(ds.frame)})
    clock = {"start": time.perf_counter(), "first": None}
    leaderboard: list[dict] = []
    models: dict[str, str] = {}

    def on_fold(arch: str, fold: dict) -> None:
        emit({"type": "fold", "arch": arch, "fold": fold["fold"], "value": fold["metrics"].get(metric)})
        for row in board.add(arch, fold):
            clock["first"] = clock["first"] or time.perf_counter() - clock["start"]
            leaderboard.append(row)
            emit({"type": "method", **row})
        if explain and len(board.folds[arch]) == k:   # its first fold's model is kept whole by now
            models[arch] = str(out_dir / MODELS_DIR / arch)
            emit({"type": "model", "arch": arch, "run_dir": models[arch], "rows": [int(i) for i in splits[0]["test"]]})
        if stop_requested(out_dir):
            raise RaceStopped

    try:   # the feature maps stay in memory: nothing of them outlives the race
        result = compare_with_baselines(config, ComparisonOptions(k, archs=tuple(methods), processes=processes), dataset=ds,
                                        on_fold=on_fold, workdir=out_dir,
                                        keep_models=out_dir / MODELS_DIR if explain else None)
    except RaceStopped:
        shutil.rmtree(out_dir / MODELS_DIR, ignore_errors=True)
        emit({"type": "end", "status": "stopped"})
        return None
    rows = ranked(leaderboard, names, higher)
    race = {"metric": metric, "higher_is_better": higher, "task": ds.task, "k": k, "archs": names, "rows": rows,
            "gain": result["gain"], "models": models, "seconds": round(time.perf_counter() - clock["start"], 3),
            "comparison_seconds": result["seconds"], "first_result_seconds": round(clock["first"] or 0.0, 3),
            "sizes": list(fold_sizes(splits)), "chance": chance}
    _write_whole(out_dir / RACE_FILE, json.dumps(race, indent=2))
    emit({"type": "end", "status": "finished", "seconds": race["seconds"]})
    return race
