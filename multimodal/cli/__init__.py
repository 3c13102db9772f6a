"""`python -m multimodal samples|archs|train|compare|predict|explain|export|card|whatif|playground|lesson`
(docs/ARCHITECTURE.md, "The command line").

With --json the last stdout line is one JSON object. A user's mistake exits 2 with one
`error: ...` line on stderr, never a traceback. One module per group of commands; the heavy
library (TensorFlow) is imported only by the commands that need it.
"""
from __future__ import annotations

import sys

from multimodal.cli.common import UsageError
from multimodal.cli.export import cmd_card, cmd_export
from multimodal.cli.lesson import cmd_lesson
from multimodal.cli.listing import cmd_archs, cmd_samples
from multimodal.cli.parser import build_parser
from multimodal.cli.playground import cmd_playground
from multimodal.cli.predict import cmd_explain, cmd_predict
from multimodal.cli.train import cmd_compare, cmd_train
from multimodal.cli.whatif import cmd_whatif
from multimodal.core.errors import DataError
from multimodal.core.quiet import quiet_tensorflow

EXIT_USER_ERROR = 2


COMMANDS = {"samples": cmd_samples, "archs": cmd_archs, "train": cmd_train, "compare": cmd_compare,
            "predict": cmd_predict, "explain": cmd_explain, "export": cmd_export, "card": cmd_card,
            "whatif": cmd_whatif, "playground": cmd_playground,
            "lesson": cmd_lesson}


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow()   # TensorFlow's start-up chatter stays off stderr (core/quiet.py)
    try:
        args = build_parser().parse_args(argv)
        if args.command in ("train", "compare", "predict", "explain", "whatif"):
            import tensorflow  # noqa: F401  # lazy: only the commands that train or predict load it
        code = COMMANDS[args.command](args)   # a command may say 1: it ran, and what it checked failed
    except (UsageError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # e.g. an --out folder that cannot be written, a full disk
        where = f" '{exc.filename}'" if exc.filename else ""
        print(f"error: cannot access{where} ({exc.strerror or exc}); check the path and its permissions",
              file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        print("error: out of memory; use a smaller --image-size or --batch-size, or fewer rows", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return code or 0
