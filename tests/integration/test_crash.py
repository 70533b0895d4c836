"""SIGKILL during commits: every transaction is whole or absent after a reopen (the
status indexes included); SIGKILL while the indexes are built: built whole next time.

A child process commits a master of 10,000 subjobs, then moves them through
submitting -> submitted -> running -> completed in batches of 1,000 (one
transaction per batch), printing a line after each commit. The test kills it
with SIGKILL at a random moment, reopens the FileStorage and checks that the
stored state is one the program could have committed.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest

from ganga_like.errors import RepositoryLocked
from ganga_like.repository import open_repository
from ganga_like.status import Status, master_status, master_status_of
from tests.index_helpers import big_master

N_SUBJOBS = 10_000
BATCH = 1_000
STEPS = ("submitting", "submitted", "running", "completed")
BATCH_COMMITS = len(STEPS) * N_SUBJOBS // BATCH  # 40

WRITER = f"""
import os
from ganga_like.config import Config
from ganga_like.repository import open_repository
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.splitters import ArgSplitter
from ganga_like.engine.core import _split

N, BATCH, STEPS = {N_SUBJOBS}, {BATCH}, {STEPS!r}
repo = open_repository(Config(root=os.environ["GL_ROOT"]))
conn = repo.connect()

def create():
    master = Job(name="crash", splitter=ArgSplitter(args=[[str(i)] for i in range(N)]))
    conn.jobs.add(master)
    _split(master)

conn.write(create, note="create")
print("COMMIT 0", os.getpid(), flush=True)
master = conn.jobs.get(0)
done = 0
for step in STEPS:
    for start in range(0, N, BATCH):
        def work():
            for sub in master._subjobs.values(start, start + BATCH - 1):
                set_status(sub, step, source="system")
        conn.write(work, note=f"{{step}} {{start}}")
        done += 1
        print("COMMIT", done, flush=True)
