"""A subjob's workdir and status file, as every backend reads and writes them.

Its status trace is read through ``trace.py`` (the subjob's own file, or its
master's collected trace once the subjob was tidied away).

The wrapper's ``RUNNING`` line carries ``pid=<payload> wrapper=<wrapper pid>
marker=<marker>`` (the marker last: it is the rest of the line); a terminal line
carries ``exit=N``. Every backend reads them here, and only here: to find a run
again after a restart (:func:`find_again`) and to tell how it ended
(:func:`outcome_of`).
"""

from __future__ import annotations

import dataclasses
import os

from ganga_like.backends import base
from ganga_like.backends.runtime import procs, spares, trace
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime.layout import OUTPUT, STATUS

Outcome = tuple[str, "int | None", str]  # (event kind, exit code, note)


@dataclasses.dataclass(frozen=True)
class RunningNote:
    """The note of a ``RUNNING`` line."""

    payload: int = 0
    wrapper: int = 0
    marker: str = ""


def parse_running(note: str) -> RunningNote:
    head, _, marker = note.partition("marker=")
    words = dict(word.split("=", 1) for word in head.split() if "=" in word)

    def number(key: str) -> int:
        try:
            return int(words.get(key, "0"))
        except ValueError:
            return 0

    return RunningNote(number("pid"), number("wrapper"), marker.strip())


def history(workdir: str) -> list[sf.StatusInfo]:
    return trace.history(workdir)


def last_running(lines: list[sf.StatusInfo]) -> RunningNote | None:
    for info in reversed(lines):
        if info.state == sf.RUNNING:
            return parse_running(info.note)
    return None


def wrapper_ran(lines: list[sf.StatusInfo]) -> tuple[int, float] | None:
    """The wrapper pid the last ``RUNNING`` line names and that line's time (its start,
    give or take the moment it took to write it), or None before a wrapper ran: how a
    run that is over (or on another machine) is named."""
    for info in reversed(lines):
        if info.state == sf.RUNNING:
            wrapper = parse_running(info.note).wrapper
            return (wrapper, info.when) if wrapper else None
    return None


def marker_of(workdir: str) -> str | None:
    """The marker the wrapper recorded in ``workdir``'s status file, if any."""
    note = last_running(history(workdir))
    return note.marker or None if note is not None else None


@dataclasses.dataclass(frozen=True)
class Found:
    """Where a run from an earlier actor is now, as this machine sees it."""

    pid: int
    create_time: float
    marker: str | None
    last: sf.StatusInfo | None  # the status file's last line
    alive: bool  # its wrapper (pid + create time) still runs


def find_again(handle: base.Handle) -> Found:
    """Find a handle's wrapper again: by its pid and start time, or (taken before it
    started) by the wrapper named in the status file, if that process carries the
    marker the file records."""
    lines = history(handle.workdir)
    note = last_running(lines)
    marker = note.marker or None if note is not None else None
    pid, created = handle.pid, handle.create_time
    if not pid and note is not None and note.wrapper and marker and procs.read_marker(note.wrapper) == marker:
        pid, created = note.wrapper, procs.create_time(note.wrapper) or 0.0
    alive = bool(pid) and procs.is_alive(pid, created)
    return Found(pid, created, marker, lines[-1] if lines else None, alive)


def outcome_of(last: sf.StatusInfo | None, returncode: int | None) -> Outcome:
    """How a run whose wrapper has ended turned out.

    ``returncode``: the wrapper's exit status when we are its parent (None for adopted
    work). The status file is the payload's to damage (it can write there); the exit
    status the kernel gave us is not, so it wins when they differ.
    """
    if returncode is not None and returncode >= 0 and not (
            last is not None and last.terminal and last.state != sf.LOST_ERROR
            and (last.exit_code if last.exit_code is not None else returncode) == returncode):
        seen = f"{last.state} {last.note}".strip()[:200] if last is not None else "no status line"
        return base.FINISHED, returncode, (
            f"exit={returncode} (the wrapper's exit status; its status file ends with something else: "
            f"{seen})")
    if last is not None and last.terminal:
        code = last.exit_code
        if last.state == sf.LOST_ERROR:
            return base.LOST, None, last.note
        if last.state == sf.KILLED and code is None:
            return base.KILLED, None, last.note
        if code is None:
            code = 0 if last.state == sf.RUN_DONE else 1
        note = f"{last.state} {last.note}".strip()
        if last.state == sf.KILLED:
            note += " (signalled from outside ganga_like)"  # our own kills never reach here
        return base.FINISHED, code, note
    seen = f"last status {last.state}" if last is not None else "no status line"
    if returncode is None:
        reason = f"the wrapper ended before recording the exit status ({seen})"
    elif returncode < 0:
        reason = f"wrapper ended by signal {-returncode} before recording the exit status ({seen})"
    else:
        reason = f"wrapper exited with {returncode} without recording the exit status ({seen})"
    return base.LOST, None, reason


def outcome_in(workdir: str, returncode: int | None = None, own: bytes | None = None) -> Outcome:
    """:func:`outcome_of` the status file in ``workdir``; a LOST outcome is recorded
    there (``LOST_ERROR``) unless the file already ends with a terminal line. ``own``:
    that file as ``trace.read_own`` read it (None: read here)."""
    last = trace.last_in(own) if own is not None else trace.last(workdir)
    outcome = outcome_of(last, returncode)
    if outcome[0] == base.LOST and (last is None or not last.terminal):
        lost_line(workdir, outcome[2])
    return outcome


def lost_line(workdir: str, note: str) -> None:
    if workdir:
        sf.append_quietly(os.path.join(workdir, STATUS), sf.LOST_ERROR, note)


def prepare(workdir: str, first_line: bytes) -> None:
    """``<workdir>/output`` and the status file's first line; OSError if that fails.
    A spare directory of its workspace (``spares.py``) when there is one: one rename,
    no inode allocated; else two mkdir calls in the common case (``makedirs`` would
    stat every level)."""
    if spares.take(workdir, first_line):
        return
    try:
        os.mkdir(workdir)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(workdir, exist_ok=True)
    try:
        os.mkdir(os.path.join(workdir, OUTPUT))
    except FileExistsError:
        pass
    sf.append_line(os.path.join(workdir, STATUS), first_line)


def tidy_after(fqid: str, workdir: str, ended: Outcome, now: bool = False,
               own: bytes | None = None) -> None:
    """Once no process of a run is left: a subjob that ended with 0 and wrote nothing
    leaves no directory (``trace.tidy`` when ``now``, else ``trace.tidy_soon``: a spare
    directory at once, or removed at a quiet moment). A job's own directory is its
    workspace: kept. ``own``: its status file as read for ``ended`` (``outcome_in``)."""
    if "." in fqid and ended[0] == base.FINISHED and ended[1] == 0:
        if now:
            trace.tidy(workdir)
        else:
            trace.tidy_soon(workdir, own)


def killed_line(workdir: str, note: str) -> None:
    """Record a kill we confirmed in the subjob's status file."""
    if workdir:
        sf.append_quietly(os.path.join(workdir, STATUS), sf.KILLED, f"killed by ganga_like: {note}")
