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
  conflicts merge byte by byte: two writers that changed different ids both win.
  Chunks are made once (all of a master's at its split; the jobs' as ids reach them)
  and never removed, so no two writers make the same one but by registering jobs at
  once, which conflict on the id allocator anyway;
- ``ChunkCounts`` says how many ids of each status each chunk holds, so a select reads
  only the chunks that hold a match; its conflicts merge by adding each side's
  difference, as ``StatusCounts`` does.

A select by status reads the counts (one small record), the chunks that hold matches,
and the matching (sub)jobs: in proportion to the matches. An index that is not
``complete`` (being built for a repository written before it, or found wrong by a
select and marked for rebuilding) is not read: selects scan, and the engine's next
start builds it again (``repository.index_build``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from BTrees.IOBTree import IOBTree
from persistent import Persistent
from ZODB.POSException import ConflictError

from .btree_fetch import fetch

JOBS_INDEX_KEY = "ganga_like.jobs_by_status"  # in the database's root mapping
CHUNK = 1024  # ids per chunk: a chunk's record is about 1 KB
CHUNKS_AT_ONCE = 16  # chunks asked for together (a page with a limit reads few of them)
# A status's code in the chunks: stored, so only ever appended to (tests/unit/
# test_status_index.py checks every Status has one).
STATUS_CODES: tuple[str, ...] = (
    "", "new", "submitting", "submitted", "running", "completing", "completed", "failed",
    "killed", "completed_frozen", "failed_frozen", "incomplete", "unknown", "removed",
    "template")
CODE_OF = {status: code for code, status in enumerate(STATUS_CODES) if status}


class StatusChunk(Persistent):
    """The status codes of ``CHUNK`` consecutive ids, one byte each (0: not filed)."""

    codes: bytes = bytes(CHUNK)

    def set(self, offset: int, code: int) -> None:
        if self.codes[offset] != code:
            self.codes = self.codes[:offset] + bytes((code,)) + self.codes[offset + 1:]

    def offsets(self, code: int) -> Iterator[int]:
        codes, mark = self.codes, bytes((code,))
        found = codes.find(mark)
        while found >= 0:
            yield found
            found = codes.find(mark, found + 1)

    def _p_resolveConflict(self, old: dict | None, committed: dict, new: dict) -> dict:
        base = (old or {}).get("codes", bytes(CHUNK))
        theirs, ours = committed.get("codes", bytes(CHUNK)), new.get("codes", bytes(CHUNK))
        merged = bytearray(theirs)
        for offset, (was, mine) in enumerate(zip(base, ours, strict=True)):
            if mine != was:
                if theirs[offset] != was and theirs[offset] != mine:
                    raise ConflictError("both writers changed the same id's status")
                merged[offset] = mine
        resolved = dict(committed)
        resolved["codes"] = bytes(merged)
        return resolved


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
    """(Sub)job ids by status, in chunks of ids (see the module's note)."""

    chunks: IOBTree | None = None  # chunk number -> StatusChunk
    where: ChunkCounts | None = None
    complete: bool = False  # read by selects only when True

    def __init__(self, complete: bool = True) -> None:
        self.chunks = IOBTree()
        self.where = ChunkCounts()
        self.complete = complete

    def make_chunks(self, below: int) -> None:
        """Make every chunk for ids under ``below`` now (a master's, at its split), so
        that no two writers make one later."""
        assert self.chunks is not None
        for number in range((below + CHUNK - 1) // CHUNK):
            if number not in self.chunks:
                self.chunks[number] = StatusChunk()

    def _chunk(self, number: int) -> StatusChunk:
        assert self.chunks is not None  # (made by __init__)
        chunk: StatusChunk | None = self.chunks.get(number)
        if chunk is None:
            chunk = StatusChunk()
            self.chunks[number] = chunk
        return chunk

    def _file(self, job_id: int, code: int) -> None:
        number, offset = divmod(job_id, CHUNK)
        chunk = self._chunk(number)
        was = chunk.codes[offset]
        if was == code:
            return
        chunk.set(offset, code)
        assert self.where is not None
        if was:
            self.where.change(was, number, -1)
        if code:
            self.where.change(code, number, 1)

    def add(self, job_id: int, status: str) -> None:
        self._file(job_id, CODE_OF[status])

    def discard(self, job_id: int) -> None:
        self._file(job_id, 0)

    def move(self, job_id: int, status: str) -> None:
        """File ``job_id`` under ``status`` (wherever it was filed before)."""
        self._file(job_id, CODE_OF[status])

    def fill(self, status: str, count: int) -> None:
        """File ids 0 .. count-1 under one status (a new master's subjobs, all ``new``)."""
        code = CODE_OF[status]
        self.make_chunks(count)
        assert self.chunks is not None and self.where is not None
        for number in range((count + CHUNK - 1) // CHUNK):
            size = min(CHUNK, count - number * CHUNK)
            self.chunks[number].codes = bytes((code,)) * size + bytes(CHUNK - size)
            self.where.change(code, number, size)

    def ids(self, statuses: Iterable[str], minid: int | None = None,
            maxid: int | None = None, limit: int | None = None,
            newest_first: bool = False) -> list[int]:
        """The ids filed under any of ``statuses`` (unknown names: none), within
        [minid, maxid], in order (``newest_first``: from the highest), at most ``limit``
        of them; reads only the chunks that hold some, and stops at ``limit``."""
        assert self.chunks is not None and self.where is not None
        low = 0 if minid is None else max(minid, 0)
        codes = {CODE_OF[s] for s in statuses if s in CODE_OF}
        numbers = sorted({number for code in codes for number in self.where.chunks(code)
                          if (number + 1) * CHUNK > low
                          and (maxid is None or number * CHUNK <= maxid)}, reverse=newest_first)
        found: list[int] = []
        for start in range(0, len(numbers), CHUNKS_AT_ONCE):
            batch = numbers[start:start + CHUNKS_AT_ONCE]
            for number, chunk in zip(batch, fetch(self.chunks, batch), strict=True):
                assert chunk is not None  # (counted, so made)
                ids = sorted(number * CHUNK + offset for code in codes
                             for offset in chunk.offsets(code))
                found.extend(i for i in (reversed(ids) if newest_first else ids)
                             if i >= low and (maxid is None or i <= maxid))
                if limit is not None and len(found) >= limit:
                    return found[:limit]
        return found

    def count(self, statuses: Iterable[str]) -> int:
        """How many are filed under any of ``statuses``, from the counts alone."""
        assert self.where is not None
        return sum(sum(self.where.counts.get(CODE_OF[s], {}).values())
                   for s in set(statuses) if s in CODE_OF)

    def entries(self) -> Iterator[tuple[int, str]]:
        """Every (id, status) filed: what a check compares with the jobs' own statuses."""
        for number, chunk in (self.chunks or IOBTree()).items():
            for offset, code in enumerate(chunk.codes):
                if code:
                    yield number * CHUNK + offset, STATUS_CODES[code]

    def reset(self) -> None:
        """Empty it and mark it incomplete: the first step of a (re)build."""
        self.chunks = IOBTree()
        self.where = ChunkCounts()
        self.complete = False


def jobs_index(jar: object) -> StatusIndex | None:
    """The repository's index of top-level jobs, through any stored object's connection
    (None for an object not stored, or a repository that has none yet)."""
    root = getattr(jar, "root", None)
    if root is None:
        return None
    found = root().get(JOBS_INDEX_KEY)
    return found if isinstance(found, StatusIndex) else None
