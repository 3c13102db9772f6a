"""How the Train page shows one training: its status, progress bar and live curves, and once it
has ended its headline metrics (the run's evaluation record, the tiles Results shows too) and the
files to download; and how the Compare page shows a group of trainings started together (its
baselines), a bar each."""
from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from multimodal.app import figures, navigation
from multimodal.core.tasks import main_metric
from multimodal.runs.headline import METRIC_NAMES, best_epoch_text, metric_text, recorded_evaluation
from multimodal.runs.run import MODEL_FILE
from multimodal.runs.verdicts import split_caveat
from multimodal.train.jobs import Job, JobState
from multimodal.train.progress import Progress

CHART_SECONDS = 1.0          # the curves take new points at most this often (see progress_view)
UNIT_METRICS = ("mae", "rmse", "bias")     # metrics in the target's unit
DOWNLOADS = ((MODEL_FILE, "Model (.keras)", "application/octet-stream"),
             ("history.csv", "History (.csv)", "text/csv"), ("config.json", "Config (.json)", "application/json"))


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left"
    seconds = int(round(seconds))
    return f"about {seconds // 60} min {seconds % 60:02d} s left" if seconds >= 60 else f"about {seconds} s left"


def curve_epochs(p: Progress) -> int:
    """The curves' x-axis span: the epoch budget while the run trains (the chart does not jump),
    the epochs actually run once it has ended (early stopping or Stop), so a short run fills it."""
    if p.end is None:
        return p.epochs
    last = max((point["x"] for point in p.batch_points + p.epoch_points), default=0)
    return max(int(p.end.get("epochs_run") or 0), math.ceil(last), 1)


def weights_view(p: Progress) -> None:
    """The image encoder's weights as the run found them: a download's progress, the plain notice
    when there are none (random init), or where they came from."""
    w = p.weights
    if w.get("status") == "downloading":
        st.info(f"Downloading the ImageNet weights of {w.get('encoder')} through Keras (once per machine; "
                f"later runs read Keras' cache): {w.get('bytes', 0) / 2**20:.1f} MB so far.",
                icon=":material/download:")
    elif w.get("notice"):
        st.warning(w["notice"], icon=":material/cloud_off:")
    elif w.get("source") in ("file", "cache", "download"):
        where = {"file": "pretrained weights from the given file", "cache": "ImageNet weights from Keras' cache",
                 "download": "ImageNet weights, downloaded"}[w["source"]]
        st.caption(f"{w.get('encoder')}: {where} (sha256 {str(w.get('sha256'))[:12]}…).")


def fine_tuning_start(p: Progress) -> float | None:
    """The epoch after which phase 2 (fine-tuning) began, if it has."""
    return next((float(e["epoch"]) for e in p.phase_starts if e.get("phase") == 2), None)


def run_summary(run_dir: Path) -> dict:
    """The run folder's summary.json ({} until the run is saved)."""
    try:
        return json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return {}


def best_epoch(job: Job, p: Progress) -> int | None:
    """The epoch whose weights the model keeps: the saved run's, else (while it trains) the epoch of the
    lowest validation loss so far, as early stopping restores it. None without restoring."""
    if not job.config.get("restore_best", True):
        return None
    saved = run_summary(job.run_dir).get("best_epoch") if p.end is not None else None
    if saved:
        return int(saved)
    points = [(point["val_loss"], int(point["x"])) for point in p.epoch_points if "val_loss" in point]
    return min(points)[1] if points else None


def position_text(p: Progress) -> str:
    """Where a training that has begun its batches is: phase, epoch and step, and the time left."""
    phase = f"phase {p.phase_starts[-1]['phase']} ({p.phase_starts[-1]['backbone']}) · " if p.phase_starts else ""
    return (f"{phase}epoch {min(p.epoch + 1, p.epochs)} of {p.epochs} · step {p.step} of {p.steps} · "
            f"{eta_text(p.eta_seconds)}")


