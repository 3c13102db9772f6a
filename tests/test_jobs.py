"""Tests for multimodal.train.jobs: real worker processes on a tiny dataset, the queue, stop, failures,
and the pure helpers (progress parsing, fusion gain, run folders and configs)."""
from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from multimodal.core.config import TRAIN_SETTINGS, TrainConfig, train_defaults
from multimodal.core.events import EVENTS_FILE, STOP_FILE, read_events
from multimodal.runs.folders import config_dict, new_run_dir, reuse_config
from multimodal.runs.gain import fusion_gain
from multimodal.runs.verdicts import split_caveat
from multimodal.train import jobs, phases
from multimodal.train.warm_worker import WARM_NAME, WarmWorker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    from multimodal.data.samples import generate
    return generate("skin_lesions", tmp_path_factory.mktemp("jobs") / "d", rows=40, image_size=16)


def config(csv: Path, **kw):
    from multimodal.core.config import ModelConfig, TrainConfig
    arch = kw.pop("arch", "late_concat")
    return TrainConfig(data=str(csv), **{"epochs": 2, "batch_size": 8, **kw},
                       model=ModelConfig(image_size=16, arch=arch))


@pytest.fixture(autouse=True)
def manager_limit():
    """Each test sees an idle manager with the default limit, and leaves no worker behind."""
    jobs.MANAGER.limit = None
    yield
    for job in jobs.MANAGER.active_jobs():
        job.stop()
    for job in list(jobs.MANAGER.running):
        job.wait(jobs.GRACE_SECONDS + 10)
    jobs.MANAGER.limit = None


def wait_for(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


# ------------------------------------------------------------------------------ real workers

def test_job_trains_in_a_process_and_saves_the_run(tiny_csv, tmp_path):
    run_dir = tmp_path / "run"
    jobs.prepare_worker()   # a worker started ahead (warm_worker.py) takes the job
    warm = jobs.WARM.pid
    job = jobs.start_job(config(tiny_csv), run_dir)
    assert job.state == "running" and job.pid and job.started
    assert job.pid == warm and job.pid != __import__("os").getpid() and jobs.WARM.pid is None
    seen = []
    while job.poll() in jobs.ACTIVE:
        seen.append(len(job.progress().batch_points))
        time.sleep(0.05)
        assert len(seen) < 2000, "job took too long"
    p = job.progress()
    assert job.state == "finished", job.error
    assert len(set(seen)) > 1, "events should grow while training"        # read incrementally
    assert p.epoch == 2 and p.epochs == 2 and len(p.epoch_points) == 2
    # Each epoch's first and last batch at least (fast batches are thinned out, train/phases.py).
    assert 2 * 2 <= len(p.batch_points) <= 2 * p.steps and p.fraction == 1.0
    assert [point["x"] for point in p.batch_points if point["x"] == int(point["x"])] == [1.0, 2.0]
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(p.epoch_points[-1])
    assert p.end["status"] == "completed" and "val_accuracy" in p.end["metrics"]
    for name in ("model.keras", "history.csv", "metrics.json", "config.json", "events.jsonl"):
        assert (run_dir / name).exists(), name
    assert job.exitcode == 0 and job.ended >= job.started
    # a second reader from offset 0 sees the same events (append-only file)
    again = jobs.Job(job.config, run_dir).progress()
    assert len(again.batch_points) == len(p.batch_points)


def test_queue_stop_and_data_errors(tiny_csv, tmp_path):
    """With a limit of 1: later jobs wait in FIFO order; stop ends the running job within a batch
    and keeps its partial model; then the next job starts, and bad input fails with its message."""
    jobs.MANAGER.limit = 1
    long = jobs.start_job(config(tiny_csv, epochs=200, patience=0), tmp_path / "long")
    bad = jobs.start_job(config(tiny_csv, target="no_such_column"), tmp_path / "bad")
    cancelled = jobs.start_job(config(tiny_csv, epochs=1), tmp_path / "cancelled")
    assert long.state == "running"
    assert bad.state == "queued" and bad.pid is None and bad.queue_position() == (1, 2)
    assert cancelled.queue_position() == (2, 2) and "position 2 of 2" in cancelled.status_text()
    cancelled.stop()                           # cancelling a queued job never starts it
    assert cancelled.state == "stopped" and cancelled.poll() == "stopped" and cancelled.pid is None
    assert bad.queue_position() == (1, 1)

    wait_for(lambda: long.poll() != "running" or long.progress().batch_points, 90)
    assert bad.poll() == "queued"
    long.stop()
    assert long.state == "stopping"
    assert long.wait(jobs.GRACE_SECONDS) == "stopped"
    p = long.progress()
    assert p.end and p.end["status"] == "stopped" and p.end["epochs_run"] < 200
    assert (tmp_path / "long" / "model.keras").exists() and (tmp_path / "long" / "history.csv").exists()
    assert long.exitcode == 0                  # ended normally, not terminated

    bad.poll()
    assert bad.pid and bad.state in ("running", "failed")
    assert bad.wait(60) == "failed"
    assert "unknown column" in bad.error and "no_such_column" in bad.error and "Traceback" not in bad.error
    assert "unknown column" in bad.status_text()
    assert not (tmp_path / "cancelled" / "events.jsonl").exists()


def test_internal_errors_get_a_short_message_and_a_log(tiny_csv, tmp_path):
    job = jobs.start_job({**config(tiny_csv).to_dict(), "model": {"image_size": 16, "arch": "late_concat",
                                                                  "encoder": "no_such_encoder"}}, tmp_path / "run")
    assert job.wait(90) == "failed"
    assert "worker.log" in job.error and len(job.error) < 400
    assert "Traceback" in (tmp_path / "run" / "worker.log").read_text()


# ----------------------------------------------------------------------- processes, no Keras

def test_stop_terminates_a_worker_that_ignores_the_flag(tmp_path):
    job = jobs.Job({"epochs": 1}, tmp_path / "run")
    job._process = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,), daemon=True)
    job._process.start()
    job.state, job.stop_requested = "running", time.time() - jobs.GRACE_SECONDS - 1
    assert job._check(time.time()) is True
    assert job.state == "stopped" and not job._process.is_alive()


