"""What reading a big master costs, on a real FileStorage, counted in records loaded.

``why()``: its counts give the totals, and only the first waiting subjobs are read for
their reasons (a master of 100,000 read every record: two minutes through the service
while it ran). ``ganga-like show``: the rows it shows (``len()`` of the subjobs' tree read
every bucket of it: 6 s through the service at 100,000)."""

from __future__ import annotations

import pytest

from ganga_like.config import Config
from ganga_like.engine.core import _split
from ganga_like.model.job import WHY_READS, Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.splitters import ArgSplitter
from ganga_like.model.why import explain
from ganga_like.repository import open_repository

WAITING = WHY_READS + 500
DONE = 300
FAILED = 200


@pytest.fixture
def master(tmp_path):
    repo = open_repository(Config(root=str(tmp_path / "gl")))
    conn = repo.connect()
    n = WAITING + DONE + FAILED
    job = Job(name="big", splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))

    def work() -> None:
        conn.jobs.add(job)
        _split(job)
        for sub in job._subjobs.values():
            set_status(sub, "submitting")
            if sub.id < WAITING:
                set_status(sub, "submitted")
                # Two reasons, interleaved, so that the grouping of what is read shows.
                sub.backend_detail = "ConcurrencyLimit" if sub.id % 3 else "Resources"
                sub.backend_note = "Local's concurrency limit 2 reached" if sub.id % 3 else "needs 1 GPU"
            elif sub.id < WAITING + DONE:
                for status in ("submitted", "running", "completing", "completed"):
                    set_status(sub, status)
            else:
                set_status(sub, "failed", note="exit 1")

    conn.write(work)
    yield conn, job
    conn.close()
    repo.close()


def test_a_masters_why_counts_every_subjob_and_groups_the_first_waiting(master):
    conn, job = master
    conn.refresh()
    conn.conn.cacheMinimize()
    conn.conn.getTransferCounts(clear=True)
    report = conn.jobs.get(0).why()
    loaded = conn.conn.getTransferCounts()[0]

    total = WAITING + DONE + FAILED
    assert report.summary == (
        f"0 is submitted: {WAITING} of {total} subjobs wait; {DONE} completed, {FAILED} failed; "
        f"the reasons of the first {WHY_READS} waiting below, the other {WAITING - WHY_READS} "
        "not read (j.subjobs.select(status='submitted') lists them)")
    # The groups are exactly those of the first WHY_READS waiting subjobs, as a full scan
    # of those subjobs says.
    first = [sub for sub in job._subjobs.values() if sub.id < WHY_READS]
    assert report.reasons == explain(job, first).reasons
    assert sum(len(reason.fqids) for reason in report.reasons) == WHY_READS
    assert [reason.code for reason in report.reasons] == ["ConcurrencyLimit", "Resources"]
    # What it read: those subjobs and the buckets holding them, the counts and the index:
    # not the other subjobs.
    assert loaded < WHY_READS + 200, loaded


def test_a_master_with_few_waiting_groups_them_all(master):
    conn, job = master

    def finish_most() -> None:
        for sub in job._subjobs.values(10, WAITING - 1):
            for status in ("running", "completing", "completed"):
                set_status(sub, status)

    conn.write(finish_most)
    report = conn.jobs.get(0).why()
    assert report.summary == (f"0 is submitted: 10 of {WAITING + DONE + FAILED} subjobs wait; "
                              f"{WAITING - 10 + DONE} completed, {FAILED} failed")
    assert sum(len(reason.fqids) for reason in report.reasons) == 10


def test_show_reads_the_rows_it_shows_not_the_whole_tree(master):
    from ganga_like.cli.render import show_text

    conn, job = master
    conn.refresh()
    conn.conn.cacheMinimize()
    conn.conn.getTransferCounts(clear=True)
    text = show_text(conn.jobs.get(0), None, 20, 5)
    loaded = conn.conn.getTransferCounts()[0]
    assert f"subjobs (the first 20 of {WAITING + DONE + FAILED}):" in text
    # The master, its counts, the first bucket(s) and the 20 rows shown: not the ~50
    # buckets of the whole tree (it has 3,000 subjobs).
    assert loaded < 40, loaded
