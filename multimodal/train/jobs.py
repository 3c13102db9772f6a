"""Training jobs for the app: one worker process per run, a server-wide limit, a FIFO queue.

Streamlit-free and light to import (no numpy, pandas or TensorFlow here: the worker imports
them). DESIGN.md section 5 says why training is a process and not a thread: Streamlit clears
Keras' global state after every rerun, and a thread would share the server's GIL.

    job = start_job(config, run_dir, dataset=ds)    # queued or running at once
    job.poll()                                       # advances every job's state (cheap)
    job.progress()                                   # reads new lines of events.jsonl
    job.stop()                                       # STOP flag; terminate after GRACE_SECONDS

A job may have an owner: `owner_alive()` says whether the browser session that started it is still
connected. The manager's monitor thread asks every second; once the owner has been gone for
ORPHAN_SECONDS the job is stopped like a Stop click (a queued one is dropped), so a closed tab
leaves no worker behind, while a reconnect within the timeout keeps the job.

The worker appends to `events.jsonl` in the run folder (see training.py); a failure becomes an
`{"type": "error", "message": ...}` event, and the full traceback goes to `worker.log`.
"""
from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import re
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from multimodal.core import limits
from multimodal.core.config import ModelConfig, TrainConfig

EVENTS_FILE = "events.jsonl"       # must match multimodal.training (a test checks)
STOP_FILE = "STOP"
LOG_FILE = "worker.log"
WORKER_PREFIX = "mmstudio-train-"  # name of the worker processes
GRACE_SECONDS = 20.0               # a stop request waits this long before terminate()
# A job whose owner (browser session) has been gone this long is stopped; long enough that a page
# reconnect (network blip, laptop lid) does not kill the training.
ORPHAN_SECONDS = float(limits.ORPHAN_SECONDS.get())
MAX_CONCURRENT_JOBS = limits.MAX_JOBS.get()   # read at start-up: the queue is server-wide
ACTIVE = ("queued", "running", "stopping")
STATES = ACTIVE + ("finished", "stopped", "failed")
BASELINES = ("image_only", "tabular_only")
SETTINGS = ("epochs", "batch_size", "lr", "val_fraction", "patience", "seed", "loss",
            "target_transform")   # what the Model page offers


TRAIN_DEFAULTS = {k: v for k, v in asdict(TrainConfig(data="")).items() if k in SETTINGS}
MODEL_DEFAULTS = asdict(ModelConfig())    # arch, encoder, image_size, ...


# ---------------------------------------------------------------------------------- the worker

def _watch_parent(parent_pid: int, run_dir: Path) -> None:
    """In the worker: if the app process dies, stop training (then exit) so nothing is orphaned."""
    while True:
        time.sleep(2.0)
        if os.getppid() != parent_pid:
            try:
                (run_dir / STOP_FILE).touch()
            except OSError:
                pass
            time.sleep(GRACE_SECONDS)
            os._exit(3)


