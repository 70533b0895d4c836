"""The status indexes (``model.status_index``) never disagree with the statuses.

A Hypothesis state machine registers plain jobs and masters, moves (sub)jobs along
random legal edges through ``set_status``, resubmits a master's failed subjobs,
removes jobs as ``remove()`` does and copies them, each step in its own transaction
of an in-memory database; after every step both indexes equal a scan of the
statuses, and ``select(status=...)`` (which reads the index) equals the scan
``select_jobs`` does. Deterministic tests cover what the machine's sizes do not reach
(ids past a chunk), the chunks' conflict resolution, and select's semantics.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from ZODB.MappingStorage import MappingStorage
from ZODB.POSException import ConflictError

from ganga_like.config import Config
from ganga_like.engine.core import _split
from ganga_like.errors import UnknownAttribute, UnknownStatus
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.slices import select_jobs
from ganga_like.model.splitters import ArgSplitter
from ganga_like.model.status_index import CHUNK, CODE_OF, STATUS_CODES, ChunkCounts, StatusChunk
from ganga_like.repository.storage import Connection, Repository
from ganga_like.repository.transactions import Database
from ganga_like.status import ACTIVE, FROZEN, Status, allowed_targets
from tests.index_helpers import big_master


def memory_connection(tmp_path) -> tuple[Repository, Connection]:
    repo = Repository(Database(MappingStorage()), Config(root=str(tmp_path)), False, "memory")
    conn = repo.connect()
    _ = conn.root  # the registries and the jobs index, made with the repository
    return repo, conn


def scan(jobs) -> set[tuple[int, str]]:
    return {(job.id, job._current_status().value) for job in jobs}


def check_against_a_scan(conn: Connection) -> None:
    """Both indexes equal the statuses; select by index equals select by scan."""
    jobs = conn.jobs
    index = jobs.index
    assert index is not None and index.complete
    assert set(index.entries()) == scan(jobs)
    assert sum(sum(per.values()) for per in index.where.counts.values()) == len(jobs)
    for status in {s for _, s in scan(jobs)} | {"failed"}:
        assert jobs.select(status=status) == select_jobs(iter(jobs), status=status)
    for master in jobs:
        if master._subjobs is None:
            continue
        assert set(master._subjob_index.entries()) == scan(master._subjobs.values())
        for status in {"new", "failed", "running", "completed"}:
            assert list(master.subjobs.select(status=status)) == select_jobs(
                master._subjobs.values(), status=status)


def remove_like_remove(conn: Connection, job: Job) -> None:
    """What ``engine.operations.remove.delete`` does to a job's status and registry."""
    if job.status in FROZEN:
        set_status(job, "completed" if job.status is Status.COMPLETED_FROZEN else "failed")
    if job.status in ACTIVE:
        set_status(job, "unknown")
    set_status(job, "removed")
    conn.jobs.discard(job)


