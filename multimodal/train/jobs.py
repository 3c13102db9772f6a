"""Training jobs for the app: a server-wide limit on worker processes and a FIFO queue.

Streamlit-free and light to import (no numpy, pandas or TensorFlow here: the worker imports
them). Training is a process and not a thread because Streamlit clears Keras' global state after
every rerun, and a thread would share the server's GIL (docs/ARCHITECTURE.md, "Workers and events").

    job = start_job(config, run_dir, dataset=ds)    # queued or running at once
    job.poll()                                       # advances every job's state (cheap)
    job.progress()                                   # reads new lines of events.jsonl
    job.stop()                                       # STOP flag; terminate after GRACE_SECONDS

A job may have an owner: `owner` names it (the app: its workspace, runs/workspaces.py) so a page
opened later finds the job again (`owned_jobs`), and `owner_alive()` says whether the owner is still
there (the app: the workspace exists and a connected browser session has it open). The manager's
monitor thread asks every second; once the owner has been gone for limits.ORPHAN_SECONDS the job is
stopped like a Stop click (a queued one is dropped), so a closed tab leaves no worker behind, while a
reload or a reconnect within the timeout keeps the job. `recorded_job(run_dir)` reads back a
training from its folder alone (after a server restart: how it ended, from its events).

The worker process itself is worker.py; turning its events into progress is progress.py.
"""
from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from multimodal.core import limits
from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.core.events import Event, Status, request_stop
from multimodal.train.progress import Progress, ProgressReader
from multimodal.train.warm_worker import WarmWorker
from multimodal.train.worker import GRACE_SECONDS, WORKER_PREFIX, run_worker, skip_main_module_in_workers


class JobState(StrEnum):
    """Where a job of the queue is; FINISHED and STOPPED read the worker's end event."""

    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"   # STOP requested; the worker ends after its current batch or fold
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.STOPPING)