def _append_error(run_dir: Path, kind: str, message: str) -> None:
    try:
        with open(run_dir / EVENTS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": time.time(), "type": "error", "kind": kind, "message": message}) + "\n")
    except OSError:  # the run folder is gone (its session was closed): nobody is listening
        pass


def _name_process(name: str) -> None:
    """Set the OS-visible name (/proc/<pid>/comm, what ps and top show; 15 bytes at most on Linux),
    so leftover workers can be found by WORKER_PREFIX. A no-op where prctl does not exist."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)   # 15 = PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _worker(config: Any, run_dir: str, dataset: Any, workdir: str | None, parent_pid: int) -> None:
    """Entry point of the training process (spawn): train, and turn any failure into an event."""
    _name_process(WORKER_PREFIX)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    run = Path(run_dir)
    threading.Thread(target=_watch_parent, args=(parent_pid, run), daemon=True).start()
    from multimodal.core.errors import DataError
    from multimodal.data.dataset import load_dataset
    try:
        if dataset is None:  # read the data before importing Keras, so bad input fails in a second
            dataset = load_dataset(config["data"], workdir=Path(workdir) if workdir else None,
                                   target=config.get("target"), task=config.get("task"),
                                   overrides=config.get("overrides"))
        from multimodal.train import training
        settings = training.TrainConfig.from_dict({k: v for k, v in config.items() if k != "cv"})
        if "cv" in config:  # a cross-validated comparison (Compare page) instead of one run
            from multimodal.train.crossval import run_comparison
            run_comparison(settings, run, config["cv"]["k"], config["cv"]["repeats"],
                           archs=config["cv"].get("archs"), dataset=dataset)
        else:
            training.train(settings, run, dataset=dataset, workdir=Path(workdir) if workdir else None)
    except DataError as exc:
        _append_error(run, "data", str(exc))
        _exit(2)
    except Exception as exc:  # noqa: BLE001  (anything else: a short message and the full log)
        with open(run / LOG_FILE, "a", encoding="utf-8") as log:
            log.write(traceback.format_exc())
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        message = (f"Training failed with an internal error ({type(exc).__name__}{': ' + first if first else ''}). "
                   f"The full log is in {LOG_FILE} in the run folder.")
        _append_error(run, "internal", message)
        _exit(1)
    _exit(0)


def _exit(code: int) -> None:
    """Leave at once: the run folder is complete, and TensorFlow's teardown takes seconds that
    would keep a queue slot busy."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


def _skip_main_module_in_workers() -> None:
    """Spawned children normally re-run the parent's __main__ file (under `streamlit run` that is
    the streamlit script; from stdin it does not exist and the child dies). The worker needs
    nothing from __main__, so for processes named WORKER_PREFIX* that step is left out."""
    from multiprocessing import spawn
    original = spawn.get_preparation_data
    if getattr(original, "_mmstudio", False):
        return

    def get_preparation_data(name):
        data = original(name)
        if str(name).startswith(WORKER_PREFIX):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    get_preparation_data._mmstudio = True
    spawn.get_preparation_data = get_preparation_data


# ------------------------------------------------------------------------------------ progress

@dataclass
class Progress:
    """What the Train page draws: position, ETA, latest logs and the points of the curves."""
    epoch: int = 0                 # epochs completed
    epochs: int = 0                # epochs requested
    step: int = 0                  # batches done in the current epoch
    steps: int = 0                 # batches per epoch
    fraction: float = 0.0          # of all requested batches
    eta_seconds: float | None = None
    logs: dict = field(default_factory=dict)         # latest batch logs (running epoch means)
    epoch_logs: dict = field(default_factory=dict)   # latest epoch logs (with val_*)
    batch_points: list = field(default_factory=list)  # {"x": fractional epoch, **logs}
    epoch_points: list = field(default_factory=list)  # {"x": epoch, **logs}
    rows: dict = field(default_factory=dict)          # split sizes from the start event
    started: bool = False          # the model is built and fit has begun
    end: dict | None = None        # the end event: status, metrics, epochs_run
    error: str | None = None


def _read_events(run_dir: Path, offset: int) -> tuple[list[dict], int]:
    """Whole JSON lines appended since byte `offset` (same contract as training.read_events)."""
    path = Path(run_dir) / EVENTS_FILE
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read()
    except OSError:
        return [], offset
    complete = chunk[: chunk.rfind(b"\n") + 1]
    events = []
    for line in complete.decode("utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events, offset + len(complete)


# ----------------------------------------------------------------------------------------- job

class Job:
    """One training run of the app. Create with start_job(); read with poll() and progress()."""

    def __init__(self, config: Any, run_dir: Path, dataset: Any = None, workdir: Path | None = None,
                 owner_alive: Callable[[], bool] | None = None):
        # The worker gets the plain dict (unpickling a TrainConfig would import Keras before the
        # data is even read); TrainConfig.from_dict rebuilds it there.
        self.config = dict(config) if isinstance(config, Mapping) else config.to_dict()
        self.run_dir = Path(run_dir)
        self.dataset = dataset
        self.workdir = workdir
        self.owner_alive = owner_alive         # None: nobody to watch (CLI, tests); never orphaned
        self.owner_gone_since: float | None = None
        self.state = "queued"
        self.created = time.time()
        self.started: float | None = None      # when the process started
        self.ended: float | None = None
        self.stop_requested: float | None = None
        self.pid: int | None = None
        self.exitcode: int | None = None
        self.error: str | None = None
        self._process = None
        self._offset = 0
        self._progress = Progress(epochs=int(self.config.get("epochs") or 0))
        self._first_batch_time: float | None = None
        self._first_batch_done = 0
        self._lock = threading.Lock()

    # -- public --------------------------------------------------------------------------
    @property
    def arch(self) -> str:
        return (self.config.get("model") or {}).get("arch", MODEL_DEFAULTS.get("arch", "?"))

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def poll(self) -> str:
        """Advance every job's state (start queued ones, reap ended ones); return this one's."""
        MANAGER.tick()
        return self.state

    def queue_position(self) -> tuple[int, int] | None:
        """(1-based position, queue length) while queued, else None."""
        return MANAGER.position(self)

    def stop(self) -> None:
        """Ask the worker to stop after the current batch (a queued job is just cancelled)."""
        MANAGER.stop(self)

    def wait(self, timeout: float | None = None, interval: float = 0.2) -> str:
        """Poll until the job ends or `timeout` seconds pass; return the state (for tests, CLI)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() in ACTIVE and (deadline is None or time.monotonic() < deadline):
            time.sleep(interval)
        return self.state

    def status_text(self) -> str:
        """One line for the page: queue position, stage, or how it ended."""
        p = self.progress()
        if self.state == "queued":
            pos = self.queue_position()
            where = f"position {pos[0]} of {pos[1]}" if pos else "waiting"
            return f"queued: {where}, waiting for a free slot ({MAX_CONCURRENT_JOBS} trainings run at a time)"
        if self.state == "running":
            if not p.started:
                return "running: loading the data and building the model"
            if not p.batch_points:
                return "running: compiling the model (the first batch takes the longest)"
            return f"running: epoch {min(p.epoch + 1, p.epochs)} of {p.epochs}, step {p.step} of {p.steps}"
        if self.state == "stopping":
            return "stopping after the current batch"
        if self.state == "finished":
            early = p.end and p.end.get("status") == "early_stopped"
            return f"finished: {p.epoch} epochs" + (" (early stopping: validation loss stopped improving)" if early else "")
        if self.state == "stopped":
            if p.end:
                return f"stopped after {p.epoch} of {p.epochs} epochs; the partial model was saved"
            return "stopped before training began" if not p.started else "stopped (the worker was terminated)"
        return f"failed: {self.error or 'unknown error'}"

    def progress(self) -> Progress:
        """Read events appended since the last call and return the accumulated progress."""
        with self._lock:
            events, self._offset = _read_events(self.run_dir, self._offset)
            for event in events:
                self._apply(event)
            return self._progress

    # -- internals -------------------------------------------------------------------------
    def _apply(self, e: dict) -> None:
        p, kind = self._progress, e.get("type")
        if kind == "start":
            p.started, p.epochs, p.steps, p.rows = True, int(e.get("epochs", p.epochs)), int(e.get("steps", 0)), e.get("rows", {})
        elif kind == "batch":
            p.step, p.steps = int(e["step"]), int(e.get("steps") or p.steps)
            p.logs = e.get("logs", {})
            done = int(e["epoch"]) * max(p.steps, 1) + p.step
            p.batch_points.append({"x": int(e["epoch"]) + p.step / max(p.steps, 1), **p.logs})
            if self._first_batch_time is None:
                self._first_batch_time, self._first_batch_done = e["time"], done
            total = max(p.epochs * p.steps, 1)
            p.fraction = min(done / total, 1.0)
            if done > self._first_batch_done:
                rate = (e["time"] - self._first_batch_time) / (done - self._first_batch_done)
                p.eta_seconds = max(rate * (total - done), 0.0)
        elif kind == "epoch":
            p.epoch, p.epoch_logs = int(e["epoch"]), e.get("logs", {})
            p.epoch_points.append({"x": p.epoch, **p.epoch_logs})
            p.step = 0
        elif kind == "end":
            p.end, p.eta_seconds = e, 0.0
            p.fraction = 1.0 if e.get("status") != "stopped" else p.fraction
        elif kind == "error":
            p.error = self.error = e.get("message", "training failed")

    def _orphaned(self, now: float) -> bool:
        """True once the owner has been gone for ORPHAN_SECONDS (the monitor calls this every second)."""
        if self.owner_alive is None or self.state not in ("queued", "running"):
            return False
        try:
            alive = bool(self.owner_alive())
        except Exception:  # noqa: BLE001  (a failing check must never kill someone's training)
            alive = True
        if alive:
            self.owner_gone_since = None
            return False
        if self.owner_gone_since is None:
            self.owner_gone_since = now
        return now - self.owner_gone_since >= ORPHAN_SECONDS

    def _launch(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        _skip_main_module_in_workers()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._process = ctx.Process(
            target=_worker, name=WORKER_PREFIX + self.run_dir.name, daemon=True,
            args=(self.config, str(self.run_dir), self.dataset, str(self.workdir) if self.workdir else None, os.getpid()))
        self._process.start()
        self.pid, self.started, self.state = self._process.pid, time.time(), "running"
        self.dataset = None  # the worker has its copy; do not keep a second one alive here

    def _check(self, now: float) -> bool:
        """Update a running/stopping job; return True when it has ended."""
        proc = self._process
        if proc.is_alive():
            if self.stop_requested and now - self.stop_requested > GRACE_SECONDS:
                proc.terminate()
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
            else:
                return False
        proc.join(1)
        self.exitcode, self.ended = proc.exitcode, time.time()
        p = self.progress()
        if p.error:
            self.state = "failed"
        elif p.end:
            self.state = "stopped" if p.end.get("status") == "stopped" else "finished"
        elif self.stop_requested:
            self.state = "stopped"
        else:
            self.state = "failed"
            self.error = f"the training process ended unexpectedly (exit code {self.exitcode})"
        return True

    def __repr__(self) -> str:
        return f"Job({self.run_dir.name!r}, {self.arch}, {self.state}, pid={self.pid})"


class _Manager:
    """Server-wide: at most `limit` worker processes; the rest wait in FIFO order."""

    def __init__(self):
        self.lock = threading.RLock()
        self.queue: deque[Job] = deque()
        self.running: list[Job] = []
        self._limit: int | None = None
        self._monitor: threading.Thread | None = None

    @property
    def limit(self) -> int:
        return max(1, self._limit if self._limit is not None else MAX_CONCURRENT_JOBS)

    @limit.setter
    def limit(self, value: int | None) -> None:
        self._limit = value

    def submit(self, job: Job) -> None:
        with self.lock:
            self.queue.append(job)
            self.tick()
            self._ensure_monitor()

    def tick(self) -> None:
        now = time.time()
        with self.lock:
            for job in [j for j in self.running + list(self.queue) if j._orphaned(now)]:
                self.stop(job)      # queued: dropped; running: STOP flag, terminate after the grace
                job.error = job.error or "its browser session ended"
            self.running = [j for j in self.running if not j._check(now)]
            while self.queue and len(self.running) < self.limit:
                job = self.queue.popleft()
                if not job.run_dir.parent.exists():   # its session was closed meanwhile
                    job.state, job.error, job.ended = "stopped", "its session ended", now
                    continue
                try:
                    job._launch()
                except Exception as exc:  # noqa: BLE001  (e.g. out of processes): tell the page
                    job.state, job.error, job.ended = "failed", f"could not start the worker ({exc})", now
                    continue
                self.running.append(job)

    def position(self, job: Job) -> tuple[int, int] | None:
        with self.lock:
            return (list(self.queue).index(job) + 1, len(self.queue)) if job in self.queue else None

    def stop(self, job: Job) -> None:
        with self.lock:
            if job in self.queue:
                self.queue.remove(job)
                job.state, job.ended = "stopped", time.time()
            elif job.state == "running":
                job.stop_requested = time.time()
                job.run_dir.mkdir(parents=True, exist_ok=True)
                (job.run_dir / STOP_FILE).touch()
                job.state = "stopping"

    def active_jobs(self) -> list[Job]:
        with self.lock:
            return self.running + list(self.queue)

    def _ensure_monitor(self) -> None:
        """A tiny thread keeps the queue moving and reaps workers when no page is polling."""
        if self._monitor is None or not self._monitor.is_alive():
            self._monitor = threading.Thread(target=self._watch, name="mmstudio-jobs", daemon=True)
            self._monitor.start()

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            with self.lock:
                self.tick()
                if not self.running and not self.queue:
                    self._monitor = None
                    return

    def shutdown(self) -> None:
        """At interpreter exit: cancel the queue and terminate running workers."""
        with self.lock:
            self.queue.clear()
            for job in self.running:
                proc = job._process
                if proc is not None and proc.is_alive():
                    proc.terminate()
            for job in self.running:
                if job._process is not None:
                    job._process.join(5)
                    if job._process.is_alive():
                        job._process.kill()


MANAGER = _Manager()
atexit.register(MANAGER.shutdown)


# ------------------------------------------------------------------------------ public helpers

def start_job(config: TrainConfig | dict, run_dir: Path, dataset: Any = None,
              workdir: Path | None = None, owner_alive: Callable[[], bool] | None = None) -> Job:
    """Queue a training run; it starts at once when a slot is free. `config` is a TrainConfig or
    its to_dict(); `dataset` (a loaded data.Dataset) saves the worker from re-reading the CSV;
    `owner_alive` (the app's session check) lets the manager stop a job nobody watches any more."""
    job = Job(config, Path(run_dir), dataset, workdir, owner_alive)
    MANAGER.submit(job)
    return job


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
    model_dict = {**MODEL_DEFAULTS, **(asdict(model) if is_dataclass(model) else dict(model or {}))}
    s = {**TRAIN_DEFAULTS, **{k: v for k, v in (settings or {}).items() if k in SETTINGS}}
    return {"data": str(dataset.csv_path), "target": dataset.target, "task": dataset.task,
            "overrides": dict(dataset.roles), **s, "model": model_dict}


def reuse_config(run_config: Mapping, arch: str) -> dict:
    """The training settings of a saved run (its config.json) with another fusion method."""
    keep = ("data", "target", "task", "overrides", "val_fraction", "seed", "epochs", "batch_size", "lr",
            "patience", "loss", "class_weight", "target_transform", "restore_best")
    config = {k: run_config[k] for k in keep if k in run_config}
    config["model"] = {**dict(run_config.get("model") or {}), "arch": arch}
    return config


# -------------------------------------------------------------------------------- fusion gain

def main_metric(task: str) -> tuple[str, bool]:
    """The metric runs are compared by: (name without split prefix, higher is better)."""
    return ("accuracy", True) if task == "classification" else ("mae", False)


def fusion_gain(runs: Iterable[Any], task: str | None = None) -> dict:
    """Best fusion run's validation metric minus the best single-branch baseline's.

    `runs` are runs.Run objects or mappings with arch, task and metrics (val_* keys). The sign is
    chosen so that a positive gain always means fusion is better (for MAE: baseline - fusion).
    Returns metric, higher_is_better, gain (None if it cannot be measured), the best fusion and
    baseline runs, the missing baselines and a note for the page.
    """
    def get(r, key):
        return r.get(key) if isinstance(r, Mapping) else getattr(r, key, None)

    runs = list(runs)
    task = task or next((get(r, "task") for r in runs), None) or "classification"
    metric, higher = main_metric(task)
    key = f"val_{metric}"
    scored = [(r, float((get(r, "metrics") or {})[key])) for r in runs
              if get(r, "task") == task and key in (get(r, "metrics") or {})]
    pick = max if higher else min
    fusion = [s for s in scored if get(s[0], "arch") not in BASELINES]
    base = [s for s in scored if get(s[0], "arch") in BASELINES]
    missing = [b for b in BASELINES if b not in {get(r, "arch") for r, _ in base}]
    out = {"metric": metric, "key": key, "higher_is_better": higher, "gain": None, "fusion": None,
           "baseline": None, "missing": missing, "note": ""}

    def describe(s):
        return {"name": get(s[0], "name") or get(s[0], "dir"), "arch": get(s[0], "arch"), "value": s[1]}

    if fusion:
        out["fusion"] = describe(pick(fusion, key=lambda s: s[1]))
    if base:
        out["baseline"] = describe(pick(base, key=lambda s: s[1]))
    if not fusion:
        out["note"] = "No fusion run yet: train a fusion method to measure the gain."
    elif not base:
        out["note"] = "No single-branch baseline yet: train image_only and tabular_only to measure the gain."
    else:
        f, b = out["fusion"]["value"], out["baseline"]["value"]
        out["gain"] = f - b if higher else b - f
        if missing:
            out["note"] = (f"Baseline {', '.join(missing)} is missing, so the gain is measured against "
                           f"{out['baseline']['arch']} only and may be overstated.")
    return out
