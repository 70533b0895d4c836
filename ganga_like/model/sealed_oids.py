"""The oids of a full range of ids, sealed into one record once no id of it can come.

Top-level jobs are registered one per transaction, so their oids do not follow each
other (each job's parts take oids between them; other clients' and splits' too), and a
select of 100 spread matches among 100,000 jobs reads an oid chunk per match: about as
many records as the jobs themselves (measured through the service: 11-17 ms of 23 at
30,000). Ids are handed out in order and never again, so once the allocator has passed
the end of a range of ``status_index.SEALED`` ids, the range's oids never change: the
registration of its last id (or a build) seals them into one record, 4 bytes per id
(the offset from the range's smallest oid), written once. A select then reads one
record per range holding matches (7 at 100,000) instead of one per match.
"""

from __future__ import annotations

from collections.abc import Sequence

from persistent import Persistent
from ZODB.utils import p64, u64

UNKNOWN = 0xFFFFFFFF  # an offset: the id's oid is not known (or too far from the base)
OFFSET = 4  # bytes per id


class SealedOids(Persistent):
    """The oids of consecutive ids as offsets from ``base`` (written once, never merged:
    two sealers of one range conflict, and the retry finds it sealed)."""

    base: int = 0
    offsets: bytes = b""

    def __init__(self, oids: Sequence[bytes | None]) -> None:
        known = [u64(oid) for oid in oids if oid is not None]
        self.base = min(known, default=0)
        self.offsets = b"".join(
            (u64(oid) - self.base if oid is not None and u64(oid) - self.base < UNKNOWN
             else UNKNOWN).to_bytes(OFFSET, "big") for oid in oids)

    def oid(self, offset: int) -> bytes | None:
        stored = self.offsets[offset * OFFSET:(offset + 1) * OFFSET]
        value = int.from_bytes(stored, "big")
        return None if value == UNKNOWN or len(stored) < OFFSET else p64(self.base + value)
