"""The argument parser of `python -m multimodal` (docs/ARCHITECTURE.md, "The command line")."""
from __future__ import annotations

import argparse

from multimodal.cli.common import Parser, UsageError
from multimodal.cli.lesson import add_lesson_parser
from multimodal.cli.playground import add_playground_parser
from multimodal.core.settings import SETTINGS
from multimodal.train.precision import PRECISIONS


def setting_arg(name: str, value):
    """A flag's value checked against the settings spec (core/settings.py), as the Model page and a
    shared link check it: None (not given) stays None; text (--unfreeze) is parsed."""
    if value is None:
        return None
    try:
        return SETTINGS[name].parse(value) if isinstance(value, str) else SETTINGS[name].check(value)
    except ValueError as e:
        raise UsageError(f"--{name.replace('_', '-')}: {e}") from None


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m multimodal", description="Image + tabular deep learning, headless.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in ("samples", "archs"):
        sub.add_parser(name, help=f"list the {name}").add_argument("--json", action="store_true")

    t = sub.add_parser("train", help="train one model and save a run folder")
    t.add_argument("data", help="sample name, folder, .zip or .csv")
    t.add_argument("--target")
    t.add_argument("--task", choices=["classification", "regression"])
    t.add_argument("--arch", default=None, help="fusion method (default: the one proposed for the data, "
                                                "as on the app's Model page)")
    t.add_argument("--ordered-images", action="store_true",
                   help="the image columns are one ordered sequence (frames in time, in column order); "
                        "only then is a sequence model (cnn_lstm) proposed")
    t.add_argument("--encoder", default="small_cnn",
                   help="image encoder: small_cnn (default, no pretrained weights), mobilenet_v2, efficientnet_b0 "
                        "or xception (ImageNet-pretrained: trained in two phases, see --freeze-epochs)")
    t.add_argument("--encoder-weights", metavar="PATH",
                   help="the encoder's pretrained weights (.h5); default: Keras' cache, then a download")
    t.add_argument("--on-missing-weights", default="random", choices=["random", "stop"],
                   help="when the pretrained weights cannot be had (offline): train from random init with a "
                        "notice (default), or stop")
    t.add_argument("--freeze-epochs", type=int, default=None,
                   help="pretrained encoders, phase 1: epochs of the head on the frozen backbone (default: --epochs)")
    t.add_argument("--finetune-epochs", type=int, default=None,
                   help="phase 2: epochs fine-tuning the backbone's top blocks (default 10; 0: no phase 2)")
    t.add_argument("--finetune-lr", type=float, default=None, help="phase 2's Adam learning rate (default 1e-4)")
    t.add_argument("--unfreeze", default=None, metavar="N|all",
                   help="phase 2: how many top blocks of the backbone to fine-tune, or all (default 2)")
    t.add_argument("--epochs", type=int, default=None, help="default: from the number of training rows")
    t.add_argument("--patience", type=int, default=None,
                   help="early-stopping patience (0 = off; default: from the number of training rows)")
    t.add_argument("--target-transform", default="auto", choices=["auto", "log", "none"])
    t.add_argument("--modality-dropout", type=float, default=0.0)
    t.add_argument("--dropout", type=float, default=None,
                   help="dropout in the fusion head (default: from the number of training rows)")
    t.add_argument("--width", type=int, default=None, help="units per dense layer of the fusion head (default 64)")
    t.add_argument("--l2", type=float, default=None,
                   help="weight decay (L2) on the dense kernels (default: from the number of training rows)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random flips, rotations and zooms of the training images")
    t.add_argument("--devices", type=int, default=1,
                   help="train data-parallel on N devices: GPUs if TensorFlow sees any, else N logical CPU devices")
    t.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="the image encoder's arithmetic while training: auto = mixed precision where the hardware "
                        "has it (float16 on a GPU, bfloat16 on a CPU with AVX-512 BF16 / AMX), else float32; "
                        "the saved model computes in float32 either way")
    t.add_argument("--multi-worker", action="store_true",
                   help="train as one worker of a cluster described by the TF_CONFIG environment variable "
                        "(MultiWorkerMirroredStrategy: start the same command on every worker; only the chief "
                        "writes the run folder; see the README, 'Training on a cluster')")
    t.add_argument("--worker-timeout", type=float, default=None, metavar="SECONDS",
                   help="--multi-worker: seconds a worker waits for the others to join, and at any step, before "
                        "it stops with an error (default 120)")
    t.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                   help="read decoded images from a file in the work folder per batch instead of RAM "
                        "(default: when they exceed 512 MB)")
    t.add_argument("--image-cache", action=argparse.BooleanOptionalAction, default=True,
                   help="reuse decoded images between runs (in $MULTIMODAL_CACHE_DIR, else "
                        "~/.cache/multimodal/images)")
    t.add_argument("--cv", type=int, default=None, help="repeated k-fold cross-validation with K folds")
    t.add_argument("--repeats", type=int, default=1)
    t.add_argument("--baselines", action="store_true",
                   help="also cross-validate image_only and tabular_only on the same folds (fusion gain)")
    t.add_argument("--batch-size", type=int, default=None, help="default: from the number of training rows")
    t.add_argument("--image-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--image-cols")
    t.add_argument("--numeric-cols")
    t.add_argument("--categorical-cols")
    t.add_argument("--ignore-cols")
    t.add_argument("--split-col")
    t.add_argument("--val-fraction", type=float, default=0.2)
    t.add_argument("--loss")
    t.add_argument("--out", default="runs")
    t.add_argument("--json", action="store_true")

    # Unset flags are left out (SUPPRESS), so cmd_compare fills them with the train command's defaults.
    c = sub.add_parser("compare", argument_default=argparse.SUPPRESS,
                       help="cross-validate every method and the baselines on the same folds (fast by default)")
    c.add_argument("data", help="sample name, folder, .zip or .csv")
    c.add_argument("--methods", default="all", help="all (default: every method the data allows) or a,b,...; "
                                                    "the baselines are always included")
    c.add_argument("--cv", type=int, help="folds (default: 3 below 400 rows, else 5)")
    c.add_argument("--repeats", type=int, help="repeat k-fold with other shuffles (default 1)")
    modes = c.add_mutually_exclusive_group()
    modes.add_argument("--stagewise", dest="mode", action="store_const", const="stagewise",
                       help="per fold, train image_only once, freeze its encoder, train every other head on its "
                            "cached maps (the default for small_cnn)")
    modes.add_argument("--frozen", dest="mode", action="store_const", const="frozen",
                       help="freeze the pretrained encoder as it is; every head trains on its cached maps "
                            "(the default for a pretrained encoder with its weights at hand)")
    modes.add_argument("--end-to-end", dest="mode", action="store_const", const="end_to_end",
                       help="every model trains its own image encoder (slowest)")
    c.set_defaults(mode=None)
    c.add_argument("--finetune", action="store_true", default=False,
                   help="fast modes: train each head's whole model end to end afterwards (--finetune-epochs, "
                        "--finetune-lr)")
    c.add_argument("--feature-cache", action=argparse.BooleanOptionalAction, default=True,
                   help="keep the frozen encoders' maps between runs (in the image cache's features/ folder)")
    c.add_argument("--encoder", help="image encoder, as for train (default small_cnn)")
    c.add_argument("--encoder-weights", metavar="PATH")
    c.add_argument("--on-missing-weights", choices=["random", "stop"])
    for flag in ("--target", "--image-cols", "--numeric-cols", "--categorical-cols", "--ignore-cols", "--split-col",
                 "--loss"):
        c.add_argument(flag)
    c.add_argument("--task", choices=["classification", "regression"])
    c.add_argument("--ordered-images", action="store_true")
    for flag in ("--epochs", "--batch-size", "--patience", "--image-size", "--seed", "--finetune-epochs"):
        c.add_argument(flag, type=int)
    for flag in ("--lr", "--val-fraction", "--finetune-lr"):
        c.add_argument(flag, type=float)
    c.add_argument("--json", action="store_true", default=False)

    for name, helptext in (("predict", "predict rows with a saved run"), ("explain", "explain one row")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("run_dir")
        rows = c.add_mutually_exclusive_group(required=True)
        rows.add_argument("--row", help="one row as a JSON object")
        if name == "predict":
            rows.add_argument("--csv", help="a CSV of rows (image paths relative to it)")
            c.add_argument("--coverage", type=float, default=0.9,
                           help="level of the split-conformal prediction sets / intervals (default 0.9)")
        c.add_argument("--json", action="store_true")

    c = sub.add_parser("export", help="export a run's model (saved_model, tflite or onnx), verified, with a model card")
    c.add_argument("run_dir")
    c.add_argument("--format", required=True, help="saved_model, tflite or onnx")
    c.add_argument("--out", required=True, help="the export folder (new, or empty; --force replaces it)")
    c.add_argument("--force", action="store_true", help="replace an output folder that holds files")
    c.add_argument("--json", action="store_true")
    c = sub.add_parser("card", help="write a run's model card (markdown)")
    c.add_argument("run_dir")
    c.add_argument("--out", help="file to write (default: print it)")
    c.add_argument("--json", action="store_true")
    w = sub.add_parser("whatif", help="one row of a run's data: its prediction set / interval and counterfactuals")
    w.add_argument("run_dir")
    w.add_argument("--row", required=True, help="the row: its id (id column) or 1-based row number")
    w.add_argument("--counterfactual", action="store_true",
                   help="the nearest validation row predicted otherwise, the smallest edit and the image swap")
    w.add_argument("--lock", help="a,b: table features the edit must not change")
    w.add_argument("--change", type=float, help="regression: how far the prediction must move, signed, in "
                                                "target units (default: + the validation MAE)")
    w.add_argument("--swap-image", action=argparse.BooleanOptionalAction, default=None,
                   help="also swap the row's image for the nearest image predicted otherwise (default: when the "
                        "model has an image branch)")
    w.add_argument("--coverage", type=float, default=0.9, help="level of the prediction set / interval")
    w.add_argument("--json", action="store_true")
    add_playground_parser(sub)
    add_lesson_parser(sub)
    return p
