"""Two ZEO clients sharing one repository: conflicts retried, counts merged, ids unique.

The server runs in this process (``ZEO.server(..., threaded=True)``), so it can
import ``ganga_like`` and run ``StatusCounts._p_resolveConflict`` and
``BTrees.Length``'s resolution itself.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
import ZEO

from ganga_like.config import Config
from ganga_like.engine.core import _split
from ganga_like.errors import RepositoryError
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.splitters import ArgSplitter
from ganga_like.model.status_index import CHUNK
from ganga_like.repository import open_repository
from ganga_like.repository.root import ROOT_KEY
from ganga_like.repository.storage import parse_zeo_uri
from ganga_like.status import Status

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def zeo_uri(tmp_path):
    address, stop = ZEO.server(path=str(tmp_path / "server.fs"), port=0, threaded=True)
    yield f"zeo://127.0.0.1:{address[1]}"
    stop()


@pytest.fixture
def clients(zeo_uri, tmp_path):
    """Two separate ZEO clients (two ClientStorages, as two processes would have)."""
    config = Config(root=str(tmp_path / "gl"), repository=zeo_uri)
    repos = [open_repository(config) for _ in range(2)]
    conns = [repo.connect() for repo in repos]
    _ = conns[0].root  # create the registries once, before the clients race
    _see(conns[1], lambda: ROOT_KEY in conns[1].conn.root())
    yield conns
    for conn, repo in zip(conns, repos, strict=True):
        conn.close()
        repo.close()


def _see(conn, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Start new transactions on ``conn`` until ``predicate()`` holds.

    ZEO delivers another client's invalidations asynchronously: a client sees a commit
    at its first transaction boundary after they arrive (about a millisecond later),
    not necessarily at the very next one.
    """
    deadline = time.monotonic() + timeout
    while True:
        conn.refresh()
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - e.g. JobNotFound before the commit is seen
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("the other client's commit never became visible")
        time.sleep(0.001)


def _run_together(*tasks: Callable[[], None]) -> None:
    """Run each task in its own thread; re-raise the first failure."""
    errors: list[BaseException] = []

    def guard(task):
        try:
            task()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a client hung"
    if errors:
        raise errors[0]


def _race(clients, change: Callable) -> Counter:
    """Each client runs ``change(conn, index)`` in a write, both from the same state (they
    meet after their first attempt's change); returns each one's attempts."""
    barrier = threading.Barrier(2)
    attempts: Counter[int] = Counter()

    def runner(index):
        conn = clients[index]

        def work():
            attempts[index] += 1
            change(conn, index)
            if attempts[index] == 1:
                barrier.wait(timeout=10)

        return lambda: conn.write(work)

    _run_together(runner(0), runner(1))
    return attempts


def test_a_bad_zeo_uri_is_refused_in_one_line():
    with pytest.raises(RepositoryError) as info:
        parse_zeo_uri("zeo://127.0.0.1")
    assert "zeo://host:port" in str(info.value)


def test_both_clients_change_one_job_and_the_conflict_is_retried_losing_nothing(clients):
    first, second = clients
    first.write(lambda: first.jobs.add(Job(name="shared", comment="start")))
    _see(second, lambda: second.jobs.get(0).comment == "start")
    barrier = threading.Barrier(2)
    attempts: Counter[str] = Counter()

    def appender(conn, fragment):
        def work():
            attempts[fragment] += 1
            job = conn.jobs.get(0)
            current = job.comment  # read inside the attempt: a retry sees the winner's value
            if attempts[fragment] == 1:
                barrier.wait(timeout=10)  # both have read the same value: a real overlap
            job.comment = current + " " + fragment

        return lambda: conn.write(work)

    _run_together(appender(first, "from-first"), appender(second, "from-second"))

    # Exactly one of them got a ConflictError inside write() and ran its work again.
    assert sorted(attempts.values()) == [1, 2]
    for conn in clients:
        _see(conn, lambda conn=conn: "from-first" in conn.jobs.get(0).comment
             and "from-second" in conn.jobs.get(0).comment)
        comment = conn.jobs.get(0).comment
        assert comment.startswith("start ")
        assert "from-first" in comment and "from-second" in comment


