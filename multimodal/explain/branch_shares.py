"""Branch shares: how much of an output comes from the image alone, the table alone and their
interaction, for a trained model and for the Playground generator's own score, on one definition.

From a coalition table v(S) over the branches (explain/attributions.coalition_values for a model,
data/playground.truth_table for the generator; docs/ARCHITECTURE.md, "Explanations"): the image's
own effect v({image}) - v({}), the table's v({tabular}) - v({}), and the Shapley interaction
index I = v(both) - v(image) - v(tabular) + v({}) (each branch's Shapley value is its own effect
plus half of I). A share is the mean absolute value of one part over the rows, divided by the sum
of the three: a pure product gives interaction 1.0, a sum of the two latents about half each.
See docs/ARCHITECTURE.md, "The Fusion Playground".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from multimodal.data.dataset import load_dataset
from multimodal.data.inputs import model_inputs
from multimodal.data.playground import background_rows, read_playground, truth_table
from multimodal.explain.attributions import as_embeddings, branch_names, coalition_values, compiled, default_output_index
from multimodal.explain.report import background_embeddings
from multimodal.explain.shapley import shares_from_table
from multimodal.runs.run import load_run

EXPLAINED_ROWS = 128   # held-out rows a race's model is explained on (a few head calls)


def model_shares(run, inputs: dict) -> dict[str, float]:
    """A saved run's shares on raw `inputs` (rows), explaining each row's predicted output against
    the run's own background rows, as the Explain page does."""
    model = run.model
    emb = as_embeddings(model, inputs)
    index = default_output_index(compiled(model)["head"](emb).numpy())
    table = coalition_values(model, emb, background_embeddings(run), index)
    return shares_from_table(table, branch_names(model))


def generator_shares(knobs: dict, lat: dict[str, np.ndarray]) -> dict[str, float]:
    """The Playground data's true shares: the generator's score on ALL its rows, against its own
    seeded background rows (data/playground.background_rows). The one truth every screen shows (the
    preview's caption, the leaderboard, the CLI, a lesson's truth questions)."""
    n = len(lat["z_image"])
    table = truth_table(knobs, lat, np.arange(n), background_rows(n, int(knobs["seed"])))
    return shares_from_table(table, ["image", "tabular"])


def method_shares(run_dir: Path, data_dir: Path, max_rows: int = EXPLAINED_ROWS) -> dict[str, dict[str, float]]:
    """{"model": shares, "truth": shares} for a Playground race's saved model: the model on (up to
    max_rows of) its held-out rows against its own background rows, as the Explain page explains
    it, and the data's true shares (generator_shares: every row, the same for every method)."""
    run = load_run(run_dir)
    knobs, _, lat = read_playground(data_dir)
    rows = np.asarray(run.config["splits"]["test"], dtype=np.int64)[:max_rows]
    ds = load_dataset(Path(data_dir) / "data.csv")
    inputs = model_inputs(ds.frame.iloc[rows], ds.root, run.spec, run.image_size)
    return {"model": model_shares(run, inputs), "truth": generator_shares(knobs, lat)}
