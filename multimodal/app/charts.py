"""Plotly figures for the Train and Compare pages (one look: train blue, validation orange).

Points come from jobs.Progress: batch points {"x": fractional epoch, "loss": ..., ...} and epoch
points {"x": epoch, "loss": ..., "val_loss": ...}. Both share the x axis "epoch".
"""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

TRAIN = "#1f77b4"
VAL = "#ff7f0e"
MAX_BATCH_POINTS = 500         # thin long runs so every redraw stays cheap for the browser
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#ff7f0e", "#7f7f7f"]
BASELINES = ("image_only", "tabular_only")
METRIC_TITLES = {
    "accuracy": "accuracy (fraction correct)",
    "mae": "MAE (target units)",
    "rmse": "RMSE (target units)",
    "auc": "ROC AUC",
    "loss": "loss",
}


def metric_title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric)


def _thin(points: list[dict]) -> list[dict]:
    if len(points) <= MAX_BATCH_POINTS:
        return points
    step = -(-len(points) // MAX_BATCH_POINTS)
    return points[::step] + ([points[-1]] if (len(points) - 1) % step else [])


def _series(points: list[dict], key: str) -> tuple[list, list]:
    pts = [p for p in points if key in p]
    return [p["x"] for p in pts], [p[key] for p in pts]


def training_curves(batch_points: list[dict], epoch_points: list[dict], metric: str,
                    loss_label: str = "loss", epochs: int | None = None) -> go.Figure:
    """Two panels: loss and the main metric; per-batch running values faint, per-epoch train vs
    validation as lines with markers. `epochs` fixes the x range so the chart does not jump."""
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
        baseline = r.arch in BASELINES
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
    colors = ["#9ca3af" if n in BASELINES else PALETTE[i % len(PALETTE)] for i, n in enumerate(names)]
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
