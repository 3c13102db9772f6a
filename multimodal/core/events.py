"""The events protocol between a training or comparison worker and whoever watches it.

A worker appends one JSON object per line to `events.jsonl` in its run folder (append-only, so a
reader never sees a half-rewritten file); a watcher tails it by byte offset. Creating the file
`STOP` in the same folder asks the worker to end after the current batch or fold. See
docs/ARCHITECTURE.md, "Workers and events". Standard library only.
"""
from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path

EVENTS_FILE = "events.jsonl"
STOP_FILE = "STOP"


class Event(StrEnum):
    """The `type` of every event a worker writes (each has its builder below)."""

    WEIGHTS = "weights"   # the image encoder's weights: downloading (bytes), then their source
    START = "start"       # training or a comparison begins: epochs, steps, rows, phases / methods, folds
    PHASE = "phase"       # the second phase of a two-phase fit begins
    BATCH = "batch"       # a training batch ended (thinned out: train/phases.py)
    EPOCH = "epoch"       # an epoch ended, with its logs
    FOLD = "fold"         # a comparison trained one fold of one method
    END = "end"           # the work ended, with its Status
    ERROR = "error"       # it failed: kind "data" (the user can fix it) or "internal"


class Status(StrEnum):
    """How a training or a comparison ended (the `end` event, summary.json's "status")."""

    COMPLETED = "completed"           # a training used its whole epoch budget
    EARLY_STOPPED = "early_stopped"   # early stopping ended it
    STOPPED = "stopped"               # the user asked (STOP): the result is partial
    FINISHED = "finished"             # a comparison trained every fold


def training_status(stopped: bool, epochs_run: int, epochs: int) -> Status:
    """The status of a training that ran `epochs_run` of its `epochs`."""
    if stopped:
        return Status.STOPPED
    return Status.EARLY_STOPPED if epochs_run < epochs else Status.COMPLETED


def event(kind: Event, /, **fields) -> dict:
    """One event of `kind` (`append_event` stamps the time)."""
    return {"type": Event(kind).value, **fields}


def start_event(*, epochs: int, steps: int, arch: str, rows: dict, phases: list[dict], **extra) -> dict:
    """A training begins: the epoch budget over all phases, batches per epoch, rows per split."""
    return event(Event.START, epochs=epochs, steps=steps, arch=arch, rows=rows, phases=phases, **extra)


def end_event(status: Status, **fields) -> dict:
    return event(Event.END, status=Status(status).value, **fields)


def error_event(kind: str, message: str) -> dict:
    return event(Event.ERROR, kind=kind, message=message)


def append_event(run_dir: Path, event: dict) -> None:
    """Append one event (stamped with the wall-clock time) to the run folder's events file."""
    with open(Path(run_dir) / EVENTS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps({"time": time.time(), **event}) + "\n")


def read_events(run_dir: Path, offset: int = 0) -> tuple[list[dict], int]:
    """Events appended since byte `offset`, and the new offset.

    Only whole lines are read (a line being written is left for the next call); a line that is not
    JSON (a worker killed mid-write) is skipped rather than failing the watcher.
    """
    try:
        with open(Path(run_dir) / EVENTS_FILE, "rb") as f:
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


def request_stop(run_dir: Path) -> None:
    """Ask the worker writing into run_dir to stop (it checks between batches or folds)."""
    (Path(run_dir) / STOP_FILE).touch()


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / STOP_FILE).exists()
