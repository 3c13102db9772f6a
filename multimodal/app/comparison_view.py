"""Compare page: a cross-validated comparison of fusion methods against every baseline the data allows.

It runs as a worker process through `jobs` (its config is core/comparison.comparison_job's: the
ComparisonOptions as `to_dict()`, see `crossval.run_comparison`), in the session's `comparisons/`
folder; the page polls its events.
By default it runs fast (train/stagewise.py: one frozen encoder per fold, every head trained on its
cached maps, kept in the session's `feature_cache/` folder); end to end stays one click away.
The verdicts are runs/verdicts.py's: "better" or "worse" only when the interval excludes zero.
Above that section, the trainings the page's "Train baselines" button queued (one ordinary training
job per baseline, session_jobs.start_baselines) are drawn live as one group.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from multimodal.app import accessibility, figures, navigation, session_jobs, state, training_view
from multimodal.core.comparison import MODES, ComparisonOptions, comparison_job
from multimodal.core.events import Event, read_events
from multimodal.data.inputs import FeatureSpec
from multimodal.models.fusion import FUSION_METHODS, methods_for
from multimodal.runs.folders import reuse_config
from multimodal.runs.verdicts import BETTER, WORSE, format_gain
from multimodal.train.crossval import (
    COMPARISON_FILE,
    comparison_archs,
    comparison_summary,
    default_folds,
    load_comparisons,
)
from multimodal.train.jobs import JobState
from multimodal.train.stagewise import STAGE1_ARCH, default_mode

FOLD_CHOICES = (3, 5, 10)
MODE_TITLES = {"stagewise": "Fast, stage-wise", "frozen": "Fast, frozen pretrained encoder",
               "end_to_end": "End to end"}
FAST_NOTE = "The heads read cached maps of the unchanged images, so they train without augmentation."
NOT_YET = "no fold yet"   # a cell with nothing to show yet: words, never a raw None/NaN
FORM_KEY = "cv_form"   # the form's choices by widget name and scope, under a plain key (see remembered)
FORM_GENERATIONS = "_cv_form_generations"   # each widget's key generation and initial value (see remembered)
FORM_SHOWN = "_cv_form_shown"               # whether the last full run drew the form


def trainings_section() -> None:
    """This session's trainings, live while any is queued or running; then the baselines that failed."""
    running = session_jobs.active(session_jobs.training_jobs().values())
    if running:
        accessibility.live_fragment(trainings_progress, 1.0, "compare_trainings")([str(job.run_dir) for job in running])
    for job in session_jobs.baseline_jobs():
        if job.state == JobState.FAILED:
            st.error(f"Baseline {job.arch} failed: {job.error}", icon=":material/error:")


def trainings_progress(watched: list[str]) -> None:
    """The last "Train baselines" group (which model of how many, a bar each, one Stop) and any other
    training in a line; once one of the `watched` trainings ends the whole page reruns, so the
    runs table and the fusion gain take its run."""
    trainings = session_jobs.training_jobs()
    running = session_jobs.active(trainings.values())
    if any(trainings[run_dir] not in running for run_dir in watched):
        st.rerun()
    group = session_jobs.baseline_jobs()
    if session_jobs.active(group):
        training_view.group_progress(group, "baselines")
    for job in running:
        if job not in group:
            st.caption(f"{job.arch} · {job.run_dir.name}: {job.status_text()}")
    navigation.link("train", "Watch on the Train page")


def comparisons_dir() -> Path:
    path = state.session_dir() / "comparisons"
    path.mkdir(exist_ok=True)
    return path


def remembered(name: str, scope: object, default: Any, fits: Callable[[Any], bool]) -> tuple[str, Any]:
    """(key, initial value) of the form's widget `name`: the widget is made with that key and that
    initial value, the user's last choice (else `default`).

    While a comparison runs the form is not drawn (nor when the user is on another page). Streamlit
    then drops the widget's state, or keeps it while the browser, which re-creates the widget, shows
    its initial value: the picker came back empty while the caption under it still counted the
    methods chosen. So once the form was away, the widget gets a new key (a generation number) and
    the last choice as its initial value, which the browser shows. The choices live on under
    FORM_KEY, a plain key Streamlit never drops. `scope` is what the default depends on (None:
    nothing): a reference run with other defaults starts from its own, and each keeps its choices."""
    ss = st.session_state
    base = f"cv_{name}" if scope is None else f"cv_{name}_{scope}"
    made = ss.setdefault(FORM_GENERATIONS, {})
    generation, initial = made.get(base, (-1, default))
    key = f"{base}_{generation}"
    if generation < 0 or not fits(ss.get(key)) or not ss.get(FORM_SHOWN, True):
        saved = ss.get(FORM_KEY, {}).get(base)
        generation, initial = generation + 1, saved if fits(saved) else default
        made[base] = (generation, initial)
        key = f"{base}_{generation}"
    return key, initial