class IndexMachine(RuleBasedStateMachine):
    @initialize()
    def open(self) -> None:
        import tempfile

        self.tmp = tempfile.mkdtemp(prefix="index-machine-")
        self.repo, self.conn = memory_connection(self.tmp)

    def teardown(self) -> None:
        import shutil

        self.conn.close()
        self.repo.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _write(self, work) -> None:
        self.conn.write(work)

    def _some_job(self, data: st.DataObject) -> Job | None:
        ids = self.conn.jobs.ids()
        return self.conn.jobs.get(data.draw(st.sampled_from(ids), label="job")) if ids else None

    @rule(name=st.sampled_from(["a", "b"]))
    def register_a_plain_job(self, name: str) -> None:
        self._write(lambda: self.conn.jobs.add(Job(name=name)))

    @rule(n=st.integers(1, 12))
    def register_and_split_a_master(self, n: int) -> None:
        def work() -> None:
            master = Job(name="m", splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
            self.conn.jobs.add(master)
            _split(master)

        self._write(work)

    @rule(data=st.data())
    def move_a_leaf(self, data: st.DataObject) -> None:
        top = self._some_job(data)
        if top is None:
            return
        leaf = top
        if top._subjobs is not None:
            leaf = top._subjobs[data.draw(st.integers(0, len(top.subjobs) - 1), label="subjob")]
        if leaf.master is None and leaf._status in ("unknown", "removed"):
            return  # (a top job's removal is the remove rule's)
        targets = sorted(t.value for t in allowed_targets(leaf._status) - {Status.REMOVED})
        if targets:
            target = data.draw(st.sampled_from(targets), label="target")
            self._write(lambda: set_status(leaf, target))

    @rule(data=st.data())
    def resubmit_a_masters_failed_subjobs(self, data: st.DataObject) -> None:
        top = self._some_job(data)
        if top is None or top._subjobs is None:
            return

        def work() -> None:
            for sub in top.subjobs.select(status="failed"):
                set_status(sub, "submitting")

        self._write(work)

    @rule(data=st.data())
    def remove_a_job(self, data: st.DataObject) -> None:
        top = self._some_job(data)
        if top is not None:
            self._write(lambda: remove_like_remove(self.conn, top))

    @rule(data=st.data())
    def copy_a_job(self, data: st.DataObject) -> None:
        top = self._some_job(data)
        if top is not None:
            self._write(lambda: self.conn.jobs.add(Job(top)))

    @invariant()
    def indexes_equal_a_scan(self) -> None:
        if hasattr(self, "conn"):
            check_against_a_scan(self.conn)


IndexMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestIndexMachine = IndexMachine.TestCase


@pytest.fixture
def conn(tmp_path):
    repo, connection = memory_connection(tmp_path)
    yield connection
    connection.close()
    repo.close()


def test_every_status_has_a_code_and_codes_are_only_appended():
    assert STATUS_CODES[0] == "" and len(set(STATUS_CODES)) == len(STATUS_CODES)
    assert {s.value for s in Status} <= set(STATUS_CODES)
    # Stored in every chunk: these never move (a new status goes at the end).
    assert STATUS_CODES[:8] == ("", "new", "submitting", "submitted", "running", "completing",
                                "completed", "failed")


def test_ids_past_a_chunk_and_select_with_ranges_and_other_criteria(conn):
    n = CHUNK * 2 + 100  # three chunks, failures in each
    failed = list(range(0, n, 97))
    master = big_master(conn, n, failed)
    assert master.subjobs.select(status="failed").ids() == failed
    assert master.subjobs.select(status=["failed", "new"]).ids() == list(range(n))
    low, high = CHUNK - 3, 2 * CHUNK + 7
    assert master.subjobs.select(low, high, status="failed").ids() == [
        i for i in failed if low <= i <= high]
    assert master.subjobs.select(status="failed", id=[97, 98, 194]).ids() == [97, 194]
    assert master.subjobs.select(status="running").ids() == []
    assert master._subjob_index.where.chunks(CODE_OF["failed"]) == [0, 1, 2]
    check_against_a_scan(conn)


def test_jobs_select_by_status_name_and_backend_equals_a_scan(conn):
    def work() -> None:
        for i in range(30):
            job = Job(name=f"{'sim' if i % 2 else 'ana'}-{i}")
            conn.jobs.add(job)
            if i % 3 == 0:
                set_status(job, "submitting")
                set_status(job, "failed")

    conn.write(work)
    jobs = conn.jobs
    for criteria in ({"status": "failed"}, {"status": "failed", "name": "sim*"},
                     {"status": ["failed", "new"], "name": "ana*", "minid": 5, "maxid": 20},
                     {"status": Status.FAILED, "application": "Executable"},
                     {"status": "failed", "backend": "Local"}, {"name": "sim-1*"}):
        by_scan = select_jobs(jobs._tree.values(criteria.get("minid"), criteria.get("maxid")),
                              **{k: v for k, v in criteria.items() if k not in ("minid", "maxid")})
        assert jobs.select(**criteria) == by_scan, criteria


def test_an_unknown_status_or_criterion_is_one_line_with_the_choices(conn):
    conn.write(lambda: conn.jobs.add(Job()))
    with pytest.raises(UnknownStatus) as info:
        conn.jobs.select(status="faild")
    line = str(info.value)
    assert "\n" not in line and "faild" in line and "failed" in line and "completed" in line
    with pytest.raises(UnknownStatus):
        conn.jobs.select(status=["failed", 3])
    with pytest.raises(UnknownAttribute) as wrong:
        conn.jobs.select(status="failed", colour="red")
    assert "colour" in str(wrong.value) and "minid" in str(wrong.value)


def test_a_disagreeing_index_is_answered_by_a_scan_and_marked_for_rebuilding(conn):
    def work() -> None:
        for _ in range(3):
            conn.jobs.add(Job())
        set_status(conn.jobs.get(1), "submitting")

    conn.write(work)
    index = conn.jobs.index
    conn.write(lambda: index.move(2, "submitting"))  # wrong on purpose: job 2 is new
    assert [j.id for j in conn.jobs.select(status="submitting")] == [1]
    assert index.complete is False  # selects scan until the engine's next start rebuilds it
    assert [j.id for j in conn.jobs.select(status="submitting")] == [1]


def test_chunks_merge_changes_of_different_ids_and_refuse_the_same_one():
    base = bytes(CHUNK)
    ours = bytearray(base)
    ours[3] = 7
    theirs = bytearray(base)
    theirs[900] = 4
    merged = StatusChunk()._p_resolveConflict({"slots": base}, {"slots": bytes(theirs)},
                                              {"slots": bytes(ours)})
    assert merged["slots"][3] == 7 and merged["slots"][900] == 4
    assert Counter(merged["slots"]) == Counter({0: CHUNK - 2, 7: 1, 4: 1})
    other = bytearray(base)
    other[3] = 6
    with pytest.raises(ConflictError):
        StatusChunk()._p_resolveConflict({"slots": base}, {"slots": bytes(other)},
                                         {"slots": bytes(ours)})


def test_chunk_counts_merge_by_adding_differences():
    old = {"counts": {1: {0: 10}}}
    ours = {"counts": {1: {0: 8}, 4: {0: 2}}}
    theirs = {"counts": {1: {0: 9}, 7: {0: 1}}}
    merged = ChunkCounts()._p_resolveConflict(old, theirs, ours)
    assert merged["counts"] == {1: {0: 7}, 4: {0: 2}, 7: {0: 1}}
    with pytest.raises(ConflictError):
        # Both moved the one id out of status 1 (theirs dropped it, ours filed it as 4).
        ChunkCounts()._p_resolveConflict({"counts": {1: {0: 1}}}, {"counts": {}},
                                         {"counts": {4: {0: 1}}})


def test_a_select_by_status_loads_records_in_proportion_to_the_matches(conn):
    """Counted in records loaded from a cold cache (``getTransferCounts``), not in time."""
    n, failed = 3 * CHUNK, range(5, 3 * CHUNK, 300)  # 11 failures, in every chunk
    big_master(conn, n, failed, plain=True)
    zodb = conn.conn

    def loads(read) -> tuple[int, int]:
        conn.refresh()
        zodb.cacheMinimize()
        zodb.getTransferCounts(clear=True)
        found = len(read())
        return found, zodb.getTransferCounts()[0]

    top = conn.jobs.get(0)  # (the master, a ghost again after each cacheMinimize)
    # Each match: itself and the bucket of the registry's tree holding it; then a few
    # records whatever N: the counts, the index, the chunks holding matches (31 and 33
    # when written).
    for read in (lambda: top.subjobs.select(status="failed"),
                 lambda: conn.jobs.select(status="failed")):
        found, loaded = loads(read)
        assert found in (len(failed), len(failed) + 1)  # (jobs: the master failed too)
        assert loaded < 2 * found + 20, loaded
    assert loads(lambda: select_jobs(top._subjobs.values(), status="failed"))[1] > n  # a scan


@pytest.mark.parametrize("old, ours, theirs, refused", [
    # Two writers each end one of the last two running subjobs: neither saw the master
    # move, the merge would make it completed: refused (the later writer retries).
    ({"running": 2, "completed": 1}, {"running": 1, "completed": 2},
     {"running": 1, "completed": 2}, True),
    # Both leave the master running (three were running): merged, as always.
    ({"running": 3, "completed": 1}, {"running": 2, "completed": 2},
     {"running": 2, "completed": 2}, False),
    # One ended the running subjob and recorded the master completed; the other failed a
    # completed one (the master still ran, as it saw it): the merge gives failed, which
    # nobody recorded: refused.
    ({"running": 1, "completed": 2}, {"running": 1, "completed": 1, "failed": 1},
     {"completed": 3}, True),
])
def test_status_counts_refuse_a_merge_that_moves_the_master_unrecorded(old, ours, theirs, refused):
    from ganga_like.model.counts import StatusCounts

    resolve = StatusCounts()._p_resolveConflict
    if refused:
        with pytest.raises(ConflictError):
            resolve({"counts": old}, {"counts": theirs}, {"counts": ours})
    else:
        assert resolve({"counts": old}, {"counts": theirs}, {"counts": ours})["counts"] == {
            "running": 1, "completed": 3}


def test_show_reads_only_the_subjob_rows_it_shows(conn):
    from ganga_like.cli.render import subjobs_section
    from ganga_like.model.records import subjobs_of

    n = 2 * CHUNK
    failed = list(range(3, n, 40))
    master = big_master(conn, n, failed)
    shown, total = subjobs_of(master, ["failed"], 5)
    assert [s.id for s in shown] == failed[:5] and total == len(failed)
    assert [s.id for s in subjobs_of(master, ["failed", "new"], None)[0]] == list(range(n))
    shown, total = subjobs_of(master, None, 20)
    assert [s.id for s in shown] == list(range(20)) and total == n
    lines = subjobs_section(master, ["failed"], 5)
    assert lines[0] == f"subjobs with status failed (the first 5 of {len(failed)}):"
    conn.conn.cacheMinimize()
    conn.conn.getTransferCounts(clear=True)
    subjobs_section(conn.jobs.get(0), ["failed"], 5)
    assert conn.conn.getTransferCounts()[0] < 30  # not the 2,048 subjobs


def test_ids_with_a_limit_read_the_chunks_the_counts_say_hold_that_many(conn):
    n = 3 * CHUNK
    failed = [5, 6, 7, CHUNK + 1, CHUNK + 2, 2 * CHUNK + 9]
    big_master(conn, n, failed)
    zodb = conn.conn

    def chunks_read(**query) -> tuple[list[int], int]:
        conn.refresh()
        zodb.cacheMinimize()
        index = conn.jobs.get(0)._subjob_index
        index.where._p_activate()  # (the parts: read whatever the query)
        index.chunks._p_activate()
        zodb.getTransferCounts(clear=True)
        found = index.ids(["failed"], **query)
        return found, zodb.getTransferCounts()[0]

    assert chunks_read(limit=3) == ([5, 6, 7], 1)
    assert chunks_read(limit=4) == ([5, 6, 7, CHUNK + 1], 2)
    # The first chunk's three are below minid: the counts promised more than it gave,
    # so the next chunk is read too.
    assert chunks_read(minid=8, limit=2) == ([CHUNK + 1, CHUNK + 2], 2)
    assert chunks_read(limit=2, newest_first=True) == ([2 * CHUNK + 9, CHUNK + 2], 2)
    assert chunks_read() == (failed, 3)
