"""Evidence picks the default: the simplest compared method not worse than the best (train/evidence.py)."""
from __future__ import annotations

from multimodal.data.dataset import load_dataset
from multimodal.models.proposal import propose_method
from multimodal.train.evidence import evidence_proposal, latest_comparison, propose, save_comparison


def method(folds: list[float], params: int | None = None) -> dict:
    rows = {"train": 60, "val": 20, "test": 40}
    out = {"mean": {"val_accuracy": sum(folds) / len(folds)}, "repeats": 1, "k": len(folds),
           "folds": [{"metrics": {"val_accuracy": v}, "rows": rows} for v in folds]}
    return {**out, "params": params} if params is not None else out


def comparison(**methods: dict) -> dict:
    return {"metric": "val_accuracy", "higher_is_better": True, "k": 3, "results": methods}


def test_a_fusion_method_not_detectably_better_than_the_table_proposes_the_table():
    result = comparison(linear=method([0.50, 0.52, 0.49], 30), tabular_only=method([0.70, 0.74, 0.71], 900),
                        image_only=method([0.55, 0.50, 0.52], 20_000),
                        late_concat=method([0.74, 0.72, 0.73], 25_000), gated=method([0.71, 0.73, 0.70], 24_000))
    proposal = evidence_proposal(result)
    assert proposal.arch == "tabular_only"   # linear is clearly worse; tabular_only ties with the best
    assert proposal.reason.startswith("late_concat is not detectably better than tabular_only here (accuracy "
                                      "difference, 95% interval ")
    assert proposal.reason.endswith("3-fold): tabular_only proposed")


def test_when_every_simpler_method_is_worse_the_smallest_tied_fusion_method_is_proposed():
    result = comparison(linear=method([0.50, 0.52, 0.49], 30), tabular_only=method([0.60, 0.61, 0.62], 900),
                        image_only=method([0.55, 0.56, 0.54], 20_000),
                        late_concat=method([0.80, 0.81, 0.83], 25_000), gated=method([0.84, 0.80, 0.82], 24_000),
                        film=method([0.83, 0.82, 0.84], 90_000))
    proposal = evidence_proposal(result)
    # film has the best mean, but gated (fewer parameters than late_concat) is not detectably worse
    assert proposal.arch == "gated" and "film is not detectably better than gated" in proposal.reason
    alone = comparison(linear=method([0.50, 0.52, 0.49]), film=method([0.83, 0.82, 0.84]))
    best = evidence_proposal(alone)
    assert best.arch == "film" and best.reason == ("every simpler method compared is worse than film, the best "
                                                   "held-out accuracy (0.83, 3-fold): film proposed")


def test_only_a_comparison_of_the_same_columns_and_target_proposes(tiny_samples, tmp_path):
    ds = load_dataset(tiny_samples["skin_lesions"])
    root = tmp_path / "comparisons"
    assert propose(ds, root) == propose_method(ds.features)       # no comparison: by the columns
    tied = comparison(linear=method([0.50, 0.52, 0.49], 30), tabular_only=method([0.70, 0.74, 0.71], 900),
                      late_concat=method([0.74, 0.72, 0.73], 25_000))
    other_target = load_dataset(tiny_samples["skin_lesions"], target="sex")
    save_comparison(tied, other_target, root, "other-target")
    assert latest_comparison(root, ds) is None and propose(ds, root).arch == propose_method(ds.features).arch
    save_comparison(tied, ds, root, "same-data")
    assert latest_comparison(root, ds)["dataset"] == ds.name
    assert propose(ds, root).arch == "tabular_only"
