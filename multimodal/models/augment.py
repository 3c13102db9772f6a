"""Image augmentation in one resampling: a random horizontal flip, rotation and zoom as one affine map.

Keras' RandomFlip, RandomRotation and RandomZoom in a row resample each image twice (rotation,
then zoom) and compute the flipped copy of the whole batch before choosing per image; the step
profile showed the three taking a quarter of a small CNN's training step (bench/PROFILE_step.md).
Composing the three maps and resampling once gives the same distribution of images at less than
half the cost, and one interpolation blurs less than two (docs/ARCHITECTURE.md, "Speed of a step").
Active in training only; the identity when the model predicts.
"""
from __future__ import annotations

import math

import keras
from keras import ops

from multimodal.models.layers import PACKAGE, _require


@keras.saving.register_keras_serializable(package=PACKAGE)
class RandomFlipRotateZoom(keras.layers.Layer):
    """Per image: mirror left-right with probability 1/2, rotate by up to `rotation` of a full turn
    either way, and scale by a factor in [1 - zoom, 1 + zoom] (the same on both axes), all about the
    image centre, in one bilinear resampling with `fill_mode` at the borders. Input (N, H, W, C)
    channels last; output the same shape and dtype."""

    FILL_MODES = ("reflect", "wrap", "constant", "nearest")

    def __init__(self, rotation: float = 0.05, zoom: float = 0.1, flip: bool = True, fill_mode: str = "reflect",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        _require(0.0 <= rotation <= 0.5, "RandomFlipRotateZoom", "a rotation in [0, 0.5] of a turn",
                 rotation=rotation)
        _require(0.0 <= zoom < 1.0, "RandomFlipRotateZoom", "a zoom in [0, 1)", zoom=zoom)
        _require(fill_mode in self.FILL_MODES, "RandomFlipRotateZoom", f"a fill_mode in {self.FILL_MODES}",
                 fill_mode=fill_mode)
        self.rotation, self.zoom, self.flip = float(rotation), float(zoom), bool(flip)
        self.fill_mode, self.seed = fill_mode, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def transforms(self, batch: int, height: int, width: int):
        """(batch, 8) projective rows mapping each output pixel to the input pixel it samples
        (the convention of `keras.ops.image.affine_transform`): input = centre + M (output - centre)
        with M = zoom * rotation * flip."""
        def uniform(low: float, high: float):
            return keras.random.uniform((batch,), low, high, seed=self.seed_generator)
        angle = uniform(-self.rotation, self.rotation) * (2.0 * math.pi)
        scale = uniform(1.0 - self.zoom, 1.0 + self.zoom)
        mirror = ops.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0) if self.flip else ops.ones((batch,))
        cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
        a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        zeros = ops.zeros((batch,))
        return ops.stack([a0, a1, cx - a0 * cx - a1 * cy, b0, b1, cy - b0 * cx - b1 * cy, zeros, zeros], axis=1)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        shape = ops.shape(inputs)
        images = ops.cast(inputs, "float32")   # the resampling kernel's dtype; mixed precision casts back
        moved = ops.image.affine_transform(images, self.transforms(shape[0], inputs.shape[1], inputs.shape[2]),
                                           interpolation="bilinear", fill_mode=self.fill_mode)
        return ops.cast(moved, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotation": self.rotation, "zoom": self.zoom, "flip": self.flip,
                "fill_mode": self.fill_mode, "seed": self.seed}
