"""What-if: change a row's features (or its image) and watch the prediction and its explanation move."""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import numpy as np
import streamlit as st

from multimodal.app import counterfactual_view, figures, model_service, run_picker, run_view, uncertainty_view, whatif
from multimodal.core.errors import DataError
from multimodal.explain.counterfactual import feature_range
from multimodal.runs.headline import probability_text
from multimodal.runs.run import probabilities, run_inputs

st.title("What-if")
st.caption("Start from a validation row, edit its features or upload another image: the prediction and "
           "its explanation update at once.")

picked = run_picker.current_run("whatif_run")
if picked is None:
    st.stop()
ds, run_dir, run = picked
spec = run.input_spec   # only the columns this model reads

c1, c2 = st.columns([2, 3])
with c1:
    row = run_picker.row_picker(run, ds, "whatif_row", "Start from validation row")
with c2:
    images = whatif.image_upload(run, key=f"whatif_upload_{run_dir}") if spec.image_cols else None
    missing = whatif.missing_choice(run, key=f"whatif_missing_{run_dir}")
if images is None and spec.image_cols:
    try:
        images = run_view.load_row_images(ds, run, counterfactual_view.image_row(run_dir, row))[None]
    except DataError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


@st.fragment
def what_if() -> None:
    """Edits rerun only this part of the page, so the answer comes back fast."""
    if spec.tabular_cols:
        with st.container(border=True):
            st.markdown("**Features** · clear a number to make it missing (the model imputes it)")
            frame = whatif.feature_editor(run, ds, row, key=f"whatif_{run_dir}_{row}", spec=spec)
            if imputed := whatif.imputed_text(run, frame, spec):
                st.caption(imputed)
    else:
        st.info("This model reads only the image: upload another one to see the prediction change.")
        frame = ds.frame.loc[[row]]
    prediction, why, cf_box, sweep_box = st.container(), st.container(), st.container(), st.container()
    column = xs = None
    if spec.numeric_cols:
        sweep_box.subheader("Sweep one feature")
        s1, s2 = sweep_box.columns([1, 3])
        column = s1.selectbox("Feature", spec.numeric_cols, key="whatif_sweep_col", disabled=bool(missing))
        points = s1.slider("Points", 5, 50, 25, key="whatif_sweep_points", disabled=bool(missing))
        xs = np.linspace(*feature_range(run, ds, column), points)
    try:
        inputs = run_inputs(run, frame, ds.root, images)
        outputs, swept = whatif.predict_row(run, inputs, missing, column, xs)
    except DataError as exc:
        st.error(str(exc), icon=":material/error:")
        return

    prediction.subheader("Prediction")
    p1, p2 = prediction.columns([1, 2])
    if run.task == "classification":
        probs = probabilities(outputs, len(run.classes))[0]
        best = int(probs.argmax())
        p1.metric("Predicted class", run.classes[best], f"{probability_text(probs[best])} probability", delta_color="off",
                  delta_arrow="off")
        with p2:
            figures.chart(figures.probability_figure(dict(zip(run.classes, probs))), key="whatif_probs")
    else:
        p1.metric(f"Predicted {run.config['target']}", figures.fmt_number(float(outputs[0, 0])))
        if images is not None:
            p2.image(list(images[0]), caption=[f"input image: {c}" for c in spec.image_cols], width=160,
                     alt=[f"Input image of this row: {c}" for c in spec.image_cols])

    uncertainty_view.prediction_uncertainty(uncertainty_view.conformal(run_dir, ds), outputs, run.classes, p1,
                                            missing=missing)
    with cf_box:
        counterfactual_view.section(run_dir, run, ds, row, frame, inputs, f"whatif_{run_dir}_{row}", missing)
    if missing:
        why.info(f"Predicted with {missing} treated as missing. Explanations and the sweep need every input, "
                 "so they are shown only when nothing is missing.", icon=":material/visibility_off:")
        return
    with why:
        st.subheader("Why")
        # The prediction above is already on screen: a model's first explanation traces its graphs.
        with st.spinner("Explaining this prediction..."):
            expl = model_service.explanation(run_dir, inputs)
        unit = run_view.output_unit(run, expl.get("target"))
        st.metric(f"Explained output ({unit})", f"{expl['output']:.4f}")
        st.caption(f"Baseline: {expl['baseline']}.")
        w1, w2 = st.columns(2)
        with w1:
            figures.chart(figures.waterfall_figure(expl, unit), key="whatif_waterfall",
                          summary=figures.waterfall_summary(expl, unit))
        with w2:
            if expl["features"]:
                figures.chart(figures.feature_bars_figure(expl["features"], unit, expl["feature_residual"]),
                              key="whatif_features")
        if expl.get("grad_cam") is not None and images is not None:
            st.markdown(f"**Grad-CAM** (regions that raise the {unit}; each map scaled to its own maximum)")
            run_view.grad_cam_section(expl["grad_cam"][0], images[0], spec.image_cols, unit)

    if column:
        series, y_title = whatif.sweep_series(run, swept)
        current = float(frame[column].iloc[0]) if frame[column].notna().iloc[0] else None
        with s2:
            figures.chart(figures.sweep_figure(xs, series, column, y_title, current), key="whatif_sweep")


what_if()
