"""Adding a fusion method is one decorated function in models/fusion.py plus one test: registered,
it is offered everywhere a method is chosen, built, trained, saved, predicted, drawn and compared,
with no other list to edit (docs/ARCHITECTURE.md, "Fusion methods").

The method here (`difference`: the projected embeddings subtracted) is registered for this test
only and removed after it, exactly as a newcomer would write it in models/fusion.py.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.data.dataset import load_dataset
from multimodal.models import fusion
from multimodal.models.fusion import FUSION_METHODS, Param, methods_for, register
from multimodal.train.crossval import comparison_archs

NEW = "difference"


@pytest.fixture
def new_method():
    """The newcomer's one function, registered as models/fusion.py registers its own."""
    @register("Difference", "a newcomer's method", ("image", "tabular"), flow="CNN -> proj | features -> proj -> a - b",
              merge="a - b", params={"units": Param(8, "width of the two projections", low=1, high=128)})
    def difference(emb, s):
        """Both embeddings are projected to the same width and subtracted, so the head sees where the
        picture and the table disagree rather than their sum; a teaching example of a new method."""
        image = fusion.dense(fusion.pooled_image(emb["image"]), s.params["units"], s, "image_proj")
        tabular = fusion.dense(emb["tabular"], s.params["units"], s, "tabular_proj")
        gap = fusion.keras.layers.Subtract(name="difference")([image, tabular])
        return fusion.output(fusion.dense_stack(gap, s, "joint"), s)

    yield FUSION_METHODS[NEW]
    del FUSION_METHODS[NEW]


def test_registered_it_is_offered_described_and_compared(new_method, tiny_samples):
    assert NEW in methods_for(True, True, 1) and NEW in methods_for(True, True, 4)   # the Model page's list
    assert NEW not in methods_for(False, True, 0)                                    # it needs images
    assert new_method.reads_images and not new_method.is_baseline and new_method.takes_wide
    assert "disagree" in new_method.description and new_method.merge_label == "a - b"
    assert new_method.resolve({}) == {"units": 8}
    with pytest.raises(ValueError, match="units"):
        new_method.resolve({"units": 500})
    spec = load_dataset(tiny_samples["skin_lesions"]).features
    assert comparison_archs(spec, NEW)[-1] == NEW       # a comparison trains it beside the baselines


def test_registered_it_trains_saves_predicts_and_is_drawn(new_method, tiny_samples, tmp_path):
    from multimodal.app.diagram import fusion_dot
    from multimodal.runs.run import load_run, predict, run_inputs
    from multimodal.train.training import train
    csv = tiny_samples["skin_lesions"]
    config = TrainConfig(data=str(csv), epochs=1, batch_size=16,
                         model=ModelConfig(arch=NEW, image_size=16, params={"units": 4}))
    summary = train(config, tmp_path / "run")
    assert summary["arch"] == NEW and summary["epochs_run"] == 1
    run = load_run(tmp_path / "run")
    assert run.model.get_layer("head").get_layer("image_proj").units == 4   # the Param reached the graph
    ds = load_dataset(csv)
    probabilities = predict(run, run_inputs(run, ds.frame.iloc[:4], ds.root))
    assert probabilities.shape[0] == 4
    dot = fusion_dot(new_method, ds.features)
    assert "a - b" in dot


def test_the_cli_refuses_a_method_that_is_not_registered(tiny_samples, tmp_path):
    """Without the registration the name is unknown, and the CLI says so (the list is the registry)."""
    done = subprocess.run([sys.executable, "-m", "multimodal", "train", str(tiny_samples["skin_lesions"]),
                           "--arch", NEW, "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert NEW in done.stderr and "late_concat" in done.stderr, done.stderr
    assert not list(tmp_path.iterdir())   # nothing written
