"""The training worker process: its entry point, how it is spawned, named and tied to its parent.

The job queue (jobs.py) starts `run_worker` in a spawned process per run. The worker trains (or
runs a cross-validated comparison), writes progress to the run folder's events file
(core/events.py) and turns any failure into an `{"type": "error", "kind", "message"}` event, with
the full traceback in LOG_FILE. See docs/ARCHITECTURE.md, "Workers and events".

Light to import (the app server imports it through jobs.py): the data and training modules are
imported inside the worker process only.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
import traceback
from multiprocessing import spawn
from pathlib import Path
from typing import Any

from multimodal.core.comparison import comparison_parts
from multimodal.core.config import TrainConfig
from multimodal.core.errors import DataError
from multimodal.core.events import append_event, error_event, request_stop
from multimodal.core.quiet import quiet_tensorflow

LOG_FILE = "worker.log"
WORKER_PREFIX = "mmstudio-train-"  # name of the worker processes
GRACE_SECONDS = 20.0               # a stop request waits this long before the process is ended


def _watch_parent(parent_pid: int, run_dir: Path) -> None:
    """In the worker: if the app process dies, stop training (then exit) so nothing is orphaned."""
    while True:
        time.sleep(2.0)
        if os.getppid() != parent_pid:
            try:
                request_stop(run_dir)
            except OSError:
                pass
            time.sleep(GRACE_SECONDS)
            os._exit(3)


def _append_error(run_dir: Path, kind: str, message: str) -> None:
    try:
        append_event(run_dir, error_event(kind, message))
    except OSError:  # the run folder is gone (its session was closed): nobody is listening
        pass


def name_process(name: str) -> None:
    """Set the OS-visible name (/proc/<pid>/comm, what ps and top show; 15 bytes at most on Linux),
    so leftover workers can be found by WORKER_PREFIX. A no-op where prctl does not exist."""
    try:
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)   # 15 = PR_SET_NAME
    except (OSError, AttributeError):
        pass


def run_worker(config: dict, run_dir: str, dataset: Any, workdir: str | None, parent_pid: int) -> None:
    """Entry point of the training process (spawn): train, and turn any failure into an event.

    `config` is a TrainConfig.to_dict(); for a comparison, core/comparison.comparison_job's (the
    TrainConfig's dict plus the ComparisonOptions and the maps' cache folder); or
    {"data": CSV, "playground": run_race's keyword arguments} for a Fusion Playground race."""
    name_process(WORKER_PREFIX)
    quiet_tensorflow()   # its start-up chatter stays out of the app's log (core/quiet.py)
    run = Path(run_dir)
    threading.Thread(target=_watch_parent, args=(parent_pid, run), daemon=True).start()
    # lazy: the app server imports this module; pandas and TensorFlow load in the worker only
    from multimodal.data.dataset import load_dataset_for
    try:
        if dataset is None:  # read the data before importing Keras, so bad input fails in a second
            dataset = load_dataset_for(config, workdir)
        if "playground" in config:   # a Fusion Playground race (train/playground_race.py)
            # lazy: TensorFlow loads only once the data is known to be good (see above)
            from multimodal.train.playground_race import run_race
            run_race(config["data"], run, **config["playground"])
            _exit(0)
        # lazy: TensorFlow loads only once the data is known to be good (see above)
        from multimodal.train.crossval import run_comparison
        from multimodal.train.training import train
        settings, options, cache_dir = comparison_parts(config)
        settings = TrainConfig.from_dict(settings)
        if options is not None:  # a cross-validated comparison (Compare page) instead of one run
            run_comparison(settings, run, options, dataset=dataset, cache_dir=cache_dir)
        else:
            train(settings, run, dataset=dataset, workdir=Path(workdir) if workdir else None)
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


def skip_main_module_in_workers() -> None:
    """Spawned children normally re-run the parent's __main__ file (under `streamlit run` that is
    the streamlit script; from stdin it does not exist and the child dies). The worker needs
    nothing from __main__, so for processes named WORKER_PREFIX* that step is left out."""
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
