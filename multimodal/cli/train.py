"""`train` (one run, or cross-validation with --cv/--baselines) and `compare` (every method, fast mode)."""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from multimodal.cli.common import UsageError, columns, emit, training_output
from multimodal.cli.parser import build_parser, setting_arg
from multimodal.core.comparison import MIN_FOLDS, MODES, ComparisonOptions, default_processes
from multimodal.core.config import ModelConfig, TrainConfig
from multimodal.core.settings import SETTINGS
from multimodal.core.tasks import LOSSES
from multimodal.data.dataset import load_dataset_for
from multimodal.models.backbones import ENCODERS
from multimodal.models.fusion import FUSION_METHODS, methods_for
from multimodal.models.proposal import propose_method, unused_image_choice
from multimodal.runs.headline import best_epoch_text, headline_lines


def train_config_from_args(args):
    if args.arch is not None and args.arch not in FUSION_METHODS:
        raise UsageError(f"unknown --arch '{args.arch}'; choose one of {', '.join(FUSION_METHODS)}")
    if args.encoder not in ENCODERS:
        raise UsageError(f"unknown --encoder '{args.encoder}'; choose one of {', '.join(ENCODERS)}")
    chosen = image_choice(args)
    if args.arch is not None and not FUSION_METHODS[args.arch].reads_images and chosen:
        # An explicit method that reads no images would leave an explicit image choice unused: say so,
        # before any data is read or model built (docs/ARCHITECTURE.md, "The command line").
        raise UsageError(unused_image_choice(f"--arch {args.arch}", chosen,
                                             [n for n, m in FUSION_METHODS.items() if m.reads_images]))
    if args.loss and not any(args.loss in v for v in LOSSES.values()):
        raise UsageError(f"unknown --loss '{args.loss}'; choose one of mse, mae, huber, mape, crossentropy")
    settings = {name: setting_arg(name, getattr(args, name)) for name in SETTINGS if hasattr(args, name)}
    if args.devices < 1:
        raise UsageError(f"--devices must be at least 1, got {args.devices}")
    if args.cv is not None and args.cv < MIN_FOLDS:
        raise UsageError(f"--cv must be at least {MIN_FOLDS} folds, got {args.cv}")
    if args.repeats < 1:
        raise UsageError(f"--repeats must be at least 1, got {args.repeats}")
    _check_multi_worker(args)
    overrides = {}
    for role, flag in (("image", args.image_cols), ("numeric", args.numeric_cols),
                       ("categorical", args.categorical_cols), ("ignore", args.ignore_cols)):
        overrides.update({c: role for c in columns(flag)})
    if args.split_col:
        overrides[args.split_col] = "split"
    # Without --arch, ModelConfig's default stands until cmd_train has the data to propose from.
    return TrainConfig(data=args.data, target=args.target, task=args.task, overrides=overrides,
                       ordered_images=args.ordered_images, val_fraction=args.val_fraction, seed=args.seed,
                       epochs=args.epochs, batch_size=args.batch_size, patience=args.patience, lr=args.lr,
                       loss=args.loss, target_transform=args.target_transform, devices=args.devices,
                       precision=args.precision,
                       multi_worker=getattr(args, "multi_worker", False),
                       stream=args.stream, on_missing_weights=args.on_missing_weights,
                       freeze_epochs=args.freeze_epochs,
                       # the two-phase settings not given keep TrainConfig's defaults (their one home)
                       **{name: settings[name] for name in ("finetune_epochs", "finetune_lr", "unfreeze")
                          if settings[name] is not None},
                       model=ModelConfig(**({"arch": args.arch} if args.arch else {}), image_size=args.image_size,
                                         seed=args.seed,
                                         encoder=args.encoder, modality_dropout=args.modality_dropout,
                                         dropout=args.dropout, l2=args.l2, augment=args.augment,
                                         **({"width": args.width} if args.width is not None else {}),
                                         encoder_weights_file=str(Path(args.encoder_weights).resolve())
                                         if args.encoder_weights else None))


def image_choice(args) -> str | None:
    """The image settings the user named on the command line ("--encoder mobilenet_v2 and
    --encoder-weights w.h5"), which a proposal must not leave unused; None when none was named."""
    named = [f"--encoder {args.encoder}" if args.encoder != ModelConfig().encoder else "",
             f"--encoder-weights {Path(args.encoder_weights).name}" if args.encoder_weights else "",
             f"--image-cols {args.image_cols}" if args.image_cols else ""]
    named = [n for n in named if n]
    return " and ".join(named) or None


