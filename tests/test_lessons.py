"""Lessons as files: the shipped ones parse, bad files get one error naming the key or line, every
kind of claim reports a FALSE claim as failing (and a true one as holding), answers are marked
against the race and the truth, published lessons are stored by hash and nothing else is looked
up, and `lesson check` exits 0 / 1 / 2 (data/lesson_file.py, runs/claims.py, runs/answers.py)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from multimodal.core.errors import DataError
from multimodal.data.lesson_file import parse_claim, parse_lesson, parse_truth
from multimodal.data.lesson_store import (
    LESSONS_DIR,
    find_lesson,
    hold_rate,
    publish,
    read_lesson_bytes,
    shipped_lesson,
    shipped_names,
)
from multimodal.runs.answers import RIGHT, UNSETTLED, WRONG, mark
from multimodal.runs.claims import chance_scores, check_claim

ROOT = Path(__file__).resolve().parents[1]
OFFERED = ("image_only", "tabular_only", "linear", "late_concat", "late_decision", "multiply", "film", "bilinear")
GOOD = """title = "Mine"
text = "What it shows."
[knobs]
image = 0.0
table = 1.0
rows = 100
image_size = 16
[race]
methods = ["late_concat"]
folds = 3
[[claims]]
check = "tabular_only above chance by 0.1"
[[questions]]
prompt = "Which wins?"
choices = [{ text = "table", claim = "tabular_only beats image_only" },
           { text = "picture", claim = "image_only beats tabular_only" }]
