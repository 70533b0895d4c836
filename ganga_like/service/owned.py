"""A service's own files in its root, removed at its stop only while they are its own.

The root can be deleted, or replaced, under a running service; a client that comes
meanwhile starts the next service there, which makes its database socket, control
socket and state file under the same names. The old service, stopping once it sees
its root gone, must leave those alone: removing the next one's database socket left
that service up but unreachable, every command timing out, until its idle stop. So a
file is removed only if the path still names the file (device and inode) this
service made.
"""

from __future__ import annotations

import contextlib
import os

Identity = tuple[int, int]


def identity(path: str) -> Identity | None:
    """(device, inode) of ``path``, or None if it is gone."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def remove_if_made(path: str, made: Identity | None) -> None:
    """Remove ``path`` if it is still the file identified as ``made`` (nothing if that
    is None: this service never made it)."""
    if made is not None and identity(path) == made:
        with contextlib.suppress(OSError):
            os.unlink(path)
