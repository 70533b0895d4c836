"""Jobs by status: what ``select(status=...)`` reads instead of every job.

Two indexes of one kind (``StatusIndex``): each master's subjobs by status (the
master's ``_subjob_index``, beside its ``StatusCounts``), and the repository's
top-level jobs by status (a master by its derived status), kept in the database's root
mapping under ``JOBS_INDEX_KEY``, beside the registries. ``lifecycle.set_status``
keeps both in the transaction that changes the status; the jobs registry files and
forgets jobs in the transaction that registers or removes them; ``submit``'s split
files a new master's subjobs as ``new``.

Layout, chosen so that writers moving different (sub)jobs never conflict (as the
counts never do), which BTrees sets do not give (measured: two writers moving 40
subjobs each between two ``IITreeSet``s conflict at every size tried, on emptied and
split buckets and on a tree both made non-empty):

- ids fall in fixed chunks of ``CHUNK`` ids; a ``StatusChunk`` holds one byte per id of
  its range, the code of the id's status (``STATUS_CODES``; 0: none filed). Its
  conflicts merge byte by byte (``slot_merge``): two writers that changed different
  ids both win. Chunks are made once (all of a master's at its split; the jobs' as ids
  reach them) and never removed, so no two writers make the same one but by
  registering jobs at once, which conflict on the id allocator anyway;
- ``ChunkCounts`` says how many ids of each status each chunk holds, so a select reads
  only the chunks that hold a match; its conflicts merge by adding each side's
  difference, as ``StatusCounts`` does;
- an ``OidChunk`` holds the oid of each filed id's record (8 bytes per id; zero: not
  known), written once per id (when it is registered, at the split, by a build),
  never at a status change; its conflicts merge 8-byte slot by slot (a build filing
  old jobs' oids while a client registers a new one: both win). A split's subjobs'
  oids are also kept as runs in the index record (``oid_runs``), which answer first;
  a full range of ``SEALED`` ids has its oids sealed into one record (``sealed_oids``),
  which answers next.

A select by status reads the counts and the trees' roots (one round), the chunks that
hold matches (one round; with a ``limit``, only as many as the counts say hold that
many), the sealed ranges and oid chunks holding the oids the runs do not give, then
the matching records by oid (one round), checked to be what the index says
(``index_fetch``): in proportion to the matches, never through the (sub)jobs' tree,
whose buckets of ~60 would all be unpickled.

The sizes trade the writers against the readers: every status change rewrites its 4 KB
status chunk (measured: a batch moving 40 subjobs of 10,000 adds 22 KB to ``jobs.fs``
with chunks of 4,096, 19 KB with 1,024), and 100 matches spread over 100,000 ids read
25 status chunks instead of 98; a registration rewrites a 2 KB oid chunk (256 ids); a
sealed range (64 KB) is written once per 16,384 ids.

An index that is not ``complete`` (being built for a repository written before it, or
found wrong by a select and marked for rebuilding) or not of this code's ``LAYOUT``
(written by older code) is not read: selects scan, and the engine's next start builds
it again (``repository.index_build``). An index of another layout is not written
either: its chunks have another size, and the build replaces them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from BTrees.IOBTree import IOBTree
from persistent import Persistent
from ZODB.POSException import ConflictError

from .btree_fetch import fetch, prefetch_ghosts
from .oid_runs import Run, oid_in, runs_of
from .sealed_oids import SealedOids
from .slot_merge import merge_slots

JOBS_INDEX_KEY = "ganga_like.jobs_by_status"  # in the database's root mapping
# The layout the code below reads and writes. 1: chunks of 1,024 ids and no oids (what
# indexes written before layouts were numbered hold: the class default). An index of
# another layout is neither read nor written; the engine's start rebuilds it.
LAYOUT = 2
CHUNK = 4096  # ids per status chunk: a 4 KB record, which each status change rewrites
OID_CHUNK = 256  # ids per oid chunk: a 2 KB record, written once per id
# ids per sealed range (``sealed_oids``): a 64 KB record, written once per range, so
# that 100 spread matches among 100,000 jobs read 7 records, not ~100 oid chunks
SEALED = 16384
OID_SIZE = 8  # bytes of a ZODB oid; all zero: not known (oid 0 is the root, never a job)
NO_OID = bytes(OID_SIZE)
# A status's code in the chunks: stored, so only ever appended to (tests/unit/
# test_status_index.py checks every Status has one).
STATUS_CODES: tuple[str, ...] = (
    "", "new", "submitting", "submitted", "running", "completing", "completed", "failed",
    "killed", "completed_frozen", "failed_frozen", "incomplete", "unknown", "removed",
    "template")
CODE_OF = {status: code for code, status in enumerate(STATUS_CODES) if status}


class _Slots(Persistent):
    """A record of consecutive ids, ``WIDTH`` bytes per id (all zero: none). Two
    writers' changes merge slot by slot (``slot_merge``)."""

    WIDTH = 1
    slots: bytes = b""  # each kind's class default: every slot empty

    def get(self, offset: int) -> bytes:
        return self.slots[offset * self.WIDTH:(offset + 1) * self.WIDTH]

    def put(self, offset: int, value: bytes) -> None:
        start, end = offset * self.WIDTH, (offset + 1) * self.WIDTH
        if self.slots[start:end] != value:
            self.slots = self.slots[:start] + value + self.slots[end:]

    def _p_resolveConflict(self, old: dict | None, committed: dict, new: dict) -> dict:
        empty = type(self).slots
        old_slots, theirs, ours = ((state or {}).get("slots", empty)
                                   for state in (old, committed, new))
        resolved = dict(committed)
        resolved["slots"] = merge_slots(old_slots, theirs, ours, self.WIDTH)
        return resolved


