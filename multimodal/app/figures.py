"""Every Plotly figure of the app, and `chart`, the one way pages draw them.

Figure builders take plain numbers (dicts, arrays, frames, runs' histories) and return
`go.Figure`s, so they are easy to test and reuse. One look throughout: green raises, red lowers,
blue is a total; train curves blue, validation orange. Every contribution chart says its unit
(logit of a class, or the target's unit) and its baseline (the run's background rows); see
docs/ARCHITECTURE.md, "Explanations".
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from multimodal.core.tasks import top_k, top_k_metric
from multimodal.models.fusion import baseline_names
from multimodal.runs.evaluation import RocCurve

POSITIVE, NEGATIVE, NEUTRAL, TOTAL = "#2e7d32", "#c62828", "#607d8b", "#1565c0"
TRAIN = "#1f77b4"
VAL = "#ff7f0e"
MAX_BATCH_POINTS = 500         # thin long runs so every redraw stays cheap for the browser
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#ff7f0e", "#7f7f7f"]
# Metric names as card and slice labels, and as axis titles of the training curves.
# Top-k is named by its k (core/tasks.top_k); "top_k_accuracy" is how runs saved before that name it.
METRIC_NAMES = {"accuracy": "Accuracy", "auc": "ROC AUC", "log_loss": "Log loss",
                **{top_k_metric(n): f"Top-{top_k(n)} accuracy" for n in range(3, 11)},
                "top_k_accuracy": "Top-k accuracy",
                "mae": "MAE", "rmse": "RMSE", "mape": "MAPE %", "r2": "R²", "bias": "Bias"}
METRIC_TITLES = {
    "accuracy": "accuracy (fraction correct)",
    "mae": "MAE (target units)",
    "rmse": "RMSE (target units)",
    "auc": "ROC AUC",
    "loss": "loss",
}


def metric_title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric)


# Plotly hover numbers: 4 significant digits in plain notation (553,000 and 0.1235, never 5.53e+5).
HOVER_NUMBER = ",.4~r"


def fmt_number(v: float, signed: bool = False, digits: int = 3) -> str:
    """Readable numbers: 699,458 / 0.601 / +0.0987 / −12,345 (thousands get separators, not e+05)."""
    if v is None or not np.isfinite(v):
        return "—"
    sign = "+" if signed else ""
    text = f"{v:{sign}.{digits}g}"
    # Rounding can reach 1000 (999.7 -> '1e+03'): whole numbers with separators from there on.
    return f"{v:{sign},.0f}" if abs(v) >= 1000 or "e+" in text else text


def _value_range(values: np.ndarray, pad: float = 0.3) -> list[float]:
    """Axis range from 0 to the values' extremes, widened on each side that has bars so the labels
    printed beyond a bar's end (negative bars included) stay inside the plot."""
    finite = values[np.isfinite(values)]
    lo, hi = min(0.0, float(finite.min(initial=0.0))), max(0.0, float(finite.max(initial=0.0)))
    span = (hi - lo) or 1.0
    return [lo - pad * span if lo < 0 else lo, hi + pad * span if hi > 0 else hi]


def chart(fig: go.Figure, key: str | None = None) -> None:
    """Draw a figure the app's way: full width, no Plotly logo."""
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})


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


def roc_figure(curves: list[RocCurve]) -> go.Figure:
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


