"""The merge of two writers' slot records (``model/slot_merge``), against the rule
written slot by slot: every slot either side changed is kept; a slot both changed to
different values is a conflict."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ZODB.POSException import ConflictError

from ganga_like.model.slot_merge import BLOCK, merge_slots
from ganga_like.model.status_index import OID_CHUNK, OID_SIZE, OidChunk, StatusChunk


def by_the_rule(base: bytes, theirs: bytes, ours: bytes, width: int) -> bytes | None:
    """Slot by slot (None: a conflict)."""
    merged = bytearray(theirs)
    for slot in range(0, len(base), width):
        was, mine, now = (b[slot:slot + width] for b in (base, ours, theirs))
        if mine != was:
            if now not in (was, mine):
                return None
            merged[slot:slot + width] = mine
    return bytes(merged)


@st.composite
def three_versions(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, int]:
    width = draw(st.sampled_from([1, OID_SIZE]))
    slots = draw(st.integers(1, 3 * BLOCK // width + 5))  # several blocks, a partial last one
    values = st.binary(min_size=width, max_size=width)
    base = [bytes(width)] * slots
    for i in draw(st.lists(st.integers(0, slots - 1), max_size=6)):
        base[i] = draw(values)

    def changed() -> list[bytes]:
        version = list(base)
        for i in draw(st.lists(st.integers(0, slots - 1), max_size=6)):
            version[i] = draw(st.sampled_from([draw(values), bytes(width)]))
        return version

    return b"".join(base), b"".join(changed()), b"".join(changed()), width


@given(three_versions())
def test_merge_is_the_slot_by_slot_rule(versions):
    base, theirs, ours, width = versions
    expected = by_the_rule(base, theirs, ours, width)
    if expected is None:
        with pytest.raises(ConflictError):
            merge_slots(base, theirs, ours, width)
    else:
        assert merge_slots(base, theirs, ours, width) == expected


def test_two_writers_of_different_oids_in_one_chunk_both_win():
    base = bytes(OidChunk.slots)
    ours = bytearray(base)
    ours[0:8] = b"\x00" * 7 + b"\x05"  # id 0's record
    theirs = bytearray(base)
    theirs[8 * (OID_CHUNK - 1):] = b"\x00" * 6 + b"\x01\x02"  # the last id's
    merged = OidChunk()._p_resolveConflict({}, {"slots": bytes(theirs)}, {"slots": bytes(ours)})
    chunk = OidChunk()
    chunk.slots = merged["slots"]
    assert chunk.get(0) == bytes(ours[:8]) and chunk.get(OID_CHUNK - 1) == bytes(theirs[-8:])
    other = bytearray(base)
    other[0:8] = b"\x00" * 7 + b"\x06"
    with pytest.raises(ConflictError):  # one id given two records
        OidChunk()._p_resolveConflict({}, {"slots": bytes(other)}, {"slots": bytes(ours)})


def test_a_record_of_another_size_is_a_conflict_not_a_wrong_merge():
    with pytest.raises(ConflictError):
        merge_slots(bytes(4), bytes(3) + b"\x01", bytes(8), 1)
    assert len(StatusChunk.slots) % BLOCK == 0 and len(OidChunk.slots) % BLOCK == 0