class StatusChunk(_Slots):
    """The status codes of ``CHUNK`` consecutive ids, one byte each (0: not filed)."""

    slots: bytes = bytes(CHUNK)

    def code(self, offset: int) -> int:
        return self.slots[offset]

    def offsets(self, code: int) -> Iterator[int]:
        codes, mark = self.slots, bytes((code,))
        found = codes.find(mark)
        while found >= 0:
            yield found
            found = codes.find(mark, found + 1)


class OidChunk(_Slots):
    """The oids of the records of ``OID_CHUNK`` consecutive ids (zero: not known), so a
    select goes from an id straight to its record, without the tree's buckets (each
    holds some 60 (sub)jobs, all made ghosts when it is read)."""

    WIDTH = OID_SIZE
    slots: bytes = bytes(OID_SIZE * OID_CHUNK)

    def oid(self, offset: int) -> bytes | None:
        found = self.get(offset)
        return found if found and found != NO_OID else None


class ChunkCounts(Persistent):
    """How many ids of each status code each chunk holds: ``{code: {chunk: n}}``.

    Changed in place (``_p_changed``): it is rewritten whole at each commit anyway, and
    copying it at each of a batch's thousands of moves would cost more than the move."""

    counts: dict[int, dict[int, int]] = {}

    def __init__(self) -> None:
        self.counts = {}

    def change(self, code: int, chunk: int, n: int) -> None:
        if self.counts is ChunkCounts.counts:
            self.counts = {}  # (never the class's own dict)
        per_chunk = self.counts.setdefault(code, {})
        left = per_chunk.get(chunk, 0) + n
        if left:
            per_chunk[chunk] = left
        else:
            per_chunk.pop(chunk, None)
            if not per_chunk:
                del self.counts[code]
        self._p_changed = True

    def chunks(self, code: int) -> list[int]:
        return sorted(self.counts.get(code, {}))

    def _p_resolveConflict(self, old: dict | None, committed: dict, new: dict) -> dict:
        flat = [_flatten(state) for state in (old or {}, committed, new)]
        merged: dict[int, dict[int, int]] = {}
        for key in set().union(*flat):
            value = flat[1].get(key, 0) + flat[2].get(key, 0) - flat[0].get(key, 0)
            if value < 0:
                raise ConflictError("chunk counts would go negative")
            if value:
                merged.setdefault(key[0], {})[key[1]] = value
        resolved = dict(committed)
        resolved["counts"] = merged
        return resolved


def _flatten(state: Mapping[str, Mapping[int, Mapping[int, int]]]) -> dict[tuple[int, int], int]:
    return {(code, chunk): n for code, per_chunk in state.get("counts", {}).items()
            for chunk, n in per_chunk.items()}


