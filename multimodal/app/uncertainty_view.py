"""Calibrated uncertainty beside a prediction on What-if, Explain and Results: the split-conformal
set or interval, its level, its number of calibration rows and a warning when they are too few
(docs/ARCHITECTURE.md, "Uncertainty and counterfactuals")."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from multimodal.app import model_service
from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset
from multimodal.runs.conformal import COVERAGES, DEFAULT_COVERAGE, Conformal, from_evaluation, plain_number
from multimodal.runs.evaluation import Evaluation

COVERAGE_KEY = "conformal_coverage"     # one level for every page of the session


def coverage_picker(container=st) -> float:
    """The coverage level (shared by the pages through its session key)."""
    if COVERAGE_KEY not in st.session_state:
        st.session_state[COVERAGE_KEY] = DEFAULT_COVERAGE
    return container.select_slider("Coverage of the prediction sets / intervals", COVERAGES, key=COVERAGE_KEY,
                                   format_func=lambda c: f"{c:.0%}",
                                   help="Split-conformal: the set (classification) or interval (regression) holds "
                                        "the true answer at least this often on new rows like the validation rows.")


def conformal(run_dir: Path, dataset: Dataset, coverage: float | None = None) -> Conformal | str:
    """The run's calibration at the session's level, or the message saying why there is none."""
    coverage = coverage or st.session_state.get(COVERAGE_KEY, DEFAULT_COVERAGE)
    try:
        return from_evaluation(model_service.evaluation(run_dir, dataset), coverage)
    except DataError as exc:
        return str(exc)


def uncertainty_text(cal: Conformal, outputs: np.ndarray, classes: list[str]) -> str:
    """'90% set {benign}' for one row of outputs."""
    return cal.text(cal.describe(outputs[:1], classes)[0])


def prediction_uncertainty(cal: Conformal | str, outputs: np.ndarray, classes: list[str], container=st,
                           missing: str | None = None) -> None:
    """The set / interval for one row of outputs with its caption and warning (or why none).
    missing: the branch treated as missing (What-if), whose rows the calibration never saw."""
    if isinstance(cal, str):
        container.info(f"No calibrated uncertainty: {cal}", icon=":material/info:")
        return
    if missing:
        container.caption(f"Calibrated with every input present: with {missing} missing the coverage "
                          "guarantee does not hold, so the set below is only indicative.")
    entry = cal.describe(outputs[:1], classes)[0]
    value = "∅ (empty)" if entry.get("set") == [] else cal.text(entry).split(" ", 2)[2]
    label = f"{cal.coverage:.0%} prediction {'set' if 'set' in entry else 'interval'}"
    # Markdown, not st.metric: a set of several class names would be cut off in a metric's width.
    container.markdown(f"**{label}** · {cal.n} calibration rows\n\n#### {value}")
    container.caption(cal.caption() + (" An empty set means no class is plausible enough at this level: "
                                       "treat the row as unusual." if entry.get("set") == [] else ""))
    if cal.warning:
        container.warning(cal.warning, icon=":material/warning:")


def with_uncertainty(table: pd.DataFrame, ev: Evaluation, cal: Conformal | str) -> pd.DataFrame:
    """A prediction table (rows of ev.table, any order) with the set / interval column added."""
    if isinstance(cal, str):
        return table
    at = pd.Series(np.arange(len(ev.rows)), index=ev.rows)[table["row"]].to_numpy()
    entries = cal.describe(ev.outputs[at], ev.classes)
    column = f"{cal.coverage:.0%} {'set' if cal.task == 'classification' else 'interval'}"
    out = table.copy()
    out[column] = [cal.text(e).split(" ", 2)[2] for e in entries]
    return out


def uncertainty_section(run_dir: Path, dataset: Dataset, ev: Evaluation) -> Conformal | str:
    """Results: the level, what it means, the mean set size / interval width on the validation rows;
    returns the calibration for the prediction tables (with_uncertainty)."""
    st.subheader("Uncertainty")
    cal = conformal(run_dir, dataset, coverage_picker())
    if isinstance(cal, str):
        st.info(f"No calibrated uncertainty: {cal}", icon=":material/info:")
        return cal
    if cal.task == "classification":
        sizes = cal.sets(ev.probs).sum(axis=1)
        st.caption(f"{cal.caption()} Mean set size on these rows: {sizes.mean():.2f} of {len(ev.classes)} classes "
                   f"({(sizes == 1).mean():.0%} single-class sets). Every prediction table below shows its set.")
    else:
        st.caption(f"{cal.caption()} Interval: the prediction ± {plain_number(cal.q)} ({ev.target}). Every prediction "
                   "table below shows its interval.")
    if cal.warning:
        st.warning(cal.warning, icon=":material/warning:")
    return cal
