"""The comparison's fast modes: the feature-map cache, heads trained on cached maps, stage-wise encoders."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from multimodal.core.comparison import ComparisonOptions
from multimodal.core.errors import DataError
from multimodal.data.dataset import load_dataset
from multimodal.data.inputs import encode_target, model_inputs
from multimodal.models.assembly import encoders_of, head_of, select_inputs
from multimodal.models.batches import make_dataset, take
from multimodal.models.branches import image_encoder
from multimodal.models.fusion import FUSION_METHODS
from multimodal.models.weights import WeightsSource
from multimodal.runs.run import load_run, predict
from multimodal.train.crossval import compare_with_baselines, cv_splits
from multimodal.train.feature_cache import FeatureCache, predict_maps, weights_digest
from multimodal.train.stagewise import FastFolds, default_mode, reads_images, resolve_mode

from support.fast_modes import SIZE, check_kept_models, tiny_config


def small_encoder(seed: int = 0, size: int = SIZE) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return image_encoder("small_cnn", size, 1, augment=False, weights=WeightsSource("small_cnn", "none"))


def never(images):
    raise AssertionError("a cache hit must not compute")


def test_a_hit_gives_identical_maps_and_a_changed_image_weights_or_size_misses(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 1, SIZE, SIZE, 3), dtype=np.uint8)
    encoder = small_encoder()
    sha = weights_digest(encoder)
    cache = FeatureCache(tmp_path)

    def maps(x, digest=sha, compute=lambda x: predict_maps(encoder, x)):
        return cache.maps(x, encoder_name="small_cnn", weights_sha256=digest, compute=compute)

    first = maps(images)
    assert (cache.hits, cache.misses) == (0, 5)
    np.testing.assert_allclose(first, predict_maps(encoder, images), rtol=1e-6, atol=1e-6)
    again = maps(images, compute=never)
    assert np.array_equal(again, first) and again.dtype == np.float32 and (cache.hits, cache.misses) == (5, 5)

    changed = images.copy()
    changed[2, 0, 3, 4] = 255 - changed[2, 0, 3, 4]      # one pixel of one image
    maps(changed)
    assert (cache.hits, cache.misses) == (9, 6)

    assert weights_digest(small_encoder()) == sha          # the same weights, built again: the same key
    other = small_encoder(seed=1)
    assert weights_digest(other) != sha                    # other weights: every image misses
    maps(images, weights_digest(other), lambda x: predict_maps(other, x))
    assert (cache.hits, cache.misses) == (9, 11)

    # Another image size: another folder, even though the small CNN's weights do not depend on it.
    bigger = small_encoder(size=20)
    assert weights_digest(bigger) == sha
    maps(rng.integers(0, 256, (5, 1, 20, 20, 3), dtype=np.uint8), compute=lambda x: predict_maps(bigger, x))
    assert (cache.hits, cache.misses) == (9, 16)
    assert cache.folder("small_cnn", 20, sha) != cache.folder("small_cnn", SIZE, sha)

    # A new cache on the same folder reads the disk (once: then from memory); a damaged entry is computed again.
    entry = next(cache.folder("small_cnn", SIZE, sha).glob("*.npy"))
    entry.write_bytes(b"damaged")
    cache = FeatureCache(tmp_path)
    np.testing.assert_array_equal(maps(images), first)
    assert (cache.hits, cache.misses) == (4, 1)
    for path in cache.folder("small_cnn", SIZE, sha).glob("*.npy"):
        path.unlink()                                      # gone from disk: still in this cache's memory
    np.testing.assert_array_equal(maps(images, compute=never), first)

    in_memory = FeatureCache(None)                         # a comparison without a cache folder
    assert np.array_equal(in_memory.maps(images, encoder_name="small_cnn", weights_sha256=sha,
                                         compute=lambda x: predict_maps(encoder, x)), first)
    assert np.array_equal(in_memory.maps(images, encoder_name="small_cnn", weights_sha256=sha, compute=never), first)
    assert (in_memory.hits, in_memory.misses) == (5, 5)
    with pytest.raises(ValueError, match="in memory only"):
        in_memory.folder("small_cnn", SIZE, sha)


def test_default_modes_and_a_bad_mode():
    assert default_mode("small_cnn") == "stagewise"
    assert default_mode("mobilenet_v2") == "frozen"
    assert default_mode("mobilenet_v2", weights_at_hand=False) == "stagewise"
    config = tiny_config("x.csv")
    assert resolve_mode(None, config, images=False) == ("stagewise", None)
    assert resolve_mode("end_to_end", config, images=True) == ("end_to_end", None)
    with pytest.raises(DataError, match="unknown comparison mode"):
        resolve_mode("fastest", config, images=True)


def fast_folds(csv: Path, mode: str, tmp_path: Path, **settings) -> tuple[FastFolds, dict]:
    config = tiny_config(csv, **settings)
    ds = load_dataset(csv)
    inputs = model_inputs(ds.frame, ds.root, ds.features, SIZE)
    _, weights = resolve_mode(mode, config, images=True)
    # The first fold is KEPT_FOLD: its heads are saved whole, in their run folders and under kept/.
    fast = FastFolds(mode, config, ds, inputs, weights, FeatureCache(tmp_path / "cache"), keep_dir=tmp_path / "kept")
    return fast, cv_splits(ds, 2, 1, config.seed, config.val_fraction)[0]


def check_saved_model(run_dir: Path, summary: dict, fast: FastFolds, split: dict) -> None:
    """The saved model loads (safe mode), holds the frozen encoder, and predicts from raw inputs as the
    in-memory head did on the cached maps."""
    ds, inputs = fast.ds, fast.inputs
    maps = fast.cache.maps(inputs["images"], encoder_name="small_cnn",
                           weights_sha256=summary["frozen_encoder"]["weights_sha256"], compute=never)
    run = load_run(run_dir)                                # load_model_file: safe mode
    assert run.config["model"]["augment"] is False
    image = next(e for b, e in encoders_of(run.model).items() if b in ("image", "sequence"))
    assert weights_digest(image) == summary["frozen_encoder"]["weights_sha256"]
    raw = predict(run, inputs)                             # the whole model, from raw images
    embedded = {b: maps if b in ("image", "sequence") else
                np.asarray(e.predict(make_dataset(select_inputs(e, inputs), None, 64), verbose=0))
                for b, e in encoders_of(run.model).items()}
    np.testing.assert_allclose(raw, np.asarray(head_of(run.model)(embedded, training=False)), rtol=1e-4, atol=1e-4)
    y = encode_target(ds.frame[ds.target], ds.task, ds.classes)
    y = y.reshape(-1, 1) if ds.task == "regression" else y
    test = np.asarray(split["test"])
    named = select_inputs(run.model, inputs)
    loaded = run.model.evaluate(make_dataset(take(named, test), y[test], 16), verbose=0, return_dict=True)
    # Not the loss: a frozen Keras 3 model adds no weight penalty to it, the training model did.
    metrics = {f"test_{k}": v for k, v in loaded.items() if k != "loss"}
    assert metrics and metrics == pytest.approx({k: summary["metrics"][k] for k in metrics}, rel=1e-4, abs=1e-5)


def test_every_registered_image_method_trains_on_cached_maps(tiny_samples, tmp_path):
    methods = [name for name in FUSION_METHODS if reads_images(name)]
    assert {"image_only", "late_concat", "film", "cnn_lstm"} <= set(methods)
    by_data = {"skin_lesions": [m for m in methods if "sequence" not in FUSION_METHODS[m].branches],
               "growth_sequences": [m for m in methods if "sequence" in FUSION_METHODS[m].branches]}
    checked = set()   # the saved model is checked once per set of branches (image, +tabular, +rows, sequence)
    for sample, names in by_data.items():
        fast, split = fast_folds(tiny_samples[sample], "frozen", tmp_path / sample)
        for i, name in enumerate(names):
            run_dir = tmp_path / sample / name
            summary = fast.fold_trainer(name)(replace(fast.config, model=replace(fast.config.model, arch=name)),
                                              run_dir, split)
            # The first head computes the maps, every other one reads them all from the cache.
            assert summary["maps"]["computed"] == (len(fast.ds.frame) if i == 0 else 0), name
            assert summary["maps"]["read"] == (0 if i == 0 else len(fast.ds.frame)), name
            assert summary["frozen_encoder"]["mode"] == "frozen" and summary["epochs_run"] == 1
            assert np.isfinite(summary["metrics"]["test_loss"]), name
            if FUSION_METHODS[name].branches not in checked:
                checked.add(FUSION_METHODS[name].branches)
                check_saved_model(run_dir, summary, fast, split)
    assert len(checked) >= 4


@pytest.mark.parametrize("batched", [True, False])   # large images: one ordinary run per fold
def test_stage_one_trains_on_the_folds_training_rows_and_the_heads_reuse_its_maps(batched, tiny_samples, tmp_path):
    fast, split = fast_folds(tiny_samples["skin_lesions"], "stagewise", tmp_path)
    fast.stage1_batched_pixels = SIZE * SIZE if batched else 0
    assert (fast.folds_trainer("image_only") is not None) is batched
    config = fast.config
    stage1 = fast.fold_trainer("image_only")(replace(config, model=replace(config.model, arch="image_only")),
                                            tmp_path / "image_only", split)
    rows = stage1["frozen_encoder"]["trained_on"]
    assert rows == {"train": split["train"].tolist(), "val": split["val"].tolist()}
    assert not set(rows["train"] + rows["val"]) & set(split["test"].tolist())
    assert stage1["maps"]["computed"] == len(fast.ds.frame)

    head = fast.fold_trainer("late_concat")(config, tmp_path / "late_concat", split)
    assert head["frozen_encoder"]["weights_sha256"] == stage1["frozen_encoder"]["weights_sha256"]
    assert head["frozen_encoder"]["trained_on"] == {"train": len(split["train"]), "val": len(split["val"])}
    assert head["maps"] == {**head["maps"], "computed": 0, "read": len(fast.ds.frame)}
    check_saved_model(tmp_path / "late_concat", head, fast, split)


def test_the_encoder_never_sees_a_held_out_fold(tiny_samples, tmp_path):
    config = tiny_config(tiny_samples["house_prices"])
    kept = tmp_path / "kept"   # the default mode: stage-wise for small_cnn
    result = compare_with_baselines(config, ComparisonOptions(2, 1), keep_models=kept)
    assert result["mode"] == "stagewise" and result["seconds"] > 0
    ds = load_dataset(tiny_samples["house_prices"])
    splits = cv_splits(ds, 2, 1, config.seed, config.val_fraction)
    stage1 = result["results"]["image_only"]["folds"]
    for split, fold in zip(splits, stage1):
        seen = set(fold["encoder"]["trained_on"]["train"] + fold["encoder"]["trained_on"]["val"])
        assert seen == set(split["train"].tolist() + split["val"].tolist())
        assert not seen & set(split["test"].tolist())
    for fold, first in zip(result["results"]["late_concat"]["folds"], stage1):
        assert fold["encoder"]["weights_sha256"] == first["encoder"]["weights_sha256"]   # that fold's encoder
        assert fold["maps"]["computed"] == 0
    assert stage1[0]["encoder"]["weights_sha256"] != stage1[1]["encoder"]["weights_sha256"]
    tabular = result["results"]["tabular_only"]["folds"][0]      # its head alone, on the table's vector
    assert tabular["encoder"] is None and tabular["maps"] is None
    check_kept_models(kept, result, ds, splits[0])


def test_keeping_models_needs_a_fast_mode(tiny_samples, tmp_path):
    with pytest.raises(ValueError, match="keep_models needs a fast mode"):
        compare_with_baselines(tiny_config(tiny_samples["house_prices"]), ComparisonOptions(2, mode="end_to_end"),
                               keep_models=tmp_path)


def test_finetuning_afterwards_trains_the_encoder_end_to_end(tiny_samples, tmp_path):
    fast, split = fast_folds(tiny_samples["skin_lesions"], "frozen", tmp_path, finetune_epochs=1)
    fast.finetune = True
    summary = fast.fold_trainer("late_concat")(fast.config, tmp_path / "tuned", split)
    assert [p["phase"] for p in summary["phases"]] == [1, 2] and summary["epochs_run"] == 2
    assert summary["history"]["phase"] == [1, 2]
    run = load_run(tmp_path / "tuned")
    assert weights_digest(encoders_of(run.model)["image"]) != summary["frozen_encoder"]["weights_sha256"]
