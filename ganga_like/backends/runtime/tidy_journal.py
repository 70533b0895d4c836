"""The tidier's journal: which ended subjobs are still to be tidied, on disk.

``trace.py`` tidies the ended subjobs its spare directories had no room for
(``spares.py``) once a burst is over, in a thread of the actor. An actor that is
closed or killed before it got to them would keep their directories for ever. So
each subjob queued for tidying is first appended to the journal of its process,
``<workspace>/.untidied/<pid>-<start>`` (one line, one ``O_APPEND`` write), and the
journal is removed whenever everything queued was tidied, and ``.untidied`` with it
once no other process's journal is in it. A journal whose process
is gone is *claimed* by the next process that tidies in that workspace (renamed to
its own name, so two claimants cannot both take it): its lines are queued again.
Tidying is idempotent (a directory already tidied is left as it is; lines collected
twice are read once), so a line that survives its tidying costs nothing but a look.
"""

from __future__ import annotations

import os
import threading

from ganga_like.backends.runtime import procs

DIRECTORY = ".untidied"
# Tries to make the journal when other processes' drains keep removing the directory
# between our makedirs and open (each removal needs the directory empty: it ends fast).
_OPEN_TRIES = 5


def workspace_of(workdir: str) -> str:
    """The workspace that holds a subjob's directory (``<workspace>/<master>/<subjob>``)."""
    return os.path.dirname(os.path.dirname(os.path.normpath(workdir)))


class Journal:
    """One process's journal in one workspace. Not thread-safe: the tidier calls it
    under its own lock."""

    def __init__(self, workspace: str) -> None:
        self.directory = os.path.join(workspace, DIRECTORY)
        self._name = procs.process_tag()
        self._fd: int | None = None
        self._claims = 0

    def add(self, workdir: str) -> None:
        """Record that ``workdir`` is to be tidied (before it is queued)."""
        if self._fd is None:
            self._fd = self._open()
        os.write(self._fd, workdir.encode() + b"\n")

    def _open(self) -> int:
        path = os.path.join(self.directory, self._name)
        for _ in range(_OPEN_TRIES):
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            try:
                return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                continue  # another process's drained() removed the directory just now
        raise FileNotFoundError(f"{self.directory} kept disappearing")

    def drained(self) -> None:
        """Everything added was tidied (or kept for good): forget it (the next ``add``
        makes the file again)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
            os.unlink(os.path.join(self.directory, self._name))
            try:
                os.rmdir(self.directory)
            except OSError:
                pass  # another process's journal is in it

    def claim_orphans(self) -> list[str]:
        """The lines of journals whose process is gone, now in this process's journal
        (the caller queues them without adding them again)."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found: list[str] = []
        for name in names:
            if name.startswith(self._name) or procs.tag_alive(name):
                continue
            self._claims += 1
            claimed = os.path.join(self.directory, f"{self._name}-{self._claims}")
            try:
                os.rename(os.path.join(self.directory, name), claimed)
            except FileNotFoundError:
                continue  # another process claimed it first
            with open(claimed, "rb") as handle:
                lines = [line.decode("utf-8", "replace") for line in handle.read().splitlines() if line]
            for workdir in lines:
                self.add(workdir)  # ours now, before the claimed copy goes
            os.unlink(claimed)
            found.extend(lines)
        return found


_journals: dict[str, Journal] = {}
_lock = threading.Lock()


def journal_for(workdir: str) -> tuple[Journal, bool]:
    """This process's journal for the workspace of ``workdir``, and whether it is new
    (then the caller claims the orphans)."""
    workspace = workspace_of(workdir)
    with _lock:
        journal = _journals.get(workspace)
        if journal is not None:
            return journal, False
        journal = _journals[workspace] = Journal(workspace)
        return journal, True


def all_journals() -> list[Journal]:
    with _lock:
        return list(_journals.values())
