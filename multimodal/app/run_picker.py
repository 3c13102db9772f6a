"""Choosing what a model page shows: the run (one choice shared by every page) and a validation row.

`current_run` is how the Results, Explain and What-if pages start: a dataset, a run that fits it
and its loaded model, or a message saying what is missing. `row_picker` is how Explain and
What-if choose the row they look at.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from multimodal.app import model_service, state
from multimodal.app.figures import fmt_number
from multimodal.app.row_ids import row_name
from multimodal.core.errors import DataError
from multimodal.core.events import Status
from multimodal.core.tasks import main_metric
from multimodal.data.cells import label_text
from multimodal.data.dataset import Dataset
from multimodal.runs.evaluation import check_compatible, evaluation_rows
from multimodal.runs.headline import METRIC_NAMES, metric_text, recorded_evaluation
from multimodal.runs.run import Run, load_run


def main_headline(run: Run) -> tuple[str, float | None] | None:
    """The run's main metric (core/tasks.main_metric) as (name, value): from its evaluation record,
    named as every screen names it ("Accuracy"; runs/headline.py); a run without a record (imported,
    or saved before the record) has Keras' own value, named as Keras' ("val accuracy (Keras)").
    None when it has neither."""
    metric = main_metric(run.task)[0]
    record = recorded_evaluation(run.dir)
    if record is not None and metric in record["metrics"]:
        return METRIC_NAMES.get(metric, metric), record["metrics"][metric]
    key = next((k for k in (f"val_{metric}", f"test_{metric}") if k in run.metrics), None)
    if key is None:
        return None
    return f"{key.split('_', 1)[0]} {metric} (Keras)", float(run.metrics[key])


def headline_text(run: Run) -> str:
    """`main_headline` as a label shows it: "Accuracy 0.733" ("" without one)."""
    found = main_headline(run)
    return f"{found[0]} {metric_text(found[1])}" if found else ""


def run_label(run_dir: Path) -> str:
    """'late_concat · 12 epochs · Accuracy 0.84 (pretrained)' (plus the folder name of own runs); the
    metric is the evaluation record's (`headline_text`), as on Train, Results and the model card."""
    try:
        run = load_run(run_dir)
    except Exception as exc:  # noqa: BLE001 - a damaged folder still gets a readable label
        return f"{Path(run_dir).name} (unreadable: {str(exc)[:60]})"
    epochs = run.summary.get("epochs_run") or len(run.history)
    imported = run.config.get("imported")    # trained elsewhere: no epochs of its own here
    parts = [run.arch] if imported else [run.arch, f"{epochs} epoch{'s' if epochs != 1 else ''}"]
    if headline := headline_text(run):
        parts.append(headline)
    label = " · ".join(parts)
    if imported:
        return f"{label} (imported from {run.config.get('source_file', 'a .keras file')}) — {run.name}"
    if state.is_pretrained(Path(run_dir)):
        return f"{label} (pretrained)"
    return label if run.name == run.arch else f"{label} — {run.name}"


def run_picker(key: str = "run_picker") -> Path | None:
    """Select box over the session's runs; the choice is shared by all pages (state.select_run)."""
    dirs = state.run_dirs()
    if not dirs:
        st.info("No trained model yet: train one on the **Train** page (or load a sample dataset, "
                "whose ready-made model appears here).", icon=":material/info:")
        return None
    options = [str(d) for d in dirs]
    current = str(state.selected_run_dir())
    if st.session_state.get(key) != current:
        st.session_state[key] = current

    def changed() -> None:
        state.select_run(Path(st.session_state[key]))

    labels = {d: run_label(Path(d)) for d in options}
    chosen = st.selectbox("Model run", options, key=key, format_func=labels.get, on_change=changed)
    return Path(chosen)


def current_run(key: str = "run_picker") -> tuple[Dataset, Path, Run] | None:
    """(dataset, run folder, run with its model loaded) for a model page, or None after telling the
    user what is missing (no dataset, no run, or a run that does not fit the dataset)."""
    ds = state.dataset()
    if ds is None:
        st.info("Load a dataset on the **Data** page first.", icon=":material/info:")
        return None
    run_dir = run_picker(key)
    if run_dir is None:
        return None
    try:
        run = model_service.get_run(run_dir)     # loads the model: a damaged file is reported here
        check_compatible(run, ds)
    except DataError as exc:
        st.error(str(exc), icon=":material/error:")
        return None
    if not state.run_is_chosen():
        st.caption(default_note(run))
    return ds, run_dir, run


def default_note(run: Run) -> str:
    """Why the page shows this run when nobody chose one (state.default_run_dir)."""
    if run.summary.get("status") == Status.STOPPED:
        return ("Shown by default, though it is partial (its training was stopped): no completed run fits this "
                "dataset. Train one to completion on the **Train** page.")
    metric = main_metric(run.task)[0]
    return (f"Shown by default: the best completed run on this dataset, {run.arch} (fusion methods before "
            f"single-branch baselines, then by validation {metric}). Pick another run above.")


def row_label(dataset: Dataset, row: int) -> str:
    """'id 13 · benign' (or 'row 13 · benign' without an id column) for pickers; row: the dataset's
    0-based position, named as every page names it (data_view.row_name)."""
    target = dataset.frame[dataset.target].iloc[int(row)]
    shown = fmt_number(float(target)) if dataset.task == "regression" else label_text(target)
    return f"{row_name(dataset, row)} · {shown}"


def row_picker(run: Run, dataset: Dataset, key: str, label: str = "Validation row") -> int:
    """Select box over the run's validation rows; the widget key includes the run, so another run
    starts from its own first row."""
    rows = [int(r) for r in evaluation_rows(run, dataset)[1]]
    return st.selectbox(label, rows, format_func=lambda r: row_label(dataset, r), key=f"{key}_{run.dir}")
