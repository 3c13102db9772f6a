"""The Model page's fusion diagram: input columns -> branch encoders -> merge -> output, as Graphviz DOT.

Streamlit-free and TensorFlow-free: a registry entry is read by duck typing (title, branches,
merge_label, takes_wide, diagram), so the diagram is cheap to test and every registered method gets
one, drawn in the shape its registration declares.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from multimodal.data.inputs import FeatureSpec

BRANCH_LABELS = {
    "image": "CNN\n({encoder})",
    "sequence": "shared CNN per frame\n({encoder}) -> LSTM",
    "rows": "grayscale pixel rows\n(read by LSTMs)",
    "tabular": "MLP\n(normalize, one-hot)",
}
COLORS = {"image": ("#dbeafe", "#2563eb"), "sequence": ("#dbeafe", "#2563eb"),
          "tabular": ("#dcfce7", "#16a34a"), "merge": ("#fde68a", "#d97706"), "out": ("#f3e8ff", "#9333ea")}
# Per diagram shape (models/fusion.DIAGRAMS): the merge node's outline, what each encoder hands to
# the merge (by branch; None: any other branch), and the steps drawn before and after the merge.
MERGE_SHAPES = {"merge": "ellipse", "modulation": "box", "decisions": "ellipse", "tokens": "hexagon"}
HANDOFFS = {
    "merge": {},
    "modulation": {"tabular": "γ, β per channel\n(scale and shift)", None: "CNN feature map\n(height × width × channels)"},
    "decisions": {None: "{branch} branch's\nown prediction"},
    "tokens": {None: "{branch} token"},
}
CONDITIONING = {("modulation", "tabular")}     # handoffs that steer the other branch, drawn dashed
BEFORE_MERGE = {"tokens": "learned query"}
AFTER_MERGE = {"modulation": "conv -> pool\n-> dense"}


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

    The method's `diagram` shape (models/fusion.DIAGRAMS; an entry without one draws "merge") says
    what each encoder hands to the merge (an embedding, the CNN map and the table's scale and shift,
    a prediction per branch, a token per branch) and which steps come around the merge.
    wide: the setup adds the linear term; drawn as a side path from the table features to the
    output when the method takes it.
    """
    shape = getattr(method, "diagram", "merge")
    lines = ["digraph fusion {", 'rankdir=LR; bgcolor="transparent"; nodesep=0.25; ranksep=0.45;',
             'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             'edge [color="#64748b", arrowsize=0.7, fontname="Helvetica", fontsize=9];']

    def node(name: str, label: str, kind: str, shape: str = "box", style: str = "rounded,filled") -> None:
        fill, line = COLORS[kind]
        lines.append(f'{name} [label={_q(label)}, shape={shape}, style="{style}", fillcolor="{fill}", color="{line}"];')

    node("merge", f"{method.title}\n{method.merge_label}", "merge", MERGE_SHAPES[shape])
    handoffs = HANDOFFS[shape]
    for branch in method.branches:
        cols = spec.tabular_cols if branch == "tabular" else spec.image_cols
        kind = "tabular" if branch == "tabular" else "image"
        if kind == "image" and len(cols) > 1:
            heading = "ordered frames" if branch == "sequence" else "images (averaged)"
        else:
            heading = "image column" if kind == "image" else "table columns"
        node(f"in_{branch}", f"{heading}\n{_columns_label(cols) or '(none)'}", kind, "note")
        node(f"enc_{branch}", BRANCH_LABELS[branch].format(encoder=encoder), kind)
        lines.append(f"in_{branch} -> enc_{branch};")
        handoff = handoffs.get(branch, handoffs.get(None))
        if handoff is None:
            lines.append(f"enc_{branch} -> merge;")
        else:
            style = "dashed" if (shape, branch) in CONDITIONING else "solid"
            lines.append(f'enc_{branch} -> merge [label={_q(handoff.format(branch=branch))}, '
                         f'color="{COLORS[kind][1]}", style={style}];')
    if shape in BEFORE_MERGE:
        node("before", BEFORE_MERGE[shape], "merge", "box", "rounded,dashed,filled")
        lines.append("before -> merge [style=dashed];")
    if task == "classification":
        out = f"{target}\n{len(classes)} classes" + (f": {', '.join(classes[:4])}" if classes else "")
        out += "..." if len(classes) > 4 else ""
    else:
        out = f"{target}\n(regression)"
    node("out", out, "out")
    if shape in AFTER_MERGE:
        node("after", AFTER_MERGE[shape], "merge")
        lines.append("merge -> after; after -> out;")
    else:
        lines.append("merge -> out;")
    if wide and method.takes_wide:
        node("wide", "linear term (wide)\nadded to the output", "tabular")
        lines.append('enc_tabular -> wide [style=dashed]; wide -> out [style=dashed];')
    lines.append("}")
    return "\n".join(lines)
