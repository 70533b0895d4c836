"""Selects by status read each match by the oid its index keeps (``model/index_fetch``),
on a real FileStorage: the same answer as a scan through removals, resubmissions,
``force_status`` and a pack; a wrong or missing record is found and the index marked
for rebuilding (an oid chunk, a split's runs, a sealed range); two writers filing oids
in one chunk both win; a full range of jobs is sealed into one record; an index of the
older layout is rebuilt at the engine's start."""

from __future__ import annotations

import pytest
from BTrees.IOBTree import IOBTree

from ganga_like.config import Config
from ganga_like.engine.core import Engine
from ganga_like.engine.operations.forcing import force_status
from ganga_like.engine.operations.remove import remove
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.sealed_oids import SealedOids
from ganga_like.model.slices import select_jobs
from ganga_like.model.status_index import (
    CHUNK,
    CODE_OF,
    JOBS_INDEX_KEY,
    LAYOUT,
    OID_CHUNK,
    SEALED,
    ChunkCounts,
    StatusChunk,
    StatusIndex,
)
from ganga_like.repository.index_build import ensure_indexes
from ganga_like.repository.pack import pack_storage
from tests.index_helpers import big_master

N = 2 * OID_CHUNK + 40  # three oid chunks; failures in each
FAILED = range(7, N, 61)
STATUSES = ("new", "submitting", "failed", "completed")


@pytest.fixture
def engine(tmp_path):
    engine = Engine(Config.from_env(root=str(tmp_path / "gl")))
    yield engine
    engine.close()


def assert_index_answers_as_a_scan(engine: Engine) -> None:
    """Every select by status equals a scan, and the index stayed readable (the answer
    came from the oids, not from the scan a wrong index falls back to)."""
    engine.refresh()
    jobs = engine.jobs
    for status in STATUSES:
        assert jobs.select(status=status) == select_jobs(iter(jobs), status=status), status
    assert jobs.index.readable
    for master in jobs.select(id=[0]):
        for status in STATUSES:
            assert list(master.subjobs.select(status=status)) == select_jobs(
                master._subjobs.values(), status=status), status
        assert master._subjob_index.readable


def test_every_filed_id_has_its_records_oid(engine):
    master = big_master(engine.main, N, FAILED, plain=True)
    subjobs, jobs = master._subjob_index, engine.jobs.index
    assert subjobs.oids_of(list(range(N))) == [master._subjobs[i]._p_oid for i in range(N)]
    assert jobs.oids_of(engine.jobs.ids()) == [job._p_oid for job in engine.jobs]
    assert subjobs.runs and jobs.runs == ()  # (the split's subjobs follow each other)
    engine.write(lambda: setattr(subjobs, "runs", ()))
    assert subjobs.oids_of(list(range(N))) == [master._subjobs[i]._p_oid for i in range(N)]
    assert_index_answers_as_a_scan(engine)


def test_runs_that_give_the_wrong_oids_are_found_wrong(engine):
    master = big_master(engine.main, N, FAILED)
    index = master._subjob_index
    shifted = tuple((first, oid + 1, n) for first, oid, n in index.runs)  # the next ones
    engine.write(lambda: setattr(index, "runs", shifted))
    assert master.subjobs.select(status="failed").ids() == list(FAILED)  # from a scan
    assert not index.complete


def test_the_oid_path_equals_a_scan_through_resubmits_force_removals_and_a_pack(engine):
    master = big_master(engine.main, N, FAILED, plain=True)
    assert_index_answers_as_a_scan(engine)

    def resubmit() -> None:  # what resubmit() does to the statuses
        for sub in master.subjobs.select(status="failed")[:3]:
            set_status(sub, "submitting")

    engine.write(resubmit)
    assert_index_answers_as_a_scan(engine)
    force_status(engine.context, master, "completed")  # its other failed subjobs
    plain = engine.jobs.get(FAILED[1] + 1)  # (plain job i has id i + 1)
    force_status(engine.context, plain, "completed")
    assert_index_answers_as_a_scan(engine)
    for job_id in (FAILED[2] + 1, 3, N):
        remove(engine.context, engine.jobs.get(job_id))
    assert_index_answers_as_a_scan(engine)
    pack_storage(engine.repository.db.storage, keep_days=0)  # the removed records go
    engine.main.conn.cacheMinimize()
    assert_index_answers_as_a_scan(engine)


