"""Run settings as plain dataclasses: importable without Keras, saved as config.json.

The app's server process reads defaults and builds configs from here without importing
TensorFlow; models/assembly.py and train/training.py consume them. The dataclass defaults are the
one home of every training default (`train_defaults` reads them).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class ModelConfig:
    """The network: fusion method, image encoder and head hyperparameters."""
    arch: str = "late_concat"
    encoder: str = "small_cnn"
    image_size: int = 64
    width: int = 64
    dropout: float = 0.2
    l2: float = 1e-4
    augment: bool = True
    seed: int = 0
    params: dict = field(default_factory=dict)
    # Per row and branch, the probability (training only) that the branch's embedding is replaced
    # by a learned "missing" embedding; 0 disables the layer. See layers.ModalityDropout.
    modality_dropout: float = 0.0
    # Add a linear term on the preprocessed table features to the output (Wide & Deep), for methods
    # with a tabular branch (the registry's `takes_wide`); ignored by the others.
    wide: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    """Everything needed to reproduce a run (saved as config.json)."""
    data: str
    target: str | None = None
    task: str | None = None
    overrides: dict = field(default_factory=dict)   # column -> role
    val_fraction: float = 0.2
    seed: int = 0
    epochs: int | None = 40                         # None: a budget from the data size (auto_epochs)
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 8                               # early stopping on val_loss; 0 disables
    loss: str | None = None                         # default: crossentropy / mse
    class_weight: bool = True                       # balance classes in the loss
    target_transform: str = "auto"                  # regression: auto | log | none (see training.choose_transform)
    restore_best: bool = True                       # the saved model has the best-val_loss weights
    devices: int = 1                                # >1: data-parallel over that many GPUs / logical CPUs
    stream: bool | None = None                      # images from disk per batch; None: when they are big
    model: ModelConfig = field(default_factory=ModelConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        # config.json files written before `wide` existed describe models without it.
        return cls(**{**d, "model": ModelConfig(**{"wide": False, **d.get("model", {})})})


# The training settings the Model page offers (the rest keep their defaults).
TRAIN_SETTINGS = ("epochs", "batch_size", "lr", "val_fraction", "patience", "seed", "loss", "target_transform")


def train_defaults() -> dict:
    """TrainConfig's defaults of the TRAIN_SETTINGS, by name."""
    defaults = TrainConfig(data="").to_dict()
    return {name: defaults[name] for name in TRAIN_SETTINGS}


def auto_epochs(n_train: int, batch_size: int) -> int:
    """Epoch budget when the user sets none: about 600 optimizer steps, at least 20 and at most
    150 epochs. Small datasets get more passes (few steps per epoch), big ones fewer; early stopping
    with the best weights restored usually ends well before the budget."""
    steps = max(1, math.ceil(n_train / batch_size))
    return min(max(math.ceil(600 / steps), 20), 150)


def default_arch(image_cols: int, tabular_cols: int) -> str:
    """The fusion method a new setup starts from, by the dataset's columns.

    An ordered set of images (2+ image columns) gets cnn_lstm, because averaging the frames throws
    their order away; image + table gets late_concat; one modality gets its single baseline.
    """
    if image_cols > 1 and tabular_cols:
        return "cnn_lstm"
    if image_cols and tabular_cols:
        return "late_concat"
    return "image_only" if image_cols else "tabular_only"
