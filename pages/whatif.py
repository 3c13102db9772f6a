"""What-if: change a row's features (or its image) and watch the prediction and its explanation move."""
import numpy as np
import streamlit as st

from multimodal.app import model_service as service
from multimodal.app import run_view as view
from multimodal.app import state
from multimodal.core.errors import DataError
from multimodal.data.images import load_image
from multimodal.explain.explain import explain_row
from multimodal.models.assembly import branch_names, predict_with_missing
from multimodal.runs.run import probabilities, run_inputs

state.use_app_navigation()

st.title("What-if")
st.caption("Start from a validation row, edit its features or upload another image: the prediction and "
           "its explanation update at once.")

picked = view.current_run("whatif_run")
if picked is None:
    st.stop()
ds, run_dir, run = picked
spec = run.input_spec   # only the columns this model reads

rows = view.validation_rows(run, ds)
c1, c2 = st.columns([2, 3])
row = c1.selectbox("Start from validation row", [int(r) for r in rows], format_func=lambda r: view.row_label(ds, r),
                   key=f"whatif_row_{run_dir}")
images = None
if spec.image_cols:
    frames = len(spec.image_cols)
    upload = c2.file_uploader(f"…or upload {'an image' if frames == 1 else f'{frames} images (in frame order)'}",
                              type=None, accept_multiple_files=frames > 1, key=f"whatif_upload_{run_dir}")
    files = [] if upload is None else (upload if isinstance(upload, list) else [upload])
    try:
        if files and len(files) != frames:
            raise DataError(f"this model reads {frames} images per row ({', '.join(spec.image_cols)}); "
                            f"upload exactly {frames}, got {len(files)}")
        if files:
            folder = state.session_dir() / "uploads"
            paths = [service.save_upload(f.getvalue(), f.name, folder) for f in files]
            images = np.stack([load_image(p, run.image_size) for p in paths])[None]
    except DataError as exc:
        st.error(f"Uploaded image not used: {exc}", icon=":material/broken_image:")
        images = None

# A model trained with modality dropout learned a stand-in for a missing branch: let people try it.
missing = "nothing"
if spec.image_cols and spec.tabular_cols and (run.config.get("model") or {}).get("modality_dropout", 0) > 0:
    missing = c2.radio("Treat as missing", ["nothing", "the image", "the table"], horizontal=True,
                       key=f"whatif_missing_{run_dir}", help="This model was trained with modality dropout, so "
                       "it can predict without one branch (its learned 'missing' embedding takes the place).")

if images is None and spec.image_cols:
    try:
        images = view.load_row_images(ds, run, row)[None]
    except DataError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


@st.fragment
def what_if() -> None:
    """Edits rerun only this part of the page, so the answer comes back fast."""
    if spec.tabular_cols:
        with st.container(border=True):
            st.markdown("**Features** · empty number = missing (the model imputes it)")
            frame = view.feature_editor(run, ds, row, key=f"whatif_{run_dir}_{row}", spec=spec)
    else:
        st.info("This model reads only the image: upload another one to see the prediction change.")
        frame = ds.frame.loc[[row]]
    prediction, why, sweep_box = st.container(), st.container(), st.container()
    column = xs = None
    if spec.numeric_cols:
        sweep_box.subheader("Sweep one feature")
        s1, s2 = sweep_box.columns([1, 3])
        column = s1.selectbox("Feature", spec.numeric_cols, key="whatif_sweep_col", disabled=missing != "nothing")
        points = s1.slider("Points", 5, 50, 25, key="whatif_sweep_points", disabled=missing != "nothing")
        xs = np.linspace(*service.feature_range(run, ds, column), points)
    try:
        inputs = run_inputs(run, frame, ds.root, images)
        outputs, swept = service.sweep(run, inputs, column, xs if xs is not None and missing == "nothing" else [])
        if missing != "nothing":
            gone = {b for b in branch_names(run.model) if (b == "tabular") == (missing == "the table")}
            outputs = predict_with_missing(run.model, inputs, {b: np.ones(1, bool) for b in gone})
    except DataError as exc:
        st.error(str(exc), icon=":material/error:")
        return

    prediction.subheader("Prediction")
    p1, p2 = prediction.columns([1, 2])
    if run.task == "classification":
        probs = probabilities(outputs, len(run.classes))[0]
        best = int(probs.argmax())
        p1.metric("Predicted class", run.classes[best], f"{probs[best]:.2%} probability", delta_color="off",
                  delta_arrow="off")
        with p2:
            view.chart(view.probability_figure(dict(zip(run.classes, probs))), key="whatif_probs")
    else:
        p1.metric(f"Predicted {run.config['target']}", view.fmt_number(float(outputs[0, 0])))
        if images is not None:
            p2.image(list(images[0]), caption=[f"input image: {c}" for c in spec.image_cols], width=160)

    if missing != "nothing":
        why.info(f"Predicted with {missing} treated as missing. Explanations and the sweep need every input, "
                 "so they are shown only when nothing is missing.", icon=":material/visibility_off:")
        return
    with why:
        st.subheader("Why")
        # The prediction above is already on screen: a model's first explanation traces its graphs.
        with st.spinner("Explaining this prediction..."):
            expl = explain_row(run, inputs)
        unit = view.output_unit(run, expl.get("target"))
        st.metric(f"Explained output ({unit})", f"{expl['output']:.4f}")
        st.caption(f"Baseline: {expl['baseline']}.")
        w1, w2 = st.columns(2)
        with w1:
            view.chart(view.waterfall_figure(expl, unit), key="whatif_waterfall")
        with w2:
            if expl["features"]:
                view.chart(view.feature_bars_figure(expl["features"], unit, expl["feature_residual"]),
                           key="whatif_features")
        if expl.get("grad_cam") is not None and images is not None:
            st.markdown(f"**Grad-CAM** (regions that raise the {unit}; each map scaled to its own maximum)")
            view.grad_cam_section(expl["grad_cam"][0], images[0], spec.image_cols, unit)

    if column:
        series, y_title = view.sweep_series(run, swept)
        current = float(frame[column].iloc[0]) if frame[column].notna().iloc[0] else None
        with s2:
            view.chart(view.sweep_figure(xs, series, column, y_title, current), key="whatif_sweep")


what_if()
