"""kill, resubmit, remove, force_status, freeze, auto-resubmit, leaks: Ganga's verbs
with Ganga's semantics and its known bugs fixed, each refusal included."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest

from ganga_like.backends import base
from ganga_like.channel.origin import this_process
from ganga_like.errors import InvalidValue, JobNotFound, OperationRefused
from ganga_like.status import Status, history_entries

from .helpers import sh_job, statuses, wait_for


@pytest.fixture
def session(shared_session):
    """One engine for the module (``shared_session``, tests/conftest.py): each test works
    on jobs of its own and ends what it starts."""
    return shared_session


def _all_running(session, job, n):
    def check():
        session.refresh()
        return job.subjob_counts.get("running", 0) == n
    return check


def _alive(handle_tuple) -> bool:
    handle = base.Handle.from_tuple(handle_tuple)
    try:
        proc = psutil.Process(handle.pid)
        return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - handle.create_time) < 0.05
    except psutil.NoSuchProcess:
        return False


def test_kill_master_confirms_every_process_gone(session):
    job = sh_job(["sleep 30"] * 3, concurrency=3)
    session.submit(job)
    wait_for(_all_running(session, job, 3))
    handles = [sj.handle for sj in job.subjobs]
    session.kill(job)
    assert statuses(job) == ["killed"] * 3
    assert job.status is Status.KILLED
    assert not any(_alive(h) for h in handles)


def test_kill_one_subjob_leaves_siblings_running(session):
    job = sh_job(["sleep 30"] * 2, concurrency=2)
    session.submit(job)
    wait_for(_all_running(session, job, 2))
    session.kill(job.subjobs[0])
    assert statuses(job) == ["killed", "running"]
    assert job.status is Status.RUNNING
    session.kill(job)
    assert job.status is Status.KILLED


def test_strict_kill_of_a_process_ignoring_sigterm_waits_until_it_is_gone(session):
    job = sh_job(["trap '' TERM; echo armed; sleep 60"])
    session.submit(job)
    wait_for(_all_running(session, job, 1))
    sub = job.subjobs[0]
    wait_for(lambda: session.peek(sub).strip() == "armed")  # running is not yet trapping TERM
    handle = sub.handle
    fqid = sub.fqid
    seen_during_kill: list[str] = []
    done = threading.Event()

    def watch() -> None:
        conn = session.repository.connect()
        try:
            while not done.is_set():
                conn.refresh()
                seen_during_kill.append(conn.jobs.get(fqid).status.value)
                time.sleep(0.05)
        finally:
            conn.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    session.kill(job)
    took = time.monotonic() - started
    done.set()
    watcher.join()
    assert took >= 1.0, "the grace period must pass before escalating to SIGKILL"
    assert sub.status is Status.KILLED
    assert not _alive(handle)
    # While the process was alive nobody could read 'killed'.
    assert "killed" not in seen_during_kill[: max(1, int(len(seen_during_kill) * 0.5))]


def test_kill_refused_when_nothing_is_active(session):
    job = sh_job(["true"])
    session.submit(job)
    session.wait([job], timeout=30)
    with pytest.raises(OperationRefused, match="nothing to kill"):
        session.kill(job)


def test_resubmit_master_takes_failed_subjobs_only(session, tmp_path):
    flag = tmp_path / "flag"
    job = sh_job(["true", f"test -e {flag}", "exit 0"])
    session.submit(job)
    session.wait([job], timeout=30)
    assert statuses(job) == ["completed", "failed", "completed"]
    flag.touch()
    session.resubmit(job)
    assert session.wait([job], timeout=30) == [Status.COMPLETED]
    assert [sj.submit_counter for sj in job.subjobs] == [1, 2, 1]


def test_resubmit_master_with_nothing_failed_does_nothing_as_in_ganga(session):
    job = sh_job(["true"])
    session.submit(job)
    session.wait([job], timeout=30)
    session.resubmit(job)  # Ganga: "nothing to do for resubmit", no error
    session.refresh()
    assert job.status is Status.COMPLETED and job.subjobs[0].submit_counter == 1


def test_resubmit_killed_subjobs_by_option(session):
    job = sh_job(["sleep 30", "true"], concurrency=2)
    session.submit(job)
    wait_for(lambda: (session.refresh(), job.subjob_counts.get("running", 0) >= 1)[1])
    session.kill(job)
    counters = [sj.submit_counter for sj in job.subjobs]
    session.resubmit(job)  # killed ones need include_killed=True: nothing to do
    session.refresh()
    assert [sj.submit_counter for sj in job.subjobs] == counters
    session.resubmit(job, include_killed=True)
    session.refresh()
    assert job.status in (Status.SUBMITTED, Status.RUNNING)
    session.kill(job)


def test_resubmit_one_finished_subjob_while_siblings_run_makes_master_submitted(session):
    job = sh_job(["true", "sleep 30"], concurrency=2)
    session.submit(job)
    wait_for(lambda: (session.refresh(), statuses(job) == ["completed", "running"])[1])
    assert job.status is Status.RUNNING
    session.resubmit(job.subjobs[0])
    session.refresh()
    # No special case: the master is derived from its subjobs.
    assert job.status in (Status.SUBMITTING, Status.SUBMITTED, Status.RUNNING)
    wait_for(lambda: (session.refresh(), job.subjobs[0].status is Status.COMPLETED)[1])
    assert job.subjobs[0].submit_counter == 2
    session.kill(job)


def test_resubmit_running_subjob_needs_force_which_kills_it_first(session):
    job = sh_job(["sleep 30"])
    session.submit(job)
    wait_for(_all_running(session, job, 1))
    sub = job.subjobs[0]
    old = sub.handle
    with pytest.raises(OperationRefused, match="force=True"):
        session.resubmit(sub)
    session.resubmit(sub, force=True)
    assert not _alive(old)
    wait_for(lambda: (session.refresh(), sub.status is Status.RUNNING)[1])
    assert sub.handle != old and sub.submit_counter == 2
    assert [h[2] for h in sub.history].count("killed") == 1
    session.kill(job)


def test_remove_kills_first_and_deletes_workspace(session):
    job = sh_job(["sleep 30"])
    session.submit(job)
    wait_for(_all_running(session, job, 1))
    handle, workspace, job_id = job.subjobs[0].handle, job.workspace, job.id
    session.remove(job)
    assert not _alive(handle)
    assert not os.path.exists(workspace)
    with pytest.raises(JobNotFound):
        session.jobs.get(job_id)
    log = open(session.config.queue_log).read()
    assert f" {job_id} removed" in log
    # Read through the old reference, the master is removed, as a single job is (its
    # subjobs were killed: it once read 'killed'), and its history tells so once.
    assert job.status is Status.REMOVED
    entries = [e for e in history_entries(job.history) if e.dst == "removed"]
    assert len(entries) == 1 and entries[0].note == "remove()" and entries[0].src == "killed"
    assert log.count(f" {job_id} removed") == 1


def test_a_master_removed_while_active_reads_removed_and_its_runs_do_not_move_it(session):
    job = sh_job(["sleep 30", "sleep 30"], concurrency=2)
    session.submit(job)
    wait_for(_all_running(session, job, 2))
    session.remove(job, force=True)  # strict: killed first all the same
    assert job.status is Status.REMOVED
    assert [e.dst for e in history_entries(job.history)][-1] == "removed"


def test_subjobs_are_not_removable_alone(session):
    job = sh_job(["true"])
    session.submit(job)
    session.wait([job], timeout=30)
    with pytest.raises(OperationRefused, match="not removable alone"):
        session.remove(job.subjobs[0])


def test_relaxed_forced_removal_records_the_leak_and_leaks_reaps_it(session):
    job = sh_job(["sleep 60"], mode="relaxed")
    session.submit(job)
    wait_for(_all_running(session, job, 1))
    handle = job.subjobs[0].handle
    session.remove(job, force=True)  # relaxed: no kill, but the ledger remembers
    assert _alive(handle)
    found = session.leaks()
    assert [f["fqid"] for f in found] == [f"{job.id}.0"]
    reaped = session.leaks(reap=True)
    assert reaped and reaped[0]["reaped"]
    wait_for(lambda: not _alive(handle), timeout=10)
    assert session.leaks() == []


def test_force_status_failed_on_running_kills_first(session):
    job = sh_job(["sleep 30"])
    session.submit(job)
    wait_for(_all_running(session, job, 1))
    handle = job.subjobs[0].handle
    session.force_status(job, "failed")
    assert job.status is Status.FAILED
    assert not _alive(handle)
    session.force_status(job, "completed")
    assert job.status is Status.COMPLETED


def test_force_status_rejects_other_statuses_and_wrong_sources(session):
    job = sh_job(["true"])
    session.submit(job)
    session.wait([job], timeout=30)
    with pytest.raises(InvalidValue, match="'failed' or 'completed'"):
        session.force_status(job, "running")
    with pytest.raises(OperationRefused, match="only be forced from failed"):
        session.force_status(job, "completed")


def test_freeze_and_unfreeze(session):
    job = sh_job(["true", "exit 1"])
    session.submit(job)
    session.wait([job], timeout=30)
    session.freeze(job)
    assert statuses(job) == ["completed_frozen", "failed_frozen"]
    assert job.status is Status.COMPLETED  # all frozen: completed
    with pytest.raises(OperationRefused):
        session.resubmit(job.subjobs[1])
    session.unfreeze(job)
    assert statuses(job) == ["completed", "failed"]


def test_peek_names_the_files_there_are(session):
    job = sh_job(["echo hi"])
    session.submit(job)
    session.wait([job], timeout=30)
    with pytest.raises(InvalidValue, match="stderr"):
        session.peek(job.subjobs[0], file="nope")


@pytest.mark.parametrize("outside", ["/etc/passwd", "../../../repository/jobs.fs", "../status",
                                     "planted-link"])
def test_peek_reads_nothing_outside_the_jobs_output(session, outside):
    # The payload plants a link to /etc/passwd beside its stdout, in its output directory.
    job = sh_job(['ln -s /etc/passwd "$(dirname "$(readlink /proc/self/fd/1)")/planted-link"'])
    session.submit(job)
    session.wait([job], timeout=30)
    with pytest.raises(InvalidValue, match="output directory") as info:
        session.peek(job.subjobs[0], file=outside)
    assert "\n" not in str(info.value) and "root:" not in str(info.value)


def test_auto_resubmit_retries_flaky_subjobs_and_stops_at_five(session, tmp_path):
    counter = tmp_path / "count"
    flaky = f"echo x >> {counter}; test $(wc -l < {counter}) -ge 2"
    scripts = ["true"] * 10 + [flaky, "exit 1"]  # 2 of 12 fail: under a quarter
    job = sh_job(scripts, do_auto_resubmit=True)
    session.submit(job)

    def settled():
        session.refresh()
        return (job.subjobs[10].status is Status.COMPLETED
                and job.subjobs[11].auto_resubmit_count == 5
                and job.subjobs[11].status is Status.FAILED)

    wait_for(settled, timeout=60)

    assert job.subjobs[10].auto_resubmit_count == 1
    assert job.subjobs[11].submit_counter == 6
    assert job.status is Status.FAILED


def test_auto_resubmit_stops_when_a_quarter_have_failed(session):
    job = sh_job(["true", "true", "exit 1", "exit 1"], do_auto_resubmit=True)
    session.submit(job)
    session.wait([job], timeout=30)
    assert [sj.submit_counter for sj in job.subjobs] == [1, 1, 1, 1]


def test_unmonitor_is_refused_in_strict_mode(session):
    job = sh_job(["sleep 30"])
    session.submit(job)
    with pytest.raises(OperationRefused, match="strict mode keeps every job monitored"):
        session.unmonitor(job)
    session.kill(job)


def test_relaxed_unmonitor_stops_following_and_records_the_leak(session, tmp_path):
    import ray

    gate = tmp_path / "go"
    job = sh_job([f"while [ ! -e {gate} ]; do sleep 0.05; done"], mode="relaxed")
    session.submit(job)
    wait_for(_all_running(session, job, 1))
    session.unmonitor(job)
    handle = base.Handle.from_tuple(job.subjobs[0].handle)
    actor = session.backends.actor(job.backend)
    gate.touch()  # the payload ends; nobody follows it any more
    wait_for(lambda: ray.get(actor.held.remote([handle])) == [False], timeout=10)  # its end is told
    # A job sent to the same actor after that end: once the monitor has recorded it, it
    # has been through every earlier event of the actor, the unmonitored subjob's end too.
    after = sh_job(["true"])
    session.submit(after)
    assert session.wait([after], timeout=30) == [Status.COMPLETED]
    session.refresh()
    assert job.subjobs[0].status is Status.RUNNING  # left as it was
    entries = [e for e in session.main.root.leaks.values() if e.fqid == f"{job.id}.0"]
    assert entries and "monitoring loop" in entries[0].reason
    assert session.leaks() == []  # its process is gone: the audit resolves the entry
    assert all(e.resolved for e in entries)


@pytest.mark.parametrize("exe, why", [("/no/such/program", "does not exist"),
                                      ("{tmp}/plain.txt", "is not executable"),
                                      ("no-such-program-in-path", "is not found in PATH")])
def test_an_executable_that_cannot_run_is_refused_at_submit_and_the_job_stays_new(session, exe, why,
                                                                                 tmp_path):
    from ganga_like.errors import ApplicationConfigurationError, JobError
    from ganga_like.model.application import Executable

    (tmp_path / "plain.txt").write_text("not a program\n")
    exe = exe.format(tmp=tmp_path)
    job = sh_job(["true", "true"])
    job.application = Executable(exe=exe)
    with pytest.raises(ApplicationConfigurationError) as info:
        session.submit(job)
    assert isinstance(info.value, JobError)  # what a Ganga script catches
    assert why in str(info.value) and "\n" not in str(info.value)
    session.refresh()
    assert job.status is Status.NEW and job.subjob_counts == {} and job.submit_counter == 0


def test_a_program_found_in_path_is_accepted(session):
    from ganga_like.model.application import Executable

    job = sh_job(["true"])
    job.application = Executable(exe="sh", args=["-c", "echo fine"])
    session.submit(job)
    assert session.wait([job], timeout=30) == [Status.COMPLETED]


def test_a_filechecker_without_search_strings_fails_the_subjob_when_it_checks(session):
    from ganga_like.model.postprocessors import FileChecker

    job = sh_job(["echo hi"], postprocessors=[FileChecker(files=["stdout"])])
    session.submit(job)
    assert session.wait([job], timeout=30) == [Status.FAILED]
    assert "has no searchStrings" in job.subjobs[0].reason


def test_gpi_slices_carry_the_verbs(session):
    """``jobs.select(...)``, ``jobs[a:b]``, ``jobs['name']``, ``j.subjobs.select(...)``
    as a Ganga user types them, on a real session."""
    from ganga_like import gpi
    from ganga_like.model.slices import JobSlice

    made = [gpi.Job(name=f"sl{i}", application=gpi.Executable(exe="/bin/echo", args=[str(i)]))
            for i in range(3)]
    chosen = gpi.jobs.select(name="sl*")
    assert isinstance(chosen, JobSlice) and chosen.ids() == [j.id for j in made]
    chosen.submit()
    session.wait(made, timeout=30)
    # (name too: the module's other tests' jobs share the repository)
    assert gpi.jobs.select(name="sl*", status="completed", application="Executable",
                           backend="Local").ids() == [j.id for j in made]
    assert gpi.jobs.select(made[1].id, made[2].id).ids() == [made[1].id, made[2].id]
    assert gpi.jobs["sl2"].id == made[2].id
    assert isinstance(gpi.jobs[0:2], JobSlice)
    assert repr(chosen).rstrip().endswith("3 jobs")
    master = sh_job(["true", "exit 2"])
    session.submit(master)
    session.wait([master], timeout=30)
    failed = master.subjobs.select(status="failed")
    assert isinstance(failed, JobSlice) and failed.ids() == [1]
    gpi.jobs.select(name="sl*").remove()
    assert gpi.jobs.select(name="sl*").ids() == []


def test_each_change_names_its_cause_and_show_tells_the_story(session, tmp_path, monkeypatch):
    """Issue 17 (5): a verb, a monitor batch and an auto-resubmit each leave history
    entries naming their cause; a master's derived moves name the subjob change's;
    ``show --history`` renders them (recovery: tests/lifecycle/test_recovery.py)."""
    from ganga_like.cli.render import show_text
    from ganga_like.status import Source, history_entries

    counter = tmp_path / "count"
    flaky = f"echo x >> {counter}; test $(wc -l < {counter}) -ge 2"
    job = sh_job(["true"] * 4 + [flaky], do_auto_resubmit=True)  # 1 of 5 fails: retried
    session.submit(job)

    def settled():
        session.refresh()
        return job.subjobs[4].status is Status.COMPLETED and job.status is Status.COMPLETED

    wait_for(settled, timeout=60)
    entries = history_entries(job.subjobs[4].history)
    submit, *_ = [e for e in entries if e.dst == "submitting"]
    assert submit.cause is not None and submit.cause.kind == "submit" and submit.source is Source.USER
    by_backend = [e for e in entries if e.source is Source.BACKEND]
    assert by_backend and all(e.cause is not None and e.cause.kind == "monitor batch" for e in by_backend)
    failed = next(e for e in entries if e.dst == "failed")
    retry = next(e for e in entries if e.note == "auto-resubmit")
    assert retry.cause is not None and retry.cause.kind == "auto-resubmit"
    assert retry.cause.after == failed.cause  # the batch that saw the failure
    assert len({e.cause.id for e in entries if e.cause is not None}) >= 4  # ids differ
    for entry in history_entries(job.history):  # the master's moves name their subjob's cause
        assert entry.source is Source.DERIVED and entry.cause is not None
        assert entry.cause.kind == "derived" and entry.cause.after is not None
    text = show_text(job.subjobs[4], None, None, 20)
    assert f"failed -> submitting by auto-resubmit #{retry.cause.id} after monitor batch " \
           f"#{failed.cause.id} (monitor) auto-resubmit" in text
    log_text = open(session.config.queue_log).read()
    assert f"{job.subjobs[4].fqid} submitting auto-resubmit ({retry.cause})" in log_text

    sleeper = sh_job(["sleep 30"])
    session.submit(sleeper)
    wait_for(_all_running(session, sleeper, 1))
    # The backend's own "killed" event may reach the monitor before the kill verb records
    # its confirmation (then the monitor batch is the cause): hold the sleeper's events.
    apply_event = session.monitor._apply_event
    monkeypatch.setattr(session.monitor, "_apply_event", lambda job, *rest: None
                        if job.fqid.startswith(f"{sleeper.id}.") else apply_event(job, *rest))
    session.kill(sleeper)
    killed = history_entries(sleeper.subjobs[0].history)[-1]
    assert killed.dst == "killed" and killed.source is Source.USER
    assert killed.cause is not None and killed.cause.kind == "kill" and killed.cause.after is None
    # Numbered in the repository, and naming who asked (here: this process, in-process).
    assert killed.cause.id.isdigit() and killed.cause.origin == this_process()
    assert f"running -> killed by kill #{killed.cause.id} from {this_process()} (user)" \
        in show_text(sleeper.subjobs[0], None, None, 5)
