"""Pavilion-style status file: one append-only line per state change.

Each line is ``<ISO time with microseconds and UTC offset> <STATE> <note>\\n``, e.g.::

    2025-01-31T14:02:07.123456+0100 RUN_FAILED exit=2

written with ONE ``os.write`` of at most :data:`LINE_MAX` bytes to a descriptor
opened with ``O_APPEND``: the kernel makes such appends atomic, so the wrapper
(bash), the actor and a person running ``tail -f`` need no locks. Notes longer
than the line allows are truncated; newlines in notes become spaces.

Readers are forgiving: a garbled or partial line (a crash mid-write, a disk
full) is skipped, never an exception. ``when`` is seconds since the epoch.

State names follow Pavilion's rules: upper case, a valid identifier that starts
with a letter, at most 15 characters; ``*_ERROR`` is a fault of the system (the
wrapper, the actor, the OS), ``*_FAILED`` is something tried that did not work.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import re
import time

from ganga_like.errors import InvalidValue

LINE_MAX = 4096  # one write of at most this many bytes is an atomic append
STATE_MAX = 15

# The states ganga_like writes, with what each means. ``wrapper`` = wrapper.sh,
# ``actor`` = the Local actor. The terminal ones carry ``exit=N`` in the note.
CREATED = "CREATED"  # actor: workdir prepared, the wrapper is being started
QUEUED = "QUEUED"  # actor: accepted, waiting for a free slot
RUNNING = "RUNNING"  # wrapper: payload started; note "pid=P wrapper=W marker=M"
RUN_DONE = "RUN_DONE"  # wrapper: payload exited 0; note "exit=0"
RUN_FAILED = "RUN_FAILED"  # wrapper: payload exited non-zero; "exit=N [signal=NAME]"
EXEC_FAILED = "EXEC_FAILED"  # wrapper: payload missing (exit=127) or not executable (126)
KILLED = "KILLED"  # wrapper got SIGTERM (forwarded it) or actor confirmed a kill
WRAPPER_ERROR = "WRAPPER_ERROR"  # wrapper or actor could not set the run up
LOST_ERROR = "LOST_ERROR"  # actor: wrapper vanished without recording an exit status

STATES: dict[str, str] = {
    CREATED: "workdir prepared, wrapper being started",
    QUEUED: "accepted, waiting for a free slot",
    RUNNING: "payload running",
    RUN_DONE: "payload exited 0",
    RUN_FAILED: "payload exited non-zero (or by a signal: 128+N)",
    EXEC_FAILED: "payload could not be executed",
    KILLED: "stopped on request",
    WRAPPER_ERROR: "the wrapper could not set the run up",
    LOST_ERROR: "the wrapper vanished without recording an exit status",
}

# States after which the wrapper writes nothing more: they carry the exit status.
TERMINAL_STATES = frozenset({RUN_DONE, RUN_FAILED, EXEC_FAILED, KILLED, WRAPPER_ERROR, LOST_ERROR})

_STATE_RE = re.compile(r"[A-Z][A-Z0-9_]{0,14}\Z")
_EXIT_RE = re.compile(r"(?:^|\s)exit=(-?\d+)")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"


def validate_state(state: str) -> str:
    """Return ``state`` if it follows Pavilion's naming rules, else raise InvalidValue."""
    if not isinstance(state, str) or not _STATE_RE.match(state) or not state.isidentifier():
        raise InvalidValue(
            "StatusFile",
            "state",
            state,
            f"upper case identifier starting with a letter, at most {STATE_MAX} characters",
        )
    return state


_second_cache: tuple[tuple[_dt.datetime, int], str, str] = ((_dt.datetime.min, 0), "", "")


def format_time(when: float) -> str:
    """ISO 8601 local time with microseconds and UTC offset (same as wrapper.sh)."""
    global _second_cache
    local = _dt.datetime.fromtimestamp(when)
    # The date, time and offset of one local second are worked out once (astimezone and
    # strftime were half of what the Local actor spent writing a subjob's first line);
    # the fold tells the two passes of a repeated hour apart.
    key = (local.replace(microsecond=0), local.fold)
    known, head, offset = _second_cache
    if known != key:
        head, offset = local.strftime("%Y-%m-%dT%H:%M:%S"), local.astimezone().strftime("%z")
        _second_cache = (key, head, offset)
    return f"{head}.{local.microsecond:06d}{offset}"


