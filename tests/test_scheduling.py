"""The suite's process scheduling (tests/support/scheduling.py): a module's tests form one work unit, and all
browser tests form one, so module-scoped fixtures and the browser server are built once."""
from __future__ import annotations

from pathlib import Path

import pytest

from support.scheduling import BROWSER_SCOPE, ModuleScheduling


@pytest.mark.parametrize(("nodeid", "scope"), [
    ("tests/test_export.py::test_saved_model_round_trips", "tests/test_export.py"),
    ("tests/test_export.py::test_tflite[late_concat]", "tests/test_export.py"),
    ("tests/test_two_phase.py::TestPhases::test_freeze", "tests/test_two_phase.py"),
    ("tests/browser/test_flow.py::test_home", BROWSER_SCOPE),
    ("tests/browser/test_load.py::test_many_sessions_predict_while_two_train", BROWSER_SCOPE),
])
def test_a_module_is_one_unit_and_the_browser_tests_are_one(nodeid: str, scope: str):
    assert ModuleScheduling._split_scope(None, nodeid) == scope   # it reads no scheduler state


def test_the_browser_scope_is_the_browser_folder():
    assert (Path(__file__).parents[1] / BROWSER_SCOPE / "conftest.py").exists()
