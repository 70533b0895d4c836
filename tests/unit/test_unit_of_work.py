"""The unit of work (``repository.transactions.write``) on a real FileStorage (issue 17,
point 6): conflicts retried with the work re-run, status changes told only after a
commit (an after-commit hook), a write inside a write through the same connection
joining it, one answer to "am I inside a write" (``writes.in_write``), "changes
pending" asked of the connection's transaction, and no private attribute of ZODB or
``transaction`` read anywhere in the package."""

from __future__ import annotations

import ast
import errno
import re
from pathlib import Path

import pytest
import transaction
from persistent.mapping import PersistentMapping
from ZODB.FileStorage import FileStorage
from ZODB.POSException import ConflictError

from ganga_like.backends.local.config import Local
from ganga_like.errors import DiskFull, EditConflict, ReadOnlyAttribute
from ganga_like.model import writes
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.repository import diskspace
from ganga_like.repository.storage import Connection as RepoConnection
from ganga_like.repository.transactions import (
    Database,
    TrackedConnection,
    has_changes,
    new_transaction_manager,
    pending,
    write,
)

PACKAGE = Path(__file__).resolve().parents[2] / "ganga_like"


@pytest.fixture
def db(tmp_path):
    database = Database(FileStorage(str(tmp_path / "unit.fs")))
    conn = database.open(transaction.TransactionManager())
    root = conn.root()
    root["box"] = PersistentMapping(count=0)
    job = Job(application=Executable(exe="/bin/echo"), backend=Local())
    job.id = 1
    root["job"] = job
    conn.transaction_manager.commit()
    conn.close()
    yield database
    database.close()


@pytest.fixture
def two(db):
    """Two connections of one database, each with its own transaction manager: the
    user's and another writer's (the monitor's, another ZEO client)."""
    mine, theirs = db.open(new_transaction_manager()), db.open(new_transaction_manager())
    yield mine, theirs
    for conn in (mine, theirs):
        conn.transaction_manager.abort()
        conn.close()


def _bump_elsewhere(conn, by: int = 10) -> None:
    conn.transaction_manager.begin()
    conn.root()["box"]["count"] += by
    conn.transaction_manager.commit()


def _count(db) -> int:
    conn = db.open(transaction.TransactionManager())
    try:
        return conn.root()["box"]["count"]
    finally:
        conn.close()


def test_the_database_opens_connections_that_track_their_changes(db, two):
    mine, _theirs = two
    assert isinstance(mine, TrackedConnection)


# --- conflicts ----------------------------------------------------------------------


def test_a_conflict_re_runs_the_work_which_reads_the_other_writers_value(db, two):
    mine, theirs = two
    seen = []

    def work() -> None:
        box = mine.root()["box"]
        seen.append(box["count"])
        if len(seen) == 1:
            _bump_elsewhere(theirs)  # another writer commits between our read and commit
        box["count"] = box["count"] + 1

    write(mine, work)
    assert seen == [0, 10]  # the retry re-read the other writer's value
    assert _count(db) == 11
    assert not pending(mine)


def test_a_conflict_on_every_attempt_is_raised_after_the_last(db, two):
    mine, theirs = two
    runs = []

    def work() -> None:
        runs.append(1)
        mine.root()["box"]["count"] += 1
        _bump_elsewhere(theirs, by=1)

    with pytest.raises(ConflictError):
        write(mine, work, attempts=3)
    assert len(runs) == 3
    assert _count(db) == 3  # only the other writer's commits
    assert not pending(mine)


def test_edits_pending_before_a_write_are_committed_with_it_or_refused_on_conflict(db, two):
    mine, theirs = two
    mine.transaction_manager.begin()
    mine.root()["box"]["note"] = "made outside any write"
    assert has_changes(mine)
    write(mine, lambda: mine.root()["box"].__setitem__("more", 1))
    assert not has_changes(mine)
    theirs.transaction_manager.begin()
    assert theirs.root()["box"]["note"] == "made outside any write"

    mine.root()["box"]["note"] = "again"
    _bump_elsewhere(theirs)  # the pending edit's record changed meanwhile
    with pytest.raises(EditConflict):
        write(mine, lambda: None)
    assert not has_changes(mine)


# --- after-commit notification ---------------------------------------------------------


def _move(conn, target: str) -> None:
    set_status(conn.root()["job"], target, note="test", now=5.0)


