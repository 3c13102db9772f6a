"""The Fusion Playground's knobs: what a learner can set, with each one's range and default.

A knob is a named value with a range; `checked_knobs` turns any mapping (a URL, CLI flags, over a
lesson's own knobs) into a complete, valid setting, collecting one warning per value it had to
drop, and `strict_knobs` refuses the first bad value with a DataError naming the knob and its
range (the CLI, lesson files). Lessons themselves are files (data/lesson_file.py).
See docs/ARCHITECTURE.md, "The Fusion Playground". Streamlit-free and TensorFlow-free.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from multimodal.core.errors import DataError
from multimodal.core.tasks import TASKS


@dataclass(frozen=True)
class Knob:
    """One setting: its name (URL key and CLI flag), range, default, and what it does."""
    name: str
    low: float
    high: float
    default: float | int | str
    help: str
    integer: bool = False
    choices: tuple[str, ...] = ()

    def range_text(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        fmt = (lambda v: f"{int(v):,}") if self.integer else (lambda v: f"{v:g}")
        return f"{fmt(self.low)} to {fmt(self.high)}"

    def parse(self, value: object) -> float | int | str:
        """The value as this knob's type; ValueError naming the knob and its range when it is not one."""
        bad = ValueError(f"{self.name}={value} is out of range: {self.range_text()}")
        if self.choices:
            if str(value) not in self.choices:
                raise bad
            return str(value)
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise bad from None
        if not (self.low <= number <= self.high) or (self.integer and number != int(number)):
            raise bad
        return int(number) if self.integer else number


KNOBS: dict[str, Knob] = {k.name: k for k in (
    Knob("task", 0, 0, "classification", "what the label is: classes or a number", choices=TASKS),
    Knob("classes", 2, 5, 2, "how many classes (classification)", integer=True),
    Knob("rows", 100, 5000, 600, "how many rows (each row: one picture and one table row)", integer=True),
    Knob("image_size", 16, 48, 24, "picture size in pixels", integer=True),
    Knob("image", 0, 1, 1.0, "image signal: how much the label depends on the colour of the drawn disc"),
    Knob("table", 0, 1, 1.0, "table signal: how much the label depends on reading + grade (a number and a category)"),
    Knob("interaction", 0, 1, 0.0, "interaction: how much the label depends on image latent x table latent"),
    Knob("redundancy", 0, 1, 0.0, "redundancy: how much the table's latent is the image's own latent"),
    Knob("label_noise", 0, 1, 0.0, "share of labels replaced by a random class (regression: noise added)"),
    Knob("missing_cells", 0, 0.9, 0.0, "share of table cells left blank"),
    Knob("missing_images", 0, 0.9, 0.0, "share of pictures left blank (no disc drawn)"),
    Knob("distractors", 0, 1, 0.0, "irrelevant columns: 0 = none, 1 = eight of them"),
    Knob("seed", 0, 1_000_000, 0, "the random seed: the same knobs and seed give the same files", integer=True),
)}
MAX_DISTRACTORS = 8
BASELINES = ("image_only", "tabular_only", "linear")   # every race's baselines, always raced
DEFAULT_METHODS = (*BASELINES, "late_concat", "multiply", "film", "gated")


def default_knobs() -> dict[str, float | int | str]:
    return {name: knob.default for name, knob in KNOBS.items()}


def checked_knobs(values: Mapping[str, object], base: Mapping[str, object] | None = None) -> tuple[dict, list[str]]:
    """(a full knob setting, warnings): the defaults, then `base` (a lesson's knobs), then `values`.

    Unknown keys and out-of-range values are dropped, one warning each, and the knob keeps its
    base/default value (the page keeps working)."""
    warnings: list[str] = []
    knobs = {**default_knobs(), **(base or {})}
    for key, value in values.items():
        if key not in KNOBS:
            warnings.append(f"unknown setting '{key}' ignored; the knobs are {', '.join(KNOBS)}")
            continue
        try:
            knobs[key] = KNOBS[key].parse(value)
        except ValueError as exc:
            warnings.append(f"{exc}; kept {knobs[key]}")
    return knobs, warnings


def strict_knobs(values: Mapping[str, object], base: Mapping[str, object] | None = None) -> dict:
    """A full knob setting (defaults, `base`, then `values`), or a DataError naming the first bad key
    or value and the range."""
    knobs = {**default_knobs(), **(base or {})}
    for key, value in values.items():
        if key not in KNOBS:
            raise DataError(f"unknown knob '{key}'; the knobs are {', '.join(KNOBS)}")
        try:
            knobs[key] = KNOBS[key].parse(value)
        except ValueError as exc:
            raise DataError(str(exc)) from None
    return knobs
