"""The BEX queue on disk: its directories and files, written from :class:`~.entry.Entry`.

::

    <root>/queue/jobs/<job-id>.job            every job issued on the queue (mail-like)
    <root>/queue/hosts/<host>/<job-id>.job    a symbolic link to ../../jobs/<job-id>.job
    <root>/queue/hosts/<host>/<job-id>.stat   Time:, Status:, Message: (replaced atomically)
    <root>/queue/hosts/<host>/<job-id>.log    the transcript: every attempt, each marked
    <root>/queue/history/<host>/              finished (OK) jobs' files, with keep_history
    <root>/queue/log                          one line per BEX status (the seed's format)

Only the service writes here (``engine/bex_writer.py``), after the commit that made
the change and never inside a transaction. Directories are 0700 and files 0600:
nothing is readable by other users. Writing an entry is idempotent: the log line is
appended before the ``.stat`` is replaced (a crash between the two repeats a line at
the next start, never loses one), an attempt's transcript is appended once (its
header is looked for first), and a finished OK job whose link is gone from its host's
directory is left alone (its files were moved or deleted already).
"""

from __future__ import annotations

import contextlib
import os
import time

from ..backends.runtime import trace
from ..queue_log import QueueLog, format_fields
from . import codes
from .entry import Entry, parse_stat, stat_text

DIR_MODE, FILE_MODE = 0o700, 0o600
PREP_DONE = "PREP_DONE"  # the status-file state a BEX job's script writes once Prep: ended
NO_HOST_JOB = "-"  # the job-id of a host's lines (PING, LOCKED, INIT, DONE: no job's)
TRANSCRIPT_LIMIT = 1 << 20  # bytes of each output file an attempt's transcript takes


def attempt_header(attempt: int) -> str:
    return f"=== attempt {attempt} "