def _check_multi_worker(args) -> None:
    """--multi-worker trains one model on every device of every worker; it does not combine with
    the options that pick devices or train many models."""
    if not getattr(args, "multi_worker", False):
        if getattr(args, "worker_timeout", None) is not None:
            raise UsageError("--worker-timeout applies to --multi-worker training only")
        return
    if args.devices != 1:
        raise UsageError("--multi-worker trains on every GPU of each worker (else its CPU); leave out --devices")
    if args.cv or args.baselines:
        raise UsageError("--multi-worker trains one model; --cv and --baselines are not available with it")
    if args.worker_timeout is not None and not args.worker_timeout > 0:
        raise UsageError(f"--worker-timeout must be above 0 seconds, got {args.worker_timeout:g}")


def cmd_train(args) -> None:
    config = train_config_from_args(args)          # flags are checked before any data is read or TensorFlow loaded

    # lazy: TensorFlow
    from multimodal.train.training import default_image_cache, train
    if config.multi_worker:
        return _train_on_cluster(args, config)
    # The workdir holds zip extractions and streamed images; the decoded-image cache outlives it.
    with tempfile.TemporaryDirectory(prefix="multimodal-") as workdir:
        ds = load_dataset_for(config, workdir)
        # No --arch: the method the app proposes for the same data (models/proposal.py).
        # lazy: TensorFlow (the comparisons' home is train/)
        from multimodal.train.evidence import default_comparisons_dir, propose
        # No --arch: the method the app proposes for the same data (train/evidence.py: a comparison's
        # evidence when `compare` ran on it, else models/proposal.py).
        # An encoder, weights or image columns named explicitly steer it to the methods that read images.
        proposal = None if args.arch else propose(ds, default_comparisons_dir(), encoder=config.model.encoder,
                                                  image_choice=image_choice(args))
        if proposal:
            config = replace(config, model=replace(config.model, arch=proposal.arch))
        proposed = {"proposal_reason": proposal.reason} if proposal else {}
        if args.cv or args.baselines:
            return _train_cv(args, config, ds, proposed)
        run_dir = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model.arch}"
        with training_output():
            summary = train(config, run_dir, dataset=ds, workdir=Path(workdir),
                            image_cache=default_image_cache() if args.image_cache else None)
    metrics = metrics_text(summary)
    because = f" (proposed: {proposal.reason})" if proposal else ""
    emit({**summary, **proposed}, args.json, f"trained {summary['arch']}{because} for {summary['epochs_run']} "
          f"epochs in {summary['train_seconds']:.1f}s -> {summary['run_dir']}\n{metrics}")


def metrics_text(summary: dict) -> str:
    """The run's headline metrics, its evaluation record (summary["evaluation"]) named and rounded as the app
    and the model card show them; then Keras' own evaluation, another quantity, named so."""
    lines = []
    if record := summary.get("evaluation"):
        best = best_epoch_text(summary)
        lines.append(f"{record['rows']} validation rows{', ' + best if best else ''}: " + " · ".join(headline_lines(record)))
    keras = ", ".join(f"{k}={v:.4g}" for k, v in summary["metrics"].items())
    return "\n".join(lines + [f"Keras' evaluate (its loss incl. the L2 penalty, its AUC approximate): {keras}"])


def _train_on_cluster(args, config) -> None:
    """train --multi-worker: this process is one worker of the cluster in TF_CONFIG; every worker
    runs the same command. Only the chief writes the run folder (under --out); the others write
    theirs, and their decoded images, inside their temporary work folder, removed at the end."""

    # lazy: TensorFlow
    from multimodal.train.devices import WORKER_TIMEOUT, join_cluster

    # lazy: TensorFlow
    from multimodal.train.multiworker import lost_worker

    # lazy: TensorFlow
    from multimodal.train.training import default_image_cache, train
    timeout = args.worker_timeout or WORKER_TIMEOUT
    cluster = join_cluster(timeout)   # first: TensorFlow takes a cluster only before its first op
    with tempfile.TemporaryDirectory(prefix="multimodal-") as workdir:
        ds = load_dataset_for(config, workdir)
        # lazy: TensorFlow (train/ is above the CLI's light imports)
        from multimodal.train.evidence import propose
        proposal = None if args.arch else propose(ds, None, encoder=config.model.encoder,
                                                  image_choice=image_choice(args))
        if proposal:
            config = replace(config, model=replace(config.model, arch=proposal.arch))
        run_dir = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model.arch}" if cluster.is_chief \
            else Path(workdir) / "worker-run"
        cache = default_image_cache() if args.image_cache and cluster.is_chief else None
        with training_output(), lost_worker(cluster.name, timeout):
            summary = train(config, run_dir, dataset=ds, workdir=Path(workdir), image_cache=cache)
    place = {"worker": cluster.name, "chief": cluster.is_chief, "workers": cluster.workers}
    if proposal:
        place["proposal_reason"] = proposal.reason
    if not cluster.is_chief:
        summary = {**summary, "run_dir": None}
    metrics = metrics_text(summary)
    where = f"-> {summary['run_dir']}" if cluster.is_chief else "(the chief wrote the run folder)"
    emit({**summary, **place}, args.json, f"{cluster.name} of {cluster.workers} workers trained {summary['arch']} "
          f"for {summary['epochs_run']} epochs in {summary['train_seconds']:.1f}s {where}\n{metrics}")


