"""The fusion registry: one small function per method, registered with everything about it.

A method receives the branch embeddings (see `branches.py`) and the head settings and returns
the output logits (classification) or the standardized prediction (regression). To add a
method: write one function decorated with `@register(...)` (its docstring is the teaching text
shown in the app, its `Param`s become the Model page's widgets, `merge` labels the diagram) and
add one test. Nothing else reads method names.

Importing the registry does not import Keras (`keras` and the custom layers are LazyModules,
loaded when the first model is built), so light pages, the CLI's argument handling and
`models/proposal.py` read it directly. See docs/ARCHITECTURE.md, "Fusion methods".
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from multimodal.core.lazy import LazyModule

keras = LazyModule("keras")
custom = LazyModule("multimodal.models.layers")   # the project's layers (models/layers.py)


@dataclass(frozen=True)
class Param:
    """One hyperparameter of a method, declared once at registration.

    The kind follows the declaration: "choice" when `choices` are given, else the default's type
    (bool, int, float). int and float need an inclusive [low, high] range. The Model page makes a
    widget from this alone; `FusionMethod.resolve` checks every value against it.
    """
    default: bool | int | float | str
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    step: float | None = None  # float widgets only; None: a hundredth of the range

    def __post_init__(self):
        # A bad declaration fails at import: no method can ship a parameter the page cannot show.
        if self.kind in ("int", "float"):
            if self.low is None or self.high is None or not self.low <= self.default <= self.high:
                raise ValueError(f"Param default must lie in its declared [low, high] range. Received: "
                                 f"default={self.default!r}, low={self.low!r}, high={self.high!r}")
        elif self.kind == "choice" and self.default not in self.choices:
            raise ValueError(f"Param default must be one of its choices. Received: default={self.default!r}, "
                             f"choices={self.choices!r}")

    @property
    def kind(self) -> str:
        if self.choices:
            return "choice"
        if isinstance(self.default, bool):
            return "bool"
        return "int" if isinstance(self.default, int) else "float"

    def to_dict(self) -> dict:
        """The declaration as plain JSON values (the CLI's `archs --json`)."""
        return {"kind": self.kind, "default": self.default, "description": self.description, "low": self.low,
                "high": self.high, "choices": list(self.choices), "step": self.step}

    def check(self, value):
        """`value` as this parameter's type, or ValueError saying what is allowed."""
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(map(repr, self.choices))}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"must be a finite number in {self.low:g}..{self.high:g}")
        if self.kind == "int" and value != int(value):
            raise ValueError(f"must be a whole number in {self.low:g}..{self.high:g}")
        value = int(value) if self.kind == "int" else float(value)
        if not self.low <= value <= self.high:
            raise ValueError(f"must be in {self.low:g}..{self.high:g}")
        return value


@dataclass(frozen=True)
class HeadSettings:
    units: int                 # output width: 1 (binary / regression) or the number of classes
    width: int = 64            # hidden width of the dense layers
    dropout: float = 0.2
    l2: float = 1e-4           # weight decay on dense kernels
    wide: bool = False         # add the linear term on the tabular features (see `wide_term`)
    params: dict = field(default_factory=dict)  # method-specific values, checked by FusionMethod.resolve


@dataclass(frozen=True)
class FusionMethod:
    name: str
    title: str
    description: str           # the teaching text (the function's docstring)
    origin: str
    branches: tuple[str, ...]  # embeddings the method consumes, e.g. ("image", "tabular")
    build: Callable[[dict, HeadSettings], keras.KerasTensor]
    params: dict[str, Param]
    flow: str                  # one-line sketch of the data flow for the Model page
    merge_label: str           # what the diagram's merge node says the method does
    takes_wide: bool           # the linear (wide) term can be added to its output
    shows_routing: bool        # the Explain page shows its attention routing
    diagram: str               # the shape of its Model-page diagram: one of DIAGRAMS

    @property
    def is_baseline(self) -> bool:
        return len(self.branches) == 1

    @property
    def reads_images(self) -> bool:
        """Whether the method runs the image encoder (an image or sequence branch)."""
        return any(b in IMAGE_BRANCHES for b in self.branches)

    def resolve(self, values: Mapping) -> dict:
        """Every declared parameter's value: those in `values` checked, defaults for the rest.

        Names this method does not declare are ignored: one config is reused across methods (a
        comparison trains the baselines with the chosen method's settings).
        """
        resolved = {}
        for name, param in self.params.items():
            value = values.get(name, param.default)
            try:
                resolved[name] = param.check(value)
            except ValueError as e:
                raise ValueError(f"fusion method '{self.name}': parameter '{name}' {e}. "
                                 f"Received: {name}={value!r}") from None
        return resolved

    def outputs(self, emb: dict, s: HeadSettings) -> keras.KerasTensor:
        """The method's output plus, when asked and allowed, the linear term (Wide & Deep)."""
        out = self.build(emb, s)
        if s.wide and self.takes_wide:
            out = keras.layers.Add(name="plus_wide")([out, wide_term(emb["tabular"], s)])
        return out


