"""What-if: an edited row's inputs and predictions.

The feature editor and the image uploader turn widgets into a row for the model; `predict_row`
answers for it, with a branch treated as missing or along a sweep of one numeric feature, in one
batched model call.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from multimodal.app import model_service, state
from multimodal.app.figures import fmt_number
from multimodal.core.errors import DataError
from multimodal.data.cells import MISSING_TOKEN, label_text
from multimodal.data.dataset import Dataset
from multimodal.data.images import load_image
from multimodal.data.inputs import FeatureSpec, input_name
from multimodal.models.assembly import branch_names, predict_with_missing
from multimodal.runs.run import Run, predict, probabilities

MISSING_CHOICES = ("nothing", "the image", "the table")


# ---------------------------------------------------------------- inputs

def feature_editor(run: Run, dataset: Dataset, row: int, key: str, spec: FeatureSpec | None = None,
                   columns: int = 3) -> pd.DataFrame:
    """Inputs for the run's tabular columns, starting from a dataset row; returns the edited 1-row frame.

    Numeric: a number input (empty = missing, imputed by the model); categorical: a select box over
    the training vocabulary, including the missing token. Keys include the row, so picking another
    row starts from that row's values.

    A number input starts from the row's value through its session-state key, with no default of
    its own: Streamlit's browser side puts a cleared input back to its default, so only an input
    whose default is empty can be cleared to "missing".
    """
    spec, stats = spec or run.spec, run.config.get("tabular_stats", {})
    frame = dataset.frame.loc[[row]].copy()
    cols = st.columns(columns)
    for i, c in enumerate(spec.tabular_cols):
        box = cols[i % columns]
        value = frame.at[row, c]
        if c in spec.numeric_cols:
            number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
            if f"{key}_{c}" not in st.session_state:
                st.session_state[f"{key}_{c}"] = None if pd.isna(number) else float(number)
            edited = box.number_input(c, value=None, key=f"{key}_{c}", placeholder="missing", format="%g",
                                      help="Clear it for a missing value: the model fills in its training median.")
            frame[c] = frame[c].astype(float) if pd.api.types.is_numeric_dtype(frame[c]) else frame[c].astype(object)
            frame.at[row, c] = float("nan") if edited is None else edited
        else:
            vocab = list(stats.get("categorical", {}).get(c, []))
            current = label_text(value)
            options = vocab + [v for v in (current, MISSING_TOKEN) if v not in vocab]
            edited = box.selectbox(c, options, index=options.index(current), key=f"{key}_{c}")
            frame[c] = frame[c].astype(object)
            frame.at[row, c] = None if edited == MISSING_TOKEN else edited
    return frame


def imputed_text(run: Run, frame: pd.DataFrame, spec: FeatureSpec) -> str | None:
    """'age is empty: the model fills in 51.1 (its training median).' for the empty numbers of a row."""
    fills = run.config.get("tabular_stats", {}).get("numeric", {})
    empty = [c for c in spec.numeric_cols if pd.isna(pd.to_numeric(frame[c], errors="coerce").iloc[0])]
    if not empty:
        return None
    parts = [f"{c} → {fmt_number(fills[c]['fill'])}" for c in empty if c in fills]
    return (f"Empty number{'s' if len(empty) > 1 else ''}: the model fills in its training median "
            f"({', '.join(parts)}) and knows the value was missing.")


def uploaded_images(run: Run, files: list) -> np.ndarray:
    """(1, T, S, S, 3) images from uploaded files, one per image column in the columns' order, stored in the
    session's uploads folder; DataError when the count is wrong or a file is not a readable image."""
    names = run.input_spec.image_cols
    if len(files) != len(names):
        raise DataError(f"this model reads {len(names)} images per row ({', '.join(names)}); "
                        f"upload exactly {len(names)}, got {len(files)}")
    images = []
    for f in files:
        path = state.save_upload(f.getvalue(), f.name)
        try:
            images.append(load_image(path, run.image_size))
        except DataError as exc:   # name the file the user chose, not where the server keeps it
            raise DataError(str(exc).replace(str(path), f.name)) from None
    return np.stack(images)[None]


