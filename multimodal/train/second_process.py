"""A comparison's second process: methods trained two at a time, one per core
(docs/ARCHITECTURE.md, "Two processes").

A fast-mode comparison's fits are overhead-bound: small heads, one step after another, each a
few milliseconds of Python and TensorFlow dispatch on ONE core (measured: a Playground race used
1.07 cores of 2). A second process trains whole methods at the same time on the other core. Every
method trains exactly as it would in one process, so a comparison's scores do not depend on how
many processes ran it (tests/test_second_process.py):

- the main process trains stage 1 (the encoders are made there) and the methods it takes, in
  order from the front of the list;
- the second one trains methods taken from the back of the list, as heads on frozen encoders
  (`FastFolds.heads_batched`). Each arrives with its folds' configs, splits, frozen encoders and
  cached maps, prepared by the main process (`FastFolds.prepare_heads`) as soon as they can be
  (an image head once stage 1 has made every fold's encoder), so neither process computes a map
  twice and the second never waits for the main one to finish a method;
- a kept model (`keep_dir`) is written whole by whichever process trained it;
- the second process's results are reported as soon as they are in (a callback, from the thread
  that talks to it), so the leaderboard and the progress fill in while the main process trains.

The second process is `python -c "...main(FD)"` (subprocess, not multiprocessing: the app's
training worker is a daemon process, which may not have children of its own). The two talk over
a socket pair, pickled (multiprocessing.connection), through a thread of the main process, so the
main process never waits on the socket. The second process ends when its parent closes the socket
or dies.
"""
from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # the second process reads its first message before TensorFlow loads
    from multimodal.train.stagewise import FastFolds

# The child's command: TensorFlow's start-up chatter kept quiet (core/quiet.py) before anything imports it.
_CHILD = ("from multimodal.core.quiet import quiet_tensorflow; quiet_tensorflow(); "
          "from multimodal.train.second_process import main; main({fd})")


_END = bytes(ForkingPickler.dumps(None))   # close()'s message, as the socket carries it


class SecondProcessError(RuntimeError):
    """The second process failed a method or ended: the message says which and why."""


class SecondProcess:
    """The parent's end of the second process: `send` its state, `train` a method, `close`."""

    def __init__(self):
        mine, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen([sys.executable, "-c", _CHILD.format(fd=theirs.fileno())],
                                             pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL)
        except OSError:
            mine.close()
            raise
        finally:
            theirs.close()
        self._conn = Connection(mine.detach())
        self.busy: str | None = None   # the method it trains now

    @classmethod
    def started(cls) -> SecondProcess | None:
        """A second process, or None when none can be started (out of processes): the comparison
        then trains every method in this one, with the same results."""
        try:
            return cls()
        except OSError:
            return None

    def send(self, message) -> None:
        try:
            self._conn.send(message)
        except OSError as exc:
            raise self._ended("") from exc

    def train(self, arch: str, prepared: list[tuple]) -> tuple[str, list[dict]]:
        """Have it train arch's prepared folds (FastFolds.train_prepared): (arch, its folds' summaries)."""
        self.busy = arch
        self.send((arch, prepared))
        try:
            status, arch, answer = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._ended(f" while training {arch}") from exc
        self.busy = None
        if status == "error":
            raise SecondProcessError(f"the comparison's second process failed on {arch}: {answer}")
        return arch, answer

    def _ended(self, doing: str) -> SecondProcessError:
        return SecondProcessError(f"the comparison's second process ended{doing} (exit code {self._process.poll()})")

    def close(self) -> int:
        """End it: once it has read the end, or at once while it trains (a stopped comparison).
        Returns its exit code; closing it again does nothing more."""
        if self._conn.closed:
            return self._process.wait()
        if self.busy is None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._conn.close()
        return self._process.returncode


