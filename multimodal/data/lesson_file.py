"""A Fusion Playground lesson as a file a teacher writes: TOML with a title, a text, knobs, a race,
claims in a small grammar and questions a learner answers before the race.

    title = "A picture is enough"
    text = "What the lesson teaches, saying only what its claims check."
    hide = ["image", "table"]           # controls the lesson link hides (optional)
    [knobs]                             # the generator's knobs (the rest keep their defaults)
    image = 1.0
    [race]
    methods = ["late_concat"]           # raced with every baseline (image_only, tabular_only, linear)
    folds = 3
    [[claims]]
    check = "image_only above chance by 0.3"
    why = "the disc's colour decides the label"
    [[questions]]
    prompt = "Will late_concat beat image_only?"
    explain = "shown after the race"
    choices = [{ text = "yes", claim = "late_concat beats image_only" },
               { text = "no: within 0.05", claim = "late_concat matches image_only within 0.05" }]

A claim is one of CLAIM_FORMS, its margin fixed in the file before any race; a choice is decided
by a claim (checked on the race) or by a truth about the generator's branch shares
(`image share between 0.7 and 1`). Parsing runs nothing from the file; every error is one
DataError naming the key or line. Streamlit-free and TensorFlow-free.
See docs/ARCHITECTURE.md, "Lessons".
"""
from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field

from multimodal.core.errors import DataError
from multimodal.data.playground_knobs import BASELINES, KNOBS, strict_knobs

BEATS, MATCHES, AT_CHANCE, ABOVE_CHANCE = "beats", "matches", "at chance", "above chance"
CLAIM_FORMS = ("A beats B", "A matches B within M", "A at chance within M", "A above chance by M")
SHARE_PARTS = {"image": "image", "table": "tabular", "interaction": "interaction"}   # word -> shares key
MAX_ITEMS = 20          # claims, and questions, per lesson
MAX_DEPTH = 5           # tables and arrays nested in a lesson file (questions > choices > a choice is 5)
FOLDS = (2, 3, 4, 5)
HIDEABLE = ("preset", *KNOBS, "methods", "folds", "preview")

_NAME = r"([a-z][a-z0-9_]*)"
_NUMBER = r"([0-9]*\.?[0-9]+)"
_CLAIM_PATTERNS = (
    (BEATS, re.compile(rf"{_NAME} beats {_NAME}")),
    (MATCHES, re.compile(rf"{_NAME} matches {_NAME} within {_NUMBER}")),
    (AT_CHANCE, re.compile(rf"{_NAME} at chance within {_NUMBER}")),
    (ABOVE_CHANCE, re.compile(rf"{_NAME} above chance by {_NUMBER}")),
)
_TRUTH = re.compile(rf"(image|table|interaction) share between {_NUMBER} and {_NUMBER}")


@dataclass(frozen=True)
class Claim:
    """One falsifiable check: `kind` of CLAIM_FORMS on method `a` (and `b`), margin fixed in advance."""
    kind: str
    a: str
    b: str | None = None
    margin: float | None = None
    why: str = ""

    @property
    def text(self) -> str:
        if self.kind == BEATS:
            return f"{self.a} beats {self.b}"
        if self.kind == MATCHES:
            return f"{self.a} matches {self.b} within {self.margin:g}"
        return f"{self.a} {self.kind} {'within' if self.kind == AT_CHANCE else 'by'} {self.margin:g}"

    @property
    def methods(self) -> tuple[str, ...]:
        return (self.a,) if self.b is None else (self.a, self.b)


@dataclass(frozen=True)
class Truth:
    """A fact about the generator: its true `part` share (image / table / interaction) lies in [low, high]."""
    part: str
    low: float
    high: float

    @property
    def text(self) -> str:
        return f"{self.part} share between {self.low:g} and {self.high:g}"


@dataclass(frozen=True)
class Choice:
    text: str
    decided_by: Claim | Truth


@dataclass(frozen=True)
class Question:
    prompt: str
    choices: tuple[Choice, ...]
    explain: str = ""


