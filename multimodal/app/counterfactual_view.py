"""What-if's counterfactual section (docs/ARCHITECTURE.md, "Uncertainty and counterfactuals"): the
nearest real validation row predicted otherwise, the smallest edit of the unlocked features as a
before/after table with a one-click "apply", and the row's image swapped for the nearest image of a
row predicted otherwise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from multimodal.app import model_service
from multimodal.app.row_ids import row_name
from multimodal.app.run_view import load_row_images
from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset
from multimodal.explain.nearest import counterfactual_report, image_branch, pooled_embeddings
from multimodal.runs.conformal import plain_number
from multimodal.runs.run import Run

SWAP_KEY = "whatif_swapped_image"     # {(run folder, row): the validation row whose image is used}
REPORT_KEY = "whatif_counterfactual"  # {(run folder, row): (locks, delta, report)} until an edit is applied


def _value(v) -> str:
    if v is None:
        return "(missing)"
    return plain_number(v) if isinstance(v, float) else str(v)


def image_row(run_dir: Path, row: int) -> int:
    """The row whose image What-if shows for this row: its own, or the one the learner swapped in."""
    swapped = st.session_state.get(SWAP_KEY, {}).get((str(run_dir), row))
    return row if swapped is None else swapped


def _embeddings(run_dir: Path, run: Run, ds: Dataset) -> np.ndarray | None:
    """The validation rows' pooled image embeddings, computed once per run and dataset."""
    ev = model_service.evaluation(run_dir, ds)
    return model_service.shared_result("pooled_embeddings", run_dir, model_service.dataset_key(ds),
                                       lambda: pooled_embeddings(run, ev.inputs))


def column_decimals(values: pd.Series, most: int = 6) -> int:
    """How many decimals a numeric column's values are written with in the data (at most `most`):
    0.73 and 0.5 -> 2, whole numbers -> 0."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").dropna().unique()[:2000]
    return max((len(f"{float(v):.{most}f}".rstrip("0").partition(".")[2]) for v in numbers), default=0)


def rounded_edit(after: float, before: float | None, decimals: int) -> float:
    """An edited value at the column's precision, rounded away from the row's own value, so the edit
    stays at least as large as the one found (the search pulls it back to just where the prediction
    changes): 0.7287826086956521 from 0.9 at 2 decimals -> 0.72."""
    scale = 10.0 ** decimals
    if before is None or not np.isfinite(before) or after == before:
        return round(after, decimals)
    step = np.ceil if after > before else np.floor
    return float(step(round(after * scale, 6)) / scale)


def applied_value(change: dict, decimals: dict[str, int]):
    """The value an edit puts into its feature: a number at its column's precision in the data."""
    after, before = change["after"], change["before"]
    if change["column"] not in decimals or after is None:
        return after
    return rounded_edit(float(after), None if before is None else float(before), decimals[change["column"]])


def _apply(editor_key: str, changes: list[dict], decimals: dict[str, int], key: tuple) -> None:
    """Button callback: put the edit's values into the feature editor's widgets, numbers at their
    column's precision in the data (the shown search was for the row before the edit, so it goes)."""
    st.session_state.get(REPORT_KEY, {}).pop(key, None)
    for change in changes:
        st.session_state[f"{editor_key}_{change['column']}"] = applied_value(change, decimals)


def _use_image(run_dir: Path, row: int, source: int | None) -> None:
    st.session_state.setdefault(SWAP_KEY, {})[(str(run_dir), row)] = source
    st.session_state.get(REPORT_KEY, {}).pop((str(run_dir), row), None)