"""


def race(folds: dict[str, list[float]], chance: float = 0.5, sizes=(400, 200), metric="val_accuracy",
         higher=True) -> dict:
    return {"metric": metric, "higher_is_better": higher, "sizes": list(sizes), "chance": [chance] * 3,
            "rows": [{"arch": a, "folds": f, "mean": float(np.mean(f))} for a, f in folds.items()]}


def test_the_shipped_lessons_parse_and_the_code_holds_no_lesson_text():
    names = shipped_names()
    assert names[:6] == ["image_alone", "table_alone", "complementary", "interaction", "redundant", "small_noisy"]
    for name in names:
        lesson = shipped_lesson(name, OFFERED)
        assert lesson.claims and lesson.title and set(lesson.raced) >= {"image_only", "tabular_only", "linear"}
        assert all(set(c.methods) <= set(lesson.raced) for c in lesson.claims)
    code = "".join(p.read_text() for p in (ROOT / "multimodal").rglob("*.py"))
    for name in names:
        assert shipped_lesson(name, OFFERED).title not in code


def test_the_grammar_reads_every_form_and_refuses_the_rest():
    assert parse_claim("film  beats late_decision").text == "film beats late_decision"
    assert parse_claim("a matches b within 0.05").margin == 0.05
    assert parse_claim("a at chance within 0.1").kind == "at chance"
    assert parse_claim("a above chance by .3").text == "a above chance by 0.3"
    assert parse_truth("image share between 0.8 and 1").low == 0.8
    for bad, says in [("a beats a", "with itself"), ("a matches b within 1.5", "between 0 and 1"),
                      ("a above chance by 0", "between 0 and 1"), ("a is better than b", "not one of the forms"),
                      ("a; import os", "not one of the forms")]:
        with pytest.raises(DataError, match=says):
            parse_claim(bad)
    with pytest.raises(DataError, match="L < H"):
        parse_truth("image share between 0.9 and 0.2")


@pytest.mark.parametrize("text, says", [
    ("colour = 1\n" + GOOD, "the lesson: unknown key 'colour'"),
    (GOOD.replace("folds = 3", "folds = 3\nepochs = 3"), r"\[race\]: unknown key 'epochs'"),
    (GOOD.replace("above chance by 0.1", "is better than all"), "claims\\[1\\]: claim .* not one of the forms"),
    (GOOD.replace("above chance by 0.1", "beats film"), "claims\\[1\\] 'tabular_only beats film': 'film' is not raced"),
    (GOOD.replace('{ text = "picture", claim = "image_only beats tabular_only" }',
                  '{ text = "picture", claim = "gated beats linear" }'), "questions\\[1\\].choices\\[2\\].*'gated' is not raced"),
    (GOOD.replace("image = 0.0", "image = 3.0"), r"\[knobs\] image=3.0 is out of range: 0 to 1"),
    (GOOD.replace("rows = 100", "rowz = 100"), r"\[knobs\]: unknown knob 'rowz'"),
    (GOOD.replace("above chance by 0.1", "above chance by 1.2"), "between 0 and 1"),
    (GOOD.replace('methods = ["late_concat"]', 'methods = ["warp"]'), "unknown or unsuitable method"),
    (GOOD + "".join('[[claims]]\ncheck = "linear above chance by 0.1"\n' for _ in range(20)), "at most 20"),
    (GOOD.replace('title = "Mine"', 'title = "Mine'), "line 1"),
    (GOOD.replace('[[claims]]\ncheck = "tabular_only above chance by 0.1"\n', ""), "'claims' is missing"),
    ("title = 'x'\ntext = 'y'\n[race]\nmethods = ['late_concat']\n[[claims]]\ncheck = 'linear above chance by 0.1'\n"
     "hide = [[[[[[1]]]]]]\n", "nested more than"),
    ("x = " + "[" * 5000 + "]" * 5000, "nested more than"),
])
def test_a_bad_lesson_file_gets_one_error_naming_the_key_or_line(text, says):
    with pytest.raises(DataError, match=says):
        parse_lesson(text, "mine", OFFERED)


def test_size_and_encoding_are_checked_before_parsing():
    with pytest.raises(DataError, match="at most 64 KB"):
        read_lesson_bytes(GOOD.encode() + b"#" * 70_000, "big", "'big.toml'", OFFERED)
    with pytest.raises(DataError, match="'bad.toml', line 2: not UTF-8"):
        read_lesson_bytes(b'title = "x"\ntext = "\xff\xfe"\n', "bad", "'bad.toml'", OFFERED)


def test_beats_holds_when_the_interval_is_above_zero_and_a_false_beats_fails():
    r = race({"film": [0.90, 0.92, 0.91], "late_decision": [0.50, 0.53, 0.49]})
    assert check_claim(parse_claim("film beats late_decision"), r)["holds"]
    false = check_claim(parse_claim("late_decision beats film"), r)
    assert not false["holds"] and "did not show" in false["plain"]


def test_matches_needs_the_whole_interval_inside_the_margin_not_just_zero():
    wide = race({"a": [0.80, 0.95, 0.70], "b": [0.80, 0.70, 0.85]})    # includes zero, reaches past +0.3
    got = check_claim(parse_claim("a matches b within 0.05"), wide)
    assert got["low"] < 0 < got["high"] and got["high"] > 0.05 and not got["holds"]
    close = race({"a": [0.900, 0.905, 0.910], "b": [0.895, 0.905, 0.905]}, sizes=(4000, 2000))
    assert check_claim(parse_claim("a matches b within 0.05"), close)["holds"]
    apart = race({"a": [0.90, 0.91, 0.92], "b": [0.70, 0.71, 0.70]})
    assert not check_claim(parse_claim("a matches b within 0.05"), apart)["holds"]


def test_at_chance_and_above_chance_are_checked_on_the_methods_own_interval():
    r = race({"flat": [0.50, 0.51, 0.49], "good": [0.95, 0.96, 0.94], "some": [0.70, 0.75, 0.65]},
             sizes=(4000, 2000))
    assert check_claim(parse_claim("flat at chance within 0.1"), r)["holds"]
    assert not check_claim(parse_claim("good at chance within 0.1"), r)["holds"]     # false: far above
    assert check_claim(parse_claim("good above chance by 0.3"), r)["holds"]
    assert not check_claim(parse_claim("some above chance by 0.3"), r)["holds"]     # false: mean 0.70 < 0.80
    assert not check_claim(parse_claim("flat above chance by 0.05"), r)["holds"]


def test_regression_margins_are_shares_of_the_chance_error():
    r = race({"good": [2.0, 2.1, 1.9], "flat": [10.0, 10.2, 9.9]}, chance=10.0, metric="val_mae", higher=False,
             sizes=(4000, 2000))
    assert check_claim(parse_claim("good above chance by 0.5"), r)["holds"]       # error at most 5
    assert not check_claim(parse_claim("flat above chance by 0.5"), r)["holds"]
    assert check_claim(parse_claim("flat at chance within 0.1"), r)["holds"]        # within 10 +- 1
    assert check_claim(parse_claim("good beats flat"), r)["holds"]                  # lower error wins


def test_chance_is_the_constant_predictor_fitted_on_each_folds_training_rows():
    y = np.array(["a"] * 6 + ["b"] * 4)
    splits = [{"train": np.arange(0, 6), "val": np.array([6]), "test": np.array([7, 8, 9])},
              {"train": np.arange(4, 10), "val": np.array([3]), "test": np.array([0, 1, 2])}]
    assert chance_scores(y, splits, "classification") == [0.0, 0.0]   # training majority a / b, held out b / a
    values = np.array([1.0, 1.0, 1.0, 5.0])
    assert chance_scores(values, [{"train": np.arange(3), "val": np.array([], int), "test": np.array([3])}],
                         "regression") == [4.0]


def test_answers_are_marked_right_wrong_or_not_settled_by_the_race_and_the_truth():
    lesson = parse_lesson(GOOD, "mine", OFFERED)
    q = lesson.questions[0]
    clear = race({"tabular_only": [0.95, 0.96, 0.94], "image_only": [0.50, 0.52, 0.49]})
    assert mark(q, 0, clear, {})["mark"] == RIGHT and mark(q, 1, clear, {})["mark"] == WRONG
    unclear = race({"tabular_only": [0.60, 0.40, 0.55], "image_only": [0.50, 0.55, 0.45]})
    got = mark(q, 0, unclear, {})
    assert got["mark"] == UNSETTLED and all("did not show" in c["plain"] for c in got["choices"])
    truth_q = shipped_lesson("image_alone", OFFERED).questions[-1]
    marked = mark(truth_q, 0, clear, {"image": 0.97, "tabular": 0.0, "interaction": 0.03})
    assert marked["mark"] == RIGHT and "0.97" in marked["choices"][0]["plain"]
    assert mark(truth_q, 2, clear, {"image": 0.97, "tabular": 0.0, "interaction": 0.03})["mark"] == WRONG


def test_published_lessons_are_stored_by_hash_and_only_names_or_hashes_are_looked_up(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSTUDIO_LESSONS_DIR", str(tmp_path / "published"))
    lesson = publish(GOOD.encode(), OFFERED)
    assert [p.name for p in (tmp_path / "published").iterdir()] == [f"{lesson.digest}.toml"]
    assert find_lesson(lesson.digest, OFFERED).title == "Mine" and hold_rate(lesson) is None
    (tmp_path / "secret.toml").write_text(GOOD)
    for key in ("../secret", str(tmp_path / "secret"), "..%2Fsecret", "ｉｍａｇｅ_alone", "image_alone/../x", "0" * 64):
        with pytest.raises(DataError):
            find_lesson(key, OFFERED)
    with pytest.raises(DataError, match="claims"):
        publish(GOOD.replace("above chance by 0.1", "wins").encode(), OFFERED)
    assert len(list((tmp_path / "published").iterdir())) == 1        # a bad file is never stored


def test_hold_rates_belong_to_the_exact_file():
    rates = json.loads((LESSONS_DIR / "hold_rates.json").read_text())["lessons"]
    for name, rate in rates.items():
        lesson = shipped_lesson(name, OFFERED)
        assert hold_rate(lesson) == rate and rate["seeds"] >= 10
    edited = parse_lesson(shipped_lesson("image_alone", OFFERED).source + "\n# edited\n", "image_alone", OFFERED)
    assert hold_rate(edited) is None


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "multimodal", "lesson", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "MULTIMODAL_COMPARE_PROCESSES": "1"})


def test_lesson_check_exits_2_on_a_bad_file_with_one_error_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("beats image_only", "beats film"))
    got = cli("check", str(bad))
    assert got.returncode == 2 and got.stderr.strip().count("\n") == 0
    assert got.stderr.startswith("error: questions[1].choices[1] 'tabular_only beats film': 'film' is not raced")
    assert cli("check", str(bad), "--seeds", "1,x").returncode == 2


def test_lesson_check_races_each_seed_and_exits_1_when_a_claim_fails(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text(GOOD + '[[claims]]\ncheck = "image_only above chance by 0.4"\n')   # false: no picture signal
    got = cli("check", str(mine), "--seeds", "3", "--json")
    assert got.returncode == 1, got.stderr
    payload = json.loads(got.stdout.strip().splitlines()[-1])
    assert [s["seed"] for s in payload["seeds"]] == [3] and payload["holds"] is False
    claims = {c["claim"]: c for c in payload["seeds"][0]["claims"]}
    assert claims["tabular_only above chance by 0.1"]["holds"] is True
    assert claims["image_only above chance by 0.4"]["holds"] is False
    assert re.search(r"image_only 0\.\d{3} \(95% interval .*\); chance 0\.[45]\d\d, margin 0\.400",
                     claims["image_only above chance by 0.4"]["detail"])


def test_lesson_check_exits_0_when_every_claim_holds_on_every_seed(tmp_path, monkeypatch, capsys):
    from multimodal.cli import main
    from multimodal.train import lesson_check
    mine = tmp_path / "mine.toml"
    mine.write_text(GOOD)
    seen = []

    def fake(lesson, seeds, **_):
        seen.extend(seeds)
        return [{"seed": s, "holds": True, "seconds": 1.0,
                 "claims": [{"claim": c.text, "holds": True, "detail": "d"} for c in lesson.claims]} for s in seeds]
    monkeypatch.setattr(lesson_check, "check_lesson", fake)
    assert main(["lesson", "check", str(mine), "--seeds", "4,5"]) == 0 and seen == [4, 5]
    assert "held on 2 of 2 seeds" in capsys.readouterr().out
