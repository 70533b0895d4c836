"""The (sub)jobs of ids a status index gave: straight from their oids, all at once.

Through the tree (``btree_fetch``), 100 scattered subjobs among 100,000 cost the
~100 buckets holding them, and unpickling each bucket makes a ghost of every one of
its ~60 subjobs: 6,000 ghosts for 100 (measured: two thirds of a select's time over
ZEO). The index keeps each filed id's oid (``status_index.OidChunk``), so the records
are asked for together by oid (one ``prefetch``) and read from the cache. What an oid
leads to is checked (it is that (sub)job: its id and its master); a missing or wrong
record gives None, which the callers take for an index gone wrong (``found_wrong``:
the answer from a scan, the index rebuilt). Ids whose oid is not known (zero) are
read through the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, cast

from ZODB.POSException import POSKeyError

from .btree_fetch import Tree, fetch
from .writes import in_write

J = TypeVar("J")


class OidIndex(Protocol):
    """What this reads of an index (``status_index.StatusIndex``)."""

    def oids_of(self, ids: Sequence[int]) -> list[bytes | None]: ...


class Jar(Protocol):
    """A ZODB connection, as far as reading by oid goes."""

    def get(self, oid: bytes) -> object: ...


def fetch_filed(index: OidIndex, tree: Tree[J], ids: Sequence[int],
                master: object | None) -> list[J | None]:
    """The (sub)jobs of ``tree`` with ``ids``, in order: by oid where the index knows
    it, through the tree where not; None where the record is missing, or is not the
    (sub)job of that id under ``master`` (None: a top-level job)."""
    jar = cast(Jar | None, tree._p_jar)
    if jar is None or not ids:
        return fetch(tree, ids)  # (not stored: the tree is all there is)
    oids = index.oids_of(ids)
    known = [oid for oid in oids if oid is not None]
    prefetch = getattr(jar, "prefetch", None)
    # One round for them all, each then read from the cache; but not inside a write: the
    # jobs it registered are among them, which the server does not have yet (over ZEO
    # their prefetch logs a POSKeyError), and the engine's writes read a FileStorage in
    # place anyway.
    if prefetch is not None and known and not in_write(getattr(jar, "transaction_manager", None)):
        prefetch(known)
    rest = [job_id for job_id, oid in zip(ids, oids, strict=True) if oid is None]
    by_tree = dict(zip(rest, fetch(tree, rest), strict=True))
    return [by_tree[job_id] if oid is None else cast(J | None, _record(jar, oid, job_id, master))
            for job_id, oid in zip(ids, oids, strict=True)]


def _record(jar: Jar, oid: bytes, job_id: int, master: object | None) -> object | None:
    """The record at ``oid`` if it is the (sub)job ``job_id`` of ``master``, else None."""
    try:
        found = jar.get(oid)
        belongs = getattr(found, "id", None) == job_id and getattr(found, "master", None) is master
    except POSKeyError:  # (removed, and the storage packed)
        return None
    return found if belongs else None
