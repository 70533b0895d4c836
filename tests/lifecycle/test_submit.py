"""Submitting and completing work on the Local backend, as a user sees it."""

from __future__ import annotations

import os
import re

import pytest

from ganga_like.errors import BackendError, OperationRefused
from ganga_like.status import Status, master_status_of

from .helpers import sh_job, statuses


@pytest.fixture
def session(shared_session):
    """One engine for the module (``shared_session``, tests/conftest.py)."""
    return shared_session


def _names_job(log_line: str, job_id: int) -> bool:
    """Whether a queue-log line (date time host fqid status ...) is about job ``job_id``."""
    return log_line.split(" ")[3].split(".")[0] == str(job_id)


def test_split_job_runs_to_completed_with_outputs_status_files_and_log(session):
    job = sh_job([f"echo out-{i}; echo err-{i} >&2" for i in range(12)], name="echoes")
    session.submit(job)
    assert job.status in (Status.SUBMITTED, Status.RUNNING, Status.COMPLETED)
    assert session.wait([job], timeout=60) == [Status.COMPLETED]
    assert job.subjob_counts == {"completed": 12}
    for index, sub in enumerate(job.subjobs):
        assert sub.fqid == f"{job.id}.{index}"
        assert session.peek(sub).strip() == f"out-{index}"
        assert session.peek(sub, file="stderr").strip() == f"err-{index}"
        assert sub.exit_code == 0
        path = [h[2] for h in sub.history]
        assert path[0] == "submitting" and path[-1] == "completed"
        assert "completing" in path  # the critical section was committed
        lines = open(os.path.join(sub.workdir, "status")).read().splitlines()
        assert lines and all(len(line.split(" ", 2)[1]) <= 15 for line in lines)
    log = open(session.config.queue_log).read().splitlines()
    # BEX's line: date time host job-id status [message]; the message names the cause.
    assert any(line.split(" ", 5)[3:5] == [f"{job.id}.3", "completed"] and
               re.search(r"\(monitor batch #[\w.]+\)$", line) for line in log), log[-5:]
    fields = next(line for line in log if _names_job(line, job.id)).split(" ")
    assert len(fields[0]) == 10 and len(fields[1]) == 8 and fields[4] == "submitting"


def test_failed_payload_is_failed_with_exit_code_and_stderr_tail(session):
    job = sh_job(["echo fine", "echo broken >&2; exit 3"])
    session.submit(job)
    session.wait([job], timeout=60)
    assert job.status is Status.FAILED  # the master rule: failed before completed
    bad = job.subjobs[1]
    assert bad.status is Status.FAILED and bad.exit_code == 3
    assert "exit" in bad.reason and "broken" in bad.reason


def test_a_program_missing_when_it_runs_fails_that_subjob_with_the_reason(session, tmp_path):
    # What can be told is checked at submit (test_operations, test_ganga_files); a
    # program whose interpreter is missing can only be found out when it runs.
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job

    script = tmp_path / "script"
    script.write_text("#!/no-such-program\n")
    script.chmod(0o755)
    job = Job(application=Executable(exe=str(script), args=[]))
    session.submit(job)
    session.wait([job], timeout=30)
    assert job.status is Status.FAILED
    assert "no-such-program" in job.reason or "127" in job.reason


def test_arguments_are_never_shell_interpreted(session):
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job

    tricky = ["a b", "'q'", '"dq"', "$HOME", "x; echo injected", "*"]
    job = Job(application=Executable(exe="/usr/bin/printf", args=["%s\\n", *tricky]))
    session.submit(job)
    session.wait([job], timeout=30)
    assert session.peek(job).splitlines() == tricky


def test_submit_twice_is_refused_with_one_clear_line(session):
    job = sh_job(["true"])
    session.submit(job)
    with pytest.raises(OperationRefused) as info:
        session.submit(job)
    assert "only a new job can be submitted" in str(info.value)
    assert "\n" not in str(info.value)
    session.wait([job], timeout=30)


