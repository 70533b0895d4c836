"""A full disk, recognised and named: which filesystem, how much is left on it.

A write that finds no room fails with ``ENOSPC`` (or ``EDQUOT`` over a quota). The
FileStorage raises it as an ``OSError`` in the process that holds it; a ZEO client
gets it from the server as a ``ServerException`` carrying the error's class name and
arguments. Both are the same thing here, and become one :class:`~ganga_like.errors.DiskFull`
line naming the filesystem that is full, what became of the write, and the way out.
"""

from __future__ import annotations

import errno
import os
import weakref
from typing import Any

from ..errors import DiskFull

FULL = (errno.ENOSPC, errno.EDQUOT)
FULL_TEXTS = tuple(os.strerror(code) for code in FULL)  # as an error reads in a note

# What each open database is, for the error line: (file path or "", where it is served).
_DATABASES: weakref.WeakKeyDictionary[Any, tuple[str, str]] = weakref.WeakKeyDictionary()


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it was raised from) is a write that found no room."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in FULL:
            return True
        args = exc.args
        if (type(exc).__name__ == "ServerException" and len(args) == 2
                and str(args[0]).endswith("Error") and isinstance(args[1], (tuple, list))
                and args[1] and args[1][0] in FULL):
            return True  # ZEO: ('builtins.OSError', (28, 'No space left on device'))
        exc = exc.__cause__ or exc.__context__
    return False


def mentions_disk_full(text: str) -> bool:
    """Whether an error already turned into text (a backend's reason) was a full disk."""
    return any(words in text for words in FULL_TEXTS)


def filesystem_of(path: str) -> str:
    """The mount point of the filesystem that holds ``path`` (or would hold it)."""
    path = os.path.realpath(path)
    while path != os.path.dirname(path) and not os.path.exists(path):
        path = os.path.dirname(path)
    while path != os.path.dirname(path) and not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def free_bytes(path: str) -> int | None:
    try:
        stat = os.statvfs(filesystem_of(path))
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def human(size: int | None) -> str:
    if size is None:
        return "an unknown amount"
    amount = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if amount < 1024 or unit == "TB":
            return f"{size} bytes" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} bytes"  # pragma: no cover


def disk_full(path: str, what: str, then: str, location: str = "") -> DiskFull:
    """The one line for a write into ``path`` that found no room (``path`` empty: the
    database of a service on another machine, at ``location``)."""
    if not path:
        return DiskFull(f"the disk of the service at {location}", "its database",
                        "an unknown amount", what, then)
    return DiskFull(filesystem_of(path), path, human(free_bytes(path)), what, then)


def remember(db: Any, path: str, location: str) -> None:
    """Record what ``db`` is: its FileStorage's path here (or "": served from elsewhere)."""
    _DATABASES[db] = (path, location)


def database_full(db: Any, what: str, then: str) -> DiskFull:
    """The one line for a commit of ``db`` that found no room."""
    path, location = _DATABASES.get(db, ("", "an unknown address"))
    return disk_full(path, what, then, location)
