"""Shared fixtures: tiny copies of the sample datasets (16 px, few rows) made once per test session.

The suite runs on two processes (pytest-xdist, `make test`): each test module stays on one process
(its module-scoped trained runs are built once), and every browser test on one process, which
starts the one Streamlit server they share (tests/browser/conftest.py).
"""
import os
from pathlib import Path

import pytest

from support.scheduling import ModuleScheduling

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Comparisons and races in one process (the app server inherits it): xdist already keeps both cores
# busy. tests/test_second_process.py runs the second process itself.
os.environ.setdefault("MULTIMODAL_COMPARE_PROCESSES", "1")


@pytest.fixture(scope="session")
def tiny_samples(tmp_path_factory) -> dict[str, Path]:
    """name -> CSV path of a tiny, deterministic copy of each sample dataset."""
    from multimodal.data.samples import SAMPLES, generate
    root = tmp_path_factory.mktemp("tiny_samples")
    return {name: generate(name, root / name, rows=40, image_size=16) for name in SAMPLES}


@pytest.fixture(scope="session", autouse=True)
def workspaces_root(tmp_path_factory):
    """The app's workspaces (multimodal/runs/workspaces.py) in this test session's own folder, not in
    the system's temporary folder (the browser tests' server gets its own: tests/browser/harness.py)."""
    root = tmp_path_factory.mktemp("workspaces")
    before = os.environ.get("MMSTUDIO_WORKSPACES_DIR")
    os.environ["MMSTUDIO_WORKSPACES_DIR"] = str(root)
    yield root
    if before is None:
        os.environ.pop("MMSTUDIO_WORKSPACES_DIR", None)
    else:
        os.environ["MMSTUDIO_WORKSPACES_DIR"] = before


def pytest_xdist_make_scheduler(config, log):
    """Every test module whole on one process, all browser tests on one (support/scheduling.py)."""
    return ModuleScheduling(config, log)
