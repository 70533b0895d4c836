"""Opening the database: the embedded FileStorage or a shared ZEO server.

A FileStorage is held by one process at a time (a ``.lock`` file beside it). A
second process gets either one clear line naming the holder, or, when it asked
for ``read_only``, a read-only view (a snapshot: fine for listing). The
FileStorage is ZODB's, made safe on a full disk (:class:`SafeFileStorage`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import ZODB
from ZODB.FileStorage.FileStorage import FileStorage, TempFormatter

from ..config import Config
from ..errors import RepositoryError, RepositoryLocked
from ..model.status_index import JOBS_INDEX_KEY, StatusIndex
from . import diskspace
from .causes import CauseNumbers
from .registry import JobRegistry, TemplateRegistry
from .root import ROOT_KEY, RepositoryRoot
from .transactions import Database, new_transaction_manager, pending, write

if TYPE_CHECKING:
    from .served import ServedStorage

log = logging.getLogger(__name__)
CACHE_SIZE = 50_000  # objects per connection: a second pass over 10,000 subjobs stays in memory


def _holder_of(lock_path: str) -> str:
    try:
        with open(lock_path) as handle:
            pid = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return "an unknown process"
    try:
        import psutil

        proc = psutil.Process(pid)
        cmd = " ".join(" ".join(proc.cmdline()).split())  # one line, whatever argv holds
        if len(cmd) > 80:
            cmd = cmd[:77] + "..."
        return f"pid {pid}: {cmd}" if cmd else f"pid {pid}"
    except Exception:
        return f"pid {pid}"


class SafeFileStorage(FileStorage):
    """ZODB's FileStorage, which a full disk cannot damage.

    FileStorage writes through buffered files. A write that fails for want of room
    leaves its bytes in the buffer, and the next flush, once there is room again,
    writes that piece of the failed transaction after the last good one: junk that a
    later open reads as a damaged record (seen: ``fstest`` "time-stamp reduction",
    "truncated possibly because of damaged records"). Its temporary file then fails
    every ``seek`` until space comes back, and so ``tpc_abort``, which the ZEO server
    does not survive (that client's next commit is refused). Here a failed vote
    drops what is left unwritten and cuts the file back to its last committed
    transaction, and an abort always clears the temporary file: a commit that finds
    the disk full leaves nothing of itself, and the next one works once there is room.
    """

    _file: Any  # ZODB's: the data file and the temporary file of a transaction
    _tfile: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The ZEO server logs each failed vote twice, with tracebacks: one line it is.
        _one_line_when_full(logging.getLogger("ZEO.StorageServer"),
                            logging.getLogger("ZEO.asyncio.server"))

    def close(self) -> None:
        # ZODB's close keeps ``.tmp`` (the scratch file of a commit, empty between
        # commits): removed here, while this process still holds the storage's lock.
        scratch = self._tfile
        if scratch is not None:
            self._tfile = None
            scratch.close()
            with contextlib.suppress(OSError):
                os.remove(scratch.name)
        super().close()

    def tpc_vote(self, transaction: Any) -> Any:
        try:
            return super().tpc_vote(transaction)
        except BaseException:
            with self._lock:
                self._drop_unwritten()
            raise

    def _abort(self) -> None:
        try:
            super()._abort()
        except OSError:
            self._nextpos = 0
            self._drop_unwritten()
            self._blob_tpc_abort()

    def _clear_temp(self) -> None:
        try:
            super()._clear_temp()
        except OSError:  # the buffer of a failed store could not be flushed
            self._tindex.clear()
            self._drop_temp()

    def _drop_unwritten(self) -> None:
        self._file = _reopened(self._file, "r+b")
        os.ftruncate(self._file.fileno(), self._pos)  # no room needed to shrink a file
        self._drop_temp()

    def _drop_temp(self) -> None:
        if self._tfile is not None:
            self._tfile = _reopened(self._tfile, "r+b")
            self._tfmt = TempFormatter(self._tfile)


def _reopened(handle: Any, mode: str) -> Any:
    """A fresh handle on ``handle``'s file; what ``handle`` holds unwritten is dropped
    (its raw file is closed first, so closing the buffered one never flushes it)."""
    fresh = open(handle.name, mode)
    handle.raw.close()
    return fresh


class _OneLineWhenFull(logging.Filter):
    """A commit that found the disk full is logged in one line, not a traceback, and
    once a minute at most (the monitor tries again every second meanwhile)."""

    REPEAT = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._last = -self.REPEAT
        self._dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not diskspace.is_disk_full(error):
            return True
        now = time.monotonic()
        if now - self._last < self.REPEAT:
            self._dropped += 1
            return False
        said = f"; {self._dropped} such log lines left out since" if self._dropped else ""
        record.msg, record.args = "%s %s (nothing of that commit was kept%s)", (
            record.getMessage(), (str(error).splitlines() or [""])[0], said)
        record.exc_info = None
        record.exc_text = None
        self._last, self._dropped = now, 0
        return True


def _one_line_when_full(*loggers: logging.Logger) -> None:
    """One filter shared by ``loggers``: a failed commit they each log is one line."""
    if any(isinstance(f, _OneLineWhenFull) for f in loggers[0].filters):
        return
    shared = _OneLineWhenFull()
    for logger in loggers:
        logger.addFilter(shared)


def parse_zeo_uri(uri: str) -> tuple[str, int]:
    parsed = urlparse(uri)
    if parsed.scheme != "zeo" or not parsed.hostname or not parsed.port:
        raise RepositoryError(
            f"repository URI {uri!r} is not valid; use zeo://host:port (e.g. zeo://127.0.0.1:8100)",
            uri=uri,
        )
    return parsed.hostname, parsed.port


class Repository:
    """An open database plus what sessions need from it."""

    def __init__(self, db: ZODB.DB, config: Config, read_only: bool, location: str,
                 path: str = "") -> None:
        self.db = db
        self.config = config
        self.read_only = read_only
        self.location = location
        self.path = path  # the FileStorage's file here ("": served from another machine)
        self._closed = False
        self.causes = CauseNumbers(db)  # numbers for the causes this process names
        diskspace.remember(db, path, location)

    def connect(self) -> Connection:
        """A new connection with its own transaction manager (one per thread)."""
        conn = self.db.open(transaction_manager=new_transaction_manager())
        return Connection(self, conn)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if not self.read_only:
                try:
                    self.causes.give_back()
                except Exception:  # noqa: BLE001 - a gap in the numbers, nothing lost
                    log.debug("could not give back unused cause numbers", exc_info=True)
            self.db.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Connection:
    """One ZODB connection and the registries seen through it."""

    def __init__(self, repository: Repository, conn: Any) -> None:
        self.repository = repository
        self.conn = conn
        self._root: RepositoryRoot | None = None

    @property
    def root(self) -> RepositoryRoot:
        if self._root is not None:
            return self._root
        zroot = self.conn.root()
        if ROOT_KEY not in zroot:
            if self.repository.read_only:
                raise RepositoryError(
                    f"the repository at {self.repository.location} is empty and read-only",
                    location=self.repository.location,
                )

            def create() -> None:
                if ROOT_KEY not in zroot:
                    zroot[ROOT_KEY] = RepositoryRoot()
                    zroot[JOBS_INDEX_KEY] = StatusIndex()  # (an older one gets it built)

            write(self.conn, create, note="create the ganga_like registries")
        root: RepositoryRoot = zroot[ROOT_KEY]
        # Inside a write through this connection the creation joined it, and may yet be
        # rolled back with it: the root is kept only once nothing is pending.
        if not pending(self.conn):
            self._root = root
        return root

    @property
    def jobs(self) -> JobRegistry:
        return JobRegistry(self)

    @property
    def templates(self) -> TemplateRegistry:
        return TemplateRegistry(self)

    def write(self, work: Any, **kwargs: Any) -> Any:
        return write(self.conn, work, **kwargs)

    def refresh(self) -> None:
        """See other writers' commits (a new transaction), if nothing is pending here:
        no change made and not committed yet, no write under way through this connection."""
        if not pending(self.conn):
            self.conn.transaction_manager.begin()

    def close(self) -> None:
        try:
            self.conn.transaction_manager.abort()
        finally:
            self.conn.close()


def open_repository(config: Config, read_only: bool | None = None,
                    fallback_read_only: bool = False) -> Repository:
    """Open the repository the config names.

    ``fallback_read_only``: if another process holds the FileStorage, open it
    read-only instead of refusing (for listings and other read-only commands).
    """
    read_only = config.read_only if read_only is None else read_only
    if config.repository.startswith("zeo://"):
        return _open_zeo(config, read_only)
    path = config.filestorage_path
    if read_only and not os.path.exists(path):
        raise RepositoryError(f"no repository at {path} yet (nothing has been stored)", path=path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        storage = SafeFileStorage(path, read_only=read_only)
    except Exception as exc:  # zc.lockfile.LockError, without importing its module path
        if type(exc).__name__ != "LockError":
            raise RepositoryError(f"cannot open the repository {path}: {exc}", path=path) from exc
        if not fallback_read_only:
            raise RepositoryLocked(path, _holder_of(path + ".lock")) from None
        storage = SafeFileStorage(path, read_only=True)
        read_only = True
    db = Database(storage, cache_size=CACHE_SIZE, pool_size=16)
    return Repository(db, config, read_only, path, path=path)


def _open_zeo(config: Config, read_only: bool) -> Repository:
    return open_zeo(config, parse_zeo_uri(config.repository), read_only=read_only,
                    location=config.repository)


def open_served(config: Config, storage: ServedStorage, location: str) -> Repository:
    """The service's own repository: the FileStorage its ZEO server serves, opened as a
    peer of ZEO's clients."""
    db = Database(storage, cache_size=CACHE_SIZE, pool_size=16)
    return Repository(db, config, False, location, path=config.filestorage_path)


def open_zeo(config: Config, address: Any, read_only: bool = False, ssl: Any = None,
             location: str = "", wait_timeout: float = 10) -> Repository:
    """A repository served by a ZEO server at ``address`` (a unix socket path or
    ``(host, port)``; ``ssl``: the TLS context a remote client presents)."""
    from .zeo_client import SessionClientStorage

    location = location or str(address)
    try:
        storage = SessionClientStorage(address, read_only=read_only, wait_timeout=wait_timeout,
                                       ssl=ssl, ssl_server_hostname=None)
    except Exception as exc:
        raise RepositoryError(f"cannot reach the database server at {location}: {exc}",
                              uri=location) from None
    db = Database(storage, cache_size=CACHE_SIZE, pool_size=16)
    # Served through a unix socket: the service's FileStorage, on this machine.
    path = config.filestorage_path if isinstance(address, str) else ""
    return Repository(db, config, read_only, location, path=path)
