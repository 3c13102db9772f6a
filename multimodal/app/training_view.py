"""How the Train page shows one training: its status, progress bar and live curves, and once it
has ended its validation metrics and the files to download."""
from __future__ import annotations

import time

import streamlit as st

from multimodal.app import figures
from multimodal.core.tasks import main_metric
from multimodal.runs.run import MODEL_FILE
from multimodal.train.jobs import Job

CHART_SECONDS = 1.0          # the curves take new points at most this often (see progress_view)
DOWNLOADS = ((MODEL_FILE, "Model (.keras)", "application/octet-stream"),
             ("history.csv", "History (.csv)", "text/csv"), ("config.json", "Config (.json)", "application/json"))


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left"
    seconds = int(round(seconds))
    return f"about {seconds // 60} min {seconds % 60:02d} s left" if seconds >= 60 else f"about {seconds} s left"


def progress_view(job: Job, task: str) -> None:
    """Status line (once ended), error, progress bar (while active) and the loss and metric curves."""
    p = job.progress()
    task = job.config.get("task") or task
    metric = main_metric(task)[0]
    loss = "cross-entropy" if task == "classification" else (job.config.get("loss") or "mse").upper()
    if not job.active:
        st.markdown(f"**{job.arch}** · `{job.run_dir.name}` · {job.status_text()}")
    if job.state == "failed":
        st.error(job.error or "Training failed.", icon=":material/error:")
    elif job.active:
        where = (f"epoch {min(p.epoch + 1, p.epochs)} of {p.epochs} · step {p.step} of {p.steps} · "
                 f"{eta_text(p.eta_seconds)}" if p.batch_points else "waiting for the first batch")
        st.progress(p.fraction, text=where)
    # Streamlit 1.67 remounts a Plotly chart whenever its figure changes, so the curves take new
    # points at most once a second (the progress bar still moves every 0.5 s).
    snaps, now = st.session_state.setdefault("_train_chart_snaps", {}), time.monotonic()
    snap = snaps.get(job.run_dir.name)
    if snap is None or now - snap[0] >= CHART_SECONDS or not job.active:
        snap = snaps[job.run_dir.name] = (now, len(p.batch_points), len(p.epoch_points))
    if snap[1] or snap[2]:
        figures.chart(figures.training_curves(p.batch_points[:snap[1]], p.epoch_points[:snap[2]], metric, loss,
                                              p.epochs), key=f"curves_{job.run_dir.name}")


def outcome_view(job: Job) -> None:
    """A saved training's validation and test metrics, a link to its results, and its files."""
    end = job.progress().end or {}
    metrics = {k: v for k, v in end.get("metrics", {}).items() if k.startswith(("val_", "test_"))}
    cols = st.columns(min(len(metrics), 5) or 1)
    for i, (name, value) in enumerate(list(metrics.items())[:5]):
        cols[i].metric(name.replace("_", " "), f"{value:.4f}")
    st.page_link("pages/results.py", label="See the results", icon=":material/analytics:")
    cols = st.columns(len(DOWNLOADS))
    for col, (name, label, mime) in zip(cols, DOWNLOADS):
        path = job.run_dir / name
        if path.exists():
            col.download_button(label, path.read_bytes(), file_name=f"{job.run_dir.name}-{name}", mime=mime,
                                icon=":material/download:", key=f"dl_{name}_{job.run_dir.name}", on_click="ignore")
