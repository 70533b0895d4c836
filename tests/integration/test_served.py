"""The service's own database on the FileStorage its ZEO server serves (``repository.served``).

Real parts: a FileStorage, the service's ZEO server on a unix socket in this process, and
ZEO clients as every other process of a repository has them. What must hold: each side
sees the other's commits, racing writers lose nothing, a client's commit waits for the
service's turn in ZEO's queue while ZEO keeps answering other clients' reads, and a
service commit waiting for its turn gives up when the server stops.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import transaction
from BTrees.Length import Length
from persistent.mapping import PersistentMapping
from ZODB.Connection import TransactionMetaData
from ZODB.POSException import StorageError

from ganga_like.config import Config
from ganga_like.repository import served
from ganga_like.repository.storage import Connection, SafeFileStorage, open_served, open_zeo

pytestmark = pytest.mark.timeout(60)


class Repo:
    def __init__(self, tmp_path) -> None:
        self.config = Config(root=str(tmp_path / "gl"))
        os.makedirs(os.path.dirname(self.config.filestorage_path), exist_ok=True)
        self.socket = str(tmp_path / "zeo.sock")
        self.storage = SafeFileStorage(self.config.filestorage_path)
        self.server, self.peer = served.serve(self.socket, self.storage)
        self.server.start_thread()
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket) and time.monotonic() < deadline:
            time.sleep(0.005)
        self.service = open_served(self.config, self.peer, location=self.config.root)
        self.clients = [open_zeo(self.config, self.socket) for _ in range(2)]

    def close(self) -> None:
        for repo in [self.service, *self.clients]:
            repo.close()
        self.server.close()


@pytest.fixture
def repo(tmp_path) -> Iterator[Repo]:
    made = Repo(tmp_path)
    yield made
    made.close()


def _see(conn: Connection, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """New transactions on ``conn`` until ``predicate()`` holds (ZEO's invalidations
    arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        conn.refresh()
        if predicate():
            return
        assert time.monotonic() < deadline, "the other side's commit never became visible"
        time.sleep(0.001)


def _put(conn: Connection, key: str, value: object) -> None:
    conn.write(lambda: conn.conn.root().__setitem__(key, value))


def test_each_side_sees_the_others_commits(repo):
    service, client = repo.service.connect(), repo.clients[0].connect()
    _put(service, "from-service", 1)
    _see(client, lambda: client.conn.root().get("from-service") == 1)
    # The client has seen the service's transaction itself, not only its data.
    assert repo.clients[0].db.lastTransaction() == repo.service.db.lastTransaction()

    _put(client, "from-client", 2)
    _see(service, lambda: service.conn.root().get("from-client") == 2)
    assert repo.service.db.lastTransaction() == repo.clients[0].db.lastTransaction()


def test_a_change_of_an_object_both_sides_hold_invalidates_the_other_sides_copy(repo):
    service, client = repo.service.connect(), repo.clients[0].connect()
    _put(service, "box", PersistentMapping(value="first"))
    _see(client, lambda: "box" in client.conn.root())
    assert client.conn.root()["box"]["value"] == "first"  # now in the client's cache

    service.write(lambda: service.conn.root()["box"].__setitem__("value", "second"))
    _see(client, lambda: client.conn.root()["box"]["value"] == "second")
    client.write(lambda: client.conn.root()["box"].__setitem__("value", "third"))
    _see(service, lambda: service.conn.root()["box"]["value"] == "third")


def test_the_service_and_two_clients_counting_at_once_lose_no_increment(repo):
    first = repo.service.connect()
    _put(first, "counter", Length())
    conns = [repo.service.connect(), *(c.connect() for c in repo.clients)]
    for conn in conns:
        _see(conn, lambda conn=conn: "counter" in conn.conn.root())
    errors: list[BaseException] = []

    def count(conn: Connection) -> None:
        try:
            for _ in range(60):
                conn.write(lambda: conn.conn.root()["counter"].change(1))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=count, args=(conn,)) for conn in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=40)
    assert not errors and not any(t.is_alive() for t in threads)
    _see(first, lambda: first.conn.root()["counter"]() == 180)


def _hold_the_turn(repo: Repo) -> TransactionMetaData:
    """Begin a commit of the service's directly on its storage: it holds its turn in
    ZEO's queue until finished or aborted (as a long commit of the service would)."""
    held = TransactionMetaData()
    repo.peer.tpc_begin(held)
    return held


def test_a_clients_commit_waits_for_the_services_turn_and_zeo_keeps_answering_reads(repo):
    writer, reader = repo.clients[0].connect(), repo.clients[1].connect()
    _put(writer, "data", PersistentMapping(value="before"))
    held = _hold_the_turn(repo)
    done = threading.Event()

    def commit() -> None:
        _put(writer, "late", 1)
        done.set()

    thread = threading.Thread(target=commit)
    thread.start()
    try:
        # The other client's first read of the data goes to the server and is answered.
        _see(reader, lambda: reader.conn.root().get("data", {}).get("value") == "before")
        assert not done.wait(0.3), "a client committed while the service held its turn"
    finally:
        repo.peer.tpc_abort(held)
    assert done.wait(10), "the client's commit never got its turn after the service's"
    thread.join(timeout=10)
    service = repo.service.connect()
    _see(service, lambda: service.conn.root().get("late") == 1)


def test_a_service_commit_waiting_for_its_turn_gives_up_when_the_server_stops(repo):
    held = _hold_the_turn(repo)
    service = repo.service.connect()
    failures: list[BaseException] = []

    def commit() -> None:
        try:
            service.conn.root()["never"] = 1
            service.conn.transaction_manager.commit()
        except BaseException as exc:  # noqa: BLE001 - checked below
            failures.append(exc)
            service.conn.transaction_manager.abort()

    thread = threading.Thread(target=commit)
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive(), "the second commit did not wait for the held turn"
    repo.server.closing = True  # what close() says first
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(failures) == 1 and isinstance(failures[0], StorageError)
    assert "stopping" in str(failures[0])
    repo.server.closing = False
    repo.peer.tpc_abort(held)
    transaction.abort()


def test_a_clients_commit_while_the_services_database_closes_is_stored_and_told_so(repo):
    """The service stops: its own database closes while its ZEO server still serves for
    a moment. A client's commit then told the closed database of itself, and failed in
    its last phase (``AttributeError: _instances`` from the server): stored, but the
    client was told an error (seen with four scripts at work and ``service stop``)."""
    client = repo.clients[0].connect()
    repo.service.close()
    _put(client, "after", 1)
    other = repo.clients[1].connect()
    _see(other, lambda: other.conn.root().get("after") == 1)
