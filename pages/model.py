"""Model: pick a fusion method (with its description and diagram), the image encoder and settings.

The setup lives in st.session_state ("model_config": ModelConfig, "train_settings": dict) and is
mirrored in the URL's query parameters, so a shared link reproduces it.
"""
from multimodal.app.navigation import enter_through_app

enter_through_app()   # first: a deep link on a fresh server reruns through app.py before any heavy import

import math

import streamlit as st

from multimodal.app import compare_start, navigation, state, workspace_view
from multimodal.app import setup_query as sq
from multimodal.app.diagram import fusion_dot
from multimodal.app.encoder_view import UPLOADS, encoder_settings, pretrained_settings
from multimodal.app.model_setup import fill_widget_state, image_choice, unused_image_warning, use_proposal
from multimodal.app.param_count import count_key, param_count
from multimodal.app.setting_widgets import param_widget, setting_number, setting_slider
from multimodal.core.config import ModelConfig, small_data_settings
from multimodal.core.errors import DataError
from multimodal.core.tasks import LOSSES, TARGET_TRANSFORMS
from multimodal.data.targets import choose_transform
from multimodal.models.backbones import ENCODERS
from multimodal.models.fusion import FUSION_METHODS, methods_for
from multimodal.models.proposal import propose_method

ss = st.session_state


st.title(":material/account_tree: Model")
ds = state.require_dataset()
spec = ds.features
archs = methods_for(bool(spec.image_cols), bool(spec.tabular_cols), len(spec.image_cols))
if not archs:
    st.error("No fusion method fits this dataset's columns; give some columns a feature role on the Data page.")
    st.stop()

chosen_encoder = ss.get("m_encoder", state.model_config(ds).encoder)
# Evidence first; an encoder or weights file the user chose steers it to the methods that read images.
proposal = compare_start.proposed_method(ds, encoder=chosen_encoder, image_choice=image_choice(
    chosen_encoder, chosen_encoder in ss.get(UPLOADS, {})))
config = fill_widget_state(ds, archs, propose_method(spec).arch)   # the session's method: never switched here

st.caption(f"Dataset **{ds.name}**: {len(spec.image_cols)} image column(s), {len(spec.tabular_cols)} table "
           f"column(s), target **{ds.target}** ({ds.task}). Only methods that fit these columns are listed.")
ordered_note = " Whether the image columns are an ordered sequence is set on the Data page." \
    if len(spec.image_cols) > 1 else ""
st.info(f"**Proposed: {proposal.arch}** - {proposal.reason}. This is a recommendation from the data: any listed "
        f"method can be chosen.{ordered_note}", icon=":material/recommend:")
if proposal.arch in archs and proposal.arch != ss.m_arch:
    st.button(f"Use {proposal.arch}", icon=":material/check:", on_click=use_proposal, args=(proposal.arch,),
              help=f"Your method stays {ss.m_arch} until you click: the proposal never changes it.")
pick, show = st.columns([1, 2.4], gap="large")
with pick:
    arch = st.radio("Fusion method", archs, key="m_arch",
                    format_func=lambda n: FUSION_METHODS[n].title + (" (baseline)" if FUSION_METHODS[n].is_baseline
                                                                     else ""))
    count_slot = st.empty()
method = FUSION_METHODS[arch]
uses_images = method.reads_images
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
    unused_image_warning(arch, archs)   # an image choice this method leaves unused: said, kept
    image_size = setting_slider("image_size", "Image size (pixels)", at_least=ENCODERS[encoder].min_size,
                                disabled=not uses_images,
                                  help=f"{ENCODERS[encoder].title} needs at least {ENCODERS[encoder].min_size} px.")
    augment = st.toggle("Augmentation (flip, rotate, zoom)", key="m_augment", disabled=not uses_images)
    pretrained = pretrained_settings(encoder, uses_images, weights_file is not None)
with net_col:
    st.markdown("**Fusion head**")
    width = setting_slider("width", "Width (units per dense layer)")
    dropout = setting_slider("dropout", "Dropout")
    l2 = setting_slider("l2", "Weight decay (L2)")
    stored = method.resolve(config.params if config.arch == arch else {})
    params = {name: param_widget(name, param, stored[name], f"mp_{arch}_{name}")
              for name, param in method.params.items()}
    wide = st.toggle("Linear term on the table features (wide)", key="m_wide", disabled=not method.takes_wide,
                     help="Wide & Deep: add a linear model of the preprocessed table features to the output, so "
                          "simple straight-line effects need not be learned by the network. It belongs to the "
                          "table branch in the explanations.")
    modality_dropout = setting_slider(
        "modality_dropout", "Modality dropout", disabled=method.is_baseline,
        help="While training, hide a branch for this fraction of rows (a learned 'missing' embedding takes its "
             "place). The model then leans less on one branch and can still predict when an image or the "
             "table values are missing (What-if offers it).")
with train_col:
    st.markdown("**Training**")
    epochs = int(setting_number("epochs", "Epochs (maximum)", help=(
        "The default comes from the number of training rows (see the note below); early stopping usually ends "
        "sooner.")))
    batch_size = setting_slider("batch_size", "Batch size")
    lr = setting_slider("lr", "Learning rate")
    val_fraction = setting_slider("val_fraction", "Validation fraction")
    patience = int(setting_number("patience", "Early-stopping patience (0 = off)"))
    seed = int(setting_number("seed", "Seed"))
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
state.set_setup(config, train)   # kept in the workspace: a reload reopens it
written = sq.setup_to_query(config, train)
workspace_view.write_query(written)   # keeps the workspace id (?ws=) in place
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
st.markdown("The setup is saved in your workspace. To share it, send this link (it leaves your workspace out):")
st.code(workspace_view.share_link(written), language=None, wrap_lines=True)
navigation.link("train", "Next: train this model", icon=":material/arrow_forward:")