def test_shutdown_terminates_running_workers(tmp_path):
    manager = jobs._Manager()
    job = jobs.Job({"epochs": 1}, tmp_path / "run")
    job._process = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(60,), daemon=True)
    job._process.start()
    manager.running.append(job)
    manager.shutdown()
    assert not job._process.is_alive()


def test_a_warm_worker_waits_under_its_own_name_and_leaves_with_its_parent():
    warm = WarmWorker()
    warm.prepare()
    pid = warm.pid
    warm.prepare()                      # one is waiting: no second one
    assert warm.pid == pid
    comm = Path(f"/proc/{pid}/comm")
    deadline = time.monotonic() + 60
    while comm.read_text().strip() != WARM_NAME and time.monotonic() < deadline:
        time.sleep(0.1)
    assert comm.read_text().strip() == WARM_NAME   # not a training worker's name while it waits
    warm.close()
    assert not comm.exists() and warm.pid is None and warm.take(()) is None


def test_importing_jobs_loads_no_heavy_modules():
    code = ("import sys, multimodal.train.jobs; "
            "print(sorted(m for m in ('numpy', 'pandas', 'tensorflow', 'keras', 'streamlit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_train_defaults_are_the_train_config_defaults():
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    assert set(train_defaults()) == set(TRAIN_SETTINGS)
    assert {k: defaults[k] for k in TRAIN_SETTINGS} == train_defaults()


def test_config_dict_records_the_dataset_and_fills_defaults(tiny_csv):
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.data.dataset import load_dataset
    ds = load_dataset(tiny_csv)
    c = config_dict(ds, None, {"epochs": 3, "unknown": 1})
    assert c["epochs"] == 3 and "unknown" not in c and c["target"] == ds.target and c["overrides"] == ds.roles
    assert c["model"]["arch"] == ModelConfig().arch and c["model"]["image_size"] == ModelConfig().image_size
    assert TrainConfig.from_dict(c).batch_size == train_defaults()["batch_size"]
    c = config_dict(ds, ModelConfig(arch="gated", image_size=16))
    assert c["model"]["arch"] == "gated" and c["model"]["image_size"] == 16


# ------------------------------------------------------------------------------ pure helpers

def write_events(run_dir: Path, events: list[dict], partial: str = "") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / EVENTS_FILE, "a") as f:
        f.write("".join(json.dumps(e) + "\n" for e in events) + partial)