def test_partial_submit_failure_leaves_failed_subjobs_new_and_master_derived(session):
    job = sh_job(["sleep 0.2"] * 6)
    session.register(job)
    # Subjob 2's directory cannot be created: a file stands in its place.
    os.makedirs(job.workspace, exist_ok=True)
    open(os.path.join(job.workspace, "2"), "w").close()
    # Subjob 2 waits in the backend's queue (2 slots), so the failure is found when it
    # is prepared, after submit() returned: the backend fails it, with the reason.
    session.submit(job)
    session.wait([job], timeout=30)
    assert job.subjobs[2].status is Status.FAILED
    assert "cannot prepare" in job.subjobs[2].reason
    assert statuses(job).count("completed") == 5
    assert job.status is Status.FAILED  # never stuck: derived from the subjobs
    assert job.status is master_status_of(statuses(job))
    # fix the cause and resubmit: only the failed subjob goes
    os.remove(os.path.join(job.workspace, "2"))
    session.resubmit(job)
    assert session.wait([job], timeout=30) == [Status.COMPLETED]
    assert job.subjobs[0].submit_counter == 1 and job.subjobs[2].submit_counter == 2


def test_failure_found_during_submit_rolls_back_to_new_and_raises(session):
    job = sh_job(["true"] * 3)
    session.register(job)
    os.makedirs(job.workspace, exist_ok=True)
    open(os.path.join(job.workspace, "0"), "w").close()  # the first one starts at once
    with pytest.raises(BackendError, match="1 of 3 could not be submitted"):
        session.submit(job)
    session.wait([job], timeout=30)
    assert sorted(statuses(job)) == ["completed", "completed", "new"]
    assert job.status is Status.NEW  # new outranks completed: submit() again is allowed
    os.remove(os.path.join(job.workspace, "0"))
    session.submit(job)
    assert session.wait([job], timeout=30) == [Status.COMPLETED]


def test_keep_going_does_not_raise(session):
    job = sh_job(["true"] * 3)
    session.register(job)
    os.makedirs(job.workspace, exist_ok=True)
    open(os.path.join(job.workspace, "0"), "w").close()
    session.submit(job, keep_going=True)
    session.wait([job], timeout=30)
    assert sorted(statuses(job)) == ["completed", "completed", "new"]


def test_job_without_splitter_runs_as_itself(session):
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job

    job = Job(application=Executable(exe="/bin/echo", args=["hello", "world"]))
    session.submit(job)
    assert job.wait(timeout=30) is Status.COMPLETED
    assert job.peek().strip() == "hello world"
    assert job.fqid == str(job.id)


def test_jobs_run_with_path_and_home(session):
    job = sh_job(['echo "$PATH|$HOME"'])
    session.submit(job)
    session.wait([job], timeout=30)
    path, home = session.peek(job.subjobs[0]).strip().split("|")
    assert "/bin" in path and home


def test_concurrency_limit_queues_the_rest_with_detail(session):
    job = sh_job(["sleep 0.5"] * 4, concurrency=1)
    session.submit(job)
    session.refresh()
    details = {sj.backend_detail for sj in job.subjobs}
    assert "Queued" in details or job.subjob_counts.get("submitted", 0) >= 2
    assert job.subjob_counts.get("running", 0) <= 1
    session.wait([job], timeout=30)
    assert job.status is Status.COMPLETED


def test_bad_splitter_input_is_one_line_and_leaves_the_job_new(session):
    from ganga_like.errors import InvalidValue
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.splitters import GenericSplitter

    job = Job(application=Executable(exe="/bin/true", args=[]),
              splitter=GenericSplitter(attribute="application.nosuch", values=[1, 2]))
    with pytest.raises(InvalidValue) as info:
        session.submit(job)
    text = str(info.value)
    assert "\n" not in text and "exe, args, env" in text  # the valid choices
    session.refresh()
    stored = session.jobs.get(job.id)
    assert stored.status is Status.NEW and stored._subjobs is None  # nothing half-made
    assert stored.history == ()
    assert not any(_names_job(line, job.id) for line in session.queue_log.tail(10**6))  # nothing logged
