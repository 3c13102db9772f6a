"""The Train page's view of one training: the curves' x-axis once a run ended early, and the ETA."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from multimodal.core.events import EVENTS_FILE
from multimodal.train.progress import ProgressReader

TIMEOUT = 60


def _curves(epochs_run: int, budget: int, ended: bool) -> None:
    """A training of `budget` epochs that has run `epochs_run`, drawn by training_view.progress_view
    (AppTest runs this body as a script: it imports what it uses)."""
    from pathlib import Path
    from types import SimpleNamespace

    from multimodal.app import training_view
    from multimodal.train.progress import Progress

    points = [{"x": e, "loss": 1 / e, "val_loss": 1.2 / e, "accuracy": 0.5, "val_accuracy": 0.5}
              for e in range(1, epochs_run + 1)]
    end = {"status": "early_stopped", "epochs_run": epochs_run, "metrics": {}} if ended else None
    progress = Progress(epoch=epochs_run, epochs=budget, steps=4, step=0, epoch_points=points,
                        batch_points=[{"x": p["x"], "loss": p["loss"], "accuracy": 0.5} for p in points], end=end)
    job = SimpleNamespace(progress=lambda: progress, config={"task": "classification"}, active=not ended,
                          state="done" if ended else "running", run_dir=Path("/nowhere/run"), arch="late_concat",
                          status_text=lambda: "finished")
    training_view.progress_view(job, "classification")


@pytest.mark.parametrize("ended, span", [(True, 17), (False, 120)], ids=["ended early", "running"])
def test_curves_span_the_epochs_run_once_a_run_ended_early(ended, span):
    at = AppTest.from_function(_curves, args=(17, 120, ended), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    layout = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]
    assert layout["xaxis"]["range"] == [0, span] and layout["xaxis2"]["range"] == [0, span]


def _events(run_dir: Path, events: list[dict]) -> ProgressReader:
    reader = ProgressReader(run_dir, 3)
    with open(run_dir / EVENTS_FILE, "a") as f:
        f.write("".join(json.dumps(e) + "\n" for e in events))
    reader.read()
    return reader


def test_eta_counts_validation_and_leaves_out_the_first_epochs_tracing(tmp_path):
    """3 epochs of 4 one-second batches; each epoch end (validation) takes 3 s, the first 6 s (tracing)."""
    events, t = [{"type": "start", "time": 0.0, "epochs": 3, "steps": 4, "rows": {"train": 32, "val": 8}}], 5.0
    for epoch in range(3):
        for step in range(4):
            t += 1.0
            events.append({"type": "batch", "time": t, "epoch": epoch, "step": step + 1, "steps": 4, "logs": {}})
        t += 6.0 if epoch == 0 else 3.0
        events.append({"type": "epoch", "time": t, "epoch": epoch + 1, "logs": {}})
    first_epoch = events[:5]                                     # start and the first epoch's batches
    assert _events(tmp_path / "a", first_epoch).progress.eta_seconds is None   # validation not yet timed
    # After the second epoch end: 4 batches and one epoch end left, 7 s as in the events.
    done = next(i for i, e in enumerate(events) if e.get("type") == "epoch" and e["epoch"] == 2) + 1
    reader = _events(tmp_path / "b", events[:done])
    assert reader.progress.eta_seconds == pytest.approx(events[-1]["time"] - events[done - 1]["time"])


@pytest.fixture(autouse=True)
def _folders(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
