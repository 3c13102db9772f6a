"""Shared widgets and Plotly figures for the Results, Explain and What-if pages.

Figure builders take plain numbers (dicts / arrays) and return `go.Figure`s, so they are easy
to test and reuse; the few Streamlit widgets here (run picker, metric cards, row picker) keep
the pages thin. Every contribution chart says its unit (logit of a class, or the target's unit)
and its baseline (the run's background rows), as DESIGN.md section 6 asks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from multimodal.app import state
from multimodal.data.dataset import Dataset, resolve_image_path
from multimodal.runs.run import Run, load_run

POSITIVE, NEGATIVE, NEUTRAL, TOTAL = "#2e7d32", "#c62828", "#607d8b", "#1565c0"
METRIC_NAMES = {"accuracy": "Accuracy", "auc": "ROC AUC", "log_loss": "Log loss", "top_k_accuracy": "Top-k accuracy",
                "mae": "MAE", "rmse": "RMSE", "mape": "MAPE %", "r2": "R²", "bias": "Bias"}


# ---------------------------------------------------------------- run picker

def main_metric(run: Run) -> tuple[str, float] | None:
    """The headline validation metric of a run: accuracy (classification) or R² / MAE (regression)."""
    keys = ("val_accuracy", "test_accuracy") if run.task == "classification" else ("val_r2", "val_mae", "test_r2")
    return next(((k, float(run.metrics[k])) for k in keys if k in run.metrics), None)


def run_label(run_dir: Path) -> str:
    """'late_concat · 12 epochs · val_accuracy 0.84 (pretrained)' (plus the folder name of own runs)."""
    try:
        run = load_run(run_dir)
    except Exception as exc:  # noqa: BLE001 - a damaged folder still gets a readable label
        return f"{Path(run_dir).name} (unreadable: {str(exc)[:60]})"
    epochs = run.summary.get("epochs_run") or len(run.history)
    imported = run.config.get("imported")    # trained elsewhere: no epochs of its own here
    parts = [run.arch] if imported else [run.arch, f"{epochs} epoch{'s' if epochs != 1 else ''}"]
    metric = main_metric(run)
    if metric:
        parts.append(f"{metric[0]} {fmt_number(metric[1])}")
    label = " · ".join(parts)
    if imported:
        return f"{label} (imported from {run.config.get('source_file', 'a .keras file')}) — {run.name}"
    pretrained = state.PRETRAINED_DIR in Path(run_dir).parts[-2:-1]
    if pretrained:
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


def metric_cards(metrics: dict[str, float], unit: str = "", columns: int = 4) -> None:
    """One st.metric per entry; NaN shows as an em dash. Error metrics carry the target unit."""
    items = [(k, v) for k, v in metrics.items() if k in METRIC_NAMES]
    cols = st.columns(min(columns, max(len(items), 1)))
    for i, (name, value) in enumerate(items):
        suffix = f" ({unit})" if unit and name in ("mae", "rmse", "bias") else ""
        text = "—" if value is None or not np.isfinite(value) else fmt_number(value)
        cols[i % len(cols)].metric(METRIC_NAMES[name] + suffix, text)


def fmt_number(v: float, signed: bool = False, digits: int = 3) -> str:
    """Readable numbers: 699,458 / 0.601 / +0.0987 / −12,345 (thousands get separators, not e+05)."""
    if v is None or not np.isfinite(v):
        return "—"
    sign = "+" if signed else ""
    return f"{v:{sign},.0f}" if abs(v) >= 1000 else f"{v:{sign}.{digits}g}"


def output_unit(run: Run, target: str | None = None) -> str:
    """What an explanation's numbers are in: 'logit of class X' or 'price (target units)'."""
    if run.task == "regression":
        return f"{run.config.get('target', 'target')} (target units)"
    return f"logit of class {target}" if target else "logit"


# ---------------------------------------------------------------- rows and images

def row_label(dataset: Dataset, row: int) -> str:
    """'row 12 · id 13 · benign' for pickers (row = the dataset's 0-based index)."""
    frame = dataset.frame
    ids = [c for c, r in dataset.roles.items() if r == "id"]
    parts = [f"row {row}"]
    if ids:
        parts.append(f"{ids[0]} {frame.at[row, ids[0]]}")
    parts.append(str(frame.at[row, dataset.target]))
    return " · ".join(parts)


