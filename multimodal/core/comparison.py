"""What a cross-validated comparison is asked to do: `ComparisonOptions`, and its modes' names.

A comparison (train/crossval.py) trains every method on the same folds. The app's Compare page,
its worker, the CLI, the Playground's race and the benches all describe one with the same typed
options; the app hands them to the worker as `comparison_job(...)`, a JSON-able dict the worker
reads back with `comparison_parts` (docs/ARCHITECTURE.md, "Workers and events"). Keras-free, so
the app's server and the CLI's argument handling can build and check options without TensorFlow.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from multimodal.core.errors import DataError

# The one home of the modes' names and what each does (train/stagewise.py runs them).
MODES = {
    "stagewise": "image_only trains once per fold on the fold's training rows; its encoder is frozen and every "
                 "other method trains only its fusion head on the encoder's cached maps",
    "frozen": "the encoder is frozen as it is (its pretrained weights; a random-init one gives random features); "
              "every image method trains only its head on its cached maps, computed once",
    "end_to_end": "every model trains its own image encoder from the pixels (slowest; augmentation as configured)",
}
MIN_FOLDS = 2
MAX_PROCESSES = 2                    # a comparison's methods train in at most this many processes
PROCESSES_ENV = "MULTIMODAL_COMPARE_PROCESSES"   # overrides default_processes() (the test suite sets 1)
OPTIONS_KEY = "cv"                  # the worker config's entry holding ComparisonOptions.to_dict()
CACHE_KEY = "feature_cache"         # ... and the folder the fast modes cache the encoder's maps in


def checked_mode(mode: str | None) -> str | None:
    """`mode` when it is one of MODES or None (the fast default), else a DataError naming it."""
    if mode is not None and mode not in MODES:
        raise DataError(f"unknown comparison mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def _require(ok: bool, expected: str, **received: object) -> None:
    """Keras-style argument check (as models/layers.py's): what was expected and what was received."""
    if not ok:
        got = ", ".join(f"{name}={value!r}" for name, value in received.items())
        raise DataError(f"ComparisonOptions: expected {expected}. Received: {got}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ComparisonOptions:
    """How a comparison runs: `k` folds, `repeats` seeded shuffles of them, the methods `archs`
    compared besides the config's own (None or empty: only it and the baselines), the `mode` (one
    of MODES; None: the fast default for the encoder, stagewise.default_mode), `finetune` (fast
    modes: each image head's whole model trained end to end afterwards) and `processes`: 2 lets
    a second process train methods at the same time (fast modes; train/second_process.py)."""
    k: int
    repeats: int = 1
    archs: tuple[str, ...] | None = None
    mode: str | None = None
    finetune: bool = False
    processes: int = 1

    def __post_init__(self) -> None:
        _require(_is_int(self.k) and self.k >= MIN_FOLDS, f"an integer number of folds k >= {MIN_FOLDS}", k=self.k)
        _require(_is_int(self.repeats) and self.repeats >= 1, "an integer number of repeats >= 1",
                 repeats=self.repeats)
        if self.archs is not None:
            _require(isinstance(self.archs, (list, tuple)) and all(isinstance(a, str) for a in self.archs),
                     "archs as a sequence of method names, or None", archs=self.archs)
            object.__setattr__(self, "archs", tuple(self.archs))   # frozen: a list given is kept as a tuple
        checked_mode(self.mode)
        _require(isinstance(self.finetune, bool), "finetune as True or False", finetune=self.finetune)
        _require(_is_int(self.processes) and 1 <= self.processes <= MAX_PROCESSES,
                 f"processes as an integer from 1 to {MAX_PROCESSES}", processes=self.processes)

    def to_dict(self) -> dict:
        """JSON-able: archs as a list."""
        return {"k": self.k, "repeats": self.repeats, "archs": None if self.archs is None else list(self.archs),
                "mode": self.mode, "finetune": self.finetune, "processes": self.processes}

    @classmethod
    def from_dict(cls, d: Mapping) -> ComparisonOptions:
        """The options `to_dict` wrote; a key that is not an option is refused, by name."""
        names = [f.name for f in fields(cls)]
        unknown = [key for key in d if key not in names]
        if unknown:
            raise DataError(f"unknown comparison option{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(repr, unknown))}; the options are {', '.join(names)}")
        return cls(**d)


def default_processes() -> int:
    """How many processes the app's and the CLI's comparisons use: one per core, up to
    MAX_PROCESSES, unless $MULTIMODAL_COMPARE_PROCESSES says otherwise (1 or 2; anything else is
    refused by name)."""
    named = os.environ.get(PROCESSES_ENV)
    if named is None:
        return max(1, min(MAX_PROCESSES, os.cpu_count() or 1))
    if named.strip() not in {str(n) for n in range(1, MAX_PROCESSES + 1)}:
        raise DataError(f"${PROCESSES_ENV} is {named!r}; set it to a number of processes from 1 to {MAX_PROCESSES}")
    return int(named)


def comparison_job(train_config: Mapping, options: ComparisonOptions, cache_dir: str | Path | None = None) -> dict:
    """The worker's config for a comparison: a TrainConfig.to_dict() plus the options (and where
    the fast modes cache their maps)."""
    return {**train_config, OPTIONS_KEY: options.to_dict(),
            **({CACHE_KEY: str(cache_dir)} if cache_dir is not None else {})}


def comparison_parts(job: Mapping) -> tuple[dict, ComparisonOptions | None, Path | None]:
    """(the TrainConfig's dict, the options or None for a single training, the cache folder or
    None) of a worker's config (`comparison_job`, or a plain TrainConfig.to_dict())."""
    settings = {key: value for key, value in job.items() if key not in (OPTIONS_KEY, CACHE_KEY)}
    options = ComparisonOptions.from_dict(job[OPTIONS_KEY]) if OPTIONS_KEY in job else None
    cache = Path(job[CACHE_KEY]) if job.get(CACHE_KEY) else None
    return settings, options, cache
