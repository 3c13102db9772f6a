"""A stand-in for train/worker.run_worker, for tests of the job queue's logic (orphans, stops):
the same events and the same answer to STOP, without importing TensorFlow or training."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from multimodal.core.events import Event, Status, append_event, end_event, event, start_event, stop_requested

STEPS = 4


def training_until_stopped(config: dict, run_dir: str, dataset: Any, workdir: str | None, parent_pid: int) -> None:
    """Writes a start event, then a batch event every 50 ms until STOP appears, then a stopped end."""
    run = Path(run_dir)
    append_event(run, start_event(epochs=config.get("epochs") or 1, steps=STEPS, arch="stub", rows={"train": 8},
                                  phases=[]))
    step = 0
    while not stop_requested(run):
        step += 1
        append_event(run, event(Event.BATCH, epoch=0, step=step % STEPS + 1, steps=STEPS, phase=1, logs={}))
        time.sleep(0.05)
    append_event(run, end_event(Status.STOPPED, epochs_run=0))
