"""Image encoders: seconds per epoch against plain Keras, and quality on the skin_lesions sample.

    .venv/bin/python bench/bench_encoders.py [--quick]

writes bench/RESULTS_encoders.md (with the machine, the date and the load).

1. Speed. For each encoder at 96 and 160 px: seconds per epoch of the project's `training.train()`
   (image_only, frozen backbone in phase 1, top 2 blocks fine-tuned in phase 2) and of the same
   model written in plain Keras (`keras.applications.<Net>(include_top=False)`, the family's
   rescaling, GlobalAveragePooling2D -> Dense(64, relu, L2 1e-4) -> Dropout(0.2) -> Dense(1),
   `model.fit` on in-memory uint8 arrays; frozen, then the same top layers unfrozen with
   BatchNormalization kept frozen), in the same run, both starting from the same weights file.
   Steady state: the time between the first and the last epoch end of a phase over the epochs
   between them (the first epoch of a phase holds the one-time tracing). Augmentation is off on
   both sides. small_cnn has no pretrained weights: one phase, the whole network trained.
   No ImageNet weights exist on this machine: the "pretrained" file is a random-init backbone
   with its BatchNormalization statistics set from one batch; speed does not depend on the values.
2. Quality. Each encoder on the skin_lesions sample (image_only, so the number is the encoder's;
   the image carries about half of the signal), at 96 px, the library's defaults otherwise.
   RANDOM INIT for every encoder: offline, the pretrained ones have no ImageNet weights, so this
   measures the architectures learning from scratch on a few hundred rows, NOT what they do
   pretrained.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from multimodal.core.config import ModelConfig, TrainConfig  # noqa: E402
from multimodal.core.events import read_events  # noqa: E402
from multimodal.data.dataset import load_dataset  # noqa: E402
from multimodal.data.inputs import encode_target, model_inputs  # noqa: E402
from multimodal.models.backbones import ENCODERS, backbone_blocks, build_backbone  # noqa: E402
from multimodal.train.training import train  # noqa: E402

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "RESULTS_encoders.md"
SAMPLE = "skin_lesions"


@dataclass(frozen=True)
class Sizes:
    sizes: tuple[int, ...]      # image sides for the speed part
    rows: int                   # training rows (speed); validation: a quarter of that
    epochs: int                 # per phase (speed)
    quality_rows: int | None    # rows of the sample for the quality part (None: all)
    quality_epochs: int         # epoch budget (early stopping, on by default, usually ends sooner)


# Full quality: at most 40 epochs (early stopping usually ends sooner), so Xception from scratch stays bounded.
FULL = Sizes(sizes=(96, 160), rows=256, epochs=4, quality_rows=None, quality_epochs=40)
QUICK = Sizes(sizes=(96,), rows=24, epochs=2, quality_rows=80, quality_epochs=2)
UNFREEZE = 2


def weights_file(encoder: str, size: int, folder: Path) -> Path:
    """A stand-in for ImageNet weights: the random-init backbone, BatchNormalization statistics set
    from one batch (momentum 0 for one training-mode call), saved as a .weights.h5."""
    path = folder / f"{encoder}-{size}.weights.h5"
    if not path.exists():
        keras.utils.set_random_seed(0)
        backbone = build_backbone(encoder, size)
        norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
        for layer in norms:
            layer.momentum = 0.0
        backbone(np.random.default_rng(0).uniform(0, 255, (8, size, size, 3)).astype("float32"), training=True)
        for layer in norms:
            layer.momentum = 0.99
        backbone.save_weights(path)
    return path


def steady(times: list[float]) -> float | None:
    """Seconds per epoch from epoch-end times: first to last over the epochs between them."""
    return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None


def project_epochs(encoder: str, size: int, rows: dict, epochs: int, folder: Path) -> dict[int, float | None]:
    """Phase -> steady seconds per epoch of training.train() on the sample's rows."""
    pretrained = ENCODERS[encoder].imagenet is not None
    config = TrainConfig(data=SAMPLE, epochs=epochs, batch_size=16, patience=0, restore_best=False,
                         finetune_epochs=epochs, unfreeze=UNFREEZE,
                         model=ModelConfig(arch="image_only", encoder=encoder, image_size=size, augment=False,
                                           encoder_weights_file=str(weights_file(encoder, size, folder))
                                           if pretrained else None))
    run_dir = folder / f"project-{encoder}-{size}"
    train(config, run_dir, split=rows)
    events, _ = read_events(run_dir)
    ends = [e for e in events if e["type"] == "epoch"]
    return {phase: steady([e["time"] for e in ends if e["phase"] == phase]) for phase in sorted({e["phase"] for e in ends})}


