"""`train --multi-worker`: two worker processes on localhost (TF_CONFIG, free ports) train what one
process trains with the same global batch; only the chief writes; a dead or missing worker ends
the others with exit code 2 and one `error:` line instead of a hang.

Every worker is a CLI subprocess: TensorFlow joins a cluster only before its runtime starts, and a
pytest process may have started it already. Each worker gets a home of its own (cwd, HOME, TMPDIR,
image cache, --out), so what it wrote can be listed afterwards.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from multimodal.runs.run import load_model_file
from multimodal.train.multiworker import HEARTBEAT_SECONDS

# Dropout and augmentation are off so that both set-ups do the same arithmetic (as in
# test_devices.py); 32 training rows in batches of 8 make 4 equal global batches an epoch, each
# split 4 + 4 between the workers. The two runs then differ only in the order of float32 sums (two
# half-batch gradients all-reduced vs one batch): about 1e-7 relative per step; measured: at
# most 7e-8 apart on the weights after 8 steps. 1e-5 leaves room for that and still catches a real
# divergence: a worker training on all rows, or a gradient not averaged, moves the weights by
# more than 1e-3 after one step (Adam's step is the learning rate, 1e-3).
# float32 throughout (--precision float32): a bfloat16 image encoder rounds each half batch on its
# own, about 1e-4 apart after 8 steps, which would hide the arithmetic this test checks.
TOLERANCE = 1e-5
FLAGS = ["--epochs", "2", "--batch-size", "8", "--image-size", "16", "--dropout", "0", "--no-augment",
         "--patience", "0", "--seed", "3", "--precision", "float32", "--json"]
RUN_FILES = {"config.json", "model.keras", "history.csv", "metrics.json", "summary.json", "background.npz",
             "events.jsonl"}


def free_ports(n: int) -> list[int]:
    """Ports free on localhost now (the OS picks them; held open together so they differ)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def make_home(root: Path) -> Path:
    """An empty folder to be a worker's cwd, HOME and TMPDIR parent, with Keras' config file in
    place (Keras writes one into a HOME without it; that write is Keras', not ours)."""
    (root / ".keras").mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / ".keras" / "keras.json").write_text(json.dumps({"floatx": "float32", "epsilon": 1e-07,
                                                           "backend": "tensorflow",
                                                           "image_data_format": "channels_last"}))
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every file (size, modification time) and folder under `root`."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None
            for p in root.rglob("*")}


def start(data: Path, home: Path, ports: list[int] | None, index: int, *args: str) -> subprocess.Popen:
    """One CLI training process in `home`: worker `index` of a localhost cluster on `ports`, or a
    plain single-process run (ports None)."""
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(home / "tmp"), "TF_CPP_MIN_LOG_LEVEL": "3",
           "MULTIMODAL_CACHE_DIR": str(home / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("TF_CONFIG", None)
    cluster = []
    if ports is not None:
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                       "task": {"type": "worker", "index": index}})
        cluster = ["--multi-worker"]
    return subprocess.Popen([sys.executable, "-m", "multimodal", "train", str(data), "--out", str(home / "runs"),
                             *cluster, *args], cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"a worker hung past {timeout} s:\n{err[-3000:]}")
    return process.returncode, out, err


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def cluster_run(tiny_samples, tmp_path_factory) -> dict:
    """Two workers and, at the same time, one plain process with the same flags (global batch 8)."""
    root = tmp_path_factory.mktemp("multiworker")
    data = tiny_samples["skin_lesions"]
    homes = {name: make_home(root / name) for name in ("chief", "worker", "single")}
    before = snapshot(homes["worker"])
    ports = free_ports(2)
    started = time.perf_counter()
    processes = {"chief": start(data, homes["chief"], ports, 0, *FLAGS),
                 "worker": start(data, homes["worker"], ports, 1, *FLAGS),
                 "single": start(data, homes["single"], None, 0, *FLAGS)}
    results = {name: finish(p) for name, p in processes.items()}
    for name, (code, _, err) in results.items():
        assert code == 0, f"{name}: {err[-3000:]}"
    return {"homes": homes, "before": before, "seconds": time.perf_counter() - started,
            **{name: json.loads(out.strip().splitlines()[-1]) for name, (_, out, _) in results.items()}}


