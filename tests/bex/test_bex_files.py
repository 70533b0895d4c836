"""The queue directory written from entries (no database, no Ray): byte for byte, private,
idempotent, atomic where it must be, history and transcripts as BEX keeps them."""

from __future__ import annotations

import os
import stat
import time

import pytest

from ganga_like.backends.runtime import status_file as sf
from ganga_like.bex.entry import Entry, bex_job_id, parse_stat, stat_text
from ganga_like.bex.files import PREP_DONE, QueueDir, dir_name

T0 = 1_765_000_000.0


def entry(tmp_path, status, detail, code, attempt=1, time_=T0, message="", prep=False,
          hosts=("n1",), name="job-a", steps=()):
    return Entry("7.0", name, hosts, status, detail, code, message, time_, attempt,
                 str(tmp_path / "ws" / "7" / "0"), prep, steps)


@pytest.fixture
def queue(tmp_path):
    os.makedirs(tmp_path / "ws" / "7" / "0" / "output")
    return QueueDir(str(tmp_path / "queue"))


def log_lines(queue):
    with open(queue.log.path) as handle:
        return [line.split(" ", 2)[2] for line in handle.read().splitlines()]  # without the stamp


def test_names_sort_in_submission_order():
    fqids = ["2", "2.0", "2.1", "2.10", "10", "10.3", "123456", "123456.99999"]
    names = [bex_job_id(f) for f in fqids]
    assert names[:4] == ["00000002", "00000002.000000", "00000002.000001", "00000002.000010"]
    assert sorted(names) == names
    assert sorted(names, key=lambda n: n) == [bex_job_id(f) for f in
                                              sorted(fqids, key=lambda f: [int(p) for p in f.split(".")])]


def test_the_stat_file_byte_for_byte():
    assert stat_text(T0 + 0.7, "FAILED", "exit code 3\nsee the log") == (
        "Time: 1765000000\nStatus: FAILED\nMessage: exit code 3 see the log\n")
    assert stat_text(T0, "NEW", "") == "Time: 1765000000\nStatus: NEW\n"
    assert parse_stat("Time: 1\nStatus: RUN\nMessage: a: b\n") == {
        "Time": "1", "Status": "RUN", "Message": "a: b"}


def test_an_entry_is_queued_on_its_host_privately(queue, tmp_path):
    os.umask(0o022)
    queue.write(entry(tmp_path, "submitted", "Queued", "NEW", message="waiting"), "ID: job-a\n\ntrue\n")
    host = tmp_path / "queue" / "hosts" / "n1"
    assert (tmp_path / "queue" / "jobs" / "job-a.job").read_text() == "ID: job-a\n\ntrue\n"
    assert os.readlink(host / "job-a.job") == "../../jobs/job-a.job"
    assert (host / "job-a.job").read_text() == "ID: job-a\n\ntrue\n"
    assert (host / "job-a.stat").read_text() == "Time: 1765000000\nStatus: NEW\nMessage: waiting\n"
    for path in [tmp_path / "queue", tmp_path / "queue" / "jobs", tmp_path / "queue" / "hosts", host]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    for path in [host / "job-a.stat", host / "job-a.log", tmp_path / "queue" / "jobs" / "job-a.job",
                 tmp_path / "queue" / "log"]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert log_lines(queue) == ["n1 job-a NEW waiting"]


def test_a_code_is_logged_once_and_host_lines_surround_it(queue, tmp_path):
    steps = [("submitted", "Queued", "NEW"), ("submitted", "Verifying", "NEW"),
             ("submitted", "Starting", "SEND"), ("running", "Running", "RUN"),
             ("running", "Running", "RUN"), ("completed", "Done", "OK")]
    for i, (status, detail, code) in enumerate(steps):
        queue.write(entry(tmp_path, status, detail, code, time_=T0 + i), "ID: job-a\n\ntrue\n")
    assert log_lines(queue) == ["n1 job-a NEW", "n1 - PING", "n1 - INIT", "n1 job-a SEND",
                                "n1 job-a RUN", "n1 job-a OK", "n1 - DONE"]
    host = tmp_path / "queue" / "hosts" / "n1"
    assert not os.path.lexists(host / "job-a.stat") and not os.path.lexists(host / "job-a.job")
    # Written again (a repair after a crash): nothing comes back, nothing is logged twice.
    queue.write(entry(tmp_path, "completed", "Done", "OK", time_=T0 + 5), "ID: job-a\n\ntrue\n")
    assert not os.path.lexists(host / "job-a.stat") and len(log_lines(queue)) == 7


def test_verifying_and_pending_say_ping_and_locked_for_the_host(queue, tmp_path):
    queue.write(entry(tmp_path, "submitted", "Pending", "NEW"), "x")
    queue.write(entry(tmp_path, "submitted", "Verifying", "SEND", time_=T0 + 1), "x")
    assert log_lines(queue) == ["n1 - LOCKED", "n1 job-a NEW", "n1 - PING", "n1 job-a SEND"]


