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

from multimodal.app.accessibility import describe, listed, plain, summarized, summary_of, traces_summary
from multimodal.models.fusion import baseline_names
from multimodal.runs.evaluation import RocCurve
from multimodal.runs.headline import KERAS_NAMES, METRIC_NAMES, metric_text

POSITIVE, NEGATIVE, NEUTRAL, TOTAL = "#2e7d32", "#c62828", "#607d8b", "#1565c0"
TRAIN = "#1f77b4"
VAL = "#ff7f0e"
MAX_BATCH_POINTS = 500         # thin long runs so every redraw stays cheap for the browser
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#ff7f0e", "#7f7f7f"]
# Metric names (card and slice labels) are runs/headline.py's METRIC_NAMES: one name per quantity.
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


def chart(fig: go.Figure, key: str | None = None, summary: str | None = None) -> None:
    """Draw a figure the app's way: full width, no Plotly logo, and its text alternative under it
    (docs/ARCHITECTURE.md, "Accessibility"): `summary`, else the one its builder attached
    (`summarized`), else a line read from its traces (`traces_summary`)."""
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})
    describe(summary or summary_of(fig) or traces_summary(fig))


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
    off = cm - np.diag(np.diag(cm))
    i, j = np.unravel_index(int(np.argmax(off)), cm.shape) if cm.size else (0, 0)
    worst = f"; most often confused: true {classes[i]} predicted {classes[j]} ({off[i, j]} rows)" if off.any() else ""
    return summarized(_layout(fig, "Confusion matrix" + (" (row-normalised)" if normalize else "")),
                      f"Confusion matrix: {np.trace(cm)} of {cm.sum()} rows predicted right{worst}.")