def parse_time(text: str) -> float:
    """Inverse of :func:`format_time`; also accepts a stamp without offset (local time)."""
    # fromisoformat (C, 3.11+) reads "+HHMM" offsets and is ~100x faster than strptime.
    return _dt.datetime.fromisoformat(text).timestamp()


def exit_code_of(note: str) -> int | None:
    """The ``exit=N`` in a note, or None."""
    found = _EXIT_RE.search(note)
    return int(found.group(1)) if found else None


@dataclasses.dataclass(frozen=True)
class StatusInfo:
    """One line of a status file."""

    state: str
    note: str
    when: float

    @property
    def exit_code(self) -> int | None:
        return exit_code_of(self.note)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def line(self) -> bytes:
        """The bytes written for this status: one line of at most LINE_MAX bytes."""
        head = f"{format_time(self.when)} {self.state} ".encode()
        note = self.note.replace("\r", " ").replace("\n", " ").encode("utf-8", "replace")
        room = LINE_MAX - len(head) - 1
        if len(note) > room:
            # Cut on a character boundary so the line stays valid UTF-8.
            note = note[:room].decode("utf-8", "ignore").encode()
        return head + note + b"\n"


def parse_line(raw: bytes | str) -> StatusInfo | None:
    """Parse one line; None for anything garbled (partial write, bad state, bad time)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    raw = raw.rstrip("\n")
    parts = raw.split(" ", 2)
    if len(parts) < 2:
        return None
    stamp, state = parts[0], parts[1]
    if not _STATE_RE.match(state):
        return None
    try:
        when = parse_time(stamp)
    except (ValueError, OverflowError, OSError):
        return None
    return StatusInfo(state, parts[2] if len(parts) > 2 else "", when)


class StatusFile:
    """An append-only status file (see the module docstring for the format)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def set(self, state: str, note: str = "", when: float | None = None) -> StatusInfo:
        """Append one status line with a single atomic write; return what was written."""
        stamp = format_time(time.time() if when is None else when)
        # Return what a reader will see: the time as written (microseconds).
        info = StatusInfo(validate_state(state), note, parse_time(stamp))
        append_line(self.path, info.line())
        return info

    def history(self) -> list[StatusInfo]:
        """Every readable status, oldest first; garbled lines are skipped."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return []
        return _parse_complete_lines(data)

    def current(self) -> StatusInfo | None:
        """The most recent readable status (reads only the file's tail), or None."""
        return last_status(self.path)

    def has_state(self, state: str) -> bool:
        return any(info.state == state for info in self.history())

    def __repr__(self) -> str:
        return f"StatusFile({self.path!r})"


def append_line(path: str, line: bytes) -> None:
    """One O_APPEND write of a pre-built line (the hot path of the actor uses this)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def append_quietly(path: str, state: str, note: str) -> None:
    """Append a status line written by an actor, ignoring I/O errors.

    Those lines are informative (the wrapper's own lines carry the outcome): a full
    disk or a removed workdir must not stop an actor's thread.
    """
    try:
        StatusFile(path).set(state, note)
    except OSError:
        pass


def last_status(path: str) -> StatusInfo | None:
    """The last readable status of the file at ``path``; reads at most two line sizes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        # Most status files are a few lines: one read takes the whole file; only a
        # longer one costs the fstat and the read of its tail.
        data = os.read(fd, 2 * LINE_MAX)
        start = 0
        if len(data) == 2 * LINE_MAX:
            size = os.fstat(fd).st_size
            start = max(0, size - 2 * LINE_MAX)
            data = os.pread(fd, size - start, start)
    finally:
        os.close(fd)
    if start:
        # The first piece may be the tail of a longer line: drop it.
        data = data.partition(b"\n")[2]
    lines = data.split(b"\n")
    lines.pop()  # without a final newline the last piece is a partial write
    for raw in reversed(lines):
        info = parse_line(raw)
        if info is not None:
            return info
    return None


def _parse_complete_lines(data: bytes) -> list[StatusInfo]:
    lines = data.split(b"\n")
    # Without a final newline the last piece is a partial write: skip it.
    lines.pop()
    result = []
    for raw in lines:
        info = parse_line(raw)
        if info is not None:
            result.append(info)
    return result
