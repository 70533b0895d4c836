"""Where a (sub)job's status trace lives, and the tidying that keeps a subjob which
wrote nothing from costing a directory.

While it runs, a subjob has its own directory (the payload's working directory,
``output/``, is its cwd) and its own status file, ``<workdir>/status``
(``status_file.py``). Once it ended with ``RUN_DONE`` and left nothing but an empty
``output/stdout`` and ``output/stderr``, :func:`tidy` appends its status lines,
each prefixed with the subjob's id, to its master's collected trace
``<master workspace>/subjobs.status``::

    17 2025-01-31T14:02:07.123456+0100 RUN_DONE exit=0

and removes the directory (a file or directory costs a 4 KB block; a line costs its
bytes); the Local actor's :func:`tidy_soon` moves it aside instead, for the next
subjob to start in (``spares.py``), while its workspace has room for a spare. A
subjob that failed, was killed, or wrote anything keeps its directory.
Each subjob's lines go in one ``O_APPEND`` write of at most ``LINE_MAX`` bytes (a
longer block, line by line), so writers need no lock. The lines are appended before
the directory goes: a crash between the two leaves both, and readers take the
subjob's own file first.

Every reader of a trace asks here (:func:`history`, :func:`last`): its own file if
it exists, else the master's collected lines for it. The collected trace is read
once and then only from where it was last read (it is append-only), so reading
every subjob of a master costs one pass over it.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import threading
import time

from ganga_like.backends.runtime import spares, tidy_journal
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime.layout import COLLECTED, EMPTY_OUTPUTS, OUTPUT, STATUS

_ONE_READ = 16384  # a status file of a few lines is read in one call
TIDY_QUIET = 1.0  # seconds without a run ending before the ended ones are tidied


def status_path(workdir: str) -> str:
    return os.path.join(workdir, STATUS)


def collected_path(workdir: str) -> tuple[str, str]:
    """(the collected trace a subjob's lines go to, the subjob's key in it)."""
    master, key = os.path.split(os.path.normpath(workdir))
    return os.path.join(master, COLLECTED), key


def history(workdir: str) -> list[sf.StatusInfo]:
    """Every readable status of the run in ``workdir``, oldest first."""
    if not workdir:
        return []
    own = status_path(workdir)
    if os.path.exists(own):
        return sf.StatusFile(own).history()
    path, key = collected_path(workdir)
    return list(_collected(path).get(key, ()))


def last(workdir: str) -> sf.StatusInfo | None:
    """The run's last readable status (its own file: only the tail is read)."""
    if not workdir:
        return None
    own = status_path(workdir)
    found = sf.last_status(own)
    if found is not None or os.path.exists(own):
        return found
    lines = history(workdir)
    return lines[-1] if lines else None


def read_own(workdir: str) -> bytes | None:
    """The run's own status file, whole, when one read holds it (a few lines: every
    silent run's); None when it is longer or there is none. Read once after a run
    ended, for both its outcome (:func:`last_in`) and its tidying (:func:`tidy_soon`)."""
    try:
        fd = os.open(status_path(workdir), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, _ONE_READ)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) < _ONE_READ else None


def last_in(own: bytes) -> sf.StatusInfo | None:
    """:func:`last` of a status file already read by :func:`read_own`."""
    lines = own.split(b"\n")
    lines.pop()  # without a final newline the last piece is a partial write
    for raw in reversed(lines):
        info = sf.parse_line(raw)
        if info is not None:
            return info
    return None


def tidied(workdir: str) -> bool:
    """Whether ``workdir`` was tidied away: gone, its lines in the collected trace."""
    return bool(workdir) and not os.path.isdir(workdir) and bool(history(workdir))


@dataclasses.dataclass(frozen=True)
class _Silent:
    """What a silent run left: its status lines and the (empty) files in ``output/``."""

    lines: list[bytes]
    outputs: dict[str, os.stat_result]
    has_output: bool


