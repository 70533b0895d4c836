"""The end of a text file (a job's stdout, say): what ``peek`` shows, on either side."""

from __future__ import annotations

import os

TAIL_WINDOW = 64 * 1024  # the end of a file read to find its last lines


def tail(path: str, lines: int) -> tuple[str, int]:
    """The last ``lines`` lines of the file at ``path`` (undecodable bytes replaced), and
    the offset they end at (where following the file goes on)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - TAIL_WINDOW))
        data = handle.read(size - handle.tell()).decode(errors="replace")
    return "".join(data.splitlines(keepends=True)[-lines:] if lines else []), size
