"""A repository on a small filesystem that fills up (issue 16, point 5).

The test mounts a tmpfs of a few MB (CI runs as root), puts the root there (Ray's
directory and the compiled wrapper stay outside), starts the real service through a
real client, and lets a payload fill the disk. While the disk is full: a submit and an
edit that cannot be written fail in one line naming the filesystem, and leave nothing
of themselves; a script gets the same line; reads answer; the other subjobs run on.
Once the filler is deleted: the outcomes of what ran meanwhile are recorded, the next
submit works, the service is the same process, the database passes ``fstest`` and the
queue log holds every change of every job's history. Two faster checks do without a
service: the FileStorage and the queue log, each on a disk that fills.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import json
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from ganga_like.backends.base import FINISHED, Event, Handle
from ganga_like.config import Config
from ganga_like.engine.context import EngineContext, Submission
from ganga_like.engine.monitor import DISK_RETRY, Monitor
from ganga_like.errors import DiskFull
from ganga_like.model.lifecycle import UNDER_WAY, Change
from ganga_like.queue_log import QueueLog
from ganga_like.repository import open_repository
from ganga_like.repository.storage import SafeFileStorage
from ganga_like.service.logfile import LineHandler
from ganga_like.status import ACTIVE
from tests.service.test_service import ask, service_pid, shell, wait_for
from tests.test_cli import finish_root, run_gl

SIZE_MB = 16  # the small filesystem: the root with its database, workspace and logs
SLEEPERS = 12  # subjobs that run on while the disk is full, and end then
SUBJOBS = 40  # a submit whose commit cannot fit in what a full disk leaves


@contextlib.contextmanager
def small_filesystem(where: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` MB mounted at ``where`` (unmounted afterwards, also on failure)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem (tmpfs) needs root; CI runs as root")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700",
                              "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` up to its last page; the filler file."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle, contextlib.suppress(OSError):
        while handle.write(b"\0" * (1 << 16)):
            pass
    assert os.statvfs(directory).f_bavail == 0
    return filler


def fstest(path: Path) -> subprocess.CompletedProcess:
    """ZODB's own consistency check of a FileStorage."""
    return subprocess.run([sys.executable, "-m", "ZODB.scripts.fstest", str(path)],
                          capture_output=True, text=True, timeout=60)


# -- the FileStorage and the queue log alone -------------------------------------------------

def test_a_commit_that_finds_the_disk_full_leaves_nothing_and_the_next_one_works(tmp_path):
    """ZODB's FileStorage writes through buffered files: after a failed write the
    buffer still holds the failed transaction's bytes, which a later flush writes after
    the last good transaction. With ZODB 6.4's own FileStorage, seed 1 leaves 30 KB of
    a failed transaction in the file (and ``fstest`` then finds a 'time-stamp
    reduction'); ``SafeFileStorage`` must keep nothing of it."""
    import transaction
    import ZODB
    from BTrees.IOBTree import IOBTree

    with small_filesystem(tmp_path / "small", 1) as small:
        for seed in (1, 2, 22, 5, 7):
            for name in os.listdir(small):
                os.unlink(small / name)
            rnd = random.Random(seed)
            path = small / "jobs.fs"
            storage = SafeFileStorage(str(path))
            db = ZODB.DB(storage)
            manager = transaction.TransactionManager()
            conn = db.open(manager)
            root = conn.root()
            root["t"] = IOBTree()
            manager.commit()
            filler = small / "filler"
            filler.write_bytes(b"\0" * ((1 << 20) - rnd.randrange(100, 300) * 1024
                                        - rnd.randrange(0, 4096)))
            kept, failures = [], 0
            for i in range(60):
                root["t"][i] = os.urandom(rnd.randrange(100, 20000))
                try:
                    manager.commit()
                    kept.append(i)
                except OSError:
                    manager.abort()
                    failures += 1
                    # Nothing of it is left: the file ends with the last good transaction.
                    assert path.stat().st_size == storage._pos, seed
            assert failures, f"seed {seed}: the disk never filled"
            filler.unlink()
            root["t"][1000] = b"after"
            manager.commit()  # room again: the next commit works
            kept.append(1000)
            db.close()
            checked = fstest(path)
            assert checked.returncode == 0, (seed, checked.stdout, checked.stderr)
            db = ZODB.DB(SafeFileStorage(str(path), read_only=True))
            conn = db.open()
            assert sorted(conn.root()["t"].keys()) == kept, seed
            db.close()


