"""The model card (model_card.md): what a run's model was trained on, how, how good it is against the
baselines and how sure that is, what it leans on, where it breaks and what it is for
(docs/ARCHITECTURE.md, "Export and model card").

Every number is read from the run's files (config.json, summary.json, its evaluation record
evaluation.json: the headline metrics Train, Results and the CLI show, with their names and rounding,
runs/headline.py), the latest cross-validated comparison of the same data (comparison.json) or
computed from the model on the run's own rows (class balance, branch importance, the metric with a
branch missing as Results shows it); none is typed in.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from multimodal.core.config import SMALL_DATA_ROWS
from multimodal.core.errors import DataError
from multimodal.data.cells import label_text
from multimodal.data.dataset import Dataset
from multimodal.data.sources import list_samples
from multimodal.explain.report import global_branch_importance
from multimodal.models.fusion import FUSION_METHODS
from multimodal.runs.evaluation import Evaluation, evaluate_run
from multimodal.runs.headline import METRIC_NAMES, best_epoch_text, headline_metrics, metric_text, recorded_evaluation
from multimodal.runs.robustness import CASES, missing_branch_metrics
from multimodal.runs.run import Run
from multimodal.train.crossval import COMPARISON_FILE

CARD_FILE = "model_card.md"


def latest_comparison(run: Run, search: list[Path] | None = None) -> dict | None:
    """The newest comparison.json of the run's dataset and target that includes the run's method, from
    the folders under `search` (default: the app's session layout, `comparisons/` beside `runs/`, and
    the run's sibling folders)."""
    roots = search if search is not None else [run.dir.parent.parent / "comparisons", run.dir.parent]
    found = [p for root in roots if Path(root).is_dir() for p in Path(root).glob(f"*/{COMPARISON_FILE}")]
    for path in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (result.get("dataset") == run.config.get("dataset_name") and result.get("target") == run.config.get("target")
                and run.arch in result.get("results", {})):
            return {**result, "file": str(path)}
    return None


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def source_text(config: dict) -> str:
    """Where the data came from, by name: the sample, or the file's own name (an upload's original name),
    never a path on the machine that trained it (a server's temporary session folder)."""
    data, name = str(config.get("data") or ""), config.get("dataset_name")
    if data in list_samples():
        return f"sample dataset '{data}'"
    file = Path(data.replace("\\", "/")).name if data else ""
    if not file:
        return f"dataset '{name}'" if name else "not recorded"
    return f"'{file}'" + (f" (dataset '{name}')" if name and name not in (file, Path(file).stem) else "")


def _data_section(run: Run, dataset: Dataset | None) -> list[str]:
    cfg, splits = run.config, run.config.get("splits", {})
    lines = ["## Data", "", f"- Source: {source_text(cfg)}, target '{cfg.get('target')}', task {run.task}",
             "- Rows: " + ", ".join(f"{len(splits.get(k, []))} {k}" for k in ("train", "val", "test")
                                     if k in splits)]
    roles: dict[str, list[str]] = {}
    for column, role in (cfg.get("roles") or {}).items():
        roles.setdefault(role, []).append(column)
    lines += [f"- {role} column(s): {', '.join(cols)}" for role, cols in roles.items()]
    if run.task == "classification" and dataset is not None and cfg.get("target") in dataset.frame:
        labels = np.array([label_text(v) for v in dataset.frame[cfg["target"]]], dtype=str)   # as the classes are
        train = labels[np.asarray(splits.get("train", []), dtype=int)]
        lines.append("- Class balance (all rows / training rows): " + ", ".join(
            f"{c} {int((labels == c).sum())} / {int((train == c).sum())}" for c in run.classes))
    elif run.task == "classification":
        lines.append("- Class balance: not shown, the dataset could not be read")
    return lines + [""]


def _method_section(run: Run) -> list[str]:
    model, summary = run.config.get("model", {}), run.summary
    method = FUSION_METHODS.get(run.arch)
    weights = run.config.get("encoder_weights") or summary.get("encoder_weights") or {}
    lines = ["## Method", "", f"- Fusion method: {run.arch}" + (f" ({method.title}; {method.origin})" if method else
                                                                 " (imported model)")]
    if run.spec.image_cols:
        lines.append(f"- Image encoder: {model.get('encoder')} at {model.get('image_size')} px; weights: "
                     f"{weights.get('source', 'unknown')}" + (f", SHA-256 {weights['sha256']}" if weights.get("sha256")
                                                              else " (no pretrained file)"))
    lines += ["", "## Training settings", ""]
    settings = {"epochs run": summary.get("epochs_run"), "epoch budget": summary.get("epochs", run.config.get("epochs")),
                "best epoch": summary.get("best_epoch"), "stopped": summary.get("status"),
                "batch size": run.config.get("batch_size"), "learning rate": run.config.get("lr"),
                "early-stopping patience": run.config.get("patience"), "dropout": model.get("dropout"),
                "L2": model.get("l2"), "augmentation": model.get("augment"),
                "modality dropout": model.get("modality_dropout"),
                "class weights": run.config.get("class_weight") if run.task == "classification" else None,
                "target transform": summary.get("target_transform"), "seed": run.config.get("seed"),
                "training seconds": summary.get("train_seconds")}
    return lines + [f"- {k}: {_fmt(v)}" for k, v in settings.items() if v is not None] + [""]


def _metrics_section(run: Run, record: dict | None) -> list[str]:
    lines = ["## Metrics", ""]
    if record is None:
        return lines + ["Not measured: the run's validation rows could not be read.", ""]
    best = best_epoch_text(run.summary)
    lines += [f"On this run's own {record['rows']} validation rows (one split: a small validation set can flip a "
              f"verdict){', with the weights of its ' + best if best else ''}:", ""]
    lines += [f"- {METRIC_NAMES.get(k, k)}: {metric_text(v)}" for k, v in record["metrics"].items()]
    return lines


def _comparison_section(run: Run, comparison: dict | None) -> list[str]:
    lines = ["", "## Against the baselines", ""]
    if comparison is None:
        return lines + ["No cross-validated comparison of this data was found: the numbers above rest on one split. "
                        "Run one on the Compare page (or `python -m multimodal compare`) for intervals and verdicts.",
                        ""]
    metric = comparison["metric"]
    lines.append(f"From the cross-validated comparison '{Path(comparison['file']).parent.name}' ({comparison.get('k')} "
                 f"folds x {comparison.get('repeats')} repeats, held-out {METRIC_NAMES.get(metric, metric)}; mean ± std "
                 "and the range over folds, each fold a model of its own, so not this run's number above):")
    lines.append("")
    for arch, result in comparison["results"].items():
        folds = [f["metrics"][metric] for f in result["folds"]]
        lines.append(f"- {arch}{' (this model)' if arch == run.arch else ''}: {metric_text(result['mean'][metric])} ± "
                     f"{metric_text(result['std'][metric])} (folds {metric_text(min(folds))} to "
                     f"{metric_text(max(folds))})")
    gain = comparison.get("gain") or {}
    verdicts = [g for g in gain.get("methods", []) if g["arch"] == run.arch]
    if verdicts:
        lines += ["", f"Verdict against the best baseline ({gain['best_baseline']}): {verdicts[0]['sentence']}."]
    return lines + [""]


def _importance_section(run: Run, inputs: dict | None, rows_from: str) -> list[str]:
    lines = ["## Branch importance", ""]
    if inputs is None:
        return lines + ["Not computed: the run's rows could not be read.", ""]
    importance = global_branch_importance(run, inputs)
    unit = "target units" if run.task == "regression" else "logit"
    lines.append(f"Mean |branch Shapley value| ({unit}) over {rows_from}:")
    return lines + [""] + [f"- {b}: {_fmt(float(v))}" for b, v in importance.items()] + [""]


def robustness_text(run: Run, evaluation: Evaluation | None) -> str | None:
    """What the model does with a branch missing, as Results' robustness section measures it
    (runs/robustness.py); None for a one-branch model."""
    spec = run.input_spec
    if not (spec.image_cols and spec.tabular_cols):
        return None
    dropout = (run.config.get("model") or {}).get("modality_dropout")
    how = ("trained with modality dropout, it predicts a row without its image or its table from the embedding "
           "it learned for a missing branch" if dropout else
           "trained without modality dropout, it has no notion of a missing input: a row without its image or its "
           "table is predicted with that branch's mean background embedding (an average input) in its place")
    found = missing_branch_metrics(run, evaluation) if evaluation is not None else None
    if not found:
        return f"a missing branch: {how} (not measured here: the dataset could not be read)"
    name = METRIC_NAMES.get(found["metric"], found["metric"])
    measured = ", ".join(f"{case} {metric_text(found[case])}" for case in CASES)
    return f"a missing branch: {how}; {name} on {found['rows']} validation rows: {measured}"


def _limits_section(run: Run, evaluation: Evaluation | None = None) -> list[str]:
    n_train = len(run.config.get("splits", {}).get("train", []))
    limits = []
    if n_train < SMALL_DATA_ROWS:
        limits.append(f"small data: {n_train} training rows (below {SMALL_DATA_ROWS:,}); expect the metrics to move "
                      "by several points on other rows")
    spec, read = run.spec, run.input_spec
    unread = [c for c in spec.image_cols + spec.tabular_cols if c not in read.image_cols + read.tabular_cols]
    if unread:
        limits.append(f"missing branch: the model does not read {', '.join(unread)}")
    if missing := robustness_text(run, evaluation):
        limits.append(missing)
    if run.config.get("imported"):
        limits.append(f"imported from {run.config.get('source_file')}: its training data and settings are not known "
                      "here; the metrics are measured on this dataset's validation rows")
    limits.append("values or categories outside the training data (a new category reads as 'unseen') are "
                  "extrapolation; images unlike the training images too")
    return ["## Known limits", ""] + [f"- {x}" for x in limits] + [""]


def own_evaluation(run: Run, dataset: Dataset | None) -> Evaluation | None:
    """The run on its validation rows of `dataset` (inputs kept, for the metric with a branch missing);
    None when the dataset is not there or not the run's."""
    if dataset is None:
        return None
    try:
        return evaluate_run(run, dataset, keep_inputs=True)
    except DataError:
        return None


def model_card(run: Run, dataset: Dataset | None = None, inputs: dict | None = None, rows_from: str = "",
               comparison: dict | None = None) -> str:
    """model_card.md for a run. `inputs` (raw, with `rows_from` saying which rows) feed the branch
    importance; `comparison` is the latest cross-validated comparison (`latest_comparison`); the
    metrics are the run's evaluation record (made from `dataset` when the run has none)."""
    evaluation = own_evaluation(run, dataset)
    record = recorded_evaluation(run.dir)
    if record is None and evaluation is not None:
        record = headline_metrics(run, dataset, evaluation)
    title = f"# Model card: {run.arch} ({run.name})"
    intended = ["## Intended use", "",
                "A teaching model, made with Multimodal Studio to learn how image and tabular data are combined. "
                "It is not validated for decisions about people, health, money or safety.", ""]
    return "\n".join([title, "", *intended, *_data_section(run, dataset), *_method_section(run),
                      *_metrics_section(run, record), *_comparison_section(run, comparison),
                      *_importance_section(run, inputs, rows_from), *_limits_section(run, evaluation)])
