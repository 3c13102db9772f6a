"""Image backbones: the per-frame CNN an image branch is built on, and the registry of them.

A backbone maps one preprocessed frame (S, S, 3) to its last conv map (h, w, c). The
keras.applications ones are built with `weights=None` (no network at build time, the same
architecture whatever the weights' source); their ImageNet weights are found and loaded by
`weights.py`. `ENCODERS` is the one home of what each encoder is, needs and is good for.

Importing this catalog does not import Keras (LazyModules, core/lazy.py): the Model page and the
CLI's argument handling read it before any model exists.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from multimodal.core.errors import DataError
from multimodal.core.lazy import LazyModule

keras = LazyModule("keras")
# Keras keeps its weights' addresses and hashes as module constants of these (private) modules:
# reuse them so the addresses and hashes stay exactly those Keras downloads and caches.
efficientnet = LazyModule("keras.src.applications.efficientnet")
mobilenet_v2 = LazyModule("keras.src.applications.mobilenet_v2")
xception = LazyModule("keras.src.applications.xception")


@dataclass(frozen=True)
class KerasWeights:
    """Keras' ImageNet no-top weights for a backbone, as `keras.utils.get_file` fetches them."""
    file: str              # name in Keras' cache: $KERAS_HOME/models/<file>
    # () -> (the URL Keras downloads it from, the md5 Keras checks the download against or None
    # where Keras publishes none), read from Keras' modules when first needed (a download).
    source: Callable[[], tuple[str, str | None]]

    @property
    def origin(self) -> str:
        return self.source()[0]

    @property
    def md5(self) -> str | None:
        return self.source()[1]


@dataclass(frozen=True)
class EncoderSpec:
    title: str
    builder: Callable[[int], keras.Model]   # image size -> backbone (weights=None)
    min_size: int                           # smallest image side (px) the backbone accepts
    description: str                        # what it is and when to choose it
    # (scale, offset) taking 0-255 pixels to the family's input range, i.e. its
    # `preprocess_input` as a Rescaling layer; None when the backbone rescales by itself.
    rescale: tuple[float, float] | None
    imagenet: KerasWeights | None = None
    # Fix-up after loading Keras' own ImageNet file into a backbone built with weights=None.
    after_imagenet_load: Callable[[keras.Model], None] | None = None


def _small_cnn(image_size: int, filters: tuple[int, ...] = (16, 32, 64)) -> keras.Model:
    inputs = keras.Input((image_size, image_size, 3), name="frame")
    x = inputs
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        if i < len(filters) - 1:
            x = keras.layers.MaxPooling2D(name=f"pool{i + 1}")(x)
    return keras.Model(inputs, x, name="small_cnn")


def _mobilenet_v2(image_size: int) -> keras.Model:
    return keras.applications.MobileNetV2(input_shape=(image_size, image_size, 3), include_top=False, weights=None)


def _efficientnet_b0(image_size: int) -> keras.Model:
    return keras.applications.EfficientNetB0(input_shape=(image_size, image_size, 3), include_top=False, weights=None)


def _xception(image_size: int) -> keras.Model:
    return keras.applications.Xception(input_shape=(image_size, image_size, 3), include_top=False, weights=None)


def _efficientnet_imagenet_scale(backbone: keras.Model) -> None:
    """Built with weights="imagenet", EfficientNet adds a Rescaling(1/sqrt(stddev)) after its input
    Normalization (the original models divide by the variance, see Keras' efficientnet.py); built
    with weights=None it does not. Fold that scale into the Normalization's variance instead:
    (x - mean) / sqrt(var) / sqrt(std) == (x - mean) / sqrt(var * std), so the model is the same."""
    norm = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization))
    norm.adapt_variance.assign(norm.adapt_variance * np.asarray(efficientnet.IMAGENET_STDDEV_RGB, "float32"))
    norm.finalize_state()  # the layer caches its mean/variance tensors


# MobileNetV2: Keras has a file per input size (96-224 px); the 224 px one serves every size here.
_MOBILENET_V2_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
_XCEPTION_FILE = "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"   # the end of xception.WEIGHTS_PATH_NO_TOP
_EFFICIENTNET_B0_FILE = "efficientnetb0_notop.h5"
_TF_MODE = (1.0 / 127.5, -1.0)  # preprocess_input(mode="tf"): [0, 255] -> [-1, 1]