def row_image_paths(dataset: Dataset, run: Run, row: int) -> list[Path]:
    """Image file(s) of a dataset row, in the order of the run's image columns."""
    return [resolve_image_path(dataset.root, dataset.frame.at[row, c], f"row {row}, column '{c}'")
            for c in run.spec.image_cols]


def load_row_images(dataset: Dataset, run: Run, row: int) -> np.ndarray:
    """uint8 (T, S, S, 3) images of a row at the run's image size."""
    from multimodal.data.images import load_image
    return np.stack([load_image(p, run.image_size) for p in row_image_paths(dataset, run, row)])


# ---------------------------------------------------------------- figures: evaluation

def _layout(fig: go.Figure, title: str, height: int = 360, **kwargs) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10), **kwargs)
    return fig


def confusion_matrix_figure(cm: np.ndarray, classes: list[str], normalize: bool = False) -> go.Figure:
    cm = np.asarray(cm)
    z = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    text = [[f"{cm[i, j]}" + (f"<br>{z[i, j]:.0%}" if normalize else "") for j in range(len(classes))]
            for i in range(len(classes))]
    fig = go.Figure(go.Heatmap(z=z, x=classes, y=classes, text=text, texttemplate="%{text}", colorscale="Blues",
                               showscale=False, hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="predicted class", side="bottom")
    return _layout(fig, "Confusion matrix" + (" (row-normalised)" if normalize else ""))


def roc_figure(curves) -> go.Figure:
    """curves: evaluation.RocCurve list; the diagonal is a random classifier."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="#9e9e9e"),
                             name="random (AUC 0.5)", hoverinfo="skip"))
    for c in curves:
        name = f"{c.label} (AUC {c.auc:.3f})" if np.isfinite(c.auc) else f"{c.label} (AUC undefined)"
        fig.add_trace(go.Scatter(x=c.fpr, y=c.tpr, mode="lines", line_shape="hv" if len(c.fpr) < 4 else "linear",
                                 name=name))
    fig.update_xaxes(title="false positive rate", range=[0, 1])
    fig.update_yaxes(title="true positive rate", range=[0, 1.02])
    return _layout(fig, "ROC curve" + (" (one-vs-rest)" if len(curves) > 1 else ""),
                   legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom"))


def predicted_vs_actual_figure(y_true: np.ndarray, y_pred: np.ndarray, target: str,
                               rows: np.ndarray | None = None) -> go.Figure:
    lo = float(min(np.min(y_true), np.min(y_pred)))
    hi = float(max(np.max(y_true), np.max(y_pred)))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dash", color="#9e9e9e"),
                             name="perfect", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=y_true, y=y_pred, mode="markers", name="validation rows", customdata=rows,
                             marker=dict(size=7, opacity=0.7, color=TOTAL),
                             hovertemplate="row %{customdata}<br>actual %{x:,.4g}<br>predicted %{y:,.4g}<extra></extra>"))
    fig.update_xaxes(title=f"actual {target}")
    fig.update_yaxes(title=f"predicted {target}")
    return _layout(fig, "Predicted vs actual", showlegend=False)


def residuals_figure(y_true: np.ndarray, y_pred: np.ndarray, target: str, rows: np.ndarray | None = None) -> go.Figure:
    resid = np.asarray(y_pred) - np.asarray(y_true)
    fig = go.Figure(go.Scatter(x=y_pred, y=resid, mode="markers", customdata=rows,
                               marker=dict(size=7, opacity=0.7, color=np.where(resid >= 0, POSITIVE, NEGATIVE)),
                               hovertemplate="row %{customdata}<br>predicted %{x:,.4g}<br>"
                                             "residual %{y:,.4g}<extra></extra>"))
    fig.add_hline(y=0, line=dict(dash="dash", color="#9e9e9e"))
    fig.update_xaxes(title=f"predicted {target}")
    fig.update_yaxes(title=f"residual = predicted − actual ({target})")
    return _layout(fig, "Residuals")


def slice_bars_figure(slices: pd.DataFrame, metric: str, column: str, overall: float | None = None) -> go.Figure:
    """Bars of one metric per slice, with n on each bar and the overall value as a line."""
    values = slices[metric].to_numpy(dtype=float)
    text = [f"{fmt_number(v)}<br>n={n}" for v, n in zip(values, slices["n"])]
    fig = go.Figure(go.Bar(x=slices["slice"].astype(str), y=np.nan_to_num(values), text=text, textposition="auto",
                           marker_color=TOTAL, hovertemplate="%{x}<br>" + METRIC_NAMES.get(metric, metric)
                           + " %{y:.4g}<extra></extra>"))
    title = f"{METRIC_NAMES.get(metric, metric)} by {column}"
    if overall is not None and np.isfinite(overall):
        fig.add_hline(y=overall, line=dict(dash="dash", color=NEGATIVE))
        title += f"<br><sup>dashed line: all rows ({fmt_number(overall)})</sup>"
    fig.update_xaxes(title=column, type="category")
    fig.update_yaxes(title=METRIC_NAMES.get(metric, metric))
    return _layout(fig, title)


def bars_figure(values: dict[str, float], title: str, x_title: str, signed: bool = True,
                height: int | None = None) -> go.Figure:
    """Horizontal bars sorted by |value| (largest on top); green positive, red negative."""
    items = sorted(values.items(), key=lambda kv: abs(kv[1]))
    names = [k for k, _ in items]
    vals = np.array([v for _, v in items], dtype=float)
    colors = [POSITIVE if v >= 0 else NEGATIVE for v in vals] if signed else TOTAL
    fig = go.Figure(go.Bar(x=vals, y=names, orientation="h", marker_color=colors,
                           text=[fmt_number(v, signed=signed) for v in vals], textposition="auto",
                           hovertemplate="%{y}: %{x:.4g}<extra></extra>"))
    fig.add_vline(x=0, line=dict(color="#9e9e9e"))
    fig.update_xaxes(title=x_title)
    return _layout(fig, title, height or max(220, 60 + 34 * len(names)))


# ---------------------------------------------------------------- figures: explanations

def waterfall_figure(expl: dict, unit: str) -> go.Figure:
    """From v(empty) (the background baseline) through each branch's Shapley value to f(x)."""
    branches = expl["branches"]
    x = ["baseline v(∅)"] + [f"{b} branch" for b in branches] + ["output f(x)"]
    y = [expl["base_value"]] + list(branches.values()) + [0.0]
    measure = ["absolute"] + ["relative"] * len(branches) + ["total"]
    text = ([fmt_number(expl["base_value"])] + [fmt_number(v, signed=True) for v in branches.values()]
            + [fmt_number(expl["output"])])
    fig = go.Figure(go.Waterfall(x=x, y=y, measure=measure, text=text, textposition="outside",
                                 increasing=dict(marker=dict(color=POSITIVE)),
                                 decreasing=dict(marker=dict(color=NEGATIVE)),
                                 totals=dict(marker=dict(color=TOTAL)), connector=dict(line=dict(color="#9e9e9e"))))
    title = "Branch contributions (exact Shapley values)"
    if expl.get("probability") is not None:
        title += f" · probability {expl['probability']:.1%}"
    fig.update_yaxes(title=unit)
    lo = min(np.cumsum(y[:-1]).min(), expl["output"], expl["base_value"])
    hi = max(np.cumsum(y[:-1]).max(), expl["output"], expl["base_value"])
    pad = 0.15 * max(hi - lo, 1e-6)
    fig.update_yaxes(range=[lo - pad, hi + pad])
    return _layout(fig, title, 380, showlegend=False)


def feature_bars_figure(features: dict[str, float], unit: str, residual: float | None = None) -> go.Figure:
    title = "Tabular features (Integrated Gradients)"
    if residual is not None:
        title += (f"<br><sup>completeness residual {fmt_number(residual, signed=True, digits=2)} "
                  "(sum of features − tabular branch value)</sup>")
    return bars_figure(features, title, f"contribution ({unit})")


def probability_figure(probs: dict[str, float]) -> go.Figure:
    names, vals = list(probs), [float(v) for v in probs.values()]
    best = int(np.argmax(vals))
    fig = go.Figure(go.Bar(x=vals, y=names, orientation="h", text=[f"{v:.1%}" for v in vals], textposition="auto",
                           marker_color=[TOTAL if i == best else NEUTRAL for i in range(len(vals))]))
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="probability")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Predicted class probabilities", max(180, 70 + 40 * len(names)))


