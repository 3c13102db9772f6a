"""Home: what Multimodal Studio does, why fusion helps, and a three-step quick start."""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import streamlit as st

from multimodal.app import navigation, state
from multimodal.data.samples import SAMPLES

st.title(":material/join: Multimodal Studio")
st.markdown(
    "Train one neural network on **two kinds of input at once**: a **photo** (read by a convolutional "
    "network, the *image branch*) and the **table columns** next to it, such as age, sex or floor area "
    "(read by a small dense network, the *tabular branch*). A **fusion** step merges the two into one "
    "prediction. Try several ways of fusing, watch them train live, and see which branch drove each answer.")

why, how = st.columns(2, gap="large")
with why:
    st.subheader("Why fusion can beat either branch")
    st.markdown(
        "- The photo and the table often carry **different evidence**: a lesion's irregular border is "
        "only in the image, the patient's age and family history only in the table.\n"
        "- A model that sees only one of them is capped by what that input can know; a fused model can "
        "**add up** the evidence, or learn **interactions** (the same spot means more at 70 than at 20).\n"
        "- Fusion is not free: a strong tabular model can be dragged down by a noisy image branch. That is "
        "why every comparison includes the **image-only** and **tabular-only** baselines.")
with how:
    st.subheader("How a fused model is built")
    st.graphviz_chart(
        'digraph { rankdir=LR; bgcolor="transparent"; node [shape=box, style="rounded,filled", '
        'fontname="Helvetica", fontsize=11, fillcolor="#eef2ff", color="#6366f1"]; '
        'img [label="photo"]; tab [label="age, sex, ..."]; cnn [label="CNN"]; mlp [label="MLP"]; '
        'fuse [label="fusion", shape=ellipse, fillcolor="#fde68a", color="#d97706"]; '
        'out [label="prediction", fillcolor="#dcfce7", color="#16a34a"]; '
        'img -> cnn -> fuse; tab -> mlp -> fuse; fuse -> out }', width="stretch")

st.divider()
st.subheader("Quick start: about a minute on the sample data")
ds = state.dataset()
loaded = (f"**{SAMPLES[ds.name].title if ds.name in SAMPLES else ds.name}** is loaded "
          f"({len(ds.frame):,} rows)" if ds is not None else "No dataset is loaded yet")
steps = st.columns(3, gap="medium")
with steps[0].container(border=True):
    st.markdown(f"#### 1 · Data\n{loaded}. Keep it, switch to another sample, or upload a CSV with images.")
    navigation.link("data", "Open Data")
with steps[1].container(border=True):
    st.markdown("#### 2 · Model\nPick a fusion method (start with *Late concatenation*) and see its "
                "diagram. The defaults train in well under a minute on a CPU.")
    navigation.link("model", "Open Model")
with steps[2].container(border=True):
    st.markdown("#### 3 · Train\nPress **Start** and watch the loss and accuracy curves move. "
                "Stop any time; the partial model is kept.")
    navigation.link("train", "Open Train")

st.markdown("**Then** read the metrics and the worst errors on **Results**, ask *what if this patient were "
            "20 years older?* on **What-if**, and measure the fusion gain over the single-branch baselines "
            "on **Compare**.")
links = st.columns(4)
navigation.link("results", container=links[0])
navigation.link("explain", container=links[1])
navigation.link("whatif", container=links[2])
navigation.link("compare", container=links[3])

with st.expander("The sample datasets"):
    for sample in SAMPLES.values():
        st.markdown(f"**{sample.title}** · {sample.task}, target `{sample.target}`\n\n{sample.description}")
