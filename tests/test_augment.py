"""RandomFlipRotateZoom: the identity at inference and for a null map in training, flips that are exact
mirrors, the (batch, 8) matrices of `transforms()` (centre fixed, scale, angle and flip within their ranges),
resampling where `transforms()` says, seeds, argument checks, config and .keras round trips, mixed precision."""
import math
import re

import keras
import numpy as np
import pytest

from multimodal.models.augment import RandomFlipRotateZoom
from multimodal.runs.run import load_model_file


def images(n: int, size: int = 16, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, channels)).astype("float32")


def ramp(n: int, size: int = 32) -> np.ndarray:
    """n copies of a linear, non-symmetric image f(x, y) = (x + 2y) / (3 (size - 1)), one channel."""
    y, x = np.mgrid[0:size, 0:size].astype("float32")
    return np.broadcast_to(((x + 2 * y) / (3 * (size - 1)))[None, :, :, None], (n, size, size, 1)).copy()


def out(layer, x, training=True) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer(x, training=training))


def test_inference_is_the_identity():
    x = images(4)
    layer = RandomFlipRotateZoom(rotation=0.3, zoom=0.5, flip=True, seed=1)
    np.testing.assert_array_equal(out(layer, x, training=False), x)
    np.testing.assert_array_equal(out(layer, x, training=None), x)


def test_a_null_map_in_training_keeps_the_image_shape_and_dtype():
    x = images(5, size=12, channels=2)
    y = RandomFlipRotateZoom(rotation=0.0, zoom=0.0, flip=False, seed=2)(x, training=True)
    assert tuple(y.shape) == x.shape and keras.backend.standardize_dtype(y.dtype) == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), x, atol=1e-5)


def test_flip_only_gives_the_image_or_its_mirror_and_both_occur():
    x = images(64, size=10, seed=3)
    y = out(RandomFlipRotateZoom(rotation=0.0, zoom=0.0, flip=True, seed=4), x)
    same = np.all(np.abs(y - x) <= 1e-5, axis=(1, 2, 3))
    mirrored = np.all(np.abs(y - np.flip(x, axis=2)) <= 1e-5, axis=(1, 2, 3))
    assert np.all(same | mirrored), f"images neither kept nor mirrored: {np.flatnonzero(~(same | mirrored))}"
    assert same.any() and mirrored.any()


@pytest.mark.parametrize("flip", [True, False])
def test_transforms_fix_the_centre_and_stay_within_scale_angle_and_flip_ranges(flip):
    rotation, zoom, n, h, w = 0.1, 0.2, 500, 33, 33
    t = keras.ops.convert_to_numpy(RandomFlipRotateZoom(rotation, zoom, flip, seed=5).transforms(n, h, w))
    assert t.shape == (n, 8)
    a0, a1, a2, b0, b1, b2, c0, c1 = t.T.astype("float64")
    np.testing.assert_array_equal(c0, 0.0)
    np.testing.assert_array_equal(c1, 0.0)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    np.testing.assert_allclose(a0 * cx + a1 * cy + a2, cx, atol=1e-4)
    np.testing.assert_allclose(b0 * cx + b1 * cy + b2, cy, atol=1e-4)
    det = a0 * b1 - a1 * b0
    scale = np.sqrt(np.abs(det))
    assert np.all(scale >= 1 - zoom - 1e-5) and np.all(scale <= 1 + zoom + 1e-5)
    assert scale.min() < 1 - 0.8 * zoom and scale.max() > 1 + 0.8 * zoom     # the range is used
    mirror = np.sign(det)
    angle = np.arctan2(b0 * mirror, b1)        # M = scale * R(angle) * diag(mirror, 1)
    np.testing.assert_allclose(np.hypot(a0, b0), scale, atol=1e-5)       # columns of R(angle) * scale
    np.testing.assert_allclose(np.hypot(a1, b1), scale, atol=1e-5)
    np.testing.assert_allclose(a1, -np.sin(angle) * scale, atol=1e-5)
    bound = rotation * 2 * math.pi
    assert np.all(np.abs(angle) <= bound + 1e-5)
    assert angle.min() < -0.8 * bound and angle.max() > 0.8 * bound
    negative = np.mean(det < 0)
    if flip:
        assert 0.35 <= negative <= 0.65, negative
    else:
        assert negative == 0.0