@dataclass(frozen=True)
class Lesson:
    """A parsed lesson. `name`: the shipped file's stem, or the published content hash."""
    name: str
    title: str
    text: str
    knobs: dict
    methods: tuple[str, ...]
    folds: int
    claims: tuple[Claim, ...]
    questions: tuple[Question, ...] = ()
    hide: tuple[str, ...] = ()
    source: str = field(default="", repr=False)

    @property
    def raced(self) -> tuple[str, ...]:
        """Every method the race trains: the baselines, then the lesson's own."""
        return (*BASELINES, *[m for m in self.methods if m not in BASELINES])

    @property
    def digest(self) -> str:
        return content_hash(self.source.encode())

    def full_knobs(self, seed: int | None = None) -> dict:
        """Every knob: the defaults, the lesson's, then `seed` when given."""
        return strict_knobs({**self.knobs, **({} if seed is None else {"seed": seed})})


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_claim(text: str, why: str = "") -> Claim:
    """A claim from one line of the grammar; DataError saying the forms when it is none of them."""
    line = " ".join(str(text).split())
    for kind, pattern in _CLAIM_PATTERNS:
        m = pattern.fullmatch(line)
        if m:
            a, *rest = m.groups()
            b = rest[0] if kind in (BEATS, MATCHES) else None
            margin = float(rest[-1]) if kind != BEATS else None
            if margin is not None and not 0 < margin < 1:
                raise DataError(f"claim '{line}': the margin must be between 0 and 1 (exclusive), got {margin:g}")
            if b == a:
                raise DataError(f"claim '{line}' compares {a} with itself; name two methods")
            return Claim(kind, a, b, margin, why)
    raise DataError(f"claim '{line}' is not one of the forms: {'; '.join(CLAIM_FORMS)} "
                    "(A and B are raced methods, M a margin between 0 and 1)")


def parse_truth(text: str) -> Truth:
    m = _TRUTH.fullmatch(" ".join(str(text).split()))
    if not m:
        raise DataError(f"truth '{text}' is not of the form '<image|table|interaction> share between L and H'")
    low, high = float(m.group(2)), float(m.group(3))
    if not 0 <= low < high <= 1:
        raise DataError(f"truth '{text}': need 0 <= L < H <= 1")
    return Truth(m.group(1), low, high)


