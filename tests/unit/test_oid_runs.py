"""Oids in a few records: a split's subjobs' oids as runs (``model/oid_runs``; every id
gets back the oid it was given, ids past the runs get none, too many runs are not
kept: the split seals its full ranges instead) and sealed ranges (``sealed_oids``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from ZODB.utils import p64

from ganga_like.model.oid_runs import MAX_RUNS, oid_in, runs_of


@given(st.lists(st.tuples(st.integers(1, 50), st.integers(1, 1000)), min_size=1, max_size=10))
def test_each_id_gets_back_its_oid(pieces):
    oids, next_oid = [], 1
    for length, gap in pieces:  # runs of consecutive oids, other writers' oids between
        next_oid += gap
        oids += [p64(next_oid + i) for i in range(length)]
        next_oid += length
    runs = runs_of(oids)
    assert len(runs) <= len(pieces)
    assert [oid_in(runs, job_id) for job_id in range(len(oids))] == oids
    assert oid_in(runs, len(oids)) is None and oid_in(runs, -1) is None


def test_too_many_runs_are_not_kept():
    interleaved = [p64(2 * i + 1) for i in range(MAX_RUNS + 1)]  # no two follow each other
    assert runs_of(interleaved) == ()
    assert len(runs_of(interleaved[:MAX_RUNS])) == MAX_RUNS
    assert runs_of([p64(7 + i) for i in range(10_000)]) == ((0, 7, 10_000),)


def test_a_sealed_range_gives_back_each_oid_and_none_where_unknown():
    from ganga_like.model.sealed_oids import UNKNOWN, SealedOids

    oids = [p64(1000 + 3 * i) if i % 5 else None for i in range(50)]
    oids[7] = p64(1000 + UNKNOWN + 5)  # too far from the base for 4 bytes: not kept
    sealed = SealedOids(oids)
    assert [sealed.oid(i) for i in range(50)] == [None if i == 7 else oid
                                                  for i, oid in enumerate(oids)]
    assert SealedOids([None] * 4).oid(2) is None and SealedOids.__new__(SealedOids).oid(0) is None
    assert sealed.oid(50) is None  # past its range


def test_a_split_whose_oids_interleave_with_another_writers_is_sealed_instead():
    from ganga_like.model.status_index import SEALED, StatusIndex

    interleaved = [p64(2 * i + 1) for i in range(SEALED + 3)]  # every other oid another's
    index = StatusIndex()
    index.fill("new", SEALED + 3, interleaved)
    assert index.runs == () and list(index.sealed.keys()) == [0]
    assert index.oids_of([0, SEALED - 1, SEALED + 2]) == [
        interleaved[0], interleaved[SEALED - 1], interleaved[SEALED + 2]]
    following = [p64(100 + i) for i in range(SEALED + 3)]
    index = StatusIndex()
    index.fill("new", SEALED + 3, following)
    assert index.runs == ((0, 100, SEALED + 3),) and len(index.sealed) == 0
