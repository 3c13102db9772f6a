"""Train: start a run in a worker process, watch it live, stop it, download the result.

The job lives in its own process (multimodal.train.jobs); this page only reads its events file, so
switching pages or clicking widgets never stops or corrupts it.
"""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import streamlit as st

from multimodal.app import accessibility, navigation, session_jobs, state, training_view
from multimodal.core.events import Status
from multimodal.runs.folders import config_dict
from multimodal.runs.verdicts import cross_validation_advice
from multimodal.train.jobs import ACTIVE, Job, JobState

st.title(":material/monitoring: Train")
ds = state.require_dataset()

config = config_dict(ds, state.model_config(ds), state.train_settings(ds))
m = config["model"]
data_col, model_col, train_col = st.columns(3)
data_col.markdown(f"**Data** \n{ds.name}: {len(ds.frame)} rows  \n{ds.task} of `{ds.target}`")
model_col.markdown(f"**Model**  \n{m['arch']} · {m['encoder']}  \nimages {m['image_size']} px")
train_col.markdown(f"**Training**  \nup to {config['epochs']} epochs · batch {config['batch_size']}  \n"
                   f"learning rate {config['lr']:g} · validation {config['val_fraction']:.0%} · "
                   f"patience {config['patience'] or 'off'}")
navigation.link("model", "Change the model or training settings", icon=":material/tune:")
if advice := cross_validation_advice(len(ds.frame)):
    st.info(f"{advice} The Compare page runs that comparison on its own (it trains its folds itself, no run "
            "from here needed); a run trained here is one model on one split.", icon=":material/info:")
    navigation.link("compare", "Cross-validate on Compare")

if st.button("Start training", type="primary", icon=":material/play_arrow:"):
    session_jobs.start_training(config, dataset=ds)
job = session_jobs.watched_training()
if job is None:
    st.info("Press **Start training**. Training runs in the background: you can switch pages meanwhile.")
    st.stop()

trainings = session_jobs.training_jobs()
if len(trainings) > 1:
    names = list(trainings)[::-1]                    # newest first
    shown = st.selectbox("Run", names, index=names.index(str(job.run_dir)),
                         format_func=lambda n: f"{trainings[n].run_dir.name} ({trainings[n].poll()})")
    session_jobs.watch_training(shown)
    job = trainings[shown]


def live(job: Job) -> None:
    if job.poll() not in ACTIVE:
        st.rerun()                                   # redraw once as finished, without the timer
    text, stop = st.columns([5, 1], vertical_alignment="center")
    if job.state in (JobState.QUEUED, JobState.RUNNING) and stop.button("Stop", icon=":material/stop:",
                                                          key=f"stop_{job.run_dir.name}"):
        job.stop()
    text.markdown(f"**{job.arch}** · `{job.run_dir.name}` · {job.status_text()}")
    training_view.progress_view(job, ds.task)


if job.poll() in ACTIVE:   # a fragment every 0.5 s, under a "Pause live updates" toggle
    accessibility.live_fragment(live, 0.5, "train")(job)
else:
    training_view.progress_view(job, ds.task)
    if job.progress().end:
        if job.progress().end.get("status") != Status.STOPPED:   # a stopped run is partial: not shown by default
            state.select_run(job.run_dir)            # Results / Explain / What-if show this run
        training_view.outcome_view(job)