def image_upload(run: Run, key: str) -> np.ndarray | None:
    """'…or upload an image': one image; several frames of an ordered sequence in one uploader, in frame
    order; several image columns declared unordered one uploader per column (their order means nothing,
    so none is asked for). The decoded images, or None until every one is there (a refusal is shown as an
    st.error)."""
    names = run.input_spec.image_cols
    if len(names) == 1 or run.config.get("ordered_images"):
        label = "an image" if len(names) == 1 else f"{len(names)} images (in frame order: {', '.join(names)})"
        upload = st.file_uploader(f"…or upload {label}", type=None, accept_multiple_files=len(names) > 1, key=key)
        files = [] if upload is None else (upload if isinstance(upload, list) else [upload])
    else:
        st.markdown("…or upload one image per column")
        uploads = [st.file_uploader(f"image for '{c}'", type=None, key=f"{key}_{c}") for c in names]
        files = [f for f in uploads if f is not None]
        if files and len(files) < len(names):
            st.caption(f"{len(files)} of {len(names)} images uploaded: add one for "
                       f"{', '.join(repr(c) for c, f in zip(names, uploads) if f is None)} to use them.")
            return None
    if not files:
        return None
    try:
        return uploaded_images(run, files)
    except DataError as exc:
        st.error(f"Uploaded image not used: {exc}", icon=":material/broken_image:")
        return None


def missing_choice(run: Run, key: str) -> str | None:
    """The input to treat as missing ("the image" or "the table"), or None. A model trained with
    modality dropout learned a stand-in for a missing branch, so people may try it; any other model
    predicts from every input and gets no choice."""
    spec = run.input_spec
    if not (spec.image_cols and spec.tabular_cols and (run.config.get("model") or {}).get("modality_dropout", 0) > 0):
        return None
    choice = st.radio("Treat as missing", MISSING_CHOICES, horizontal=True, key=key,
                      help="This model was trained with modality dropout, so it can predict without one branch "
                           "(its learned 'missing' embedding takes the place).")
    return None if choice == MISSING_CHOICES[0] else choice


# ---------------------------------------------------------------- predictions

def sweep(run: Run, inputs: dict[str, np.ndarray], column: str | None, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(outputs of the row itself (1, units), outputs (len(values), units) with `column` set to each
    value) for ONE row of inputs, from a single batched model call. column None: no sweep."""
    n = len(values) if column else 0
    batch = {k: np.repeat(v[:1], n + 1, axis=0) for k, v in inputs.items()}
    if column:
        name = input_name(column)
        batch[name][1:] = np.asarray(values, dtype=batch[name].dtype).reshape(batch[name][1:].shape)
    outputs = predict(run, batch)
    return outputs[:1], outputs[1:]


def predict_row(run: Run, inputs: dict[str, np.ndarray], missing: str | None = None,
                column: str | None = None, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(outputs of the row (1, units), outputs along the sweep of `column` over `values`). With an
    input treated as missing (missing_choice) the model's learned stand-in replaces its branch, and
    there is no sweep. Computed once per model and question, for every session (model_service)."""
    values = np.asarray([] if values is None else values, dtype=float)
    key = (model_service.inputs_key(inputs), missing, column, values.tobytes())

    def compute() -> tuple[np.ndarray, np.ndarray]:
        if missing is None:
            return sweep(run, inputs, column, values)
        gone = {b for b in branch_names(run.model) if (b == "tabular") == (missing == "the table")}
        outputs = predict_with_missing(run.model, inputs, {b: np.ones(1, bool) for b in gone})
        return outputs, outputs[:0]
    return model_service.shared_result("whatif", run.dir, key, compute)


def sweep_series(run: Run, outputs: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
    """Lines to plot along a sweep: P(positive class), P(each class), or the predicted value."""
    if run.task == "classification":
        probs = probabilities(outputs, len(run.classes))
        if len(run.classes) == 2:
            return {f"P({run.classes[1]})": probs[:, 1]}, f"probability of {run.classes[1]}"
        return {f"P({c})": probs[:, i] for i, c in enumerate(run.classes)}, "probability"
    target = run.config.get("target", "target")
    return {f"predicted {target}": outputs[:, 0]}, f"predicted {target}"
