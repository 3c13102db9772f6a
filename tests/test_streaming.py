"""Images streamed from an on-disk uint8 file give the same batches as the in-memory path."""
import json
from pathlib import Path

import numpy as np
import pytest

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.dataset import load_dataset
from multimodal.data.inputs import model_inputs
from multimodal.models.batches import make_dataset, take
from multimodal.train import streaming
from multimodal.train.training import train

SIZE = 16


@pytest.fixture(scope="module")
def lesions(tiny_samples):
    return load_dataset(tiny_samples["skin_lesions"])


def _as_numpy(batch) -> dict:
    features, y, *weights = batch
    return {**{k: v.numpy() for k, v in features.items()}, "y": y.numpy(), **{"w": w.numpy() for w in weights}}


def test_streamed_batches_equal_in_memory_batches(lesions, tmp_path):
    ds = lesions
    inputs = model_inputs(ds.frame, ds.root, ds.features, SIZE)
    y = np.arange(len(ds.frame), dtype=np.int32)      # row numbers as targets: order mistakes show
    rows = np.array([3, 0, 7, 12, 5, 21, 30, 2, 9, 33, 17])
    store = streaming.decode_to_disk(ds.frame, ds.root, ds.features, SIZE, tmp_path / "work")

    tabular = {k: v for k, v in inputs.items() if k != "images"}
    weights = (np.arange(len(ds.frame)) % 3 + 1).astype("float32")   # class weights travel with their rows
    for seed, w in ((None, None), (7, None), (7, weights)):
        memory = make_dataset(take(inputs, rows), y[rows], 4, shuffle_seed=seed,
                              sample_weight=None if w is None else w[rows])
        streamed = streaming.make_streaming_dataset(store, tabular, y, rows, 4, shuffle_seed=seed, sample_weight=w)
        for _epoch in range(2):      # reshuffled each epoch, the same way in both
            a = [_as_numpy(b) for b in memory]
            b = [_as_numpy(b) for b in streamed]
            assert [len(x["y"]) for x in a] == [4, 4, 3]
            assert len(a) == len(b)
            for left, right in zip(a, b):
                assert left.keys() == right.keys()
                for key in left:
                    np.testing.assert_array_equal(left[key], right[key], err_msg=key)
            assert ("w" in a[0]) == (w is not None)
            if w is not None:
                np.testing.assert_array_equal(np.concatenate([x["w"] for x in b]), w[np.concatenate([x["y"] for x in b])])
            order = np.concatenate([x["y"] for x in b]).tolist()
            assert sorted(order) == sorted(rows.tolist())
            assert (order == rows.tolist()) == (seed is None)


def test_image_file_is_a_standard_npy_in_the_work_folder(lesions, tmp_path):
    ds = lesions
    store = streaming.decode_to_disk(ds.frame, ds.root, ds.features, SIZE, tmp_path / "work")
    assert store.path.parent == tmp_path / "work"
    assert [p.name for p in (tmp_path / "work").iterdir()] == [f"images-{SIZE}px.npy"]
    on_disk = np.load(store.path, mmap_mode="r")
    assert on_disk.shape == (len(ds.frame), 1, SIZE, SIZE, 3) and on_disk.dtype == np.uint8
    np.testing.assert_array_equal(on_disk, model_inputs(ds.frame, ds.root, ds.features, SIZE)["images"])
    np.testing.assert_array_equal(store.rows(np.array([5, 1])), on_disk[[5, 1]])


def test_auto_mode_streams_only_big_images():
    assert not streaming.should_stream(None, 20_000, 1, 64)      # 245 MB: in memory
    assert streaming.should_stream(None, 50_000, 1, 64)          # 614 MB: from disk
    assert streaming.should_stream(True, 10, 1, 16)
    assert not streaming.should_stream(True, 10, 0, 16)          # nothing to stream without images
    assert not streaming.should_stream(False, 10**6, 1, 224)


def test_train_streams_into_the_workdir_and_cleans_up(tiny_samples, tmp_path, monkeypatch):
    folders = []
    decode = streaming.decode_to_disk

    def recording_decode(*args, **kwargs):
        store = decode(*args, **kwargs)
        folders.append(store.path.parent)
        return store

    monkeypatch.setattr(streaming, "decode_to_disk", recording_decode)
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = TrainConfig(data=str(tiny_samples["skin_lesions"]), epochs=1, batch_size=16, stream=True,
                         model=ModelConfig(image_size=SIZE))
    summary = train(config, tmp_path / "run", workdir=workdir)
    assert summary["streamed"] is True and summary["epochs_run"] == 1
    assert len(folders) == 1 and folders[0].parent == workdir
    assert list(workdir.iterdir()) == []                       # the decoded file goes with the run
    assert not list((tmp_path / "run").glob("*.npy"))
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["streamed"] is True
    with np.load(Path(tmp_path / "run" / "background.npz")) as background:
        assert background["images"].shape[1:] == (1, SIZE, SIZE, 3)
