"""Results' calibration section (docs/ARCHITECTURE.md, "Uncertainty and counterfactuals"): the
reliability diagram and ECE of a classifier on its validation rows, with temperature scaling fitted
on them, which the learner may record in the run (calibration.json; the CLI's predict applies it)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from multimodal.app import figures, state
from multimodal.runs.calibration import (
    fit_temperature,
    record_temperature,
    recorded_temperature,
    reliability,
)
from multimodal.runs.evaluation import Evaluation
from multimodal.runs.run import probabilities


def calibration_section(run_dir: Path, ev: Evaluation) -> None:
    if ev.task != "classification":
        return
    st.subheader("Calibration")
    n_classes = len(ev.classes)
    t = fit_temperature(ev.outputs, ev.y_true, n_classes)
    raw = reliability(ev.probs, ev.y_true)
    scaled = reliability(probabilities(ev.outputs / t, n_classes), ev.y_true)
    c1, c2 = st.columns([3, 2])
    with c1:
        figures.chart(figures.reliability_figure({"model": raw, f"temperature T = {t:.2f}": scaled}),
                      key="results_reliability")
    c2.metric("Expected calibration error", f"{raw.ece:.3f}", f"{scaled.ece - raw.ece:+.3f} with T = {t:.2f}",
              delta_color="inverse")
    c2.caption(f"ECE: the gap between confidence and accuracy, averaged over {len(raw.counts)} confidence bins "
               f"weighted by their rows ({len(ev.rows)} validation rows). Temperature scaling divides the logits by "
               f"one number fitted on these rows (T > 1: the model was over-confident); the predicted class never "
               "changes. Fitted and scored on the same rows, its ECE is optimistic.")
    if state.is_pretrained(run_dir):
        c2.caption("This is a shipped sample run, which stays read-only: train your own run to record a temperature.")
        return
    recorded = recorded_temperature(run_dir)
    use = c2.toggle("Record temperature scaling in this run", value=recorded is not None,
                    key=f"results_temperature_{run_dir}",
                    help="Writes calibration.json into the run folder; `python -m multimodal predict` then "
                         "prints temperature-scaled probabilities.")
    if use and recorded is None:
        record_temperature(run_dir, t, len(ev.rows), raw.ece, scaled.ece)
    elif not use and recorded is not None:
        record_temperature(run_dir, None)
    if use:
        c2.caption(f"Recorded: T = {recorded_temperature(run_dir):.3f}.")