def comparison_form(ref_config: Mapping, methods: list[str], rows: int) -> None:
    """K, repeats and methods; starting queues one worker that trains every fold of every method.

    Plain widgets, not a form: the caption's model count follows every change before starting.
    Each keeps the user's choice through a comparison (`remembered`)."""
    with st.container(border=True):
        arch = ref_config["model"]["arch"]
        fusions = [m for m in methods if not FUSION_METHODS[m].is_baseline]
        a, b, c = st.columns([2, 1, 1])
        methods_key, methods = remembered("methods", arch, [arch] if arch in fusions else fusions[:1],
                                          lambda v: isinstance(v, list) and set(v) <= set(fusions))
        chosen = a.multiselect("Fusion methods (the baselines are always included)", fusions, default=methods,
                               key=methods_key)
        k_key, k = remembered("k", default_folds(rows), default_folds(rows), lambda v: v in FOLD_CHOICES)
        k = b.selectbox("Folds (k)", FOLD_CHOICES, index=FOLD_CHOICES.index(k), key=k_key)
        repeats_key, repeats = remembered("repeats", None, 1, lambda v: isinstance(v, int) and 1 <= v <= 5)
        repeats = c.number_input("Repeats", 1, 5, value=repeats, key=repeats_key, help="Repeat k-fold with other "
                                 "shuffles: more rows in the mean and the interval, proportionally longer.")
        fast = default_mode((ref_config.get("model") or {}).get("encoder", "small_cnn"))
        mode_key, mode = remembered("mode", fast, fast, lambda v: v in (fast, "end_to_end"))
        mode = st.radio("Mode", [fast, "end_to_end"], index=[fast, "end_to_end"].index(mode), key=mode_key,
                        format_func=MODE_TITLES.get, horizontal=True,
                        help="Fast trains each image encoder once per fold (or uses the pretrained one) and only "
                             "the fusion heads on its cached maps; end to end trains every model whole.")
        st.session_state.setdefault(FORM_KEY, {}).update(
            {key.rsplit("_", 1)[0]: value for key, value in
             ((methods_key, chosen), (k_key, k), (repeats_key, repeats), (mode_key, mode))})
        st.session_state[FORM_SHOWN] = True
        fallback = " (stage-wise when the pretrained weights cannot be had)" if mode == "frozen" else ""
        st.caption(f"**{MODE_TITLES[mode]}**{fallback}: {MODES[mode]}. " + (FAST_NOTE if mode != "end_to_end" else
                   "Slowest: every image model learns its own encoder, with augmentation as the run had it."))
        # The job trains exactly crossval.comparison_archs: the caption counts the same list.
        trained = comparison_archs(FeatureSpec(**ref_config["features"]), chosen[0], chosen[1:]) if chosen else []
        if trained:
            st.caption(f"Trains {len(trained) * k * repeats} models ({len(trained)} methods: {', '.join(trained)}; "
                       f"x {k} folds x {repeats} repeat{'s' if repeats > 1 else ''}) with the settings of "
                       f"{ref_config.get('source', 'the run chosen above')} "
                       f"(epochs {ref_config.get('epochs') or 'auto'}, image size "
                       f"{(ref_config.get('model') or {}).get('image_size')} px). Held-out folds are never used "
                       "for early stopping.")
        else:
            st.caption("Choose at least one fusion method to compare with the baselines.")
        processes = session_jobs.comparison_processes()
        if st.button("Run cross-validation", icon=":material/play_arrow:", disabled=not trained or not processes):
            # Fast: mode None lets the worker choose (frozen needs the pretrained weights at hand).
            options = ComparisonOptions(k=int(k), repeats=int(repeats), archs=tuple(chosen[1:]),
                                        mode=None if mode == fast else mode, processes=processes)
            config = comparison_job(reuse_config(ref_config, chosen[0]), options,
                                    state.session_dir() / "feature_cache")
            session_jobs.start_comparison(config, comparisons_dir(), "cv-" + chosen[0])
            st.rerun()


