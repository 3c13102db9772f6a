"""What training on a cluster of workers needs besides the strategy: no hang, clear errors, a Keras fix.

With MultiWorkerMirroredStrategy every training step waits for every worker (an all-reduce of
the gradients), so one worker that dies or never starts would leave the others waiting. Three
guards end them instead, each with one `error:` line and exit code 2 (docs/ARCHITECTURE.md,
"Training on a cluster"):

- joining: a worker waits at most the worker timeout for the others to join (TensorFlow's
  coordination service, configured in devices.py; by default it would wait forever);
- a worker that dies: the coordination service misses its heartbeats (HEARTBEAT_SECONDS) or
  cannot reach it and aborts the collectives of the others; `lost_worker` turns their
  TensorFlow error into a ClusterError;
- a worker that hangs: each collective waits at most the worker timeout
  (`CommunicationOptions(timeout_seconds)`, devices.py).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf

from multimodal.core.errors import DataError

HEARTBEAT_SECONDS = 10   # a worker silent this long is declared dead (TensorFlow's own default)

# What TensorFlow raises in the surviving workers when a peer is gone or too slow.
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                      tf.errors.CancelledError)


class ClusterError(DataError):
    """A cluster problem to report, not a crash: a bad TF_CONFIG, a worker gone or too slow.

    A DataError, so the CLI prints it as one `error:` line and exits 2 like a data problem."""


def reason(exc: BaseException) -> str:
    """The line of a TensorFlow collective error that says what happened (it names the lost
    task or the unreachable address), without the graph trace around it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "aborted by:" in line:
            text = line.split("aborted by:", 1)[1].strip()
            if text.endswith(":") and i + 1 < len(lines):   # "...unhealthy (...):" lists the tasks below
                text = f"{text} {lines[i + 1]}"
            return text
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def lost_worker(worker: str, timeout: float) -> Iterator[None]:
    """Turn the error a surviving worker gets when a peer dies or hangs into a ClusterError
    naming this worker, the cause and what to do."""
    try:
        yield
    except LOST_WORKER_ERRORS as exc:
        if isinstance(exc, tf.errors.DeadlineExceededError):
            cause = f"another worker did not answer within {timeout:g} s (--worker-timeout)"
        else:
            cause = f"another worker is gone ({reason(exc)})"
        raise ClusterError(f"training stopped on {worker}: {cause}. Every worker must run to the end; "
                           "restart all of them to train again") from None


def logs_as_vectors(model, strategy: tf.distribute.Strategy) -> None:
    """Work around Keras 3.15 under MultiWorkerMirroredStrategy (tensorflow issue 72388): with more
    than one worker, fit() and evaluate() average each step's logs over the replicas with
    strategy.reduce(MEAN, axis=0), which fails on scalars; steps that return 1-element vectors
    average into the same scalars. One worker alone takes Keras' other path, which needs scalars,
    so the same test as Keras' decides. Wraps the class's own steps, so calling it again (every
    compile) does not nest wrappers."""
    if not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()):
        return

    def vectors(step):
        return lambda data: {name: tf.reshape(value, [1]) for name, value in step(model, data).items()}
    model.train_step = vectors(type(model).train_step)
    model.test_step = vectors(type(model).test_step)
