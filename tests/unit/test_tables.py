"""What a job looks like (issue 20, points 5 and 6), pure: the one line of ``repr(j)`` and
of ``j.submit()``'s value, the tree at the prompt, a list of jobs as one table through
IPython's own printer, and tables whose columns fit what they hold (no number cut), count
in the singular and plural, and say how to see what they leave out."""

from __future__ import annotations

import argparse
import datetime
import time

import pytest
from IPython.core.formatters import PlainTextFormatter

from ganga_like.cli.parser import _since, build_parser
from ganga_like.gpi.ipython import job_list_printer
from ganga_like.model.counts import StatusCounts
from ganga_like.model.job import Job, Submitted
from ganga_like.model.lifecycle import set_status
from ganga_like.model.slices import JobSlice
from ganga_like.model.table import (
    clip,
    duration,
    job_row,
    jobs_listing,
    render,
    run_seconds,
    subjob_row,
)


def _mixed_master(make_master, n: int = 50) -> Job:
    """Job 3 'sim' of ``n`` subjobs: 7 failed (exit 3, a reason), 1 killed, the rest
    completed but for 10 still running."""
    master = make_master(n, job_id=3)
    master.name = "sim"
    for i, sub in enumerate(master.subjobs):
        for status in ("submitting", "submitted", "running"):
            set_status(sub, status)
        if i < 7:
            set_status(sub, "failed")
            sub.exit_code, sub.reason = 3, "exit code 3:\nno such file"
        elif i == 7:
            set_status(sub, "killed")
        elif i < n - 10:
            set_status(sub, "completing")
            set_status(sub, "completed")
            sub.exit_code = 0
    return master


def _plain_formatter() -> PlainTextFormatter:
    """IPython's own text formatter, with the list printers the shell's extension adds."""
    formatter = PlainTextFormatter()
    for kind in (list, tuple):
        formatter.for_type(kind, job_list_printer(formatter.for_type(kind)))
    return formatter


# --- one line ------------------------------------------------------------------------------


def test_repr_of_a_job_is_one_line_and_print_of_a_list_a_list_of_lines(make_master, make_job_in):
    master = _mixed_master(make_master)
    single = make_job_in("failed", job_id=4)
    single.exit_code, single.reason = 2, "exit code 2"
    assert repr(master) == ("<Job 3 'sim': running, 50 subjobs "
                            "(running:10 failed:7 killed:1 completed:32)>")
    assert repr(single) == "<Job 4: failed, exit 2, exit code 2>"
    assert str([master, single]) == f"[{master!r}, {single!r}]"
    assert "\n" not in str([master, single])
    assert str(master).startswith("Job (") and "application = Executable (" in str(master)


def test_submit_returns_one_shown_as_what_was_submitted(make_master, make_job_in):
    done = Submitted(make_master(50, job_id=3))
    assert done == 1 and done and isinstance(done, int)  # Ganga's value: `if j.submit():`
    assert repr(done) == str(done) == "job 3 submitted: 50 subjobs"
    assert done.job.id == 3 and done + 1 == 2
    assert repr(Submitted(make_job_in("completed", job_id=8), finished=True)) == \
        "job 8 submitted; now completed"
    one = make_master(1, job_id=9)
    assert repr(Submitted(one)) == "job 9 submitted: 1 subjob"


def test_the_prompt_shows_a_job_as_its_tree_and_inside_a_container_as_its_line(make_master):
    master = _mixed_master(make_master)
    formatter = _plain_formatter()
    assert formatter(master) == str(master)  # `j` alone: the whole tree, as in Ganga
    assert formatter({"a": master}) == "{'a': " + repr(master) + "}"
    assert formatter(Submitted(master)) == "job 3 submitted: 50 subjobs"


def test_the_prompt_shows_a_list_of_jobs_as_one_table(make_master, make_job_in):
    master = _mixed_master(make_master)
    single = make_job_in("completed", job_id=4)
    shown = _plain_formatter()([master, single])
    lines = shown.splitlines()
    assert lines[0].split()[:5] == ["fqid", "status", "name", "subjobs", "runtime"]
    assert [line.split()[0] for line in lines[2:-1]] == ["3", "4"] and lines[-1] == "2 jobs"
    assert _plain_formatter()((single,)).splitlines()[-1] == "1 job"
    subs = _plain_formatter()(list(master.subjobs)[:3]).splitlines()  # subjobs: their columns
    assert subs[0].split() == ["fqid", "status", "exit", "detail", "args", "reason"]
    assert subs[-1] == "3 subjobs"
    mixed = _plain_formatter()([master, 1])  # not all jobs: IPython's list, each job a line
    assert mixed.startswith(f"[{master!r},") and "fqid" not in mixed
    assert _plain_formatter()([]) == "[]"


# --- tables ---------------------------------------------------------------------------------


