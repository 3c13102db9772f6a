"""The fusion registry: one small function per method, registered with its teaching description.

A method receives the branch embeddings (see `branches.py`) and the head settings and returns
the output logits (classification) or the standardized prediction (regression). To add a
method: write one function decorated with `@register(...)` whose docstring is the description
shown in the app, and add one test. Nothing else reads method names.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras

from multimodal.models.layers import BranchAttention, FeatureModulation, FrameMean, GatedMix, WeightedAverage


@dataclass(frozen=True)
class HeadSettings:
    units: int                 # output width: 1 (binary / regression) or the number of classes
    width: int = 64            # hidden width of the dense layers
    dropout: float = 0.2
    l2: float = 1e-4           # weight decay on dense kernels
    params: dict = field(default_factory=dict)  # method-specific hyperparameters


@dataclass(frozen=True)
class FusionMethod:
    name: str
    title: str
    description: str
    origin: str
    branches: tuple[str, ...]  # embeddings the method consumes, e.g. ("image", "tabular")
    build: Callable[[dict, HeadSettings], keras.KerasTensor]
    params: dict               # method-specific hyperparameters and their defaults
    diagram: str               # one-line sketch of the data flow for the Model page

    @property
    def is_baseline(self) -> bool:
        return len(self.branches) == 1


FUSION_METHODS: dict[str, FusionMethod] = {}


def baseline_names() -> tuple[str, ...]:
    """The single-branch methods every comparison trains beside the fusions (the registry decides)."""
    return tuple(name for name, method in FUSION_METHODS.items() if method.is_baseline)


def register(title: str, origin: str, branches: tuple[str, ...], diagram: str, **params):
    """Register a fusion function under its own name; its docstring is the teaching text."""
    def add(build: Callable) -> Callable:
        description = " ".join((build.__doc__ or "").split())
        FUSION_METHODS[build.__name__] = FusionMethod(build.__name__, title, description, origin,
                                                      branches, build, params, diagram)
        return build
    return add


# Building blocks shared by the methods ------------------------------------------------------

def dense(x, units: int, s: HeadSettings, name: str, activation: str | None = "relu"):
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_regularizer=keras.regularizers.L2(s.l2) if s.l2 else None)(x)


def dense_stack(x, s: HeadSettings, name: str):
    """Dense -> dropout: the small per-branch or post-fusion MLP."""
    x = dense(x, s.width, s, f"{name}_dense")
    return keras.layers.Dropout(s.dropout, name=f"{name}_dropout")(x) if s.dropout else x


def output(x, s: HeadSettings, name: str = "logits"):
    return dense(x, s.units, s, name, activation=None)


def pooled_image(maps, name: str = "image"):
    """(N, T, h, w, c) conv maps -> (N, c): average the frames, then the positions."""
    x = FrameMean(name=f"{name}_frame_mean")(maps)
    return keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)


def branch_vectors(emb: dict, s: HeadSettings) -> list:
    """Each branch through its own dense stack (used by late fusion methods)."""
    vectors = []
    for name, x in emb.items():
        x = pooled_image(x, name) if name == "image" else x
        vectors.append(dense_stack(x, s, name))
    return vectors


# The methods --------------------------------------------------------------------------------

@register("Image only", "baseline", ("image",), "image -> CNN -> dense -> output")
def image_only(emb, s):
    """Baseline that sees only the images: the CNN features go through a small dense head. Every
    comparison needs it, because fusion only helps if it beats each branch alone."""
    return output(dense_stack(pooled_image(emb["image"]), s, "image"), s)


@register("Tabular only", "baseline", ("tabular",), "features -> dense -> output")
def tabular_only(emb, s):
    """Baseline that sees only the typed features (age, sex, ...) through a small MLP. On many
    real datasets this is the model to beat."""
    return output(dense_stack(emb["tabular"], s, "tabular"), s)


@register("Early concatenation", "Classic feature-level fusion", ("image", "tabular"),
          "[CNN features | normalized features] -> dense -> output")
def early_concat(emb, s):
    """Flatten the CNN feature map and concatenate it with the normalized tabular features, then
    learn dense layers on the joint vector. Simple and strong when both inputs are informative,
    but the many image features can drown out a few tabular columns."""
    image = keras.layers.Flatten(name="image_flat")(
        keras.layers.MaxPooling2D(name="image_shrink")(FrameMean(name="image_frame_mean")(emb["image"])))
    joint = keras.layers.Concatenate(name="joint")([image, emb["tabular"]])
    return output(dense_stack(joint, s, "joint"), s)


@register("Late concatenation", "Intermediate fusion of learned embeddings", ("image", "tabular"),
          "CNN -> dense | features -> dense -> concat -> dense -> output")
def late_concat(emb, s):
    """Each branch first learns its own compact embedding with a dense stack; the embeddings are
    concatenated and a small head combines them. Balances the branches by giving each the same
    width."""
    joint = keras.layers.Concatenate(name="joint")(branch_vectors(emb, s))
    return output(dense_stack(joint, s, "joint"), s)


@register("Multiplicative", "Bilinear-style fusion (e.g. MUTAN-like, rank 1)", ("image", "tabular"),
          "CNN -> proj | features -> proj -> elementwise x -> output")
def multiply(emb, s):
    """Both embeddings are projected to the same width and multiplied elementwise, so a tabular
    value can switch image features on or off (an interaction) rather than just add to them."""
    image, tabular = branch_vectors(emb, s)
    product = keras.layers.Multiply(name="product")([image, tabular])
    return output(dense_stack(product, s, "joint"), s)


@register("Gated", "Gated multimodal units (Arevalo et al., 2017)", ("image", "tabular"),
          "gate = sigmoid(W[img, tab]); h = gate*img + (1-gate)*tab -> output")
def gated(emb, s):
    """A learned sigmoid gate decides, unit by unit and row by row, how much to take from the
    image embedding versus the tabular one. The gate can lean on whichever branch is more
    reliable for this row."""
    image, tabular = branch_vectors(emb, s)
    both = keras.layers.Concatenate(name="gate_input")([image, tabular])
    gate = dense(both, s.width, s, "gate", activation="sigmoid")
    return output(GatedMix(name="gated_mix")([image, tabular, gate]), s)


@register("Attention over branches", "Transformer-style token fusion", ("image", "tabular"),
          "each branch -> token; learned query attends over tokens -> output", heads=2)
def attention(emb, s):
    """Each branch becomes one token; a learned query attends over the tokens, so the model can
    weight branches per row. The attention weights show routing (where the query looked), not
    how much each branch changed the prediction; use the Shapley contributions for that."""
    tokens = [keras.layers.Reshape((1, s.width), name=f"{n}_token")(v)
              for n, v in zip(emb, branch_vectors(emb, s))]
    stacked = keras.layers.Concatenate(axis=1, name="tokens")(tokens)
    attended = BranchAttention(s.width, s.params.get("heads", 2), name="branch_attention")(stacked)
    return output(dense_stack(attended, s, "joint"), s)


@register("FiLM", "Feature-wise linear modulation (Perez et al., 2018)", ("image", "tabular"),
          "features -> (gamma, beta); CNN map * (1+gamma) + beta -> conv -> pool -> output")
def film(emb, s):
    """The tabular features produce a scale (gamma) and shift (beta) for every channel of the CNN
    feature map, so age or sex changes WHAT the network looks for in the image, not just the
    final score."""
    maps = FrameMean(name="image_frame_mean")(emb["image"])
    channels = maps.shape[-1]
    conditioning = dense_stack(emb["tabular"], s, "film")
    gamma = dense(conditioning, channels, s, "film_gamma", activation=None)
    beta = dense(conditioning, channels, s, "film_beta", activation=None)
    x = FeatureModulation(name="modulation")([maps, gamma, beta])
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name="film_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="film_pool")(x)
    return output(dense_stack(x, s, "joint"), s)


@register("Decision averaging", "Late (decision-level) fusion / ensembling", ("image", "tabular"),
          "CNN -> output_img | features -> output_tab -> weighted average", learned_weights=True)
def late_decision(emb, s):
    """Each branch makes its own prediction; the final logit is a weighted average of the two
    (weights learned, or equal). Robust and easy to read, but it cannot learn interactions
    between the image and the features."""
    logits = [output(v, s, f"{n}_logits") for n, v in zip(emb, branch_vectors(emb, s))]
    return WeightedAverage(s.params.get("learned_weights", True), name="decision_average")(logits)


@register("CNN + LSTM over a sequence", "Recurrent fusion of ordered images", ("sequence", "tabular"),
          "each frame -> shared CNN -> LSTM | features -> dense -> concat -> output")
def cnn_lstm(emb, s):
    """A shared CNN encodes each image of an ordered set (frames, time points, slices); an LSTM
    reads the codes in order, so the model can use change over time, which an average of the
    frames throws away. The LSTM summary is then joined with the tabular branch."""
    codes = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D(), name="frame_codes")(
        emb["sequence"])
    summary = keras.layers.LSTM(s.width, name="lstm")(codes)
    joint = keras.layers.Concatenate(name="joint")([summary, dense_stack(emb["tabular"], s, "tabular")])
    return output(dense_stack(joint, s, "joint"), s)


@register("CNN + row-LSTM", "CNN-RNN image models (e.g. Visin et al., ReNet 2015)", ("image", "tabular"),
          "CNN -> pool | LSTM over feature-map rows -> x ; features -> dense -> concat -> output")
def cnn_rnn_rows(emb, s):
    """Two readings of the image: the CNN's pooled features, and an LSTM that scans the rows of
    the CNN feature map top to bottom (capturing vertical structure). The two are multiplied, then
    joined with the tabular branch. The LSTM reads feature-map rows rather than raw pixel rows so
    both image paths share one encoder and stay explainable."""
    maps = FrameMean(name="image_frame_mean")(emb["image"])
    h, w, c = maps.shape[1:]
    rows = keras.layers.Reshape((h, w * c), name="map_rows")(maps)
    scanned = dense(keras.layers.LSTM(s.width, name="row_lstm")(rows), s.width, s, "row_proj")
    pooled = dense(keras.layers.GlobalAveragePooling2D(name="image_pool")(maps), s.width, s, "image_proj")
    image = keras.layers.Multiply(name="image_product")([pooled, scanned])
    joint = keras.layers.Concatenate(name="joint")([image, dense_stack(emb["tabular"], s, "tabular")])
    return output(dense_stack(joint, s, "joint"), s)


def methods_for(has_images: bool, has_tabular: bool, frames: int) -> list[str]:
    """Methods a dataset can use: sequence methods need 2+ ordered image columns."""
    available = {"image": has_images, "tabular": has_tabular, "sequence": has_images and frames > 1}
    return [m.name for m in FUSION_METHODS.values() if all(available[b] for b in m.branches)]