def test_the_queue_log_holds_its_lines_while_it_cannot_be_written(tmp_path):
    with small_filesystem(tmp_path / "small", 1) as small:
        log = QueueLog(str(small / "log"))
        log.append([Change(time.time(), "0", "new", "submitting", "", "")])
        before = (small / "log").read_bytes()
        filler = fill(small)
        # More than the room left in the log's last page: a short write, cut back out.
        changes = [Change(time.time(), f"1.{i}", "running", "completed", "x" * 60, "")
                   for i in range(100)]
        log.append(changes)  # never raises: the commit it follows has happened
        assert log.held == 100
        assert (small / "log").read_bytes() == before  # no half line, no half batch
        assert not log.flush()
        filler.unlink()
        log.append([Change(time.time(), "2", "new", "submitting", "", "")])
        assert log.held == 0
        lines = (small / "log").read_text().splitlines()
        assert [line.split()[3] for line in lines] == ["0", *[f"1.{i}" for i in range(100)], "2"]


def test_the_service_log_drops_what_it_cannot_write_and_says_so_after(tmp_path):
    with small_filesystem(tmp_path / "small", 1) as small:
        stream = open(small / "service.log", "a")
        handler = LineHandler(stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger = logging.getLogger("tests.full_disk")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:
            logger.info("before")
            filler = fill(small)
            lines = [f"line {i} " + "x" * 90 for i in range(200)]
            for line in lines:
                logger.info(line)  # never raises, never a traceback of the logging
            filler.unlink()
            logger.info("after")
        finally:
            logger.removeHandler(handler)
            stream.close()
        text = (small / "service.log").read_text().splitlines()
        assert text[0] == "INFO before" and text[-1] == "INFO after"
        whole = [line for line in text if line.startswith("INFO line ")
                 and line.removeprefix("INFO ") in lines]
        lost = int(text[-2].split()[1])
        assert text[-2] == (f"WARNING {lost} line(s) of this log could not be written "
                            f"(No space left on device)")
        assert len(whole) + lost == len(lines), (len(whole), lost)
        # At most one line cut short by the full disk, ended by the next line written.
        assert len(text) - len(whole) - 3 <= 1, text


class _FullThenRoom:
    """A monitor's connection whose first commits find the disk full."""

    def __init__(self, full_commits: int) -> None:
        self.full_commits = full_commits
        self.jobs = {}  # every event's job is unknown: its work reads and skips it

    def write(self, work, on_commit=None):
        if self.full_commits:
            self.full_commits -= 1
            raise DiskFull("/small", "/small/gl/repository/jobs.fs", "0 bytes",
                           "nothing of it was written", "run it again")
        return work()


class _Store:
    def __init__(self, log_path: str) -> None:
        self.queue_log = QueueLog(log_path)
        # What the monitor's causes are numbered by (repository.causes, without a database).
        self.repository = SimpleNamespace(read_only=False,
                                          causes=SimpleNamespace(take=itertools.count(1).__next__))

    def on_commit(self, changes) -> None:
        self.queue_log.append(changes)


def test_the_monitor_holds_a_batch_the_disk_has_no_room_for_and_tries_again(tmp_path):
    context = EngineContext(store=_Store(str(tmp_path / "log")), backends=None,  # type: ignore[arg-type]
                            notify_changed=lambda: None)
    monitor = Monitor(context)
    monitor.conn = _FullThenRoom(full_commits=2)
    events = [Event(seq=i, fqid=f"0.{i}", kind=FINISHED, time=time.time(), exit_code=0)
              for i in range(5)]
    # A run that started (a pid): its submission is not held for its first events
    # (engine/submission_wait.py), so it is recorded in this very turn.
    submission = Submission([("1.0", 1, Handle(backend="Local", fqid="1.0", pid=4242, attempt=1))])
    monitor.inject(events)
    monitor.submit_results(submission)
    monitor._turn()
    # The submitter is answered at once, in one line: its work runs, not recorded yet.
    assert submission.done.is_set() and isinstance(submission.error, DiskFull)
    assert "job 1 went to its backend, but that cannot be recorded yet" in str(submission.error)
    assert "it is recorded by itself: nothing is lost" in str(submission.error)
    # The batch is kept, in order; the monitor sleeps until the next try (no busy loop).
    assert monitor._buffer == events and monitor.events_applied == 0
    assert 0.5 < monitor._wait_time() <= DISK_RETRY
    monitor._inbox.put(lambda: None)  # wakes it before the next try is due
    monitor._turn()  # too early: nothing is tried
    assert monitor.conn.full_commits == 1
    monitor._retry_at = 0.0
    monitor._turn()  # still full: kept again
    assert monitor._buffer == events and monitor._held_submissions == [submission]
    monitor._retry_at = 0.0
    monitor._turn()  # room again: recorded, once
    assert monitor._buffer == [] and monitor._held_submissions == []
    assert monitor.events_applied == len(events) and monitor.batches == 1


# -- the service on a disk that fills up -----------------------------------------------------

SCRIPT = f"""
j = Job(name='from-a-script', application=Executable(exe='/bin/true'),
        splitter=ArgSplitter(args=[[str(i)] for i in range({SUBJOBS})]))
j.submit()
"""


def _err(text: str) -> tuple[str, str] | None:
    return ast.literal_eval(text)


def _payloads_in(workspace: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid", "cwd"]):
        with contextlib.suppress(psutil.Error):
            if (proc.info["cwd"] or "").startswith(str(workspace) + os.sep):
                found.append(proc.info["pid"])
    return found


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Iterator[dict]:
    """One service through the whole story; what each step saw, for the tests below."""
    base = tmp_path_factory.mktemp("fulldisk")
    gate = base / "gate"  # outside the small filesystem: touching a file there needs no room
    gate.mkdir()
    seen: dict = {}
    with small_filesystem(base / "small", SIZE_MB) as small:
        root = small / "gl"
        client = None
        filler = None
        try:
            client = shell(root)  # its first use starts the service
            ask(client, '!exec("def err(f):\\n try:\\n  f()\\n except Exception as e:\\n'
                        '  return (type(e).__name__, str(e))")')
            fills = f"until [ -e {gate}/fill ]; do sleep 0.1; done; head -c 1G /dev/zero > filler"
            waits = f"until [ -e {gate}/finish ]; do sleep 0.25; done"
            backend = f"Local(concurrency={SLEEPERS + 1})"
            ask(client, f"!j = Job(name='meanwhile', application=Executable(exe='/bin/sh'), "
                        f"backend={backend}, splitter=ArgSplitter(args=[['-c', {fills!r}]] + "
                        f"[['-c', {waits!r}]] * {SLEEPERS}))")
            assert ask(client, "!j.submit()") == "None", "the first submit"
            seen["pid"] = service_pid(root)
            ask(client, f"!k = Job(name='later', application=Executable(exe='/bin/true'), "
                        f"backend={backend}, "
                        f"splitter=ArgSplitter(args=[[str(i)] for i in range({SUBJOBS})]))")
            seen["j"], seen["k"] = ask(client, "j.id"), ask(client, "k.id")
            wait_for(lambda: ask(client, "j.subjob_counts") == f"{{'running': {SLEEPERS + 1}}}",
                     what="every subjob to run")
            filler = root / "workspace" / seen["j"] / "0" / "output" / "filler"

            # Subjob 0 fills the disk.
            (gate / "fill").touch()
            wait_for(lambda: os.statvfs(small).f_bavail == 0, what="the payload to fill the disk")
            seen["submit"] = _err(ask(client, "err(lambda: k.submit())"))
            seen["k_after_submit"] = ask(client, "(k.status.value, len(k.subjobs))")
            seen["edit"] = _err(ask(client, "err(lambda: setattr(k, 'comment', 'x' * 50000))"))
            seen["comment_after_edit"] = ask(client, "k.comment")
            script = base / "script.py"
            script.write_text(SCRIPT)
            seen["script"] = run_gl(root, "run", str(script), check_clean=False)
            seen["reads"] = {" ".join(args): run_gl(root, *args, check_clean=False)
                             for args in (("jobs", "--json"), ("show", seen["j"], "--json"),
                                          ("service", "status", "--json"))}
            # The other subjobs end while the disk is still full.
            (gate / "finish").touch()
            workspace = root / "workspace" / seen["j"]
            wait_for(lambda: not _payloads_in(workspace), what="the payloads to end")
            time.sleep(1.5)  # the monitor has tried (and failed) to record them by now
            seen["j_while_full"] = ask(client, "j.status.value")

            filler.unlink()  # room again
            wait_for(lambda: ask(client, "j.status.value") not in ("'running'", "'completing'"),
                     what="the outcomes to be recorded")
            seen["j_after"] = json.loads(run_gl(root, "show", seen["j"], "--json",
                                                check_clean=False).stdout)
            seen["next_submit"] = _err(ask(client, "err(lambda: k.submit())"))
            seen["next_wait"] = ask(client, "k.wait(timeout=60).value")
            seen["status"] = json.loads(run_gl(root, "service", "status", "--json",
                                               check_clean=False).stdout)
            seen["pid_after"] = service_pid(root)
            seen["jobs_after"] = json.loads(run_gl(root, "jobs", "--json", "--all",
                                                   check_clean=False).stdout)
        finally:
            (gate / "finish").touch()
            if filler is not None and filler.exists():
                filler.unlink()
            if client is not None:
                client.stdin.close()
                client.wait(timeout=30)
            finish_root(root, what="the full disk's service")
        seen["fstest"] = fstest(root / "repository" / "jobs.fs")
        seen["histories"] = _histories(root)
        seen["log"] = (root / "log").read_text().splitlines()
        seen["service_log"] = (root / "service.log").read_text()
    yield seen


def _histories(root: Path) -> dict[str, list[str]]:
    """Every job's and subjob's history (the statuses it went to, in order) and status."""
    repository = open_repository(Config.from_env(root=str(root)), read_only=True)
    found: dict[str, list[str]] = {}
    try:
        conn = repository.connect()
        for job in conn.jobs:
            for one in [job, *(job._subjobs.values() if job._subjobs is not None else ())]:
                found[one.fqid] = [entry[2] for entry in one.history] + [one.status.value]
        conn.close()
    finally:
        repository.close()
    return found


def test_a_submit_that_cannot_be_written_fails_in_one_line_and_leaves_the_job_as_it_was(full):
    kind, message = full["submit"]
    assert kind == "DiskFull", message
    assert len(message.splitlines()) == 1
    assert "no space left on " in message and "/small (which holds " in message, message
    assert "jobs.fs" in message and "free space there" in message, message
    # Nothing half-written: still new, not split, nothing in submitting.
    assert full["k_after_submit"] == "('new', 0)"


def test_an_edit_that_cannot_be_written_fails_in_one_line_and_is_undone(full):
    kind, message = full["edit"]
    assert kind == "DiskFull" and len(message.splitlines()) == 1, message
    assert "nothing of 'edit' was written" in message, message
    assert full["comment_after_edit"] == "''"


def test_a_script_gets_the_same_one_line_and_exit_1(full):
    result = full["script"]
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no space left on " in lines[0], result.stderr
    # Whether its job could still be registered (a commit small enough for the room left
    # in the database's last page) or not, nothing of its submit is there.
    mine = [row for row in full["jobs_after"] if row["name"] == "from-a-script"]
    assert all(row["status"] == "new" and not row["subjobs"] for row in mine), mine


def test_reads_answer_while_the_disk_is_full(full):
    for args, result in full["reads"].items():
        assert result.returncode == 0, (args, result.stderr)
        json.loads(result.stdout)
    assert full["reads"]["service status --json"].stdout
    # The monitor could not record what ended meanwhile: it waited for room.
    assert full["j_while_full"] in ("'running'", "'completing'"), full["j_while_full"]


def test_a_payload_that_fills_the_disk_fails_only_its_own_subjob(full):
    subjobs = {row["fqid"]: row for row in full["j_after"]["subjob_list"]}
    filler = subjobs.pop(f"{full['j']}.0")
    assert filler["status"] == "failed" and filler["exit_code"] == 1, filler
    assert {row["status"] for row in subjobs.values()} == {"completed"}, subjobs
    assert {row["exit_code"] for row in subjobs.values()} == {0}
    assert full["j_after"]["status"] == "failed"  # the master: one subjob failed


def test_once_there_is_room_again_everything_goes_on(full):
    assert full["next_submit"] is None
    assert full["next_wait"] == "'completed'"
    # The same service all along, ready; the monitor recorded what it had held back.
    assert full["pid_after"] == full["pid"] and full["status"]["ready"], full["status"]
    assert "the disk has room again: recorded what was held back" in full["service_log"]
    # A failed commit or log line is one line, never a traceback.
    for noise in ("--- Logging error ---", "OSError: [Errno 28]", "DiskFull"):
        assert noise not in full["service_log"], full["service_log"][-3000:]
    for row in full["jobs_after"]:
        assert row["status"] not in ACTIVE, row
        assert row["status"] != "new" or not row["subjobs"], row


def as_kept(statuses: list[str]) -> list[str]:
    """A master's statuses in the queue log, less the flips its history takes back
    (``lifecycle._record_derived``: a derived move between two statuses of work under
    way that undoes the one before; the log keeps both)."""
    kept: list[str] = []
    for status in statuses:
        if len(kept) >= 2 and status == kept[-2] and {status, kept[-1]} <= UNDER_WAY:
            kept.pop()
        else:
            kept.append(status)
    return kept


def test_the_database_and_the_queue_log_hold_every_change(full):
    checked = full["fstest"]
    assert checked.returncode == 0, (checked.stdout, checked.stderr)
    logged: dict[str, list[str]] = {}
    for line in full["log"]:
        _, _, _, fqid, status = line.split(" ", 5)[:5]
        logged.setdefault(fqid, []).append(status)
    histories = full["histories"]
    assert histories, "no job read back"
    for fqid, statuses in histories.items():
        *moves, now = statuses
        expected = logged.get(fqid, [])
        assert (expected if "." in fqid else as_kept(expected)) == moves, fqid
        assert not moves or moves[-1] == now, fqid
    assert set(logged) <= set(histories)

