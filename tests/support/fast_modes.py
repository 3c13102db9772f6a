"""The fast-mode comparisons' shared test helpers (tests/test_stagewise.py, tests/test_second_process.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.inputs import encode_target, model_inputs
from multimodal.models.assembly import select_inputs
from multimodal.models.batches import make_dataset, take
from multimodal.runs.run import load_run

SIZE = 16


def tiny_config(csv: Path, arch: str = "late_concat", **settings) -> TrainConfig:
    return TrainConfig(data=str(csv), epochs=1, batch_size=16, **settings,
                       model=ModelConfig(arch=arch, image_size=SIZE))


def check_kept_models(kept: Path, result: dict, ds, split: dict) -> None:
    """keep_models: each method's first-fold model, whole, is the one whose held-out score the
    comparison reports (stage 1 copied, fold-batched heads saved), and nothing half-written is left."""
    assert sorted(p.name for p in kept.iterdir()) == sorted(result["results"])
    inputs = model_inputs(ds.frame, ds.root, ds.features, SIZE)
    y = encode_target(ds.frame[ds.target], ds.task, ds.classes).reshape(-1, 1)
    test = np.asarray(split["test"])
    for arch, compared in result["results"].items():
        run = load_run(kept / arch)
        fold = compared["folds"][0]
        assert run.summary["best_epoch"] == fold["best_epoch"] and run.config["model"]["arch"] == arch
        scores = run.model.evaluate(make_dataset(take(select_inputs(run.model, inputs), test), y[test], 64),
                                    verbose=0, return_dict=True)
        assert scores["mae"] == pytest.approx(fold["metrics"]["val_mae"], rel=1e-4), arch