class QueueDir:
    """One repository's BEX queue (``<root>/queue``)."""

    def __init__(self, path: str, keep_history: bool = False) -> None:
        self.path = path
        self.keep_history = keep_history
        self.log = QueueLog(os.path.join(path, "log"))
        # (job-id, host) -> the host code last logged for it: a host line is said once per
        # phase (a new service may say the current one again; nothing is lost).
        self._host_said: dict[tuple[str, str], str] = {}
        # (job-id, host) -> the time of the last status change logged (a new service
        # goes by the .stat's Time instead).
        self._logged_at: dict[tuple[str, str], float] = {}

    # -- places -------------------------------------------------------------------------
    def job_file(self, name: str) -> str:
        return os.path.join(self.path, "jobs", f"{name}.job")

    def host_dir(self, host: str) -> str:
        return os.path.join(self.path, "hosts", dir_name(host))

    def history_dir(self, host: str) -> str:
        return os.path.join(self.path, "history", dir_name(host))

    def _mkdir(self, path: str) -> str:
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        for part in (self.path, os.path.dirname(path), path):  # makedirs honours the umask
            with contextlib.suppress(OSError):
                os.chmod(part, DIR_MODE)
        return path

    # -- job files ----------------------------------------------------------------------
    def claim(self, name: str, text: str) -> bool:
        """Create ``jobs/<name>.job`` only if no job of that name was issued (atomic: the
        file system decides between two claims); whether this one made it."""
        path = self.job_file(name)
        self._mkdir(os.path.dirname(path))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def unclaim(self, name: str) -> None:
        """Take back a claim whose job was not stored after all."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.job_file(name))

    def issued(self, name: str) -> bool:
        return os.path.lexists(self.job_file(name))

    # -- entries --------------------------------------------------------------------------
    def write(self, entry: Entry, job_text: str, now: float | None = None) -> str:
        """Bring the entry's files up to date; return the code written ('' if none: the
        entry has no host yet, only its job file)."""
        if not self.issued(entry.name):
            self.claim(entry.name, job_text)
        code = self.code_of(entry)
        for host in entry.hosts:
            self._write_host(entry, host, code, time.time() if now is None else now)
        return code if entry.hosts else ""

    def code_of(self, entry: Entry) -> str:
        """The entry's code; PREP while its run's Prep: has not ended (its status file says)."""
        if entry.prep and entry.code == codes.RUN and entry.status == "running" \
                and not prep_done(entry.workdir):
            return codes.code_for(entry.status, codes.RUNNING_WITH_PREP)
        return entry.code

    def _write_host(self, entry: Entry, host: str, code: str, now: float) -> None:
        where = self._mkdir(self.host_dir(host))
        link, stat_path, log_path = (os.path.join(where, entry.name + suffix)
                                     for suffix in (".job", ".stat", ".log"))
        old_text = read_text(stat_path)
        old = parse_stat(old_text)
        if code == codes.OK and not old and self._done_on_disk(entry.name, host, link):
            return
        if not os.path.lexists(link):
            os.symlink(os.path.join("..", "..", "jobs", f"{entry.name}.job"), link)
        when = self._log_change(entry, host, code, old, now)
        if entry.final:
            self._append_transcript(log_path, entry, host, code)
        elif not os.path.exists(log_path):
            _replace(log_path, "")
        text = stat_text(when, code, entry.message)
        if text != old_text:  # unchanged (a repair's rewrite): left as it is
            _replace(stat_path, text)
        if code == codes.OK:
            self._retire(entry.name, host)

    def _done_on_disk(self, name: str, host: str, link: str) -> bool:
        """An OK job without a .stat on its host: finished on disk already (its files were
        moved or deleted, the link last), or its move to history a crash cut short (then
        finished here)."""
        if not os.path.lexists(link):
            return True
        if os.path.exists(os.path.join(self.history_dir(host), f"{name}.stat")):
            self._retire(name, host)
            return True
        return False

    def _log_change(self, entry: Entry, host: str, code: str, old: dict[str, str],
                    now: float) -> float:
        """Log what changed since the last write (the codes passed on the way too); the
        time the .stat gets."""
        changed = old.get("Status") != code
        written = int(old.get("Time", "0") or 0)
        # A new code from a status change is dated by it; one from a detail, or from a run
        # whose Prep ended (the same status as before), by now. A change is new when it is
        # later than the last one logged (by the .stat's whole second after a restart: a
        # change in the second of the last write is then dated by now).
        key = (entry.name, host)
        since = self._logged_at.get(key)
        new_change = entry.time > since if since is not None else int(entry.time) > written
        when = float(written) if not changed else entry.time if new_change else now
        passed = self._passed(entry, key, old.get("Status", ""), written) if changed else []
        said = changed and not (passed and passed[-1][1] == code)  # (a passed line says it)
        self.log.append_lines("".join(format_fields(t, host, entry.name, c, note)
                                      for t, c, note in passed)
                              + self._log_lines(entry, host, code if said else "", when or now))
        self._logged_at[key] = max(entry.time, self._logged_at.get(key, 0.0))
        return when

    def _passed(self, entry: Entry, key: tuple[str, str], old_code: str,
                written: int) -> list[tuple[float, str, str]]:
        """The codes the entry passed through since its last write (by its status changes
        after it), each once, leaving out the one it shows now: the log says them too."""
        since = self._logged_at.get(key)
        steps = [s for s in entry.steps[:-1]  # the last change is the entry's own
                 if (s[0] > since if since is not None else int(s[0]) > written)]
        passed, said = [], old_code
        for step in steps:
            if step[1] != said:
                passed.append(step)
                said = step[1]
        return passed

    def _log_lines(self, entry: Entry, host: str, code: str, when: float) -> str:
        """The log's lines for this write: the host's new phase (if any), the job's new
        code ('': unchanged), and DONE for the host once the job ended there."""
        lines = []
        host_code = codes.host_line_for(entry.status, entry.detail)
        key = (entry.name, host)
        if host_code and self._host_said.get(key) != host_code:
            lines.append(format_fields(when, host, NO_HOST_JOB, host_code))
        self._host_said[key] = host_code
        if code:
            lines.append(format_fields(when, host, entry.name, code, entry.message))
            if entry.final:
                lines.append(format_fields(when, host, NO_HOST_JOB, codes.DONE))
                self._host_said.pop(key, None)
        return "".join(lines)

    def _append_transcript(self, path: str, entry: Entry, host: str, code: str) -> None:
        """Add this attempt's output to the host's transcript, once."""
        header = attempt_header(entry.attempt)
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                if any(line.startswith(header) for line in handle):
                    return
        except FileNotFoundError:
            pass
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.time))
        parts = [f"{header}on {host}, ended {stamp}: {code} {' '.join(entry.message.split())}\n"]
        for name in ("stdout", "stderr"):
            text = _head(os.path.join(entry.workdir, "output", name)) if entry.workdir else ""
            if text:
                parts.append(f"--- {name}\n{text}" + ("" if text.endswith("\n") else "\n"))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            os.write(fd, "".join(parts).encode())
        finally:
            os.close(fd)

    def _retire(self, name: str, host: str) -> None:
        """An OK job leaves its host's queue: to history/<host>/ with keep_history, else
        deleted (the seed's rule). The link goes last: its absence says it is done."""
        where = self.host_dir(host)
        target = self._mkdir(self.history_dir(host)) if self.keep_history else ""
        for suffix in (".log", ".stat", ".job"):
            path = os.path.join(where, name + suffix)
            with contextlib.suppress(FileNotFoundError):
                if target:
                    os.replace(path, os.path.join(target, name + suffix))
                else:
                    os.unlink(path)
        if target and not os.path.exists(os.path.join(target, f"{name}.job")):
            os.symlink(os.path.join("..", "..", "jobs", f"{name}.job"),
                       os.path.join(target, f"{name}.job"))


    def drop(self, name: str, host: str) -> None:
        """A removed job leaves the host's queue (its job file stays: it was issued)."""
        for suffix in (".stat", ".log", ".job"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.host_dir(host), name + suffix))
        self._host_said.pop((name, host), None)


def dir_name(host: str) -> str:
    """A host's directory name: its name, with what could leave ``hosts/`` quoted (a host
    name is whatever its node's ``host:<name>`` resource says)."""
    quoted = host.replace("%", "%25").replace("/", "%2F")
    return quoted if quoted not in (".", "..", "") else quoted.replace(".", "%2E") or "%00"


def prep_done(workdir: str) -> bool:
    """Whether the run's status file says its Prep: command ended."""
    return any(info.state == PREP_DONE for info in trace.history(workdir))


def read_text(path: str) -> str:
    """A small file's text ('' if there is none)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def _head(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(TRANSCRIPT_LIMIT).decode(errors="replace")
    except OSError:
        return ""


def _replace(path: str, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, then a rename. The
    temporary file's name is fixed (one writer per queue), so one a crash left behind is
    simply written over next time."""
    temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
