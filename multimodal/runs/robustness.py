"""Missing-branch robustness (docs/ARCHITECTURE.md, "Uncertainty and counterfactuals"): a run's
main metric on its validation rows with every input present, with the image missing and with the
table missing.

How a branch goes missing depends on the model, as on the What-if page:
- trained with modality dropout: its embedding is marked missing (NaN), which the head replaces by
  the embedding it learned for "missing" (models/assembly.mark_missing), as when predicting a row
  without its image;
- trained without: the model has no notion of a missing input, so the branch's embedding is replaced
  by its mean over the run's background rows (the explanations' "absent branch"): what the model
  does when it sees an average input instead, which says how much it leans on that branch.
"""
from __future__ import annotations

import numpy as np

from multimodal.core.tasks import main_metric
from multimodal.models.assembly import encode, has_modality_dropout, head_of, mark_missing
from multimodal.runs.evaluation import Evaluation, classification_metrics, regression_metrics
from multimodal.runs.run import Run, probabilities

CASES = ("both present", "image missing", "table missing")
BATCH = 128


def _embeddings(run: Run, inputs: dict) -> dict[str, np.ndarray]:
    n = len(next(iter(inputs.values())))
    parts = [encode(run.model, {k: v[s:s + BATCH] for k, v in inputs.items()}) for s in range(0, n, BATCH)]
    return {b: np.concatenate([np.asarray(p[b], dtype=np.float32) for p in parts]) for b in parts[0]}


def masked_outputs(run: Run, embeddings: dict[str, np.ndarray], gone: list[str],
                   background: dict[str, np.ndarray] | None) -> np.ndarray:
    """Head outputs with the branches in `gone` missing (see the module docstring)."""
    n = len(next(iter(embeddings.values())))
    if has_modality_dropout(run.model):
        emb = mark_missing(embeddings, {b: np.ones(n, bool) for b in gone})
    else:
        emb = {b: np.repeat(background[b].mean(axis=0, keepdims=True), n, axis=0) if b in gone else v
               for b, v in embeddings.items()}
    return np.asarray(head_of(run.model)(emb, training=False), dtype=np.float64)


def missing_branch_metrics(run: Run, ev: Evaluation) -> dict | None:
    """{"metric": name, "how": ..., "both present": value, "image missing": ..., "table missing": ...}
    on the Evaluation's rows (inputs kept); None for a one-branch model (nothing can go missing)."""
    if ev.inputs is None:
        raise ValueError("evaluate with keep_inputs=True")
    embeddings = _embeddings(run, ev.inputs)
    images = [b for b in embeddings if b != "tabular"]
    if not images or "tabular" not in embeddings:
        return None
    dropout = has_modality_dropout(run.model)
    background = None if dropout else _embeddings(run, run.background())
    metric = main_metric(run.task)[0]
    out = {"metric": metric, "rows": len(ev.rows),
           "how": "learned 'missing' embedding (modality dropout)" if dropout
                  else "branch replaced by its mean background embedding (trained without modality dropout)"}
    for case, gone in zip(CASES, ([], images, ["tabular"])):
        outputs = masked_outputs(run, embeddings, gone, background)
        if run.task == "classification":
            value = classification_metrics(ev.y_true, probabilities(outputs, len(run.classes)), run.classes)[metric]
        else:
            value = regression_metrics(ev.y_true, outputs[:, 0])[metric]
        out[case] = float(value)
    return out
