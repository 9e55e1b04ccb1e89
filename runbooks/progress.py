"""Progress an operator can read: every wait says what it waits for, how long it has waited, its deadline and
the last state seen.

The engine reports *operations* to a ``Tracker``: one starts (what, its timeout or None for "until ARM ends
it"), is polled (the last state seen: a poller's status, the verification conditions still unmet), and ends
(ok or failed, how long it took). Plain lines (``line``) go through the same tracker. Two renderers:

* ``PlainTracker``: one whole line per event (each ≤ 100 columns, written at once under a lock, so parallel
  waits never interleave): for logs, pipes and Azure Automation's output stream. A poll is shown when its
  state changes (from "InProgress" at the start), or every ``RUNBOOKS_PROGRESS_EVERY_S`` seconds (default 15)
  while it does not.
* ``LiveTracker``: on a terminal, a rich Live area with one status line per running operation (spinner, what,
  elapsed / deadline, last state), redrawn ten times a second; each operation leaves one ✓/✗ line when it ends.

``scaled(seconds)``: a timeout that models one of Azure's durations (verification waiting for the VM agent),
multiplied by ``RUNBOOKS_TIMEOUT_SCALE`` (the demo sets it to armsim's latency scale: a demo at 2% of Azure's
pace must not wait 15 minutes for a condition that will never hold).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from runbooks.settings import positive_number
from runbooks.text import WIDTH, cut, fit_lines

PROGRESS_EVERY_ENV = "RUNBOOKS_PROGRESS_EVERY_S"  # seconds between "still running" lines (default 15)
DEFAULT_PROGRESS_EVERY_S = 15.0
TIMEOUT_SCALE_ENV = "RUNBOOKS_TIMEOUT_SCALE"
# A scaled timeout is never cut below this (or below the unscaled one, when that is shorter): the toolkit's own
# work (TLS, JSON, a loaded machine) does not speed up with armsim's clock.
MIN_SCALED_TIMEOUT_S = 30.0
# A started operation is taken to be in progress: a poller answering just that is not news until the period passes.
STARTED_STATE = "InProgress"
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_ids = itertools.count(1)


def timeout_scale() -> float:
    """``RUNBOOKS_TIMEOUT_SCALE`` (default 1): how much faster than Azure the clock the timeouts model runs."""
    return positive_number(TIMEOUT_SCALE_ENV, 1.0, "a number")


def scaled(seconds: float) -> float:
    """A timeout modelling an Azure duration, at ``RUNBOOKS_TIMEOUT_SCALE`` (never cut below 30 s)."""
    scale = timeout_scale()
    if scale == 1.0:
        return seconds
    return max(seconds * scale, min(seconds, MIN_SCALED_TIMEOUT_S))


def progress_every() -> float:
    """``RUNBOOKS_PROGRESS_EVERY_S`` (default 15): seconds between "still running" lines of a wait."""
    return positive_number(PROGRESS_EVERY_ENV, DEFAULT_PROGRESS_EVERY_S)


def check_settings() -> None:
    """Refuse a bad progress or timeout setting before a run's first write, not at its first wait."""
    timeout_scale()
    progress_every()


def seconds_text(s: float) -> str:
    return f"{s:.1f}s" if s < 10 else f"{s:.0f}s"


@dataclass(eq=False)
class Operation:
    """One wait in progress: ``what`` it waits for, its ``timeout_s`` (None: until ARM ends it), the last
    ``state`` seen. Report polls with ``poll(state)`` and the end with ``end(ok, note)`` (once)."""

    tracker: Tracker
    what: str
    timeout_s: float | None = None
    indent: str = "    "
    started: float = field(default_factory=time.monotonic)
    state: str = ""
    ended: bool = False
    id: int = field(default_factory=lambda: next(_ids))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def deadline(self) -> str:
        return f"up to {self.timeout_s:g}s" if self.timeout_s is not None else "until ARM ends it"

    def poll(self, state: str) -> None:
        self.tracker.polled(self, state)

    def end(self, ok: bool = True, note: str = "") -> None:
        if not self.ended:
            self.ended = True
            self.tracker.ended(self, ok, note)

    # the plain text of each event, shared by both renderers
    def start_text(self) -> str:
        return cut(f"{self.indent}→ {self.what} (waiting {self.deadline()})")

    def poll_text(self) -> str:
        of = f" of {self.timeout_s:g}s" if self.timeout_s is not None else ""
        return cut(f"{self.indent}  … {self.what}: still running ({self.elapsed():.0f}s{of})"
                   + (f": {self.state}" if self.state else ""))

    def end_text(self, ok: bool, note: str) -> str:
        took = seconds_text(self.elapsed())
        if ok:
            return cut(f"{self.indent}✓ {self.what}{': ' + note if note else ''} ({took})")
        return cut(f"{self.indent}✗ {self.what}: {note or 'failed'} (after {took})")

    def status_line(self, now: float, width: int = WIDTH) -> str:
        """The live line: spinner, what, elapsed / deadline, last state."""
        spin = _SPINNER[int(now * 10) % len(_SPINNER)]
        limit = f" / {self.timeout_s:g}s" if self.timeout_s is not None else ""
        head = f"{spin} {self.what}  {seconds_text(now - self.started)}{limit}"
        return cut(f"{head}  {self.state}" if self.state else head, width)