def reliability_figure(curves: dict[str, Any]) -> go.Figure:
    """Reliability diagram: accuracy against mean confidence per confidence bin, one line per
    calibration.Reliability (label -> it); the diagonal is a perfectly calibrated model."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="#9e9e9e"),
                               name="perfectly calibrated", hoverinfo="skip"))
    for (label, rel), colour in zip(curves.items(), (TOTAL, POSITIVE)):
        filled = rel.counts > 0
        fig.add_trace(go.Scatter(x=rel.confidence[filled], y=rel.accuracy[filled], mode="lines+markers",
                                 name=f"{label} (ECE {rel.ece:.3f})", line=dict(color=colour),
                                 customdata=rel.counts[filled],
                                 hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} rows"
                                               "<extra></extra>"))
    fig.update_xaxes(title="mean confidence (probability of the predicted class)", range=[0, 1.02])
    fig.update_yaxes(title="accuracy", range=[0, 1.02])
    return _layout(fig, "Reliability diagram", legend=dict(x=0.02, y=0.98, yanchor="top"))


def predicted_vs_actual_figure(y_true: np.ndarray, y_pred: np.ndarray, target: str,
                               rows: np.ndarray | None = None) -> go.Figure:
    lo = float(min(np.min(y_true), np.min(y_pred)))
    hi = float(max(np.max(y_true), np.max(y_pred)))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(dash="dash", color="#9e9e9e"),
                             name="perfect", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=y_true, y=y_pred, mode="markers", name="validation rows", customdata=rows,
                             marker=dict(size=7, opacity=0.7, color=TOTAL),
                             hovertemplate=f"%{{customdata}}<br>actual %{{x:{HOVER_NUMBER}}}<br>"
                                           f"predicted %{{y:{HOVER_NUMBER}}}<extra></extra>"))
    fig.update_xaxes(title=f"actual {target}")
    fig.update_yaxes(title=f"predicted {target}")
    return _layout(fig, "Predicted vs actual", showlegend=False)


def residuals_figure(y_true: np.ndarray, y_pred: np.ndarray, target: str, rows: np.ndarray | None = None) -> go.Figure:
    resid = np.asarray(y_pred) - np.asarray(y_true)
    fig = go.Figure(go.Scatter(x=y_pred, y=resid, mode="markers", customdata=rows,
                               marker=dict(size=7, opacity=0.7, color=np.where(resid >= 0, POSITIVE, NEGATIVE)),
                               hovertemplate=f"%{{customdata}}<br>predicted %{{x:{HOVER_NUMBER}}}<br>"
                                             f"residual %{{y:{HOVER_NUMBER}}}<extra></extra>"))
    fig.add_hline(y=0, line=dict(dash="dash", color="#9e9e9e"))
    fig.update_xaxes(title=f"predicted {target}")
    fig.update_yaxes(title=f"residual = predicted − actual ({target})")
    return _layout(fig, "Residuals")


def slice_bars_figure(slices: pd.DataFrame, metric: str, column: str, overall: float | None = None) -> go.Figure:
    """Bars of one metric per slice, with n on each bar and the overall value as a line. A slice
    where the metric is undefined (ROC AUC of a slice with one class) has no bar and says n/a."""
    values = slices[metric].to_numpy(dtype=float)
    text = [f"{fmt_number(v) if np.isfinite(v) else 'n/a'}<br>n={n}" for v, n in zip(values, slices["n"])]
    fig = go.Figure(go.Bar(x=slices["slice"].astype(str), y=np.where(np.isfinite(values), values, 0.0), text=text,
                           textposition="outside", cliponaxis=False, marker_color=TOTAL,
                           hovertemplate="%{x}<br>" + METRIC_NAMES.get(metric, metric)
                           + f" %{{y:{HOVER_NUMBER}}}<extra></extra>"))
    fig.update_yaxes(range=_value_range(np.append(values, np.nan if overall is None else overall)))
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
                           text=[fmt_number(v, signed=signed) for v in vals], textposition="outside",
                           cliponaxis=False, hovertemplate=f"%{{y}}: %{{x:{HOVER_NUMBER}}}<extra></extra>"))
    fig.add_vline(x=0, line=dict(color="#9e9e9e"))
    fig.update_xaxes(title=x_title, range=_value_range(vals))
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


def routing_figure(weights: dict[str, float]) -> go.Figure:
    fig = bars_figure(weights, "Attention routing (where the head's query looked — NOT a contribution)",
                      "attention weight (sums to 1)", signed=False)
    fig.update_xaxes(range=[0, 1.3], tickvals=[0, 0.25, 0.5, 0.75, 1])   # room for the labels beyond 1
    return fig


# ---------------------------------------------------------------- figures: training and comparison

def _is_baseline(arch: str) -> bool:
    return arch in baseline_names()


def _thin(points: list[dict]) -> list[dict]:
    if len(points) <= MAX_BATCH_POINTS:
        return points
    step = -(-len(points) // MAX_BATCH_POINTS)
    return points[::step] + ([points[-1]] if (len(points) - 1) % step else [])


def _series(points: list[dict], key: str) -> tuple[list, list]:
    pts = [p for p in points if key in p]
    return [p["x"] for p in pts], [p[key] for p in pts]


def training_curves(batch_points: list[dict], epoch_points: list[dict], metric: str,
                    loss_label: str = "loss", epochs: int | None = None,
                    fine_tuning_from: float | None = None) -> go.Figure:
    """Two panels: loss and the main metric; per-batch running values faint, per-epoch train vs
    validation as lines with markers. `epochs` fixes the x range so the chart does not jump.
    fine_tuning_from: the epoch after which a two-phase run unfreezes its backbone (a dashed
    vertical line, "fine-tuning starts").

    Points come from jobs.Progress: batch points {"x": fractional epoch, "loss": ..., ...} and
    epoch points {"x": epoch, "loss": ..., "val_loss": ...}, on one x axis, "epoch"."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=(f"Loss ({loss_label})", metric_title(metric).capitalize()))
    batch_points = _thin(batch_points)
    for col, key in ((1, "loss"), (2, metric)):
        legend = col == 1
        x, y = _series(batch_points, key)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="train (per batch)", legendgroup="batch",
                                 line=dict(color=TRAIN, width=1), opacity=0.35, showlegend=legend,
                                 hovertemplate="epoch %{x:.2f}<br>%{y:.4f}<extra>batch</extra>"), row=1, col=col)
        for prefix, color, name in (("", TRAIN, "train (epoch)"), ("val_", VAL, "validation (epoch)")):
            x, y = _series(epoch_points, prefix + key)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, legendgroup=name,
                                     line=dict(color=color, width=2.5), marker=dict(size=7), showlegend=legend,
                                     hovertemplate="epoch %{x}<br>%{y:.4f}<extra>" + name + "</extra>"),
                          row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col, rangemode="tozero",
                         range=[0, max(epochs, 1)] if epochs else None)
        if fine_tuning_from is not None:
            fig.add_vline(x=fine_tuning_from, row=1, col=col, line=dict(dash="dash", color=NEUTRAL),
                          annotation_text="fine-tuning starts", annotation_position="top right")
    fig.update_yaxes(title_text=loss_label, row=1, col=1)
    fig.update_yaxes(title_text=metric_title(metric), row=1, col=2)
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=-0.32, x=0),
                      uirevision="training")       # keep the user's zoom between redraws
    return fig