class EpochTimes(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.time())


def reference_epochs(encoder: str, size: int, x: np.ndarray, y: np.ndarray, rows: dict, epochs: int,
                     folder: Path) -> dict[int, float | None]:
    """The same model in plain Keras: keras.applications + a Dense head, model.fit."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    spec = ENCODERS[encoder]
    base = build_backbone(encoder, size)   # keras.applications.<Net>(include_top=False, weights=None)
    inputs = keras.Input((size, size, 3), dtype="uint8")
    h = keras.layers.Rescaling(*spec.rescale)(inputs) if spec.rescale else keras.layers.Rescaling(1.0)(inputs)
    h = keras.layers.GlobalAveragePooling2D()(base(h))
    h = keras.layers.Dense(64, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4))(h)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dropout(0.2)(h)))
    pretrained = spec.imagenet is not None
    if pretrained:
        base.load_weights(weights_file(encoder, size, folder))
        base.trainable = False
    top = sum(len(layers) for _, layers in backbone_blocks(base)[-UNFREEZE:])   # the project's top 2 blocks
    times = {}
    for phase, lr in ((1, 1e-3), (2, 1e-4)) if pretrained else ((1, 1e-3),):
        if phase == 2:
            base.trainable = True
            for layer in base.layers[:-top]:
                layer.trainable = False
            for layer in base.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
        model.compile(keras.optimizers.Adam(lr), keras.losses.BinaryCrossentropy(from_logits=True),
                      metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")])
        clock = EpochTimes()
        model.fit(x[rows["train"]], y[rows["train"]], batch_size=16, epochs=epochs, verbose=0, callbacks=[clock],
                  validation_data=(x[rows["val"]], y[rows["val"]]))
        times[phase] = steady(clock.times)
    return times


def speed(sizes: Sizes, folder: Path) -> list[dict]:
    ds = load_dataset(SAMPLE)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds.frame))
    rows = {"train": np.sort(order[:sizes.rows]), "val": np.sort(order[sizes.rows:sizes.rows + sizes.rows // 4]),
            "test": np.array([], dtype=np.int64)}
    y = encode_target(ds.frame[ds.target], ds.task, ds.classes).astype("float32")
    results = []
    for size in sizes.sizes:
        x = model_inputs(ds.frame, ds.root, ds.features, size)["images"][:, 0]   # (N, S, S, 3) uint8
        for encoder, spec in ENCODERS.items():
            if size < spec.min_size:
                continue
            print(f"speed: {encoder} at {size} px", flush=True)
            project = project_epochs(encoder, size, rows, sizes.epochs, folder)
            reference = reference_epochs(encoder, size, x, y, rows, sizes.epochs, folder)
            results.append({"encoder": encoder, "size": size, "project": project, "reference": reference})
    return results


def quality(sizes: Sizes, folder: Path) -> list[dict]:
    ds = load_dataset(SAMPLE)
    split = None
    if sizes.quality_rows:
        order = np.random.default_rng(1).permutation(len(ds.frame))[:sizes.quality_rows]
        cut = int(len(order) * 0.75)
        split = {"train": np.sort(order[:cut]), "val": np.sort(order[cut:]), "test": np.array([], dtype=np.int64)}
    results = []
    for encoder in ENCODERS:
        print(f"quality: {encoder}", flush=True)
        config = TrainConfig(data=SAMPLE, epochs=sizes.quality_epochs, on_missing_weights="random",
                             model=ModelConfig(arch="image_only", encoder=encoder, image_size=96))
        summary = train(config, folder / f"quality-{encoder}", split=split)
        results.append({"encoder": encoder, "weights": summary["encoder_weights"]["source"],
                        "accuracy": summary["metrics"].get("val_accuracy"), "auc": summary["metrics"].get("val_auc"),
                        "epochs": f"{summary['epochs_run']} ({summary['best_epoch']})",
                        "seconds": summary["train_seconds"]})
    return results


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def report(sizes: Sizes, mode: str, speed_rows: list[dict], quality_rows: list[dict], seconds: float,
           load: tuple[float, float]) -> str:
    lines = ["# Image encoders: speed against plain Keras, quality on the samples", "",
             f"Recorded {time.strftime('%Y-%m-%d %H:%M')} by `.venv/bin/python bench/bench_encoders.py"
             f"{' --quick' if mode == 'quick' else ''}` ({mode}; {seconds / 60:.1f} min) on {platform.machine()}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}, Keras {keras.__version__}. "
             f"Load average (1 min) before: {load[0]:.1f}, after: {load[1]:.1f}.", ""]
    if mode == "quick":
        lines += ["**Quick mode: a smoke test, not a measurement.** "
                  f"{sizes.rows} training rows, {sizes.epochs} epochs per phase, sizes {sizes.sizes} only: each steady "
                  "number is ONE epoch interval on a shared machine. Run without --quick for the record.", ""]
    lines += ["## 1. Seconds per epoch (steady state), project vs plain Keras", "",
              f"{sizes.rows} training rows of the {SAMPLE} sample, batch 16, image_only, augmentation off; phase 1 = "
              f"backbone frozen (head only, Adam 1e-3), phase 2 = top {UNFREEZE} blocks fine-tuned (Adam 1e-4, "
              "BatchNormalization frozen). Same starting weights on both sides. small_cnn: one phase, the whole "
              "network trained (it has no pretrained weights).", "",
              "| encoder | px | frozen: project | frozen: Keras | ratio | fine-tuned: project | fine-tuned: Keras | ratio |",
              "|---|---|---|---|---|---|---|---|"]
    for r in speed_rows:
        cells = []
        for phase in (1, 2):
            p, k = r["project"].get(phase), r["reference"].get(phase)
            cells += [_s(p), _s(k), f"{p / k:.2f}" if p and k else "-"]
        label = r["encoder"] + (" (one phase)" if ENCODERS[r["encoder"]].imagenet is None else "")
        lines.append(f"| {label} | {r['size']} | " + " | ".join(cells) + " |")
    lines += ["", "## 2. Quality on the skin_lesions sample (RANDOM INIT: no ImageNet weights on this machine)", "",
              "image_only at 96 px (the sample's 64 px images upscaled), library defaults (batch size and patience "
              f"from the number of rows, best validation weights), at most {sizes.quality_epochs} epochs, "
              + (f"{sizes.quality_rows} rows (75/25) in quick mode. " if sizes.quality_rows
                 else "the seeded 80/20 split of all rows. ")
              + "Every encoder trains from random init here, so the pretrained encoders are measured WITHOUT what "
                "makes them worth choosing: read this as the cost of a big network learning from scratch on a few "
                "hundred rows, not as their pretrained quality.", "",
              "| encoder | weights | val accuracy | val AUC | epochs run (best) | train seconds |",
              "|---|---|---|---|---|---|"]
    for r in quality_rows:
        lines.append(f"| {r['encoder']} | {r['weights']} | {_s(r['accuracy'])} | {_s(r['auc'])} | {r['epochs']} | "
                     f"{r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the bench")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started, load = time.time(), os.getloadavg()[0]
    # No download is tried: an empty Keras home, so pretrained encoders find no ImageNet weights.
    with tempfile.TemporaryDirectory(prefix="bench-encoders-") as tmp:
        os.environ["KERAS_HOME"] = str(Path(tmp) / "keras_home")
        keras.utils.get_file = _offline
        speed_rows = speed(sizes, Path(tmp))
        quality_rows = quality(sizes, Path(tmp))
    OUT.write_text(report(sizes, "quick" if args.quick else "full", speed_rows, quality_rows, time.time() - started,
                          (load, os.getloadavg()[0])))
    print(f"wrote {OUT}")


def _offline(fname, origin, **kwargs):
    raise Exception(f"URL fetch failure on {origin}: the bench runs offline")


if __name__ == "__main__":
    main()