print("DONE", flush=True)
"""


def _kill_after(spawn_python, root: str, commits: int, extra_delay: float):
    """Start the writer; SIGKILL it ``extra_delay`` s after its ``commits``-th batch line.

    Returns (lines seen before the kill, the child's pid).
    """
    child = spawn_python(WRITER, GL_ROOT=root)
    lines: list[str] = []
    pid = None
    while True:
        line = child.stdout.readline()
        if not line:
            raise AssertionError("writer ended early:\n" + child.stderr.read())
        lines.append(line.strip())
        if line.startswith("COMMIT 0"):
            pid = int(line.split()[2])
        if line.startswith("COMMIT") and int(line.split()[1]) >= commits:
            break
    time.sleep(extra_delay)  # land somewhere inside a later transaction
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    # Lines printed after our last read but before the kill still count as committed.
    lines += [l.strip() for l in child.stdout.read().splitlines()]
    return lines, pid


def _check_whole_or_absent(config, printed_batches: int) -> None:
    repo = open_repository(config)  # must open: no RepositoryLocked, no traceback
    try:
        assert not repo.read_only
        conn = repo.connect()
        master = conn.jobs.get(0)
        subs = list(master.subjobs)
        assert len(subs) == N_SUBJOBS
        statuses = [Status(sub._status) for sub in subs]

        # Counts kept on the master equal a full recount, and so do both status indexes.
        recount = Counter(s.value for s in statuses)
        assert dict(master._counts.counts) == dict(recount)
        assert set(master._subjob_index.entries()) == {(s.id, s._status) for s in subs}
        assert set(conn.jobs.index.entries()) == {(0, master.status.value)}

        # Every subjob's status is its history's last entry, and the history is a chain.
        for sub in subs:
            chain = [Status.NEW.value] + [entry[2] for entry in sub.history]
            assert [entry[1] for entry in sub.history] == chain[:-1], sub.fqid
            assert sub._status == chain[-1], sub.fqid

        # Each batch was one transaction: its 1,000 subjobs are all at the same step.
        for start in range(0, N_SUBJOBS, BATCH):
            batch = set(statuses[start:start + BATCH])
            assert len(batch) == 1, (start, batch)

        # The number of whole batches on disk is what the writer printed, or one more
        # (killed between the commit and its print line).
        entries = sum(len(sub.history) for sub in subs)
        assert entries % BATCH == 0
        assert entries // BATCH in (printed_batches, printed_batches + 1)

        # The master's derived status follows the rule, and its history agrees.
        assert master.status is master_status_of(statuses) is master_status(recount)
        if master.history:
            assert master.history[-1][2] == master.status.value
        else:
            assert master.status is Status.NEW
        conn.close()
    finally:
        repo.close()


@pytest.mark.slow
@pytest.mark.parametrize("window", [(1, 6), (15, 25), (30, BATCH_COMMITS - 2)],
                         ids=["early", "middle", "late"])
def test_sigkill_while_committing_leaves_every_transaction_whole_or_absent(
        spawn_python, config, window):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    commits = rng.randint(*window)
    delay = rng.uniform(0.0, 0.08)  # a batch commit takes tens of milliseconds
    lines, pid = _kill_after(spawn_python, config.root, commits, delay)
    printed = max(int(l.split()[1]) for l in lines if l.startswith("COMMIT"))
    assert "DONE" not in lines, f"the writer finished before the kill (seed {seed})"

    lock = config.filestorage_path + ".lock"
    assert os.path.exists(lock)  # the killed holder could not clean up
    try:
        _check_whole_or_absent(config, printed)
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}, killed {delay:.3f}s after batch {commits}: {exc}") from exc


def test_a_stale_lock_file_from_a_killed_holder_does_not_prevent_reopening(
        spawn_python, config, tmp_path):
    holder = spawn_python(
        """
        import os, time
        from ganga_like.config import Config
        from ganga_like.repository import open_repository
        from ganga_like.model.job import Job
        repo = open_repository(Config(root=os.environ["GL_ROOT"]))
        conn = repo.connect()
        conn.write(lambda: conn.jobs.add(Job(name="survivor")))
        print("HELD", flush=True)
        time.sleep(60)
        """,
        script=str(tmp_path / "holder.py"), GL_ROOT=config.root,
    )
    assert holder.stdout.readline().strip() == "HELD"
    with pytest.raises(RepositoryLocked):  # held while it lives
        open_repository(config)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)

    lock = config.filestorage_path + ".lock"
    with open(lock) as handle:
        assert handle.read().strip() == str(holder.pid)  # stale: names the dead holder
    repo = open_repository(config)
    try:
        assert not repo.read_only
        conn = repo.connect()
        assert [j.name for j in conn.jobs] == ["survivor"]
        conn.write(lambda: conn.jobs.get(0).__setattr__("comment", "after the crash"))
        assert conn.jobs.get(0).comment == "after the crash"
        conn.close()
    finally:
        repo.close()


BUILDER = """
import logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from ganga_like.config import Config
from ganga_like.repository import open_repository
from ganga_like.repository.index_build import ensure_indexes
repo = open_repository(Config(root=os.environ["GL_ROOT"]))
ensure_indexes(repo.connect())
print("DONE", flush=True)
"""


def _indexed_repository(config) -> None:
    """A master of 3,000 subjobs and 3,000 plain jobs, every eleventh failed, its indexes
    then marked wrong: the next build redoes them all."""
    repo = open_repository(config)
    conn = repo.connect()
    big_master(conn, 3_000, range(0, 3_000, 11), plain=True)
    index = conn.jobs.index
    conn.write(lambda: setattr(index, "complete", False))
    conn.close()
    repo.close()


@pytest.mark.slow
def test_sigkill_while_building_the_indexes_leaves_them_built_whole_at_the_next_start(
        spawn_python, config):
    from ganga_like.repository.index_build import ensure_indexes

    _indexed_repository(config)
    delay = random.uniform(0.0, 0.15)  # the build takes 0.2-1 s here: mostly inside it
    child = spawn_python(BUILDER, GL_ROOT=config.root)
    while "building the index" not in child.stdout.readline():
        pass
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    repo = open_repository(config)
    try:
        conn = repo.connect()
        ensure_indexes(conn)  # what the engine's next start does
        jobs = conn.jobs
        assert jobs.index.complete
        assert set(jobs.index.entries()) == {(j.id, j.status.value) for j in jobs}
        master = jobs.get(0)
        assert master._subjob_index.complete
        assert set(master._subjob_index.entries()) == {(s.id, s._status) for s in master.subjobs}
        assert master.subjobs.select(status="failed").ids() == list(range(0, 3_000, 11))
        assert master._subjob_index.readable  # (answered by the index's oids, not a scan)
        assert None not in master._subjob_index.oids_of(list(range(3_000)))
        conn.close()
    finally:
        repo.close()
