"""Jobs on the session's real Slurm, through a real session: arrays, Slurm's words for
why a subjob waits, kill and resubmit, GPUs, and what is refused at submit.

Each test looks at Slurm itself (``squeue``) to check what the backend says it did.
"""

from __future__ import annotations

import os

import pytest

from ganga_like.backends.slurm.config import Slurm
from ganga_like.errors import BackendError
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter, GenericSplitter
from ganga_like.status import Status

from .contract import read

pytestmark = pytest.mark.slurm


def _job(slurm, scripts: list[str], **backend) -> Job:
    return Job(application=Executable(exe="/bin/sh", args=["-c", "true"]),
               backend=Slurm(conf=slurm.conf, **backend),
               splitter=ArgSplitter(args=[["-c", script] for script in scripts]))


def _tasks(slurm, session) -> dict[str, tuple[str, str, str]]:
    """This repository's tasks Slurm knows: task id -> (job name, state, CPUs)."""
    out = slurm.run("squeue", "-h", "-r", "-t", "all", "-o", "%i|%j|%T|%C").stdout
    rows = [line.split("|") for line in out.splitlines()]
    return {r[0]: (r[1], r[2], r[3]) for r in rows if r[1].startswith(session.repo_uuid + ":")}


def _active(slurm, session) -> dict[str, tuple[str, str, str]]:
    return {k: v for k, v in _tasks(slurm, session).items()
            if v[1] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")}


def _arrays(task_ids) -> set[str]:
    return {task.split("_")[0] for task in task_ids}


def test_a_master_is_one_array_and_each_subjob_one_task(session, slurm):
    job = _job(slurm, ["exit 0", "exit 3", 'echo "$SLURM_ARRAY_TASK_ID $GANGA_LIKE_MARKER"'])
    session.submit(job)
    session.wait([job], timeout=60)
    assert [sj.status for sj in job.subjobs] == [Status.COMPLETED, Status.FAILED, Status.COMPLETED]
    assert [sj.exit_code for sj in job.subjobs] == [0, 3, 0]
    ids = [sj.backend.id for sj in job.subjobs]
    assert len(_arrays(ids)) == 1 and [i.split("_")[1] for i in ids] == ["0", "1", "2"], ids
    tasks = _tasks(slurm, session)
    assert set(ids) <= set(tasks) and tasks[ids[1]][1] == "FAILED"
    assert {name for name, _state, _cpus in tasks.values()} == {f"{session.repo_uuid}:{job.id}.*"}
    assert read(os.path.join(job.subjobs[2].workdir, "output", "stdout")).split() == [
        "2", f"{session.repo_uuid}:{job.id}.2"]


def test_subjobs_with_other_requests_go_as_another_array(session, slurm):
    job = Job(application=Executable(exe="/bin/true"), backend=Slurm(conf=slurm.conf),
              splitter=GenericSplitter(attribute="backend.cpus", values=[1, 2, 1]))
    session.submit(job)
    session.wait([job], timeout=60)
    assert job.subjob_counts == {"completed": 3}
    ids = [sj.backend.id for sj in job.subjobs]
    assert ids[0].split("_")[0] == ids[2].split("_")[0] != ids[1].split("_")[0]
    tasks = _tasks(slurm, session)
    assert [tasks[i][2] for i in ids] == ["1", "2", "1"]  # the CPUs Slurm gave each


def test_slurm_says_why_a_subjob_waits_and_kill_resubmit_work_on_tasks(session, slurm):
    job = _job(slurm, ["sleep 60"] * 3, max_running=2)
    session.submit(job)

    def two_run_one_waits() -> bool:
        session.refresh()
        return (job.subjob_counts.get("running") == 2
                and job.subjobs[2].backend_detail == "Slurm PENDING (JobArrayTaskLimit)")

    _wait(two_run_one_waits, 60)
    assert "its array runs at most Slurm(max_running=...) tasks at once" in str(job.why())
    session.kill(job)
    assert job.subjob_counts == {"killed": 3}
    assert _active(slurm, session) == {}  # nothing of it runs or waits in Slurm

    old = job.subjobs[1].backend.id
    session.resubmit(job.subjobs[1], include_killed=True)
    _wait(lambda: session.refresh() or job.subjobs[1].status is Status.RUNNING, 60)
    new = job.subjobs[1].backend.id
    assert new != old and new.endswith("_1")
    assert [task for task in _tasks(slurm, session) if task.startswith(new.split("_")[0] + "_")] == [new]
    session.kill(job)
    assert job.subjob_counts == {"killed": 3} and _active(slurm, session) == {}


def test_a_gpu_asked_for_is_given_by_slurm(session, slurm):
    job = _job(slurm, ['echo "gpu=$CUDA_VISIBLE_DEVICES"'] * 2, gpus=1)
    session.submit(job)
    session.wait([job], timeout=60)
    assert job.subjob_counts == {"completed": 2}
    for sj in job.subjobs:
        assert read(os.path.join(sj.workdir, "output", "stdout")).strip() in ("gpu=0", "gpu=1")


def test_an_unknown_partition_is_one_line_at_submit_and_nothing_is_stored(session, slurm):
    job = _job(slurm, ["true"], partition="nope")
    with pytest.raises(BackendError) as raised:
        session.submit(job)
    message = str(raised.value)
    assert "\n" not in message
    assert "Slurm(partition='nope'): no such partition" in message and "valid: debug, long" in message
    assert job.status is Status.NEW and job._subjobs is None and len(job.history) <= 1
    names = {name for name, _state, _cpus in _tasks(slurm, session).values()}
    assert not any(name.startswith(f"{session.repo_uuid}:{job.id}.") for name in names)


def test_sbatch_missing_from_path_is_one_line_at_submit(session, slurm, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without Slurm's commands
    job = _job(slurm, ["true"])
    with pytest.raises(BackendError) as raised:
        session.submit(job)
    message = str(raised.value)
    assert "\n" not in message and "sbatch is not in PATH" in message and "is Slurm installed" in message
    assert job.status is Status.NEW and job._subjobs is None


def test_a_slurm_conf_that_does_not_exist_is_one_line_at_submit(session, tmp_path):
    job = Job(application=Executable(exe="/bin/true"), backend=Slurm(conf=str(tmp_path / "none.conf")))
    with pytest.raises(BackendError) as raised:
        session.submit(job)
    assert str(raised.value) == (f"Slurm(conf={str(tmp_path / 'none.conf')!r}): no such file; name the "
                                 "slurm.conf of your Slurm, or '' for this machine's own")
    assert job.status is Status.NEW


def _wait(predicate, timeout: float) -> None:
    from tests.lifecycle.helpers import wait_for

    wait_for(predicate, timeout=timeout, interval=0.1)


def test_remove_force_records_the_slurm_ids_and_the_audit_asks_slurm(session, slurm):
    job = _job(slurm, ["sleep 60"] * 2, max_running=1)
    job.mode = "relaxed"
    session.submit(job)
    _wait(lambda: session.refresh() or job.subjob_counts.get("running") == 1, 60)
    ids = sorted(sj.backend.id for sj in job.subjobs if sj.handle)
    fqids = sorted(sj.fqid for sj in job.subjobs)
    session.remove(job, force=True)  # relaxed + force: removed without a kill; the ledger keeps them
    assert sorted(_active(slurm, session)) == ids  # still in Slurm: one runs, one waits
    found = session.leaks()
    assert sorted((f["fqid"], f["backend"]) for f in found) == [(fqid, "Slurm") for fqid in fqids]
    reaped = session.leaks(reap=True)
    assert all(f["reaped"] for f in reaped), reaped
    assert _active(slurm, session) == {}
    assert session.leaks() == []


def test_slurms_record_of_ended_tasks_is_read_without_an_accounting_database(slurm):
    """squeue forgets a task MinJobAge after it ended; then sacct tells how it ended. The
    test Slurm has no slurmdbd: the plain sacct is refused, and sacct -c reads the
    job-completion file."""
    from ganga_like.backends.slurm.commands import Accounted, SlurmCommands

    array = slurm.run("sbatch", "--parsable", "--array=0-1", "-o", "/dev/null", "--wrap",
                      'exit "$SLURM_ARRAY_TASK_ID"').stdout.strip()
    commands = SlurmCommands(slurm.conf)
    _wait(lambda: all(t.state in ("COMPLETED", "FAILED") for i, t in commands.queue().items()
                      if i.startswith(array + "_")), 60)
    raw = {i: t.raw_id for i, t in commands.queue().items() if i.startswith(array + "_")}
    found = commands.accounting(raw.values())
    assert found == {raw[f"{array}_0"]: Accounted("COMPLETED", 0), raw[f"{array}_1"]: Accounted("FAILED", 1)}
