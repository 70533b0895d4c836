"""Spare directories: an emptied subjob directory kept for the next subjob to start in.

A subjob that ended with 0 and wrote nothing leaves no directory (``trace.py``).
Removing it frees its inodes (the directory, ``output/``, ``status``, ``stdout``,
``stderr``) and the next subjob's directory allocates as many again. On ext4 without
a journal an inode allocated in the minute after many were freed costs several times
more (docs/performance.md, "The filesystem"): a burst of 10,000 silent subjobs, or the
next burst after it, paid for it in every ``mkdir`` and ``open``. So the Local actor
tidies such a directory by renaming it into its workspace's spares,
``<workspace>/.spare/<process tag>-<n>`` (:func:`keep`), and the next subjob that
starts in that workspace takes one by renaming it to its own path (:func:`take`),
its ``status`` rewritten to the new run's first line first (the empty
``output/stdout`` and ``output/stderr`` are left as they are). A
burst then allocates and frees about as many directories as run at once; a rename
neither allocates nor frees an inode.

Only a directory in exactly that shape is kept: nothing else in it, the two files
empty, regular and not linked elsewhere, both directories with the same mode and
writable by their owner (a payload that changed them leaves its directory to be
removed, as before). At most :data:`MAX_SPARES` per workspace and process; beyond
that the directory is removed as before. The spares are removed when the tidier is
quiet (:func:`release`: no run ended for a second) and when an actor closes; those of
a process that was killed are removed by the next process that keeps spares in that
workspace (their names carry their process's tag, ``procs.process_tag``).
"""

from __future__ import annotations

import os
import shutil
import stat
import threading

from ganga_like.backends.runtime import procs
from ganga_like.backends.runtime.layout import EMPTY_OUTPUTS, OUTPUT, STATUS
from ganga_like.backends.runtime.tidy_journal import workspace_of

DIRECTORY = ".spare"
MAX_SPARES = 64  # per workspace and process: more than run at once on any one machine


class _Spares:
    """This process's spares, by workspace. Thread-safe: the Local actor's watcher keeps
    and starts, the tidier releases."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[str, list[str]] = {}  # workspace -> spare directories, ready
        self._made = 0  # names handed out
        self._tag = ""
        self._swept: set[str] = set()  # workspaces whose dead processes' spares were removed

    def has_room(self, workspace: str) -> bool:
        with self._lock:
            return len(self._free.get(workspace, ())) < MAX_SPARES

    def keep(self, workdir: str, workspace: str, outputs: dict[str, os.stat_result]) -> bool:
        """Make ``workdir`` (in ``workspace``) a spare: a silent subjob's directory, its
        lines already collected, ``outputs`` the files found in its ``output/``
        (``trace.py``). False, and ``workdir`` as it was, when it is not in a spare's
        shape or cannot be moved."""
        if not _spare_shaped(workdir, outputs):
            return False
        with self._lock:
            self._made += 1
            self._tag = self._tag or procs.process_tag()
            spare = os.path.join(workspace, DIRECTORY, f"{self._tag}-{self._made}")
            sweep = workspace not in self._swept
            self._swept.add(workspace)
        try:
            if sweep:
                _sweep(os.path.join(workspace, DIRECTORY))
            os.rename(workdir, spare)
        except OSError:
            return False
        with self._lock:
            self._free.setdefault(workspace, []).append(spare)
        return True

    def take(self, workdir: str, first_line: bytes) -> bool:
        """Move a spare of ``workdir``'s workspace to ``workdir``, its status file
        rewritten to ``first_line`` before it appears there; False (nothing changed)
        when there is none, or ``workdir`` exists or has no parent yet."""
        workspace = workspace_of(workdir)
        with self._lock:
            free = self._free.get(workspace)
            if not free:
                return False
            spare = free.pop()
        try:
            _rewrite(os.path.join(spare, STATUS), first_line)
            os.rename(spare, workdir)
        except OSError:
            with self._lock:  # still a spare: the next subjob may take it
                self._free.setdefault(workspace, []).append(spare)
            return False
        return True

    def release(self) -> None:
        """Remove every spare, and the spares' directory where it is left empty (a quiet
        moment, or the actor closes)."""
        with self._lock:
            left = dict(self._free)
            self._free.clear()
            self._swept.difference_update(left)  # the next keep makes the directory again
        for workspace, spares in left.items():
            for spare in spares:
                _remove(spare)
            try:
                os.rmdir(os.path.join(workspace, DIRECTORY))
            except OSError:
                pass  # another process's spares are in it, or one was kept meanwhile

    def count(self) -> int:
        with self._lock:
            return sum(len(spares) for spares in self._free.values())


def _spare_shaped(workdir: str, outputs: dict[str, os.stat_result]) -> bool:
    """Both empty outputs there, regular, writable by their owner and linked nowhere
    else; ``output/`` with its directory's mode, which its owner can use."""
    if sorted(outputs) != sorted(EMPTY_OUTPUTS) or not all(
            stat.S_ISREG(info.st_mode) and info.st_size == 0 and info.st_nlink == 1
            and info.st_mode & 0o600 == 0o600 for info in outputs.values()):
        return False
    try:
        own, out = os.lstat(workdir), os.lstat(os.path.join(workdir, OUTPUT))
    except OSError:
        return False
    return own.st_mode == out.st_mode and own.st_mode & 0o700 == 0o700


def _rewrite(path: str, first_line: bytes) -> None:
    """The file at ``path`` holds ``first_line`` and nothing else. Shortened, not
    emptied: a file emptied on ext4 frees its block, which costs ten times as much
    once the block was written out (measured: 93 against 9 us)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, len(first_line))
        os.pwrite(fd, first_line, 0)
    finally:
        os.close(fd)


def _sweep(directory: str) -> None:
    """Make the spares' directory; remove the spares of processes that are gone."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return
    for name in names:
        if not procs.tag_alive(name):
            _remove(os.path.join(directory, name))


def _remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


_spares = _Spares()
has_room = _spares.has_room
keep = _spares.keep
take = _spares.take
release = _spares.release
count = _spares.count
