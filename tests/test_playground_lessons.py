"""Every Playground preset's lesson is true when run: each claim of its text, checked on a race on
a fixed seed (train/playground_lessons.py, the Compare page's verdict code)."""
from __future__ import annotations

import pytest

from multimodal.data.playground_knobs import PRESETS
from multimodal.train.playground_lessons import lesson_checks

from support.playground import lesson_race


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_lesson_holds_on_a_fixed_seed(preset, tmp_path):
    race, chance = lesson_race(preset, tmp_path)
    checks = lesson_checks(preset, race, chance)
    assert checks, "a lesson with no checked claim"
    assert all(c["holds"] for c in checks), [c for c in checks if not c["holds"]]
    if preset == "interaction":   # the headline claim is checked, not only its absence
        assert {c["claim"] for c in checks} >= {"late_decision is at chance",
                                                 "film scores above late_decision on every fold",
                                                 "bilinear scores above late_decision on every fold",
                                                 "late_concat scores above late_decision"}
