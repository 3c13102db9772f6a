"""`export` and `card`: a run's model out of the studio, verified, with its model card."""
from __future__ import annotations

from pathlib import Path

from multimodal.cli.common import emit, training_output
from multimodal.core.errors import DataError
from multimodal.runs.run import MODEL_FILE, Run, load_run


def checked_run(path: str) -> Run:
    """The run folder, its model loaded in safe mode: each way it can be wrong gets its own message."""
    run_dir = Path(path)
    if not (run_dir / "config.json").is_file():
        raise DataError(f"'{run_dir}' is not a run folder (no config.json); pass the folder printed by `train`")
    if not (run_dir / MODEL_FILE).is_file():
        raise DataError(f"run folder '{run_dir}' has no {MODEL_FILE}: the model file is missing (training may have "
                        "failed before saving); train again")
    run = load_run(run_dir)
    run.model   # noqa: B018 - loads in safe mode now, so a damaged or unsafe file is refused before any work
    return run


def card_text(run: Run, rows) -> str:
    # lazy: TensorFlow (the explanations compute the branch importance)
    from multimodal.explain.model_card import latest_comparison, model_card
    return model_card(run, rows.dataset, rows.inputs, rows.description, latest_comparison(run))


def cmd_export(args) -> None:
    # lazy: TensorFlow
    from multimodal.runs.export import checked_format, export_run, verification_rows
    checked_format(args.format)     # an unknown format or a missing runtime fails before loading
    run = checked_run(args.run_dir)
    with training_output():                   # the converters' chatter goes to stderr
        rows = verification_rows(run)
        result = export_run(run, args.format, Path(args.out), rows=rows, force=args.force,
                            extra_files={"model_card.md": card_text(run, rows)})
    text = (f"exported {run.name} as {result.format} -> {result.folder}\n"
            f"verified on {result.rows_from}: largest difference {result.max_difference:.3g} ({result.measure})\n"
            + "\n".join(f"  {name}  {size:,} bytes" for name, size in result.files.items())
            + "".join(f"\nnote: {n}" for n in result.notes))
    emit(result.to_json(), args.json, text)


def cmd_card(args) -> None:
    # lazy: TensorFlow
    from multimodal.runs.export import verification_rows
    run = checked_run(args.run_dir)
    with training_output():
        text = card_text(run, verification_rows(run))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        emit({"card": str(out)}, args.json, f"model card -> {out}")
    else:
        emit({"card": text}, args.json, text)
