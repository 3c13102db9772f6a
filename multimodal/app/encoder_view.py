"""The Model page's image-encoder settings: which encoder, where its pretrained weights will come
from (an uploaded file, Keras' cache, a download, or none), what to do when they cannot be had,
and the two-phase fine-tuning of a pretrained backbone (train/phases.py).

Widget keys are the setup's `m_<name>` (setup_query.QUERY_FIELDS); an uploaded weights file is
kept per encoder in the session's uploads folder (state.save_upload), never in the URL.
"""
from __future__ import annotations

import streamlit as st

from multimodal.app import state
from multimodal.app.setting_widgets import setting_number, setting_slider
from multimodal.core.errors import DataError
from multimodal.core.settings import SETTINGS
from multimodal.models.backbones import ENCODERS, build_backbone
from multimodal.models.fusion import FUSION_METHODS
from multimodal.models.weights import cached_weights, load_encoder_weights, resolve_weights

UPLOADS = "encoder_weight_files"     # session state: {encoder: {"path", "sha256"} of its uploaded weights file}
OFFLINE = {"random": "Train from random init (with a notice)", "stop": "Stop before training"}

ENCODER_HELP = "\n\n".join(f"**{s.title}** (from {s.min_size} px): {s.description}" for s in ENCODERS.values()) + (
    "\n\nPretrained weights come from a file you upload here, else Keras' own cache, else a download through "
    "Keras when the machine is online. Without them (offline) a pretrained encoder trains from random init, "
    "which learns slowly from a few hundred rows: the small CNN is then the quicker choice.")

TWO_PHASE_HELP = (
    "With its ImageNet weights loaded, a pretrained encoder trains in two phases. Phase 1 trains the head on "
    "the frozen backbone (Adam at the learning rate under Training), so the random head cannot wreck the "
    "pretrained features. Phase 2 unfreezes the backbone's top blocks and fine-tunes them with Adam at a lower "
    "learning rate. Each phase stops early on its own; the saved model has the best validation loss of both. "
    "BatchNormalization layers stay in inference mode while fine-tuning (they keep their ImageNet statistics, "
    "the usual Keras transfer-learning practice), since a few hundred rows would skew them. Without "
    "pretrained weights (small CNN, or offline) training is one phase of the whole model.")


def _checked_upload(encoder: str, data: bytes, name: str, image_size: int) -> dict:
    """{"path", "sha256"} of the uploaded weights saved in the session folder, once they are known to
    load into this encoder's backbone; a DataError naming the file otherwise."""
    path = state.save_upload(data, name)
    weights = resolve_weights(encoder, path)      # an HDF5 weights file at all?
    checked = st.session_state.setdefault("_checked_weights", set())
    if (encoder, weights.sha256) not in checked:  # does it fit the architecture? (a build, once)
        try:
            load_encoder_weights(build_backbone(encoder, max(image_size, ENCODERS[encoder].min_size)), weights)
        except DataError as err:
            raise DataError(str(err).replace(path.name, name)) from None
        checked.add((encoder, weights.sha256))
    return {"path": str(path), "sha256": weights.sha256}


SOURCES = {"file": "pretrained weights from a given file", "cache": "ImageNet weights from Keras' cache",
           "download": "ImageNet weights downloaded through Keras"}


def run_encoder_text(config: dict, summary: dict) -> str | None:
    """A saved run's image encoder, where its weights came from (config.json's "encoder_weights")
    and its phases, in one line; None for a model that reads no image."""
    method = FUSION_METHODS.get((config.get("model") or {}).get("arch"))
    if method is not None and not method.reads_images:
        return None
    encoder = (config.get("model") or {}).get("encoder", "small_cnn")
    title = ENCODERS[encoder].title if encoder in ENCODERS else encoder
    record = config.get("encoder_weights")
    if record is None:
        weights = "weights not recorded (a run saved before they were)"
    elif record.get("source") in SOURCES:
        weights = f"{SOURCES[record['source']]} (sha256 `{str(record.get('sha256'))[:12]}…`)"
    elif encoder in ENCODERS and ENCODERS[encoder].imagenet is None:
        weights = "random init (it has no pretrained weights)"
    else:
        weights = "random init (its ImageNet weights could not be had)"
    phases = summary.get("phases") or []
    trained = " · ".join(f"phase {p['phase']}: backbone {p['backbone']}, {p['epochs_run']} epochs at lr {p['lr']:g}"
                         for p in phases) if len(phases) > 1 else ""
    return f"Image encoder **{title}**: {weights}." + (f" Trained in two phases: {trained}." if trained else "")


