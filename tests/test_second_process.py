"""A comparison's second process (train/second_process.py): the same scores as one process, the
methods shared between the two lanes as scheduled, its failures reported by name."""
from __future__ import annotations

import subprocess
import threading
from dataclasses import replace

import pytest

from multimodal.core.comparison import PROCESSES_ENV, ComparisonOptions, default_processes
from multimodal.core.errors import DataError
from multimodal.data.dataset import load_dataset
from multimodal.train.crossval import compare_with_baselines, cv_splits
from multimodal.train.second_process import SecondProcess, SecondProcessError, lanes

from support.fast_modes import check_kept_models, tiny_config

IMAGE_HEADS = ("late_concat", "multiply", "film")


def test_two_processes_give_the_same_comparison_as_one(tiny_samples, tmp_path):
    csv = tiny_samples["house_prices"]
    config = replace(tiny_config(csv), epochs=2)
    results = {}
    for processes in (1, 2):
        options = ComparisonOptions(2, archs=("late_concat", "multiply"), processes=processes)
        results[processes] = compare_with_baselines(config, options, keep_models=tmp_path / f"kept{processes}")
    one, two = results[1]["results"], results[2]["results"]
    assert list(one) == list(two) == ["image_only", "tabular_only", "linear", "late_concat", "multiply"]
    for arch in one:
        assert [f["metrics"] for f in two[arch]["folds"]] == [f["metrics"] for f in one[arch]["folds"]], arch
        assert [f["best_epoch"] for f in two[arch]["folds"]] == [f["best_epoch"] for f in one[arch]["folds"]], arch
    assert {r["process"] for r in one.values()} == {"main"}
    second = {arch for arch, r in two.items() if r["process"] == "second"}
    assert second and "image_only" not in second   # stage 1 stays in the main process
    assert results[2]["gain"]["methods"] == results[1]["gain"]["methods"]
    ds = load_dataset(csv)
    check_kept_models(tmp_path / "kept2", results[2], ds, cv_splits(ds, 2, 1, config.seed, config.val_fraction)[0])


class StubFolds:
    """FastFolds' part lanes() reads: image_only is stage 1; its heads need stage 1's encoders."""

    def __init__(self):
        self.encoders_made = threading.Event()
        self.prepared: list[str] = []

    def state(self) -> dict:
        return {"stub": True}

    def heads_batched(self, arch: str) -> bool:
        return arch != "image_only"

    def is_stage1(self, arch: str) -> bool:
        return arch == "image_only"

    def needs_stage1(self, arch: str, splits: list) -> bool:
        return arch in IMAGE_HEADS and not self.encoders_made.is_set()

    def prepare_heads(self, arch: str, jobs: list) -> list:
        assert not self.needs_stage1(arch, []), f"{arch} handed over before stage 1 made its encoders"
        self.prepared.append(arch)
        return [("prepared", arch)]


class StubSecond:
    def __init__(self, fail_on: str | None = None):
        self.fail_on, self.trained, self.busy, self.closed = fail_on, [], None, False
        self.took = threading.Event()   # it has taken a method

    def send(self, message) -> None:
        assert message == {"stub": True}

    def train(self, arch: str, prepared: list) -> tuple[str, list]:
        assert prepared == [("prepared", arch)]
        self.took.set()
        if arch == self.fail_on:
            raise SecondProcessError(f"the comparison's second process failed on {arch}: boom")
        self.trained.append(arch)
        return arch, [f"{arch} fold"]

    def close(self) -> None:
        self.closed = True


def run_lanes(order: list[str], second: StubSecond) -> list[tuple[str, str]]:
    """(method, lane) in the order they are reported: the main lane's as lanes() hands them to the
    caller (who trains them), the second's as on_done gets them (from its thread)."""
    fast, seen, lock = StubFolds(), [], threading.Lock()

    def on_done(arch: str, summaries: list) -> None:
        assert summaries == [f"{arch} fold"] and threading.current_thread() is not threading.main_thread()
        with lock:
            seen.append((arch, "second"))

    for arch in lanes(order, fast, lambda arch: [], second, on_done):
        with lock:
            seen.append((arch, "main"))
        if arch == "tabular_only":   # the main lane is busy a while: the second takes one meanwhile
            assert second.took.wait(5)
        if arch == "image_only":
            fast.encoders_made.set()
    assert second.closed   # ended with lanes(), so nothing is reported afterwards
    return seen


def test_every_method_once_stage_one_in_the_main_lane_and_heads_only_after_it():
    order = ["tabular_only", "linear", "image_only", *IMAGE_HEADS]
    second = StubSecond()
    seen = run_lanes(order, second)
    assert sorted(arch for arch, _ in seen) == sorted(order)
    assert ("tabular_only", "main") == seen[0] and ("image_only", "main") in seen
    assert second.trained and {arch for arch, lane in seen if lane == "second"} == set(second.trained)
    assert second.trained[0] == "linear"   # the back of what it may take while stage 1 is ahead


def test_without_a_second_process_every_method_in_order_here():
    order = ["tabular_only", "image_only", "late_concat"]
    assert list(lanes(order, StubFolds(), lambda arch: [], None, lambda arch, summaries: None)) == order


def test_a_failure_in_the_second_process_names_the_method():
    with pytest.raises(SecondProcessError, match="failed on linear: boom"):
        run_lanes(["tabular_only", "linear", "image_only", "late_concat"], StubSecond(fail_on="linear"))


def test_processes_are_checked_and_the_environment_can_set_them(monkeypatch):
    with pytest.raises(DataError, match=r"processes as an integer from 1 to 2. Received: processes=3"):
        ComparisonOptions(3, processes=3)
    options = ComparisonOptions(3, processes=2)
    assert ComparisonOptions.from_dict(options.to_dict()) == options
    monkeypatch.setenv(PROCESSES_ENV, "1")
    assert default_processes() == 1
    monkeypatch.setenv(PROCESSES_ENV, "four")
    with pytest.raises(DataError, match=r"MULTIMODAL_COMPARE_PROCESSES is 'four'; set it to a number of processes"):
        default_processes()
    monkeypatch.delenv(PROCESSES_ENV)
    assert default_processes() in (1, 2)


def test_a_second_process_closed_before_any_work_exits_cleanly():
    assert SecondProcess().close() == 0   # no traceback: it read the end before any state


def test_no_second_process_to_be_had_means_one_process(monkeypatch):
    def refused(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(subprocess, "Popen", refused)
    assert SecondProcess.started() is None