def section(run_dir: Path, run: Run, ds: Dataset, row: int, frame: pd.DataFrame, inputs: dict,
            editor_key: str, missing: str | None = None) -> None:
    """The counterfactual search for the row as edited, on a button (it takes a second or two).
    With a branch treated as missing the search is off (it needs every input); its widgets stay,
    disabled, so their state survives."""
    st.subheader("What would change the prediction?")
    spec = run.input_spec
    has_image = image_branch(run) is not None
    c1, c2 = st.columns([3, 2])
    locks = c1.multiselect("Keep these features fixed", spec.tabular_cols, key=f"cf_lock_{run_dir}",
                           disabled=bool(missing),
                           help="Locked features never change in the suggested edit.") if spec.tabular_cols else []
    delta = None
    if run.task == "regression":
        mae = float(model_service.evaluation(run_dir, ds).metrics["mae"])
        delta = c2.number_input(f"Move the predicted {run.config.get('target')} by", value=float(f"{mae:.3g}"),
                                key=f"cf_delta_{run_dir}", disabled=bool(missing),
                                help="Signed, in target units (default: one validation MAE).")
    if missing:
        st.caption(f"Counterfactuals need every input: shown when nothing is treated as missing (now: {missing}).")
        return
    key, store = (str(run_dir), row), st.session_state.setdefault(REPORT_KEY, {})
    if image_row(run_dir, row) != row:
        st.caption(f"Showing the image of {row_name(ds, image_row(run_dir, row))} (image swap applied).")
        st.button("Back to this row's own image", key=f"cf_unswap_{run_dir}_{row}", on_click=_use_image,
                  args=(run_dir, row, None))
    clicked = st.button("Find counterfactuals", icon=":material/alt_route:", key=f"cf_go_{run_dir}_{row}")
    kept = store.get(key)
    if not clicked and kept is not None and kept[:2] == (tuple(locks), delta):
        _show(run_dir, run, ds, row, kept[2], editor_key)
        return
    if not clicked:
        st.caption("The nearest real validation row the model predicts otherwise, the smallest edit of the unlocked "
                   "features that changes the prediction" + (" and the nearest image of such a row" if has_image else "")
                   + ", searched within each feature's training range.")
        return
    try:
        with st.spinner("Searching…"):
            ev = model_service.evaluation(run_dir, ds)
            report = counterfactual_report(run, ds, ev, row, locks, delta or None, swap_image=has_image,
                                           edit=bool(spec.tabular_cols),
                                           embeddings=_embeddings(run_dir, run, ds) if has_image else None,
                                           frame=frame, inputs=inputs)
    except DataError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    store[key] = (tuple(locks), delta, report)
    _show(run_dir, run, ds, row, report, editor_key)


def _show(run_dir: Path, run: Run, ds: Dataset, row: int, report: dict, editor_key: str) -> None:
    near, edit, swap = report["nearest"], report.get("edit"), report.get("image_swap")
    n1, n2 = st.columns(2)
    with n1:
        st.markdown("**Smallest edit**" + (f" · locked: {', '.join(report['locked'])}" if report["locked"] else ""))
        if edit is None:
            st.caption("This model reads no table column: there is no feature to edit.")
        elif not edit["found"]:
            st.info("No counterfactual within the training range: no edit of the unlocked features changes the "
                    f"prediction ({edit['rows_tried']} candidates tried in {edit['seconds']:.1f} s). Unlock more "
                    "features or try the image.", icon=":material/block:")
        else:
            decimals = {c: column_decimals(ds.frame[c]) for c in run.input_spec.numeric_cols}
            table = pd.DataFrame([{"feature": c["column"], "now": _value(c["before"]),
                                   "after": _value(applied_value(c, decimals))} for c in edit["changes"]])
            st.dataframe(table, hide_index=True, width="stretch")
            st.caption(f"Prediction {_value(report['prediction'])} → **{_value(edit['prediction'])}** (re-checked by "
                       f"the model: {'yes' if edit['verified'] else 'no'}); cost {edit['cost']:.2f} (a numeric change "
                       f"costs its size in training standard deviations, a category 1); {edit['rows_tried']} candidates "
                       f"in {edit['seconds']:.1f} s.")
            st.button("Apply this edit", icon=":material/edit:", key=f"cf_apply_{run_dir}_{row}", on_click=_apply,
                      args=(editor_key, edit["changes"], decimals, (str(run_dir), row)))
    with n2:
        st.markdown("**Nearest real validation row predicted otherwise**")
        if near is None:
            st.caption("Every validation row gets the same answer.")
        else:
            image = f", image {near['image_distance']:.2f}" if near["image_distance"] is not None else ""
            st.caption(f"{row_name(ds, near['row'])} → **{_value(near['prediction'])}** · distance "
                       f"{near['distance']:.2f} (table {near['table_distance']:.2f}{image})")
            if near["differences"]:
                st.dataframe(pd.DataFrame([{"feature": d["column"], "this row": _value(d["this row"]),
                                            "nearest row": _value(d["nearest row"])} for d in near["differences"]]),
                             hide_index=True, width="stretch")
    if swap is not None or "image_swap" in report:
        st.markdown("**Image swap** · this row's table with the nearest image of a row predicted otherwise")
        if swap is None:
            st.caption("No validation row is predicted otherwise.")
            return
        s1, s2 = st.columns([1, 3])
        frames = list(load_row_images(ds, run, swap["row"]))    # a sequence: one image per frame
        s1.image(frames, width=120 if len(frames) == 1 else 60,
                 caption=[f"{row_name(ds, swap['row'])} · {c}" for c in run.input_spec.image_cols],
                 alt=[f"{c} image of {row_name(ds, swap['row'])}" for c in run.input_spec.image_cols])
        s2.caption(f"Prediction with this image: **{_value(swap['prediction'])}** "
                   f"({'changed' if swap['changed'] else 'unchanged'}; image distance {swap['image_distance']:.2f}).")
        s2.button("Use this image", icon=":material/image:", key=f"cf_swap_{run_dir}_{row}", on_click=_use_image,
                  args=(run_dir, row, swap["row"]))
