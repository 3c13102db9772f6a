"""The Compare page's runs: one table row of headline numbers per run, the reference run, and the
runs comparable with it (same dataset, target and task)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from multimodal.app import state
from multimodal.core.tasks import main_metric
from multimodal.runs.run import Run

COLUMN_FORMATS = {"value": st.column_config.NumberColumn(format="%.4f"),
                  "val loss": st.column_config.NumberColumn(format="%.4f"),
                  "seconds": st.column_config.NumberColumn(format="%.1f"),
                  "samples/s": st.column_config.NumberColumn(format="%.0f")}


def source_of(run: Run) -> str:
    return "pretrained" if state.is_pretrained(run.dir) else "this session"


def dataset_of(run: Run) -> str:
    return run.config.get("dataset_name") or str(run.config.get("data", "?"))


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: where it comes from, its method, epochs, main validation metric and speed."""
    rows = []
    for r in runs:
        metric = main_metric(r.task)[0]
        rows.append({"run": r.name, "source": source_of(r), "dataset": dataset_of(r), "method": r.arch, "task": r.task,
                     "epochs": r.summary.get("epochs_run", len(r.history)), "main metric": f"val {metric}",
                     "value": r.metrics.get(f"val_{metric}"), "val loss": r.metrics.get("val_loss"),
                     "seconds": r.summary.get("train_seconds"), "samples/s": r.summary.get("samples_per_second")})
    return pd.DataFrame(rows)


def runs_table(runs: list[Run]) -> None:
    st.dataframe(runs_frame(runs), hide_index=True, width="stretch", column_config=COLUMN_FORMATS)


def reference_picker(runs: list[Run]) -> Run:
    """'Compare runs like': the selected run of the session by default, else the last one."""
    by_dir = {str(r.dir): r for r in runs}
    options, default = list(by_dir), str(state.selected_run_dir())
    chosen = st.selectbox("Compare runs like", options,
                          index=options.index(default) if default in options else len(options) - 1,
                          format_func=lambda p: f"{Path(p).name} · {by_dir[p].arch} ({source_of(by_dir[p])})")
    return by_dir[chosen]


def comparable(runs: list[Run], ref: Run) -> list[Run]:
    """The runs on the same dataset, target and task as ref (ref included)."""
    return [r for r in runs if dataset_of(r) == dataset_of(ref) and r.task == ref.task
            and r.config.get("target") == ref.config.get("target")]
