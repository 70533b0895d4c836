"""A new object whose first commit failed is stored whole by the retry.

A real FileStorage behind a real ZEO server (as the service serves its database):

* two connections, the second commits between the first's reads and its vote, which
  then conflicts. ZODB leaves the object it was asked to ``add`` an empty ghost with no
  connection; ``new_objects.Snapshot`` gives it its state back for the next attempt;
* the server stops while a commit stores its objects (the service stopped or killed
  mid-commit), and starts again on the same file. ZODB leaves the object whose store
  failed, and the one its pickle had just given an oid, owned by the connection under
  oids no commit stored, which the new server hands out again; the snapshot disowns
  them so that the retry stores them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import pytest
import transaction
import ZEO
from persistent import Persistent
from persistent.mapping import PersistentMapping
from ZEO.Exceptions import ClientDisconnected
from ZODB.POSException import ConflictError, POSKeyError

from ganga_like.model import new_objects


class Thing(Persistent):
    pass


@pytest.fixture
def two_connections(tmp_path):
    address, stop = ZEO.server(path=os.path.join(tmp_path, "data.fs"))
    db = ZEO.DB(address)
    managers = transaction.TransactionManager(), transaction.TransactionManager()
    connections = [db.open(manager) for manager in managers]
    with managers[0]:
        connections[0].root()["counter"] = PersistentMapping(n=0)
    try:
        yield list(zip(connections, managers, strict=True))
    finally:
        for connection in connections:
            connection.close()
        db.close()
        stop()


def _conflicting_attempt(first, second, thing):
    """Store ``thing`` through ``first`` while ``second`` commits the same counter first."""
    (conn, manager), (other, other_manager) = first, second
    manager.begin()
    other_manager.begin()
    other.root()["counter"]["n"] += 1
    other_manager.commit()
    conn.root()["counter"]["n"] += 1
    conn.root()["thing"] = thing
    conn.add(thing)
    with pytest.raises(ConflictError):
        manager.commit()
    manager.abort()


def test_zodb_leaves_an_added_object_empty_after_a_conflict_at_the_vote(two_connections):
    thing = Thing()
    thing.name, thing.part = "whole", Thing()
    _conflicting_attempt(*two_connections, thing)
    assert thing._p_jar is None and thing._p_changed is None  # a ghost that nothing can load
    assert "name" not in thing.__dict__


def test_the_snapshot_gives_it_back_and_the_retry_stores_it_whole(two_connections):
    (conn, manager), (other, other_manager) = two_connections
    thing = Thing()
    thing.name, thing.part = "whole", Thing()
    thing.part.label = "inner"
    snapshot = new_objects.Snapshot(thing)
    _conflicting_attempt((conn, manager), (other, other_manager), thing)
    snapshot.restore()
    assert thing._p_changed is False and thing.name == "whole" and thing.part.label == "inner"
    manager.begin()
    conn.root()["counter"]["n"] += 1
    conn.root()["thing"] = thing
    conn.add(thing)
    manager.commit()
    other_manager.begin()
    stored = other.root()["thing"]
    assert (stored.name, stored.part.label) == ("whole", "inner")


def test_a_snapshot_leaves_alone_what_is_stored_and_what_an_attempt_changed(two_connections):
    (conn, manager), _ = two_connections
    stored = Thing()
    stored.name = "stored"
    with manager:
        conn.root()["stored"] = stored
    thing = Thing()
    thing.name, thing.link = "new", stored
    snapshot = new_objects.Snapshot(thing)
    thing.name = "changed by the attempt"
    snapshot.restore()  # not a ghost: nothing to give back
    assert thing.name == "changed by the attempt"
    assert snapshot.objects == [thing]  # the stored one is not taken


class StopsTheServerWhenStored(Persistent):
    """Its pickle is made while the commit stores: the moment a server stop cuts it off."""

    stop_server = None  # set by the test; called once

    def __getstate__(self):
        stop, type(self).stop_server = type(self).stop_server, None
        if stop is not None:
            stop()
        return super().__getstate__()


@pytest.fixture
def server_that_restarts(tmp_path):
    """A ZEO client of a ZEO server process on a unix socket, which the test SIGKILLs
    (``stop_server``: the service killed) and starts again on the same file and socket
    (``start_again``: the next service serves the same ``jobs.fs``)."""
    path, socket = str(tmp_path / "data.fs"), str(tmp_path / "zeo.sock")
    servers: list[subprocess.Popen] = []

    def serve():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket)  # a killed server leaves it
        servers.append(subprocess.Popen([sys.executable, "-m", "ZEO.runzeo", "-a", socket,
                                         "-f", path], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL))
        _until(lambda: os.path.exists(socket), "the server never listened")

    serve()
    # ZEO's abort of the cut-off commit waits this long for a server before it gives up
    # (the server is started again only after it).
    db = ZEO.DB(socket, wait_timeout=1)

    def stop_server():
        server = servers.pop()
        server.kill()
        server.wait()
        _until(lambda: not db.storage.is_connected(), "the client never saw its server go")

    def start_again():
        serve()
        _until(db.storage.is_connected, "the client never reconnected")

    try:
        yield db, stop_server, start_again
    finally:
        StopsTheServerWhenStored.stop_server = None
        db.close()
        for server in servers:
            server.kill()
            server.wait()


def _until(done, what, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _cut_off_attempt(db, stop_server, start_again, manager, conn, job):
    """Store ``job`` (a Thing -> a StopsTheServerWhenStored -> a Thing) in a commit that
    the server's stop cuts off while it stores; then the server is back."""
    StopsTheServerWhenStored.stop_server = stop_server
    manager.begin()
    conn.root()["job"] = job
    with pytest.raises(ClientDisconnected):
        manager.commit()
    manager.abort()
    start_again()


