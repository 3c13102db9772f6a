"""`whatif RUN --row ID [--counterfactual] [--lock a,b] [--change X] [--json]`: one row of the run's
own data, its prediction with its conformal set / interval and, with --counterfactual, the nearest
validation row predicted otherwise, the smallest edit of the unlocked features and the image swap
(docs/ARCHITECTURE.md, "Uncertainty and counterfactuals")."""
from __future__ import annotations

from pathlib import Path

from multimodal.cli.common import columns, emit
from multimodal.runs.conformal import plain_number


def _name(ds, row: int) -> str:
    """How the pages name a row: 'id 543' with an id column, else 'row 543' (1-based)."""
    column = ds.id_col
    return f"{column} {ds.frame[column].iloc[row]}" if column else f"row {row + 1}"


def _value(v) -> str:
    if v is None:
        return "(missing)"
    return plain_number(v) if isinstance(v, float) else str(v)


def cmd_whatif(args) -> None:
    # lazy: TensorFlow
    from multimodal.explain.counterfactual import find_row
    from multimodal.explain.nearest import counterfactual_report, image_branch
    from multimodal.runs.conformal import from_evaluation
    from multimodal.runs.evaluation import evaluate_run, run_dataset
    from multimodal.runs.run import describe_predictions, load_run, predict, run_inputs
    run = load_run(Path(args.run_dir))
    ds = run_dataset(run)
    row = find_row(ds, args.row)
    ev = evaluate_run(run, ds, keep_inputs=args.counterfactual)
    conformal = from_evaluation(ev, args.coverage)
    outputs = predict(run, run_inputs(run, ds.frame.iloc[[row]], ds.root))
    uncertainty = conformal.describe(outputs, run.classes)[0]
    payload = {"row": _name(ds, row), "uncertainty": uncertainty}
    lines = []
    if args.counterfactual:
        delta = args.change
        if run.task == "regression" and delta is None:
            delta = float(ev.metrics["mae"])      # default: one validation MAE up
        swap = args.swap_image if args.swap_image is not None else image_branch(run) is not None
        report = counterfactual_report(run, ds, ev, row, columns(args.lock), delta, swap_image=swap)
        payload.update(report, row=_name(ds, row), uncertainty=uncertainty)
        lines = _report_lines(run, ds, report)
        for part in ("nearest", "image_swap"):
            if payload.get(part):
                payload[part] = {**payload[part], "row": _name(ds, payload[part]["row"])}
    else:
        payload["prediction"] = describe_predictions(run, outputs)[0]["prediction"]
    head = f"{payload['row']}: predicted {_value(payload['prediction'])}  {conformal.text(uncertainty)}"
    text = "\n".join([head, *lines, conformal.caption()] + ([f"warning: {conformal.warning}"] if conformal.warning else []))
    emit(payload, args.json, text)


def _report_lines(run, ds, report: dict) -> list[str]:
    lines = []
    goal = "predicted otherwise"
    if run.task == "regression":
        goal = f"moved by {'+' if report['delta'] > 0 else '-'}{plain_number(abs(report['delta']))}"
    near = report["nearest"]
    if near is None:
        lines.append(f"nearest validation row {goal}: none (every validation row gets the same answer)")
    else:
        image = f", image {near['image_distance']:.2f}" if near["image_distance"] is not None else ""
        lines.append(f"nearest validation row {goal}: {_name(ds, near['row'])} -> {_value(near['prediction'])} "
                     f"(distance {near['distance']:.2f}: table {near['table_distance']:.2f}{image})")
        lines += [f"  {d['column']}: {_value(d['this row'])} -> {_value(d['nearest row'])}" for d in near["differences"]]
    edit = report.get("edit")
    if edit is not None:
        locked = f" (locked: {', '.join(report['locked'])})" if report["locked"] else ""
        if edit["found"]:
            lines.append(f"smallest edit{locked}, cost {edit['cost']:.2f}:")
            lines += [f"  {c['column']}: {_value(c['before'])} -> {_value(c['after'])}" for c in edit["changes"]]
            lines.append(f"  prediction {_value(report['prediction'])} -> {_value(edit['prediction'])} "
                         f"(re-checked by the model: {'yes' if edit['verified'] else 'NO'})")
        else:
            lines.append(f"smallest edit{locked}: no counterfactual within the training range "
                         "(no edit of the unlocked features changes the prediction)")
        lines.append(f"  searched {edit['rows_tried']} candidate rows in {edit['model_calls']} model calls, "
                     f"{edit['seconds']:.2f} s")
    swap = report.get("image_swap")
    if "image_swap" in report:
        if swap is None:
            lines.append("image swap: no validation row is predicted otherwise")
        else:
            lines.append(f"image swap: the image of {_name(ds, swap['row'])} -> {_value(swap['prediction'])} "
                         f"({'changed' if swap['changed'] else 'unchanged'}; image distance {swap['image_distance']:.2f})")
    return lines