def test_progress_reads_incrementally_and_estimates_eta(tmp_path):
    job = jobs.Job({"epochs": 2}, tmp_path)
    assert job.progress().started is False
    write_events(tmp_path, [{"type": "start", "time": 0.0, "epochs": 2, "steps": 4, "rows": {"train": 32}}]
                 + [{"type": "batch", "time": 10.0 + s, "epoch": 0, "step": s + 1, "steps": 4,
                     "logs": {"loss": 1.0 / (s + 1)}} for s in range(2)], partial='{"type": "bat')
    p = job.progress()
    assert p.started and p.steps == 4 and p.step == 2 and len(p.batch_points) == 2
    assert p.batch_points[-1] == {"x": 0.5, "loss": 0.5}
    assert p.fraction == pytest.approx(2 / 8)
    assert p.eta_seconds == pytest.approx(6.0)          # 1 s per batch, 6 batches left
    with open(tmp_path / EVENTS_FILE, "a") as f:   # the half-written line completes later
        f.write('ch", "time": 12.0, "epoch": 0, "step": 3, "steps": 4, "logs": {"loss": 0.3}}\n')
    write_events(tmp_path, [{"type": "epoch", "time": 14.0, "epoch": 1, "logs": {"loss": 0.3, "val_loss": 0.4}}])
    p = job.progress()
    assert len(p.batch_points) == 3 and p.epoch == 1 and p.epoch_points == [{"x": 1, "loss": 0.3, "val_loss": 0.4}]
    write_events(tmp_path, [{"type": "error", "time": 15.0, "message": "bad things"}])
    assert job.progress().error == "bad things" == job.error


def test_eta_is_per_batch_when_batch_events_are_thinned_out(tmp_path):
    """Events for steps 1, 4 and 10 of 10 (0.5 s per batch): the time per batch, not per event."""
    job = jobs.Job({"epochs": 1}, tmp_path)
    write_events(tmp_path, [{"type": "start", "time": 0.0, "epochs": 1, "steps": 10, "rows": {"train": 320}}]
                 + [{"type": "batch", "time": 10.0 + 0.5 * (step - 1), "epoch": 0, "step": step, "steps": 10,
                     "logs": {}} for step in (1, 4)])
    assert job.progress().eta_seconds == pytest.approx(0.5 * 6)    # 6 batches left


def test_live_events_write_first_last_and_at_most_one_batch_per_interval(tmp_path, monkeypatch):
    clock = iter(np.arange(200) * 0.03)            # a batch every 30 ms: about one in four is written
    monkeypatch.setattr(phases.time, "monotonic", lambda: float(next(clock)))
    live = phases.LiveEvents(tmp_path, steps=50)
    live.set_model(SimpleNamespace(stop_training=False))
    for epoch in range(2):
        live.on_epoch_begin(epoch)
        for batch in range(50):
            live.on_train_batch_end(batch, {"loss": 1.0})
    written = [(e["epoch"], e["step"]) for e in read_events(tmp_path)[0]]
    for epoch in range(2):
        steps = [step for e, step in written if e == epoch]
        assert steps[0] == 1 and steps[-1] == 50 and 12 <= len(steps) <= 16
        times = [0.03 * (epoch * 50 + step - 1) for step in steps[1:-1]]
        assert min(np.diff(times)) >= phases.LiveEvents.BATCH_EVENT_SECONDS - 1e-9
    (tmp_path / STOP_FILE).touch()                 # STOP is still seen after the very next batch
    live.on_train_batch_end(7, {"loss": 1.0})
    assert live.stopped


def run(arch, value, task="classification", name=None):
    key = "val_accuracy" if task == "classification" else "val_mae"
    return {"arch": arch, "task": task, "metrics": {key: value}, "name": name or arch}


def test_fusion_gain_higher_is_better():
    g = fusion_gain([run("late_concat", 0.80), run("gated", 0.85), run("image_only", 0.70),
                          run("tabular_only", 0.75)])
    assert g["gain"] == pytest.approx(0.10) and g["metric"] == "accuracy" and g["higher_is_better"]
    assert g["fusion"]["arch"] == "gated" and g["baseline"]["arch"] == "tabular_only" and g["missing"] == ["linear"]
    assert "linear is missing" in g["note"] and "may be overstated" in g["note"]
    every = fusion_gain([run("gated", 0.85), run("image_only", 0.70), run("tabular_only", 0.75), run("linear", 0.9)])
    assert every["gain"] == pytest.approx(-0.05) and every["baseline"]["arch"] == "linear"
    assert every["missing"] == [] and every["note"] == ""