def progress_view(job: Job, task: str) -> None:
    """Status line (once ended), error, progress bar (while active) and the loss and metric curves."""
    p = job.progress()
    task = job.config.get("task") or task
    metric = main_metric(task)[0]
    loss = "cross-entropy" if task == "classification" else (job.config.get("loss") or "mse").upper()
    if not job.active:   # announced: st.success and st.info are role="status", st.error role="alert"
        line = f"**{job.arch}** · `{job.run_dir.name}` · {job.status_text()}"
        if job.state == JobState.FINISHED:
            st.success(line, icon=":material/check_circle:")
        elif job.state == JobState.STOPPED:
            st.info(line, icon=":material/stop_circle:")
        else:
            st.markdown(line)
    if job.state == JobState.FAILED:
        st.error(job.error or "Training failed.", icon=":material/error:")
    elif job.active:
        st.progress(p.fraction, text=position_text(p) if p.batch_points else "waiting for the first batch")
    weights_view(p)
    # Streamlit 1.67 remounts a Plotly chart whenever its figure changes, so the curves take new
    # points at most once a second (the progress bar still moves every 0.5 s); the first points
    # are drawn as soon as they exist.
    snaps, now = st.session_state.setdefault("_train_chart_snaps", {}), time.monotonic()
    snap = snaps.get(job.run_dir.name)
    if snap is None or not (snap[1] or snap[2]) or now - snap[0] >= CHART_SECONDS or not job.active:
        snap = snaps[job.run_dir.name] = (now, len(p.batch_points), len(p.epoch_points))
    if snap[1] or snap[2]:
        l2 = (job.config.get("model") or {}).get("l2")
        figures.chart(figures.training_curves(p.batch_points[:snap[1]], p.epoch_points[:snap[2]], metric, loss,
                                              curve_epochs(p), fine_tuning_start(p), best_epoch(job, p),
                                              l2_penalty=l2 is None or l2 > 0), key=f"curves_{job.run_dir.name}",
                      summary=figures.training_summary(p.epoch_points[:snap[2]], metric, best_epoch(job, p),
                                                       l2 is None or l2 > 0))


def group_status(jobs: Sequence[Job]) -> tuple[str, float, list[tuple[float, str]]]:
    """Trainings started together (the Compare page's baselines), as polled by the caller: a headline
    (how many of how many have ended, how many run and wait), the group's fraction, and per training
    in queue order its fraction and a line saying which of how many it is and where it stands. An
    ended training counts as whole: early stopping ends it before its epoch budget."""
    rows = []
    for i, job in enumerate(jobs, 1):
        p = job.progress()
        where = position_text(p) if job.state == JobState.RUNNING and p.batch_points else job.status_text()
        rows.append((p.fraction if job.active else 1.0, f"{i} of {len(jobs)} · **{job.arch}** · {where}"))
    states = [job.state for job in jobs]
    ended = sum(not job.active for job in jobs)
    headline = (f"{ended} of {len(jobs)} done · {states.count('running') + states.count('stopping')} running · "
                f"{states.count('queued')} queued")
    return headline, sum(f for f, _ in rows) / max(len(jobs), 1), rows


def group_progress(jobs: Sequence[Job], what: str) -> None:
    """A group's headline and bar, one Stop for every training of it still to end, and one bar per
    training (as the Train page's bar: epoch, step and time left once its batches have begun)."""
    text, stop = st.columns([3, 1], vertical_alignment="center")
    if any(job.state in (JobState.QUEUED, JobState.RUNNING) for job in jobs) and stop.button(
            f"Stop {what}", icon=":material/stop:", key=f"stop_group_{what}"):
        for job in jobs:
            job.stop()                               # queued ones are dropped, running ones end after a batch
    headline, fraction, rows = group_status(jobs)
    text.markdown(f"**Training {what}: {headline}**")
    st.progress(fraction)
    for part, line in rows:
        st.progress(part, text=line)


def metric_cards(metrics: dict[str, float | None], unit: str = "", columns: int = 4) -> None:
    """A run's headline metrics as tiles, named and rounded as everywhere (runs/headline.py): the
    Train page's and the Results page's tiles are these. Error metrics carry the target unit."""
    items = [(k, v) for k, v in metrics.items() if k in METRIC_NAMES]
    cols = st.columns(min(columns, max(len(items), 1)))
    for i, (name, value) in enumerate(items):
        suffix = f" ({unit})" if unit and name in UNIT_METRICS else ""
        cols[i % len(cols)].metric(METRIC_NAMES[name] + suffix, metric_text(value))


def outcome_view(job: Job) -> None:
    """A saved training's headline metrics (its evaluation record, the best epoch's weights), a link to
    its results, and its files."""
    record = recorded_evaluation(job.run_dir)
    if record is not None:
        unit = job.config.get("target", "") if job.config.get("task") == "regression" else ""
        metric_cards(record["metrics"], unit)
        best = best_epoch_text(run_summary(job.run_dir))
        split = "validation" if record["split"] == "val" else record["split"]
        st.caption(f"{best.capitalize() + ' (the weights the model keeps)' if best else 'The saved model'}, on its "
                   f"{record['rows']} {split} rows: the numbers Results and the model card show. The curves above "
                   "are Keras' values while training, other quantities: its loss includes the L2 penalty, its AUC "
                   "is approximate (200 thresholds).")
        if record["rows"]:
            st.caption(f":material/warning: Validation metrics on {split_caveat(record['rows'])}.")
    navigation.link("results", "See the results")
    cols = st.columns(len(DOWNLOADS))
    for col, (name, label, mime) in zip(cols, DOWNLOADS):
        path = job.run_dir / name
        if path.exists():
            col.download_button(label, path.read_bytes(), file_name=f"{job.run_dir.name}-{name}", mime=mime,
                                icon=":material/download:", key=f"dl_{name}_{job.run_dir.name}", on_click="ignore")