def method_progress(events: list[dict]) -> tuple[int, int, pd.DataFrame]:
    """(folds done, folds in all, one row per method: folds done, held-out mean so far, seconds)
    from a comparison's events."""
    start = next((e for e in events if e.get("type") == Event.START), {})
    folds = [e for e in events if e.get("type") == Event.FOLD]
    archs, total = start.get("archs", []), int(start.get("folds", 0))
    per_arch = total // max(len(archs), 1)
    rows = []
    for arch in archs:
        mine = [e for e in folds if e.get("arch") == arch]
        values = [e["value"] for e in mine if e.get("value") is not None]
        stage = " (stage 1: the encoder the heads share)" if start.get("mode") == "stagewise" and \
            arch == STAGE1_ARCH else ""
        rows.append({"method": arch + stage, "folds": f"{len(mine)} of {per_arch}",
                     "mean so far": f"{sum(values) / len(values):.4f}" if values else NOT_YET,
                     "seconds": round(sum(e.get("seconds") or 0 for e in mine), 1)})
    return len(folds), total, pd.DataFrame(rows)


def comparison_progress() -> None:
    """Progress of this session's running comparisons, per method, with a stop button each."""
    active = session_jobs.active(session_jobs.comparison_jobs().values())
    if not active:
        st.rerun()                                    # finished: show the result
    for job in active:
        events, _ = read_events(job.run_dir)
        done, total, per_method = method_progress(events)
        if job.state == JobState.QUEUED or not total:
            st.caption(f"{job.run_dir.name}: {job.status_text()}")
            continue
        mode = next((e.get("mode") for e in events if e.get("type") == Event.START), None)
        st.progress(done / total, text=f"Cross-validation ({MODE_TITLES.get(mode, mode)}): {done} of {total} "
                                       "folds trained")
        st.dataframe(per_method, hide_index=True, width="stretch")
        if st.button("Stop", key=f"stop_{job.run_dir}", icon=":material/stop:"):
            job.stop()


def show_failures() -> None:
    for run_dir, job in session_jobs.comparison_jobs().items():
        if job.state == JobState.FAILED and not (Path(run_dir) / COMPARISON_FILE).exists():
            st.error(f"Cross-validation {Path(run_dir).name} failed: {job.error}")


def verdict_line(gain: Mapping, baseline: str) -> str:
    """The best method's verdict in words, its interval always shown."""
    arch, verdict = gain["arch"], gain["verdict"]
    if verdict in (BETTER, WORSE):
        said = f"**{arch} is {verdict} than {baseline}**: the interval excludes zero."
    else:
        said = f"**No detectable difference** between {arch} and {baseline}: the interval includes zero."
    return f"{said} Gain {gain['sentence']}."


def _interval(gain: Mapping, metric: str) -> str:
    half = (gain["high"] - gain["low"]) / 2
    return f"{format_gain(gain['low'], metric, half)} to {format_gain(gain['high'], metric, half)}"


def number_text(value: Any, digits: int = 4) -> str:
    """A table cell's number at `digits` significant-ish decimals (thousands separated above 1,000),
    or "n/a" where there is none: a table never shows a raw None or NaN."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def best_fusion_text(result: Mapping, summary: list[dict]) -> str:
    """"Best fusion method: late_concat (0.8050)": the best held-out mean among the fusion methods."""
    fusions = [s for s in summary if s["arch"] in FUSION_METHODS and not FUSION_METHODS[s["arch"]].is_baseline]
    if not fusions:
        return "No fusion method in this comparison: only baselines."
    best = fusions[0]   # the summary is best first
    return f"Best fusion method: {best['arch']} ({number_text(best['mean'])} held-out mean)."


def result_label(result: Mapping) -> str:
    """What a finished comparison was run with, to tell it from another: k, repeats, mode, methods."""
    mode = MODE_TITLES.get(result.get("mode", "end_to_end"), result.get("mode"))
    return (f"{result['k']}-fold x {result['repeats']}, {str(mode).lower()}, {len(result['results'])} methods "
            f"({Path(result['dir']).name})")


def gain_rows(result: Mapping) -> pd.DataFrame:
    """One row per method, best first: its held-out mean and std, its gain over the best baseline
    with the interval and the verdict (for the baselines: which one is the reference), and every
    fold's value."""
    metric = result["metric"].removeprefix("val_")
    gain = result["gain"] or {"methods": [], "best_baseline": None}
    by_arch = {g["arch"]: g for g in gain["methods"]}
    rows = []
    for s in comparison_summary(result):
        g = by_arch.get(s["arch"])
        role = "best baseline (reference)" if s["arch"] == gain["best_baseline"] else "baseline"
        rows.append({"method": s["arch"], f"mean {metric}": number_text(s["mean"]), "std": number_text(s["std"]),
                     "gain": format_gain(g["mean"], metric, (g["high"] - g["low"]) / 2) if g else "",
                     "95% interval": _interval(g, metric) if g else "", "verdict": g["verdict"] if g else role,
                     "folds": ", ".join(f"{v:.3f}" for v in s["folds"])})
    return pd.DataFrame(rows)