FUSION_METHODS: dict[str, FusionMethod] = {}
# The branches whose embedding is the image encoder's conv map (the others: "tabular", and "rows",
# which reads raw pixel rows without the encoder).
IMAGE_BRANCHES = ("image", "sequence")
# How a method's diagram joins the branches (app/diagram.py draws each shape).
DIAGRAMS = {
    "merge": "the branch embeddings meet in one merge step",
    "modulation": "the table's embedding scales and shifts the CNN feature map (FiLM)",
    "decisions": "each branch makes its own prediction; the predictions are averaged",
    "tokens": "each branch becomes a token; a learned query attends over the tokens",
}


def baseline_names() -> tuple[str, ...]:
    """The single-branch methods every comparison trains beside the fusions (the registry decides)."""
    return tuple(name for name, method in FUSION_METHODS.items() if method.is_baseline)


def register(title: str, origin: str, branches: tuple[str, ...], *, flow: str, merge: str,
             params: dict[str, Param] | None = None, wide: bool | None = None, shows_routing: bool = False,
             diagram: str = "merge"):
    """Register a fusion function under its own name; its docstring is the teaching text.

    merge: the diagram's merge-node label (required). wide: whether the linear term may be added
    (default: when the method has a tabular branch). diagram: the diagram's shape (DIAGRAMS).
    """
    def add(build: Callable) -> Callable:
        description = " ".join((build.__doc__ or "").split())
        if not description or not merge.strip() or not flow.strip():
            raise ValueError(f"fusion method '{build.__name__}' needs a docstring, a flow and a merge label")
        if diagram not in DIAGRAMS:
            raise ValueError(f"fusion method '{build.__name__}': diagram must be one of {', '.join(DIAGRAMS)}. "
                             f"Received: diagram={diagram!r}")
        FUSION_METHODS[build.__name__] = FusionMethod(
            build.__name__, title, description, origin, branches, build, dict(params or {}), flow, merge,
            "tabular" in branches if wide is None else wide, shows_routing, diagram)
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


def linear_map(x, units: int, l2: float, name: str, use_bias: bool = True):
    """x @ W (+ b) with an L2 penalty, starting from zero (a generalized linear model's start)."""
    return keras.layers.Dense(units, use_bias=use_bias, kernel_initializer="zeros", name=name,
                              kernel_regularizer=keras.regularizers.L2(l2) if l2 else None)(x)


def wide_term(tabular, s: HeadSettings):
    """The linear term on the preprocessed tabular vector (the head's own tabular input, so the
    explanations credit it to the tabular branch). No bias: the output layer has one."""
    return linear_map(tabular, s.units, s.l2, "wide", use_bias=False)


def pooled_image(maps, name: str = "image"):
    """(N, T, h, w, c) conv maps -> (N, c): average the frames, then the positions."""
    x = custom.FrameMean(name=f"{name}_frame_mean")(maps)
    return keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)


def branch_vectors(emb: dict, s: HeadSettings) -> list:
    """Each branch through its own dense stack (used by late fusion methods)."""
    vectors = []
    for name, x in emb.items():
        x = pooled_image(x, name) if name == "image" else x
        vectors.append(dense_stack(x, s, name))
    return vectors


# The methods --------------------------------------------------------------------------------

@register("Image only", "baseline", ("image",), flow="image -> CNN -> dense -> output", merge="dense head")
def image_only(emb, s):
    """Baseline that sees only the images: the CNN features go through a small dense head. Every
    comparison needs it, because fusion only helps if it beats each branch alone."""
    return output(dense_stack(pooled_image(emb["image"]), s, "image"), s)


@register("Tabular only", "baseline", ("tabular",), flow="features -> dense -> output", merge="dense head")
def tabular_only(emb, s):
    """Baseline that sees only the typed features (age, sex, ...) through a small MLP. On many
    real datasets this is the model to beat."""
    return output(dense_stack(emb["tabular"], s, "tabular"), s)


@register("Linear (logistic / ridge regression)", "baseline: generalized linear model", ("tabular",),
          flow="features -> linear -> output", merge="one linear layer\n(L2, no hidden units)", wide=False,
          params={"l2": Param(1e-3, "L2 penalty on the weights (ridge): larger values shrink them toward 0",
                              low=0.0, high=1.0, step=1e-4)})
def linear(emb, s):
    """The floor every comparison includes: logistic regression (classification) or ridge
    regression (regression) on the preprocessed table features, one weight per normalized value or
    category, an L2 penalty and no hidden layer. A network that cannot beat it has learned nothing
    a straight line could not."""
    return linear_map(emb["tabular"], s.units, s.params["l2"], "logits")


