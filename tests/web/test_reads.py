"""What the web view's pages read, on a real FileStorage (no service, no Ray): pages and
cursors that together give every job and subjob once, filters that find every match
across pages however early their time budget stops them, counts that answer without
reading, and a job's queue-log lines."""

from __future__ import annotations

import pytest

from ganga_like.backends.local.config import Local
from ganga_like.engine.core import Engine
from ganga_like.engine.operations.submit import split
from ganga_like.errors import WebRefused
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.model.splitters import ArgSplitter
from ganga_like.web import reads
from ganga_like.web.query import listing

N_JOBS = 150
N_SUBJOBS = 500
FAILED = (7, 130, 131, 499)  # subjob ids that failed: early, in the middle, the last


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    from ganga_like.config import Config

    engine = Engine(Config.from_env(root=str(tmp_path_factory.mktemp("reads") / "gl")))
    master = Job(name="big", application=Executable(exe="/bin/true"), backend=Local(),
                 splitter=ArgSplitter(args=[[str(i)] for i in range(N_SUBJOBS)]))

    def build() -> None:
        for i in range(N_JOBS - 1):
            job = Job(name=f"sim-{i}" if i % 3 == 0 else f"other-{i}",
                      application=Executable(exe="/bin/true"), backend=Local())
            engine.jobs.add(job)
            if i % 10 == 0:
                for status in ("submitting", "submitted", "running", "failed"):
                    set_status(job, status, source="user")
        engine.jobs.add(master)
        split(master)
        for sub_id in FAILED:
            for status in ("submitting", "submitted", "running", "failed"):
                set_status(master._subjobs[sub_id], status, source="backend")

    engine.write(build, note="test: a repository")
    conn = engine.repository.connect()
    yield conn, master.id
    conn.close()
    engine.close()


def all_pages(read_page, args: dict[str, str], cursor: str, budget: float | None = None):
    """Every row, following the pages' cursors; and how many pages it took."""
    rows, pages = [], 0
    while True:
        page = read_page(listing(args)) if budget is None else read_page(listing(args), budget)
        rows += page.rows
        pages += 1
        if page.next_cursor is None:
            return rows, pages
        args = {**args, cursor: str(page.next_cursor)}


def test_the_jobs_list_pages_newest_first_through_every_job_once(repo):
    conn, _master = repo
    rows, pages = all_pages(lambda q: reads.jobs_page(conn, q), {"limit": "40"}, "before")
    assert [int(r["fqid"]) for r in rows] == list(range(N_JOBS - 1, -1, -1))
    assert pages == 4
    first = reads.jobs_page(conn, listing({}))
    assert first.total == N_JOBS and len(first.rows) == 50 and first.read == 50


def test_filters_of_the_jobs_list_find_every_match_even_with_no_time_to_read(repo):
    conn, _master = repo
    expected = [str(i) for i in range(N_JOBS - 2, -1, -1) if i % 3 == 0 and i % 10 == 0]
    for budget in (reads.SCAN_SECONDS, 0.0):  # 0: every page stops after 64 records
        rows, _ = all_pages(lambda q, b: reads.jobs_page(conn, q, b),
                            {"status": "failed", "name": "sim-*"}, "before", budget)
        assert [r["fqid"] for r in rows] == expected
    page = reads.jobs_page(conn, listing({"name": "nothing*"}), 0.0)
    assert page.rows == [] and page.stopped_early and page.total is None


def test_a_masters_subjobs_by_page_number_and_the_last_page(repo):
    conn, master_id = repo
    master = reads.job(conn, str(master_id))
    page = reads.subjobs_page(master, listing({"page": "10"}))
    assert [r["id"] for r in page.rows] == list(range(450, 500)) and page.total == N_SUBJOBS
    assert page.next_cursor is None and page.read == 50
    with pytest.raises(WebRefused) as past:
        reads.subjobs_page(master, listing({"page": "11"}))
    assert "page=11 is past the last page" in str(past.value) and "pages 1 to 10" in str(past.value)


def test_a_status_filter_finds_every_match_across_pages_and_budgets(repo):
    conn, master_id = repo
    master = reads.job(conn, str(master_id))
    for budget, limit in ((reads.SCAN_SECONDS, "50"), (0.0, "50"), (reads.SCAN_SECONDS, "2")):
        rows, pages = all_pages(lambda q, b: reads.subjobs_page(master, q, b),
                                {"status": "failed", "limit": limit}, "after", budget)
        assert [r["id"] for r in rows] == list(FAILED), (budget, limit)
    first = reads.subjobs_page(master, listing({"status": "failed"}))
    # Through the master's index of its subjobs by status: only the matches are read.
    assert first.read == len(FAILED) and first.next_cursor is None and first.total == len(FAILED)
    none = reads.subjobs_page(master, listing({"status": "running"}))
    assert none.rows == [] and none.read == 0 and none.total == 0  # from the counts alone
    # A master whose index is not built (an old repository before the engine's start):
    # the same rows, by reading the subjobs in order until the last match.
    index = master._subjob_index
    conn.write(lambda: setattr(index, "complete", False))
    try:
        for budget, limit in ((reads.SCAN_SECONDS, "50"), (0.0, "2")):
            rows, _ = all_pages(lambda q, b: reads.subjobs_page(master, q, b),
                                {"status": "failed", "limit": limit}, "after", budget)
            assert [r["id"] for r in rows] == list(FAILED), (budget, limit)
        first = reads.subjobs_page(master, listing({"status": "failed"}))
        assert first.read == FAILED[-1] + 1 and first.next_cursor is None  # stopped at the last
    finally:
        conn.write(lambda: setattr(index, "complete", True))


def test_a_status_filter_of_the_jobs_list_reads_only_the_jobs_it_shows(repo):
    conn, _master = repo
    # The master (the newest) is failed too: some of its subjobs failed.
    failed = [N_JOBS - 1] + [i for i in range(N_JOBS - 2, -1, -1) if i % 10 == 0]
    page = reads.jobs_page(conn, listing({"status": "failed", "limit": "3"}))
    assert [int(r["fqid"]) for r in page.rows] == failed[:3]
    assert page.read == 3 and page.total == len(failed)
    rows, _ = all_pages(lambda q: reads.jobs_page(conn, q), {"status": "failed", "limit": "4"},
                        "before")
    assert [int(r["fqid"]) for r in rows] == failed


def test_unknown_ids_are_one_line(repo):
    conn, master_id = repo
    for wanted, words in [("999", "no job 999"), (f"{master_id}.5000", "has 500 subjobs"),
                          ("x", "not a job id"), ("1.2.3", "not a job id")]:
        with pytest.raises(WebRefused) as refused:
            reads.job(conn, wanted)
        assert words in str(refused.value) and refused.value.fields["status"] == 404


def test_a_jobs_queue_log_lines(tmp_path):
    log = tmp_path / "log"
    log.write_text("".join(f"2026-12-06 07:00:0{i} host {fqid} running (monitor batch #{i})\n"
                           for i, fqid in enumerate(["3", "3.1", "30", "31.2", "3.12", "13"])))
    assert [line.split()[3] for line in reads.queue_log_lines(str(log), "3")] == ["3", "3.1", "3.12"]
    assert reads.queue_log_lines(str(log), "3", limit=1)[0].split()[3] == "3.12"
    assert reads.queue_log_lines(str(tmp_path / "none"), "3") == []
