"""`python -m multimodal samples|archs|train|compare|predict|explain` (docs/ARCHITECTURE.md, "The command line").

With --json the last stdout line is one JSON object. A user's mistake exits 2 with one
`error: ...` line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from multimodal.core.errors import DataError

EXIT_USER_ERROR = 2


class UsageError(Exception):
    """A command-line mistake (bad flag value, unreadable JSON)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def _columns(text: str | None) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


def _emit(payload: dict, as_json: bool, text: str) -> None:
    print(json.dumps(payload) if as_json else text)


class _Notices(logging.Handler):
    """The library's warnings (e.g. an image encoder trained from random init because its pretrained
    weights cannot be had) as plain `notice: ...` lines on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"notice: {record.getMessage()}", file=sys.stderr)


NOTICES = _Notices(logging.WARNING)


@contextlib.contextmanager
def _training_output():
    """While training: library notices on stderr, and stdout (Keras' download progress bar) sent
    there too, so stdout carries only the result (with --json, one JSON line)."""
    logger = logging.getLogger("multimodal")
    logger.addHandler(NOTICES)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        logger.removeHandler(NOTICES)


def _unfreeze(text: str) -> int | str:
    """--unfreeze: "all" or a number of top blocks (0 or more)."""
    if text == "all":
        return "all"
    if not text.isdigit():
        raise UsageError(f"--unfreeze must be 'all' or a number of top blocks (0 or more), got '{text}'")
    return int(text)


def cmd_samples(args) -> None:
    from multimodal.data.samples import SAMPLES
    rows = [{"name": s.name, "title": s.title, "task": s.task, "target": s.target, "description": s.description}
            for s in SAMPLES.values()]
    _emit({"samples": rows}, args.json, "\n".join(f"{r['name']:18} {r['task']:15} {r['title']}" for r in rows))


def cmd_archs(args) -> None:
    from multimodal.models.fusion import FUSION_METHODS
    rows = [{"name": m.name, "title": m.title, "branches": list(m.branches), "origin": m.origin,
             "description": m.description, "params": {n: p.to_dict() for n, p in m.params.items()}}
            for m in FUSION_METHODS.values()]
    _emit({"archs": rows}, args.json, "\n".join(f"{r['name']:14} {'+'.join(r['branches']):18} {r['title']}"
                                                for r in rows))


def train_config_from_args(args):
    from multimodal.core.config import ModelConfig, TrainConfig
    from multimodal.core.tasks import LOSSES
    from multimodal.models.backbones import ENCODERS  # lazy: pulls Keras, so checked after parsing
    from multimodal.models.fusion import FUSION_METHODS
    if args.arch is not None and args.arch not in FUSION_METHODS:
        raise UsageError(f"unknown --arch '{args.arch}'; choose one of {', '.join(FUSION_METHODS)}")
    if args.encoder not in ENCODERS:
        raise UsageError(f"unknown --encoder '{args.encoder}'; choose one of {', '.join(ENCODERS)}")
    if args.finetune_lr is not None and not args.finetune_lr > 0:
        raise UsageError(f"--finetune-lr must be above 0, got {args.finetune_lr}")
    if args.loss and not any(args.loss in v for v in LOSSES.values()):
        raise UsageError(f"unknown --loss '{args.loss}'; choose one of mse, mae, huber, mape, crossentropy")
    for flag, value, low in (("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1),
                             ("--image-size", args.image_size, 16), ("--patience", args.patience, 0),
                             ("--devices", args.devices, 1), ("--freeze-epochs", args.freeze_epochs, 0),
                             ("--finetune-epochs", args.finetune_epochs, 0)):
        if value is not None and value < low:
            raise UsageError(f"{flag} must be at least {low}, got {value}")
    for flag, value in (("--modality-dropout", args.modality_dropout), ("--dropout", args.dropout)):
        if value is not None and not 0 <= value < 1:
            raise UsageError(f"{flag} must be in [0, 1), got {value}")
    if args.cv is not None and args.cv < 2:
        raise UsageError(f"--cv must be at least 2 folds, got {args.cv}")
    if args.repeats < 1:
        raise UsageError(f"--repeats must be at least 1, got {args.repeats}")
    if not 0 < args.val_fraction < 1:
        raise UsageError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    overrides = {}
    for role, flag in (("image", args.image_cols), ("numeric", args.numeric_cols),
                       ("categorical", args.categorical_cols), ("ignore", args.ignore_cols)):
        overrides.update({c: role for c in _columns(flag)})
    if args.split_col:
        overrides[args.split_col] = "split"
    # Without --arch, ModelConfig's default stands until cmd_train has the data to propose from.
    return TrainConfig(data=args.data, target=args.target, task=args.task, overrides=overrides,
                       ordered_images=args.ordered_images, val_fraction=args.val_fraction, seed=args.seed,
                       epochs=args.epochs, batch_size=args.batch_size, patience=args.patience, lr=args.lr,
                       loss=args.loss, target_transform=args.target_transform, devices=args.devices,
                       stream=args.stream, on_missing_weights=args.on_missing_weights,
                       freeze_epochs=args.freeze_epochs,
                       # the two-phase settings not given keep TrainConfig's defaults (their one home)
                       **{name: value for name, value in (("finetune_epochs", args.finetune_epochs),
                                                          ("finetune_lr", args.finetune_lr),
                                                          ("unfreeze", args.unfreeze and _unfreeze(args.unfreeze)))
                          if value is not None},
                       model=ModelConfig(**({"arch": args.arch} if args.arch else {}), image_size=args.image_size,
                                         seed=args.seed,
                                         encoder=args.encoder, modality_dropout=args.modality_dropout,
                                         dropout=args.dropout, augment=args.augment,
                                         encoder_weights_file=str(Path(args.encoder_weights).resolve())
                                         if args.encoder_weights else None))


def cmd_train(args) -> None:
    import tempfile
    import time

    from multimodal.data.dataset import load_dataset
    from multimodal.models.proposal import propose_method
    from multimodal.train.training import default_image_cache, train
    config = train_config_from_args(args)          # flags are checked before any data is read
    # The workdir holds zip extractions and streamed images; the decoded-image cache outlives it.
    with tempfile.TemporaryDirectory(prefix="multimodal-") as workdir:
        ds = load_dataset(config.data, workdir=Path(workdir), target=config.target, task=config.task,
                          overrides=config.overrides, ordered_images=config.ordered_images)
        # No --arch: the method the app proposes for the same data (models/proposal.py).
        proposal = None if args.arch else propose_method(ds.features, encoder=config.model.encoder)
        if proposal:
            config = replace(config, model=replace(config.model, arch=proposal.arch))
        proposed = {"proposal_reason": proposal.reason} if proposal else {}
        if args.cv or args.baselines:
            return _train_cv(args, config, ds, proposed)
        run_dir = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model.arch}"
        with _training_output():
            summary = train(config, run_dir, dataset=ds, workdir=Path(workdir),
                            image_cache=default_image_cache() if args.image_cache else None)
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in summary["metrics"].items())
    because = f" (proposed: {proposal.reason})" if proposal else ""
    _emit({**summary, **proposed}, args.json, f"trained {summary['arch']}{because} for {summary['epochs_run']} "
          f"epochs in {summary['train_seconds']:.1f}s -> {summary['run_dir']}\n{metrics}")


def _train_cv(args, config, dataset, proposed: dict) -> None:
    """--cv K [--repeats R] [--baselines]: repeated k-fold; val_* are held-out fold metrics.
    dataset: the loaded data; proposed: {"proposal_reason"} when the method was proposed."""
    import time

    from multimodal.train.crossval import compare_with_baselines, cross_validate
    k = args.cv or 5
    out = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model.arch}-cv{k}x{args.repeats}"
    with _training_output():
        if args.baselines:
            result = compare_with_baselines(config, k, args.repeats, dataset=dataset)
            chosen = result["results"][config.model.arch]
            payload = {**chosen, "baselines": {a: {"mean": r["mean"], "std": r["std"]}
                                               for a, r in result["results"].items()},
                       "metric": result["metric"], "fusion_gain": result["gain"]}
        else:
            payload = cross_validate(config, k, args.repeats, dataset=dataset, out_dir=out, keep_runs=True)
    payload.update(proposed)
    lines = [f"{payload['arch']}: {payload['k']}-fold x {payload['repeats']} cross-validation (held-out folds)"]
    lines += [f"  (proposed: {proposed['proposal_reason']})"] if proposed else []
    lines += [f"  {m:14} {payload['mean'][m]:.4g} +- {payload['std'][m]:.3g}" for m in payload["mean"]]
    if args.baselines:
        metric, gain = payload["metric"], payload["fusion_gain"]
        lines.append(f"{metric} by method (mean +- std over folds):")
        lines += [f"  {a:14} {r['mean'][metric]:.4g} +- {r['std'][metric]:.3g}" for a, r in payload["baselines"].items()]
        if gain is None:
            lines.append("no baseline to compare with: the data allows none besides this method")
        else:
            lines.append(f"gain in {metric} over {gain['best_baseline']} (paired by fold, positive = better):")
            lines += [f"  {g['arch']:14} {g['sentence']}" for g in gain["methods"]]
    _emit(payload, args.json, "\n".join(lines))


def _compared_methods(text: str) -> list[str] | None:
    """--methods: "all" (None: every method the data allows) or registry names, checked before any data is read."""
    from multimodal.models.fusion import FUSION_METHODS
    if text.strip() == "all":
        return None
    names = _columns(text)
    unknown = [n for n in names if n not in FUSION_METHODS]
    if unknown or not names:
        raise UsageError(f"unknown --methods {', '.join(unknown) or repr(text)}; give 'all' or names among "
                         f"{', '.join(FUSION_METHODS)}")
    return names


def cmd_compare(args) -> None:
    """compare DATA: the baselines and every method (or --methods) on the same folds, in the fast mode
    by default (train/stagewise.py); the same library call as the Compare page."""
    import tempfile
    import time

    from multimodal.data.dataset import load_dataset
    from multimodal.models.fusion import FUSION_METHODS, methods_for
    from multimodal.models.proposal import propose_method
    from multimodal.train.crossval import compare_with_baselines, comparison_summary, default_folds
    from multimodal.train.feature_cache import default_feature_cache
    from multimodal.train.stagewise import MODES
    from multimodal.train.training import default_image_cache
    started = time.perf_counter()
    # Every setting compare does not take keeps the train command's default (their one home).
    args = argparse.Namespace(**{**vars(build_parser().parse_args(["train", args.data])), **vars(args), "arch": None})
    config = train_config_from_args(args)    # checks the flags, reads no data
    chosen = _compared_methods(args.methods)
    # One model per fold and method: TensorFlow's "retracing" warnings are expected, not the user's concern.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="multimodal-") as workdir, _training_output():
        ds = load_dataset(config.data, workdir=Path(workdir), target=config.target, task=config.task,
                          overrides=config.overrides, ordered_images=config.ordered_images)
        spec = ds.features
        allowed = methods_for(bool(spec.image_cols), bool(spec.tabular_cols), len(spec.image_cols))
        refused = [n for n in chosen or [] if n not in allowed]
        if refused:
            raise UsageError(f"this data cannot use {', '.join(refused)} (its branches: "
                             f"{'; '.join('+'.join(FUSION_METHODS[n].branches) for n in refused)}); it allows "
                             f"{', '.join(allowed)}")
        methods = chosen or allowed
        fusions = [n for n in methods if not FUSION_METHODS[n].is_baseline]
        arch = propose_method(spec, encoder=config.model.encoder).arch if chosen is None else (fusions or methods)[0]
        k = args.cv or default_folds(len(ds.frame))
        result = compare_with_baselines(replace(config, model=replace(config.model, arch=arch)), k, args.repeats,
                                        archs=methods, dataset=ds, workdir=Path(workdir), mode=args.mode,
                                        finetune=args.finetune, image_cache=default_image_cache(),
                                        cache_dir=default_feature_cache() if args.feature_cache else None)
    rows = comparison_summary(result)
    metric, gain = result["metric"], result["gain"]
    payload = {"dataset": ds.name, "target": ds.target, "task": ds.task, "encoder": config.model.encoder,
               "mode": result["mode"], "finetune": result["finetune"], "k": k, "repeats": args.repeats,
               "metric": metric, "higher_is_better": result["higher_is_better"],
               "methods": {r["arch"]: {"mean": r["mean"], "std": r["std"], "folds": r["folds"]} for r in rows},
               "gain": gain, "seconds": round(time.perf_counter() - started, 3)}
    lines = [f"{len(rows)} methods, {k}-fold x {args.repeats} on {ds.name}, mode {result['mode']} "
             f"({MODES[result['mode']]}): {payload['seconds']:.0f} s",
             f"held-out {metric.removeprefix('val_')} by method (mean +- std over folds), best first:"]
    lines += [f"  {r['arch']:18} {r['mean']:.4g} +- {r['std']:.3g}   folds: {', '.join(f'{v:.4g}' for v in r['folds'])}"
              for r in rows]
    if gain is None:
        lines.append("no baseline to compare with: the data allows none besides the methods compared")
    else:
        lines.append(f"gain in {metric.removeprefix('val_')} over {gain['best_baseline']} (paired by fold, "
                     "positive = better):")
        lines += [f"  {g['arch']:18} {g['sentence']}" for g in gain["methods"]]
    _emit(payload, args.json, "\n".join(lines))


def _rows_inputs(args, run, allow_missing_images: bool = False) -> tuple[dict, dict]:
    """Model inputs for --row JSON (one object; image paths as given, relative to the working
    directory) or --csv FILE (image paths relative to the CSV, as in a dataset), and the branches
    declared missing ({branch: (N,) bool}; a --row without its images, for predict only)."""
    from multimodal.data.sources import read_csv
    from multimodal.runs.run import run_inputs
    if getattr(args, "csv", None):
        csv = Path(args.csv)
        if not csv.is_file():
            raise UsageError(f"--csv file '{csv}' does not exist")
        return run_inputs(run, read_csv(csv, min_rows=1), csv.resolve().parent), {}
    try:
        row = json.loads(args.row)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--row is not valid JSON ({exc.msg} at char {exc.pos}); "
                         "pass one object such as '{\"age\": 50}'") from None
    if not isinstance(row, dict):
        raise UsageError("--row must be one JSON object mapping column names to values")
    spec = run.input_spec
    complete_table = all(c in row for c in spec.tabular_cols)   # else: one message listing every gap
    if spec.image_cols and spec.tabular_cols and complete_table and not any(row.get(c) for c in spec.image_cols):
        from multimodal.models.assembly import branch_names
        _check_missing_images(run, spec.image_cols, allow_missing_images)
        blank = np.zeros((1, len(spec.image_cols), run.image_size, run.image_size, 3), np.uint8)
        images = [b for b in branch_names(run.model) if b != "tabular"]
        frame = pd.DataFrame([{**row, **{c: None for c in spec.image_cols}}])
        return run_inputs(run, frame, images=blank), {b: np.ones(1, bool) for b in images}
    return run_inputs(run, pd.DataFrame([row]), images=_row_images(run, row)), {}


def _check_missing_images(run, image_cols: list[str], allowed: bool) -> None:
    """A row without its images can be predicted only by a model trained with modality dropout."""
    if not allowed:
        raise UsageError(f"--row has no image for {image_cols}; explanations need every input")
    if not (run.config.get("model") or {}).get("modality_dropout"):
        raise UsageError(f"--row has no image for {image_cols}, and this model was trained without modality "
                         "dropout, so it needs them; give the image path(s), or retrain with --modality-dropout 0.2 "
                         "to predict without an image")


def _row_images(run, row: dict):
    """Decode the row's own image files: the user names them on their command line."""
    from multimodal.data.images import load_image
    spec = run.input_spec
    missing = [c for c in spec.image_cols if not row.get(c)] + [c for c in spec.tabular_cols if c not in row]
    if missing:
        raise UsageError(f"--row lacks column(s) {missing}; this model reads {spec.image_cols + spec.tabular_cols} "
                         "(use null for an unknown feature value; leave out every image column to predict "
                         "without the image, if the model was trained with --modality-dropout)")
    if not spec.image_cols:
        return None
    frames = []
    for col in run.spec.image_cols:
        path = Path(str(row[col])).expanduser()
        if not path.is_file():
            raise UsageError(f"column '{col}': image file '{path}' does not exist")
        frames.append(load_image(path, run.image_size))
    return np.stack(frames)[None]


def cmd_predict(args) -> None:
    from multimodal.models.assembly import predict_with_missing
    from multimodal.runs.run import describe_predictions, load_run, predict
    run = load_run(Path(args.run_dir))
    inputs, missing = _rows_inputs(args, run, allow_missing_images=True)
    outputs = predict_with_missing(run.model, inputs, missing) if missing else predict(run, inputs)
    rows = [{**r, "missing": sorted(missing)} if missing else r for r in describe_predictions(run, outputs)]
    text = "\n".join(f"row {r['row']}: {r['prediction']}" + (
        "  (" + ", ".join(f"{c}: {p:.3f}" for c, p in r["probabilities"].items()) + ")" if "probabilities" in r else "")
        + (f"  [{', '.join(r['missing'])} treated as missing]" if "missing" in r else "") for r in rows)
    _emit({"predictions": rows}, args.json, text)


def cmd_explain(args) -> None:
    from multimodal.explain.report import explain_row, to_json
    from multimodal.runs.run import load_run
    run = load_run(Path(args.run_dir))
    result = to_json(explain_row(run, _rows_inputs(args, run)[0]))
    lines = [f"output {result['output']:.4f} = base {result['base_value']:.4f} ({result['baseline']})"]
    lines += [f"  {name:10} {value:+.4f}" for name, value in result["branches"].items()]
    lines += [f"  feature {name:20} {value:+.4f}" for name, value in result["features"].items()]
    _emit(result, args.json, "\n".join(lines))


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
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random flips, rotations and zooms of the training images")
    t.add_argument("--devices", type=int, default=1,
                   help="train data-parallel on N devices: GPUs if TensorFlow sees any (mixed precision), "
                        "else N logical CPU devices")
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
        c.add_argument("--json", action="store_true")
    return p


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up logging (which ignores TF_CPP_MIN_LOG_LEVEL in
    2.21) sent to /dev/null, so stderr carries only our own messages."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


COMMANDS = {"samples": cmd_samples, "archs": cmd_archs, "train": cmd_train, "compare": cmd_compare,
            "predict": cmd_predict, "explain": cmd_explain}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter off stderr
    try:
        args = build_parser().parse_args(argv)
        if args.command in ("train", "compare", "predict", "explain"):
            import_tensorflow_quietly()
        COMMANDS[args.command](args)
    except (UsageError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # e.g. an --out folder that cannot be written, a full disk
        where = f" '{exc.filename}'" if exc.filename else ""
        print(f"error: cannot access{where} ({exc.strerror or exc}); check the path and its permissions",
              file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        print("error: out of memory; use a smaller --image-size or --batch-size, or fewer rows", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