def test_history_keeps_an_ok_jobs_files(tmp_path):
    os.makedirs(tmp_path / "ws" / "7" / "0" / "output")
    queue = QueueDir(str(tmp_path / "queue"), keep_history=True)
    (tmp_path / "ws" / "7" / "0" / "output" / "stdout").write_text("hello\n")
    queue.write(entry(tmp_path, "running", "Running", "RUN"), "ID: job-a\n\ntrue\n")
    queue.write(entry(tmp_path, "completed", "Done", "OK", time_=T0 + 2, message="exit 0"), "x")
    history = tmp_path / "queue" / "history" / "n1"
    assert sorted(os.listdir(history)) == ["job-a.job", "job-a.log", "job-a.stat"]
    assert os.listdir(tmp_path / "queue" / "hosts" / "n1") == []
    assert (history / "job-a.stat").read_text() == "Time: 1765000002\nStatus: OK\nMessage: exit 0\n"
    assert os.readlink(history / "job-a.job") == "../../jobs/job-a.job"
    assert (history / "job-a.job").read_text() == "ID: job-a\n\ntrue\n"  # the first text is kept
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(T0 + 2))
    assert (history / "job-a.log").read_text() == (
        f"=== attempt 1 on n1, ended {stamp}: OK exit 0\n--- stdout\nhello\n")


def test_a_move_to_history_cut_short_is_finished(tmp_path):
    os.makedirs(tmp_path / "ws" / "7" / "0" / "output")
    queue = QueueDir(str(tmp_path / "queue"), keep_history=True)
    queue.write(entry(tmp_path, "running", "Running", "RUN"), "x")
    host, history = tmp_path / "queue" / "hosts" / "n1", tmp_path / "queue" / "history" / "n1"
    os.makedirs(history)
    for suffix in (".log", ".stat"):  # moved when the service was killed; the link was not
        os.replace(host / f"job-a{suffix}", history / f"job-a{suffix}")
    lines = log_lines(queue)
    queue.write(entry(tmp_path, "completed", "Done", "OK", time_=T0 + 2), "x")
    assert os.listdir(host) == [] and sorted(os.listdir(history)) == ["job-a.job", "job-a.log",
                                                                      "job-a.stat"]
    assert log_lines(queue) == lines  # nothing said twice


def test_the_transcript_keeps_every_attempt_once(queue, tmp_path):
    out = tmp_path / "ws" / "7" / "0" / "output"
    (out / "stdout").write_text("first\n")
    (out / "stderr").write_text("boom")
    failed = entry(tmp_path, "failed", "Done", "FAILED", message="exit code 3")
    queue.write(failed, "x")
    queue.write(failed, "x")  # again: not appended twice
    (out / "stdout").write_text("second\n")
    (out / "stderr").write_text("")
    queue.write(entry(tmp_path, "submitting", "", "NEW", attempt=2, time_=T0 + 3), "x")
    queue.write(entry(tmp_path, "failed", "Done", "FAILED", attempt=2, time_=T0 + 4,
                      message="exit code 4"), "x")
    text = (tmp_path / "queue" / "hosts" / "n1" / "job-a.log").read_text()
    first = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(T0))
    second = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(T0 + 4))
    assert text == (f"=== attempt 1 on n1, ended {first}: FAILED exit code 3\n--- stdout\nfirst\n"
                    f"--- stderr\nboom\n"
                    f"=== attempt 2 on n1, ended {second}: FAILED exit code 4\n--- stdout\nsecond\n")
    assert log_lines(queue) == ["n1 job-a FAILED exit code 3", "n1 - DONE", "n1 job-a NEW",
                                "n1 job-a FAILED exit code 4", "n1 - DONE"]


def test_prep_shows_until_the_run_says_it_ended(queue, tmp_path):
    running = entry(tmp_path, "running", "Running", "RUN", prep=True)
    assert queue.write(running, "x") == "PREP"
    sf.StatusFile(str(tmp_path / "ws" / "7" / "0" / "status")).set(PREP_DONE, "prep exited 0")
    assert queue.write(running, "x", now=T0 + 9) == "RUN"
    assert log_lines(queue) == ["n1 job-a PREP", "n1 job-a RUN"]
    # The end of Prep is no status change: RUN is dated when it was seen, not when it ran.
    assert (tmp_path / "queue" / "hosts" / "n1" / "job-a.stat").read_text().startswith(
        "Time: 1765000009\nStatus: RUN\n")


