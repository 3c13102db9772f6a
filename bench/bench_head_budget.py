"""The budgets of a stage-wise comparison, measured, not guessed: the heads' on frozen inputs
(train/fold_batched.HEAD_BUDGET) and stage 1's (train/stagewise.FastFolds.stage1_budget).

    python -m bench.bench_head_budget                       # every sample, every head candidate
    python -m bench.bench_head_budget --samples skin_lesions --candidates 1,3 --out /tmp/budget.json
    python -m bench.bench_head_budget --stage1 1,2 --candidates 2   # stage-1 candidates, today's heads

For each sample and each stage-1 candidate: the comparison's stage 1 runs once per fold (3 folds,
the same folds as `compare`; its image_only result and seconds recorded), then every other
method's heads train fold-batched (train/fold_batched.py) under each head candidate (Adam's
learning rate, patience, epoch cap) on that stage's cached maps. Recorded per candidate: each
method's held-out mean and std of the main metric, its epochs, and the seconds all heads took; the
load average before and after. The results are written as JSON (one object per
sample, rewritten after every sample) for bench/RESULTS_compare.md.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from multimodal.core.config import ModelConfig, TrainConfig  # noqa: E402
from multimodal.data.dataset import load_dataset  # noqa: E402
from multimodal.data.inputs import model_inputs  # noqa: E402
from multimodal.data.samples import SAMPLES  # noqa: E402
from multimodal.models.fusion import methods_for  # noqa: E402
from multimodal.models.proposal import propose_method  # noqa: E402
from multimodal.train.crossval import cross_validate, cv_splits, held_out_metric  # noqa: E402
from multimodal.train.feature_cache import FeatureCache  # noqa: E402
from multimodal.train.fold_batched import FitBudget  # noqa: E402
from multimodal.train.stagewise import STAGE1_ARCH, FastFolds, resolve_mode  # noqa: E402

CANDIDATES = [FitBudget(1e-3, 15, 200),   # the small-data defaults every run uses (config.SMALL_DATA)
              FitBudget(1e-3, 10, 100),
              FitBudget(3e-3, 8, 80),
              FitBudget(1e-2, 5, 40)]
STAGE1_CANDIDATES = [FitBudget(1e-3, 15, 200),   # every run's small-data defaults: what stage 1 uses
                     FitBudget(3e-3, 10, 100),
                     FitBudget(3e-3, 6, 60)]


def run_sample(sample: str, folds: int, candidates: list[FitBudget], stage1_candidates: list[FitBudget],
               on_candidate: Callable[[dict], None] | None = None) -> dict:
    """Per stage-1 candidate: stage 1 once, then every candidate budget's heads on its maps;
    on_candidate(the sample's results so far) after each."""
    ds = load_dataset(ROOT / "sample_data" / sample)
    spec = ds.features
    config = TrainConfig(data=str(ds.csv_path), model=ModelConfig(arch=propose_method(spec).arch,
                                                                  image_size=SAMPLES[sample].image_size))
    methods = [m for m in methods_for(bool(spec.image_cols), bool(spec.tabular_cols), len(spec.image_cols))
               if m != STAGE1_ARCH]
    mode, weights = resolve_mode("stagewise", config, True)
    inputs = model_inputs(ds.frame, ds.root, ds.features, config.model.image_size)
    splits = cv_splits(ds, folds, 1, config.seed, config.val_fraction)
    metric, _ = held_out_metric(ds.task)
    load_before = os.getloadavg()
    out = {"sample": sample, "metric": metric, "stage1": []}
    for stage1_budget in stage1_candidates:
        with tempfile.TemporaryDirectory(prefix="bench-budget-") as cache:
            fast = FastFolds(mode, config, ds, inputs, weights, FeatureCache(Path(cache)))
            fast.stage1_budget = stage1_budget
            started = time.perf_counter()
            stage1 = replace(config, model=replace(config.model, arch=STAGE1_ARCH))
            r = cross_validate(stage1, folds, dataset=ds, inputs=inputs, splits=splits,
                               fit_fold=fast.fold_trainer(STAGE1_ARCH))
            record = {"budget": asdict(stage1_budget), "seconds": round(time.perf_counter() - started, 1),
                      STAGE1_ARCH: {"mean": r["mean"][metric], "std": r["std"][metric],
                                    "epochs": [f["epochs_run"] for f in r["folds"]]}, "candidates": []}
            out["stage1"].append(record)
            print(sample, "stage 1", asdict(stage1_budget), record["seconds"], "s", flush=True)
            for budget in candidates:
                fast.head_budget = budget
                started, per_method = time.perf_counter(), {}
                for arch in methods:
                    c = replace(config, model=replace(config.model, arch=arch))
                    r = cross_validate(c, folds, dataset=ds, inputs=inputs, splits=splits,
                                       fit_folds=fast.folds_trainer(arch))
                    per_method[arch] = {"mean": r["mean"][metric], "std": r["std"][metric],
                                        "epochs": [f["epochs_run"] for f in r["folds"]]}
                record["candidates"].append({"budget": asdict(budget),
                                             "seconds": round(time.perf_counter() - started, 1),
                                             "methods": per_method})
                print(sample, "heads", asdict(budget), record["candidates"][-1]["seconds"], "s", flush=True)
                if on_candidate:
                    on_candidate(out)
    out["load_before"], out["load_after"] = [round(x, 2) for x in load_before], [round(x, 2) for x in os.getloadavg()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default=",".join(SAMPLES))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "head_budget.json"))
    parser.add_argument("--candidates", default=",".join(str(i) for i in range(len(CANDIDATES))),
                        help="which head CANDIDATES to run (indices)")
    parser.add_argument("--stage1", default="0", help="which STAGE1_CANDIDATES to run (indices)")
    args = parser.parse_args()
    chosen = [CANDIDATES[int(i)] for i in args.candidates.split(",")]
    stage1 = [STAGE1_CANDIDATES[int(i)] for i in args.stage1.split(",")]
    runs: list[dict] = []
    for sample in [s for s in args.samples.split(",") if s]:
        def save(partial: dict) -> None:
            Path(args.out).write_text(json.dumps([*runs, partial], indent=1))
        runs.append(run_sample(sample, args.folds, chosen, stage1, save))
        Path(args.out).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
