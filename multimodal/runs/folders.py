"""New run folders and the training configs that go into them, as plain dicts.

Light (no numpy, pandas or TensorFlow): the Train and Compare pages and the job queue build
configs here, and the training worker rebuilds a TrainConfig from the dict.
"""
from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from multimodal.core.config import TRAIN_SETTINGS, ModelConfig, train_defaults

# What a saved run's config.json contributes to a new run of another method (not its resolved
# columns, classes or statistics, which the new run computes again).
REUSED_SETTINGS = ("data", "target", "task", "overrides", "ordered_images", "val_fraction", "seed", "epochs",
                   "batch_size", "lr", "patience", "loss", "class_weight", "target_transform", "restore_best",
                   "on_missing_weights", "freeze_epochs", "finetune_epochs", "finetune_lr", "unfreeze")


def new_run_dir(root: Path, arch: str) -> Path:
    """A fresh, empty, sortable run folder under root: 20250101-120000-late_concat[-2]."""
    root = Path(root)
    stem = time.strftime("%Y%m%d-%H%M%S") + "-" + re.sub(r"[^A-Za-z0-9_]+", "_", arch)
    path, n = root / stem, 1
    while path.exists():
        n += 1
        path = root / f"{stem}-{n}"
    path.mkdir(parents=True)
    return path


def config_dict(dataset: Any, model: Any = None, settings: Mapping | None = None) -> dict:
    """A TrainConfig as a dict for a loaded dataset, a ModelConfig (or dict) and page settings.
    The dataset's resolved roles, target and task are recorded so the run is reproducible."""
    model_dict = {**ModelConfig().to_dict(), **(asdict(model) if is_dataclass(model) else dict(model or {}))}
    chosen = {**train_defaults(), **{k: v for k, v in (settings or {}).items() if k in TRAIN_SETTINGS}}
    return {"data": str(dataset.csv_path), "target": dataset.target, "task": dataset.task,
            "overrides": dict(dataset.roles), "ordered_images": dataset.ordered_images, **chosen, "model": model_dict}


def reuse_config(run_config: Mapping, arch: str) -> dict:
    """The training settings of a saved run (its config.json) with another fusion method."""
    config = {k: run_config[k] for k in REUSED_SETTINGS if k in run_config}
    config["model"] = {**dict(run_config.get("model") or {}), "arch": arch}
    return config