def test_no_count_is_cut_and_text_is_cut_with_an_ellipsis(make_master):
    master = _mixed_master(make_master)
    master.comment = "a comment far longer than its column may ever be shown, really"
    table = render([job_row(master)], "1 job")
    assert "running:10 failed:7 killed:1 completed:32" in table
    row = table.splitlines()[2]
    assert row.endswith("  a comment far longer than its c…")  # its 32 characters
    header = table.splitlines()[0]
    assert table.splitlines()[1] == "-" * len(header)


def test_columns_fit_their_content():
    rows = [("12345", "completed", "n", "", "", "Executable", "Local", ""),
            ("7", "new", "", "", "", "Executable", "Local", "")]
    lines = render(rows).splitlines()
    assert lines[0].startswith("fqid   status     name  subjobs  runtime  application")
    assert lines[2].startswith("12345  completed  n")


def test_a_subjob_table_has_exit_codes_reasons_and_the_arguments(make_master):
    master = _mixed_master(make_master)
    text = repr(master.subjobs)
    lines = text.splitlines()
    assert lines[0].split() == ["fqid", "status", "exit", "detail", "args", "reason"]
    assert len(lines) == 2 + 20 + 2
    assert lines[2].split() == ["3.0", "failed", "3", "0", "exit", "code", "3:", "no", "such", "file"]
    assert lines[-2] == ("the first 20 of 50 subjobs: running:10 failed:7 killed:1 completed:32")
    assert lines[-1] == ("the rest: jobs(3).subjobs[20:]; by status: "
                         "jobs(3).subjobs.select(status='failed')")
    rest = master.subjobs[20:]  # what the footer says: a slice, shown as a subjob table
    assert isinstance(rest, JobSlice) and len(rest) == 30
    assert repr(rest).splitlines()[-1] == "30 subjobs"
    assert repr(master.subjobs.select(status="failed")).splitlines()[-1] == "7 subjobs"


def test_a_small_master_shows_every_subjob_and_counts_in_the_singular(make_master):
    master = make_master(1, job_id=5)
    assert repr(master.subjobs).splitlines()[-1] == "1 subjob: new:1"
    assert repr(JobSlice([master])).splitlines()[-1] == "1 job"
    assert jobs_listing([], "templates").splitlines()[-1] == "0 templates"


def test_long_arguments_keep_their_end(make_master):
    from ganga_like.model.application import Executable
    from ganga_like.model.splitters import ArgSplitter

    master = Job(application=Executable(exe="/bin/sh"),
                 splitter=ArgSplitter(args=[["-c", "x" * 60, str(i)] for i in range(12)]))
    master.id = 6
    from ganga_like.engine.core import _split

    _split(master)
    args = subjob_row(master.subjobs[11])[4]  # the args column
    assert args.startswith("-c x") and args.endswith(" 11")
    shown = repr(master.subjobs).splitlines()[13]
    assert shown.startswith("6.11  new") and shown.endswith("x 11") and "…" in shown
    assert len(clip(args, 40, keep_end=True)) == 40


class _Timed:
    """A job as the run-time column reads it: a status and j.time's stamps."""

    def __init__(self, status: str, **stamps: float) -> None:
        from ganga_like.status import Status

        self.status = Status(status)
        base = datetime.datetime(2026, 12, 6, 12, 0, 0)
        self.time = argparse.Namespace(timestamps={
            k: base + datetime.timedelta(seconds=v) for k, v in stamps.items()})


def test_the_run_time_is_from_start_to_end_or_now():
    now = datetime.datetime(2026, 12, 6, 14, 0, 0)
    assert run_seconds(_Timed("new")) is None
    assert run_seconds(_Timed("completed", backend_running=10, backend_final=75, final=76)) == 65
    assert run_seconds(_Timed("killed", backend_running=10, final=40)) == 30
    assert run_seconds(_Timed("running", backend_running=0), now=now) == 7200
    assert [duration(s) for s in (None, 7, 754, 3723, 2 * 86400 + 3 * 3600 + 245)] == \
        ["", "0:07", "12:34", "1:02:03", "2-03:04:05"]


def test_a_big_master_is_shown_by_its_counts_without_reading_its_subjobs():
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"the subjobs were read ({name})")

    job = Job()
    job.id = 5
    job._subjobs = Untouchable()
    job._counts = StatusCounts({"completed": 9998, "failed": 2})
    assert repr(job) == "<Job 5: failed, 10000 subjobs (failed:2 completed:9998)>"
    assert "failed:2 completed:9998" in render([job_row(job)])


# --- jobs --since ------------------------------------------------------------------------------


def test_since_takes_a_duration_or_a_date_and_refuses_the_rest_naming_the_forms(capsys):
    before = time.time()
    assert abs(_since("2h").when - (before - 7200)) < 5 and _since("2h").words == "created in the last 2h"
    assert abs(_since("1h30m").when - (before - 5400)) < 5
    day = _since("2026-12-06")
    assert day.when == datetime.datetime(2026, 12, 6).timestamp() and day.words == "created since 2026-12-06"
    assert _since("2026-12-06T14:30").when == datetime.datetime(2026, 12, 6, 14, 30).timestamp()
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["jobs", "--since", "yesterday"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "'yesterday'" in error and "2h" in error and "2026-12-06" in error
