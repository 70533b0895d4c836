"""The service's own log (``service.log``, its stderr) on a disk that may fill up.

Python's stream handler hands a failed write to ``handleError``, which writes a
traceback of it to the same full file, and a buffered stderr keeps the failed bytes
to write them later, half lines included. Here each record is one ``write`` of a
whole line: a line the disk has no room for is dropped (the service goes on), a line
cut short is ended by the next, and the next line written says how many were lost.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from typing import TextIO


class LineHandler(logging.Handler):
    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.lost = 0  # lines not written since the last one that was
        self._why = ""
        self._cut = False  # the last write stopped inside its line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        if self.lost:
            text = self.format(logging.LogRecord(
                record.name, logging.WARNING, __file__, 0,
                "%d line(s) of this log could not be written (%s)", (self.lost, self._why),
                None)) + "\n" + text
        if self._cut:
            text = "\n" + text
        data = text.encode(errors="replace")
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()  # what others wrote through the stream comes first
        try:
            written = os.write(self.stream.fileno(), data)
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed
            self.lost += 1
            self._why = getattr(exc, "strerror", None) or str(exc)
            return
        self._cut = written < len(data)
        if self._cut:
            self.lost, self._why = self.lost + 1, os.strerror(errno.ENOSPC)
        else:
            self.lost = 0


class ClientsLeaving(logging.Filter):
    """ZEO's server logs a client whose connection broke as an ERROR ("Disconnected
    ConnectionResetError: ..."): a script killed or interrupted, a shell closed, a
    machine gone. For the service that is a client leaving, not a fault of its own: the
    line is kept, at INFO (an admin reading the log for errors found these among them)."""

    LEAVING = ("ConnectionResetError", "BrokenPipeError")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Disconnected %s:%s" and isinstance(record.args, tuple) and \
                record.args[:1] and record.args[0] in self.LEAVING:
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True