def test_a_change_in_the_second_of_the_last_write_is_dated_by_itself(queue, tmp_path):
    """A run that ends in the second its start was written: the .stat says when it ended
    (the history's time), not when the writer got to it."""
    queue.write(entry(tmp_path, "running", "Running", "RUN", time_=T0 + 0.2), "x")
    queue.write(entry(tmp_path, "failed", "Failed", "FAILED", time_=T0 + 0.7), "x", now=T0 + 1.4)
    stat = tmp_path / "queue" / "hosts" / "n1" / "job-a.stat"
    assert stat.read_text().startswith("Time: 1765000000\nStatus: FAILED\n")


def test_a_stat_is_replaced_whole(queue, tmp_path):
    """The .stat is renamed into place: a reader sees the old file or the new, and no
    temporary file is left beside it."""
    queue.write(entry(tmp_path, "submitted", "Queued", "NEW"), "x")
    host = tmp_path / "queue" / "hosts" / "n1"
    before = os.stat(host / "job-a.stat").st_ino
    queue.write(entry(tmp_path, "running", "Running", "RUN", time_=T0 + 1), "x")
    assert os.stat(host / "job-a.stat").st_ino != before
    assert sorted(os.listdir(host)) == ["job-a.job", "job-a.log", "job-a.stat"]


def test_an_entry_without_a_host_yet_has_its_job_file_only(queue, tmp_path):
    assert queue.write(entry(tmp_path, "submitted", "Queued", "NEW", hosts=()), "ID: job-a\n\nx\n") == ""
    assert os.listdir(tmp_path / "queue" / "jobs") == ["job-a.job"]
    assert not os.path.exists(tmp_path / "queue" / "hosts")


def test_an_id_is_claimed_once(queue):
    assert queue.claim("b", "ID: b\n\none\n")
    assert not queue.claim("b", "ID: b\n\ntwo\n")
    assert open(queue.job_file("b")).read() == "ID: b\n\none\n"
    queue.unclaim("b")
    assert not queue.issued("b")


def test_a_code_passed_between_two_writes_is_logged_in_its_place(queue, tmp_path):
    """A short job is read after several commits: the codes its status changes gave on
    the way (RUN) are logged with their own times, once each, before the code it shows."""
    queue.write(entry(tmp_path, "submitted", "Queued", "NEW", steps=((T0, "NEW", ""),)), "x")
    steps = ((T0, "NEW", ""), (T0 + 1, "RUN", "running on n1"), (T0 + 2, "RUN", ""),
             (T0 + 3, "OK", ""))
    queue.write(entry(tmp_path, "completed", "Done", "OK", time_=T0 + 3, message="Done",
                      steps=steps), "x")
    with open(queue.log.path) as handle:
        stamps = [line[:19] for line in handle]
    assert log_lines(queue) == ["n1 job-a NEW", "n1 job-a RUN running on n1", "n1 job-a OK Done",
                                "n1 - DONE"]
    assert stamps[1] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(T0 + 1))


def test_a_code_passed_and_still_shown_is_logged_once(queue, tmp_path):
    """Seen first while completing (RUN, the detail 'Done'): RUN is logged once, with the
    time and note of the change that gave it."""
    queue.write(entry(tmp_path, "submitted", "Starting", "SEND", steps=((T0, "NEW", ""),)), "x")
    steps = ((T0, "NEW", ""), (T0 + 1, "RUN", "running on n1"), (T0 + 2, "RUN", ""))
    queue.write(entry(tmp_path, "completing", "Done", "RUN", time_=T0 + 2, message="Done",
                      steps=steps), "x")
    assert log_lines(queue) == ["n1 - INIT", "n1 job-a SEND", "n1 job-a RUN running on n1"]


def test_a_running_subjob_whose_node_is_lost_is_noping_but_not_over(queue, tmp_path):
    queue.write(entry(tmp_path, "running", "Node lost: n1, payload state unknown", "NOPING",
                      message="Node lost: n1, payload state unknown"), "x")
    assert log_lines(queue) == ["n1 job-a NOPING Node lost: n1, payload state unknown"]
    assert (tmp_path / "queue" / "hosts" / "n1" / "job-a.log").read_text() == ""  # no attempt ended


def test_a_rewrite_of_an_unchanged_entry_touches_nothing(queue, tmp_path):
    running = entry(tmp_path, "running", "Running", "RUN")
    queue.write(running, "x")
    path = tmp_path / "queue" / "hosts" / "n1" / "job-a.stat"
    before = (os.stat(path).st_ino, path.read_text(), log_lines(queue))
    queue.write(running, "x", now=T0 + 60)  # a repair after a restart: the same state
    assert (os.stat(path).st_ino, path.read_text(), log_lines(queue)) == before


@pytest.mark.parametrize(("host", "shown"), [("n1", "n1"), ("rack/7", "rack%2F7"), ("..", "%2E%2E"),
                                             ("50%", "50%25"), (".", "%2E")])
def test_a_host_name_never_leaves_the_hosts_directory(host, shown):
    assert dir_name(host) == shown
    queue = QueueDir("/q")
    assert os.path.dirname(queue.host_dir(host)) == "/q/hosts"
