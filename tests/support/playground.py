"""A Playground preset's race at the size the lesson tests and the benchmark use."""
from __future__ import annotations

from pathlib import Path

from multimodal.data.playground import read_playground, write_playground
from multimodal.data.playground_knobs import PRESETS, checked_knobs
from multimodal.train.playground_race import run_race

LESSON_ROWS = {"small_noisy": 100}   # the rest: LESSON_CAP rows (the presets' own size is 600)
LESSON_CAP = 400
LESSON_SIZE = 16


def lesson_race(preset: str, root: Path, seed: int = 0) -> tuple[dict, float]:
    """(run_race's result without saved models, the majority-class rate) for `preset` on `seed`."""
    knobs, warnings = checked_knobs({"rows": LESSON_ROWS.get(preset, LESSON_CAP), "image_size": LESSON_SIZE,
                                     "seed": seed}, preset)
    assert not warnings, warnings
    csv = write_playground(knobs, root / "data")
    race = run_race(csv, root / "race", list(PRESETS[preset].methods), k=3, image_size=LESSON_SIZE, seed=seed,
                    explain=False)
    return race, read_playground(root / "data")[1]["chance"]