def show_comparison(result: dict) -> None:
    """The best fusion method's gain over the best baseline (paired by fold) with its interval and
    verdict, then every method's scores, gain, interval and verdict."""
    metric = result["metric"].removeprefix("val_")
    gain, higher = result["gain"], result["higher_is_better"]
    summary = comparison_summary(result)
    left, right = st.columns([2, 3])
    with left:
        if gain is None:
            st.info("The data allows no baseline besides the method compared: there is no gain to measure.")
        else:
            best, baseline = gain["best"], gain["best_baseline"]
            st.metric(f"Fusion gain of {best['arch']} over {baseline}",
                      format_gain(best["mean"], metric, (best["high"] - best["low"]) / 2),
                      help=f"Held-out {metric}, paired by fold: {best['arch']} minus the best baseline "
                           f"({'higher' if higher else 'lower'} is better, so positive means fusion helps). The "
                           "interval is corrected for the overlap between folds (Nadeau & Bengio).")
            st.markdown(verdict_line(best, baseline))
        mode = result.get("mode", "end_to_end")   # comparisons saved before the fast modes were end to end
        st.caption(f"{result['k']}-fold x {result['repeats']} on {result['dataset']} ({len(summary[0]['folds'])} "
                   f"folds per method), {MODE_TITLES[mode].lower()}"
                   + (f" in {result['seconds']:.0f} s" if "seconds" in result else "")
                   + f". {best_fusion_text(result, summary)}")
    with right:
        figures.chart(figures.cv_bars(summary, metric))
    st.dataframe(gain_rows(result), hide_index=True, width="stretch")


def finished_comparisons(ref_config: Mapping) -> list[dict]:
    """This session's finished comparisons on the same data and target as ref_config, newest first."""
    same = [c for c in load_comparisons(comparisons_dir())
            if c.get("dataset") == ref_config.get("dataset_name") and c.get("target") == ref_config.get("target")]
    return same[::-1]


def comparison_section(ref_config: Mapping) -> None:
    """The whole cross-validation block of the Compare page."""
    features = ref_config.get("features", {})
    rows = sum(len(v) for v in (ref_config.get("splits") or {}).values()) or ref_config.get("rows", 0)
    st.subheader("Cross-validated comparison")
    st.caption("One validation split of 50-100 rows is noisy. k-fold cross-validation trains each method on k "
               "splits of the same rows and reports the held-out mean and spread, and each method's gain over the best "
               "baseline paired by fold, with a 95% interval: better or worse only when it excludes zero.")
    methods = methods_for(bool(features.get("image_cols")),
                          bool(features.get("numeric_cols") or features.get("categorical_cols")),
                          len(features.get("image_cols", [])))
    show_failures()
    if session_jobs.active(session_jobs.comparison_jobs().values()):
        st.session_state[FORM_SHOWN] = False   # the browser re-creates the form's widgets afterwards
        accessibility.live_fragment(comparison_progress, 2.0, "compare_cv")()
    else:
        comparison_form(ref_config, methods, rows)
    found = finished_comparisons(ref_config)
    running = not st.session_state.get(FORM_SHOWN, True)
    for i, result in enumerate(found):
        if i == 0 and not running:   # while a new one runs, the last result is labelled and folded away
            st.markdown(f"**Latest result:** {result_label(result)}")
            show_comparison(result)
        else:
            with st.expander(f"{'Earlier' if i else 'Previous'} result: {result_label(result)}"):
                show_comparison(result)
