"""The events protocol between a training or comparison worker and whoever watches it.

A worker appends one JSON object per line to `events.jsonl` in its run folder (append-only, so a
reader never sees a half-rewritten file); a watcher tails it by byte offset. Creating the file
`STOP` in the same folder asks the worker to end after the current batch or fold. See
docs/ARCHITECTURE.md, "Workers and events". Standard library only.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

EVENTS_FILE = "events.jsonl"
STOP_FILE = "STOP"


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
