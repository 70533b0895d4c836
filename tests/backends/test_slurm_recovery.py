"""A session (the service's engine) killed with SIGKILL while Slurm runs some of its
tasks and queues the others: the next one adopts them all by their Slurm ids."""

from __future__ import annotations

import os

import pytest

from ganga_like.config import Config
from ganga_like.engine.core import Engine, set_default_session
from ganga_like.status import Status
from tests.lifecycle.helpers import REPO, caught_in_submitting, run_and_kill_a_session, wait_for

pytestmark = pytest.mark.slurm


def test_a_sigkilled_session_s_slurm_tasks_are_adopted_and_finish(tmp_path, ray_session, slurm):
    import ray

    env = dict(os.environ, GANGA_LIKE_RAY_ADDRESS=ray.get_runtime_context().gcs_address,
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    root = str(tmp_path / "gl")
    # Four subjobs of 3 s, two at once: two run and two wait in Slurm when the session
    # dies, so both kinds are adopted (a third pair would only repeat the waiting kind).
    job_id = run_and_kill_a_session(root, env, "4", "3", "2", slurm.conf)
    session = Engine(Config.from_env(root=root))
    set_default_session(session)
    try:
        job = session.jobs.get(int(job_id))
        assert job.subjob_counts.get("running") == 2  # as the dead session left it
        statuses = session.wait([job], timeout=120)
        assert statuses == [Status.COMPLETED], job.subjob_counts
        assert all(sj.exit_code == 0 for sj in job.subjobs)
        assert len({sj.backend.id.split("_")[0] for sj in job.subjobs}) == 1  # still the one array
        assert session.leaks() == []
    finally:
        session.close()
        set_default_session(None)


@pytest.mark.parametrize("when", ["running", "ended"])
def test_tasks_sbatched_just_before_a_crash_are_found_and_not_sent_again(session, gl_config, slurm,
                                                                          tmp_path, when):
    """The service dies after sbatch took the array but before the answer was recorded
    (the subjobs are still `submitting`, with no handle): the next one finds the tasks in
    Slurm by the array's job name and adopts them, whether they still run or have ended
    meanwhile (then their status files say how, and Slurm still names them); nothing
    runs twice."""
    import ray

    from ganga_like.backends.slurm.config import Slurm
    from ganga_like.engine.operations.submit import specs_for
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.splitters import ArgSplitter

    ran = tmp_path / "ran"
    job = Job(application=Executable(exe="/bin/sh"), backend=Slurm(conf=slurm.conf),
              splitter=ArgSplitter(args=[["-c", f'echo "$GANGA_LIKE_MARKER" >> {ran}; sleep '
                                          f'{3 if when == "running" else 0}']] * 3))
    caught_in_submitting(session, job)
    actor = session.context.backends.actor(job.backend)
    handles = ray.get(actor.submit.remote(specs_for(session.context, job, list(job._subjobs.values()))))
    assert all(h.task_id and not h.error for h in handles), handles
    job_id = job.id
    session.close()  # the answer is never recorded
    if when == "ended":
        ids = ",".join(h.task_id for h in handles)
        wait_for(lambda: slurm.run("squeue", "-h", "-r", "-t", "all", "-j", ids, "-o", "%T").stdout.split()
                 == ["COMPLETED"] * 3, 60, 0.2)

    fresh = Engine(gl_config)
    set_default_session(fresh)
    try:
        again = fresh.jobs.get(job_id)
        fresh.recover()
        assert fresh.wait([again], timeout=90) == [Status.COMPLETED], again.subjob_counts
        markers = sorted(f"{fresh.repo_uuid}:{sj.fqid}" for sj in again.subjobs)
        assert sorted(ran.read_text().split()) == markers  # each subjob ran once
        # Adopted running or found ended, each keeps its Slurm id (the ending event's handle
        # is recorded when nothing recorded its start).
        assert {sj.backend.id for sj in again.subjobs} == {h.task_id for h in handles}
        assert all(sj.submit_counter == 1 for sj in again.subjobs)
    finally:
        fresh.close()


def test_a_crash_between_two_arrays_of_one_master_adopts_the_first_and_sends_the_rest(
        session, gl_config, slurm, tmp_path):
    """A master of 20 subjobs is two arrays on the test Slurm (MaxArraySize 16). The
    service dies after one sbatch: that array's tasks are in Slurm, the others only
    accepted (the actor writes every spec's QUEUED line before its first sbatch; that
    line is written here for subjobs 0-15, which are not sent). The array sent is the
    second block's (subjobs 16-19, named with the offset 16), so the next service must
    map its tasks 0-3 back to subjobs 16-19 to adopt them by name; it sends the rest
    again; each subjob runs once."""
    import time

    import ray

    from ganga_like.backends.runtime import outcome
    from ganga_like.backends.runtime import status_file as sf
    from ganga_like.backends.slurm.config import Slurm
    from ganga_like.engine.operations.submit import specs_for
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.splitters import ArgSplitter

    ran = tmp_path / "ran"
    job = Job(application=Executable(exe="/bin/sh"), backend=Slurm(conf=slurm.conf),
              splitter=ArgSplitter(args=[["-c", f'echo "$GANGA_LIKE_MARKER" >> {ran}; sleep 2']] * 20))
    caught_in_submitting(session, job)
    leaves = list(job._subjobs.values())
    actor = session.context.backends.actor(job.backend)
    specs = specs_for(session.context, job, leaves)  # all 20 prepared, as submit() does
    handles = ray.get(actor.submit.remote(specs[16:]))
    assert len({h.task_id.split("_")[0] for h in handles}) == 1 and not any(h.error for h in handles)
    for spec in specs[:16]:  # what the actor's _accept did for them before the first sbatch
        outcome.prepare(spec.workdir, sf.StatusInfo(sf.QUEUED, "accepted by the Slurm backend",
                                                    time.time()).line())
    job_id = job.id
    session.close()

    fresh = Engine(gl_config)
    set_default_session(fresh)
    try:
        again = fresh.jobs.get(job_id)
        fresh.ensure_monitor()  # starts the monitor, then recovers
        assert fresh.wait([again], timeout=120) == [Status.COMPLETED], again.subjob_counts
        markers = sorted(f"{fresh.repo_uuid}:{sj.fqid}" for sj in again.subjobs)
        assert sorted(ran.read_text().split()) == markers  # each subjob ran once
        ids = [sj.backend.id for sj in again.subjobs]
        assert ids[16:] == [h.task_id for h in handles]  # adopted by name, as sent
        assert [i.split("_")[1] for i in ids[16:]] == ["0", "1", "2", "3"]  # tasks 0-3 of block 16
        assert [i.split("_")[1] for i in ids[:16]] == [str(n) for n in range(16)]  # sent again: one array
        assert len({i.split("_")[0] for i in ids[:16]}) == 1
        assert all(sj.submit_counter == 1 for sj in again.subjobs)  # 0-15: the attempt never ran
    finally:
        fresh.close()