def sweep_figure(xs: np.ndarray, series: dict[str, np.ndarray], feature: str, y_title: str,
                 current: float | None = None) -> go.Figure:
    fig = go.Figure()
    for name, ys in series.items():
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name, marker=dict(size=5)))
    if current is not None and np.isfinite(current):
        fig.add_vline(x=current, line=dict(dash="dash", color=NEGATIVE), annotation_text="current value")
    fig.update_xaxes(title=f"{feature} (training range)")
    fig.update_yaxes(title=y_title, **({"range": [0, 1], "tickformat": ".0%"} if "probability" in y_title else {}))
    return _layout(fig, f"Prediction along {feature}", showlegend=len(series) > 1)


def sweep_series(run: Run, outputs: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
    """Lines to plot along a sweep: P(positive class), P(each class), or the predicted value."""
    from multimodal.runs.run import probabilities
    if run.task == "classification":
        probs = probabilities(outputs, len(run.classes))
        if len(run.classes) == 2:
            return {f"P({run.classes[1]})": probs[:, 1]}, f"probability of {run.classes[1]}"
        return {f"P({c})": probs[:, i] for i, c in enumerate(run.classes)}, "probability"
    target = run.config.get("target", "target")
    return {f"predicted {target}": outputs[:, 0]}, f"predicted {target}"


def routing_figure(weights: dict[str, float]) -> go.Figure:
    fig = bars_figure(weights, "Attention routing (where the head's query looked — NOT a contribution)",
                      "attention weight (sums to 1)", signed=False)
    fig.update_xaxes(range=[0, 1])
    return fig


def grad_cam_overlays(cam: np.ndarray, images: np.ndarray) -> list[np.ndarray]:
    """One RGB overlay per frame: cam (T, h, w) maps in [0, 1] on images (T, S, S, 3)."""
    from multimodal.explain.explain import upsample_overlay
    return [upsample_overlay(cam[t], images[t]) for t in range(len(images))]


def grad_cam_section(cam: np.ndarray, images: np.ndarray, names: list[str], unit: str) -> None:
    """Each frame next to its Grad-CAM overlay, with a plain note when the map is zero everywhere."""
    overlays = grad_cam_overlays(cam, images)
    # One image: the overlay beside it. Several frames: frames in one row, their maps below.
    frames, maps = st.columns(2) if len(names) == 1 else (st.container(), st.container())
    frames.image(list(images), width=180, caption=list(names))
    maps.image(overlays, width=180, caption=[f"Grad-CAM {n}" for n in names])
    vanished = [n for n, m in zip(names, cam) if not np.any(m > 0)]
    if vanished:
        st.caption(f"Grad-CAM is zero everywhere for {', '.join(vanished)}: no region of the image raises the "
                   f"{unit} (the image lowers it here, or the map vanished), so the overlay shows no hot spot.")


def grid(n: int, per_row: int = 4):
    """Columns for n items, per_row at a time (yields one column per item)."""
    for start in range(0, n, per_row):
        cols = st.columns(per_row)
        for i in range(min(per_row, n - start)):
            yield cols[i]


def chart(fig: go.Figure, key: str | None = None) -> None:
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})



