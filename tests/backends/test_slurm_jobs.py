"""Jobs on the session's real Slurm, through a real session: arrays, Slurm's words for
why a subjob waits, kill and resubmit, GPUs, and what is refused at submit.

Each test looks at Slurm itself (``squeue``) to check what the backend says it did, at
its own job's tasks: the tests share one session (``engine``: one repository, one Slurm
actor), and the jobs that only have to run to their end are submitted together at the
first test (:func:`ran`), side by side in Slurm, each checked by its test.
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


def _tasks(slurm, engine, job_id: int | None) -> dict[str, tuple[str, str, str]]:
    """A job's tasks Slurm knows (its arrays are named ``<repository>:<id>.*...``):
    task id -> (job name, state, CPUs)."""
    out = slurm.run("squeue", "-h", "-r", "-t", "all", "-o", "%i|%j|%T|%C").stdout
    rows = [line.split("|") for line in out.splitlines()]
    return {r[0]: (r[1], r[2], r[3]) for r in rows if r[1].startswith(f"{engine.repo_uuid}:{job_id}.")}


def _active(slurm, engine, job_id: int | None) -> dict[str, tuple[str, str, str]]:
    return {k: v for k, v in _tasks(slurm, engine, job_id).items()
            if v[1] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")}


def _arrays(task_ids) -> set[str]:
    return {task.split("_")[0] for task in task_ids}


@pytest.fixture(scope="module")
def ran(engine, slurm) -> dict[str, Job]:
    """The jobs that only have to run to their end, submitted at once and waited for
    together (by name: the test that checks each)."""
    jobs = {
        "one array": _job(slurm, ["exit 0", "exit 3", 'echo "$SLURM_ARRAY_TASK_ID $GANGA_LIKE_MARKER"']),
        "other requests": Job(application=Executable(exe="/bin/true"), backend=Slurm(conf=slurm.conf),
                              splitter=GenericSplitter(attribute="backend.cpus", values=[1, 2, 1])),
        "gpu": _job(slurm, ['echo "gpu=$CUDA_VISIBLE_DEVICES"'] * 2, gpus=1),
    }
    for job in jobs.values():
        engine.submit(job)
    engine.wait(list(jobs.values()), timeout=90)
    return jobs


def test_a_master_is_one_array_and_each_subjob_one_task(engine, slurm, ran):
    job = ran["one array"]
    assert [sj.status for sj in job.subjobs] == [Status.COMPLETED, Status.FAILED, Status.COMPLETED]
    assert [sj.exit_code for sj in job.subjobs] == [0, 3, 0]
    ids = [sj.backend.id for sj in job.subjobs]
    assert len(_arrays(ids)) == 1 and [i.split("_")[1] for i in ids] == ["0", "1", "2"], ids
    tasks = _tasks(slurm, engine, job.id)
    assert set(ids) == set(tasks) and tasks[ids[1]][1] == "FAILED"
    assert {name for name, _state, _cpus in tasks.values()} == {f"{engine.repo_uuid}:{job.id}.*"}
    assert read(os.path.join(job.subjobs[2].workdir, "output", "stdout")).split() == [
        "2", f"{engine.repo_uuid}:{job.id}.2"]


def test_subjobs_with_other_requests_go_as_another_array(engine, slurm, ran):
    job = ran["other requests"]
    assert job.subjob_counts == {"completed": 3}
    ids = [sj.backend.id for sj in job.subjobs]
    assert ids[0].split("_")[0] == ids[2].split("_")[0] != ids[1].split("_")[0]
    tasks = _tasks(slurm, engine, job.id)
    assert [tasks[i][2] for i in ids] == ["1", "2", "1"]  # the CPUs Slurm gave each


def test_slurm_says_why_a_subjob_waits_and_kill_resubmit_work_on_tasks(engine, slurm):
    job = _job(slurm, ["sleep 60"] * 3, max_running=2)
    engine.submit(job)

    def two_run_one_waits() -> bool:
        engine.refresh()
        return (job.subjob_counts.get("running") == 2
                and job.subjobs[2].backend_detail == "Slurm PENDING (JobArrayTaskLimit)")

    _wait(two_run_one_waits, 60)
    assert "its array runs at most Slurm(max_running=...) tasks at once" in str(job.why())
    engine.kill(job)
    assert job.subjob_counts == {"killed": 3}
    assert _active(slurm, engine, job.id) == {}  # nothing of it runs or waits in Slurm

    old = job.subjobs[1].backend.id
    engine.resubmit(job.subjobs[1], include_killed=True)
    _wait(lambda: engine.refresh() or job.subjobs[1].status is Status.RUNNING, 60)
    new = job.subjobs[1].backend.id
    assert new != old and new.endswith("_1")
    again = [task for task in _tasks(slurm, engine, job.id) if task.startswith(new.split("_")[0] + "_")]
    assert again == [new]
    engine.kill(job)
    assert job.subjob_counts == {"killed": 3} and _active(slurm, engine, job.id) == {}


def test_a_gpu_asked_for_is_given_by_slurm(ran):
    job = ran["gpu"]
    assert job.subjob_counts == {"completed": 2}
    for sj in job.subjobs:
        assert read(os.path.join(sj.workdir, "output", "stdout")).strip() in ("gpu=0", "gpu=1")


def test_an_unknown_partition_is_one_line_at_submit_and_nothing_is_stored(engine, slurm):
    job = _job(slurm, ["true"], partition="nope")
    with pytest.raises(BackendError) as raised:
        engine.submit(job)
    message = str(raised.value)
    assert "\n" not in message
    assert "Slurm(partition='nope'): no such partition" in message and "valid: debug, long" in message
    assert job.status is Status.NEW and job._subjobs is None and len(job.history) <= 1
    assert _tasks(slurm, engine, job.id) == {}


def test_sbatch_missing_from_path_is_one_line_at_submit(engine, slurm, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without Slurm's commands
    job = _job(slurm, ["true"])
    with pytest.raises(BackendError) as raised:
        engine.submit(job)
    message = str(raised.value)
    assert "\n" not in message and "sbatch is not in PATH" in message and "is Slurm installed" in message
    assert job.status is Status.NEW and job._subjobs is None


def test_a_slurm_conf_that_does_not_exist_is_one_line_at_submit(engine, tmp_path):
    job = Job(application=Executable(exe="/bin/true"), backend=Slurm(conf=str(tmp_path / "none.conf")))
    with pytest.raises(BackendError) as raised:
        engine.submit(job)
    assert str(raised.value) == (f"Slurm(conf={str(tmp_path / 'none.conf')!r}): no such file; name the "
                                 "slurm.conf of your Slurm, or '' for this machine's own")
    assert job.status is Status.NEW


def _wait(predicate, timeout: float) -> None:
    from tests.lifecycle.helpers import wait_for

    wait_for(predicate, timeout=timeout, interval=0.1)


def test_remove_force_records_the_slurm_ids_and_the_audit_asks_slurm(engine, slurm):
    job = _job(slurm, ["sleep 60"] * 2, max_running=1)
    job.mode = "relaxed"
    engine.submit(job)
    _wait(lambda: engine.refresh() or job.subjob_counts.get("running") == 1, 60)
    ids = sorted(sj.backend.id for sj in job.subjobs if sj.handle)
    fqids, job_id = sorted(sj.fqid for sj in job.subjobs), job.id
    engine.remove(job, force=True)  # relaxed + force: removed without a kill; the ledger keeps them
    assert sorted(_active(slurm, engine, job_id)) == ids  # still in Slurm: one runs, one waits
    found = engine.leaks()
    assert sorted((f["fqid"], f["backend"]) for f in found) == [(fqid, "Slurm") for fqid in fqids]
    reaped = engine.leaks(reap=True)
    assert all(f["reaped"] for f in reaped), reaped
    assert _active(slurm, engine, job_id) == {}
    assert engine.leaks() == []


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
