"""Compare: this session's runs (and the samples' pretrained ones) side by side, their validation
curves overlaid, and the fusion gain over the best single-branch baseline."""
from pathlib import Path

import pandas as pd
import streamlit as st

from multimodal.app import charts, comparison_view, state
from multimodal.core.errors import DataError
from multimodal.runs.run import load_run
from multimodal.train import jobs

state.use_app_navigation()

ss = st.session_state
st.title(":material/compare_arrows: Compare")
session_jobs: dict = ss.setdefault("jobs", {})

runs, unreadable = [], []
for d in state.run_dirs():
    try:
        runs.append(load_run(d))
    except (DataError, OSError, ValueError, KeyError):
        unreadable.append(d.name)
if unreadable:
    st.caption(f"Skipped unreadable run folders: {', '.join(unreadable)}")
if not runs:
    st.info("No runs yet: train one on the Train page.")
    st.page_link("pages/train.py", label="Open Train", icon=":material/monitoring:")
    st.stop()


def source(run) -> str:
    return "pretrained" if run.dir.parent.name == state.PRETRAINED_DIR else "this session"


def dataset_of(run) -> str:
    return run.config.get("dataset_name") or str(run.config.get("data", "?"))


rows = []
for r in runs:
    metric, _ = jobs.main_metric(r.task)
    rows.append({"run": r.name, "source": source(r), "dataset": dataset_of(r), "method": r.arch, "task": r.task,
                 "epochs": r.summary.get("epochs_run", len(r.history)), "main metric": f"val {metric}",
                 "value": r.metrics.get(f"val_{metric}"), "val loss": r.metrics.get("val_loss"),
                 "seconds": r.summary.get("train_seconds"), "samples/s": r.summary.get("samples_per_second")})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
             column_config={"value": st.column_config.NumberColumn(format="%.4f"),
                            "val loss": st.column_config.NumberColumn(format="%.4f"),
                            "seconds": st.column_config.NumberColumn(format="%.1f"),
                            "samples/s": st.column_config.NumberColumn(format="%.0f")})

# The reference run decides which runs are comparable: same dataset, target and task.
options = [str(r.dir) for r in runs]
default = state.selected_run_dir()
by_key = {str(r.dir): r for r in runs}
ref = by_key[st.selectbox("Compare runs like", options,
                          index=options.index(str(default)) if str(default) in options else len(options) - 1,
                          format_func=lambda p: f"{Path(p).name} · {by_key[p].arch} ({source(by_key[p])})")]
group = [r for r in runs if dataset_of(r) == dataset_of(ref) and r.task == ref.task
         and r.config.get("target") == ref.config.get("target")]
metric, higher = jobs.main_metric(ref.task)
st.caption(f"{len(group)} run(s) on {dataset_of(ref)} ({ref.task} of `{ref.config.get('target')}`).")

left, right = st.columns([3, 2])
with left:
    shown = st.radio("Curve", [metric, "loss"], horizontal=True, format_func=lambda m: f"validation {m}")
    st.plotly_chart(charts.overlay_curves(group, shown), config={"displaylogo": False})
with right:
    gain = jobs.fusion_gain(group, ref.task)
    st.markdown("**Fusion gain**")
    if gain["gain"] is not None:
        better = "higher" if higher else "lower"
        st.metric(f"val {metric}: best fusion vs best baseline", f"{gain['gain']:+.4f}",
                  help=f"Positive means fusion is better ({better} {metric} is better).")
        st.caption(f"Best fusion: {gain['fusion']['arch']} ({gain['fusion']['value']:.4f}) · best baseline: "
                   f"{gain['baseline']['arch']} ({gain['baseline']['value']:.4f}). Positive = fusion is better.")
    if gain["note"]:
        st.info(gain["note"], icon=":material/info:")
    features = ref.config.get("features", {})
    two_branches = bool(features.get("image_cols")) and bool(features.get("numeric_cols") or
                                                              features.get("categorical_cols"))
    pending = [j for j in session_jobs.values() if j.active and j.arch in jobs.BASELINES]
    if st.button("Train baselines", icon=":material/play_arrow:", disabled=not two_branches or bool(pending),
                 help="Trains image_only and tabular_only with the settings of the run chosen above."):
        for arch in jobs.BASELINES:
            run_dir = jobs.new_run_dir(state.runs_dir(), arch)
            session_jobs[str(run_dir)] = jobs.start_job(jobs.reuse_config(ref.config, arch), run_dir,
                                                        owner_alive=state.session_alive_check())
            focus = ss.get("train_focus")
            if not (focus in session_jobs and session_jobs[focus].active):
                ss.train_focus = str(run_dir)            # the Train page shows it
        st.rerun()
    if not two_branches:
        st.caption("This run's data has only one branch, so there is no baseline to train.")


st.divider()
comparison_view.comparison_section(ref.config)


@st.fragment(run_every=1.0)
def active_jobs() -> None:
    active = [j for j in session_jobs.values() if j.poll() in jobs.ACTIVE]
    if not active:
        st.rerun()                                   # a job ended: refresh the table and the gain
    for j in active:
        st.caption(f"{j.arch} · {j.run_dir.name}: {j.status_text()}")
    st.page_link("pages/train.py", label="Watch on the Train page", icon=":material/monitoring:")


if any(j.poll() in jobs.ACTIVE for j in session_jobs.values()):
    active_jobs()