def test_concurrent_job_creation_from_two_clients_gives_unique_ids(clients):
    per_client = 15
    barrier = threading.Barrier(2)
    made: dict[int, list[int]] = {0: [], 1: []}
    attempts = Counter()

    def creator(index):
        conn = clients[index]

        def run():
            barrier.wait(timeout=10)
            for i in range(per_client):
                def work(i=i):  # called at once, by conn.write below
                    attempts[index] += 1
                    return conn.jobs.add(Job(name=f"c{index}-{i}"))

                made[index].append(conn.write(work))

        return run

    _run_together(creator(0), creator(1))

    every_id = made[0] + made[1]
    assert len(set(every_id)) == 2 * per_client
    assert sorted(every_id) == list(range(2 * per_client))  # none skipped: losers retried
    for conn in clients:
        _see(conn, lambda conn=conn: len(conn.jobs) == 2 * per_client)
        assert conn.jobs.ids() == list(range(2 * per_client))
        names = {conn.jobs.get(job_id).name for job_id in every_id}
        assert len(names) == 2 * per_client  # each id holds the job that took it


def _shared_master(conn, n_each: int) -> None:
    """Job 0: 2*n_each subjobs 'submitted', plus a last one kept 'submitting'.

    The one kept 'submitting' pins the master's derived status, so moving the others
    to 'running' touches only their own records and the master's StatusCounts.
    """

    def work():
        master = Job(name="shared", splitter=ArgSplitter(args=[[str(i)] for i in
                                                               range(2 * n_each + 1)]))
        conn.jobs.add(master)
        _split(master)
        for sub in master.subjobs:
            set_status(sub, "submitting")
        for sub in master.subjobs[:-1]:
            set_status(sub, "submitted")

    conn.write(work)


def test_two_clients_moving_different_subjobs_merge_counts_without_a_retry(clients):
    n_each = 40
    _shared_master(clients[0], n_each)
    _see(clients[1], lambda: len(clients[1].jobs) == 1)
    barrier = threading.Barrier(2)
    attempts = Counter()

    def mover(index):
        conn = clients[index]

        def work():
            attempts[index] += 1
            master = conn.jobs.get(0)
            for sub in master._subjobs.values(index * n_each, (index + 1) * n_each - 1):
                set_status(sub, "running", source="user")
            barrier.wait(timeout=10)  # both have changed the counts from the same state

        return lambda: conn.write(work)

    _run_together(mover(0), mover(1))

    # The StatusCounts conflict was resolved by the server: nobody had to retry.
    assert attempts == {0: 1, 1: 1}
    expected = {"running": 2 * n_each, "submitting": 1}
    for conn in clients:
        _see(conn, lambda conn=conn: conn.jobs.get(0).subjob_counts == expected)
        master = conn.jobs.get(0)
        assert master.subjob_counts == expected
        assert dict(Counter(s._status for s in master.subjobs)) == expected
        assert master.status is Status.SUBMITTING
        assert [h[1:3] for h in master.history] == [("new", "submitting")]
        # The index of subjobs by status merged too (its chunks and their counts).
        assert master.subjobs.select(status="running").ids() == list(range(2 * n_each))
        assert set(master._subjob_index.entries()) == {(s.id, s._status) for s in master.subjobs}


def test_moves_of_different_subjobs_in_one_chunk_and_across_chunks_merge_the_index(clients):
    n_each = CHUNK // 2 + 100  # client 0: chunk 0; client 1: the end of chunk 0 and chunk 1
    _shared_master(clients[0], n_each)
    _see(clients[1], lambda: len(clients[1].jobs) == 1)

    def move(conn, index):
        master = conn.jobs.get(0)
        for sub in master._subjobs.values(index * n_each, (index + 1) * n_each - 1):
            set_status(sub, "running", source="user")

    assert _race(clients, move) == {0: 1, 1: 1}  # merged: the chunks' and counts' resolution
    for conn in clients:
        _see(conn, lambda conn=conn: conn.jobs.get(0).subjob_counts.get("running") == 2 * n_each)
        master = conn.jobs.get(0)
        assert master.subjobs.select(status="running").ids() == list(range(2 * n_each))
        assert master.subjobs.select(status="submitting").ids() == [2 * n_each]
        assert set(master._subjob_index.entries()) == {(s.id, s._status) for s in master.subjobs}