class Job:
    """One training run of the app. Create with start_job(); read with poll() and progress()."""

    def __init__(self, config: Any, run_dir: Path, dataset: Any = None, workdir: Path | None = None,
                 owner_alive: Callable[[], bool] | None = None, target: Callable[..., None] = run_worker,
                 owner: str | None = None):
        # The worker gets the plain dict (unpickling a TrainConfig would import Keras before the
        # data is even read); TrainConfig.from_dict rebuilds it there.
        self.config = dict(config) if isinstance(config, Mapping) else config.to_dict()
        self.run_dir = Path(run_dir)
        self.dataset = dataset
        self.workdir = workdir
        self.owner_alive = owner_alive         # None: nobody to watch (CLI, tests); never orphaned
        self.owner = owner                     # who finds it again (owned_jobs); None: nobody
        # The process's entry point, called as run_worker is; tests of the queue's logic pass a
        # light stand-in that writes the same events without training.
        self.target = target
        self.owner_gone_since: float | None = None
        self.state = JobState.QUEUED
        self.created = time.time()
        self.started: float | None = None      # when the process started
        self.ended: float | None = None
        self.stop_requested: float | None = None
        self.pid: int | None = None
        self.exitcode: int | None = None
        self.error: str | None = None
        self._process = None
        self._reader = ProgressReader(self.run_dir, int(self.config.get("epochs") or 0))
        self._lock = threading.Lock()

    # -- public --------------------------------------------------------------------------
    @property
    def arch(self) -> str:
        return (self.config.get("model") or {}).get("arch", ModelConfig().arch)

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
        if self.state == JobState.QUEUED:
            pos = self.queue_position()
            where = f"position {pos[0]} of {pos[1]}" if pos else "waiting"
            return f"queued: {where}, waiting for a free slot ({MANAGER.limit} trainings run at a time)"
        if self.state == JobState.RUNNING:
            # The worker's start-up (TensorFlow's import, the data, the first batch's tracing) can
            # take a minute on a busy machine: the seconds show it is alive.
            alive = f" ({time.time() - (self.started or time.time()):.0f} s so far)"
            if not p.started:
                return "running: loading the data and building the model" + alive
            if not p.batch_points:
                return "running: compiling the model (the first batch takes the longest)" + alive
            return f"running: epoch {min(p.epoch + 1, p.epochs)} of {p.epochs}, step {p.step} of {p.steps}"
        if self.state == JobState.STOPPING:
            return "stopping after the current batch"
        if self.state == JobState.FINISHED:
            early = p.end and p.end.get("status") == "early_stopped"
            return f"finished: {p.epoch} epochs" + (" (early stopping: validation loss stopped improving)" if early else "")
        if self.state == JobState.STOPPED:
            if p.end:
                return f"stopped after {p.epoch} of {p.epochs} epochs; the partial model was saved"
            return "stopped before training began" if not p.started else "stopped (the worker was terminated)"
        return f"failed: {self.error or 'unknown error'}"

    def progress(self) -> Progress:
        """Read events appended since the last call and return the accumulated progress."""
        with self._lock:
            for event in self._reader.read():
                if event.get("type") == Event.ERROR:
                    self.error = self._reader.progress.error
            return self._reader.progress

    # -- internals -------------------------------------------------------------------------
    def _orphaned(self, now: float) -> bool:
        """True once the owner has been gone for limits.ORPHAN_SECONDS (the monitor calls this every
        second); long enough that a page reconnect (network blip, laptop lid) does not kill the training."""
        if self.owner_alive is None or self.state not in (JobState.QUEUED, JobState.RUNNING):
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
        return now - self.owner_gone_since >= limits.ORPHAN_SECONDS.get()

    def _launch(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        args = (self.config, str(self.run_dir), self.dataset, str(self.workdir) if self.workdir else None, os.getpid())
        # A worker started ahead (warm_worker.py) when there is one: its imports are done.
        self._process = WARM.take(args) if self.target is run_worker else None
        if self._process is None:
            ctx = multiprocessing.get_context("spawn")
            skip_main_module_in_workers()
            self._process = ctx.Process(target=self.target, name=WORKER_PREFIX + self.run_dir.name, daemon=True,
                                        args=args)
            self._process.start()
        self.pid, self.started, self.state = self._process.pid, time.time(), JobState.RUNNING
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
            self.state = JobState.FAILED
        elif p.end:
            self.state = JobState.STOPPED if p.end.get("status") == Status.STOPPED else JobState.FINISHED
        elif self.stop_requested:
            self.state = JobState.STOPPED
        else:
            self.state = JobState.FAILED
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
        self.owned: dict[str, list[Job]] = {}   # owner -> its jobs, oldest first (the last OWNED_KEPT)

    @property
    def limit(self) -> int:
        return max(1, self._limit if self._limit is not None else limits.MAX_JOBS.get())

    @limit.setter
    def limit(self, value: int | None) -> None:
        self._limit = value

    def submit(self, job: Job) -> None:
        with self.lock:
            if job.owner is not None:
                mine = self.owned.setdefault(job.owner, [])
                mine.append(job)
                del mine[:-OWNED_KEPT]
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
                if not job.run_dir.parent.exists():   # its workspace was removed meanwhile
                    job.state, job.error, job.ended = JobState.STOPPED, "its workspace was removed", now
                    continue
                try:
                    job._launch()
                except Exception as exc:  # noqa: BLE001  (e.g. out of processes): tell the page
                    job.state, job.error, job.ended = JobState.FAILED, f"could not start the worker ({exc})", now
                    continue
                self.running.append(job)

    def position(self, job: Job) -> tuple[int, int] | None:
        with self.lock:
            return (list(self.queue).index(job) + 1, len(self.queue)) if job in self.queue else None

    def stop(self, job: Job) -> None:
        with self.lock:
            if job in self.queue:
                self.queue.remove(job)
                job.state, job.ended = JobState.STOPPED, time.time()
            elif job.state == JobState.RUNNING:
                job.stop_requested = time.time()
                job.run_dir.mkdir(parents=True, exist_ok=True)
                request_stop(job.run_dir)
                job.state = JobState.STOPPING

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


OWNED_KEPT = 50     # an owner's jobs remembered for owned_jobs (ended ones are read from their folders)
MANAGER = _Manager()
WARM = WarmWorker()
atexit.register(MANAGER.shutdown)
atexit.register(WARM.close)


# ------------------------------------------------------------------------------ public helpers

def start_job(config: TrainConfig | dict, run_dir: Path, dataset: Any = None,
              workdir: Path | None = None, owner_alive: Callable[[], bool] | None = None,
              target: Callable[..., None] = run_worker, owner: str | None = None) -> Job:
    """Queue a training run; it starts at once when a slot is free. `config` is a TrainConfig or
    its to_dict(); `dataset` (a loaded data.Dataset) saves the worker from re-reading the CSV;
    `owner_alive` (the app's workspace check) lets the manager stop a job nobody watches any more;
    `owner` lets owned_jobs find it again."""
    job = Job(config, Path(run_dir), dataset, workdir, owner_alive, target, owner)
    MANAGER.submit(job)
    return job


def owned_jobs(owner: str) -> list[Job]:
    """The jobs submitted for `owner` in this server process (queued, running or ended), oldest first."""
    with MANAGER.lock:
        return list(MANAGER.owned.get(owner, []))


def recorded_job(run_dir: Path) -> Job:
    """A training read back from its folder alone (its config.json and events), for a page opened
    after the process that ran it is gone: finished, stopped, failed, or interrupted (no end event)."""
    run_dir = Path(run_dir)
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    job = Job(config if isinstance(config, dict) else {}, run_dir)
    p = job.progress()
    job.ended = job.created
    if p.error:
        job.state = JobState.FAILED
    elif p.end:
        job.state = JobState.STOPPED if p.end.get("status") == Status.STOPPED else JobState.FINISHED
    else:
        job.state = JobState.FAILED
        job.error = "it was interrupted (the server stopped) before it finished; train again"
    return job


def prepare_worker() -> None:
    """Have a worker started ahead for the next job (warm_worker.py), unless a job runs or waits:
    its imports would slow that job down."""
    if not MANAGER.active_jobs():
        WARM.prepare()