def overlay_curves(runs: list[Any], metric: str) -> go.Figure:
    """Validation `metric` per epoch for several runs (runs.Run: .name, .arch, .history with
    columns epoch and val_<metric>); one color per run, single-branch baselines dashed."""
    fig = go.Figure()
    key = f"val_{metric}"
    for i, r in enumerate(runs):
        h = r.history
        if h is None or key not in getattr(h, "columns", []):
            continue
        x = h["epoch"] if "epoch" in h.columns else list(range(1, len(h) + 1))
        baseline = _is_baseline(r.arch)
        fig.add_trace(go.Scatter(x=list(x), y=list(h[key]), mode="lines+markers", name=f"{r.arch} · {r.name}",
                                 line=dict(color=PALETTE[i % len(PALETTE)], width=2,
                                           dash="dash" if baseline else "solid"),
                                 marker=dict(size=5),
                                 hovertemplate="epoch %{x}<br>%{y:.4f}<extra>" + r.name + "</extra>"))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title="epoch", yaxis_title=f"validation {metric_title(metric)}",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 1.02])
    return fig


def cv_bars(summary: list[dict], metric: str) -> go.Figure:
    """Cross-validated comparison: one bar per method (mean), error bars of one std, and every
    fold's value as a dot, so the spread the mean hides stays visible. Baselines are grey."""
    fig = go.Figure()
    names = [s["arch"] for s in summary]
    colors = ["#9ca3af" if _is_baseline(n) else PALETTE[i % len(PALETTE)] for i, n in enumerate(names)]
    fig.add_trace(go.Bar(x=names, y=[s["mean"] for s in summary], marker_color=colors, name="mean",
                         error_y=dict(type="data", array=[s["std"] for s in summary], visible=True),
                         hovertemplate="%{x}<br>mean %{y:.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[s["arch"] for s in summary for _ in s["folds"]],
                             y=[v for s in summary for v in s["folds"]], mode="markers", name="one fold",
                             marker=dict(color="#111827", size=6, opacity=0.6),
                             hovertemplate="%{x}<br>fold %{y:.4f}<extra></extra>"))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                      yaxis_title=f"held-out {metric_title(metric)}")
    return fig