def test_status_changes_are_told_once_after_the_commit_that_made_them(db, two):
    mine, theirs = two
    told: list[list] = []
    runs = []

    def work() -> None:
        runs.append(1)
        _move(mine, "submitting")
        assert told == []  # nothing is told before the commit
        if len(runs) == 1:
            _bump_elsewhere(theirs)  # this attempt will not commit
            mine.root()["box"]["count"] += 1

    write(mine, work, on_commit=told.append)
    assert len(runs) == 2
    assert [[(c.fqid, c.source, c.target) for c in changes] for changes in told] == [
        [("1", "new", "submitting")]]  # the rolled-back attempt's change is not told


def test_a_write_that_fails_tells_nothing_and_leaves_nothing(db, two):
    mine, _theirs = two
    told: list = []

    def work() -> None:
        _move(mine, "submitting")
        raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError):
        write(mine, work, on_commit=told.append)
    assert told == [] and not pending(mine)
    mine.transaction_manager.begin()
    assert mine.root()["job"].status.value == "new"


class _FullDisk:
    """A resource that fails its vote as a full disk does."""

    def __init__(self, tm) -> None:
        self.transaction_manager = tm

    def sortKey(self) -> str:
        return "~full-disk"

    def abort(self, txn) -> None: ...

    def tpc_begin(self, txn) -> None: ...

    def commit(self, txn) -> None: ...

    def tpc_vote(self, txn) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def tpc_finish(self, txn) -> None: ...

    def tpc_abort(self, txn) -> None: ...


def test_a_commit_that_finds_the_disk_full_is_one_line_and_tells_nothing(db, two, tmp_path):
    mine, _theirs = two
    diskspace.remember(db, str(tmp_path / "unit.fs"), str(tmp_path))
    told: list = []

    def work() -> None:
        _move(mine, "submitting")
        mine.transaction_manager.get().join(_FullDisk(mine.transaction_manager))

    with pytest.raises(DiskFull) as info:
        write(mine, work, on_commit=told.append, note="the test's write")
    assert "\n" not in str(info.value) and "the test's write" in str(info.value)
    assert told == [] and not pending(mine)
    mine.transaction_manager.begin()
    assert mine.root()["job"].status.value == "new"


def test_what_on_commit_raises_reaches_the_caller_after_the_commit(db, two):
    mine, _theirs = two

    def failing(changes) -> None:
        raise ValueError("the queue log broke")

    with pytest.raises(ValueError, match="queue log"):
        write(mine, lambda: _move(mine, "submitting"), on_commit=failing)
    mine.transaction_manager.begin()
    assert mine.root()["job"].status.value == "submitting"  # committed all the same


# --- nested writes --------------------------------------------------------------------


def test_a_write_inside_a_write_through_the_same_connection_joins_it(db, two):
    mine, theirs = two
    told: list[list] = []
    runs = []

    def inner() -> str:
        _move(mine, "submitting")
        mine.root()["box"]["inner"] = len(runs)
        return "inner's result"

    def outer() -> None:
        runs.append(1)
        last = db.lastTransaction()
        mine.root()["box"]["count"] += 1
        assert write(mine, inner, on_commit=told.append, note="inner") == "inner's result"
        assert db.lastTransaction() == last  # the inner write committed nothing
        assert writes.in_write(mine.transaction_manager)  # still the outer's write
        if len(runs) == 1:
            _bump_elsewhere(theirs)  # the outer is retried, the inner with it

    write(mine, outer, on_commit=told.append, note="outer")
    assert len(runs) == 2
    assert [[c.target for c in changes] for changes in told] == [["submitting"]]  # once
    reader = db.open(transaction.TransactionManager())
    try:
        assert reader.root()["box"]["inner"] == 2 and reader.root()["box"]["count"] == 11
    finally:
        reader.close()
    last_record = next(iter(db.storage.iterator(db.lastTransaction())))
    assert last_record.description == b"outer\ninner"  # one transaction


def test_a_write_inside_a_write_through_another_connection_commits_on_its_own(db, two):
    mine, theirs = two

    def inner() -> None:
        theirs.root()["box"]["theirs"] = True

    def outer() -> None:
        mine.root()["box"]["mine"] = True
        write(theirs, inner)
        assert writes.in_write(theirs.transaction_manager) is False
        assert writes.in_write(mine.transaction_manager)
        reader = db.open(transaction.TransactionManager())
        try:
            assert reader.root()["box"].get("theirs") is True  # committed already
            assert "mine" not in reader.root()["box"]
        finally:
            reader.close()

    with pytest.raises(ConflictError):  # both changed the box: the inner committed first
        write(mine, outer, attempts=1)


# --- "am I inside a write": one answer ------------------------------------------------


