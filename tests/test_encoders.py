"""Image encoders: backbones, their preprocessing and minimum sizes; pretrained weights found, loaded,
refused and recorded; frozen and partly unfrozen backbones.

Nothing downloads here: every test runs with an empty KERAS_HOME and a `keras.utils.get_file` that
fails as it does offline; weight files are made locally from backbones set to seeded values.
"""
import dataclasses
import hashlib
import shutil

import h5py
import keras
import numpy as np
import pytest
from keras.src.applications import efficientnet as keras_efficientnet
from keras.src.legacy.saving import legacy_h5_format

from multimodal.core.errors import DataError
from multimodal.models import backbones
from multimodal.models.backbones import ENCODERS, backbone_blocks, build_backbone
from multimodal.models.branches import image_backbones, image_encoder, set_backbone_trainable
from multimodal.models.weights import keras_cache_dir, load_encoder_weights, resolve_weights

SIZES = {"small_cnn": 16, "mobilenet_v2": 32, "efficientnet_b0": 32, "xception": 71}   # the smallest that run


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def values(model: keras.Model) -> list[np.ndarray]:
    return [np.array(v) for v in model.weights]


def known_backbone(encoder: str, seed: int) -> keras.Model:
    """A backbone whose every weight is set from `seed` (variances kept positive)."""
    rng = np.random.default_rng(seed)
    backbone = build_backbone(encoder, SIZES[encoder])
    for v in backbone.weights:
        if "int" in str(v.dtype):
            continue
        shape = tuple(v.shape)
        v.assign(rng.uniform(0.5, 1.5, shape) if "variance" in v.path else rng.normal(0.0, 0.05, shape))
    return backbone