def test_the_chief_writes_a_complete_run_folder(cluster_run):
    chief = cluster_run["chief"]
    assert chief["chief"] is True and chief["workers"] == 2 and chief["replicas"] == 2
    assert chief["devices"] == ["/job:worker/task:0/device:CPU:0", "/job:worker/task:1/device:CPU:0"]
    run_dir = Path(chief["run_dir"])
    assert run_dir.parent == cluster_run["homes"]["chief"] / "runs"
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "end" and events[-1]["status"] == "completed"
    # Each step is one global batch of 8 rows: 4 steps an epoch, not 8 (a worker reading every row);
    # each epoch's last batch always has its event (fast ones in between are thinned out).
    start = next(e for e in events if e["type"] == "start")
    assert start["steps"] == 4
    assert max(e["step"] for e in events if e["type"] == "batch") == 4
    assert sorted({e["epoch"] for e in events if e["type"] == "batch" and e["step"] == 4}) == [0, 1]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["multi_worker"] is True
    assert any((cluster_run["homes"]["chief"] / "cache").iterdir())   # the chief keeps the image cache


def test_two_workers_learn_what_one_process_learns(cluster_run):
    chief, worker, single = cluster_run["chief"], cluster_run["worker"], cluster_run["single"]
    np.testing.assert_allclose(chief["history"]["loss"], single["history"]["loss"], rtol=TOLERANCE)
    assert chief["history"]["loss"][1] < chief["history"]["loss"][0]      # it trained: not vacuous
    assert worker["history"] == chief["history"] and worker["metrics"] == chief["metrics"]
    for name, value in single["metrics"].items():
        assert chief["metrics"][name] == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), name
    ours = load_model_file(Path(chief["run_dir"]) / "model.keras").get_weights()
    theirs = load_model_file(Path(single["run_dir"]) / "model.keras").get_weights()
    assert len(ours) == len(theirs) > 4
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE)
    keras.backend.clear_session()


def test_the_other_worker_writes_nothing_outside_its_temporary_folder(cluster_run):
    worker, home = cluster_run["worker"], cluster_run["homes"]["worker"]
    assert worker["chief"] is False and worker["run_dir"] is None
    assert snapshot(home) == cluster_run["before"]        # no run folder, no image cache, temp folder removed
    assert not (home / "runs").exists() and not any((home / "tmp").iterdir())


def test_a_dead_worker_ends_the_other_with_one_error_line(tiny_samples, tmp_path):
    """Killing a worker mid-training (here with --stream: images read from disk per batch) ends the
    chief within TensorFlow's heartbeat timeout, with exit code 2 and one `error:` line."""
    data = tiny_samples["skin_lesions"]
    ports = free_ports(2)
    chief = start(data, make_home(tmp_path / "chief"), ports, 0, "--epochs", "500", "--patience", "0",
                  "--image-size", "16", "--stream", "--worker-timeout", "60")
    worker = start(data, make_home(tmp_path / "worker"), ports, 1, "--epochs", "500", "--patience", "0",
                   "--image-size", "16", "--stream", "--worker-timeout", "60")
    try:
        deadline = time.monotonic() + 180
        while not any('"batch"' in p.read_text() for p in (tmp_path / "chief" / "runs").glob("*/events.jsonl")):
            assert chief.poll() is None and worker.poll() is None, "a worker ended before training started"
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        worker.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        code, _, err = finish(chief, timeout=HEARTBEAT_SECONDS + 60)
        waited = time.monotonic() - killed
    finally:
        for p in (chief, worker):
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert code == 2, err[-3000:]
    lines = error_lines(err)
    assert len(lines) == 1, err[-3000:]
    assert "training stopped on worker 0" in lines[0] and "another worker is gone" in lines[0]
    assert waited < HEARTBEAT_SECONDS + 30


def test_a_worker_alone_stops_after_the_worker_timeout(tiny_samples, tmp_path):
    """Worker 0 hosts the cluster's coordination service; without a timeout of our own it would
    wait forever for worker 1."""
    ports = free_ports(2)
    started = time.monotonic()
    code, _, err = finish(start(tiny_samples["skin_lesions"], make_home(tmp_path), ports, 0, "--worker-timeout", "3"),
                          timeout=120)
    assert code == 2, err[-3000:]
    lines = error_lines(err)
    assert len(lines) == 1 and "waited 3 s for the other workers" in lines[0], err[-3000:]
    assert f"localhost:{ports[1]}" in lines[0]
    assert time.monotonic() - started < 60
    assert not (tmp_path / "runs").exists()
