"""The numeric training and model settings a user sets, declared once: what values each may take.

The CLI's argument checks, the Model page's URL parsing and its widgets all read SETTINGS, so they
accept and refuse the same values (tests/test_settings.py). A setting has a closed range; `offered`
are the steps a Model-page slider shows, to which a valid value from a link or the CLI is added.
Defaults stay the dataclass defaults of core/config.py. Standard library only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ALL_BLOCKS = "all"


@dataclass(frozen=True)
class Setting:
    """One setting: its kind ("int", "float", "blocks": a count or "all"), the closed range
    [low, high] of its valid values, the values a slider offers and what it means."""

    kind: str
    low: float
    high: float
    help: str
    offered: tuple = ()

    def __post_init__(self):
        if self.kind not in ("int", "float", "blocks") or not self.low <= self.high:
            raise ValueError(f"Setting needs kind int, float or blocks and low <= high. Received: "
                             f"kind={self.kind!r}, low={self.low!r}, high={self.high!r}")
        wrong = [v for v in self.offered if v != ALL_BLOCKS and not self.low <= v <= self.high]
        if wrong:
            raise ValueError(f"Setting offers values outside [{self.low:g}, {self.high:g}]. Received: {wrong}")

    def range_text(self) -> str:
        text = f"{self.low:g}..{self.high:g}"
        return f"{text} or {ALL_BLOCKS}" if self.kind == "blocks" else text

    def check(self, value: Any) -> Any:
        """`value` as this setting's type, or ValueError with the reason (without the name)."""
        if self.kind == "blocks" and value == ALL_BLOCKS:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{value!r} is not a number in {self.range_text()}")
        if self.kind in ("int", "blocks"):
            if value != int(value):
                raise ValueError(f"{value:g} is not a whole number in {self.range_text()}")
            value = int(value)
        else:
            value = float(value)
        if not self.low <= value <= self.high:
            raise ValueError(f"{value:g} is outside {self.range_text()}")
        return value

    def parse(self, text: str) -> Any:
        """The value written as text (a link's parameter, a command-line flag), checked."""
        text = str(text).strip()
        if self.kind == "blocks" and text == ALL_BLOCKS:
            return text
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a number in {self.range_text()}") from None
        return self.check(number)

    def options(self, current: Any = None) -> list:
        """The slider's steps: `offered`, plus `current` in its place when it is valid and not among them."""
        values = list(self.offered)
        try:
            current = self.check(current)
        except ValueError:
            return values
        if current in values:
            return values
        return sorted(v for v in [*values, current] if v != ALL_BLOCKS) + [ALL_BLOCKS] * (ALL_BLOCKS in values)


SETTINGS: dict[str, Setting] = {
    # the model (ModelConfig)
    "image_size": Setting("int", 16, 512, "side of the square the images are resized to (px)",
                          offered=(32, 48, 64, 96, 128, 160)),
    "width": Setting("int", 4, 1024, "units per dense layer of the fusion head", offered=(16, 32, 64, 128, 256)),
    "dropout": Setting("float", 0.0, 0.9, "dropout in the fusion head"),
    "l2": Setting("float", 0.0, 1.0, "weight decay (L2) on the dense kernels", offered=(0.0, 1e-5, 1e-4, 1e-3, 1e-2)),
    "modality_dropout": Setting("float", 0.0, 0.9, "training only: how often a branch is hidden per row"),
    "seed": Setting("int", 0, 2**31 - 1, "the seed of the split, the initial weights and the shuffles"),
    # training (TrainConfig)
    "epochs": Setting("int", 1, 10_000, "the epoch budget; early stopping usually ends sooner"),
    "batch_size": Setting("int", 1, 4096, "rows per optimizer step", offered=(8, 16, 32, 64, 128)),
    "lr": Setting("float", 1e-6, 1.0, "Adam's learning rate", offered=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2)),
    "val_fraction": Setting("float", 0.05, 0.5, "the share of rows held out for validation"),
    "patience": Setting("int", 0, 1000, "epochs without a better validation loss before stopping (0: off)"),
    "freeze_epochs": Setting("int", 0, 10_000, "pretrained encoders, phase 1: epochs of the head on the frozen backbone"),
    "finetune_epochs": Setting("int", 0, 10_000, "phase 2: epochs fine-tuning the backbone's top blocks"),
    "finetune_lr": Setting("float", 1e-7, 1.0, "phase 2's Adam learning rate", offered=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3)),
    "unfreeze": Setting("blocks", 0, 1000, "phase 2: how many top blocks of the backbone are fine-tuned",
                        offered=(1, 2, 3, 4, 6, ALL_BLOCKS)),
}


@dataclass(frozen=True)
class Margin:
    """An equivalence margin: how far apart two methods' held-out scores may be and still count as
    the same (docs/ARCHITECTURE.md, "Evidence picks the default"). `value` is in the metric's own
    units; for a metric in the target's units (MAE: dollars, years, ...) no one number fits every
    dataset, so `of_best` says `value` is a share of the best method's mean, written back in the
    target's units by `absolute`."""

    value: float
    of_best: bool = False

    def absolute(self, best_mean: float) -> float:
        return self.value * abs(best_mean) if self.of_best else self.value


# One per comparison metric (its name without the split prefix). 0.02 = two points of accuracy or
# AUC: a simpler method counts as equivalent only if its whole 95% interval against the best lies
# within +-2 points; 5% of the best MAE for regression.
EQUIVALENCE_MARGINS: dict[str, Margin] = {
    "accuracy": Margin(0.02), "auc": Margin(0.02), "r2": Margin(0.02),
    "mae": Margin(0.05, of_best=True), "rmse": Margin(0.05, of_best=True),
}


def equivalence_margin(metric: str, best_mean: float) -> float | None:
    """The margin M of `metric` ("val_accuracy" or "accuracy") in its own units for a comparison whose
    best mean is `best_mean`; None for a metric without one (then nothing is called equivalent)."""
    name = metric.split("_", 1)[1] if metric.startswith(("val_", "test_", "train_")) else metric
    margin = EQUIVALENCE_MARGINS.get(name)
    return None if margin is None else margin.absolute(best_mean)
