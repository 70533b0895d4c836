"""The BEX-style queue log: one line per status change, for people and ``grep``.

``YYYY-MM-DD HH:MM:SS <host> <job-id> <status> [<msg>]``, the message ending with
the change's cause in brackets (``... killed killed, confirmed (kill #lz3k9q1a.41)``;
the cause alone when there is no note), appended to
``<root>/log`` after the transaction that made the changes has committed (a
rolled-back change never appears). Lines are written in one ``write`` per
batch on a file opened for appending.

The commit has happened when its lines are appended, so a log that cannot be
written (a full disk) must neither fail the caller nor lose them: they are kept in
memory, in order, and written before the next batch's (or at the monitor's next
turn), whole: a batch the disk had room for only part of is cut back out.
"""

from __future__ import annotations

import errno
import functools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterable

from .model.lifecycle import Change
from .status import Cause

_HOST = socket.gethostname()
log = logging.getLogger(__name__)


def format_line(change: Change) -> str:
    note = change.note
    if change.cause is not None:
        cause = _cause_text(change.cause)
        note = f"{note} ({cause})" if note.strip() else f"({cause})"
    return format_fields(change.time, change.host, change.fqid, change.target, note)


# A monitor batch writes a few hundred lines of one cause within a second or two: each
# text is made once (a Cause is an immutable tuple; a stamp depends on the whole second).
@functools.lru_cache(maxsize=256)
def _cause_text(cause: Cause) -> str:
    return str(cause)


@functools.lru_cache(maxsize=64)
def _stamp(second: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))


def format_fields(when: float, host: str, job_id: str, status: str, note: str = "") -> str:
    """One line of a queue log: ``YYYY-MM-DD HH:MM:SS <host> <job-id> <status> [<msg>]``
    (also the BEX queue's own log, ``bex.files``)."""
    stamp = _stamp(math.floor(when))
    note = " ".join(note.split())  # one line per event, whatever the note holds
    line = f"{stamp} {host or _HOST} {job_id} {status}"
    return f"{line} {note}\n" if note else line + "\n"


class QueueLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._held: list[str] = []  # lines not written yet (the log could not be), in order
        self._failing = False
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        """How many lines wait in memory for the log to be writable again."""
        return sum(text.count("\n") for text in self._held)

    def append(self, changes: Iterable[Change]) -> None:
        self.append_lines("".join(format_line(c) for c in changes))

    def append_lines(self, text: str) -> None:
        """Append whole lines (made by :func:`format_fields`), held back as ``append``'s."""
        with self._lock:
            if text:
                self._held.append(text)
            if self._held:
                self._write_held()

    def flush(self) -> bool:
        """Write the lines held back, if any; whether none are left."""
        with self._lock:
            return not self._held or self._write_held()

    def _write_held(self) -> bool:
        data = "".join(self._held).encode()
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            return self._not_written(exc)
        try:
            size = os.fstat(fd).st_size
            written = os.write(fd, data)
            if written < len(data):  # room for part of it: cut it out, write it whole later
                if os.fstat(fd).st_size == size + written:
                    os.ftruncate(fd, size)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
        except OSError as exc:
            return self._not_written(exc)
        finally:
            os.close(fd)
        if self._failing:
            self._failing = False
            log.info("the queue log %s is written again, with the lines held back", self.path)
        self._held.clear()
        return True

    def _not_written(self, exc: OSError) -> bool:
        if not self._failing:  # said once per spell
            self._failing = True
            log.warning("cannot append to the queue log %s (%s); its lines are kept in memory "
                        "and appended, in order, once it can be written", self.path,
                        exc.strerror or exc)
        return False

    def tail(self, lines: int = 20) -> list[str]:
        try:
            with open(self.path) as handle:
                return handle.readlines()[-lines:]
        except FileNotFoundError:
            return []