def _named(where: str, parse, *args):
    """parse(*args), its DataError prefixed with the key it came from."""
    try:
        return parse(*args)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _only(table: dict, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    for key in table:
        if key not in allowed:
            raise DataError(f"{where}: unknown key '{key}'; the keys are {', '.join(allowed)}")
    for key in required:
        if key not in table:
            raise DataError(f"{where}: '{key}' is missing")


def _text(table: dict, key: str, where: str, required: bool = True) -> str:
    value = table.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise DataError(f"{where}.{key}: a text is needed (a quoted string)")
    return value.strip()


def _items(doc: dict, key: str) -> list:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DataError(f"'{key}' must be written as [[{key}]] tables")
    if len(items) > MAX_ITEMS:
        raise DataError(f"{len(items)} {key}: a lesson has at most {MAX_ITEMS}")
    return items


def _raced_check(raced: tuple[str, ...], names: tuple[str, ...], where: str) -> None:
    for name in names:
        if name not in raced:
            raise DataError(f"{where}: '{name}' is not raced; race it in [race] methods, or name one of "
                            f"{', '.join(raced)}")


def _race(doc: dict, offered: tuple[str, ...]) -> tuple[tuple[str, ...], int]:
    race = doc.get("race", {})
    if not isinstance(race, dict):
        raise DataError("[race] must be a table with methods and folds")
    _only(race, "[race]", ("methods", "folds"), ("methods",))
    methods = race["methods"]
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise DataError("[race] methods: a list of method names is needed, e.g. [\"late_concat\", \"film\"]")
    unknown = [m for m in methods if m not in offered]
    if unknown:
        raise DataError(f"[race] methods: unknown or unsuitable method(s) {', '.join(unknown)}; "
                        f"the Playground races {', '.join(offered)}")
    folds = race.get("folds", 3)
    if isinstance(folds, bool) or folds not in FOLDS:
        raise DataError(f"[race] folds = {folds!r} is out of range: {FOLDS[0]} to {FOLDS[-1]}")
    return tuple(dict.fromkeys(methods)), int(folds)


def _knobs(doc: dict) -> dict:
    knobs = doc.get("knobs", {})
    if not isinstance(knobs, dict):
        raise DataError("[knobs] must be a table of knob = value")
    for key, value in knobs.items():
        if key not in KNOBS:
            raise DataError(f"[knobs]: unknown knob '{key}'; the knobs are {', '.join(KNOBS)}")
        try:
            KNOBS[key].parse(value)
        except ValueError as exc:
            raise DataError(f"[knobs] {exc}") from None
    return dict(knobs)


def _claims(doc: dict, raced: tuple[str, ...]) -> tuple[Claim, ...]:
    out = []
    for i, item in enumerate(_items(doc, "claims")):
        where = f"claims[{i + 1}]"
        _only(item, where, ("check", "why"), ("check",))
        claim = _named(where, parse_claim, _text(item, "check", where), _text(item, "why", where, required=False))
        _raced_check(raced, claim.methods, f"{where} '{claim.text}'")
        out.append(claim)
    if not out:
        raise DataError("a lesson needs at least one [[claims]] table with a check")
    return tuple(out)


def _choice(item: object, where: str, raced: tuple[str, ...]) -> Choice:
    if not isinstance(item, dict):
        raise DataError(f"{where}: a choice is a table {{ text = \"...\", claim = \"...\" }}")
    _only(item, where, ("text", "claim", "truth"), ("text",))
    if ("claim" in item) == ("truth" in item):
        raise DataError(f"{where}: give exactly one of claim = \"...\" or truth = \"...\" to decide it")
    if "claim" in item:
        claim = _named(where, parse_claim, _text(item, "claim", where))
        _raced_check(raced, claim.methods, f"{where} '{claim.text}'")
        return Choice(_text(item, "text", where), claim)
    return Choice(_text(item, "text", where), _named(where, parse_truth, _text(item, "truth", where)))


def _questions(doc: dict, raced: tuple[str, ...]) -> tuple[Question, ...]:
    out = []
    for i, item in enumerate(_items(doc, "questions")):
        where = f"questions[{i + 1}]"
        _only(item, where, ("prompt", "choices", "explain"), ("prompt", "choices"))
        choices = item["choices"]
        if not isinstance(choices, list) or not 2 <= len(choices) <= 6:
            raise DataError(f"{where}.choices: a list of 2 to 6 choices is needed")
        out.append(Question(_text(item, "prompt", where),
                            tuple(_choice(c, f"{where}.choices[{j + 1}]", raced) for j, c in enumerate(choices)),
                            _text(item, "explain", where, required=False)))
    return tuple(out)


def _hide(doc: dict) -> tuple[str, ...]:
    hide = doc.get("hide", [])
    if not isinstance(hide, list) or not all(isinstance(h, str) for h in hide):
        raise DataError("hide: a list of control names is needed")
    for name in hide:
        if name not in HIDEABLE:
            raise DataError(f"hide: there is no control '{name}'; the controls are {', '.join(HIDEABLE)}")
    return tuple(hide)


def decode_lesson(data: bytes, where: str, max_bytes: int) -> str:
    """The file's text; DataError when it is too big or not UTF-8."""
    if len(data) > max_bytes:
        raise DataError(f"{where} is {len(data) / 1024:.0f} KB; a lesson file may be at most "
                        f"{max_bytes // 1024} KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{where}, line {line}: not UTF-8 text; save the file as UTF-8") from None


def parse_lesson(text: str, name: str, offered: tuple[str, ...]) -> Lesson:
    """A Lesson from a TOML text; DataError naming the line or key of the first problem.

    offered: the methods the Playground may race (the registry's image + table methods)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"not a valid lesson file: {exc}") from None
    except RecursionError:
        raise DataError(f"not a valid lesson file: nested more than {MAX_DEPTH} levels deep") from None
    if _depth(doc) > MAX_DEPTH:
        raise DataError(f"not a valid lesson file: nested more than {MAX_DEPTH} levels deep")
    _only(doc, "the lesson", ("title", "text", "hide", "knobs", "race", "claims", "questions"),
          ("title", "text", "race", "claims"))
    methods, folds = _race(doc, offered)
    raced = (*BASELINES, *[m for m in methods if m not in BASELINES])
    return Lesson(name=name, title=_text(doc, "title", "the lesson"), text=_text(doc, "text", "the lesson"),
                  knobs=_knobs(doc), methods=methods, folds=folds, claims=_claims(doc, raced),
                  questions=_questions(doc, raced), hide=_hide(doc), source=text)
