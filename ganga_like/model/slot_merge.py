"""Merging two writers' changes to a record of fixed-width slots (``status_index``'s
chunks: one byte per id for its status, eight for its record's oid).

Each writer changed some slots of the same base; the merge keeps every slot that
either changed, and refuses (``ConflictError``) a slot both changed to different
values, as two writers of the same (sub)job's record would conflict. Changes are
sparse (a batch moves a few hundred ids of a chunk of thousands), so blocks of the
record are compared as ``bytes`` first (one C comparison each) and only the blocks
one writer changed are looked at slot by slot.
"""

from __future__ import annotations

from ZODB.POSException import ConflictError

BLOCK = 256  # bytes compared at once: a multiple of every slot width


def merge_slots(base: bytes, theirs: bytes, ours: bytes, width: int) -> bytes:
    """``theirs`` (committed) with every slot ``ours`` changed from ``base``."""
    if ours == base or ours == theirs:
        return theirs
    if theirs == base:
        return ours
    if not len(base) == len(theirs) == len(ours):
        raise ConflictError("the two writers' records differ in size")
    merged = bytearray(theirs)
    for start in range(0, len(base), BLOCK):
        end = start + BLOCK
        if ours[start:end] == base[start:end]:
            continue
        for slot in range(start, min(end, len(base)), width):
            was, mine = base[slot:slot + width], ours[slot:slot + width]
            if mine == was:
                continue
            now = theirs[slot:slot + width]
            if now != was and now != mine:
                raise ConflictError("both writers changed the same id's slot")
            merged[slot:slot + width] = mine
    return bytes(merged)