def weights_status(encoder: str, uploaded: dict | None) -> str:
    """Where training will take this encoder's weights from, in one sentence ("" when they are not on
    this machine: see `missing_weights_text`)."""
    spec = ENCODERS[encoder]
    if spec.imagenet is None:
        return (f"The {spec.title} has no pretrained weights: it always trains from random init, in one phase "
                "(the run records weights source *none*).")
    if uploaded is not None:
        return f"Weights: the uploaded file (sha256 `{uploaded['sha256'][:12]}…`)."
    cached = cached_weights(encoder)
    if cached is not None:
        return f"ImageNet weights found in Keras' cache (`{cached}`)."
    return ""


def missing_weights_text(encoder: str, on_missing: str) -> str:
    """The plain notice for a pretrained encoder whose ImageNet weights are not on this machine."""
    then = ("**offline: random initialisation**: it learns from scratch and slowly, the small CNN is quicker then"
            if on_missing == "random" else "**offline: the run stops** before training, saying why")
    return (f"{ENCODERS[encoder].title} ImageNet weights are not on this machine: training downloads them through "
            f"Keras into its cache (progress on the Train page); {then}. Or upload a weights file.")


def encoder_settings(uses_images: bool) -> tuple[str, str | None]:
    """The encoder picker, its weights status and upload, and the image size; returns (encoder,
    uploaded weights file or None). Offline and two-phase choices: `pretrained_settings`."""
    encoder = st.selectbox("Image encoder", list(ENCODERS), key="m_encoder", disabled=not uses_images,
                           format_func=lambda k: ENCODERS[k].title, help=ENCODER_HELP)
    spec, uploads = ENCODERS[encoder], st.session_state.setdefault(UPLOADS, {})
    sizes = [s for s in SETTINGS["image_size"].options(st.session_state.get("m_image_size")) if s >= spec.min_size]
    if st.session_state.get("m_image_size") not in sizes:
        st.session_state["m_image_size"] = min(sizes, key=lambda s: abs(s - st.session_state.get("m_image_size", 0)))
    if uses_images and spec.imagenet is not None:
        upload = st.file_uploader(f"{spec.title} weights file (optional, .h5)", type=["h5", "hdf5"],
                                  key=f"m_weights_upload_{encoder}",
                                  help=f"Keras' ImageNet file ({spec.imagenet.file}) or a .weights.h5 saved from "
                                       "this backbone. Without one, Keras' cache or a download is used.")
        if upload is not None and uploads.get(encoder, {}).get("file_id") != upload.file_id:  # new: check once
            try:
                uploads[encoder] = {**_checked_upload(encoder, upload.getvalue(), upload.name,
                                                      int(st.session_state["m_image_size"])), "file_id": upload.file_id}
            except DataError as err:
                uploads.pop(encoder, None)
                st.error(str(err), icon=":material/error:")
        elif upload is None:
            uploads.pop(encoder, None)
    uploaded = uploads.get(encoder) if uses_images else None
    status = weights_status(encoder, uploaded) if uses_images else ""
    if status:
        st.caption(status)
    elif uses_images:
        st.warning(missing_weights_text(encoder, st.session_state.get("m_on_missing_weights", "random")),
                   icon=":material/cloud_off:")
    return encoder, uploaded["path"] if uploaded else None


def pretrained_settings(encoder: str, uses_images: bool, has_file: bool) -> dict:
    """What happens offline, and the two phases: the TrainConfig settings of a pretrained encoder."""
    pretrained = uses_images and ENCODERS[encoder].imagenet is not None
    on_missing = st.radio("If the ImageNet weights cannot be had (offline)", list(OFFLINE), key="m_on_missing_weights",
                          format_func=OFFLINE.get, disabled=not pretrained or has_file or cached_weights(encoder)
                          is not None, help="Random init trains the same network without its ImageNet features "
                                            "(slow to learn from a few hundred rows); stop ends the run before "
                                            "training with the reason.")
    with st.expander("Two-phase fine-tuning (pretrained encoders)", expanded=False):
        st.caption(TWO_PHASE_HELP)
        # No default of its own (value=None): empty means "as Epochs", and a cleared input stays empty.
        freeze = setting_number("freeze_epochs", "Phase 1 epochs, backbone frozen (empty: the epochs under Training)",
                                value=None, placeholder="as Epochs", disabled=not pretrained)
        finetune = int(setting_number("finetune_epochs", "Phase 2 epochs, fine-tuning (0: no phase 2)",
                                      disabled=not pretrained))
        unfreeze = setting_slider("unfreeze", "Top blocks fine-tuned in phase 2", disabled=not pretrained,
                                    help="Blocks of the backbone, counted from its output. The top blocks hold "
                                         "the most task-specific features; 'all' follows the original design and "
                                         "is slower per epoch and quicker to overfit a few hundred rows.")
        finetune_lr = setting_slider("finetune_lr", "Phase 2 learning rate (Adam)", disabled=not pretrained)
    return {"on_missing_weights": on_missing, "freeze_epochs": None if freeze is None else int(freeze),
            "finetune_epochs": finetune, "finetune_lr": float(finetune_lr), "unfreeze": unfreeze}