@register("Early concatenation", "Classic feature-level fusion", ("image", "tabular"),
          flow="[CNN features | normalized features] -> dense -> output",
          merge="concatenate\n[CNN map | features]")
def early_concat(emb, s):
    """Flatten the CNN feature map and concatenate it with the normalized tabular features, then
    learn dense layers on the joint vector. Simple and strong when both inputs are informative,
    but the many image features can drown out a few tabular columns."""
    image = keras.layers.Flatten(name="image_flat")(
        keras.layers.MaxPooling2D(name="image_shrink")(custom.FrameMean(name="image_frame_mean")(emb["image"])))
    joint = keras.layers.Concatenate(name="joint")([image, emb["tabular"]])
    return output(dense_stack(joint, s, "joint"), s)


@register("Late concatenation", "Intermediate fusion of learned embeddings", ("image", "tabular"),
          flow="CNN -> dense | features -> dense -> concat -> dense -> output", merge="concatenate\nembeddings")
def late_concat(emb, s):
    """Each branch first learns its own compact embedding with a dense stack; the embeddings are
    concatenated and a small head combines them. Balances the branches by giving each the same
    width."""
    joint = keras.layers.Concatenate(name="joint")(branch_vectors(emb, s))
    return output(dense_stack(joint, s, "joint"), s)


@register("Multiplicative", "Bilinear-style fusion (e.g. MUTAN-like, rank 1)", ("image", "tabular"),
          flow="CNN -> proj | features -> proj -> elementwise x -> output",
          merge="elementwise ×\n(projected embeddings)")
def multiply(emb, s):
    """Both embeddings are projected to the same width and multiplied elementwise, so a tabular
    value can switch image features on or off (an interaction) rather than just add to them."""
    image, tabular = branch_vectors(emb, s)
    product = keras.layers.Multiply(name="product")([image, tabular])
    return output(dense_stack(product, s, "joint"), s)


@register("Low-rank bilinear", "Low-rank bilinear pooling (Kim et al., 2017)", ("image", "tabular"),
          flow="CNN -> tanh proj (r) | features -> tanh proj (r) -> elementwise x -> dense -> output",
          merge="rank-r bilinear\n(r factors multiplied)",
          params={"rank": Param(16, "rank r: how many learned image x table factors", low=1, high=256)})
def bilinear(emb, s):
    """A full bilinear layer learns a weight for every (image feature, table value) pair: far too
    many for small data. The low-rank version projects each embedding to r factors, multiplies
    them elementwise and projects the product to the head's width, so every pair still interacts,
    through r learned factors. The rank trades a few broad interactions for many specific ones."""
    rank = s.params["rank"]
    image = dense(pooled_image(emb["image"]), rank, s, "image_factors", activation="tanh")
    tabular = dense(emb["tabular"], rank, s, "tabular_factors", activation="tanh")
    product = keras.layers.Multiply(name="bilinear_product")([image, tabular])
    return output(dense_stack(product, s, "joint"), s)


@register("Gated", "Gated multimodal units (Arevalo et al., 2017)", ("image", "tabular"),
          flow="gate = sigmoid(W[img, tab]); h = gate*img + (1-gate)*tab -> output",
          merge="sigmoid gate\nmixes the branches")
def gated(emb, s):
    """A learned sigmoid gate decides, unit by unit and row by row, how much to take from the
    image embedding versus the tabular one. The gate can lean on whichever branch is more
    reliable for this row."""
    image, tabular = branch_vectors(emb, s)
    both = keras.layers.Concatenate(name="gate_input")([image, tabular])
    gate = dense(both, s.width, s, "gate", activation="sigmoid")
    return output(custom.GatedMix(name="gated_mix")([image, tabular, gate]), s)


@register("Attention over branches", "Transformer-style token fusion", ("image", "tabular"),
          flow="each branch -> token; learned query attends over tokens -> output",
          merge="attention over\nbranch tokens", shows_routing=True, diagram="tokens",
          params={"heads": Param(2, "attention heads (each looks over the branch tokens on its own)",
                                 low=1, high=8)})
def attention(emb, s):
    """Each branch becomes one token; a learned query attends over the tokens, so the model can
    weight branches per row. The attention weights show routing (where the query looked), not
    how much each branch changed the prediction; use the Shapley contributions for that."""
    tokens = [keras.layers.Reshape((1, s.width), name=f"{n}_token")(v)
              for n, v in zip(emb, branch_vectors(emb, s))]
    stacked = keras.layers.Concatenate(axis=1, name="tokens")(tokens)
    attended = custom.BranchAttention(s.width, s.params["heads"], name="branch_attention")(stacked)
    return output(dense_stack(attended, s, "joint"), s)