def _train_cv(args, config, dataset, proposed: dict) -> None:
    """--cv K [--repeats R] [--baselines]: repeated k-fold; val_* are held-out fold metrics.
    dataset: the loaded data; proposed: {"proposal_reason"} when the method was proposed."""

    # lazy: TensorFlow
    from multimodal.train.crossval import compare_with_baselines, cross_validate
    k = args.cv or 5
    out = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model.arch}-cv{k}x{args.repeats}"
    with training_output():
        if args.baselines:
            result = compare_with_baselines(config, ComparisonOptions(k, args.repeats), dataset=dataset)
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
    emit(payload, args.json, "\n".join(lines))


def _compared_methods(text: str) -> list[str] | None:
    """--methods: "all" (None: every method the data allows) or registry names, checked before any data is read."""
    if text.strip() == "all":
        return None
    names = columns(text)
    unknown = [n for n in names if n not in FUSION_METHODS]
    if unknown or not names:
        raise UsageError(f"unknown --methods {', '.join(unknown) or repr(text)}; give 'all' or names among "
                         f"{', '.join(FUSION_METHODS)}")
    return names


def cmd_compare(args) -> None:
    """compare DATA: the baselines and every method (or --methods) on the same folds, in the fast mode
    by default (train/stagewise.py); the same library call as the Compare page."""
    # lazy: the training modules import TensorFlow, which `--help` and the light commands never load
    from multimodal.train.crossval import compare_with_baselines, comparison_summary, default_folds

    # lazy: TensorFlow
    from multimodal.train.evidence import default_comparisons_dir, evidence_proposal, save_comparison

    # lazy: TensorFlow
    from multimodal.train.feature_cache import default_feature_cache

    # lazy: TensorFlow
    from multimodal.train.training import default_image_cache
    started = time.perf_counter()
    # Every setting compare does not take keeps the train command's default (their one home).
    args = argparse.Namespace(**{**vars(build_parser().parse_args(["train", args.data])), **vars(args), "arch": None})
    config = train_config_from_args(args)    # checks the flags, reads no data
    chosen = _compared_methods(args.methods)
    # One model per fold and method: TensorFlow's "retracing" warnings are expected, not the user's concern.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="multimodal-") as workdir, training_output():
        ds = load_dataset_for(config, workdir)
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
        options = ComparisonOptions(k, args.repeats, archs=tuple(methods), mode=args.mode, finetune=args.finetune,
                                    processes=default_processes())
        result = compare_with_baselines(replace(config, model=replace(config.model, arch=arch)), options, dataset=ds,
                                        workdir=Path(workdir), image_cache=default_image_cache(),
                                        cache_dir=default_feature_cache() if args.feature_cache else None)
    # `train` without --arch reads it (train/evidence.py: the best method, or a simpler one shown equivalent).
    saved = save_comparison(result, ds, default_comparisons_dir(), f"{ds.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    rows = comparison_summary(result)
    metric, gain = result["metric"], result["gain"]
    payload = {"dataset": ds.name, "target": ds.target, "task": ds.task, "encoder": config.model.encoder,
               "mode": result["mode"], "finetune": result["finetune"], "k": k, "repeats": args.repeats,
               "metric": metric, "higher_is_better": result["higher_is_better"],
               "methods": {r["arch"]: {"mean": r["mean"], "std": r["std"], "folds": r["folds"]} for r in rows},
               "gain": gain, "seconds": round(time.perf_counter() - started, 3), "saved": str(saved)}
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
    proposal = evidence_proposal(result)
    if proposal:
        payload["proposal"] = {"arch": proposal.arch, "reason": proposal.reason}
        lines.append(f"`train` without --arch now proposes {proposal.arch}: {proposal.reason}")
    emit(payload, args.json, "\n".join(lines))
