"""The fusion method proposed for a dataset, with a one-line reason: the one proposal the CLI and the app share.

Light on purpose (no Keras): the Model page and the CLI's argument handling call it before any
model exists. The names below are registry names of `fusion.py`; tests/test_proposal.py checks
they are registered.

Several image columns are a sequence (cnn_lstm) only when the user says they are ordered (frames,
time points, slices): three MRI views or photos of one object have no order, and reading them as
a sequence invents one. Unordered columns are separate views of a row, each encoded by one shared
CNN and averaged, which is what every non-sequence method does with them.
"""
from __future__ import annotations

from dataclasses import dataclass

from multimodal.core.config import ModelConfig
from multimodal.core.errors import DataError
from multimodal.data.inputs import FeatureSpec

DEFAULT_FUSION = ModelConfig().arch  # image + table: ModelConfig's default is the one home of it
SEQUENCE_FUSION = "cnn_lstm"        # ordered images + table
IMAGE_PATH = "image_only"           # images alone
TABULAR_PATH = "tabular_only"       # table alone


@dataclass(frozen=True)
class Proposal:
    arch: str      # a fusion registry name
    reason: str    # one line for the Model page and the CLI


def _count(n: int, what: str) -> str:
    return f"{n} {what} column{'s' if n != 1 else ''}"


def propose_method(spec: FeatureSpec, encoder: str | None = None) -> Proposal:
    """The method a new setup starts from, by the dataset's columns and whether the user marked its
    images ordered (`spec.ordered_images`: the Data page's checkbox, the CLI's --ordered-images).

    `encoder` (an image encoder name) only names the shared CNN in the reason for now; it will take
    part in the choice once pretrained encoders exist.
    """
    images, table = len(spec.image_cols), len(spec.tabular_cols)
    if not images and not table:
        raise DataError("the dataset has no image or table columns to learn from")
    pics, cols = _count(images, "image"), _count(table, "table")
    if not images:
        return Proposal(TABULAR_PATH, f"no image columns: the {cols} alone, by {TABULAR_PATH}")
    cnn = f"one shared {encoder} encoder" if encoder else "one shared CNN"
    if images == 1:
        if not table:
            return Proposal(IMAGE_PATH, f"{pics}, no table columns: {IMAGE_PATH}")
        return Proposal(DEFAULT_FUSION, f"{pics} and {cols}: fused by {DEFAULT_FUSION}")
    if spec.ordered_images and table:
        return Proposal(SEQUENCE_FUSION, f"{pics} marked ordered: read as a sequence by {SEQUENCE_FUSION}, "
                                         f"joined with {cols}")
    if spec.ordered_images:
        return Proposal(IMAGE_PATH, f"{pics} marked ordered, but no table columns, which {SEQUENCE_FUSION} needs: "
                                    f"averaged by {cnn}, by {IMAGE_PATH}")
    if not table:
        return Proposal(IMAGE_PATH, f"{pics}, unordered, no table columns: averaged by {cnn}, by {IMAGE_PATH}")
    return Proposal(DEFAULT_FUSION, f"{pics}, unordered: averaged by {cnn}, fused with {cols} by {DEFAULT_FUSION}")


def unused_image_choice(method: str, image_choice: str, readers: list[str]) -> str:
    """The one sentence the CLI (its exit-2 `error:` line) and the Model page (a warning) give when the
    method the user picked reads no images while they chose something for the images explicitly:
    `method` as they named it ("--arch tabular_only"), `image_choice` as train/evidence.propose takes
    it ("--encoder mobilenet_v2 and --encoder-weights w.h5"), `readers` the methods that read images
    (none: the data allows none)."""
    them = "them" if " and " in image_choice else "it"
    pick = f" or pick a method that reads images ({', '.join(readers)})" if readers else \
        ": no method this data allows reads images"
    return f"{method} reads no images, so {image_choice} would be unused; drop {them}{pick}"
