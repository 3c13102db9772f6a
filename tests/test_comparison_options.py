"""ComparisonOptions (core/comparison.py): checked arguments, the worker's JSON form, unknown keys refused."""
from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from multimodal.core.comparison import MODES, ComparisonOptions, comparison_job, comparison_parts
from multimodal.core.config import TrainConfig
from multimodal.core.errors import DataError


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"k": 1}, "expected an integer number of folds k >= 2. Received: k=1"),
    ({"k": 2.5}, "Received: k=2.5"),
    ({"k": True}, "Received: k=True"),
    ({"k": 3, "repeats": 0}, "expected an integer number of repeats >= 1. Received: repeats=0"),
    ({"k": 3, "mode": "fastest"}, "unknown comparison mode 'fastest'; choose one of stagewise, frozen, end_to_end"),
    ({"k": 3, "archs": "late_concat"}, "Received: archs='late_concat'"),
    ({"k": 3, "archs": ("late_concat", 3)}, "Received: archs=('late_concat', 3)"),
    ({"k": 3, "finetune": "yes"}, "expected finetune as True or False. Received: finetune='yes'"),
])
def test_bad_arguments_are_refused_naming_the_value(kwargs, message):
    with pytest.raises(DataError) as caught:
        ComparisonOptions(**kwargs)
    assert message in str(caught.value)


def test_defaults_and_archs_kept_as_a_tuple():
    options = ComparisonOptions(3, archs=["late_concat", "attention"])
    assert (options.repeats, options.mode, options.finetune) == (1, None, False)
    assert options.archs == ("late_concat", "attention")
    with pytest.raises(FrozenInstanceError):
        options.k = 5   # type: ignore[misc]
    assert {ComparisonOptions(2, mode=mode).mode for mode in MODES} == set(MODES)


@pytest.mark.parametrize("options", [
    ComparisonOptions(2),
    ComparisonOptions(5, 3, archs=("late_concat", "attention"), mode="end_to_end", finetune=True),
    ComparisonOptions(3, archs=(), mode="frozen"),
])
def test_to_dict_round_trips_through_json(options):
    assert ComparisonOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options


def test_from_dict_refuses_unknown_keys_by_name():
    with pytest.raises(DataError, match=r"unknown comparison options 'folds', 'cache_dir'; the options are "
                                        r"k, repeats, archs, mode, finetune"):
        ComparisonOptions.from_dict({"folds": 3, "cache_dir": "/tmp/x", "repeats": 1})
    with pytest.raises(DataError, match="Received: k=1"):     # known keys are checked as in the constructor
        ComparisonOptions.from_dict({"k": 1})


def test_the_worker_reads_back_what_the_app_sends(tmp_path):
    config = TrainConfig(data="data.csv", epochs=2).to_dict()
    options = ComparisonOptions(3, 2, archs=("attention",), mode="stagewise")
    job = json.loads(json.dumps(comparison_job(config, options, tmp_path / "cache")))
    settings, read, cache = comparison_parts(job)
    assert TrainConfig.from_dict(settings) == TrainConfig(data="data.csv", epochs=2)
    assert read == options and cache == tmp_path / "cache"
    assert comparison_parts(config) == (config, None, None)          # a single training: no options
    assert comparison_parts(comparison_job(config, options))[2] is None
    assert isinstance(comparison_parts(job)[2], Path)