def _a_job():
    job = Thing()
    job.name = "job"
    job.application = StopsTheServerWhenStored()
    job.application.exe = "/bin/true"
    job.application.options = Thing()
    job.application.options.label = "inner"
    return job


def _read_back(db):
    manager = transaction.TransactionManager()
    conn = db.open(manager)
    try:
        stored = conn.root()["job"]
        return stored.name, stored.application.exe, stored.application.options.label
    finally:
        manager.abort()
        conn.close()


def test_zodb_leaves_objects_a_cut_off_commit_gave_an_oid_owned_and_the_retry_loses_them(
        server_that_restarts):
    db, stop_server, start_again = server_that_restarts
    manager = transaction.TransactionManager()
    conn = db.open(manager)
    job = _a_job()
    _cut_off_attempt(db, stop_server, start_again, manager, conn, job)
    for left in (job.application, job.application.options):
        assert left._p_jar is conn and left._p_oid is not None  # no commit stored them
    with manager:
        conn.root()["job"] = job  # the retry, without the snapshot
    with pytest.raises(POSKeyError):
        _read_back(db)


def test_the_snapshot_disowns_them_and_the_retry_stores_the_job_whole(server_that_restarts):
    db, stop_server, start_again = server_that_restarts
    manager = transaction.TransactionManager()
    conn = db.open(manager)
    job = _a_job()
    snapshot = new_objects.Snapshot(job)
    assert len(snapshot.objects) == 3
    _cut_off_attempt(db, stop_server, start_again, manager, conn, job)
    snapshot.restore()
    assert all(obj._p_jar is None and obj._p_oid is None for obj in snapshot.objects)
    with manager:
        conn.root()["job"] = job
        # The server started again hands out the oids the cut-off commit had taken:
        # new objects of the same transaction take them, and nothing collides.
        conn.root()["more"] = [Thing() for _ in range(20)]
    assert _read_back(db) == ("job", "/bin/true", "inner")
