"""A service's own files in its root, removed at its stop only while they are its own.

The root can be deleted, or replaced, under a running service; a client that comes
meanwhile starts the next service there, which makes its database socket, control
socket and state file under the same names. The old service, stopping once it sees
its root gone, must leave those alone: removing the next one's database socket left
that service up but unreachable, every command timing out, until its idle stop. So a
file is removed only if the path still names the file (device and inode) this
service made.

A device and inode number name a file only while the file exists: once deleted, its
inode number goes to the next file made, and on ext4 a directory deleted and made
again at once under the same name often gets the same number. The old service then
took the next one's root for its own, and ran on beside it. So each file is held
(an ``O_PATH`` descriptor, which reads and locks nothing) from when it is made to
the stop: a held inode is not freed, and no later file can carry its number.
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


class Held:
    """A file or directory this service made, held until :meth:`release`."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            self._fd = None  # gone already: never its own

    def is_there(self) -> bool:
        """Whether ``path`` still names the file held."""
        if self._fd is None:
            return False
        try:
            held = os.fstat(self._fd)
        except OSError:  # (a network filesystem's stale handle: the file is gone)
            return False
        return identity(self.path) == (held.st_dev, held.st_ino)

    def remove(self) -> None:
        """Remove ``path`` if it still names the file held; then let the file go."""
        if self.is_there():
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
