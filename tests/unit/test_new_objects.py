"""A new object whose first commit failed at the vote is stored whole by the retry.

A real FileStorage behind a real ZEO server (as the service serves its database): two
connections, the second commits between the first's reads and its vote, which then
conflicts. ZODB leaves the object it was asked to ``add`` an empty ghost with no
connection; ``new_objects.Snapshot`` gives it its state back for the next attempt.
"""

from __future__ import annotations

import os

import pytest
import transaction
import ZEO
from persistent import Persistent
from persistent.mapping import PersistentMapping
from ZODB.POSException import ConflictError

from ganga_like.repository import new_objects


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
