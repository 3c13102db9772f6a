"""Evidence picks the default: the best-scoring method a comparison found, or a simpler one shown equivalent to it.

Without a comparison, a new setup starts from models/proposal.py's method (by the columns). Once a
cross-validated comparison exists for the same data (the same columns in the same roles and the same
target), the proposal is the compared method with the best held-out mean, unless a SIMPLER compared
method is shown EQUIVALENT to it: the whole 95% interval of their paired difference (by fold, with
runs/verdicts.gain_verdict's interval, as the Compare page judges a gain) inside +-M, the margin of
the metric (core/settings.EQUIVALENCE_MARGINS). "Not detectably worse" is not enough: three folds
rarely detect anything, and that rule threw away an 8-point gain on skin_lesions. The reason says how
sure the proposal is in Compare's verdict words ("better", "no detectable difference"), never "worse"
where the verdict was "no detectable difference". Simplest: linear, then tabular_only and image_only,
then the fusion methods, each group by parameter count.
See docs/ARCHITECTURE.md, "Evidence picks the default".

A proposal is a recommendation: the app offers it as a button and never changes the user's method.
An explicit image choice (an encoder, its weights, image columns) steers it to the methods that read
images (`propose`'s `image_choice`), so the choice is not silently left unused.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from multimodal.core.errors import DataError
from multimodal.core.settings import equivalence_margin
from multimodal.data.dataset import Dataset
from multimodal.models.fusion import FUSION_METHODS
from multimodal.models.proposal import Proposal, propose_method
from multimodal.runs.verdicts import NO_DIFFERENCE, ONE_SPLIT, GainVerdict, format_gain, gain_verdict, paired_differences
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


def reads_images(arch: str) -> bool:
    """Whether the registry method `arch` runs the image encoder (False for a name it does not hold)."""
    return arch in FUSION_METHODS and FUSION_METHODS[arch].reads_images


def paired_verdict(result: dict, arch: str, other: str) -> GainVerdict:
    """arch minus other on the same folds (positive = arch better), judged as Compare judges a gain."""
    diffs = paired_differences(_scores(result, arch), _scores(result, other), result["higher_is_better"])
    return gain_verdict(diffs, *_fold_rows(result, arch), result["metric"], repeats=result["results"][arch]["repeats"])


def interval_text(verdict: GainVerdict, metric: str) -> str:
    """"-0.029 to +0.189", at the precision format_gain gives the metric."""
    half = (verdict.high - verdict.low) / 2
    return f"{format_gain(verdict.low, metric, half)} to {format_gain(verdict.high, metric, half)}"


def _judged(verdict: GainVerdict, metric: str) -> str:
    """Compare's verdict word with its interval: "better (95% interval +0.050 to +0.120)"."""
    if verdict.verdict == ONE_SPLIT:
        return ONE_SPLIT
    if verdict.low is None or verdict.high <= verdict.low:
        return f"{verdict.verdict} (every fold gave the same difference: no interval)"
    return f"{verdict.verdict} (95% interval {interval_text(verdict, metric)})"


def is_equivalent(verdict: GainVerdict, margin: float | None) -> bool:
    """The whole interval of the difference inside [-margin, +margin] (an interval of zero width, with
    no spread to measure the noise by, shows nothing)."""
    return (margin is not None and verdict.low is not None and verdict.high > verdict.low
            and -margin <= verdict.low and verdict.high <= margin)


def _folds_text(entry: dict) -> str:
    repeats = int(entry.get("repeats", 1))
    return f"{entry['k']}-fold" + (f" x {repeats}" if repeats > 1 else "")


def evidence_proposal(result: dict, *, images_only: bool = False) -> Proposal | None:
    """The proposal of `result` (crossval.compare_with_baselines), with a one-line reason: the
    simplest method shown equivalent to the best within the metric's margin, else the best one with
    its verdicts against the runner-up and the simplest. `images_only`: among the methods that read
    images. None when fewer than two methods were compared (or, with `images_only`, none reads images)."""
    results, metric, higher = result["results"], result["metric"], result["higher_is_better"]
    if len(results) < 2:
        return None
    candidates = [a for a in results if reads_images(a)] if images_only else list(results)
    if not candidates:
        return None
    name, sign = metric.removeprefix("val_"), 1.0 if higher else -1.0
    ranked = sorted(candidates, key=lambda a: -sign * results[a]["mean"][metric])
    best = ranked[0]
    best_mean = results[best]["mean"][metric]
    folds = _folds_text(results[best])
    among = " among the methods that read images" if images_only else ""
    if len(ranked) == 1:
        return Proposal(best, f"{best} is the only compared method that reads images ({name} {best_mean:.4g}, "
                              f"{folds}): {best} proposed")
    margin = equivalence_margin(metric, best_mean)
    margin_text = f"+-{format_gain(margin, metric, margin).lstrip('+')}" if margin is not None else ""
    by_simplicity = sorted(candidates, key=lambda a: simplicity(result, a))
    for arch in by_simplicity[:by_simplicity.index(best)]:
        verdict = paired_verdict(result, arch, best)
        if is_equivalent(verdict, margin):
            return Proposal(arch, f"{NO_DIFFERENCE} between {arch} and {best}, the best held-out {name}{among}: "
                                  f"{arch} minus {best} 95% interval {interval_text(verdict, metric)}, inside the "
                                  f"equivalence margin {margin_text} ({folds}): the simpler {arch} proposed")
    against = [(ranked[1], "runner-up")]
    if by_simplicity[0] not in (best, ranked[1]):
        against.append((by_simplicity[0], "simplest"))
    said = "; ".join(f"against {other} ({role}): {_judged(paired_verdict(result, best, other), metric)}"
                     for other, role in against)
    simpler = by_simplicity.index(best) > 0
    unproven = (f"; no simpler method shown equivalent within {margin_text}" if simpler and margin_text else "")
    return Proposal(best, f"{best} has the best held-out {name}{among} ({best_mean:.4g}, {folds}); {said}"
                          f"{unproven}: {best} proposed")


def propose(ds: Dataset, root: Path | None, encoder: str | None = None, image_choice: str | None = None) -> Proposal:
    """The method a new setup starts from: the evidence of the newest comparison on the same data
    under root, else models/proposal.propose_method by the columns.

    `image_choice` names what the user chose explicitly for the images ("--encoder mobilenet_v2",
    "the MobileNetV2 encoder"): a proposal that would leave it unused is steered to the methods that
    read images, and says so; a DataError when the data has no image columns to use it on."""
    found = latest_comparison(root, ds) if root is not None else None
    proposal = (evidence_proposal(found) if found else None) or propose_method(ds.features, encoder=encoder)
    if image_choice is None or reads_images(proposal.arch):
        return proposal
    if not ds.features.image_cols:
        raise DataError(f"{image_choice} is an image choice, but the data has no image columns: every method would "
                        "leave it unused; drop it, or give an image column its role (--image-cols, the Data page)")
    steered = (evidence_proposal(found, images_only=True) if found else None) or propose_method(
        ds.features, encoder=encoder)
    return Proposal(steered.arch, f"{steering_sentence(image_choice, proposal.arch)}: {steered.reason}")


def steering_sentence(image_choice: str, unused_by: str) -> str:
    """The one sentence the CLI and the app show when an explicit image choice steers the proposal."""
    return f"{unused_by} would leave {image_choice} unused, so only methods that read images are proposed"
