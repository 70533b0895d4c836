"""Deferred removal of the benchmark's run directories.

This machine's root filesystem is ext4 *without a journal*. There, allocating an
inode skips every free inode of the block group that was deleted less than 30 s
ago (``recently_deleted()`` in ext4's ``ialloc.c``), one buffer-cache lookup
each: right after a run of 1,000 subjobs (≈ 5,000 files and directories) is
removed, every file or directory the next run creates costs 2-3 times more
(measured: mkdir 0.18 ms against 0.06 ms after 35 quiet seconds). Removing each
run's directory as soon as it ends made every run pay for the previous one's
clean-up, Ganga and ganga_like alike, in an order-dependent way.

So run directories are *moved* (a rename, no inode freed) into one trash
directory on the same filesystem and removed once, at the end of the benchmark.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile

_counter = itertools.count()
ENV = "GLBENCH_TRASH"  # set by the runner, so that its children share its trash


def _trash() -> str:
    return os.environ.get(ENV) or os.path.join(tempfile.gettempdir(), f"glbench-trash-{os.getpid()}")


def share() -> None:
    """Make the processes started from now on discard into this process's trash."""
    os.environ[ENV] = _trash()


def discard(path: str | os.PathLike) -> None:
    """Take ``path`` out of the way now; its inodes are freed by :func:`empty`.

    Outside the runner (no shared trash: a scenario run by hand), it is removed now."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        return
    if not os.environ.get(ENV):  # not under the runner (nobody would empty the trash)
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        trash = _trash()
        os.makedirs(trash, exist_ok=True)
        os.rename(path, os.path.join(trash, f"{os.getpid()}-{next(_counter)}-{os.path.basename(path)}"))
    except OSError:  # another filesystem: remove it now
        shutil.rmtree(path, ignore_errors=True)


def empty() -> None:
    """Remove everything discarded so far (at the end of the benchmark)."""
    shutil.rmtree(_trash(), ignore_errors=True)
