"""`python -m multimodal playground`: a Fusion Playground race headless, the same leaderboard as the
app's Playground page (docs/ARCHITECTURE.md, "The Fusion Playground")."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from multimodal.cli.common import columns, emit, training_output
from multimodal.core.comparison import default_processes
from multimodal.core.errors import DataError
from multimodal.data.lesson_file import Lesson
from multimodal.data.lesson_store import shipped_lesson, shipped_names
from multimodal.data.playground import read_playground, write_playground
from multimodal.data.playground_knobs import DEFAULT_METHODS, KNOBS, strict_knobs

MIN_FOLDS, MAX_FOLDS = 2, 5


def add_playground_parser(sub) -> None:
    """The `playground` command's flags: a preset and/or one flag per knob (checked by strict_knobs)."""
    c = sub.add_parser("playground", argument_default=argparse.SUPPRESS,
                       help="generate a dataset whose signal sits where the knobs say, and race fusion methods on it")
    c.add_argument("--preset", help=f"a shipped lesson (sample_data/lessons/): one of {', '.join(shipped_names())}")
    for knob in KNOBS.values():
        c.add_argument(f"--{knob.name.replace('_', '-')}", dest=f"knob_{knob.name}",
                       help=f"{knob.help} ({knob.range_text()}; default {knob.default})")
    c.add_argument("--methods", help="fusion methods to race, a,b,... (default: the preset's, else late_concat, "
                                     "multiply, film, gated); the baselines always race")
    c.add_argument("--folds", help=f"cross-validation folds, {MIN_FOLDS} to {MAX_FOLDS} (default 3)")
    c.add_argument("--epochs", type=int, help="epoch budget per model (default 30, early stopping after 5)")
    c.add_argument("--out", help="keep the dataset and the race here (default: a temporary folder, removed)")
    c.add_argument("--no-shares", action="store_true", default=False,
                   help="skip the branch Shapley shares (saves one training per method)")
    c.add_argument("--json", action="store_true", default=False)


def offered_methods() -> tuple[str, ...]:
    """The methods the Playground races: every baseline and image + table method of the registry."""
    # lazy: the registry imports Keras; the knobs are checked before it loads
    from multimodal.models.fusion import methods_for
    return tuple(methods_for(True, True, 1))


def race_methods(text: str | None, lesson: Lesson | None) -> list[str]:
    """The methods to race: the named ones, else the lesson's (DataError for an unknown name)."""
    names = columns(text) if text else list(lesson.methods if lesson else DEFAULT_METHODS)
    unknown = [n for n in names if n not in offered_methods()]
    if unknown:
        raise DataError(f"--methods: unknown or unsuitable method(s) {', '.join(unknown)}; the playground races "
                        "image + table methods (see `python -m multimodal archs`)")
    return names


def folds_arg(text: str | None, default: int = 3) -> int:
    if text is None:
        return default
    if not text.isdigit() or not MIN_FOLDS <= int(text) <= MAX_FOLDS:
        raise DataError(f"folds={text!r} is out of range: {MIN_FOLDS} to {MAX_FOLDS}")
    return int(text)


def leaderboard_text(race: dict, shares: dict[str, dict], claims: list[dict]) -> str:
    """The leaderboard: method, mean +- std over folds, verdict against the best baseline, shares."""
    metric = race["metric"].removeprefix("val_")
    lines = [f"{'method':<14} {metric:>9} {'+-':>6}  {'shares image/table/interaction (truth)':<44} verdict"]
    for r in race["rows"]:
        got = shares.get(r["arch"])
        text = (f"{got['model']['image']:.2f}/{got['model']['tabular']:.2f}/{got['model']['interaction']:.2f} "
                f"({got['truth']['image']:.2f}/{got['truth']['tabular']:.2f}/{got['truth']['interaction']:.2f})"
                if got else "-")
        verdict = "baseline" if r["baseline"] else f"vs {r['best_baseline']}: {r['sentence']}"
        lines.append(f"{r['arch']:<14} {r['mean']:>9.3f} {r['std']:>6.3f}  {text:<44} {verdict}")
    lines += [f"claim {'holds' if c['holds'] else 'DOES NOT HOLD'}: {c['claim']} ({c['detail']})" for c in claims]
    lines.append(f"race: {race['seconds']:.1f} s, first result after {race['first_result_seconds']:.1f} s")
    return "\n".join(lines)


def cmd_playground(args: argparse.Namespace) -> None:
    preset = getattr(args, "preset", None)
    lesson = shipped_lesson(preset, offered_methods()) if preset else None
    knobs = strict_knobs({k.removeprefix("knob_"): v for k, v in vars(args).items() if k.startswith("knob_")},
                         lesson.knobs if lesson else None)
    folds = folds_arg(getattr(args, "folds", None), lesson.folds if lesson else 3)
    methods = race_methods(getattr(args, "methods", None), lesson)
    # lazy: TensorFlow loads only once the knobs are known to be good
    from multimodal.explain.branch_shares import method_shares
    from multimodal.runs.claims import check_claims
    from multimodal.train.playground_race import run_race
    with tempfile.TemporaryDirectory(prefix="multimodal-playground-") as tmp:
        root = Path(getattr(args, "out", None) or tmp)
        with training_output():
            csv = write_playground(knobs, root / "data")
            race = run_race(csv, root / "race", methods, k=folds, image_size=int(knobs["image_size"]),
                            seed=int(knobs["seed"]), explain=not args.no_shares, processes=default_processes(),
                            **({"epochs": args.epochs} if hasattr(args, "epochs") else {}))
            shares = {arch: method_shares(folder, root / "data") for arch, folder in race["models"].items()}
        _, oracle, _ = read_playground(root / "data")
        raced = {r["arch"] for r in race["rows"]}
        claims = check_claims([c for c in lesson.claims if set(c.methods) <= raced], race) if lesson else []
    payload = {"knobs": knobs, "preset": preset, "oracle": oracle, "race": race, "shares": shares, "claims": claims}
    emit(payload, args.json, leaderboard_text(race, shares, claims))