@register("FiLM", "Feature-wise linear modulation (Perez et al., 2018)", ("image", "tabular"),
          flow="features -> (gamma, beta); CNN map * (1+gamma) + beta -> conv -> pool -> output",
          merge="FiLM: tabular -> γ, β\nmap·(1+γ)+β", diagram="modulation")
def film(emb, s):
    """The tabular features produce a scale (gamma) and shift (beta) for every channel of the CNN
    feature map, so age or sex changes WHAT the network looks for in the image, not just the
    final score."""
    maps = custom.FrameMean(name="image_frame_mean")(emb["image"])
    channels = maps.shape[-1]
    conditioning = dense_stack(emb["tabular"], s, "film")
    gamma = dense(conditioning, channels, s, "film_gamma", activation=None)
    beta = dense(conditioning, channels, s, "film_beta", activation=None)
    x = custom.FeatureModulation(name="modulation")([maps, gamma, beta])
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name="film_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="film_pool")(x)
    return output(dense_stack(x, s, "joint"), s)


@register("Decision averaging", "Late (decision-level) fusion / ensembling", ("image", "tabular"),
          flow="CNN -> output_img | features -> output_tab -> weighted average",
          merge="weighted average\nof branch predictions", diagram="decisions",
          params={"learned_weights": Param(True, "learn the branch weights (off: a plain mean)")})
def late_decision(emb, s):
    """Each branch makes its own prediction; the final logit is a weighted average of the two
    (weights learned, or equal). Robust and easy to read, but it cannot learn interactions
    between the image and the features."""
    logits = [output(v, s, f"{n}_logits") for n, v in zip(emb, branch_vectors(emb, s))]
    return custom.WeightedAverage(s.params["learned_weights"], name="decision_average")(logits)


@register("CNN + LSTM over a sequence", "Recurrent fusion of ordered images", ("sequence", "tabular"),
          flow="each frame -> shared CNN -> LSTM | features -> dense -> concat -> output",
          merge="concatenate\n[LSTM summary | MLP]")
def cnn_lstm(emb, s):
    """A shared CNN encodes each image of an ordered set (frames, time points, slices); an LSTM
    reads the codes in order, so the model can use change over time, which an average of the
    frames throws away. The LSTM summary is then joined with the tabular branch."""
    codes = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D(), name="frame_codes")(
        emb["sequence"])
    summary = keras.layers.LSTM(s.width, name="lstm")(codes)
    joint = keras.layers.Concatenate(name="joint")([summary, dense_stack(emb["tabular"], s, "tabular")])
    return output(dense_stack(joint, s, "joint"), s)


@register("CNN-RNN classifier", "CNN-RNN image classifier: pretrained CNN x LSTMs over pixel rows",
          ("image", "rows", "tabular"),
          flow="CNN -> pool -> proj | grayscale rows -> LSTM -> LSTM -> x ; features -> dense -> concat -> output",
          merge="(CNN pool × row-LSTMs)\nconcat MLP")
def cnn_rnn_classifier(emb, s):
    """The CNN-RNN classifier this project follows: two independent readings of each image. The
    CNN (best a pretrained one: Xception in the original design) gives its pooled features; two
    stacked LSTMs read the grayscale image row by row, top to bottom (each pixel row one timestep),
    catching structure along the image's height. The pooled features, projected to the LSTMs'
    width, are multiplied elementwise with the LSTM summary, so each reading can switch the other's
    features on or off; the table joins before the classifier, as in late concatenation. The LSTMs
    read raw pixel rows, not the CNN's feature map: a pretrained backbone's map has only 3 rows at
    96 px, while the pixels have 96. In the explanations the row reading is a branch of its own
    ("rows"), beside the CNN's "image" branch, and Grad-CAM shows the CNN's part."""
    pooled = dense(pooled_image(emb["image"]), s.width, s, "image_proj")
    rows = keras.layers.LSTM(s.width, return_sequences=True, name="row_lstm_1")(emb["rows"])
    rows = keras.layers.LSTM(s.width, name="row_lstm_2")(rows)
    image = keras.layers.Multiply(name="image_product")([pooled, rows])
    joint = keras.layers.Concatenate(name="joint")([image, dense_stack(emb["tabular"], s, "tabular")])
    return output(dense_stack(joint, s, "joint"), s)


def methods_for(has_images: bool, has_tabular: bool, frames: int) -> list[str]:
    """Methods a dataset can use: sequence methods need 2+ ordered image columns."""
    available = {"image": has_images, "rows": has_images, "tabular": has_tabular,
                 "sequence": has_images and frames > 1}
    return [m.name for m in FUSION_METHODS.values() if all(available[b] for b in m.branches)]