def roc_figure(curves: list[RocCurve]) -> go.Figure:
    """curves: evaluation.RocCurve list; the diagonal is a random classifier."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="#9e9e9e"),
                             name="random (AUC 0.5)", hoverinfo="skip"))
    for c in curves:
        name = f"{c.label} (ROC AUC {metric_text(c.auc)})" if np.isfinite(c.auc) else f"{c.label} (AUC undefined)"
        fig.add_trace(go.Scatter(x=c.fpr, y=c.tpr, mode="lines", line_shape="hv" if len(c.fpr) < 4 else "linear",
                                 name=name))
    fig.update_xaxes(title="false positive rate", range=[0, 1])
    fig.update_yaxes(title="true positive rate", range=[0, 1.02])
    return summarized(_layout(fig, "ROC curve" + (" (one-vs-rest)" if len(curves) > 1 else ""),
                              legend=dict(x=0.98, y=0.02, xanchor="right", yanchor="bottom")),
                      "ROC AUC (0.5 = random, 1 = perfect): " + listed([(c.label, metric_text(c.auc)) for c in curves]) + ".")


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
    return summarized(_layout(fig, "Reliability diagram", legend=dict(x=0.02, y=0.98, yanchor="top")),
                      "Expected calibration error (0 = perfectly calibrated): "
                      + listed([(label, f"{rel.ece:.3f}") for label, rel in curves.items()]) + ".")


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
    err = np.abs(np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float))
    return summarized(_layout(fig, "Predicted vs actual", showlegend=False),
                      f"Predicted vs actual {target} on {len(err)} validation rows: mean absolute error "
                      f"{fmt_number(float(err.mean()) if len(err) else np.nan)}, largest {fmt_number(err.max(initial=np.nan))}.")


def residuals_figure(y_true: np.ndarray, y_pred: np.ndarray, target: str, rows: np.ndarray | None = None) -> go.Figure:
    resid = np.asarray(y_pred) - np.asarray(y_true)
    fig = go.Figure(go.Scatter(x=y_pred, y=resid, mode="markers", customdata=rows,
                               marker=dict(size=7, opacity=0.7, color=np.where(resid >= 0, POSITIVE, NEGATIVE)),
                               hovertemplate=f"%{{customdata}}<br>predicted %{{x:{HOVER_NUMBER}}}<br>"
                                             f"residual %{{y:{HOVER_NUMBER}}}<extra></extra>"))
    fig.add_hline(y=0, line=dict(dash="dash", color="#9e9e9e"))
    fig.update_xaxes(title=f"predicted {target}")
    fig.update_yaxes(title=f"residual = predicted − actual ({target})")
    mean = fmt_number(float(resid.mean()) if len(resid) else np.nan, signed=True)
    return summarized(_layout(fig, "Residuals"),
                      f"Residuals (predicted − actual {target}) of {len(resid)} rows: {int((resid > 0).sum())} above "
                      f"0, {int((resid < 0).sum())} below; mean {mean}.")


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
    pairs = [(str(k), f"{fmt_number(v) if np.isfinite(v) else 'n/a'} (n={n})")
             for k, v, n in zip(slices["slice"], values, slices["n"])]
    return summarized(_layout(fig, title), f"{plain(title)}: {listed(pairs)}.")


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
    pairs = [(n, fmt_number(v, signed=signed)) for n, v in zip(names[::-1], vals[::-1])]   # largest first
    return summarized(_layout(fig, title, height or max(220, 60 + 34 * len(names))),
                      f"{plain(title)}, {x_title}: {listed(pairs)}.")


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
    # The baseline and output bars start at 0, so the axis holds 0 (else they run off the plot),
    # with room beyond each end for the labels printed outside the bars.
    lo = min(np.cumsum(y[:-1]).min(), expl["output"], expl["base_value"], 0.0)
    hi = max(np.cumsum(y[:-1]).max(), expl["output"], expl["base_value"], 0.0)
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
    ranked = sorted(zip(names, vals), key=lambda kv: -kv[1])
    return summarized(_layout(fig, "Predicted class probabilities", max(180, 70 + 40 * len(names))),
                      "Predicted class probabilities: " + listed([(n, f"{v:.1%}") for n, v in ranked]) + ".")


def sweep_figure(xs: np.ndarray, series: dict[str, np.ndarray], feature: str, y_title: str,
                 current: float | None = None) -> go.Figure:
    fig = go.Figure()
    for name, ys in series.items():
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name, marker=dict(size=5)))
    if current is not None and np.isfinite(current):
        fig.add_vline(x=current, line=dict(dash="dash", color=NEGATIVE), annotation_text="current value")
    fig.update_xaxes(title=f"{feature} (training range)")
    fig.update_yaxes(title=y_title, **({"range": [0, 1], "tickformat": ".0%"} if "probability" in y_title else {}))
    at = (lambda v: f"{v:.1%}") if "probability" in y_title else fmt_number    # noqa: E731
    ends = [(name, f"{at(float(ys[0]))} at {fmt_number(float(xs[0]))} to {at(float(ys[-1]))} at "
                   f"{fmt_number(float(xs[-1]))}") for name, ys in series.items() if len(ys)]
    now = f" (current value {fmt_number(current)})" if current is not None and np.isfinite(current) else ""
    return summarized(_layout(fig, f"Prediction along {feature}", showlegend=len(series) > 1),
                      f"{y_title} along {feature}{now}: {listed(ends)}.")


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


def keras_label(key: str, l2_penalty: bool = True) -> str:
    """What a live curve's value is: Keras' loss (with the L2 penalty when the model has one) and AUC
    (200 thresholds) are not the evaluation record's log loss and ROC AUC (runs/headline.py)."""
    if key == "loss":
        return KERAS_NAMES["loss"] if l2_penalty else "loss"
    return KERAS_NAMES.get(key, metric_title(key))