def test_rotation_moves_pixels_where_transforms_says_and_reflect_keeps_the_mean():
    x, size = ramp(16), 32
    kwargs = dict(rotation=0.25, zoom=0.0, flip=False, fill_mode="reflect", seed=6)
    y = out(RandomFlipRotateZoom(**kwargs), x)
    t = keras.ops.convert_to_numpy(RandomFlipRotateZoom(**kwargs).transforms(16, size, size))  # same draws
    angles = np.degrees(np.arctan2(t[:, 3], t[:, 4]))
    change = np.abs(y - x).mean(axis=(1, 2, 3))
    turned = np.abs(angles) > 10
    assert turned.sum() >= 8 and np.all(change[turned] > 0.02), (angles, change)
    # A linear image is odd about the centre, and so is its reflect extension: the mean stays 1/2.
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-3)
    # Where the sampled point lies inside the image, bilinear interpolation of a linear image is exact.
    py, px = np.mgrid[0:size, 0:size].astype("float64")
    for row, image in zip(t.astype("float64"), y):
        sx = row[0] * px + row[1] * py + row[2]
        sy = row[3] * px + row[4] * py + row[5]
        inside = (sx >= 0) & (sx <= size - 1) & (sy >= 0) & (sy <= size - 1)
        assert inside.mean() > 0.4
        np.testing.assert_allclose(image[..., 0][inside], ((sx + 2 * sy) / (3 * (size - 1)))[inside], atol=1e-4)


def test_the_same_seed_gives_the_same_images_and_another_seed_other_images():
    x = images(8, seed=7)
    first = out(RandomFlipRotateZoom(seed=11), x)
    np.testing.assert_array_equal(out(RandomFlipRotateZoom(seed=11), x), first)
    assert np.abs(out(RandomFlipRotateZoom(seed=12), x) - first).max() > 1e-2


@pytest.mark.parametrize("kwargs, received", [
    ({"rotation": 0.7}, "rotation=0.7"), ({"rotation": -0.1}, "rotation=-0.1"), ({"zoom": 1.0}, "zoom=1.0"),
    ({"zoom": -0.1}, "zoom=-0.1"), ({"fill_mode": "mirror"}, "fill_mode='mirror'")])
def test_arguments_are_checked_and_the_message_names_layer_and_value(kwargs, received):
    with pytest.raises(ValueError, match=re.escape("RandomFlipRotateZoom: expected ") + ".*"
                       + re.escape(f"Received: {received}")):
        RandomFlipRotateZoom(**kwargs)


def test_config_round_trips_and_a_saved_model_loads_in_safe_mode_and_predicts_the_same(tmp_path):
    layer = RandomFlipRotateZoom(rotation=0.125, zoom=0.3, flip=False, fill_mode="wrap", seed=9, name="aug")
    again = RandomFlipRotateZoom.from_config(layer.get_config())
    for key, value in {"rotation": 0.125, "zoom": 0.3, "flip": False, "fill_mode": "wrap", "seed": 9,
                       "name": "aug"}.items():
        assert again.get_config()[key] == value, key
    x = images(6, seed=10)
    np.testing.assert_array_equal(out(again, x), out(layer, x))      # same seed, same draws

    inputs = keras.Input((16, 16, 3))
    h = RandomFlipRotateZoom(rotation=0.1, zoom=0.1, seed=3, name="augment")(inputs)
    h = keras.layers.Conv2D(2, 3, name="conv")(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(h)))
    model.save(tmp_path / "aug.keras")
    loaded = load_model_file(tmp_path / "aug.keras")
    restored = loaded.get_layer("augment")
    assert isinstance(restored, RandomFlipRotateZoom)
    assert (restored.rotation, restored.zoom, restored.flip, restored.fill_mode, restored.seed) == (
        0.1, 0.1, True, "reflect", 3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)),
                               keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-6)


def test_mixed_bfloat16_gives_bfloat16_images_of_the_same_shape():
    layer = RandomFlipRotateZoom(seed=13, dtype="mixed_bfloat16")
    x = images(3, size=8)
    y = layer(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16" and tuple(y.shape) == x.shape
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))))
