"""A refused assignment leaves the connection exactly as it was (issue 16, point 6).

``persistent`` marks an object changed, registering it with its connection's
transaction, *before* it calls a descriptor's setter; a setter that then refuses
(``j.status = 'completed'``, a backend field of a submitted job, a bad value) used to
leave the unchanged job registered: the user's reads stopped seeing other writers'
commits and the next write committed a stale copy (EditConflict). Here, on a real
FileStorage with a second connection playing the service, every refusal leaves no
registered or changed object, a commit writes nothing, and the other connection's
change is seen at the next transaction."""

from __future__ import annotations

import os

import pytest
import transaction
from persistent import Persistent
from ZODB.FileStorage import FileStorage

from ganga_like.backends.local.config import Local
from ganga_like.engine.core import _split
from ganga_like.errors import GangaLikeError
from ganga_like.model.application import Executable
from ganga_like.model.datasets import GangaDataset
from ganga_like.model.files import LocalFile
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter
from ganga_like.repository.transactions import Database, has_changes


def _stored(tmp_path):
    """A FileStorage holding a new job, a running job and a split master, and two
    connections (each with its own transaction manager): the user's and another writer's."""
    path = str(tmp_path / "jobs.fs")
    db = Database(FileStorage(path))
    setup = transaction.TransactionManager()
    conn = db.open(setup)
    new = Job(application=Executable(exe="/bin/echo", args=["a"]), backend=Local(),
              outputfiles=[LocalFile("a.txt")],
              inputdata=GangaDataset(files=[LocalFile("in.txt")]))
    running = Job(application=Executable(exe="/bin/sleep", args=["9"]), backend=Local(),
                  inputdata=GangaDataset(files=[LocalFile("in.txt")]))
    Persistent.__setattr__(running, "_status", "running")
    master = Job(application=Executable(exe="/bin/echo"), backend=Local(),
                 splitter=ArgSplitter(args=[["0"], ["1"]]))
    master.id = 3
    _split(master)
    for sub in master._subjobs.values():
        Persistent.__setattr__(sub, "_status", "running")
    conn.root()["jobs"] = {"new": new, "running": running, "master": master}
    setup.commit()
    conn.close()
    return db, path


def _refusals(jobs: dict) -> list:
    new, running, master = jobs["new"], jobs["running"], jobs["master"]
    sub = master.subjobs[0]
    return [
        (new, "status", "completed"), (running, "status", "failed"), (sub, "status", "completed"),
        (master, "status", "failed"),
        (new, "fqid", "3"), (new, "inputdir", "/x"), (new, "effective_application", None),
        (new, "reason", "x"), (running, "exit_code", 0), (running, "history", ()),
        (running, "handle", None), (new, "id", 9), (sub, "backend_detail", "Done"),
        (new, "submit", None),
        (running.backend, "concurrency", 2), (running.application, "args", ["x"]),
        (running, "application", Executable()), (running, "name", "two\nlines"),
        (new.backend, "concurrency", "many"), (new.backend, "batchsize", "many"),
        (new.backend, "copy", None), (new.backend, "id", 1), (new, "mode", "loose"),
        (new, "outputfiles", [new.outputfiles[0], 3]),  # the stored first item is its own
        (new.inputdata, "files", "in.txt"), (running.inputdata.files[0], "namePattern", "b"),
        (sub.backend, "concurrency", 1), (sub.application, "args", ["y"]), (sub.backend, "id", 7),
        (master.backend, "concurrency", 1), (master, "splitter", None),
        (new.time, "new", 1), (new.info, "uuid", "u"),
    ]


def test_every_refused_assignment_leaves_the_connection_clean(tmp_path):
    db, path = _stored(tmp_path)
    mine, theirs = transaction.TransactionManager(), transaction.TransactionManager()
    conn, other = db.open(mine), db.open(theirs)
    try:
        jobs = conn.root()["jobs"]
        refusals = _refusals(jobs)
        # The other writer (the service) changes the running job meanwhile.
        Persistent.__setattr__(other.root()["jobs"]["running"], "backend_detail", "Running on node7")
        theirs.commit()
        size, last = os.path.getsize(path), db.lastTransaction()
        for obj, name, value in refusals:
            with pytest.raises(GangaLikeError) as info:
                setattr(obj, name, value)
            assert "\n" not in str(info.value), (name, str(info.value))
            # ZODB's own list (read here only, as the ground truth) and the public answer.
            assert not conn._registered_objects, (type(obj).__name__, name)
            assert not has_changes(conn), (type(obj).__name__, name)
            assert not getattr(obj, "_p_changed", False), (type(obj).__name__, name)
        mine.commit()  # nothing to write, nothing to conflict on
        assert (os.path.getsize(path), db.lastTransaction()) == (size, last)
        mine.begin()  # the next transaction sees the other writer's commit
        assert jobs["running"].backend_detail == "Running on node7"
        # An accepted edit still registers and commits (the check above can see one).
        jobs["new"].backend.concurrency = 2
        assert conn._registered_objects and has_changes(conn)
        mine.commit()
        assert db.lastTransaction() > last
    finally:
        mine.abort()
        theirs.abort()
        conn.close()
        other.close()
        db.close()


def test_a_refused_edit_inside_a_write_does_not_doom_it(tmp_path):
    """A refusal inside a write transaction (a script's own write) leaves nothing in it
    either: the write commits what it meant to."""
    from ganga_like.repository.transactions import write

    db, _path = _stored(tmp_path)
    manager = transaction.TransactionManager()
    conn = db.open(manager)
    try:
        jobs = conn.root()["jobs"]

        def work() -> None:
            with pytest.raises(GangaLikeError):
                jobs["running"].status = "completed"
            with pytest.raises(GangaLikeError):
                jobs["running"].backend.concurrency = 3
            assert not conn._registered_objects and not has_changes(conn)
            jobs["new"].comment = "edited"

        write(conn, work)
        assert [o._p_oid for o in conn._registered_objects] == [] and not has_changes(conn)
        assert jobs["new"].comment == "edited" and jobs["running"].backend.concurrency is None
    finally:
        manager.abort()
        conn.close()
        db.close()
