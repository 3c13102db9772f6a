"""The events protocol (core/events.py): typed builders, statuses, and reading what was written."""
from __future__ import annotations

import json

import pytest

from multimodal.core.events import (
    EVENTS_FILE,
    Event,
    Status,
    append_event,
    end_event,
    error_event,
    event,
    read_events,
    start_event,
    training_status,
)
from multimodal.train.progress import ProgressReader


@pytest.mark.parametrize(("stopped", "ran", "budget", "status"), [
    (True, 3, 10, "stopped"), (True, 10, 10, "stopped"), (False, 4, 10, "early_stopped"), (False, 10, 10, "completed")])
def test_training_status(stopped, ran, budget, status):
    assert training_status(stopped, ran, budget) == status


def test_builders_write_plain_json_that_readers_understand(tmp_path):
    append_event(tmp_path, start_event(epochs=4, steps=3, arch="late_concat", rows={"train": 30, "val": 10},
                                       phases=[{"phase": 1, "epochs": 4, "backbone": "trained"}]))
    append_event(tmp_path, event(Event.EPOCH, epoch=1, phase=1, logs={"loss": 0.5}))
    append_event(tmp_path, end_event(Status.STOPPED, epochs_run=1))
    append_event(tmp_path, error_event("data", "column 'age', row 3: not a number"))
    lines = [json.loads(line) for line in (tmp_path / EVENTS_FILE).read_text().splitlines()]
    assert [line["type"] for line in lines] == ["start", "epoch", "end", "error"]
    assert lines[2]["status"] == "stopped" and type(lines[2]["status"]) is str
    assert lines[3] == {"time": lines[3]["time"], "type": "error", "kind": "data",
                        "message": "column 'age', row 3: not a number"}
    events, offset = read_events(tmp_path)
    assert len(events) == 4 and offset == (tmp_path / EVENTS_FILE).stat().st_size
    reader = ProgressReader(tmp_path)
    reader.read()
    p = reader.progress
    assert p.started and p.epochs == 4 and p.steps == 3 and p.epoch == 1
    assert p.end["status"] == Status.STOPPED and p.fraction < 1.0          # a stopped run is not complete
    assert p.error == "column 'age', row 3: not a number"


def test_an_unknown_event_type_is_refused():
    with pytest.raises(ValueError):
        event("bogus", x=1)
    with pytest.raises(ValueError):
        end_event("halfway")
