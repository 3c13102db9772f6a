"""Model: pick a fusion method (with its description and diagram), the image encoder and settings.

The setup lives in st.session_state ("model_config": ModelConfig, "train_settings": dict) and is
mirrored in the URL's query parameters, so a shared link reproduces it.
"""
import math

import streamlit as st

from multimodal.app import compare_start, state
from multimodal.app import setup_query as sq
from multimodal.app.diagram import fusion_dot
from multimodal.app.encoder_view import OFFLINE, encoder_settings, pretrained_settings
from multimodal.app.param_count import count_key, param_count
from multimodal.core.config import ModelConfig, small_data_settings
from multimodal.core.errors import DataError
from multimodal.core.tasks import LOSSES, TARGET_TRANSFORMS
from multimodal.models.backbones import ENCODERS
from multimodal.models.fusion import FUSION_METHODS, Param, methods_for
from multimodal.train.training import choose_transform

state.use_app_navigation()

ss = st.session_state


def param_widget(name: str, param: Param, value, key: str):
    """One widget for a method's hyperparameter, from its declaration alone (kind, range, meaning)."""
    label = name.replace("_", " ").capitalize()
    if param.kind == "bool":
        return st.toggle(label, value=value, key=key, help=param.description)
    if param.kind == "choice":
        return st.selectbox(label, param.choices, index=param.choices.index(value), key=key, help=param.description)
    if param.kind == "int":
        low, high = int(param.low), int(param.high)
        if high - low <= 32:
            return st.slider(label, low, high, int(value), step=1, key=key, help=param.description)
        return int(st.number_input(label, low, high, int(value), step=1, key=key, help=param.description))
    return float(st.number_input(label, float(param.low), float(param.high), float(value),
                                 step=param.step or (param.high - param.low) / 100, format="%g", key=key,
                                 help=param.description))


st.title(":material/account_tree: Model")
ds = state.require_dataset()
spec = ds.features
archs = methods_for(bool(spec.image_cols), bool(spec.tabular_cols), len(spec.image_cols))
if not archs:
    st.error("No fusion method fits this dataset's columns; give some columns a feature role on the Data page.")
    st.stop()

# Widget state: from the stored setup, then from the URL when it differs from what we last wrote.
config = state.model_config(ds)
current = {**config.to_dict(), **state.default_train_settings(ds), **ss.get("train_settings", {}),
           "seed": config.seed}
proposal = compare_start.proposed_method(ds, encoder=ss.get("m_encoder", config.encoder))   # evidence first
if current["arch"] not in archs or not ss.get("model_config"):
    current["arch"] = proposal.arch
current["loss"] = current.get("loss") or "mse"
for name in sq.QUERY_FIELDS:
    if f"m_{name}" not in ss or (name == "arch" and ss.m_arch not in archs):
        ss[f"m_{name}"] = current[name]
query = st.query_params.to_dict()
if query != ss.get("_model_query_written"):
    values, ss["_model_query_warnings"] = sq.setup_from_query(
        query, {"arch": archs, "encoder": list(ENCODERS), "loss": LOSSES["regression"],
                "target_transform": TARGET_TRANSFORMS, "on_missing_weights": list(OFFLINE)})
    for name, value in values.items():
        ss[f"m_{name}"] = value
if ss.get("_model_query_warnings"):
    st.warning("Ignored invalid link settings: " + "; ".join(ss["_model_query_warnings"]), icon=":material/link_off:")

st.caption(f"Dataset **{ds.name}**: {len(spec.image_cols)} image column(s), {len(spec.tabular_cols)} table "
           f"column(s), target **{ds.target}** ({ds.task}). Only methods that fit these columns are listed.")
ordered_note = " Whether the image columns are an ordered sequence is set on the Data page." \
    if len(spec.image_cols) > 1 else ""
st.info(f"**Proposed: {proposal.arch}** - {proposal.reason}. This is a recommendation from the data: any listed "
        f"method can be chosen.{ordered_note}", icon=":material/recommend:")
pick, show = st.columns([1, 2.4], gap="large")
with pick:
    arch = st.radio("Fusion method", archs, key="m_arch",
                    format_func=lambda n: FUSION_METHODS[n].title + (" (baseline)" if FUSION_METHODS[n].is_baseline
                                                                     else ""))
    count_slot = st.empty()
method = FUSION_METHODS[arch]
uses_images = any(b in ("image", "sequence") for b in method.branches)
with show:
    st.subheader(method.title)
    st.caption(f"Origin: {method.origin}")
    st.markdown(method.description)
    st.graphviz_chart(fusion_dot(method, spec, encoder=ss.m_encoder, target=ds.target, task=ds.task,
                                 classes=ds.classes, wide=ss.m_wide), width="stretch")
    st.caption(f"Data flow: `{method.flow}`")

