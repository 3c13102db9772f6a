"""What the app adds to Streamlit so every page meets WCAG 2.1 A/AA (docs/ARCHITECTURE.md,
"Accessibility"):

- `inject_styles`: a visible keyboard focus ring, once per page run (app.py);
- `describe`: a chart's text alternative, a one-line summary of its key numbers drawn under it
  (`figures.chart` calls it for every Plotly chart);
- `live_interval`: the "Pause live updates" toggle of every auto-refreshing fragment (WCAG 2.2.2).

Caption contrast is the theme's (`.streamlit/config.toml`, `[theme.light] textColor`), not CSS.
Status messages rely on Streamlit's own roles, checked in Chromium: `st.success` and `st.info`
render `role="status"`, `st.error` and `st.warning` render `role="alert"`; so "Training
finished" is an `st.success` and every error an `st.error`.
"""
from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st

# The focus ring: 3 px solid, at least 3:1 against every background it can sit on (WCAG 2.4.7 /
# 1.4.11): 4.3:1 on white, 3.8:1 on the light sidebar (#f0f2f6), 4.4:1 on the dark theme's
# #0e1117 (tests/browser/test_accessibility.py measures it). Streamlit's own ring is a faint
# box-shadow of the primary colour.
FOCUS_COLOR = "#1a73e8"
# Radios, checkboxes, toggles and slider thumbs are React Aria widgets whose <input> is visually
# hidden (1 px, clipped): the ring goes on what is seen, the option's label or the slider's thumb.
FOCUS_CSS = f"""<style>
:focus-visible,
label:has(> span > input:focus-visible),
[data-testid="stSlider"] div:has(> div > input[type="range"]:focus-visible) {{
  outline: 3px solid {FOCUS_COLOR} !important;
  outline-offset: 2px !important;
}}
</style>"""
SUMMARY_ITEMS = 6              # a chart's summary names at most this many bars, classes or runs
PAUSE_LABEL = "Pause live updates"
PAUSED_KEY = "_a11y_live_paused"   # the choice, kept across pages and reruns (one per session)


def inject_styles() -> None:
    """The app's CSS: a style-only st.html takes no space on the page."""
    st.html(FOCUS_CSS)


def describe(summary: str) -> None:
    """A chart's text alternative, right under it: one line with its key numbers."""
    st.caption(summary)


def summarized(fig: go.Figure, summary: str) -> go.Figure:
    """Attach a figure's one-line text alternative (its key numbers) for `figures.chart` to show."""
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    fig.update_layout(meta={**meta, "summary": summary})
    return fig


def summary_of(fig: go.Figure) -> str | None:
    meta = fig.layout.meta
    return meta.get("summary") if isinstance(meta, dict) else None


def plain(text: str | None) -> str:
    """A Plotly title as plain text: line breaks become " · ", tags go."""
    return re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", " · ", text or "")).strip()


def listed(pairs: list[tuple[str, str]], limit: int = SUMMARY_ITEMS) -> str:
    """"a 0.8, b 0.7 and 3 more": the first `limit` (name, value) pairs of a summary."""
    shown = ", ".join(f"{k} {v}" for k, v in pairs[:limit])
    return shown + (f" and {len(pairs) - limit} more" if len(pairs) > limit else "")


def traces_summary(fig: go.Figure) -> str:
    """The text alternative of a figure whose builder attached none: its title, and each named
    trace's number of points and range."""
    parts = []
    for t in fig.data:
        try:
            y = np.asarray(t.y if getattr(t, "y", None) is not None else [], dtype=float)
        except (TypeError, ValueError):       # categorical values: no range to state
            continue
        y = y[np.isfinite(y)]
        if len(y) and t.name:
            parts.append(f"{t.name}: {len(y)} point(s) from {y.min():.3g} to {y.max():.3g}")
    return (plain(fig.layout.title.text) or "Chart") + "." + (" " + "; ".join(parts) + "." if parts else "")


def live_interval(seconds: float, key: str) -> float | None:
    """Draw the "Pause live updates" toggle and return the refresh interval of the fragment it
    governs: `seconds`, or None while paused (the fragment then draws once per page run; the job
    it watches keeps running). The choice holds for the whole session, on every live page."""
    widget = f"{PAUSED_KEY}_{key}"
    if widget not in st.session_state:            # a page just opened: the session's choice
        st.session_state[widget] = st.session_state.get(PAUSED_KEY, False)
    paused = st.toggle(PAUSE_LABEL, key=widget,
                       help="Stops the charts and progress on this page from refreshing by themselves "
                            "(the job keeps running). Turn it off to catch up.")
    st.session_state[PAUSED_KEY] = paused
    if paused:
        st.caption(":material/pause_circle: Live updates paused: the job keeps running. What is shown "
                   "below is as of the moment you paused.")
    return None if paused else seconds


def live_fragment(body: Callable[..., None], seconds: float, key: str) -> Callable[..., None]:
    """`body` as a Streamlit fragment that reruns every `seconds`, under a "Pause live updates"
    toggle drawn now (`live_interval`). Call the result with body's arguments."""
    return st.fragment(run_every=live_interval(seconds, key))(body)
