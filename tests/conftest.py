"""Shared fixtures: tiny copies of the sample datasets (16 px, few rows) made once per test session."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def tiny_samples(tmp_path_factory) -> dict[str, Path]:
    """name -> CSV path of a tiny, deterministic copy of each sample dataset."""
    from multimodal.data.samples import SAMPLES, generate
    root = tmp_path_factory.mktemp("tiny_samples")
    return {name: generate(name, root / name, rows=40, image_size=16) for name in SAMPLES}
