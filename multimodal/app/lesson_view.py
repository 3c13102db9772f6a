"""The Playground page's lesson mode: the lesson picker, the lesson box (its text, what it checks,
its hold rate), the learner's predictions before the race, the marks and claims after it, the
worksheet downloads, and a teacher's upload and publish.

A lesson's file is a teacher's and untrusted: its text is shown as Markdown without raw HTML
(Streamlit's default), and the worksheet escapes it (lesson_worksheet.py). The answers are kept in
the session with the race they belong to, and cleared when the lesson changes.
See docs/ARCHITECTURE.md, "Lessons" and "The Fusion Playground".
"""
from __future__ import annotations

import streamlit as st

from multimodal.app import lesson_worksheet as ws
from multimodal.app import playground_query as pq
from multimodal.app import playground_view as view
from multimodal.core.errors import DataError
from multimodal.data.lesson_file import Lesson
from multimodal.data.lesson_store import hold_rate, publish, shipped_lesson, shipped_names
from multimodal.runs.answers import RIGHT, WRONG

ANSWERS_KEY, PUBLISHED_KEY, PICKER_KEY = "pg_answers", "pg_published", "pg_lesson"
FREE_PLAY = "Free play (no lesson)"
CHECK_COMMAND = "python -m multimodal lesson check FILE --seeds 1,2,3"


def shipped_lessons() -> dict[str, Lesson]:
    """The shipped lessons by name, in order.txt's order (a broken file is left out with a warning)."""
    out = {}
    for name in shipped_names():
        try:
            out[name] = shipped_lesson(name, view.race_methods())
        except DataError as exc:
            st.warning(f"Shipped lesson '{name}' left out: {exc}", icon=":material/school:")
    return out


# ---------------------------------------------------------------- picker and box

def picker(setup: dict) -> None:
    """A compact picker of the lessons by title, and free play; picking one opens it."""
    if "preset" in pq.hidden_controls(setup):
        return
    lessons = shipped_lessons()
    current: Lesson | None = setup["lesson"]
    published = current is not None and current.name not in lessons
    if published:
        lessons[current.name] = current   # a published lesson opened by its link
    st.session_state[PICKER_KEY] = current.name if current else ""
    titles = {"": FREE_PLAY, **{name: lesson.title for name, lesson in lessons.items()}}
    if published:
        titles[current.name] += " (published)"
    st.selectbox("Lesson", list(titles), format_func=titles.__getitem__, key=PICKER_KEY,
                 on_change=_picked, args=(lessons,),
                 help="A lesson sets the knobs, the methods and the folds, asks you to predict, then checks its claims")


def _picked(lessons: dict[str, Lesson]) -> None:
    view.apply_lesson(lessons.get(st.session_state[PICKER_KEY]))


def hold_text(lesson: Lesson, knobs: dict) -> str:
    """The lesson's measured hold rate, and whether this page races at the size it was measured at."""
    rate = hold_rate(lesson)
    if rate is None:
        return f"Not yet verified: run `{CHECK_COMMAND}`"
    own = lesson.full_knobs()
    text = (f"Held on {rate['held']} of {rate['seeds']} unseen seeds at the lesson's own settings "
            f"({own['rows']:,} rows, {own['image_size']} px, {lesson.folds} folds; bench/RESULTS_lessons.md)")
    if (knobs["rows"], knobs["image_size"]) != (own["rows"], own["image_size"]):
        text += f". This race uses {knobs['rows']:,} rows at {knobs['image_size']} px: the rate does not vouch for it"
    return text


def box(lesson: Lesson, knobs: dict) -> None:
    """The lesson: title, text (Markdown, no raw HTML), what it checks and its hold rate."""
    with st.container(border=True):
        st.markdown(f"#### :material/school: {lesson.title}")
        st.markdown(lesson.text)
        st.markdown("**What this lesson checks**\n\n" + "\n".join(
            f"- {c.text}" + (f": {c.why}" if c.why else "") for c in lesson.claims))
        st.caption(hold_text(lesson, knobs))


# ---------------------------------------------------------------- predictions

def _key(lesson: Lesson | None) -> str | None:
    return lesson.digest if lesson else None


def sync_answers(lesson: Lesson | None) -> dict:
    """The learner's answers for this lesson; a new lesson (or none) starts from none."""
    ss = st.session_state
    stored = ss.get(ANSWERS_KEY)
    if stored is None or stored["lesson"] != _key(lesson):
        n = len(lesson.questions) if lesson else 0
        for key in [k for k in ss if str(k).startswith(("pg_ans_", "pg_sure_"))]:
            del ss[key]
        ss[ANSWERS_KEY] = stored = {"lesson": _key(lesson), "answers": [None] * n, "sure": [None] * n}
    return stored


def complete(stored: dict) -> bool:
    return all(a is not None for a in stored["answers"]) and all(s is not None for s in stored["sure"])


