"""The service's own way into the FileStorage that its ZEO server serves.

The service hosts the database server. Writing through a ZEO client of its own made
every record it stores a message to itself: for a split of 100,000 subjobs, 100,000
wakeups of ZEO's event loop, each written to the server's commit log and replayed
into the FileStorage at the vote (py-spy, issue 22: the service's ``submit()`` took
twice as long as the same work on the file). So the service's database opens the
FileStorage itself, through :class:`ServedStorage`, as one more peer of ZEO's clients:

* it commits in its turn in ZEO's commit queue (the server's lock manager), as a
  client does: a client's vote waits in that queue behind the service's commit, and
  ZEO's event loop, which serves every client's reads, never blocks on the
  FileStorage's own lock;
* each of its commits reaches ZEO's clients as their invalidations, and the server's
  queue of recent invalidations, which a client reconnecting reads;
* each commit of a ZEO client invalidates the service's connections
  (:class:`ServingZEO`), before the FileStorage's last transaction moves, as ZODB
  does for the connections of one process.

Only the service uses it; clients, the web view's readers in other processes and the
command line keep using ZEO. :func:`serve` builds the pair.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ZEO.StorageServer import StorageServer
from ZODB.POSException import StorageError

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

    from ZEO.StorageServer import LockManager
    from ZODB.FileStorage import FileStorage
    from ZODB.mvccadapter import MVCCAdapter

log = logging.getLogger(__name__)

STORAGE_ID = "1"  # the only storage the service's ZEO server serves
TURN_LOOK = 1.0  # seconds between looks at a closing server while the service waits its turn
CLOSE_TURN = 10.0  # the longest a stop waits for its clients' connections and commits to end


class ServingZEO(StorageServer):
    """ZEO's server, which also tells the service's own database what its clients commit."""

    peer: ServedStorage | None = None
    closing = False

    def invalidate(self, zeo_storage: object, storage_id: str, tid: bytes,
                   invalidated: Iterable[bytes]) -> None:
        super().invalidate(zeo_storage, storage_id, tid, invalidated)
        if self.peer is not None:
            self.peer.committed_by_client(tid, invalidated)

    def broadcast(self, tid: bytes, oids: list[bytes]) -> None:
        """Tell every client (and the queue a reconnecting client reads) what the service
        committed: the invalidations a ZEO commit of its own would have sent."""
        super().invalidate(None, STORAGE_ID, tid, oids)

    def close(self, join_timeout: float = 1) -> None:
        """Stop serving. The clients' connections are closed first, while ZEO's event loop
        still runs: ZEO's own close asks that loop to close them only after it has asked
        it to stop, and logged "call_soon_threadsafe failed while connected" with a
        traceback whenever the loop had ended first (a client connected at a stop)."""
        self.closing = True
        closed: list[threading.Event] = []
        for zeo_storages in list(self.zeo_storages_by_storage_id.values()):
            for zeo_storage in list(zeo_storages):
                try:
                    zeo_storage.call_soon_threadsafe(zeo_storage.connection.close)
                    done = threading.Event()
                    zeo_storage.call_soon_threadsafe(done.set)
                    closed.append(done)
                except Exception:  # (closed meanwhile: ZEO's close below tries again)
                    log.debug("closing a client's connection", exc_info=True)
        # Each connection's loop has closed it, and no request of it is being served (a
        # load ZEO served from the file its close had just closed failed with "closed"):
        deadline = time.monotonic() + CLOSE_TURN
        for done in closed:
            done.wait(max(0.0, deadline - time.monotonic()))
        self._last_turn(deadline)
        super().close(join_timeout)

    def _last_turn(self, deadline: float) -> None:
        """Take the commit lock, for good, before ZEO's close closes the FileStorage: a
        client's commit between its vote and its end (its connection being closed aborts
        it) finishes first. ZEO closed the file under it, and that client's vote failed
        with "seek of closed file", a traceback in its script (seen in the crowd soak).
        Not granted by ``deadline`` (one CLOSE_TURN for the whole stop), the close goes
        on as before."""
        turn = _Turn(self.acceptor.event_loop)
        self.lock_managers[STORAGE_ID].lock(turn, turn.take)
        if not turn.granted.wait(max(0.0, deadline - time.monotonic())):
            log.warning("a client's commit still held the database's lock after %g s; "
                        "closing the database anyway", CLOSE_TURN)


class _Turn:
    """The service's place in ZEO's commit queue: what the lock manager asks of a client.

    The lock manager grants the lock by calling :meth:`take` (at once, or later from ZEO's
    event loop when the holder before it finishes)."""

    connected = True  # the service never disconnects from its own server
    locked = False

    def __init__(self, loop: AbstractEventLoop) -> None:
        self._loop = loop
        self.granted = threading.Event()

    def take(self) -> bool:
        self.locked = True
        self.granted.set()
        return True

    def call_soon_threadsafe(self, func: Callable[..., object], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(func, *args)
        except RuntimeError:  # the loop is closed: the server stops, and the waiter sees it
            log.debug("ZEO's loop is closed; the service's turn is not granted")

    def log(self, message: str, level: int = logging.INFO, exc_info: bool = False) -> None:
        log.log(min(level, logging.WARNING), "service's commit: %s", message, exc_info=exc_info)


class ServedStorage:
    """The FileStorage, as the service's own ZODB database sees it (see the module).

    Implements what ZODB's DB and its MVCC adapter use of a storage; the rest of the
    FileStorage (pack, iteration) stays with the server and the pack policy."""

    def __init__(self, storage: FileStorage, server: ServingZEO) -> None:
        self._filestorage = storage
        self._server = server
        self._locks: LockManager = server.lock_managers[STORAGE_ID]
        self._db: MVCCAdapter | None = None
        # The transaction under way: one at a time, as the commit lock is held by one.
        self._transaction: object = None
        self._turn: _Turn | None = None
        self._oids: list[bytes] = []
        self._db_lock = threading.Lock()  # a client's commit tells the database, or it closes
        server.peer = self

    # -- what ZODB's DB asks -------------------------------------------------------
    def registerDB(self, db: MVCCAdapter) -> None:  # noqa: N802 (ZODB's storage API)
        self._db = db

    def committed_by_client(self, tid: bytes, oids: Iterable[bytes]) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.invalidate(tid, oids)

    def close(self) -> None:
        """The service's database closes (it stops, and its ZEO server still serves for
        a moment): its clients' commits no longer tell it. They did, into the closed
        database, and failed in their last phase, stored but told an error. The
        FileStorage is the server's, closed when the server stops."""
        with self._db_lock:
            self._db = None

    def getName(self) -> str:  # noqa: N802
        return str(self._filestorage.getName())

    def getSize(self) -> int:  # noqa: N802
        return int(self._filestorage.getSize())

    def sortKey(self) -> str:  # noqa: N802
        return str(self._filestorage.sortKey())

    def __len__(self) -> int:
        return len(self._filestorage)

    def isReadOnly(self) -> bool:  # noqa: N802
        return bool(self._filestorage.isReadOnly())

    def supportsUndo(self) -> bool:  # noqa: N802
        return False  # the service never undoes

    def lastTransaction(self) -> bytes:  # noqa: N802
        return bytes(self._filestorage.lastTransaction())

    def new_oid(self) -> bytes:
        return bytes(self._filestorage.new_oid())

    def load(self, oid: bytes, version: str = "") -> tuple[bytes, bytes]:
        return self._filestorage.load(oid, version)

    def loadBefore(self, oid: bytes, tid: bytes) -> tuple[bytes, bytes, bytes | None] | None:  # noqa: N802
        return self._filestorage.loadBefore(oid, tid)

    def loadSerial(self, oid: bytes, serial: bytes) -> bytes:  # noqa: N802
        return self._filestorage.loadSerial(oid, serial)

    def history(self, oid: bytes, size: int = 1) -> list[dict[str, object]]:
        return self._filestorage.history(oid, size)

    def pack(self, t: float, referencesf: Callable[..., object], gc: bool | None = None) -> object:
        return self._filestorage.pack(t, referencesf, gc)

    # -- a commit ------------------------------------------------------------------
    def tpc_begin(self, transaction: object, tid: bytes | None = None, status: str = " ") -> None:
        turn = self._wait_turn()
        try:
            self._filestorage.tpc_begin(transaction, tid, status)
        except BaseException:
            self._locks.release(turn)
            raise
        self._transaction, self._turn, self._oids = transaction, turn, []

    def store(self, oid: bytes, serial: bytes, data: bytes, version: str,
              transaction: object) -> object:
        self._oids.append(oid)
        return self._filestorage.store(oid, serial, data, version, transaction)

    def checkCurrentSerialInTransaction(self, oid: bytes, serial: bytes,  # noqa: N802
                                        transaction: object) -> None:
        self._filestorage.checkCurrentSerialInTransaction(oid, serial, transaction)

    def tpc_vote(self, transaction: object) -> object:
        return self._filestorage.tpc_vote(transaction)

    def tpc_finish(self, transaction: object,
                   func: Callable[[bytes], None] = lambda tid: None) -> bytes:
        oids = self._oids

        def finished(tid: bytes) -> None:
            func(tid)  # the service's other connections
            self._server.broadcast(tid, oids)  # ZEO's clients

        try:
            return self._filestorage.tpc_finish(transaction, finished)
        finally:
            self._end(transaction)

    def tpc_abort(self, transaction: object) -> None:
        try:
            self._filestorage.tpc_abort(transaction)
        finally:
            self._end(transaction)

    def _end(self, transaction: object) -> None:
        if transaction is not self._transaction:
            return  # aborted before it began: it never had the lock
        turn = self._turn
        self._transaction, self._turn, self._oids = None, None, []
        if turn is not None:
            self._locks.release(turn)

    def _wait_turn(self) -> _Turn:
        turn = _Turn(self._server.acceptor.event_loop)
        self._locks.lock(turn, turn.take)
        while not turn.granted.wait(TURN_LOOK):
            if self._server.closing:
                self._locks.release(turn)
                raise StorageError("the database server is stopping; nothing was committed")
        return turn


def serve(address: str | tuple[str, int], storage: FileStorage) -> tuple[ServingZEO, ServedStorage]:
    """ZEO's server for ``storage`` at ``address`` (not started) and the service's own way in."""
    server = ServingZEO(address, {STORAGE_ID: storage})
    return server, ServedStorage(storage, server)