class StatusIndex(Persistent):
    """(Sub)job ids by status, in chunks of ids, and their records' oids (see the
    module's note)."""

    chunks: IOBTree | None = None  # chunk number -> StatusChunk
    oids: IOBTree | None = None  # oid chunk number -> OidChunk (None: layout 1)
    sealed: IOBTree | None = None  # range number (SEALED ids) -> SealedOids
    where: ChunkCounts | None = None
    runs: tuple[Run, ...] = ()  # a split's subjobs' oids, when they follow each other
    complete: bool = False  # read by selects only when True
    layout: int = 1  # (stored by every index made since: see LAYOUT)

    def __init__(self, complete: bool = True) -> None:
        self._empty(complete)

    def _empty(self, complete: bool) -> None:
        self.chunks = IOBTree()
        self.oids = IOBTree()
        self.sealed = IOBTree()
        self.where = ChunkCounts()
        self.runs = ()
        self.complete = complete
        self.layout = LAYOUT

    @property
    def current(self) -> bool:
        """Whether it has the layout this code reads and writes."""
        return self.layout == LAYOUT

    @property
    def readable(self) -> bool:
        """Whether a select may read it: complete, in the current layout."""
        return self.complete and self.current

    def make_chunks(self, below: int) -> None:
        """Make every chunk for ids under ``below`` now (a master's, at its split), so
        that no two writers make one later."""
        for number in range((below + CHUNK - 1) // CHUNK):
            self._chunk(number)
        for number in range((below + OID_CHUNK - 1) // OID_CHUNK):
            self._oid_chunk(number)

    def _chunk(self, number: int) -> StatusChunk:
        assert self.chunks is not None  # (made by __init__)
        chunk: StatusChunk | None = self.chunks.get(number)
        if chunk is None:
            chunk = self.chunks[number] = StatusChunk()
        return chunk

    def _oid_chunk(self, number: int) -> OidChunk:
        assert self.oids is not None  # (a current layout's)
        chunk: OidChunk | None = self.oids.get(number)
        if chunk is None:
            chunk = self.oids[number] = OidChunk()
        return chunk

    def _file(self, job_id: int, code: int) -> None:
        if not self.current:
            return  # not read, and rebuilt whole at the engine's next start
        number, offset = divmod(job_id, CHUNK)
        chunk = self._chunk(number)
        was = chunk.code(offset)
        if was == code:
            return
        chunk.put(offset, bytes((code,)))
        assert self.where is not None
        if was:
            self.where.change(was, number, -1)
        if code:
            self.where.change(code, number, 1)

    def add(self, job_id: int, status: str, oid: bytes | None = None) -> None:
        """File ``job_id`` under ``status``, with its record's oid when it has one."""
        self._file(job_id, CODE_OF[status])
        if oid is not None and self.current:
            number, offset = divmod(job_id, OID_CHUNK)
            self._oid_chunk(number).put(offset, oid)
            if (job_id + 1) % SEALED == 0:
                self.seal(job_id // SEALED)  # its range's last id: every id of it is given

    def seal(self, number: int) -> None:
        """Seal the oids of the ``number``-th range of ``SEALED`` ids into one record
        (``sealed_oids``): every id of it has been handed out, so they never change."""
        assert self.sealed is not None
        oids: list[bytes | None] = [None] * SEALED
        _look_up(oids, range(number * SEALED, (number + 1) * SEALED), self.oids, OID_CHUNK)
        self.sealed[number] = SealedOids(oids)

    def seal_full(self, below: int) -> None:
        """Seal again every range below id ``below`` (a build's last step: what a
        registration sealed meanwhile lacked the oids the build filed after it)."""
        for number in range(below // SEALED):
            self.seal(number)

    def discard(self, job_id: int) -> None:
        self._file(job_id, 0)  # (its oid stays: never read for an id not filed)

    def move(self, job_id: int, status: str) -> None:
        """File ``job_id`` under ``status`` (wherever it was filed before)."""
        self._file(job_id, CODE_OF[status])

    def fill(self, status: str, count: int, oids: Sequence[bytes] | None = None) -> None:
        """File ids 0 .. count-1 under one status (a new master's subjobs, all ``new``),
        with their records' oids (``oids[i]``: id i's) when they have them."""
        code = CODE_OF[status]
        self.make_chunks(count)
        assert self.chunks is not None and self.where is not None and self.oids is not None
        for number in range((count + CHUNK - 1) // CHUNK):
            size = min(CHUNK, count - number * CHUNK)
            self.chunks[number].slots = bytes((code,)) * size + bytes(CHUNK - size)
            self.where.change(code, number, size)
        if not oids:
            return
        self.runs = runs_of(oids)
        for number in range((count + OID_CHUNK - 1) // OID_CHUNK):
            known = b"".join(oids[number * OID_CHUNK:(number + 1) * OID_CHUNK])
            self.oids[number].slots = known + bytes(OID_SIZE * OID_CHUNK - len(known))
        if not self.runs:  # (oids given out between another writer's: seal them instead)
            self.seal_full(count)

    def ids(self, statuses: Iterable[str], minid: int | None = None,
            maxid: int | None = None, limit: int | None = None,
            newest_first: bool = False) -> list[int]:
        """The ids filed under any of ``statuses`` (unknown names: none), within
        [minid, maxid], in order (``newest_first``: from the highest), at most ``limit``
        of them. Reads only the chunks that hold some, asked for at once: with a
        ``limit``, those the counts say hold that many (then more if the range's ends
        held fewer)."""
        # Its parts in one round, not one each: the counts, and the roots of both trees.
        prefetch_ghosts(self._p_jar, (self.where, self.chunks, self.oids, self.sealed))
        assert self.chunks is not None and self.where is not None
        low = 0 if minid is None else max(minid, 0)
        codes = {CODE_OF[s] for s in statuses if s in CODE_OF}
        held: dict[int, int] = {}
        for code in codes:
            for number, n in self.where.counts.get(code, {}).items():
                if (number + 1) * CHUNK > low and (maxid is None or number * CHUNK <= maxid):
                    held[number] = held.get(number, 0) + n
        numbers = sorted(held, reverse=newest_first)
        found: list[int] = []
        while numbers and (limit is None or len(found) < limit):
            batch = numbers if limit is None else _enough(numbers, held, limit - len(found))
            numbers = numbers[len(batch):]
            for number, chunk in zip(batch, fetch(self.chunks, batch), strict=True):
                assert chunk is not None  # (counted, so made)
                ids = sorted(number * CHUNK + offset for code in codes
                             for offset in chunk.offsets(code))
                found.extend(i for i in (reversed(ids) if newest_first else ids)
                             if i >= low and (maxid is None or i <= maxid))
        return found if limit is None else found[:limit]

    def oids_of(self, ids: Sequence[int]) -> list[bytes | None]:
        """The oid of each id's record (None: not known): from the split's runs, else
        from the sealed ranges holding them, else from their oid chunks; the records
        of each kind read at once."""
        runs = self.runs
        found: list[bytes | None] = [oid_in(runs, job_id) for job_id in ids] if runs else \
            [None] * len(ids)
        _look_up(found, ids, self.sealed, SEALED)
        _look_up(found, ids, self.oids, OID_CHUNK)
        return found

    def count(self, statuses: Iterable[str]) -> int:
        """How many are filed under any of ``statuses``, from the counts alone."""
        assert self.where is not None
        return sum(sum(self.where.counts.get(CODE_OF[s], {}).values())
                   for s in set(statuses) if s in CODE_OF)

    def entries(self) -> Iterator[tuple[int, str]]:
        """Every (id, status) filed: what a check compares with the jobs' own statuses."""
        for number, chunk in (self.chunks or IOBTree()).items():
            for offset, code in enumerate(chunk.slots):
                if code:
                    yield number * CHUNK + offset, STATUS_CODES[code]

    def reset(self) -> None:
        """Empty it, in the current layout, and mark it incomplete: the first step of
        a (re)build."""
        self._empty(False)


class _OidRecord(Protocol):
    def oid(self, offset: int) -> bytes | None: ...


def _look_up(found: list[bytes | None], ids: Sequence[int], tree: IOBTree | None,
             size: int) -> None:
    """Fill in the oids ``found`` lacks from ``tree`` (record number -> an oid record of
    ``size`` ids), the records holding them read at once."""
    rest = [(at, job_id) for at, job_id in enumerate(ids) if found[at] is None]
    if tree is None or not rest:
        return
    numbers = sorted({job_id // size for _, job_id in rest})
    records: dict[int, _OidRecord | None] = dict(zip(numbers, fetch(tree, numbers), strict=True))
    for at, job_id in rest:
        record = records[job_id // size]
        if record is not None:
            found[at] = record.oid(job_id % size)


def _enough(numbers: list[int], held: Mapping[int, int], wanted: int) -> list[int]:
    """The first of ``numbers`` that hold ``wanted`` matches between them."""
    total = 0
    for taken, number in enumerate(numbers, 1):
        total += held[number]
        if total >= wanted:
            return numbers[:taken]
    return numbers


def jobs_index(jar: object) -> StatusIndex | None:
    """The repository's index of top-level jobs, through any stored object's connection
    (None for an object not stored, or a repository that has none yet)."""
    root = getattr(jar, "root", None)
    if root is None:
        return None
    found = root().get(JOBS_INDEX_KEY)
    return found if isinstance(found, StatusIndex) else None