def save_like_keras(backbone: keras.Model, path) -> None:
    """The legacy HDF5 layout Keras' ImageNet files use (Keras 3's save_weights writes .weights.h5 only)."""
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict:
    """MobileNetV2 weights set from a seed: {"h5": in Keras' layout and name, "weights_h5": from save_weights,
    "values": the tensors}."""
    root = tmp_path_factory.mktemp("weights")
    backbone = known_backbone("mobilenet_v2", 0)
    h5, weights_h5 = root / ENCODERS["mobilenet_v2"].imagenet.file, root / "mobilenet_v2.weights.h5"
    save_like_keras(backbone, h5)
    backbone.save_weights(weights_h5)
    return {"h5": h5, "weights_h5": weights_h5, "values": values(backbone)}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """An empty Keras home, and a get_file that fails like Keras' own when there is no network."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def no_network(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(keras.utils, "get_file", no_network)


def assert_same(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


# The registry and the backbones ------------------------------------------------------------------

def test_registry_describes_every_encoder():
    assert list(ENCODERS) == ["small_cnn", "mobilenet_v2", "efficientnet_b0", "xception"]
    assert {k: s.min_size for k, s in ENCODERS.items()} == {"small_cnn": 4, "mobilenet_v2": 32,
                                                            "efficientnet_b0": 32, "xception": 71}
    for spec in ENCODERS.values():
        assert spec.title and len(spec.description) > 80
    assert ENCODERS["small_cnn"].imagenet is None
    # The names Keras caches them under, and the hashes Keras checks.
    assert ENCODERS["mobilenet_v2"].imagenet.file == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    assert ENCODERS["efficientnet_b0"].imagenet.file == "efficientnetb0_notop.h5"
    assert ENCODERS["xception"].imagenet.file == "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert ENCODERS["efficientnet_b0"].imagenet.md5 == "50bc09e76180e00e4465e1a485ddc09d"
    for spec in ENCODERS.values():
        assert spec.imagenet is None or spec.imagenet.origin.endswith("/" + spec.imagenet.file)


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_encoder_preprocesses_inside_and_outputs_last_conv_map_per_frame(encoder, tmp_path):
    size = SIZES[encoder]
    model = image_encoder(encoder, size, frames=1, augment=True)
    backbone = image_backbones(model)[0]
    assert not [layer for layer in model.get_layer("per_frame").layer.layers if isinstance(layer, keras.layers.Lambda)]
    images = np.random.default_rng(0).integers(0, 256, (2, 1, size, size, 3)).astype("uint8")
    maps = np.asarray(model({"images": images}, training=False))
    assert maps.shape == (2, 1, *backbone.output.shape[1:]) and backbone.output.shape[-1] >= 64
    # The same as the family's own preprocess_input then the backbone (EfficientNet: raw 0-255 pixels).
    frames = images.reshape(-1, size, size, 3).astype("float32")
    preprocess = {"efficientnet_b0": lambda x: x, "mobilenet_v2": keras.applications.mobilenet_v2.preprocess_input,
                  "xception": keras.applications.xception.preprocess_input, "small_cnn": lambda x: x / 127.5 - 1.0}
    expected = np.asarray(backbone(preprocess[encoder](frames), training=False)).reshape(maps.shape)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-5)
    # Saves and loads in safe mode (no Lambda, no custom code), same maps.
    model.save(tmp_path / "encoder.keras")
    loaded = keras.saving.load_model(tmp_path / "encoder.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded({"images": images}, training=False)), maps, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("encoder, size", [("small_cnn", 3), ("mobilenet_v2", 31), ("efficientnet_b0", 24),
                                           ("xception", 64)])
def test_too_small_images_are_refused_with_the_minimum(encoder, size):
    minimum = ENCODERS[encoder].min_size
    with pytest.raises(DataError, match=f"'{encoder}' needs images of at least {minimum} px.* is {size} px"):
        image_encoder(encoder, size, 1, False)


# Finding and loading weights ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["h5", "weights_h5"])
def test_a_given_file_loads_exactly_its_tensors_and_is_recorded(weight_files, kind):
    path = weight_files[kind]
    weights = resolve_weights("mobilenet_v2", path)
    assert (weights.source, weights.path, weights.notice) == ("file", path, "")
    assert weights.record() == {"source": "file", "sha256": sha256(path)}
    model = image_encoder("mobilenet_v2", 32, 1, False, weights=weights)
    assert_same(values(image_backbones(model)[0]), weight_files["values"])


def test_keras_cache_is_found_under_the_name_keras_uses(weight_files, tmp_path):
    cache = tmp_path / "keras_home" / "models"
    assert keras_cache_dir() == cache
    cache.mkdir(parents=True)
    for encoder in ("efficientnet_b0", "xception", "mobilenet_v2"):
        assert resolve_weights(encoder).source == "none"
        shutil.copy(weight_files["h5"], cache / ENCODERS[encoder].imagenet.file)
        weights = resolve_weights(encoder)   # the network is never tried: the cache comes first
        assert weights.path == cache / ENCODERS[encoder].imagenet.file
        assert weights.record() == {"source": "cache", "sha256": sha256(weight_files["h5"])}
    # Building without resolved weights looks in the cache too (never the network).
    model = image_encoder("mobilenet_v2", 32, 1, False)
    assert_same(values(image_backbones(model)[0]), weight_files["values"])


def test_download_goes_through_keras_get_file_into_its_cache(weight_files, monkeypatch, tmp_path):
    calls = []

    def fake_get_file(fname, origin, **kwargs):
        calls.append((fname, origin, kwargs))
        target = tmp_path / "keras_home" / kwargs["cache_subdir"] / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(weight_files["h5"], target)
        return str(target)
    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    weights = resolve_weights("mobilenet_v2")
    spec = ENCODERS["mobilenet_v2"].imagenet
    assert calls == [(spec.file, spec.origin, {"cache_subdir": "models", "cache_dir": str(tmp_path / "keras_home"),
                                               "file_hash": spec.md5})]
    assert weights.record() == {"source": "download", "sha256": sha256(weight_files["h5"])}
    assert resolve_weights("mobilenet_v2").source == "cache"   # next time, from Keras' cache


def test_offline_without_weights_says_so_then_random_init_or_stop(caplog):
    missing = f"No ImageNet weights for mobilenet_v2: not in {keras_cache_dir()} and no network. "
    notice = missing + "Training from random init instead; give a weights file to start from pretrained ones."
    weights = resolve_weights("mobilenet_v2")
    assert (weights.source, weights.path, weights.notice) == ("none", None, notice)
    assert weights.record() == {"source": "none", "sha256": None} and notice in caplog.text
    model = image_encoder("mobilenet_v2", 32, 1, False, weights=weights)   # random init proceeds
    assert np.isfinite(np.asarray(model({"images": np.zeros((1, 1, 32, 32, 3), "uint8")}))).all()
    with pytest.raises(DataError) as stop:
        resolve_weights("mobilenet_v2", on_missing="stop")
    assert str(stop.value) == missing + "Give a weights file, connect to the network, or choose to train from random init."
    assert "no network" not in resolve_weights("xception", download=False).notice   # cache-only lookups say less
    assert resolve_weights("small_cnn") == resolve_weights("small_cnn", on_missing="stop")   # nothing to find
    assert resolve_weights("small_cnn").record() == {"source": "none", "sha256": None}


def test_wrong_files_are_refused_with_their_name(weight_files, tmp_path):
    for given in (weight_files["h5"], weight_files["weights_h5"]):   # another architecture's weights
        weights = resolve_weights("xception", given)
        with pytest.raises(DataError, match=rf"{given.name} does not hold Xception weights \(.*\)\. Expected Xception"):
            image_encoder("xception", 71, 1, False, weights=weights)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(weight_files["h5"].read_bytes()[:100_000])
    png = tmp_path / "photo.h5"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    for bad, why in ((truncated, "truncated"), (png, "signature")):
        with pytest.raises(DataError, match=rf"{bad.name} is not a readable HDF5 weights file \(.*{why}.*\)\. Expected"):
            resolve_weights("mobilenet_v2", bad)
    with pytest.raises(DataError, match="photo.png is not an HDF5 weights file"):
        resolve_weights("mobilenet_v2", shutil.copy(png, tmp_path / "photo.png"))
    with pytest.raises(DataError, match="missing.h5 not found"):
        resolve_weights("mobilenet_v2", tmp_path / "missing.h5")
    with pytest.raises(DataError, match="'small_cnn' takes no pretrained weights"):
        resolve_weights("small_cnn", weight_files["h5"])
    with pytest.raises(ValueError, match="on_missing"):
        resolve_weights("mobilenet_v2", on_missing="ask")


def test_keras_efficientnet_file_gives_the_model_keras_builds_with_it(monkeypatch, tmp_path):
    """Keras' ImageNet EfficientNet adds an input scale when built with weights="imagenet"; loading
    that very file (recognised by Keras' hash) into our weights=None build folds the scale in."""
    source = known_backbone("efficientnet_b0", 7)
    norm = next(layer for layer in source.layers if isinstance(layer, keras.layers.Normalization))
    norm.adapt_mean.assign([0.485, 0.456, 0.406])
    norm.adapt_variance.assign(np.square([0.229, 0.224, 0.225]))
    path = tmp_path / ENCODERS["efficientnet_b0"].imagenet.file
    save_like_keras(source, path)
    spec = ENCODERS["efficientnet_b0"]
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    origin = spec.imagenet.origin
    release = dataclasses.replace(spec, imagenet=dataclasses.replace(spec.imagenet, source=lambda: (origin, md5)))
    monkeypatch.setitem(backbones.ENCODERS, "efficientnet_b0", release)
    monkeypatch.setattr(keras_efficientnet.file_utils, "get_file", lambda *args, **kwargs: str(path))
    reference = keras.applications.EfficientNetB0(include_top=False, weights="imagenet", input_shape=(32, 32, 3))

    def stem(model: keras.Model) -> keras.Model:
        return keras.Model(model.input, model.get_layer("stem_conv").output)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    weights = resolve_weights("efficientnet_b0", path)
    assert weights.keras_release
    ours = build_backbone("efficientnet_b0", 32)
    load_encoder_weights(ours, weights)
    np.testing.assert_allclose(np.asarray(stem(ours)(pixels)), np.asarray(stem(reference)(pixels)), rtol=1e-4, atol=1e-4)
    # The scale went into the Normalization's variance; every other tensor is the file's.
    ours_norm = next(layer for layer in ours.layers if isinstance(layer, keras.layers.Normalization))
    variance = [v is ours_norm.adapt_variance for v in ours.weights].index(True)
    np.testing.assert_allclose(values(ours)[variance], np.power([0.229, 0.224, 0.225], 3), rtol=1e-6)
    assert_same(values(ours)[:variance] + values(ours)[variance + 1:],
                values(source)[:variance] + values(source)[variance + 1:])


# Freezing and fine-tuning ------------------------------------------------------------------------

def test_blocks_follow_keras_layer_names():
    assert [name for name, _ in backbone_blocks(build_backbone("small_cnn", 16))] == ["stem", "conv1", "conv2", "conv3"]
    mobilenet = backbone_blocks(build_backbone("mobilenet_v2", 32))
    assert [name for name, _ in mobilenet] == ["stem"] + [f"block_{i}" for i in range(1, 17)]
    assert [layer.name for layer in mobilenet[-1][1]][-3:] == ["Conv_1", "Conv_1_bn", "out_relu"]  # top conv: last block
    xception = dict(backbone_blocks(build_backbone("xception", 71)))
    assert list(xception) == ["stem"] + [f"block{i}" for i in range(1, 15)]
    residual = [layer for layer in xception["block2"] if isinstance(layer, keras.layers.Conv2D)
                and not layer.name.startswith("block")]
    assert len(residual) == 1   # the unnamed residual conv joins the block it bypasses


def test_frozen_backbone_then_top_blocks_unfrozen_with_batch_norm_in_inference_mode():
    model = image_encoder("mobilenet_v2", 32, 1, False, trainable_backbone=False)
    backbone = image_backbones(model)[0]
    assert backbone.weights and not model.trainable_weights
    blocks = backbone_blocks(backbone)
    set_backbone_trainable(model, 2)
    top = {id(v) for _, layers in blocks[-2:] for layer in layers for v in layer.trainable_weights
           if not isinstance(layer, keras.layers.BatchNormalization)}
    assert top and {id(v) for v in model.trainable_weights} == top
    assert not any(layer.trainable for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization))
    # One training step: the frozen blocks and every BatchNormalization statistic stay put.
    before = {v.path: np.array(v) for v in backbone.weights}
    x = {"images": np.random.default_rng(0).integers(0, 256, (4, 1, 32, 32, 3)).astype("uint8")}
    # A random-init MobileNetV2 with inference-mode BN has vanishing outputs (gradients ~1e-14): Adam's
    # first step moves each weight by about the learning rate whatever the gradient's scale.
    model.compile(optimizer=keras.optimizers.Adam(0.01, epsilon=1e-30), loss="mse")
    model.train_on_batch(x, np.ones((4, *model.output.shape[1:]), "float32"))
    changed = {v.path for v in backbone.weights if not np.array_equal(before[v.path], np.asarray(v))}
    assert changed == {v.path for v in model.trainable_weights}
    set_backbone_trainable(model, "all")
    assert len(model.trainable_weights) == sum(len(layer.trainable_weights) for layer in backbone.layers
                                               if not isinstance(layer, keras.layers.BatchNormalization))
    set_backbone_trainable(model, "all", freeze_batch_norm=False)   # e.g. a random-init backbone
    assert len(model.trainable_weights) == len(backbone.trainable_weights) > 0
    assert all(layer.trainable for layer in backbone.layers)
    set_backbone_trainable(model, 0)
    assert not model.trainable_weights
    for bad in (-1, "top", 1.5, True):
        with pytest.raises(ValueError, match="unfreeze"):
            set_backbone_trainable(model, bad)


def test_the_catalog_names_the_files_keras_downloads():
    """ENCODERS writes Xception's file name out (the catalog imports without Keras); it must stay
    the end of the address Keras downloads from, and every origin must end with its file."""
    from keras.src.applications import xception
    assert xception.WEIGHTS_PATH_NO_TOP.endswith("/" + ENCODERS["xception"].imagenet.file)
    for name, spec in ENCODERS.items():
        if spec.imagenet is not None:
            assert spec.imagenet.origin.endswith(spec.imagenet.file), name