def test_fusion_gain_lower_is_better_positive_means_fusion_wins():
    g = fusion_gain([run("late_concat", 10.0, "regression"), run("film", 12.0, "regression"),
                          run("image_only", 15.0, "regression"), run("tabular_only", 13.0, "regression")])
    assert g["metric"] == "mae" and not g["higher_is_better"]
    assert g["gain"] == pytest.approx(3.0) and g["fusion"]["arch"] == "late_concat"
    worse = fusion_gain([run("late_concat", 14.0, "regression"), run("tabular_only", 13.0, "regression")])
    assert worse["gain"] == pytest.approx(-1.0)


def test_fusion_gain_says_what_is_missing():
    only_fusion = fusion_gain([run("late_concat", 0.8)])
    assert only_fusion["gain"] is None and only_fusion["missing"] == ["image_only", "tabular_only", "linear"]
    assert "baseline" in only_fusion["note"]
    one_base = fusion_gain([run("late_concat", 0.8), run("image_only", 0.7)], baselines=["image_only", "tabular_only"])
    assert one_base["gain"] == pytest.approx(0.1) and one_base["missing"] == ["tabular_only"]
    assert "tabular_only" in one_base["note"]
    no_fusion = fusion_gain([run("image_only", 0.7)])
    assert no_fusion["gain"] is None and "fusion" in no_fusion["note"]
    assert fusion_gain([])["gain"] is None
    # runs of another task or without the metric are ignored
    mixed = fusion_gain([run("late_concat", 0.8), run("image_only", 0.7), run("tabular_only", 0.9),
                              run("gated", 3.0, "regression"), {"arch": "film", "task": "classification",
                                                               "metrics": {}}], task="classification")
    assert mixed["gain"] == pytest.approx(-0.1)


def test_fusion_gain_of_one_split_carries_the_caveat():
    splits = {"train": list(range(160)), "val": list(range(160, 200))}
    g = fusion_gain([{**run("late_concat", 0.8), "config": {"splits": splits}},
                     {**run("tabular_only", 0.7), "config": {"splits": splits}}], baselines=["tabular_only"])
    assert g["gain"] == pytest.approx(0.1) and g["caveat"] == split_caveat(40)
    assert g["caveat"].startswith("one split of 40 rows")
    assert fusion_gain([run("late_concat", 0.8), run("tabular_only", 0.7)])["caveat"] == ""   # split unknown


def test_reuse_config_changes_only_the_arch():
    saved = {"data": "x.csv", "target": "t", "task": "classification", "overrides": {"a": "numeric"},
             "epochs": 3, "batch_size": 8, "lr": 0.01, "classes": ["a", "b"], "features": {},
             "model": {"arch": "gated", "image_size": 16}}
    c = reuse_config(saved, "image_only")
    assert c["model"] == {"arch": "image_only", "image_size": 16} and saved["model"]["arch"] == "gated"
    assert "classes" not in c and c["epochs"] == 3
    from multimodal.core.config import TrainConfig
    assert TrainConfig.from_dict(c).model.arch == "image_only"


def test_new_run_dir_is_unique(tmp_path):
    a, b = new_run_dir(tmp_path, "late concat!"), new_run_dir(tmp_path, "late concat!")
    assert a != b and a.is_dir() and b.is_dir() and "late_concat" in a.name


def test_owner_must_be_gone_for_the_whole_timeout(tmp_path, monkeypatch):
    """A reconnect within MMSTUDIO_ORPHAN_SECONDS resets the clock; a failing check counts as alive."""
    monkeypatch.setenv("MMSTUDIO_ORPHAN_SECONDS", "10")
    alive = [False]
    job = jobs.Job({"epochs": 1}, tmp_path, owner_alive=lambda: alive[0])
    job.state = "running"
    assert not job._orphaned(100.0) and job.owner_gone_since == 100.0
    assert not job._orphaned(109.0)
    alive[0] = True                                   # the browser reconnected
    assert not job._orphaned(109.5) and job.owner_gone_since is None
    alive[0] = False
    assert not job._orphaned(120.0) and not job._orphaned(129.9)
    assert job._orphaned(130.0)
    job.state = "stopping"                            # already being stopped: nothing more to do
    assert not job._orphaned(200.0)

    def broken():
        raise RuntimeError("runtime gone")
    unsure = jobs.Job({"epochs": 1}, tmp_path, owner_alive=broken)
    unsure.state = "running"
    assert not unsure._orphaned(0.0) and not unsure._orphaned(1000.0)
    assert not jobs.Job({"epochs": 1}, tmp_path)._orphaned(1e9)     # no owner: never orphaned
