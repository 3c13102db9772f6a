"""Run settings as plain dataclasses: importable without Keras, saved as config.json.

The app's server process reads defaults and builds configs from here without importing
TensorFlow; models/assembly.py and train/training.py consume them. The dataclass defaults are the
one home of every training default (`train_defaults` reads them).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace


@dataclass
class ModelConfig:
    """The network: fusion method, image encoder and head hyperparameters."""
    arch: str = "late_concat"
    encoder: str = "small_cnn"
    image_size: int = 64
    width: int = 64
    # None: chosen from the number of training rows when training (with_auto_settings); build a
    # model only from a config whose values are set, as train() does.
    dropout: float | None = None
    l2: float | None = None
    augment: bool = True
    seed: int = 0
    params: dict = field(default_factory=dict)
    # Per row and branch, the probability (training only) that the branch's embedding is replaced
    # by a learned "missing" embedding; 0 disables the layer. See layers.ModalityDropout.
    modality_dropout: float = 0.0
    # Add a linear term on the preprocessed table features to the output (Wide & Deep), for methods
    # with a tabular branch (the registry's `takes_wide`); ignored by the others.
    wide: bool = True
    # The image encoder's pretrained weights as a file (an upload, --encoder-weights); None: Keras'
    # cache, then a download (models/weights.py).
    encoder_weights_file: str | None = None

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
    ordered_images: bool = False                    # several image columns are frames in time (proposal.py)
    # None: chosen from the number of training rows by small_data_settings (with_auto_settings)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float = 1e-3
    patience: int | None = None                     # early stopping on val_loss; 0 disables
    loss: str | None = None                         # default: crossentropy / mse
    class_weight: bool = True                       # balance classes in the loss
    target_transform: str = "auto"                  # regression: auto | log | none (see training.choose_transform)
    restore_best: bool = True                       # the saved model has the best-val_loss weights
    devices: int = 1                                # >1: data-parallel over that many GPUs / logical CPUs
    multi_worker: bool = False                      # one of a cluster of workers (TF_CONFIG; train/devices.py)
    stream: bool | None = None                      # images from disk per batch; None: when they are big
    # The image encoder's arithmetic while training: "auto" = mixed precision where the hardware
    # computes it natively (float16 on a GPU, bfloat16 on a CPU with AVX-512 BF16 / AMX), else
    # float32; "float32" always. The saved model computes in float32 (train/precision.py).
    precision: str = "auto"
    # A pretrained encoder whose weights cannot be had (offline): "random" init (with a notice) or "stop".
    on_missing_weights: str = "random"
    # Two phases when the encoder's pretrained weights are loaded (train/training.py): the head on the
    # frozen backbone for `freeze_epochs` (None: the run's `epochs`), then the top `unfreeze` blocks
    # (or "all") fine-tuned for `finetune_epochs` (0: no phase 2) with Adam at `finetune_lr`.
    freeze_epochs: int | None = None
    finetune_epochs: int = 10
    finetune_lr: float = 1e-4
    unfreeze: int | str = 2
    model: ModelConfig = field(default_factory=ModelConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        # config.json files written before `wide` existed describe models without it.
        return cls(**{**d, "model": ModelConfig(**{"wide": False, **d.get("model", {})})})


# The training settings the Model page offers (the rest keep their defaults).
TRAIN_SETTINGS = ("epochs", "batch_size", "lr", "val_fraction", "patience", "seed", "loss", "target_transform",
                  "on_missing_weights", "freeze_epochs", "finetune_epochs", "finetune_lr", "unfreeze")


def train_defaults() -> dict:
    """TrainConfig's defaults of the TRAIN_SETTINGS, by name."""
    defaults = TrainConfig(data="").to_dict()
    return {name: defaults[name] for name in TRAIN_SETTINGS}


def auto_epochs(n_train: int, batch_size: int) -> int:
    """Epoch budget of the standard (big-data) settings: about 600 optimizer steps, at least 20 and
    at most 150 epochs. Early stopping with the best weights restored usually ends well before it."""
    steps = max(1, math.ceil(n_train / batch_size))
    return min(max(math.ceil(600 / steps), 20), 150)


# Below this many training rows the small-data settings apply; what each one changes, and the
# measurements that kept it, are in bench/SMALL_DATA.md (docs/ARCHITECTURE.md, "Training defaults").
SMALL_DATA_ROWS = 1000
SMALL_DATA = {"batch_size": 32, "patience": 15, "epochs": 200, "dropout": 0.3, "l2": 1e-3}
STANDARD = {"batch_size": 32, "patience": 8, "dropout": 0.2, "l2": 1e-4}   # + epochs: auto_epochs


def small_data_settings(n_train: int) -> tuple[dict, str]:
    """The settings left to the data (batch size, patience, epoch budget, dropout, L2) for `n_train`
    training rows, and a one-line reason for the Model page: THE one home of these defaults.

    Few rows make a noisy validation loss and overfit easily: a longer patience waits out the
    noise, a generous budget lets early stopping (not the budget) end training, and a stronger
    dropout and L2 penalty curb overfitting. The batch size stays 32: 16 measured no better."""
    rows = f"{n_train:,} training row{'s' if n_train != 1 else ''}"
    if n_train < SMALL_DATA_ROWS:
        chosen, kind = dict(SMALL_DATA), "small-data defaults"
    else:
        chosen, kind = {**STANDARD, "epochs": auto_epochs(n_train, STANDARD["batch_size"])}, "standard defaults"
    return chosen, (f"{rows}: batch {chosen['batch_size']}, patience {chosen['patience']}, up to "
                    f"{chosen['epochs']} epochs, dropout {chosen['dropout']:g}, L2 {chosen['l2']:g} - {kind}")


def with_auto_settings(config: TrainConfig, n_train: int) -> TrainConfig:
    """The config with every setting left to the data (None) chosen by small_data_settings;
    the user's explicit values stay."""
    chosen, _ = small_data_settings(n_train)

    def unset(settings: TrainConfig | ModelConfig) -> dict:   # dropout and L2 are the ModelConfig's
        return {k: v for k, v in chosen.items() if hasattr(settings, k) and getattr(settings, k) is None}
    return replace(config, **unset(config), model=replace(config.model, **unset(config.model)))
