"""Compare: this session's runs (and the samples' pretrained ones) side by side, their validation
curves overlaid, and the fusion gain over the best single-branch baseline."""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import streamlit as st

from multimodal.app import compare_start, comparison_view, figures, robustness_view, run_table, session_jobs, state
from multimodal.core.tasks import main_metric
from multimodal.runs.gain import fusion_gain
from multimodal.runs.verdicts import cross_validation_advice
from multimodal.train.crossval import allowed_baselines

st.title(":material/compare_arrows: Compare")
runs = state.runs()
if not runs:   # the comparison starts from the loaded data and the Model page's setup
    compare_start.comparison_without_runs()
    st.stop()
run_table.runs_table(runs)

# The reference run decides which runs are comparable: same dataset, target and task.
ref = run_table.reference_picker(runs)
group = run_table.comparable(runs, ref)
metric, higher = main_metric(ref.task)
st.caption(f"{len(group)} run(s) on {run_table.dataset_of(ref)} ({ref.task} of `{ref.config.get('target')}`).")
rows = sum(len(split) for split in (ref.config.get("splits") or {}).values())   # none for an imported model
advice = cross_validation_advice(rows) if rows else ""
if advice:
    st.info(f"{advice} See **Cross-validated comparison** below.", icon=":material/info:")

left, right = st.columns([3, 2])
with left:
    shown = st.radio("Curve", [metric, "loss"], horizontal=True, format_func=lambda m: f"validation {m}")
    figures.chart(figures.overlay_curves(group, shown))
with right:
    baselines = allowed_baselines(ref.spec)
    gain = fusion_gain(group, ref.task, baselines)
    st.markdown("**Fusion gain**")
    if gain["gain"] is not None:
        better = "higher" if higher else "lower"
        st.metric(f"val {metric}: best fusion vs best baseline", f"{gain['gain']:+.4f}",
                  help=f"Positive means fusion is better ({better} {metric} is better).")
        st.caption(f"Best fusion: {gain['fusion']['arch']} ({gain['fusion']['value']:.4f}) · best baseline: "
                   f"{gain['baseline']['arch']} ({gain['baseline']['value']:.4f}). Positive = fusion is better.")
        if gain["caveat"]:
            st.warning(f"Fusion gain on {gain['caveat']}.", icon=":material/warning:")
    if gain["note"]:
        st.info(gain["note"], icon=":material/info:")
    two_branches = bool(ref.spec.image_cols) and bool(ref.spec.tabular_cols)
    if st.button("Train baselines", icon=":material/play_arrow:",
                 disabled=not two_branches or session_jobs.baselines_training(),
                 help=f"Trains {', '.join(baselines)} with the settings of the run chosen above."):
        session_jobs.start_baselines(ref.config, baselines)
        st.rerun()
    if not two_branches:
        st.caption("This run's data has only one branch, so there is no baseline to train.")

robustness_view.compare_section(group)
comparison_view.trainings_section()
st.divider()
comparison_view.comparison_section(ref.config)