class Tracker:
    """Where the engine reports lines and operations (see the module docstring)."""

    def line(self, text: str) -> None:
        raise NotImplementedError

    def start(self, what: str, timeout_s: float | None = None, indent: str = "    ") -> Operation:
        op = Operation(self, what, timeout_s, indent)
        self.started(op)
        return op

    def started(self, op: Operation) -> None:
        raise NotImplementedError

    def polled(self, op: Operation, state: str) -> None:
        raise NotImplementedError

    def ended(self, op: Operation, ok: bool, note: str) -> None:
        raise NotImplementedError

    @contextmanager
    def operation(self, what: str, timeout_s: float | None = None, indent: str = "    ") -> Iterator[Operation]:
        """An operation that ends when the block does: failed (with the error's first line) if it raises; the
        block may end it itself first (``op.end(True, note)``)."""
        op = self.start(what, timeout_s, indent)
        try:
            yield op
        except BaseException as e:
            op.end(False, (str(e).splitlines() or [type(e).__name__])[0])
            raise
        op.end(True)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """While the block runs (a question asked on the terminal), nothing is redrawn."""
        yield

    def close(self) -> None:
        """Nothing is shown as running any more (a live area is taken down; the cursor comes back)."""


class PlainTracker(Tracker):
    """One whole line per event through ``write`` (called with one line, no newline, under a lock)."""

    def __init__(self, write: Callable[[str], None] = print, every_s: float | None = None) -> None:
        self.write, self.every_s = write, every_s
        self.lock = threading.Lock()
        self._said: dict[int, tuple[float, str]] = {}  # op id → (when its last line was written, its state then)

    def line(self, text: str) -> None:
        with self.lock:
            for part in fit_lines([text]).split("\n"):
                self.write(part)

    def started(self, op: Operation) -> None:
        with self.lock:
            self._said[op.id] = (time.monotonic(), STARTED_STATE)
            self.write(op.start_text())

    def polled(self, op: Operation, state: str) -> None:
        op.state = state
        every = self.every_s if self.every_s is not None else progress_every()
        with self.lock:
            when, said = self._said.get(op.id, (op.started, STARTED_STATE))
            now = time.monotonic()
            if state != said or now - when >= every:
                self._said[op.id] = (now, state)
                self.write(op.poll_text())

    def ended(self, op: Operation, ok: bool, note: str) -> None:
        with self.lock:
            self._said.pop(op.id, None)
            self.write(op.end_text(ok, note))


def stream_writer(stream: TextIO) -> Callable[[str], None]:
    """Write a line and its newline in one call, flushed (a print() is two writes: threads could interleave)."""
    def write(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()
    return write


class LiveTracker(Tracker):
    """A rich Live area on a terminal: one status line per running operation; lines and each operation's end
    are printed above it. The area exists only while an operation runs (a question is never asked under it)."""

    def __init__(self, stream: TextIO | None = None, refresh_per_second: float = 10.0) -> None:
        from rich.console import Console

        self.console = Console(file=stream if stream is not None else sys.stdout, highlight=False)
        self.refresh_per_second = refresh_per_second
        self.ops: dict[int, Operation] = {}
        self.lock = threading.RLock()
        self.live: Any = None
        self.pauses = 0

    def line(self, text: str) -> None:
        with self.lock:
            self.console.print(fit_lines([text]), markup=False, highlight=False, emoji=False, soft_wrap=True)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        now, width = time.monotonic(), min(WIDTH, self.console.width)
        return Group(*(Text(op.status_line(now, width), no_wrap=True, overflow="ellipsis")
                       for op in list(self.ops.values())))

    def _show(self) -> None:
        from rich.live import Live

        if self.live is None and self.ops and not self.pauses:
            self.live = Live(get_renderable=self._render, console=self.console, transient=True,
                             refresh_per_second=self.refresh_per_second, redirect_stdout=True, redirect_stderr=True)
            self.live.start()

    def _hide(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def started(self, op: Operation) -> None:
        with self.lock:
            self.ops[op.id] = op
            self._show()

    def polled(self, op: Operation, state: str) -> None:
        op.state = state  # the next redraw shows it

    def ended(self, op: Operation, ok: bool, note: str) -> None:
        with self.lock:
            self.ops.pop(op.id, None)
            if not self.ops:
                self._hide()
            self.console.print(op.end_text(ok, note), markup=False, highlight=False, emoji=False,
                               style=None if ok else "red")

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self.lock:
            self.pauses += 1
            self._hide()
        try:
            yield
        finally:
            with self.lock:
                self.pauses -= 1
                self._show()

    def close(self) -> None:
        with self.lock:
            self.ops.clear()
            self._hide()


def for_stream(stream: TextIO | None = None) -> Tracker:
    """A live tracker on a terminal, a plain one otherwise (a pipe, a file, ``TERM=dumb``)."""
    out = stream if stream is not None else sys.stdout
    if out.isatty() and os.environ.get("TERM", "") != "dumb":
        return LiveTracker(out)
    return PlainTracker(stream_writer(out))


def wait_for_poller(poller: Any, op: Operation, slice_s: float = 0.5) -> None:
    """Wait for an azure-core poller in short slices, reporting its status (what its own polls saw: no extra
    request) after each, so a live line moves and a plain one says "still running" on time."""
    while True:
        poller.wait(slice_s)
        if poller.done():
            return
        op.poll(_status(poller))


def _status(poller: Any) -> str:
    try:
        return str(poller.status())
    except Exception:  # a poller that cannot say (its first poll not yet answered)
        return ""
