"""The parameter count the Model page shows: a real build of the setup, as Train would build it.

Imports Keras (through the model builder); only the Model page, which needs Keras anyway, uses it.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from multimodal.core.config import ModelConfig
from multimodal.data.dataset import Dataset
from multimodal.data.inputs import FeatureSpec, model_inputs
from multimodal.data.splits import split_indices


def count_key(ds: Dataset, config: ModelConfig, train: Mapping) -> str:
    """What the count depends on: the data, its roles, the setup and the training split."""
    return json.dumps([str(ds.csv_path), sorted(ds.roles.items()), ds.task, config.to_dict(),
                       train.get("val_fraction"), train.get("seed")], sort_keys=True, default=str)


def param_count(ds: Dataset, config: ModelConfig, val_fraction: float = 0.2, seed: int = 0) -> int:
    """Parameters of the model Train would build: tabular stats from the same training rows."""
    # lazy: the Model page renders first and fills the count in when Keras has loaded
    from multimodal.models.assembly import build_model
    from multimodal.models.branches import tabular_stats
    spec = ds.features
    train_rows = split_indices(ds, val_fraction, seed)["train"]
    tabular = FeatureSpec([], spec.numeric_cols, spec.categorical_cols)
    inputs = model_inputs(ds.frame.iloc[train_rows], ds.root, tabular, config.image_size)
    stats = tabular_stats(inputs, spec)
    target_stats = {"mean": 0.0, "std": 1.0, "log": False} if ds.task == "regression" else None
    model = build_model(config, spec, stats, ds.task, ds.classes, target_stats)
    return int(model.count_params())
