"""`predict` and `explain`: rows given as JSON or a CSV, run through a saved run's model."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from multimodal.cli.common import UsageError, emit
from multimodal.core.errors import DataError
from multimodal.data.images import load_image
from multimodal.data.sources import read_csv
from multimodal.runs.calibration import recorded_temperature


def _rows_inputs(args, run, allow_missing_images: bool = False) -> tuple[dict, dict]:
    """Model inputs for --row JSON (one object; image paths as given, relative to the working
    directory) or --csv FILE (image paths relative to the CSV, as in a dataset), and the branches
    declared missing ({branch: (N,) bool}; a --row without its images, for predict only)."""
    # lazy: TensorFlow
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
        # lazy: TensorFlow
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
    # lazy: TensorFlow
    from multimodal.models.assembly import predict_with_missing

    # lazy: TensorFlow
    from multimodal.runs.run import describe_predictions, load_run, predict
    run = load_run(Path(args.run_dir))
    inputs, missing = _rows_inputs(args, run, allow_missing_images=True)
    outputs = predict_with_missing(run.model, inputs, missing) if missing else predict(run, inputs)
    temperature = recorded_temperature(run.dir) if run.task == "classification" else None
    shown = outputs / temperature if temperature else outputs     # same class, temperature-scaled probabilities
    rows = [{**r, "missing": sorted(missing)} if missing else r for r in describe_predictions(run, shown)]
    if temperature:
        rows = [{**r, "temperature": temperature} for r in rows]
    conformal = calibration(run, args.coverage)
    if conformal is not None:
        rows = [{**r, "uncertainty": u} for r, u in zip(rows, conformal.describe(outputs, run.classes))]
    text = "\n".join(f"row {r['row']}: {r['prediction']}" + (
        "  (" + ", ".join(f"{c}: {p:.3f}" for c, p in r["probabilities"].items()) + ")" if "probabilities" in r else "")
        + (f"  {conformal.text(r['uncertainty'])}" if "uncertainty" in r else "")
        + (f"  [{', '.join(r['missing'])} treated as missing]" if "missing" in r else "") for r in rows)
    if temperature:
        text += f"\nprobabilities temperature-scaled (T = {temperature:.3f}, recorded in the run)"
    if conformal is not None:
        text += f"\n{conformal.caption()}" + (f"\nwarning: {conformal.warning}" if conformal.warning else "")
    emit({"predictions": rows}, args.json, text)


def calibration(run, coverage: float):
    """The run's split-conformal calibration, or None with a `notice:` on stderr saying why not (no
    validation rows, data gone): the predictions are still printed."""
    # lazy: TensorFlow (the calibration predicts the validation rows)
    from multimodal.runs.conformal import calibrate_run
    try:
        return calibrate_run(run, coverage)
    except DataError as exc:
        if "coverage must be" in str(exc):
            raise
        print(f"notice: no prediction sets or intervals: {exc}", file=sys.stderr)
        return None


def cmd_explain(args) -> None:
    # lazy: TensorFlow
    from multimodal.explain.report import explain_row, to_json

    # lazy: TensorFlow
    from multimodal.runs.run import load_run
    run = load_run(Path(args.run_dir))
    result = to_json(explain_row(run, _rows_inputs(args, run)[0]))
    lines = [f"output {result['output']:.4f} = base {result['base_value']:.4f} ({result['baseline']})"]
    lines += [f"  {name:10} {value:+.4f}" for name, value in result["branches"].items()]
    lines += [f"  feature {name:20} {value:+.4f}" for name, value in result["features"].items()]
    emit(result, args.json, "\n".join(lines))