def _oid_slot(index: StatusIndex, job_id: int, oid: bytes) -> None:
    """Set ``job_id``'s oid in its oid chunk, and drop the split's runs (which would
    answer first) so that the chunks are read."""
    index._oid_chunk(job_id // OID_CHUNK).put(job_id % OID_CHUNK, oid)
    index.runs = ()


@pytest.mark.parametrize("wrong", ["another subjob", "the master", "no record"])
def test_a_subjob_oid_that_leads_elsewhere_is_found_wrong(engine, wrong):
    master = big_master(engine.main, N, FAILED)
    victim = FAILED[1]
    oid = {"another subjob": master._subjobs[FAILED[2]]._p_oid, "the master": master._p_oid,
           "no record": b"\x7f" * 8}[wrong]
    engine.write(lambda: _oid_slot(master._subjob_index, victim, oid))
    engine.main.conn.cacheMinimize()
    master = engine.jobs.get(0)
    assert master.subjobs.select(status="failed").ids() == list(FAILED)  # from a scan
    assert not master._subjob_index.complete and not engine.jobs.index.complete


def test_a_jobs_oid_that_leads_to_a_subjob_of_the_same_id_is_found_wrong(engine):
    master = big_master(engine.main, N, FAILED, plain=True)
    victim = FAILED[0] + 1  # a failed plain job; the master's subjob of that id fails too
    twin = master._subjobs[victim]

    def point_elsewhere() -> None:
        set_status(twin, "submitting")
        set_status(twin, "failed")
        _oid_slot(engine.jobs.index, victim, twin._p_oid)

    engine.write(point_elsewhere)
    expected = select_jobs(iter(engine.jobs), status="failed")
    assert engine.jobs.select(status="failed") == expected
    assert not engine.jobs.index.complete


def test_ids_whose_oid_is_not_known_are_read_through_the_tree(engine):
    master = big_master(engine.main, N, FAILED)

    def forget() -> None:  # as a master split before it was stored leaves them
        for sub_id in FAILED[::2]:
            _oid_slot(master._subjob_index, sub_id, bytes(8))

    engine.write(forget)
    engine.main.conn.cacheMinimize()
    master = engine.jobs.get(0)
    assert master._subjob_index.oids_of(list(FAILED)).count(None) == len(FAILED[::2])
    assert master.subjobs.select(status="failed").ids() == list(FAILED)
    assert master._subjob_index.readable


def test_a_build_filing_oids_and_a_registration_in_the_same_chunk_both_win(engine):
    """The engine's build files job 0's oid while a client registers job 1: both change
    the same oid chunk, and the later commit merges instead of retrying."""
    engine.register(Job(name="old"))
    builder, client = engine.repository.connect(), engine.repository.connect()
    try:
        builder.write(lambda: _oid_slot(builder.jobs.index, 0, bytes(8)))  # (as if older)
        client.refresh()
        oid = builder.jobs.get(0)._p_oid
        builder.jobs.index.add(0, "new", oid)  # not committed yet
        new = Job(name="new")
        client.jobs.add(new)
        client.conn.transaction_manager.commit()
        builder.conn.transaction_manager.commit()  # the oid chunk conflicts: merged
        builder.refresh()
        assert builder.jobs.index.oids_of([0, 1]) == [oid, new._p_oid]
    finally:
        builder.close()
        client.close()


def _old_layout(current: StatusIndex) -> StatusIndex:
    """Replace an index with what the code before layouts wrote: chunks of 1,024 ids,
    one byte each, in ``codes``; no oids; no layout (its class default: 1)."""
    old = StatusIndex.__new__(StatusIndex)
    old.chunks, old.where, old.complete = IOBTree(), ChunkCounts(), True
    for job_id, status in current.entries():
        number, offset = divmod(job_id, 1024)
        chunk = old.chunks.get(number)
        if chunk is None:
            chunk = old.chunks[number] = StatusChunk.__new__(StatusChunk)
            chunk.codes = bytes(1024)
        codes = bytearray(chunk.codes)
        codes[offset] = CODE_OF[status]
        chunk.codes = bytes(codes)
        old.where.change(CODE_OF[status], number, 1)
    return old


def test_an_index_of_the_older_layout_is_ignored_then_rebuilt_at_the_engines_start(tmp_path):
    config = Config.from_env(root=str(tmp_path / "gl"))
    engine = Engine(config)
    try:
        master = big_master(engine.main, N, FAILED, plain=True)

        def make_old() -> None:
            engine.main.conn.root()[JOBS_INDEX_KEY] = _old_layout(engine.jobs.index)
            master._subjob_index = _old_layout(master._subjob_index)

        engine.write(make_old)
        assert engine.jobs.index.layout == 1 and not engine.jobs.index.readable
        # Until the rebuild: not read (selects scan), and status changes leave it alone.
        engine.write(lambda: set_status(master._subjobs[0], "submitting"))
        assert master.subjobs.select(status="submitting").ids() == [0]
        assert [j.id for j in engine.jobs.select(status="failed")] == [
            i + 1 for i in FAILED]
    finally:
        engine.close()
    engine = Engine(config)  # the start rebuilds both, in the current layout
    try:
        master = engine.jobs.get(0)
        for index in (engine.jobs.index, master._subjob_index):
            assert index.layout == LAYOUT and index.readable
        assert master._subjob_index.oids_of([0, N - 1]) == [
            master._subjobs[0]._p_oid, master._subjobs[N - 1]._p_oid]
        assert_index_answers_as_a_scan(engine)
        assert CHUNK > 1024  # (the layout did change)
    finally:
        engine.close()


def many_jobs(engine: Engine, n: int, failed: set[int]) -> None:
    """Jobs 0 .. n-1, those in ``failed`` failed, registered in one transaction."""
    def work() -> None:
        for i in range(n):
            job = Job(name=f"p{i}")
            engine.jobs.add(job)
            if i in failed:
                set_status(job, "submitting")
                set_status(job, "failed")

    engine.write(work)


def test_a_full_range_of_jobs_is_sealed_and_read_as_one_record(engine):
    """The registration of a range's last id seals its oids (``sealed_oids``): a select of
    spread jobs then reads one record for the range, not an oid chunk per match."""
    spread = set(range(3, SEALED, 397))
    many_jobs(engine, SEALED + 5, spread)
    index = engine.jobs.index
    assert list(index.sealed.keys()) == [0]
    assert index.oids_of(engine.jobs.ids()) == [job._p_oid for job in engine.jobs]
    matches = sorted(spread)
    expected = [engine.jobs.get(i)._p_oid for i in matches]
    zodb = engine.main.conn
    zodb.cacheMinimize()
    zodb.getTransferCounts(clear=True)
    assert index.oids_of(matches) == expected
    read = zodb.getTransferCounts()[0]
    assert read <= 3, read  # the index, its sealed tree, the record: none of 42 oid chunks
    assert [j.id for j in engine.jobs.select(status="failed")] == matches
    assert index.readable


def test_a_sealed_oid_that_leads_elsewhere_is_found_wrong_and_a_build_seals_again(engine):
    many_jobs(engine, SEALED + 5, {10, 20})
    index = engine.jobs.index
    victim = 10

    def point_elsewhere() -> None:
        oids = index.oids_of(range(SEALED))
        oids[victim] = engine.jobs.get(20)._p_oid  # another failed job
        index.sealed[0] = SealedOids(oids)

    engine.write(point_elsewhere)
    assert [j.id for j in engine.jobs.select(status="failed")] == [10, 20]  # a scan's
    assert not index.complete
    remove(engine.context, engine.jobs.get(SEALED - 1))  # the range's last: the build
    assert ensure_indexes(engine.main) == SEALED + 4  # (what the next start does) seals it
    index = engine.jobs.index
    assert index.readable and index.oids_of([victim]) == [engine.jobs.get(victim)._p_oid]
    assert list(index.sealed.keys()) == [0]  # sealed again by the build
    assert [j.id for j in engine.jobs.select(status="failed")] == [10, 20]
    assert index.readable
