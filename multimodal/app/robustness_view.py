"""Missing-branch robustness on Results and Compare
(docs/ARCHITECTURE.md, "Uncertainty and counterfactuals"): the main metric on the validation rows
with every input, without the image and without the table (runs/robustness.py says how a branch
goes missing)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from multimodal.app import model_service, state
from multimodal.app.figures import fmt_number
from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset
from multimodal.runs.evaluation import check_compatible
from multimodal.runs.headline import METRIC_NAMES, metric_text
from multimodal.runs.run import Run

COMPARE_KEY = "compare_robustness"
CASES = ("both present", "image missing", "table missing")     # runs/robustness.CASES, without importing Keras


def robustness(run_dir: Path, dataset: Dataset) -> dict | None:
    """missing_branch_metrics of a run on this dataset's validation rows, computed once per model."""
    # lazy: runs/robustness.py imports Keras, and Compare lists runs without it until asked
    from multimodal.runs.robustness import missing_branch_metrics
    run, ev = model_service.get_run(run_dir), model_service.evaluation(run_dir, dataset)
    return model_service.shared_result("robustness", run_dir, model_service.dataset_key(dataset),
                                       lambda: missing_branch_metrics(run, ev))


def robustness_section(run_dir: Path, dataset: Dataset) -> None:
    st.subheader("With a branch missing")
    with st.spinner("Predicting the validation rows without each branch…"):
        found = robustness(run_dir, dataset)
    if found is None:
        st.caption("This model reads one branch only: nothing can go missing.")
        return
    name = METRIC_NAMES.get(found["metric"], found["metric"])
    cols = st.columns(3)
    for col, case in zip(cols, CASES):
        delta = None if case == "both present" else fmt_number(found[case] - found["both present"], signed=True)
        col.metric(f"{name} · {case}", metric_text(found[case]), delta,
                   delta_color="normal" if found["metric"] != "mae" else "inverse")
    st.caption(f"On {found['rows']} validation rows; a missing branch: {found['how']}.")


def compare_section(group: list[Run]) -> None:
    """A table of every comparable run's metric with each branch missing, on a button."""
    st.subheader("Missing-branch robustness")
    dataset = state.dataset()
    if dataset is None:
        st.caption("Load the runs' dataset on the Data page to measure it.")
        return
    store = st.session_state.setdefault(COMPARE_KEY, {})
    key = tuple(str(r.dir) for r in group)
    if key not in store and not st.button("Measure each run with a branch missing", icon=":material/hide_image:",
                                          key="compare_robustness_go"):
        st.caption("The main validation metric with every input, without the image and without the table.")
        return
    if key not in store:
        rows = []
        with st.spinner("Predicting every run's validation rows without each branch…"):
            for run in group:
                try:
                    check_compatible(run, dataset)
                    found = robustness(run.dir, dataset)
                except DataError as exc:
                    rows.append({"run": run.name, "method": run.arch, "note": str(exc)})
                    continue
                rows.append({"run": run.name, "method": run.arch,
                             **({k: found[k] for k in CASES}
                                if found else {}),
                             "note": found["how"] if found else "one branch: nothing can go missing"})
        store[key] = pd.DataFrame(rows, columns=["run", "method", *CASES, "note"])
    st.dataframe(store[key], hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in CASES})
