"""The Compare page's runs: one table row of headline numbers per run, the reference run, and the
runs comparable with it (same dataset, target and task)."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from multimodal.app import state
from multimodal.app.run_picker import main_headline
from multimodal.runs.headline import KERAS_NAMES, metric_text
from multimodal.runs.run import Run

# Keras' validation loss (with the L2 penalty), named as the Train page's curves name it: another
# quantity than the evaluation record's log loss (docs/ARCHITECTURE.md, "One number, one definition").
KERAS_LOSS = f"val {KERAS_NAMES['loss']}"
# The number columns and their decimals: written as text, with "n/a" where a run has no such number
# (an imported model has no training time), so the table never shows a raw None or NaN. The main
# metric's "value" is the evaluation record's, rounded as every screen rounds it (headline.metric_text).
DECIMALS = {KERAS_LOSS: 4, "seconds": 1, "samples/s": 0}
MISSING = "n/a"


def cell(value, decimals: int) -> str:
    """`value` at `decimals` decimals, or MISSING."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return MISSING
    return f"{number:,.{decimals}f}" if math.isfinite(number) else MISSING


def source_of(run: Run) -> str:
    return "pretrained" if state.is_pretrained(run.dir) else "this session"


def dataset_of(run: Run) -> str:
    return run.config.get("dataset_name") or str(run.config.get("data", "?"))


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: where it comes from, its method, epochs, main metric (its evaluation record's,
    named by `main_metric`: "Accuracy", or Keras' value named as Keras' for a run without a record),
    Keras' validation loss and speed."""
    rows = []
    for r in runs:
        name, value = main_headline(r) or (MISSING, None)
        rows.append({"run": r.name, "source": source_of(r), "dataset": dataset_of(r), "method": r.arch, "task": r.task,
                     "epochs": r.summary.get("epochs_run", len(r.history)), "main metric": name,
                     "value": metric_text(value), KERAS_LOSS: r.metrics.get("val_loss"),
                     "seconds": r.summary.get("train_seconds"), "samples/s": r.summary.get("samples_per_second")})
    frame = pd.DataFrame(rows)
    for column, decimals in DECIMALS.items():
        if column in frame:
            frame[column] = [cell(v, decimals) for v in frame[column]]
    return frame


def runs_table(runs: list[Run]) -> None:
    st.dataframe(runs_frame(runs), hide_index=True, width="stretch")


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
