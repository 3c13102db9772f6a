"""Train: start a run in a worker process, watch it live, stop it, download the result.

The job lives in its own process (multimodal.jobs); this page only reads its events file, so
switching pages or clicking widgets never stops or corrupts it.
"""
import time

import streamlit as st

from multimodal.app import charts, state
from multimodal.core.config import ModelConfig, default_arch
from multimodal.train import jobs

state.use_app_navigation()

ss = st.session_state
st.title(":material/monitoring: Train")
ds = state.require_dataset()

spec = ds.features                                   # the Model page's choice, or the dataset's default
model = ss.get("model_config") or ModelConfig(arch=default_arch(len(spec.image_cols), len(spec.tabular_cols)))
settings = {**state.default_train_settings(ds), **ss.get("train_settings", {})}
config = jobs.config_dict(ds, model, settings)
m = config["model"]
data_col, model_col, train_col = st.columns(3)
data_col.markdown(f"**Data** \n{ds.name}: {len(ds.frame)} rows  \n{ds.task} of `{ds.target}`")
model_col.markdown(f"**Model**  \n{m.get('arch', 'late_concat')} · {m.get('encoder', 'small_cnn')}  \n"
                   f"images {m.get('image_size', 64)} px")
train_col.markdown(f"**Training**  \nup to {settings['epochs']} epochs · batch {settings['batch_size']}  \n"
                   f"learning rate {settings['lr']:g} · validation {settings['val_fraction']:.0%} · "
                   f"patience {settings['patience'] or 'off'}")
st.page_link("pages/model.py", label="Change the model or training settings", icon=":material/tune:")

session_jobs: dict = ss.setdefault("jobs", {})
if st.button("Start training", type="primary", icon=":material/play_arrow:"):
    run_dir = jobs.new_run_dir(state.runs_dir(), m.get("arch", "late_concat"))
    session_jobs[str(run_dir)] = jobs.start_job(config, run_dir, dataset=ds, owner_alive=state.session_alive_check())
    ss.train_focus = str(run_dir)
if not session_jobs:
    st.info("Press **Start training**. Training runs in the background: you can switch pages meanwhile.")
    st.stop()

# The shown run is kept under a plain key, not a widget key: Streamlit drops widget state when
# the page is left, and coming back must show the run the user was watching (or the newest).
names = list(session_jobs)[::-1]                     # newest first
focus = ss.get("train_focus") if ss.get("train_focus") in names else names[0]
if len(names) > 1:
    focus = st.selectbox("Run", names, index=names.index(focus),
                         format_func=lambda n: f"{session_jobs[n].run_dir.name} ({session_jobs[n].poll()})")
ss.train_focus = focus
job = session_jobs[focus]


def eta_text(seconds) -> str:
    if seconds is None:
        return "estimating time left"
    seconds = int(round(seconds))
    return f"about {seconds // 60} min {seconds % 60:02d} s left" if seconds >= 60 else f"about {seconds} s left"


def show(job: jobs.Job) -> None:
    p = job.progress()
    task = job.config.get("task") or ds.task
    metric = jobs.main_metric(task)[0]
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
    snaps, now = ss.setdefault("_train_chart_snaps", {}), time.monotonic()
    snap = snaps.get(job.run_dir.name)
    if snap is None or now - snap[0] >= 1.0 or not job.active:
        snap = snaps[job.run_dir.name] = (now, len(p.batch_points), len(p.epoch_points))
    if snap[1] or snap[2]:
        st.plotly_chart(charts.training_curves(p.batch_points[:snap[1]], p.epoch_points[:snap[2]], metric, loss,
                                               p.epochs), key=f"curves_{job.run_dir.name}",
                        config={"displaylogo": False})


@st.fragment(run_every=0.5)
def live(job: jobs.Job) -> None:
    if job.poll() not in jobs.ACTIVE:
        st.rerun()                                   # redraw once as finished, without the timer
    text, stop = st.columns([5, 1], vertical_alignment="center")
    if job.state in ("queued", "running") and stop.button("Stop", icon=":material/stop:",
                                                          key=f"stop_{job.run_dir.name}"):
        job.stop()
    text.markdown(f"**{job.arch}** · `{job.run_dir.name}` · {job.status_text()}")
    show(job)


def finished(job: jobs.Job) -> None:
    show(job)
    end = job.progress().end
    if not end:
        return
    state.select_run(job.run_dir)                    # Results / Explain / What-if show this run
    metrics = {k: v for k, v in end.get("metrics", {}).items() if k.startswith(("val_", "test_"))}
    cols = st.columns(min(len(metrics), 5) or 1)
    for i, (name, value) in enumerate(list(metrics.items())[:5]):
        cols[i].metric(name.replace("_", " "), f"{value:.4f}")
    st.page_link("pages/results.py", label="See the results", icon=":material/analytics:")
    files = (("model.keras", "Model (.keras)", "application/octet-stream"),
             ("history.csv", "History (.csv)", "text/csv"), ("config.json", "Config (.json)", "application/json"))
    cols = st.columns(len(files))
    for col, (name, label, mime) in zip(cols, files):
        path = job.run_dir / name
        if path.exists():
            col.download_button(label, path.read_bytes(), file_name=f"{job.run_dir.name}-{name}", mime=mime,
                                icon=":material/download:", key=f"dl_{name}_{job.run_dir.name}", on_click="ignore")


if job.poll() in jobs.ACTIVE:
    live(job)
else:
    finished(job)