# ---------------------------------------------------------------- importing a model

def import_model_uploader(key: str = "import_model") -> None:
    """'Import a model (.keras)': the upload is stored under the session's folder, imported as one of
    the session's runs (runs.import_model) and selected; a refusal is an st.error and changes nothing.
    Each upload is imported once: the outcome is remembered while the file stays in the uploader."""
    from multimodal.app import model_service
    from multimodal.core.errors import DataError
    from multimodal.runs.run import MAX_MODEL_BYTES, import_model

    ds = state.dataset()
    if ds is None:
        return
    limit_mb = max(1, MAX_MODEL_BYTES // 2**20)
    upload = st.file_uploader("Import a model (.keras)", type=["keras"], key=key, max_upload_size=limit_mb,
                              help=f"A model downloaded from the Train page, for the loaded dataset's columns "
                                   f"(up to {limit_mb} MB). It is loaded with Keras safe mode: Lambda layers "
                                   "and custom code are refused.")
    if upload is None:
        return
    data = upload.getvalue()
    if len(data) > MAX_MODEL_BYTES:   # the browser enforces the limit too; a script must not rely on it
        st.error(f"model file '{upload.name}' is {len(data) / 2**20:.0f} MB (limit {limit_mb} MB); "
                 "upload a smaller model", icon=":material/error:")
        return
    saved = model_service.save_upload(data, upload.name, state.session_dir() / "uploads")
    outcomes = st.session_state.setdefault("_imported_models", {})
    token = (str(saved), model_service.dataset_key(ds))
    if token not in outcomes:
        try:
            with st.spinner(f"Checking and evaluating {upload.name}…"):
                run = import_model(saved, ds, state.runs_dir(), name=upload.name)
            outcomes[token] = ("ok", str(run.dir))
            state.select_run(run.dir)
        except DataError as exc:
            outcomes[token] = ("error", str(exc))
        finally:
            saved.unlink(missing_ok=True)   # the run folder keeps its own copy of an accepted model
    kind, detail = outcomes[token]
    if kind == "error":
        st.error(detail, icon=":material/error:")
    else:
        st.success(f"Imported {upload.name} as run {Path(detail).name}.", icon=":material/check_circle:")


# ---------------------------------------------------------------- page setup

def current_run(key: str = "run_picker"):
    """(dataset, run_dir, run) for a model page, or None after telling the user what is missing."""
    from multimodal.app import model_service
    from multimodal.core.errors import DataError
    from multimodal.runs.evaluation import check_compatible

    ds = state.dataset()
    if ds is None:
        st.info("Load a dataset on the **Data** page first.", icon=":material/info:")
        return None
    run_dir = run_picker(key)
    if run_dir is None:
        return None
    try:
        run = model_service.get_run(run_dir)
        check_compatible(run, ds)
        run.model  # noqa: B018 - load now so a damaged model file is reported here
    except DataError as exc:
        st.error(str(exc), icon=":material/error:")
        return None
    return ds, run_dir, run


def slice_columns(dataset: Dataset) -> list[str]:
    """Columns worth slicing by: features and other non-image, non-target columns (not ids)."""
    return [c for c in dataset.frame.columns
            if dataset.roles.get(c) in ("numeric", "categorical", "ignore", "split")]


def validation_rows(run: Run, dataset: Dataset) -> np.ndarray:
    from multimodal.runs.evaluation import evaluation_rows
    return evaluation_rows(run, dataset)[1]


# ---------------------------------------------------------------- what-if widgets

def feature_editor(run: Run, dataset: Dataset, row: int, key: str, spec=None, columns: int = 3) -> pd.DataFrame:
    """Inputs for the run's tabular columns, starting from a dataset row; returns the edited 1-row frame.

    Numeric: a number input (empty = missing, imputed by the model); categorical: a select box over
    the training vocabulary, including the missing token. Keys include the row, so picking another
    row starts from that row's values.
    """
    from multimodal.data.dataset import MISSING_TOKEN, label_text

    spec, stats = spec or run.spec, run.config.get("tabular_stats", {})
    frame = dataset.frame.loc[[row]].copy()
    cols = st.columns(columns)
    for i, c in enumerate(spec.tabular_cols):
        box = cols[i % columns]
        value = frame.at[row, c]
        if c in spec.numeric_cols:
            number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
            edited = box.number_input(c, value=None if pd.isna(number) else float(number), key=f"{key}_{c}",
                                      placeholder="missing", format="%g", help="Leave empty for a missing value.")
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
