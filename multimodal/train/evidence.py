"""Evidence picks the default: the simplest method a comparison found not worse than the best one.

Without a comparison, a new setup starts from models/proposal.py's method (by the columns). Once a
cross-validated comparison exists for the same data (the same columns in the same roles and the same
target), the proposal is the SIMPLEST compared method whose verdict against the best one (the best
held-out mean) is not "worse": paired by fold, with runs/verdicts.gain_verdict's interval, as the
Compare page judges the gain over the baselines. Simplest: linear, then tabular_only and image_only,
then the fusion methods, each group by parameter count
(docs/ARCHITECTURE.md, "Evidence picks the default"). Where the image carries no signal, a table
method ties with the fusion methods and is proposed: the default is then no worse than the table alone.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from multimodal.data.dataset import Dataset
from multimodal.models.proposal import Proposal, propose_method
from multimodal.runs.verdicts import WORSE, format_gain, gain_verdict, paired_differences
from multimodal.train.crossval import COMPARISON_FILE, load_comparisons
from multimodal.train.training import default_image_cache

SIMPLICITY = {"linear": 0, "tabular_only": 1, "image_only": 1}   # every other method: 2 (fusion)


def default_comparisons_dir() -> Path:
    """Where the CLI's `compare` keeps its results for `train` to read: beside the decoded-image
    cache (training.default_image_cache), so $MULTIMODAL_CACHE_DIR moves it too."""
    return default_image_cache() / "comparisons"


def save_comparison(result: dict, ds: Dataset, root: Path, name: str) -> Path:
    """Write a comparison's result with what identifies its data (dataset, target, task, columns)
    to root/<name>/comparison.json, where load_comparisons and latest_comparison find it."""
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / COMPARISON_FILE
    path.write_text(json.dumps({**result, **data_identity(ds)}, indent=2))
    return path


def data_identity(ds: Dataset) -> dict:
    """What makes two comparisons comparable: the same dataset, target, task and column roles."""
    return {"dataset": ds.name, "target": ds.target, "task": ds.task, "features": asdict(ds.features)}


def latest_comparison(root: Path, ds: Dataset) -> dict | None:
    """The newest finished comparison under root on the same columns and target as ds, or None."""
    identity = data_identity(ds)
    same = [c for c in load_comparisons(root)
            if all(c.get(key) == value for key, value in identity.items() if key != "dataset")]
    return same[-1] if same else None


def _scores(result: dict, arch: str) -> list[float]:
    return [f["metrics"][result["metric"]] for f in result["results"][arch]["folds"]]


def _fold_rows(result: dict, arch: str) -> tuple[int, int]:
    folds = result["results"][arch]["folds"]
    return (int(round(np.mean([f["rows"]["train"] + f["rows"]["val"] for f in folds]))),
            int(round(np.mean([f["rows"]["test"] for f in folds]))))


def simplicity(result: dict, arch: str) -> tuple[int, float, str]:
    """The order of simplicity: the group, then the parameter count (unknown last), then the name."""
    params = result["results"][arch].get("params")
    return SIMPLICITY.get(arch, 2), float(params) if params is not None else float("inf"), arch


def evidence_proposal(result: dict) -> Proposal | None:
    """The simplest method of `result` (crossval.compare_with_baselines) not worse than the best
    one, with a one-line reason; None when fewer than two methods were compared."""
    results, metric, higher = result["results"], result["metric"], result["higher_is_better"]
    if len(results) < 2:
        return None
    sign = 1.0 if higher else -1.0
    best = max(results, key=lambda a: sign * results[a]["mean"][metric])
    name = metric.removeprefix("val_")
    for arch in sorted(results, key=lambda a: simplicity(result, a)):
        if arch == best:
            return Proposal(best, f"every simpler method compared is worse than {best}, the best held-out "
                                  f"{name} ({results[best]['mean'][metric]:.4g}, {results[best]['k']}-fold): {best} proposed")
        diffs = paired_differences(_scores(result, arch), _scores(result, best), higher)
        verdict = gain_verdict(diffs, *_fold_rows(result, arch), metric, repeats=results[arch]["repeats"])
        if verdict.verdict == WORSE:
            continue
        half = (verdict.high - verdict.low) / 2
        interval = f"{format_gain(-verdict.high, metric, half)} to {format_gain(-verdict.low, metric, half)}"
        return Proposal(arch, f"{best} is not detectably better than {arch} here ({name} difference, 95% "
                              f"interval {interval}, {results[best]['k']}-fold): {arch} proposed")
    return None


def propose(ds: Dataset, root: Path | None, encoder: str | None = None) -> Proposal:
    """The method a new setup starts from: the evidence of the newest comparison on the same data
    under root, else models/proposal.propose_method by the columns."""
    found = latest_comparison(root, ds) if root is not None else None
    by_evidence = evidence_proposal(found) if found else None
    return by_evidence or propose_method(ds.features, encoder=encoder)