ENCODERS: dict[str, EncoderSpec] = {
    "small_cnn": EncoderSpec(
        "Small CNN", _small_cnn, 4,
        "3 conv blocks (16-32-64 filters), random init, about 23k parameters. Trains in seconds on a CPU. "
        "The default, and the choice when no pretrained weights are at hand or the images are simple "
        "(shapes, colours, synthetic samples).",
        # Centred inputs ([-1, 1]) train markedly faster than [0, 1] for the small CNN from scratch.
        rescale=_TF_MODE),
    "mobilenet_v2": EncoderSpec(
        "MobileNetV2", _mobilenet_v2, 32,
        "ImageNet-pretrained, 2.3M parameters. The light pretrained backbone: the first choice for real photos "
        "on a CPU. It pays off with its ImageNet weights; from random init it learns slowly on a few hundred "
        "rows. Images of 32 px and up (96 px and more work better).",
        rescale=_TF_MODE,
        imagenet=KerasWeights(_MOBILENET_V2_FILE, lambda: (mobilenet_v2.BASE_WEIGHT_PATH + _MOBILENET_V2_FILE, None))),
    "efficientnet_b0": EncoderSpec(
        "EfficientNetB0", _efficientnet_b0, 32,
        "ImageNet-pretrained, 4.0M parameters. More accurate than MobileNetV2 on ImageNet for about twice the "
        "compute: for real photos when a few more seconds per epoch are fine. Images of 32 px and up.",
        rescale=None,  # the network rescales and normalizes 0-255 pixels itself
        imagenet=KerasWeights(_EFFICIENTNET_B0_FILE, lambda: (efficientnet.BASE_WEIGHTS_PATH + _EFFICIENTNET_B0_FILE,
                                                              efficientnet.WEIGHTS_HASHES["b0"][1])),
        after_imagenet_load=_efficientnet_imagenet_scale),
    "xception": EncoderSpec(
        "Xception", _xception, 71,
        "ImageNet-pretrained, 20.9M parameters: the backbone of the CNN-RNN classifier this project follows. "
        "The strongest features and the heaviest on a CPU (several times MobileNetV2's time per epoch). "
        "Needs images of at least 71 px.",
        rescale=_TF_MODE,
        # Keras writes this hash inline in xception.py (not a constant), so it is repeated here.
        imagenet=KerasWeights(_XCEPTION_FILE, lambda: (xception.WEIGHTS_PATH_NO_TOP, "b0042744bf5b25fce3cb969f33bebb97"))),
}


def encoder_spec(encoder: str) -> EncoderSpec:
    if encoder not in ENCODERS:
        raise ValueError(f"unknown image encoder '{encoder}'; choose one of {sorted(ENCODERS)}")
    return ENCODERS[encoder]


def build_backbone(encoder: str, image_size: int) -> keras.Model:
    """The encoder's backbone for square frames of `image_size` px, with random (untrained) weights."""
    spec = encoder_spec(encoder)
    if image_size < spec.min_size:
        raise DataError(f"image encoder '{encoder}' needs images of at least {spec.min_size} px and the image size "
                        f"is {image_size} px; pick a larger image size or another encoder")
    return spec.builder(image_size)


# A block's name as Keras' applications write it: block1.. (Xception), block_1.. (MobileNetV2),
# block1a.. (EfficientNet); conv1.. for the small CNN. Followed by '_' or the end of the name.
_BLOCK = re.compile(r"^(block_?\d+[a-z]?|conv\d+)(?=_|$)")


def backbone_blocks(backbone: keras.Model) -> list[tuple[str, list[keras.layers.Layer]]]:
    """The backbone's layers grouped into blocks, input to output.

    Layers before the first named block form "stem"; a layer without a block name (Xception's
    residual convs, the top conv) joins the block before it.
    """
    blocks: list[tuple[str, list[keras.layers.Layer]]] = [("stem", [])]
    for layer in backbone.layers:
        match = _BLOCK.match(layer.name)
        if match and match.group(1) != blocks[-1][0]:
            blocks.append((match.group(1), []))
        blocks[-1][1].append(layer)
    return [(name, layers) for name, layers in blocks if layers]


def set_blocks_trainable(backbone: keras.Model, unfreeze: str | int, freeze_batch_norm: bool = True) -> None:
    """Make the top `unfreeze` blocks trainable ("all": every block; 0: none) and freeze the rest.

    freeze_batch_norm: keep every BatchNormalization layer non-trainable, which in Keras 3 also
    runs it in inference mode (its ImageNet statistics stay put while the other weights are
    fine-tuned on a few hundred rows: the usual Keras transfer-learning practice). A random-init
    backbone has no statistics worth keeping: pass False for it.
    """
    blocks = backbone_blocks(backbone)
    if unfreeze == "all":
        count = len(blocks)
    elif isinstance(unfreeze, int) and not isinstance(unfreeze, bool) and unfreeze >= 0:
        count = min(unfreeze, len(blocks))
    else:
        raise ValueError(f"unfreeze must be 'all' or a number of top blocks (0 or more), not {unfreeze!r}")
    backbone.trainable = count > 0
    for i, (_, layers) in enumerate(blocks):
        for layer in layers:
            layer.trainable = i >= len(blocks) - count
    if freeze_batch_norm:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
