"""Export a run's model, verified, into a folder others can use with no Multimodal Studio code
(docs/ARCHITECTURE.md, "Export and model card").

`export_run` writes the model in one format (export_formats.py) into a staging folder beside the
output folder, reloads it with the format's own runtime, runs it on the verification rows and
compares it with the `.keras` model's predictions; only an export within TOLERANCE is moved into
place, with signature.json, a README.md usage example (export_readme.py) and any extra files (the
model card). A refused export leaves no files behind.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from multimodal.core.errors import DataError
from multimodal.data.dataset import Dataset, load_dataset_for
from multimodal.data.inputs import input_name
from multimodal.models.assembly import grouped_columns
from multimodal.runs.evaluation import check_compatible, evaluation_rows
from multimodal.runs.export_formats import (
    CODES_INPUT,
    ExportFormat,
    export_feed,
    export_format,
    flex_ops,
    load_exported,
    missing_packages,
    vocabularies,
    write_model,
)
from multimodal.runs.export_readme import usage_readme
from multimodal.runs.run import Run, predict, probabilities, run_inputs

TOLERANCE = 1e-4          # largest difference allowed: probabilities, or relative for regression
SIGNATURE_FILE = "signature.json"
VOCABULARY_FILE = "vocabulary.json"


@dataclass
class ExportResult:
    format: str
    folder: Path
    files: dict[str, int]            # file (relative) -> bytes
    model_bytes: int                 # the model file (or the SavedModel folder) alone
    max_difference: float
    measure: str                     # what max_difference measures
    rows: int
    rows_from: str                   # which rows were predicted to verify
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {**asdict(self), "folder": str(self.folder)}


@dataclass
class VerificationRows:
    inputs: dict[str, np.ndarray]    # raw inputs, one array per column
    description: str
    dataset: Dataset | None = None   # the run's dataset, when it could be read


def verification_rows(run: Run, dataset: Dataset | None = None) -> VerificationRows:
    """The run's validation rows (else its test rows) from its dataset: the one given, else the one its
    config names. When that dataset cannot be read any more (a deleted upload), the run's background
    rows (raw training rows saved in the run folder) stand in, and the description says so."""
    reason = ""
    if dataset is None:
        try:
            dataset = load_dataset_for(run.config)
        except (DataError, OSError, KeyError) as exc:
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    if dataset is not None:
        check_compatible(run, dataset)
        split, rows = evaluation_rows(run, dataset)
        inputs = run_inputs(run, dataset.frame.iloc[rows], dataset.root)
        return VerificationRows(inputs, f"{len(rows)} {split} rows of '{dataset.name}'", dataset)
    background = run.background()
    n = len(next(iter(background.values())))
    return VerificationRows(background, f"{n} background (training) rows saved in the run folder, because its "
                                        f"dataset could not be read ({reason})")


def difference(run: Run, exported: np.ndarray, reference: np.ndarray) -> tuple[float, str]:
    """The largest difference between two sets of raw outputs: in class probability for classification,
    relative to the prediction's size for regression (absolute below 1 in the target's unit)."""
    exported, reference = np.asarray(exported, np.float64), np.asarray(reference, np.float64)
    if exported.shape != reference.shape:
        raise DataError(f"the exported model answers with shape {exported.shape}, the .keras model with "
                        f"{reference.shape}; the export is refused")
    if run.task == "classification":
        n = len(run.classes)
        return float(np.max(np.abs(probabilities(exported, n) - probabilities(reference, n)))), "probability"
    return float(np.max(np.abs(exported - reference) / np.maximum(np.abs(reference), 1.0))), "relative"


def check_output_folder(out: Path, force: bool, run_dir: Path) -> None:
    """Refuse an output folder that is a file, holds files (unless force), or would take the run or the
    working directory with it when replaced."""
    out, run_dir = Path(out).resolve(), Path(run_dir).resolve()
    if out.exists() and not out.is_dir():
        raise DataError(f"output '{out}' exists and is a file; give a folder path")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise DataError(f"output folder '{out}' exists and is not empty; choose a new folder or pass --force "
                            "to replace it")
        if out == run_dir or out in run_dir.parents or out == Path.cwd() or out in Path.cwd().parents:
            raise DataError(f"output folder '{out}' holds the run or the working directory; --force will not "
                            "replace it, choose another folder")


def signature(run: Run, fmt: ExportFormat, feed: dict[str, np.ndarray], result: ExportResult) -> dict:
    """signature.json: the inputs (name, dtype, shape, the columns behind each position), the output and
    how to read it, the classes, and how the file was verified."""
    model = run.model
    columns = {input_name(c): c for c in run.spec.image_cols + run.spec.tabular_cols}
    groups = grouped_columns(model)
    inputs = []
    for name, values in feed.items():
        source = "tabular_categorical" if name == CODES_INPUT else name
        if name == "images":
            cols = list(run.input_spec.image_cols)
        else:
            cols = [columns.get(n, n) for n in groups.get(source, [source])]
        inputs.append({"name": name, "dtype": "string" if values.dtype.kind in "US" else str(values.dtype),
                       "shape": [None, *values.shape[1:]], "columns": cols})
    units = int(model.outputs[0].shape[-1])
    if run.task == "classification":
        reading = ("logit of classes[1]: probability = 1 / (1 + exp(-output))" if units == 1
                   else "one logit per class: probabilities = softmax(output)")
    else:
        reading = f"the predicted '{run.config.get('target')}' in its own unit"
    return {"format": fmt.name, "file": fmt.file, "runtime": fmt.runtime, "task": run.task,
            "target": run.config.get("target"), "classes": list(run.classes), "image_size": run.image_size,
            "inputs": inputs, "output": {"shape": [None, units], "meaning": reading},
            "verified": {"rows": result.rows, "rows_from": result.rows_from, "max_difference": result.max_difference,
                         "measure": result.measure, "tolerance": TOLERANCE}, "notes": result.notes}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def checked_format(name: str) -> ExportFormat:
    """The format, refused when unknown or when a package it needs (its converter or runtime) is missing."""
    fmt = export_format(name)
    absent = missing_packages(fmt)
    if absent:
        raise DataError(f"the {fmt.name} export needs the Python package(s) {', '.join(absent)}, which are not "
                        f"installed; install them (pip install {' '.join(absent)}) or choose another format")
    return fmt


def export_run(run: Run, format_name: str, out: Path, *, rows: VerificationRows, force: bool = False,
               extra_files: dict[str, str] | None = None) -> ExportResult:
    """Write, verify and keep (or refuse) one export of `run` into the folder `out`."""
    fmt = checked_format(format_name)
    out = Path(out)
    check_output_folder(out, force, run.dir)
    model = run.model
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-export-", dir=out.parent))
    try:
        try:
            write_model(fmt, model, staging / fmt.file)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - converters raise anything; the user needs the reason
            raise DataError(f"the {fmt.name} export could not be written: {str(exc).splitlines()[0][:300]}") from None
        feed = export_feed(fmt, model, rows.inputs)
        try:
            outputs = load_exported(fmt, staging / fmt.file)(feed)
        except Exception as exc:  # noqa: BLE001 - a file its runtime cannot run is refused, with the reason
            flex = flex_ops(staging / fmt.file) if fmt.name == "tflite" else []
            reason = (f"it needs the Select TF ops {', '.join(flex)}, which this interpreter does not link" if flex
                      else str(exc).splitlines()[0][:300])
            raise DataError(f"the {fmt.name} export was written but {fmt.runtime} could not run it ({reason}); "
                            "the export is refused") from None
        gap, measure = difference(run, outputs, predict(run, rows.inputs))
        n = len(next(iter(feed.values())))
        if not gap <= TOLERANCE:
            raise DataError(f"the {fmt.name} export predicts differently from the .keras model: largest difference "
                            f"{gap:.3g} ({measure}) on {rows.description}, above {TOLERANCE:g}; the export is refused "
                            "and no files were kept")
        notes = _notes(fmt, model, staging)
        result = ExportResult(fmt.name, out, {}, _size(staging / fmt.file), gap, measure, n, rows.description, notes)
        if fmt.name == "onnx" and vocabularies(model):
            columns = {input_name(c): c for c in run.spec.categorical_cols}
            vocab = {"input": CODES_INPUT, "unseen_code": 0, "codes": "value i of a column's list has code i + 1",
                     "columns": {columns.get(k, k): v for k, v in vocabularies(model).items()}}
            (staging / VOCABULARY_FILE).write_text(json.dumps(vocab, indent=2))
        sig = signature(run, fmt, feed, result)
        (staging / SIGNATURE_FILE).write_text(json.dumps(sig, indent=2))
        (staging / "README.md").write_text(usage_readme(run, sig, "model_card.md" in (extra_files or {})))
        for name, text in (extra_files or {}).items():
            (staging / name).write_text(text)
        if out.exists():
            shutil.rmtree(out)   # force, checked above: replaced only now that the new export is verified
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.files = {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    return result


def _notes(fmt: ExportFormat, model, staging: Path) -> list[str]:
    if fmt.name == "tflite":
        ops = flex_ops(staging / fmt.file)
        if ops:
            return [f"uses TensorFlow Select ops ({', '.join(ops)}): load it with a LiteRT build that has the "
                    "Flex delegate"]
        if vocabularies(model):
            return ["TFLite builtin ops only, no Select TF ops: the categorical columns are looked up in one "
                    "builtin hash table per column (the model's single joined-string table would need Select TF ops)"]
    if fmt.name == "onnx" and vocabularies(model):
        return [f"categorical columns go in as integer codes ('{CODES_INPUT}'), the vocabularies are in "
                f"{VOCABULARY_FILE}: the ONNX converter has no string operations"]
    return []
