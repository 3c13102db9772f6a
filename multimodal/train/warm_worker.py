"""A training worker started before its job, so the app's next job skips the worker's start-up
(docs/ARCHITECTURE.md, "Workers and events").

A job's worker is a spawned process (worker.py) that imports TensorFlow and the training modules
before it can train: about 4 s on 2 cores, measured from the Playground's Race click to the race's
first event (bench/RESULTS_playground.md). The queue (jobs.py) keeps at most one worker started
ahead, with those imports done, waiting on a pipe for run_worker's arguments; a job takes it
instead of spawning one. Started only while no job runs (its imports would slow a running job),
by `prepare` (app.py, on each script run): a job whose worker is not ready spawns one as before.

Light to import: the app server imports it through jobs.py; the heavy modules load in the child.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from multimodal.core.quiet import quiet_tensorflow
from multimodal.train.worker import WORKER_PREFIX, name_process, run_worker, skip_main_module_in_workers

WARM_NAME = "mmstudio-warm"   # its OS-visible name while it waits (worker.WORKER_PREFIX once it has a job)
# What a worker imports before training, whatever the job: a run, a comparison or a race.
TRAINING_MODULES = ("multimodal.train.training", "multimodal.train.crossval", "multimodal.train.playground_race")


def wait_for_job(conn: Connection) -> None:
    """Entry point of a warm worker (spawn): import the training modules, then run the job sent.
    Its parent gone (the pipe closed), it leaves."""
    name_process(WARM_NAME)
    quiet_tensorflow()
    for module in TRAINING_MODULES:
        importlib.import_module(module)
    try:
        job = conn.recv()
    except (EOFError, OSError):
        os._exit(0)
    conn.close()
    run_worker(*job)


class WarmWorker:
    """At most one worker process started ahead and waiting; `take` hands it a job."""

    def __init__(self):
        self._ready: tuple[BaseProcess, Connection] | None = None
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Start one unless one is waiting already."""
        with self._lock:
            if self._ready is not None and self._ready[0].is_alive():
                return
            ctx = multiprocessing.get_context("spawn")
            skip_main_module_in_workers()
            mine, theirs = ctx.Pipe()
            process = ctx.Process(target=wait_for_job, args=(theirs,), name=WORKER_PREFIX + "warm", daemon=True)
            process.start()
            theirs.close()
            self._ready = (process, mine)

    @property
    def pid(self) -> int | None:
        """The waiting worker's process id (None: none waits)."""
        with self._lock:
            return self._ready[0].pid if self._ready is not None else None

    def take(self, args: tuple) -> BaseProcess | None:
        """The waiting worker, handed `args` (run_worker's: it trains them); None when none waits."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is None:
            return None
        process, conn = ready
        try:
            if not process.is_alive():
                return None
            conn.send(args)
            return process
        except OSError:   # it died between the check and the send
            return None
        finally:
            conn.close()

    def close(self) -> None:
        """End the waiting one (at the server's exit)."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            ready[1].close()   # it reads EOF and leaves
            ready[0].join(5)
            if ready[0].is_alive():   # still importing: it would read the end only afterwards
                ready[0].kill()
                ready[0].join()
