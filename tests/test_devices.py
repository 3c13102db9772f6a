"""`train --devices 2` (MirroredStrategy over two logical CPU devices) learns what one device learns.

Each training runs in its own CLI subprocess: TensorFlow's logical devices can only be set up
before its runtime starts, which in this pytest process may already have happened.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from multimodal.data.dataset import load_dataset
from multimodal.runs.run import load_run, predict, run_inputs

ROOT = Path(__file__).resolve().parents[1]

# Dropout and augmentation draw their random numbers per replica, so with them two devices would
# train on different noise; without them the two runs do the same arithmetic except for the order
# of float32 sums (two half-batch gradients all-reduced vs one batch), which moves results by
# about 1e-7 per step. 1e-5 leaves room for ten steps of that and catches any real divergence
# (a wrongly scaled loss or gradient changes the losses in the second decimal). The runs are float32
# throughout (--precision float32): a bfloat16 image encoder rounds each replica's half batch on its
# own, which would hide the arithmetic checked here.
TOLERANCE = 1e-5


def train_on(devices: int, data: Path, out: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "multimodal", "train", str(data), "--devices", str(devices), "--epochs", "1",
         "--batch-size", "8", "--image-size", "16", "--dropout", "0", "--no-augment", "--patience", "0",
         "--no-image-cache", "--seed", "3", "--precision", "float32", "--out", str(out), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tiny_samples, tmp_path_factory) -> dict[int, dict]:
    out = tmp_path_factory.mktemp("device_runs")
    return {n: train_on(n, tiny_samples["skin_lesions"], out / f"devices{n}") for n in (1, 2)}


def test_two_devices_are_recorded(runs):
    one, two = runs[1], runs[2]
    assert one["replicas"] == 1 and one["devices"] == ["/device:CPU:0"]
    assert two["replicas"] == 2 and two["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert two["precision"] == one["precision"] == "float32"     # as asked (auto: train/precision.py)
    saved = json.loads((Path(two["run_dir"]) / "summary.json").read_text())
    assert saved["replicas"] == 2


def test_two_devices_learn_what_one_device_learns(runs, tiny_samples):
    one, two = runs[1], runs[2]
    np.testing.assert_allclose(two["history"]["loss"], one["history"]["loss"], rtol=TOLERANCE)
    assert two["metrics"].keys() == one["metrics"].keys()
    for name, value in one["metrics"].items():
        assert two["metrics"][name] == pytest.approx(value, rel=TOLERANCE, abs=TOLERANCE), name
    ds = load_dataset(tiny_samples["skin_lesions"])
    outputs = []
    for summary in (one, two):
        run = load_run(Path(summary["run_dir"]))
        outputs.append(predict(run, run_inputs(run, ds.frame, ds.root)))
    assert outputs[0].shape == (len(ds.frame), 1)
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=TOLERANCE, atol=TOLERANCE)
    assert outputs[0].std() > 1e-3      # rows get different outputs: the comparison is not vacuous
