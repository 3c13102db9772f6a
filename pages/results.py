"""Results: how good is the model on its validation rows, where does it fail, and for whom."""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import streamlit as st

from multimodal.app import figures, model_import, model_service, run_picker, run_view, training_view
from multimodal.app.calibration_view import calibration_section
from multimodal.app.encoder_view import run_encoder_text
from multimodal.app.export_view import export_section
from multimodal.app.robustness_view import robustness_section
from multimodal.app.row_ids import row_name, with_row_ids
from multimodal.app.uncertainty_view import uncertainty_section, with_uncertainty
from multimodal.core.errors import DataError
from multimodal.runs.headline import METRIC_NAMES, best_epoch_text, probability_text

st.title("Results")
st.caption("Every number here is computed on the run's validation rows, which the model never trained on.")

with st.expander("Import a model (.keras)", icon=":material/upload_file:"):
    model_import.import_model_uploader("results_import")
picked = run_picker.current_run("results_run")
if picked is None:
    st.stop()
ds, run_dir, run = picked
try:
    with st.spinner("Predicting the validation rows…"):
        ev = model_service.evaluation(run_dir, ds)
except DataError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

unit = ev.target if ev.task == "regression" else ""
record = run_view.headline(run_dir, run, ds, ev)      # the run's evaluation record: Train's tiles, the card, the CLI
st.subheader(f"Metrics · {record['rows']} {ev.split} rows · target '{ev.target}'")
training_view.metric_cards(record["metrics"], unit)
if best := best_epoch_text(run.summary):
    st.caption(f"The model has the weights of its {best}: the numbers the Train page and the model card show.")
encoder_text = run_encoder_text(run.config, run.summary)
if encoder_text:
    st.caption(encoder_text)

if ev.task == "classification":
    normalize = st.toggle("Normalise the confusion matrix by row (recall per class)", key="results_cm_norm")
left, right = st.columns(2)
names = [row_name(ds, r) for r in ev.rows]      # one identifier everywhere (data_view.row_name)
if ev.task == "classification":
    with left:
        figures.chart(figures.confusion_matrix_figure(ev.confusion, ev.classes, normalize))
    with right:
        figures.chart(figures.roc_figure(ev.roc))
else:
    with left:
        figures.chart(figures.predicted_vs_actual_figure(ev.y_true, ev.y_pred, ev.target, names))
    with right:
        figures.chart(figures.residuals_figure(ev.y_true, ev.y_pred, ev.target, names))

cal = uncertainty_section(run_dir, ds, ev)
calibration_section(run_dir, ev)
robustness_section(run_dir, ds)

st.subheader("Worst errors")
n_worst = st.slider("How many", 4, 24, 8, step=4, key="results_n_worst")
worst = with_uncertainty(ev.worst(n_worst), ev, cal)
st.caption("Misclassified rows with the highest loss (−log p(true class))." if ev.task == "classification"
           else "Rows with the largest squared error.")
if run.spec.image_cols:
    for col, (_, r) in zip(run_view.grid(len(worst)), worst.iterrows()):
        if ev.task == "classification":
            caption = f"{row_name(ds, r.row)} · true {r.true} · pred {r.predicted} ({probability_text(r.confidence)})"
        else:
            caption = (f"{row_name(ds, r.row)} · true {figures.fmt_number(r.true)} · "
                       f"pred {figures.fmt_number(r.predicted)}")
        try:
            col.image(str(run_view.row_image_paths(ds, run, int(r.row))[0]), caption=caption, width="stretch",
                      alt=f"{run.spec.image_cols[0]} of {row_name(ds, r.row)}")
        except DataError as exc:
            col.warning(f"{caption}: {exc}")
st.dataframe(with_row_ids(ds, worst.merge(ds.frame, left_on="row", right_index=True, suffixes=("", "_data")),
                         "row"), hide_index=True, width="stretch")

st.subheader("Metrics by slice")
st.caption("A model that is good on average can fail one group: compare each slice with all rows.")
columns = run_view.slice_columns(ds)
if columns:
    c1, c2, c3 = st.columns([2, 2, 1])
    column = c1.selectbox("Slice by column", columns, key="results_slice_col")
    slices = ev.by_slice(column, c3.number_input("Buckets (numeric)", 2, 10, 4, key="results_bins"))
    metrics = [m for m in slices.columns if m not in ("slice", "n")]
    metric = c2.selectbox("Metric", metrics, format_func=lambda m: METRIC_NAMES.get(m, m), key="results_metric")
    figures.chart(figures.slice_bars_figure(slices, metric, column, record["metrics"].get(metric)))
    # A slice with one class has no ROC AUC (nor any metric that needs both classes): "n/a".
    st.dataframe(slices.style.format(precision=4, na_rep="n/a"), hide_index=True, width="stretch")
else:
    st.info("This dataset has no tabular column to slice by.")

st.subheader("Global explanations")
st.caption("Mean |branch Shapley value| over the validation rows (baseline: the run's background rows), and "
           "permutation importance: how much the metric drops when one column is shuffled.")
views = model_service.global_views(run_dir, ds)
if views is None and st.button("Compute global explanations", icon=":material/insights:", key="results_global"):
    with st.spinner("Explaining every validation row…"):
        views = model_service.global_views(run_dir, ds, compute=True)
if views:
    st.caption(f"Over {views['rows']} rows; computed in {sum(views['seconds'].values()):.1f} s.")
    g1, g2 = st.columns(2)
    with g1:
        figures.chart(figures.bars_figure(views["branches"], "Mean |branch contribution|",
                                          f"mean |Shapley value| ({run_view.output_unit(run)})", signed=False))
    with g2:
        metric_name = "accuracy" if run.task == "classification" else "R²"
        figures.chart(figures.bars_figure(views["permutation"], "Permutation importance",
                                          f"drop in {metric_name} when shuffled"))

with st.expander("All validation predictions"):
    predictions = with_row_ids(ds, with_uncertainty(ev.table, ev, cal), "row")
    st.dataframe(predictions, hide_index=True, width="stretch")
    st.download_button("Download predictions (CSV)", predictions.to_csv(index=False), f"{run.name}_predictions.csv",
                       "text/csv", key="results_download")

export_section(run_dir, run, ds)