st.subheader("Settings")
img_col, net_col, train_col = st.columns(3, gap="large")
with img_col:
    st.markdown("**Image branch**" + ("" if uses_images else " (not used by this method)"))
    encoder, weights_file = encoder_settings(uses_images)
    image_size = st.select_slider("Image size (pixels)", [s for s in sq.IMAGE_SIZES if s >= ENCODERS[encoder].min_size],
                                  key="m_image_size", disabled=not uses_images,
                                  help=f"{ENCODERS[encoder].title} needs at least {ENCODERS[encoder].min_size} px.")
    augment = st.toggle("Augmentation (flip, rotate, zoom)", key="m_augment", disabled=not uses_images)
    pretrained = pretrained_settings(encoder, uses_images, weights_file is not None)
with net_col:
    st.markdown("**Fusion head**")
    width = st.select_slider("Width (units per dense layer)", sq.WIDTHS, key="m_width")
    dropout = st.slider("Dropout", 0.0, 0.7, step=0.05, key="m_dropout")
    l2 = st.select_slider("Weight decay (L2)", sq.L2S, key="m_l2", format_func=lambda v: f"{v:g}")
    stored = method.resolve(config.params if config.arch == arch else {})
    params = {name: param_widget(name, param, stored[name], f"mp_{arch}_{name}")
              for name, param in method.params.items()}
    wide = st.toggle("Linear term on the table features (wide)", key="m_wide", disabled=not method.takes_wide,
                     help="Wide & Deep: add a linear model of the preprocessed table features to the output, so "
                          "simple straight-line effects need not be learned by the network. It belongs to the "
                          "table branch in the explanations.")
    modality_dropout = st.slider(
        "Modality dropout", 0.0, 0.5, step=0.05, key="m_modality_dropout", disabled=method.is_baseline,
        help="While training, hide a branch for this fraction of rows (a learned 'missing' embedding takes its "
             "place). The model then leans less on one branch and can still predict when an image or the "
             "table values are missing (What-if offers it).")
with train_col:
    st.markdown("**Training**")
    epochs = int(st.number_input("Epochs (maximum)", 1, 500, step=1, key="m_epochs", help=(
        "The default comes from the number of training rows (see the note below); early stopping usually ends "
        "sooner.")))
    batch_size = st.select_slider("Batch size", sq.BATCH_SIZES, key="m_batch_size")
    lr = st.select_slider("Learning rate", sq.LRS, key="m_lr", format_func=lambda v: f"{v:g}")
    val_fraction = st.slider("Validation fraction", 0.05, 0.5, step=0.05, key="m_val_fraction")
    patience = int(st.number_input("Early-stopping patience (0 = off)", 0, 50, step=1, key="m_patience"))
    seed = int(st.number_input("Seed", 0, 1_000_000, step=1, key="m_seed"))
    auto, auto_reason = small_data_settings(state.training_rows(ds, float(val_fraction), seed))
    chosen = {"batch_size": batch_size, "patience": patience, "epochs": epochs, "dropout": dropout, "l2": l2}
    changed = [name.replace("_", " ") for name, value in auto.items() if not math.isclose(chosen[name], value)]
    st.caption(f"{auto_reason}" + (f"; changed here: {', '.join(changed)}" if changed else "") + ".")
    regression = {}
    if ds.task == "regression":
        suggested = choose_transform(ds.frame[ds.target].dropna().to_numpy(float))
        regression["target_transform"] = st.selectbox(
            "Target transform", TARGET_TRANSFORMS, key="m_target_transform",
            help=f"auto = log for a positive, right-skewed target (here: {suggested}). The model standardizes "
                 "the target inside and answers in the original unit.")
        regression["loss"] = st.selectbox("Loss", LOSSES["regression"], key="m_loss", help=(
            "mse / mae / huber are computed on the standardized (log) target; mape on the original unit."))

config = ModelConfig(arch=arch, encoder=encoder, image_size=image_size, width=width, dropout=float(dropout),
                     l2=float(l2), augment=bool(augment), seed=seed, params=params,
                     modality_dropout=0.0 if method.is_baseline else float(modality_dropout), wide=bool(wide),
                     encoder_weights_file=weights_file)
train = {"epochs": epochs, "batch_size": batch_size, "lr": float(lr), "val_fraction": float(val_fraction),
         "patience": patience, "seed": seed, **regression, **pretrained}
ss.model_config, ss.train_settings = config, train
written = sq.setup_to_query(config, train)
if st.query_params.to_dict() != written:
    st.query_params.from_dict(written)
ss._model_query_written = written

counts = ss.setdefault("param_counts", {})
key = count_key(ds, config, train)
if key not in counts:
    try:
        with st.spinner("Building the model to count its parameters..."):
            counts[key] = param_count(ds, config, val_fraction, seed)
    except DataError as e:
        st.error(f"This setup cannot be built: {e}")
if key in counts:
    count_slot.metric("Parameters", f"{counts[key]:,}", help="Weights of the full model Train will build "
                      "(encoders + fusion head), counted on a real build of this setup.")
st.markdown("The setup is saved for this session and in the page's link: share the URL to reproduce it.")
st.page_link("pages/train.py", label="Next: train this model", icon=":material/arrow_forward:")
