"""A lesson checked by racing it: its data generated at its own knobs on a seed, its race run, and
every claim checked on the result (runs/claims.py). Used by `python -m multimodal lesson check`,
the hold-rate benchmark (bench/bench_lessons.py) and the suite's test-size checks.
See docs/ARCHITECTURE.md, "Lessons".
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from multimodal.data.lesson_file import Lesson
from multimodal.data.playground import write_playground
from multimodal.runs.claims import check_claims, race_chance
from multimodal.train.playground_race import run_race


def race_lesson(lesson: Lesson, seed: int, root: Path, *, sizes: dict | None = None, epochs: int | None = None,
                processes: int = 1) -> dict:
    """run_race's result for `lesson` on `seed` in `root` (data/ and race/), without saved models.

    sizes: knobs that override the lesson's own (rows, image_size) for test-size checks."""
    knobs = lesson.full_knobs(seed)
    knobs.update(sizes or {})
    csv = write_playground(knobs, Path(root) / "data")
    extra = {"epochs": epochs} if epochs is not None else {}
    return run_race(csv, Path(root) / "race", list(lesson.methods), k=lesson.folds,
                    image_size=int(knobs["image_size"]), seed=seed, explain=False, processes=processes, **extra)


def check_on_seed(lesson: Lesson, seed: int, **race_options) -> dict:
    """{"seed", "holds" (every claim), "claims": [{"claim", "holds", "detail", ...}], "means", "chance",
    "seconds"} for one race of `lesson` on `seed` (in a temporary folder, removed)."""
    with tempfile.TemporaryDirectory(prefix="multimodal-lesson-") as tmp:
        race = race_lesson(lesson, seed, Path(tmp), **race_options)
    claims = check_claims(lesson.claims, race)
    return {"seed": seed, "holds": all(c["holds"] for c in claims), "claims": claims,
            "means": {r["arch"]: r["mean"] for r in race["rows"]}, "chance": race_chance(race),
            "folds": {r["arch"]: r["folds"] for r in race["rows"]}, "sizes": race["sizes"],
            "chance_folds": race["chance"], "seconds": race["seconds"]}


def check_lesson(lesson: Lesson, seeds: Iterable[int], on_seed: Callable[[dict], None] | None = None,
                 **race_options) -> list[dict]:
    """check_on_seed for every seed, in order; on_seed sees each result as it comes."""
    out = []
    for seed in seeds:
        out.append(check_on_seed(lesson, int(seed), **race_options))
        if on_seed:
            on_seed(out[-1])
    return out
