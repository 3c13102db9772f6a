"""The Fusion Playground's knobs and presets: what a learner can set, and the lessons one click sets up.

A knob is a named value with a range; `checked_knobs` turns any mapping (a URL, CLI flags, a
preset) into a complete, valid setting, collecting one warning per value it had to drop, and
`strict_knobs` refuses the first bad value with a DataError naming the knob and its range (the
CLI). Presets are knob settings plus the methods their lesson is about and the lesson itself;
whether each lesson holds is checked by train/playground_race.py (`lesson_outcome`) and tested.
See docs/ARCHITECTURE.md, "The Fusion Playground". Streamlit-free and TensorFlow-free.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from multimodal.core.errors import DataError

TASKS = ("classification", "regression")


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
PRACTICAL_GAIN = 0.05   # a fusion gain below this is no gain worth a second modality (the lessons' checks)


@dataclass(frozen=True)
class Preset:
    """A lesson: knob values (the rest default), the methods it races, and what it teaches."""
    name: str
    title: str
    knobs: Mapping[str, float | int | str]
    methods: tuple[str, ...]
    lesson: str


BASELINES = ("image_only", "tabular_only", "linear")
DEFAULT_METHODS = (*BASELINES, "late_concat", "multiply", "film", "gated")

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("image_alone", "The picture alone is enough", {"image": 1.0, "table": 0.0},
           (*BASELINES, "late_concat", "multiply"),
           "Only the disc's colour decides the label; the table's columns are unrelated to it. image_only "
           "learns the colour, while tabular_only and linear stay at chance. No fusion method gains anything "
           "worth having over image_only: when one modality holds all the signal, adding the other gives the "
           "model nothing to use."),
    Preset("table_alone", "The table alone is enough", {"image": 0.0, "table": 1.0},
           (*BASELINES, "late_concat", "multiply"),
           "Only reading + grade decide the label; the pictures carry nothing. tabular_only and linear do well, "
           "image_only stays at chance, and no fusion method gains anything worth having over the best table "
           f"baseline (a gain under {PRACTICAL_GAIN} does not count): a picture with no signal in it cannot help."),
    Preset("complementary", "Complementary: fusion wins", {"image": 1.0, "table": 1.0},
           (*BASELINES, "late_concat", "late_decision", "film"),
           "The label is the sum of the disc's colour and the table's latent: each modality alone explains "
           "about half of it. Every fusion method, even late_decision (which only adds the two branches' "
           "decisions), scores above the best baseline on every fold: when the signals add up, any way of "
           "combining the branches helps. How sure is that? With 3 folds the verdict's interval is wide (it is "
           "corrected for the folds sharing training rows), so even a gain of 0.2 can read 'no detectable "
           "difference': race more rows, or compare with more folds on Compare, to make it sure."),
    Preset("interaction", "Interaction: adding decisions fails, multiplying works",
           {"image": 0.0, "table": 0.0, "interaction": 1.0},
           (*BASELINES, "late_decision", "late_concat", "multiply", "film", "bilinear"),
           "The label is the XOR of two signs: whether the disc is red or blue, TIMES whether the table's latent "
           "is high or low. Each modality alone says nothing (every baseline is at chance), and late_decision, "
           "which adds the two branches' decisions, cannot represent a product: it stays at chance too. film and "
           "bilinear, which condition or multiply one branch by the other, score above it on every fold (with 3 "
           "folds the interval of the difference can still be wide). multiply, a single elementwise product of "
           "two projections, finds the sign product on most seeds and stays at chance on some. late_concat, "
           "whose hidden layer sees both embeddings at once, learns part of it or more: above late_decision, "
           "sometimes level with the best."),
    Preset("redundant", "Redundant: no fusion gain", {"image": 1.0, "table": 1.0, "redundancy": 1.0},
           (*BASELINES, "late_concat", "multiply"),
           "The table's latent IS the picture's latent: both modalities tell the same story. image_only and "
           "tabular_only each do well on their own, and no fusion method gains anything worth having over "
           "the best of them: a second copy of the same information adds nothing."),
    Preset("small_noisy", "Small and noisy: the linear model is as good as anything",
           {"rows": 100, "image": 0.3, "table": 1.0, "label_noise": 0.3, "distractors": 0.5},
           (*BASELINES, "late_concat", "multiply", "film"),
           "100 rows, a third of the labels random, a weak picture signal and four irrelevant columns. No method "
           "is better than the linear model with an interval above zero: with this little data the noise in the "
           "comparison is larger than anything a flexible fusion model could add."),
)}


def default_knobs() -> dict[str, float | int | str]:
    return {name: knob.default for name, knob in KNOBS.items()}


def checked_knobs(values: Mapping[str, object], preset: str | None = None) -> tuple[dict, list[str]]:
    """(a full knob setting, warnings): the preset's knobs (if any), then `values` over them.

    Unknown keys, an unknown preset and out-of-range values are dropped, one warning each, and the
    knob keeps its preset/default value (the page keeps working)."""
    warnings: list[str] = []
    knobs = default_knobs()
    if preset is not None:
        if preset in PRESETS:
            knobs.update(PRESETS[preset].knobs)
        else:
            warnings.append(f"unknown preset '{preset}' ignored; choose one of {', '.join(PRESETS)}")
    for key, value in values.items():
        if key not in KNOBS:
            warnings.append(f"unknown setting '{key}' ignored; the knobs are {', '.join(KNOBS)}")
            continue
        try:
            knobs[key] = KNOBS[key].parse(value)
        except ValueError as exc:
            warnings.append(f"{exc}; kept {knobs[key]}")
    return knobs, warnings


def strict_knobs(values: Mapping[str, object], preset: str | None = None) -> dict:
    """A full knob setting, or a DataError naming the first bad preset, key or value and the range."""
    if preset is not None and preset not in PRESETS:
        raise DataError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    knobs = {**default_knobs(), **(PRESETS[preset].knobs if preset else {})}
    for key, value in values.items():
        if key not in KNOBS:
            raise DataError(f"unknown knob '{key}'; the knobs are {', '.join(KNOBS)}")
        try:
            knobs[key] = KNOBS[key].parse(value)
        except ValueError as exc:
            raise DataError(str(exc)) from None
    return knobs


def preset_methods(preset: str | None) -> tuple[str, ...]:
    """The methods a race runs: the preset's own, else the default seven."""
    return PRESETS[preset].methods if preset in PRESETS else DEFAULT_METHODS
