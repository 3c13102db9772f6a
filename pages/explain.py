"""Explain: one validation row in depth: branches, interactions, features, image regions, routing."""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import streamlit as st

from multimodal.app import figures, model_service, run_picker, run_view, uncertainty_view
from multimodal.core.errors import DataError
from multimodal.data.cells import label_text
from multimodal.models.fusion import FUSION_METHODS
from multimodal.runs.headline import probability_text
from multimodal.runs.run import predict, run_inputs

st.title("Explain a prediction")
st.caption("Exact Shapley values over the model's branches, Integrated Gradients over the tabular columns and "
           "Grad-CAM over the image, all explaining the same output against the same baseline.")

picked = run_picker.current_run("explain_run")
if picked is None:
    st.stop()
ds, run_dir, run = picked

c1, c2 = st.columns([2, 1])
with c1:
    row = run_picker.row_picker(run, ds, "explain_row")
output_index = None
if run.task == "classification" and len(run.classes) > 2:
    choice = c2.selectbox("Explain the logit of", ["predicted class"] + run.classes, key=f"explain_class_{run_dir}")
    output_index = None if choice == "predicted class" else run.classes.index(choice)

try:
    frame = ds.frame.loc[[row]]
    images = run_view.load_row_images(ds, run, row)[None] if run.spec.image_cols else None
    inputs = run_inputs(run, frame, ds.root, images)
    expl = model_service.explanation(run_dir, inputs, output_index)
except DataError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
unit = run_view.output_unit(run, expl.get("target"))

m = st.columns(4)
truth = frame[run.config["target"]].iloc[0]
m[0].metric("True value", figures.fmt_number(float(truth)) if run.task == "regression" else label_text(truth))
m[1].metric(f"Output f(x) ({unit})", figures.fmt_number(expl["output"], digits=4))
if expl.get("probability") is not None:
    m[2].metric(f"Probability of {expl['target']}", probability_text(expl["probability"]))
m[3].metric("Baseline v(∅)", figures.fmt_number(expl["base_value"], digits=4))
st.caption(f"Baseline: {expl['baseline']}. Branch values sum exactly to f(x) − v(∅).")
uncertainty_view.prediction_uncertainty(uncertainty_view.conformal(run_dir, ds), predict(run, inputs), run.classes)

st.subheader("Branches")
b1, b2 = st.columns([3, 2])
with b1:
    figures.chart(figures.waterfall_figure(expl, unit), key="explain_waterfall",
                  summary=figures.waterfall_summary(expl, unit))
with b2:
    st.markdown("**Pairwise interactions** (Shapley interaction index)")
    if expl["interactions"]:
        st.dataframe([{"pair": p.replace("|", " × "), f"interaction ({unit})": v}
                      for p, v in expl["interactions"].items()], hide_index=True, width="stretch")
        st.caption("Each branch's Shapley value already holds its share of the interactions; a large "
                   "interaction means the branches only matter together.")
    else:
        st.caption("Single-branch model: no interactions.")

if expl["features"]:
    st.subheader("Tabular features")
    figures.chart(figures.feature_bars_figure(expl["features"], unit, expl["feature_residual"]), key="explain_features")
    tab = expl["branches"].get("tabular")
    if tab is not None and expl["feature_residual"] is not None:
        st.caption(f"Features sum to {figures.fmt_number(tab + expl['feature_residual'], digits=4)}; the tabular branch "
                   f"value is {figures.fmt_number(tab, digits=4)} (completeness residual "
                   f"{figures.fmt_number(expl['feature_residual'], signed=True, digits=2)}, from the IG path integral).")

if expl.get("grad_cam") is not None and images is not None:
    st.subheader("Image regions (Grad-CAM)")
    st.caption(f"Where the image encoder's last feature map raises the {unit}, with the row's real tabular values; "
               "each map is scaled to its own maximum (an all-dark map means no region raises it).")
    run_view.grad_cam_section(expl["grad_cam"][0], images[0], run.spec.image_cols, unit)

method = FUSION_METHODS.get(run.arch)      # None for a model imported from a .keras file
if method is not None and method.shows_routing:
    st.subheader("Attention routing")
    st.warning("Routing shows where the attention head looked, not how much each branch changed the output: "
               "use the branch contributions above for that.", icon=":material/alt_route:")
    try:
        figures.chart(figures.routing_figure(model_service.routing(run_dir, inputs)), key="explain_routing")
    except ValueError as exc:
        st.info(str(exc))