def _silent(workdir: str, own: bytes | None = None) -> _Silent | None:
    """What ``workdir`` holds if its run ended with ``RUN_DONE exit=0`` and left nothing
    but its status file and an empty ``output/stdout`` and ``output/stderr``; else None
    (it keeps its directory). ``own``: its status file as :func:`read_own` read it."""
    try:
        names = os.listdir(workdir)
        if STATUS not in names or set(names) - {STATUS, OUTPUT}:
            return None
        outputs = {}
        if OUTPUT in names:
            with os.scandir(os.path.join(workdir, OUTPUT)) as entries:
                for entry in entries:
                    info = entry.stat(follow_symlinks=False)
                    if entry.name not in EMPTY_OUTPUTS or not stat.S_ISREG(info.st_mode) or info.st_size:
                        return None
                    outputs[entry.name] = info
        data = own if own is not None else _read_whole(status_path(workdir))
    except OSError:
        return None  # kept: whatever is left is read as before
    lines = [raw for raw in data.split(b"\n")[:-1] if raw]
    final = sf.parse_line(lines[-1]) if lines else None
    if final is None or final.state != sf.RUN_DONE or final.exit_code != 0:
        return None
    return _Silent(lines, outputs, OUTPUT in names)


def _read_whole(path: str) -> bytes:
    """A small file's bytes in one read, more only if it is longer."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _ONE_READ)
        while len(data) % _ONE_READ == 0 and (more := os.read(fd, _ONE_READ)):
            data += more
        return data
    finally:
        os.close(fd)


def _collect(workdir: str, silent: _Silent) -> None:
    """Append the run's lines to its master's collected trace (OSError if that fails)."""
    path, key = collected_path(workdir)
    _append(path, [_prefixed(key, raw) for raw in silent.lines])


def _remove(workdir: str, silent: _Silent) -> bool:
    try:
        for name in silent.outputs:
            os.unlink(os.path.join(workdir, OUTPUT, name))
        if silent.has_output:
            os.rmdir(os.path.join(workdir, OUTPUT))
        os.unlink(status_path(workdir))
        os.rmdir(workdir)
    except OSError:
        return False  # kept: whatever is left is read as before
    return True


def tidy(workdir: str) -> bool:
    """Move the trace of a subjob that ended with ``RUN_DONE`` and wrote nothing to its
    master's collected trace and remove its directory; False (and nothing changed)
    when it keeps the directory. Called once no process of the run is left."""
    silent = _silent(workdir)
    if silent is None:
        return False
    try:
        _collect(workdir, silent)
    except OSError:
        return False
    return _remove(workdir, silent)


def tidy_soon(workdir: str, own: bytes | None = None) -> None:
    """The Local actor's tidying, once no process of the run is left: at once into a
    spare directory (``spares.py``) while its workspace has room for one, else queued
    for removal at a quiet moment (:class:`_Tidier`). ``own``: as :func:`_silent`."""
    workspace = tidy_journal.workspace_of(workdir)
    if not spares.has_room(workspace):
        _tidier.later(workdir)
        return
    silent = _silent(workdir, own)
    if silent is None:
        return  # it keeps its directory
    try:
        _collect(workdir, silent)
    except OSError:
        return  # kept, its lines where they were
    if not spares.keep(workdir, workspace, silent.outputs):
        _remove(workdir, silent)
    _tidier.spare_kept()


class _Tidier:
    """Tidies in a thread of its own, at a quiet moment: once no run has ended for
    :data:`TIDY_QUIET` seconds. Removing directories costs about as much as making them
    (measured: ``rmdir`` is most of it), and on ext4 files made while many are being
    deleted cost more (docs/performance.md, "The filesystem"): what a burst of short
    runs leaves beyond its spare directories is removed after it, not between its
    launches, and so are the spares themselves. What is still queued when the process
    ends stays in its journal: the next process that tidies in the same workspace
    does it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: list[str] = []
        self._spares_kept = False  # spares to remove at the next quiet moment
        self._last = 0.0  # when the last run was queued or kept as a spare
        self._thread: threading.Thread | None = None
        self._busy = threading.Lock()  # one tidying at a time: the thread's or finish()'s

    def later(self, workdir: str) -> None:
        """Queue ``workdir`` for tidying, journalled first (``tidy_journal.py``): what a
        closed or killed actor did not get to, the next one that tidies there does."""
        with self._cond:
            idle = self._idle()
            try:
                journal, new = tidy_journal.journal_for(workdir)
                if new:
                    self._pending.extend(journal.claim_orphans())
                journal.add(workdir)
            except OSError:
                pass  # not journalled: tidied if this process lives long enough, as before
            self._pending.append(workdir)
            self._busy_now(idle)

    def spare_kept(self) -> None:
        """A run's directory became a spare: the spares go at the next quiet moment."""
        with self._cond:
            idle = self._idle()
            self._spares_kept = True
            self._busy_now(idle)

    def _idle(self) -> bool:
        """Whether the thread waits for work (not for a quiet moment); starts it."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ganga_like-tidy", daemon=True)
            self._thread.start()
        return not self._pending and not self._spares_kept

    def _busy_now(self, idle: bool) -> None:
        self._last = time.monotonic()
        if idle:
            # Only the thread waiting for work needs waking: one counting down the
            # quiet period reads the new ``_last`` when its wait ends. Woken for every
            # subjob, it cost a switch of threads (and of the GIL) per subjob.
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._spares_kept:
                    self._cond.wait()
                while (left := self._last + TIDY_QUIET - time.monotonic()) > 0:
                    self._cond.wait(left)
                self._spares_kept = False
            with self._busy:
                for workdir in self._take():
                    tidy(workdir)
                spares.release()
                self._forget_if_drained()

    def _take(self) -> list[str]:
        with self._cond:
            batch, self._pending = self._pending, []
        return batch

    def _forget_if_drained(self) -> None:
        """Remove the journals once nothing is queued (what was added while the batch
        was tidied is queued, and keeps them)."""
        with self._cond:
            if self._pending:
                return
            for journal in tidy_journal.all_journals():
                try:
                    journal.drained()
                except OSError:
                    pass  # its lines are tidied again by a later claimant: idempotent

    def finish(self, budget: float) -> None:
        """Tidy what is queued now, for at most ``budget`` seconds (an actor that closes);
        the rest stays queued and journalled."""
        deadline = time.monotonic() + budget
        with self._busy:
            batch = self._take()
            for done, workdir in enumerate(batch):
                if time.monotonic() >= deadline:
                    with self._cond:  # still journalled: the next actor tidies them
                        self._pending[:0] = batch[done:]
                    return
                tidy(workdir)
            spares.release()
            self._forget_if_drained()


_tidier = _Tidier()
finish_tidying = _tidier.finish


def _prefixed(key: str, raw: bytes) -> bytes:
    line = key.encode() + b" " + raw
    if len(line) >= sf.LINE_MAX:
        line = line[:sf.LINE_MAX - 1].decode("utf-8", "ignore").encode()
    return line + b"\n"


def _append(path: str, lines: list[bytes]) -> None:
    block = b"".join(lines)
    if len(block) <= sf.LINE_MAX:
        sf.append_line(path, block)  # one write: the subjob's lines stay together
        return
    for line in lines:
        sf.append_line(path, line)


@dataclasses.dataclass
class _Read:
    """What has been read of one collected trace, and its first bytes (``head``): a
    trace deleted and written again under the same name (a job's workspace removed, a
    repository made again) may get the old one's inode number, which ext4 gives at
    once, and must not be read on from the old one's offset. Its first line's
    microseconds tell it from the old one; holding the file instead would leave a
    ``.nfs`` file behind its removal on NFS."""

    identity: tuple[int, int]
    head: bytes = b""
    offset: int = 0
    lines: dict[str, list[sf.StatusInfo]] = dataclasses.field(default_factory=dict)


_KEPT = 4  # collected traces kept read (recovery reads one master after another)
_HEAD = 64  # bytes of a collected trace's start compared at each read (its first line's time)
_read: dict[str, _Read] = {}
_lock = threading.Lock()


def _collected(path: str) -> dict[str, list[sf.StatusInfo]]:
    """The collected trace at ``path`` by subjob key, read on from where it was left."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return {}
    try:
        st = os.fstat(fd)
        with _lock:
            known = _read.get(path)
            if known is None or known.identity != (st.st_dev, st.st_ino) or st.st_size < known.offset \
                    or os.pread(fd, len(known.head), 0) != known.head:
                known = _Read((st.st_dev, st.st_ino))
            if st.st_size > known.offset:
                data = os.pread(fd, st.st_size - known.offset, known.offset)
                complete = data.rpartition(b"\n")[0]  # a partial last line is read next time
                if complete:
                    known.offset += len(complete) + 1
                    _index(known.lines, complete)
                if len(known.head) < _HEAD:
                    known.head = os.pread(fd, min(_HEAD, known.offset), 0)
            _read.pop(path, None)
            _read[path] = known
            while len(_read) > _KEPT:
                del _read[next(iter(_read))]
            return known.lines
    finally:
        os.close(fd)


def _index(into: dict[str, list[sf.StatusInfo]], data: bytes) -> None:
    for raw in data.split(b"\n"):
        key, _, rest = raw.partition(b" ")
        info = sf.parse_line(rest) if key else None
        if info is not None:
            known = into.setdefault(key.decode("utf-8", "replace"), [])
            if info not in known:  # a tidy repeated after a crash appends its lines again
                known.append(info)