def test_a_master_moved_by_the_merge_alone_makes_one_writer_retry_and_is_filed_right(clients):
    # Subjobs 0 and 1 run, 2 completed: the master runs. Each client ends one of the two:
    # neither sees the master move, the merged counts would make it completed. The counts
    # refuse that merge; the retry sees it and records the move (history, jobs index).
    def setup():
        master = Job(name="two left", splitter=ArgSplitter(args=[["0"], ["1"], ["2"]]))
        clients[0].jobs.add(master)
        _split(master)
        for sub in master.subjobs:
            for step in ("submitting", "submitted", "running"):
                set_status(sub, step)
        set_status(master.subjobs[2], "completed")

    clients[0].write(setup)
    _see(clients[1], lambda: clients[1].jobs.get(0).status is Status.RUNNING)

    def end(conn, index):
        set_status(conn.jobs.get(0).subjobs[index], "completed", source="backend")

    assert sorted(_race(clients, end).values()) == [1, 2]
    for conn in clients:
        _see(conn, lambda conn=conn: conn.jobs.get(0).status is Status.COMPLETED)
        master = conn.jobs.get(0)
        assert [h[1:3] for h in master.history].count(("running", "completed")) == 1
        assert [j.id for j in conn.jobs.select(status="completed")] == [0]
        assert conn.jobs.select(status="running") == []
        assert set(conn.jobs.index.entries()) == {(0, "completed")}


def test_concurrent_moves_that_change_the_masters_status_record_it_once(clients):
    # Both clients resubmit one subjob of a 'submitted' master at once: both would change
    # the master's derived status (and its history); one retries and sees it already done.
    _shared_master(clients[0], 1)  # subjobs 0, 1 submitted; 2 submitting

    def settle():
        set_status(clients[0].jobs.get(0).subjobs[2], "submitted")

    clients[0].write(settle)
    _see(clients[1], lambda: clients[1].jobs.get(0).status is Status.SUBMITTED)
    barrier = threading.Barrier(2)
    attempts = Counter()

    def resubmit(index):
        conn = clients[index]

        def work():
            attempts[index] += 1
            set_status(conn.jobs.get(0).subjobs[index], "submitting", source="user")
            if attempts[index] == 1:
                barrier.wait(timeout=10)

        return lambda: conn.write(work)

    _run_together(resubmit(0), resubmit(1))

    assert sorted(attempts.values()) == [1, 2]  # the master's record really conflicted
    for conn in clients:
        _see(conn, lambda conn=conn: conn.jobs.get(0).subjob_counts == {"submitting": 2, "submitted": 1})
        master = conn.jobs.get(0)
        derived = [h[1:3] for h in master.history]
        assert derived[-1] == ("submitted", "submitting")
        assert derived.count(("submitted", "submitting")) == 1


def test_a_select_in_the_write_that_registers_a_job_finds_it_without_asking_the_server(
        clients, caplog):
    conn = clients[0]
    conn.write(lambda: conn.jobs.add(Job(name="committed")))
    found: list[str] = []

    def work():
        conn.jobs.add(Job(name="new here"))  # its oid is filed, its record not stored yet
        found.extend(job.name for job in conn.jobs.select(status="new"))

    conn.write(work)
    time.sleep(0.2)  # (what the server answers arrives on ZEO's own thread)
    assert found == ["committed", "new here"] and conn.jobs.index.readable
    assert not [r for r in caplog.records if "prefetch" in r.getMessage()], caplog.text
