"""The BEX-style queue log: one line per status change, for people and ``grep``.

``YYYY-MM-DD HH:MM:SS <host> <job-id> <status> [<msg>]``, appended to
``<root>/log`` after the transaction that made the changes has committed (a
rolled-back change never appears). Lines are written in one ``write`` per
batch on a file opened for appending.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable

from .model.lifecycle import Change

_HOST = socket.gethostname()


def format_line(change: Change) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(change.time))
    note = " ".join(change.note.split())  # one line per event, whatever the note holds
    line = f"{stamp} {change.host or _HOST} {change.fqid} {change.target}"
    return f"{line} {note}\n" if note else line + "\n"


class QueueLog:
    def __init__(self, path: str) -> None:
        self.path = path

    def append(self, changes: Iterable[Change]) -> None:
        text = "".join(format_line(c) for c in changes)
        if not text:
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def tail(self, lines: int = 20) -> list[str]:
        try:
            with open(self.path) as handle:
                return handle.readlines()[-lines:]
        except FileNotFoundError:
            return []
