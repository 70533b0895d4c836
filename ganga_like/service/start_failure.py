"""Why a service could not start, in one line that names what to do.

The client that started the service shows this line (the last line of
``service.log``) as soon as the service exits, instead of a traceback or a wait.
"""

from __future__ import annotations

import errno

from ZODB.FileStorage.FileStorage import FileStorageError

from ..channel.paths import ServicePaths
from ..errors import GangaLikeError


def explain(exc: BaseException, paths: ServicePaths, database: str) -> str:
    """One line: what failed, why, and the way out."""
    if isinstance(exc, GangaLikeError):
        return str(exc)
    if type(exc).__name__ == "LockError":  # zc.lockfile's: another process opened the database
        holder = _lock_holder(database + ".lock")
        return (f"the database {database} is in use by another process{holder}: a program "
                f"that opened it directly (not through ganga_like); stop that program, then "
                f"run the command again")
    if isinstance(exc, FileStorageError):
        return (f"the database {database} is damaged ({type(exc).__name__}); restore it from a "
                f"backup, or recover what it holds: `python -m ZODB.fsrecover jobs.fs recovered.fs` "
                f"in its directory, then rename recovered.fs to jobs.fs")
    if isinstance(exc, OSError):
        return _explain_os_error(exc, paths)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}; see {paths.log}"


def _explain_os_error(exc: OSError, paths: ServicePaths) -> str:
    where = exc.filename or paths.root
    if exc.errno == errno.EADDRINUSE:
        return (f"the address to listen on is in use ({exc.strerror}); choose another "
                f"--listen HOST:PORT, or port 0 for any free one")
    if exc.errno == errno.ENOSPC:
        return f"the disk holding {where} is full; free some space, then run the command again"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        inside = str(where).startswith(paths.root)
        return (f"cannot write {where} ({exc.strerror}); make it writable by you"
                + (", or choose another repository with GANGA_LIKE_DIR" if inside else ""))
    if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTSOCK):
        return f"{where} is in the way ({exc.strerror}); move it out of {paths.root}"
    return f"{exc.strerror or exc} ({where}); see {paths.log}"


def _lock_holder(lock_path: str) -> str:
    try:
        with open(lock_path) as handle:
            pid = handle.read().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
