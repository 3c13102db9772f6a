"""What every command shares: usage errors, output, and library notices while training."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys


class UsageError(Exception):
    """A command-line mistake (bad flag value, unreadable JSON)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def columns(text: str | None) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()] if text else []


def emit(payload: dict, as_json: bool, text: str) -> None:
    print(json.dumps(payload) if as_json else text)


class _Notices(logging.Handler):
    """The library's warnings (e.g. an image encoder trained from random init because its pretrained
    weights cannot be had) as plain `notice: ...` lines on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"notice: {record.getMessage()}", file=sys.stderr)


NOTICES = _Notices(logging.WARNING)


@contextlib.contextmanager
def training_output():
    """While training: library notices on stderr, and stdout (Keras' download progress bar) sent
    there too, so stdout carries only the result (with --json, one JSON line)."""
    logger = logging.getLogger("multimodal")
    logger.addHandler(NOTICES)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        logger.removeHandler(NOTICES)