class _Work:
    """The methods left, shared by the two lanes: the main one takes from the front, the second
    from the back among those prepared for it; and what failed in the second's thread."""

    def __init__(self, order: list[str]):
        self.left = list(order)
        self.prepared: dict[str, list[tuple]] = {}
        self.failed: BaseException | None = None
        self.closed = False
        self.changed = threading.Condition()

    def take_first(self) -> str | None:
        with self.changed:
            arch = self.left.pop(0) if self.left else None
            self.changed.notify_all()
            return arch

    def prepare(self, arch: str, prepared: list[tuple]) -> None:
        with self.changed:
            self.prepared[arch] = prepared
            self.changed.notify_all()

    def take_last_prepared(self) -> tuple[str, list[tuple]] | None:
        """The last method prepared and still left (waiting for one), or None: nothing left."""
        with self.changed:
            while not self.closed and self.left:
                arch = next((a for a in reversed(self.left) if a in self.prepared), None)
                if arch is not None:
                    self.left.remove(arch)
                    return arch, self.prepared.pop(arch)
                self.changed.wait()
            return None

    def raise_failure(self) -> None:
        if self.failed is not None:
            raise self.failed

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()


SecondDone = Callable[[str, list[dict]], None]   # (method, its folds' summaries), in the talking thread


def _feed(second: SecondProcess, state: dict, work: _Work, on_done: SecondDone) -> None:
    """The thread talking to the second process: its state, then each method it takes, each
    result handed to on_done as soon as it is in."""
    try:
        second.send(state)
        while (job := work.take_last_prepared()) is not None:
            on_done(*second.train(*job))
    except BaseException as exc:  # noqa: BLE001  (raised again in the main thread)
        work.failed = exc


def lanes(order: list[str], fast: FastFolds | None, jobs_of: Callable[[str], list[tuple]],
          second: SecondProcess | None, on_done: SecondDone) -> Iterator[str]:
    """The methods of `order` this process trains, one at a time (the caller trains each as it
    comes); the second process trains the others, and on_done(method, its folds' summaries) gets
    each as it is in, from another thread: it must be thread-safe. Returns once both are done; a
    failure in the second process (or in on_done) is raised here. jobs_of(method): its (fold
    config, split) jobs. second None (or no fast mode): every method here, in order."""
    if second is None or fast is None:
        yield from order
        return
    work = _Work(order)
    feeding = threading.Thread(target=_feed, args=(second, fast.state(), work, on_done), daemon=True,
                               name="mmstudio-second-process")
    feeding.start()
    try:
        while True:
            work.raise_failure()
            for arch in list(work.left):   # what the second process may take now
                if arch not in work.prepared and _can_hand_over(fast, arch, jobs_of(arch), work.left):
                    work.prepare(arch, fast.prepare_heads(arch, jobs_of(arch)))
            mine = work.take_first()
            if mine is None:
                break
            yield mine
        feeding.join()
        work.raise_failure()
    finally:   # stopped or failed too: the second process ends, and nothing is reported after this
        work.close()
        second.close()
        feeding.join()


def _can_hand_over(fast: FastFolds, arch: str, jobs: list[tuple], left: list[str]) -> bool:
    """Whether the second process can train arch now: as heads, on encoders made already or to be
    made by prepare_heads (no stage 1 left to make them)."""
    if not fast.heads_batched(arch):
        return False
    return not fast.needs_stage1(arch, [split for _, split in jobs]) or not any(fast.is_stage1(a) for a in left)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(2.0)
        if os.getppid() != parent:
            os._exit(3)


def main(fd: int) -> None:
    """The second process: build FastFolds from the first message, then train each method sent."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    conn = Connection(fd)
    try:
        state = conn.recv_bytes()
        if state == _END:   # the parent ended before it handed anything over
            os._exit(0)
        # lazy: TensorFlow loads after the first message is read (the parent's thread is not held)
        from multimodal.train.stagewise import FastFolds
        fast = FastFolds.from_state(pickle.loads(state))
        while (job := conn.recv()) is not None:
            arch, prepared = job
            try:
                conn.send(("done", arch, fast.train_prepared(arch, prepared)))
            except Exception as exc:  # noqa: BLE001  (reported to the parent, which raises it)
                conn.send(("error", arch, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    except (EOFError, OSError):   # the parent closed the socket: nothing more to do
        pass
    os._exit(0)