def predictions(lesson: Lesson, locked: bool) -> bool:
    """Each question as a choice (none chosen at first) and how sure the learner is; True once every
    question has both."""
    stored = sync_answers(lesson)
    ss = st.session_state
    st.markdown("**Predict first.** Answer before the race, then see what it showed.")
    for i, q in enumerate(lesson.questions):
        for key, value in ((f"pg_ans_{i}", stored["answers"][i]), (f"pg_sure_{i}", stored["sure"][i])):
            if key not in ss and value is not None:
                ss[key] = value
        choices = [c.text for c in q.choices]
        stored["answers"][i] = st.radio(f"{i + 1}. {q.prompt}", range(len(choices)), index=None,
                                        format_func=choices.__getitem__, key=f"pg_ans_{i}", disabled=locked)
        stored["sure"][i] = st.radio("How sure are you?", ws.CONFIDENCES, index=None, horizontal=True,
                                     key=f"pg_sure_{i}", disabled=locked, label_visibility="collapsed")
    return complete(stored)


# ---------------------------------------------------------------- after the race

def _marked(i: int, item: dict, sure: str | None) -> None:
    got = item["mark"]
    line = f"**{i + 1}. {item['prompt']}**  \nYour answer: {item['answer'] or '(none)'} ({sure or 'confidence not given'})"
    if got == RIGHT:
        st.success(f"{line}: right", icon=":material/check_circle:")
    elif got == WRONG:
        st.error(f"{line}: wrong", icon=":material/cancel:")
    elif got is None:
        st.info(f"{line}: not answered", icon=":material/help:")
    else:
        st.info(f"{line}: {got}", icon=":material/help:")
    st.markdown("\n".join(f"- *{c['text']}*: {c['plain']}" for c in item["choices"]))
    if item["explain"]:
        st.caption(item["explain"])


def results(race: dict, result: dict, truth: dict) -> None:
    """The learner's answers marked on the race, the lesson's claims in plain words (the statistics
    behind an expander), and the worksheet downloads."""
    lesson: Lesson = race["lesson"]
    answers = race.get("answers") or {"answers": [], "sure": []}
    marked, claims, skipped = ws.mark_race(lesson, answers["answers"], result, truth)
    if marked:
        st.subheader("Your predictions")
        for i, item in enumerate(marked):
            _marked(i, item, answers["sure"][i] if i < len(answers["sure"]) else None)
    st.subheader("What this lesson checks, on this race")
    for c in claims:
        (st.success if c["holds"] else st.warning)(
            f"**{'Holds' if c['holds'] else 'Does not hold'}: {c['claim']}.** {c['plain']}",
            icon=":material/check_circle:" if c["holds"] else ":material/cancel:")
    for text in skipped:
        st.caption(f"Not checked: {text} (a method it names did not race).")
    with st.expander("Statistics"):
        st.markdown("\n".join(f"- {c['claim']}: {c['detail']}" for c in claims))
    name = st.text_input("Your name on the worksheet (optional)", key="pg_worksheet_name", max_chars=80)
    parts = (lesson, marked, answers["sure"], ws.board_rows(result), claims, result["metric"].removeprefix("val_"))
    left, right = st.columns(2)
    left.download_button("Download worksheet (Markdown)", ws.worksheet_markdown(*parts, name=name),
                         file_name="worksheet.md", mime="text/markdown", icon=":material/download:")
    right.download_button("Download worksheet (printable HTML)", ws.worksheet_html(*parts, name=name),
                          file_name="worksheet.html", mime="text/html", icon=":material/print:")


# ---------------------------------------------------------------- teachers

def _publish(data: bytes) -> None:
    try:
        lesson = publish(data, view.race_methods())
    except (DataError, OSError) as exc:
        st.session_state[PUBLISHED_KEY] = {"error": str(exc)}
        return
    st.session_state[PUBLISHED_KEY] = {"hash": lesson.name}
    view.apply_lesson(lesson)


def _count(items: tuple, word: str) -> str:
    return f"{len(items)} {word}{'' if len(items) == 1 else 's'}"


def teacher_upload() -> None:
    """A teacher's lesson file: checked whole on upload (one error naming the problem), then published
    by its content hash for a class link."""
    with st.expander("Teachers: your own lesson", icon=":material/upload_file:"):
        st.caption("Write a lesson as a TOML file (see sample_data/lessons/ for the format) and check it "
                   f"before class with `{CHECK_COMMAND}`.")
        upload = st.file_uploader("Lesson file (.toml)", type="toml", key="pg_upload")
        if upload is not None:
            data = upload.getvalue()
            lesson, problem = pq.read_upload(data, view.race_methods())
            if problem:
                st.error(f"This lesson file cannot be used: {problem}", icon=":material/error:")
            else:
                st.success(f"'{lesson.title}' is a valid lesson: {_count(lesson.claims, 'claim')}, "
                           f"{_count(lesson.questions, 'question')}.", icon=":material/check_circle:")
                st.button("Publish for my class", icon=":material/share:", on_click=_publish, args=(data,))
        published = st.session_state.get(PUBLISHED_KEY)
        if published and "error" in published:
            st.error(f"Not published: {published['error']}", icon=":material/error:")
        elif published:
            st.caption("Published. Add this to the Playground page's address for your class:")
            st.code(f"?lesson={published['hash']}", language=None)
