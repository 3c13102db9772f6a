"""Shared fixtures: tiny copies of the sample datasets (16 px, few rows) made once per test session.

The suite runs on two processes (pytest-xdist, `make test`): each test module stays on one process
(its module-scoped trained runs are built once), and every browser test on one process, which
starts the one Streamlit server they share (tests/browser/conftest.py).
"""
import os
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BROWSER_SCOPE = "tests/browser"


@pytest.fixture(scope="session")
def tiny_samples(tmp_path_factory) -> dict[str, Path]:
    """name -> CSV path of a tiny, deterministic copy of each sample dataset."""
    from multimodal.data.samples import SAMPLES, generate
    root = tmp_path_factory.mktemp("tiny_samples")
    return {name: generate(name, root / name, rows=40, image_size=16) for name in SAMPLES}


class ModuleScheduling(LoadScopeScheduling):
    """pytest-xdist work units: each test module whole on one process (its module-scoped trained
    runs are built once), and every browser test on one process (they share one server).

    xdist's own `--dist loadgroup` cannot do this with pytest 9: it tags groups by rewriting
    `item._nodeid`, which pytest 9's `nodeid` no longer reads, so every test was scheduled alone."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return BROWSER_SCOPE if module.startswith(f"{BROWSER_SCOPE}/") else module


def pytest_xdist_make_scheduler(config, log):
    return ModuleScheduling(config, log)