def test_one_answer_to_am_i_inside_a_write(db, two):
    mine, theirs = two
    assert not writes.in_write() and writes.current_write() is None
    answers = []

    def work() -> None:
        answers.append((writes.in_write(), writes.in_write(mine.transaction_manager),
                        writes.in_write(theirs.transaction_manager)))
        job = mine.root()["job"]
        job.reason = "set by ganga_like inside its write"  # refused outside a write
        _move(mine, "submitting")
        answers.append([c.target for c in writes.current_write().changes])

    write(mine, work)
    assert answers == [(True, True, False), ["submitting"]]
    assert not writes.in_write() and writes.current_write() is None
    with pytest.raises(ReadOnlyAttribute):
        mine.root()["job"].reason = "a user's assignment"
    assert not has_changes(mine)

    def failing() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        write(mine, failing)
    assert not writes.in_write()  # left behind by no failure


def test_a_status_change_is_told_to_the_innermost_write_only():
    job = Job(application=Executable(exe="/bin/echo"), backend=Local())  # not stored
    job.id = 7
    with writes.writing() as outer:
        with writes.writing() as inner:
            set_status(job, "submitting", now=1.0)
        set_status(job, "submitted", now=2.0)
    assert [c.target for c in inner.changes] == ["submitting"]
    assert [c.target for c in outer.changes] == ["submitted"]
    set_status(job, "running", now=3.0)  # in no write: told to no one, and no error
    assert job.status.value == "running" and writes.current_write() is None


# --- pending changes and refresh --------------------------------------------------------


def test_pending_is_asked_of_the_transaction_and_refresh_keeps_pending_edits(db, two):
    mine, theirs = two
    connection = RepoConnection(repository=None, conn=mine)  # type: ignore[arg-type]
    box = mine.root()["box"]
    assert not has_changes(mine) and not pending(mine)

    _bump_elsewhere(theirs)
    connection.refresh()  # clean: a new transaction, which sees the other commit
    assert box["count"] == 10

    box["count"] = 99  # an edit made outside any write
    assert has_changes(mine) and pending(mine)
    _bump_elsewhere(theirs)
    connection.refresh()  # not dropped by a refresh
    assert box["count"] == 99 and has_changes(mine)
    mine.transaction_manager.abort()
    assert not has_changes(mine)
    connection.refresh()
    assert box["count"] == 20

    def work() -> None:
        assert pending(mine) and not has_changes(mine)  # a write under way is pending
        connection.refresh()  # so a refresh inside it starts no new transaction
        box["count"] += 1

    write(mine, work)
    assert _count(db) == 21


def test_a_plain_zodb_connection_is_taken_as_clean(tmp_path):
    from ZODB import DB

    plain = DB(FileStorage(str(tmp_path / "plain.fs")))
    conn = plain.open(transaction.TransactionManager())
    try:
        conn.root()["x"] = 1
        assert not isinstance(conn, TrackedConnection) and not has_changes(conn)
        write(conn, lambda: conn.root().__setitem__("y", 2))
        assert conn.root()["y"] == 2
    finally:
        conn.transaction_manager.abort()
        conn.close()
        plain.close()


# --- no private attribute of ZODB or transaction --------------------------------------------


# Private attributes of ZODB's Connection and DB and of transaction's Transaction and
# TransactionManager that a unit of work might be tempted to read.
PRIVATE = re.compile(r"\.(_registered_objects|_needs_to_join|_resources|_added|_creating|_txn"
                     r"|_synchs|_retryable|_after_commit|_voted|_cache|_storage|_data|_manager)\b")


def test_the_package_reads_no_private_attribute_of_zodb_or_transaction():
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in PACKAGE.rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if PRIVATE.search(line)]
    assert found == []


def _unit_of_work_code():
    for module in ("repository/transactions.py", "model/writes.py", "model/binding.py",
                   "store_session.py"):
        yield module, ast.parse((PACKAGE / module).read_text())
    storage = ast.parse((PACKAGE / "repository/storage.py").read_text())
    yield "repository/storage.py: Connection", next(
        node for node in storage.body if isinstance(node, ast.ClassDef) and node.name == "Connection")


@pytest.mark.parametrize(("where", "tree"), list(_unit_of_work_code()),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_the_unit_of_work_reads_only_public_attributes(where, tree):
    """In the unit of work's code, an attribute with a leading underscore is read only on
    ``self`` (its own) or is persistent's public ``_p_`` API."""
    private = [
        f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_")
        and not node.attr.startswith("__") and not node.attr.startswith("_p_")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "_current"))
    ]
    assert private == [], where