def training_curves(batch_points: list[dict], epoch_points: list[dict], metric: str,
                    loss_label: str = "loss", epochs: int | None = None,
                    fine_tuning_from: float | None = None, best_epoch: int | None = None,
                    l2_penalty: bool = True) -> go.Figure:
    """Two panels: loss and the main metric; per-batch running values faint, per-epoch train vs
    validation as lines with markers. `epochs` fixes the x range so the chart does not jump.
    fine_tuning_from: the epoch after which a two-phase run unfreezes its backbone (a dashed
    vertical line, "fine-tuning starts"). best_epoch: the epoch whose weights the model keeps (a
    dotted vertical line, "best epoch N"). The values are Keras' own, named so (`keras_label`).

    Points come from jobs.Progress: batch points {"x": fractional epoch, "loss": ..., ...} and
    epoch points {"x": epoch, "loss": ..., "val_loss": ...}, on one x axis, "epoch"."""
    names = {"loss": keras_label("loss", l2_penalty), metric: keras_label(metric)}
    penalty = " incl. L2 penalty" if l2_penalty else ""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=(f"Loss ({loss_label}{penalty})", names[metric][:1].upper() + names[metric][1:]))
    batch_points = _thin(batch_points)
    for col, key in ((1, "loss"), (2, metric)):
        x, y = _series(batch_points, key)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="train (per batch)", legendgroup="batch",
                                 line=dict(color=TRAIN, width=1), opacity=0.35, showlegend=col == 1,
                                 hovertemplate="epoch %{x:.2f}<br>%{y:.4f}<extra>batch</extra>"), row=1, col=col)
        for prefix, color, who in (("", TRAIN, "train"), ("val_", VAL, "val")):
            x, y = _series(epoch_points, prefix + key)
            name = f"{who} {names[key]}"
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, legendgroup=name,
                                     line=dict(color=color, width=2.5), marker=dict(size=7),
                                     hovertemplate="epoch %{x}<br>%{y:.4f}<extra>" + name + "</extra>"),
                          row=1, col=col)
        fig.update_xaxes(title_text="epoch", row=1, col=col, rangemode="tozero",
                         range=[0, max(epochs, 1)] if epochs else None)
        if fine_tuning_from is not None:
            fig.add_vline(x=fine_tuning_from, row=1, col=col, line=dict(dash="dash", color=NEUTRAL),
                          annotation_text="fine-tuning starts", annotation_position="top right")
        if best_epoch:
            fig.add_vline(x=best_epoch, row=1, col=col, line=dict(dash="dot", color=POSITIVE, width=2),
                          annotation_text=f"best epoch {best_epoch}", annotation_position="top left")
    fig.update_yaxes(title_text=names["loss"], row=1, col=1)
    fig.update_yaxes(title_text=names[metric], row=1, col=2)
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=-0.42, x=0),
                      uirevision="training")       # keep the user's zoom between redraws
    return fig


def overlay_curves(runs: list[Any], metric: str) -> go.Figure:
    """Validation `metric` per epoch for several runs (runs.Run: .name, .arch, .history with
    columns epoch and val_<metric>); one color per run, single-branch baselines dashed. Keras' history, named so."""
    fig, key, title = go.Figure(), f"val_{metric}", keras_label(metric)
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
                      xaxis_title="epoch", yaxis_title=f"validation {title}",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))
    if metric == "accuracy":
        fig.update_yaxes(range=[0, 1.02])
    last = [(t.name, f"{fmt_number(t.y[-1])} at epoch {t.x[-1]}") for t in fig.data if len(t.y)]
    return summarized(fig, f"Validation {title}, last epoch of each run: "
                           + (listed(last) if last else "no run has it") + ".")


def cv_bars(summary: list[dict], metric: str) -> go.Figure:
    """Cross-validated comparison: one bar per method (mean), error bars of one std, and every
    fold's value as a dot, so the spread the mean hides stays visible. Baselines are grey. Keras' metrics, named so."""
    fig, title = go.Figure(), keras_label(metric, l2_penalty=False)
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
                      yaxis_title=f"held-out {title}")
    means = [(s["arch"], f"{fmt_number(s['mean'])} ± {fmt_number(s['std'], digits=2)}") for s in summary]
    folds = max((len(s["folds"]) for s in summary), default=0)
    return summarized(fig, f"Held-out {title}, mean ± std over {folds} folds: {listed(means, 10)}.")


# ---------------------------------------------------------------- text alternatives drawn by callers

def training_summary(epoch_points: list[dict], metric: str, best_epoch: int | None = None,
                     l2_penalty: bool = True) -> str:
    """The training curves' text alternative: the last epoch's train and validation values (Keras'
    own, named as the curves name them) and the best epoch."""
    if not epoch_points:
        return "Training curves: no epoch has ended yet; the per-batch running values are drawn faint."
    last = epoch_points[-1]
    values = [(f"{who} {keras_label(key, l2_penalty)}", fmt_number(last[prefix + key]))
              for key in ("loss", metric) for prefix, who in (("", "train"), ("val_", "val")) if prefix + key in last]
    best = f"; best epoch {best_epoch}" if best_epoch else ""
    return f"Training curves, epoch {fmt_number(last['x'])}: {listed(values)}{best}."


def waterfall_summary(expl: dict, unit: str) -> str:
    """The branch waterfall's text alternative: baseline, each branch's Shapley value, the output."""
    branches = [(f"{b} branch", fmt_number(v, signed=True)) for b, v in expl["branches"].items()]
    prob = f" (probability {expl['probability']:.1%})" if expl.get("probability") is not None else ""
    return (f"Branch contributions in {unit}: baseline v(∅) {fmt_number(expl['base_value'])}, {listed(branches)}; "
            f"output f(x) {fmt_number(expl['output'])}{prob}.")
