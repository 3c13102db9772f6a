"""Evidence picks the default: the best compared method, or a simpler one shown equivalent (train/evidence.py;
the rule's wording and steering: tests/test_proposals.py)."""
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


def test_a_table_method_tied_but_not_shown_equivalent_leaves_the_best_proposed():
    result = comparison(linear=method([0.50, 0.52, 0.49], 30), tabular_only=method([0.70, 0.74, 0.71], 900),
                        image_only=method([0.55, 0.50, 0.52], 20_000),
                        late_concat=method([0.74, 0.72, 0.73], 25_000), gated=method([0.71, 0.73, 0.70], 24_000))
    proposal = evidence_proposal(result)
    # the old rule proposed tabular_only ("not detectably better"); its interval is wider than +-0.02
    assert proposal.arch == "late_concat"
    assert proposal.reason.startswith("late_concat has the best held-out accuracy (0.73, 3-fold); against "
                                      "tabular_only (runner-up): no detectable difference (95% interval ")
    assert "against linear (simplest): better (95% interval +" in proposal.reason
    assert proposal.reason.endswith("no simpler method shown equivalent within +-0.020: late_concat proposed")


def test_the_smallest_equivalent_method_is_proposed_else_the_best():
    result = comparison(linear=method([0.50, 0.52, 0.49], 30), tabular_only=method([0.60, 0.61, 0.62], 900),
                        image_only=method([0.55, 0.56, 0.54], 20_000),
                        late_concat=method([0.80, 0.81, 0.83], 25_000), gated=method([0.829, 0.819, 0.839], 24_000),
                        film=method([0.83, 0.82, 0.84], 90_000))
    proposal = evidence_proposal(result)
    # film has the best mean; gated (fewer parameters) differs by 0.001 on every fold: equivalent
    assert proposal.arch == "gated" and proposal.reason.startswith(
        "no detectable difference between gated and film, the best held-out accuracy: gated minus film 95% interval ")
    alone = comparison(linear=method([0.50, 0.52, 0.49]), film=method([0.83, 0.82, 0.84]))
    best = evidence_proposal(alone)
    assert best.arch == "film" and best.reason.startswith("film has the best held-out accuracy (0.83, 3-fold); "
                                                          "against linear (runner-up): better (95% interval +")
    assert best.reason.endswith("no simpler method shown equivalent within +-0.020: film proposed")


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
    assert propose(ds, root) == evidence_proposal(tied) and propose(ds, root).arch == "late_concat"
