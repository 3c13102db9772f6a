"""The Model page's fusion diagram: input columns -> branch encoders -> merge -> output, as Graphviz DOT.

Streamlit-free and TensorFlow-free: a registry entry is read by duck typing (title, branches,
merge_label, takes_wide), so the diagram is cheap to test and every registered method gets one.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from multimodal.data.inputs import FeatureSpec

BRANCH_LABELS = {
    "image": "CNN\n({encoder})",
    "sequence": "shared CNN per frame\n({encoder}) -> LSTM",
    "tabular": "MLP\n(normalize, one-hot)",
}
COLORS = {"image": ("#dbeafe", "#2563eb"), "sequence": ("#dbeafe", "#2563eb"),
          "tabular": ("#dcfce7", "#16a34a"), "merge": ("#fde68a", "#d97706"), "out": ("#f3e8ff", "#9333ea")}


def _q(text: str) -> str:
    """A DOT double-quoted string; newlines become centred line breaks."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _columns_label(cols: Sequence[str], limit: int = 6) -> str:
    shown = list(cols[:limit])
    if len(cols) > limit:
        shown.append(f"... and {len(cols) - limit} more")
    return "\n".join(shown)


def fusion_dot(method: Any, spec: FeatureSpec, *, encoder: str = "small_cnn", target: str = "target",
               task: str = "classification", classes: Sequence[str] = (), wide: bool = False) -> str:
    """Graphviz DOT: input columns -> branch encoders -> merge node (the method's merge label) -> output.

    wide: the setup adds the linear term; drawn as a side path from the table features to the
    output when the method takes it.
    """
    lines = ["digraph fusion {", 'rankdir=LR; bgcolor="transparent"; nodesep=0.25; ranksep=0.45;',
             'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             'edge [color="#64748b", arrowsize=0.7];']

    def node(name: str, label: str, kind: str, shape: str = "box") -> None:
        fill, line = COLORS[kind]
        lines.append(f'{name} [label={_q(label)}, shape={shape}, fillcolor="{fill}", color="{line}"];')

    node("merge", f"{method.title}\n{method.merge_label}", "merge", "ellipse")
    for branch in method.branches:
        cols = spec.image_cols if branch in ("image", "sequence") else spec.tabular_cols
        kind = "tabular" if branch == "tabular" else "image"
        if branch in ("image", "sequence") and len(cols) > 1:
            heading = "ordered frames" if branch == "sequence" else "images (averaged)"
        else:
            heading = "image column" if kind == "image" else "table columns"
        node(f"in_{branch}", f"{heading}\n{_columns_label(cols) or '(none)'}", kind, "note")
        node(f"enc_{branch}", BRANCH_LABELS[branch].format(encoder=encoder), kind)
        lines.append(f"in_{branch} -> enc_{branch};")
        lines.append(f"enc_{branch} -> merge;")
    if task == "classification":
        out = f"{target}\n{len(classes)} classes" + (f": {', '.join(classes[:4])}" if classes else "")
        out += "..." if len(classes) > 4 else ""
    else:
        out = f"{target}\n(regression)"
    node("out", out, "out")
    lines.append("merge -> out;")
    if wide and method.takes_wide:
        node("wide", "linear term (wide)\nadded to the output", "tabular")
        lines.append('enc_tabular -> wide [style=dashed]; wide -> out [style=dashed];')
    lines.append("}")
    return "\n".join(lines)
