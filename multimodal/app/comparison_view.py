"""Compare page: a cross-validated comparison of one method against both baselines.

It runs as a worker process through `jobs` (the config carries a "cv" entry, see
`crossval.run_comparison`), in the session's `comparisons/` folder; the page polls its events.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import streamlit as st

from multimodal.app import figures, session_jobs, state
from multimodal.core.events import read_events
from multimodal.models.fusion import FUSION_METHODS, methods_for
from multimodal.runs.folders import reuse_config
from multimodal.train.crossval import COMPARISON_FILE, comparison_summary, load_comparisons

FOLD_CHOICES = (3, 5, 10)


def comparisons_dir() -> Path:
    path = state.session_dir() / "comparisons"
    path.mkdir(exist_ok=True)
    return path


def comparison_form(ref_config: Mapping, methods: list[str], rows: int) -> None:
    """K, repeats and methods; starting queues one worker that trains every fold of every method."""
    with st.form("cv_form", border=True):
        arch = ref_config["model"]["arch"]
        fusions = [m for m in methods if not FUSION_METHODS[m].is_baseline]
        a, b, c = st.columns([2, 1, 1])
        chosen = a.multiselect("Fusion methods (the baselines are always included)", fusions,
                               default=[arch] if arch in fusions else fusions[:1])
        k = b.selectbox("Folds (k)", FOLD_CHOICES, index=0 if rows < 400 else 1)
        repeats = c.number_input("Repeats", 1, 5, 1, help="Repeat k-fold with other shuffles: more rows "
                                 "in the mean and std, proportionally longer.")
        models = (len(chosen) + 2) * k * repeats
        st.caption(f"Trains {models} models with the settings of the run chosen above "
                   f"(epochs {ref_config.get('epochs') or 'auto'}, image size "
                   f"{(ref_config.get('model') or {}).get('image_size')} px). Held-out folds are never used "
                   "for early stopping.")
        if st.form_submit_button("Run cross-validation", icon=":material/play_arrow:", disabled=not fusions):
            if not chosen:
                st.error("Choose at least one fusion method to compare with the baselines.")
                return
            config = {**reuse_config(ref_config, chosen[0]),
                      "cv": {"k": int(k), "repeats": int(repeats), "archs": chosen[1:]}}
            session_jobs.start_comparison(config, comparisons_dir(), "cv-" + chosen[0])
            st.rerun()


def _fold_progress(run_dir: Path) -> tuple[int, int, str]:
    """(folds done, folds in all, the method now training) from the comparison's events."""
    events, _ = read_events(run_dir)
    start = next((e for e in events if e.get("type") == "start"), {})
    folds = [e for e in events if e.get("type") == "fold"]
    total = int(start.get("folds", 0))
    archs = start.get("archs", [])
    per_arch = total // max(len(archs), 1)
    current = archs[min(len(folds) // max(per_arch, 1), len(archs) - 1)] if archs else ""
    return len(folds), total, current


@st.fragment(run_every=2.0)
def comparison_progress() -> None:
    """Progress of this session's running comparisons, with a stop button each."""
    active = session_jobs.active(session_jobs.comparison_jobs().values())
    if not active:
        st.rerun()                                    # finished: show the result
    for job in active:
        done, total, current = _fold_progress(job.run_dir)
        if job.state == "queued" or not total:
            st.caption(f"{job.run_dir.name}: {job.status_text()}")
            continue
        st.progress(done / total, text=f"Cross-validation: {done} of {total} folds trained; now {current}")
        if st.button("Stop", key=f"stop_{job.run_dir}", icon=":material/stop:"):
            job.stop()


def show_failures() -> None:
    for run_dir, job in session_jobs.comparison_jobs().items():
        if job.state == "failed" and not (Path(run_dir) / COMPARISON_FILE).exists():
            st.error(f"Cross-validation {Path(run_dir).name} failed: {job.error}")


def show_comparison(result: dict) -> None:
    """The gain of the fusion method over the better baseline (paired by fold) and every method's spread."""
    metric = result["metric"].removeprefix("val_")
    gain, higher = result["gain"], result["higher_is_better"]
    summary = comparison_summary(result)
    left, right = st.columns([2, 3])
    with left:
        st.metric(f"Fusion gain of {result['arch']} over {gain['best_baseline']}",
                  f"{gain['mean']:+.4f} ± {gain['std']:.4f}",
                  help=f"Held-out {metric}, paired by fold: {result['arch']} minus the better baseline "
                       f"({'higher' if higher else 'lower'} is better, so positive means fusion helps). "
                       "± is one standard deviation over the folds.")
        verdict = ("clearly better" if gain["mean"] - gain["std"] > 0 else
                   "clearly worse" if gain["mean"] + gain["std"] < 0 else "within the noise")
        st.caption(f"{result['k']}-fold x {result['repeats']} on {result['dataset']} ({len(summary[0]['folds'])} "
                   f"folds per method): fusion is {verdict} compared with {gain['best_baseline']}.")
        table = pd.DataFrame([{"method": s["arch"], f"mean {metric}": s["mean"], "std": s["std"],
                               "folds": ", ".join(f"{v:.3f}" for v in s["folds"])} for s in summary])
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={f"mean {metric}": st.column_config.NumberColumn(format="%.4f"),
                                    "std": st.column_config.NumberColumn(format="%.4f")})
    with right:
        figures.chart(figures.cv_bars(summary, metric))


def finished_comparisons(ref_config: Mapping) -> list[dict]:
    """This session's finished comparisons on the same data and target as ref_config, newest first."""
    same = [c for c in load_comparisons(comparisons_dir())
            if c.get("dataset") == ref_config.get("dataset_name") and c.get("target") == ref_config.get("target")]
    return same[::-1]


def comparison_section(ref_config: Mapping) -> None:
    """The whole cross-validation block of the Compare page."""
    features = ref_config.get("features", {})
    rows = sum(len(v) for v in (ref_config.get("splits") or {}).values())
    st.subheader("Cross-validated comparison")
    st.caption("One validation split of 50-100 rows is noisy. k-fold cross-validation trains each method on k "
               "splits of the same rows and reports the held-out mean and spread, and the fusion gain paired by fold.")
    methods = methods_for(bool(features.get("image_cols")),
                          bool(features.get("numeric_cols") or features.get("categorical_cols")),
                          len(features.get("image_cols", [])))
    show_failures()
    if session_jobs.active(session_jobs.comparison_jobs().values()):
        comparison_progress()
    else:
        comparison_form(ref_config, methods, rows)
    found = finished_comparisons(ref_config)
    for i, result in enumerate(found):
        if i == 0:
            show_comparison(result)
        else:
            with st.expander(f"Earlier: {Path(result['dir']).name}"):
                show_comparison(result)
