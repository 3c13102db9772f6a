"""One proposal for the CLI and the app: several images are a sequence only when marked ordered."""
import subprocess
import sys

import pytest

from multimodal.core.errors import DataError
from multimodal.data.inputs import FeatureSpec
from multimodal.models.fusion import FUSION_METHODS, methods_for
from multimodal.models.proposal import DEFAULT_FUSION, IMAGE_PATH, SEQUENCE_FUSION, TABULAR_PATH, propose_method


def spec(images: int, table: int) -> FeatureSpec:
    return FeatureSpec([f"view_{i}" for i in range(images)], [f"x_{i}" for i in range(table)])


@pytest.mark.parametrize("ordered", [False, True])
def test_no_images_is_the_tabular_path(ordered):
    p = propose_method(spec(0, 7), ordered_images=ordered)
    assert p.arch == "tabular_only"
    assert p.reason == "no image columns: the 7 table columns alone, by tabular_only"


@pytest.mark.parametrize("ordered", [False, True])
def test_one_image_and_a_table_is_the_default_fusion(ordered):
    p = propose_method(spec(1, 7), ordered_images=ordered)
    assert p.arch == "late_concat"
    assert p.reason == "1 image column and 7 table columns: fused by late_concat"


def test_unordered_images_are_averaged_views():
    p = propose_method(spec(3, 7))
    assert p.arch == "late_concat"
    assert p.reason == "3 image columns, unordered: averaged by one shared CNN, fused with 7 table columns by late_concat"


def test_ordered_images_are_a_sequence():
    p = propose_method(spec(4, 7), ordered_images=True)
    assert p.arch == "cnn_lstm"
    assert p.reason.startswith("4 image columns marked ordered: read as a sequence by cnn_lstm")


def test_images_without_a_table():
    assert propose_method(spec(1, 0)).arch == "image_only"
    unordered = propose_method(spec(3, 0))
    assert unordered.arch == "image_only" and "unordered" in unordered.reason and "averaged" in unordered.reason
    ordered = propose_method(spec(3, 0), ordered_images=True)  # cnn_lstm needs table columns
    assert ordered.arch == "image_only" and "marked ordered" in ordered.reason and "cnn_lstm needs" in ordered.reason


def test_encoder_is_named_in_the_reason():
    p = propose_method(spec(3, 2), encoder="mobilenet_v2")
    assert "averaged by one shared mobilenet_v2 encoder" in p.reason and p.arch == "late_concat"


def test_no_columns_is_a_data_error():
    with pytest.raises(DataError):
        propose_method(spec(0, 0))


def test_proposal_is_light():
    # The Model page and the CLI's argument handling propose before importing Keras.
    code = "import sys, multimodal.models.proposal; sys.exit('keras' in sys.modules or 'tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_proposal_names_registered_methods_the_data_allows():
    assert {DEFAULT_FUSION, IMAGE_PATH, SEQUENCE_FUSION, TABULAR_PATH} <= set(FUSION_METHODS)
    for images, table, ordered in [(0, 3, False), (1, 3, False), (3, 3, False), (3, 3, True), (3, 0, True)]:
        assert propose_method(spec(images, table), ordered).arch in methods_for(bool(images), bool(table), images)
