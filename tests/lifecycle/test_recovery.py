"""A session killed with SIGKILL loses nothing: the next one adopts its work."""

from __future__ import annotations

import os

import pytest

from ganga_like.config import Config
from ganga_like.engine.core import Engine, set_default_session
from ganga_like.status import Source, Status, history_entries

from .helpers import caught_in_submitting, run_and_kill_a_session, sh_job

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def shared_ray_env(ray_session):
    import ray

    env = dict(os.environ)
    env["GANGA_LIKE_RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_sigkilled_session_with_200_running_subjobs_is_recovered(tmp_path, shared_ray_env):
    root = str(tmp_path / "gl")
    n = 200
    job_id = run_and_kill_a_session(root, shared_ray_env, str(n), "4")
    session = Engine(Config.from_env(root=root))
    set_default_session(session)
    try:
        job = session.jobs.get(int(job_id))
        assert job.subjob_counts.get("running") == n  # as the dead session left it
        statuses = session.wait([job], timeout=120)
        assert statuses == [Status.COMPLETED], job.subjob_counts
        assert all(sj.exit_code == 0 for sj in job.subjobs)
        assert session.leaks() == []
    finally:
        session.close()
        set_default_session(None)


def test_subjobs_caught_in_submitting_go_back_to_new_with_a_note(session, gl_config):
    job = sh_job(["true"] * 3)
    caught_in_submitting(session, job)
    job_id = session.jobs.get(job.id).id
    session.close()
    fresh = Engine(gl_config)
    set_default_session(fresh)
    try:
        again = fresh.jobs.get(job_id)
        fresh.recover()
        fresh.refresh()
        assert [sj.status for sj in again.subjobs] == [Status.NEW] * 3
        assert "submit again" in again.subjobs[0].reason
        assert again.status is Status.NEW
        # Issue 17 (5): the rollback names one recovery cause; the crashed write had none.
        rolled = [history_entries(sj.history)[-1] for sj in again.subjobs]
        assert {(e.dst, e.source) for e in rolled} == {("new", Source.RECOVERY)}
        assert len({e.cause for e in rolled}) == 1 and rolled[0].cause.kind == "recovery"
        assert all(history_entries(sj.history)[0].cause is None for sj in again.subjobs)
        derived = history_entries(again.history)[-1]
        assert derived.source is Source.DERIVED and derived.cause.after == rolled[-1].cause
        log_text = open(gl_config.queue_log).read()
        assert f"{again.subjobs[0].fqid} new " in log_text and f"({rolled[0].cause})" in log_text
        fresh.submit(again)
        assert fresh.wait([again], timeout=30) == [Status.COMPLETED]
    finally:
        fresh.close()


def test_a_subjob_found_finished_by_recovery_keeps_its_backend_id(session, gl_config):
    """Sent, run and ended while no service recorded it (the service died before the
    answer and the STARTED event were stored): recovery finds it finished, and it keeps
    the id of its run, the wrapper's pid its status file names (as Ganga's backend.id),
    from the FINISHED event's handle; not -1."""
    import ray

    from ganga_like.backends.runtime import outcome
    from ganga_like.engine.operations.submit import specs_for

    job = sh_job(["true", "exit 3"])
    caught_in_submitting(session, job)
    actor = session.context.backends.actor(job.backend)
    ray.get(actor.submit.remote(specs_for(session.context, job, list(job._subjobs.values()))))
    session.close()  # the answer and the events are never recorded
    for sj in job._subjobs.values():
        wait_for_status(sj.workdir)
    fresh = Engine(gl_config)
    set_default_session(fresh)
    try:
        again = fresh.jobs.get(job.id)
        fresh.recover()
        assert fresh.wait([again], timeout=60) == [Status.FAILED], again.subjob_counts
        assert [sj.status for sj in again.subjobs] == [Status.COMPLETED, Status.FAILED]
        ran = [outcome.wrapper_ran(outcome.history(sj.workdir)) for sj in again.subjobs]
        assert [sj.backend.id for sj in again.subjobs] == [r[0] for r in ran if r] and len(ran) == 2
        assert fresh.leaks() == []
    finally:
        fresh.close()


def test_subjobs_a_dead_actor_only_accepted_while_submitting_are_sent_once(session, gl_config):
    """The service died after its actor accepted the subjobs (their QUEUED lines) and
    before anything ran or was recorded (still `submitting`): the next service sends
    them, as the same attempt (recovery used to re-queue them with a new attempt,
    `submitting -> submitting`, which the status table refuses)."""
    import time

    from ganga_like.backends.runtime import outcome
    from ganga_like.backends.runtime import status_file as sf
    from ganga_like.engine.operations.submit import specs_for

    job = sh_job(["true"] * 2)
    caught_in_submitting(session, job)
    for spec in specs_for(session.context, job, list(job._subjobs.values())):  # what the actor's accept did
        outcome.prepare(spec.workdir, sf.StatusInfo(sf.QUEUED, "accepted", time.time()).line())
    session.close()
    fresh = Engine(gl_config)
    set_default_session(fresh)
    try:
        again = fresh.jobs.get(job.id)
        fresh.ensure_monitor()  # starts the monitor, then recovers
        assert fresh.wait([again], timeout=60) == [Status.COMPLETED], again.subjob_counts
        assert [sj.submit_counter for sj in again.subjobs] == [1, 1]
    finally:
        fresh.close()


def wait_for_status(workdir: str) -> None:
    """Until the run in ``workdir`` has written its exit status (in its own status file,
    or its master's collected trace once tidied)."""
    from ganga_like.backends.runtime import trace

    from .helpers import wait_for

    wait_for(lambda: (last := trace.last(workdir)) is not None and last.terminal, timeout=30, interval=0.05)


def test_subjobs_queued_in_a_dead_actor_are_sent_again(tmp_path, shared_ray_env):
    """SIGKILL while most subjobs wait in the Local actor's queue (no process yet):
    the next session runs them, none is reported failed."""
    root = str(tmp_path / "gl")
    job_id = run_and_kill_a_session(root, shared_ray_env, "16", "1", "2")
    session = Engine(Config.from_env(root=root))
    set_default_session(session)
    try:
        job = session.jobs.get(int(job_id))
        assert job.subjob_counts.get("submitted", 0) >= 10  # queued behind 2 slots
        assert session.wait([job], timeout=120) == [Status.COMPLETED], job.subjob_counts
        requeued = [sj for sj in job.subjobs if sj.submit_counter == 2]
        assert requeued and all("re-queued" in " ".join(h[3] for h in sj.history)
                                for sj in requeued)
    finally:
        session.close()
        set_default_session(None)


@pytest.mark.parametrize("backend", ["Local", "RayCluster"])
def test_a_dead_backend_actor_is_replaced_and_its_work_recovered(session, backend):
    """The actor dies (its worker crashes, or it is killed) while its subjobs run: the
    monitor notices at once, a new actor adopts the work, and every subjob reaches its
    true final status (not `running` for minutes)."""
    import time

    import ray

    from ganga_like.backends.raycluster.config import RayCluster

    job = sh_job(["sleep 3; echo done"] * 3, concurrency=3)
    if backend == "RayCluster":
        job.backend = RayCluster()
    session.submit(job)
    deadline = time.monotonic() + 30
    while job.subjob_counts.get("running", 0) < 2:
        assert time.monotonic() < deadline, job.subjob_counts
        time.sleep(0.05)
    ray.kill(session.backends.actor(job.backend), no_restart=True)
    killed = time.monotonic()
    assert session.wait([job], timeout=30) == [Status.COMPLETED], job.subjob_counts
    assert time.monotonic() - killed < 15
    assert [session.peek(sj).strip() for sj in job.subjobs] == ["done"] * 3


def test_a_first_verb_after_a_restart_is_not_undone_by_the_recovery_it_starts(session, gl_config):
    """An engine recovers before it runs its first verb: a resubmit that was the first
    verb of a new engine used to mark its leaves `submitting`, then start recovery,
    which took them for a dead service's interrupted submission and rolled them back
    to `new` (seen once in CI through the service)."""
    job = sh_job(["test -f ran && exit 0; touch ran; exit 1"] * 3)
    session.submit(job)
    assert session.wait([job], timeout=60) == [Status.FAILED]
    session.close()
    fresh = Engine(gl_config)
    set_default_session(fresh)
    try:
        again = fresh.jobs.get(job.id)
        fresh.resubmit(again)
        assert fresh.wait([again], timeout=60) == [Status.COMPLETED]
        notes = [e.note for sj in again.subjobs for e in history_entries(sj.history)]
        assert not any("stopped during submission" in note for note in notes), notes
        assert [sj.info.submit_counter for sj in again.subjobs] == [2, 2, 2]
    finally:
        fresh.close()
        set_default_session(session)


def test_recovery_reads_the_outcome_of_subjobs_tidied_while_no_session_ran(tmp_path, shared_ray_env):
    """SIGKILL while subjobs run; they end meanwhile and are tidied away (as their actor
    does once they wrote nothing), so their outcome is only in the master's collected
    trace: the next session reads it there and records them completed, exit 0."""
    import time

    from ganga_like.backends.runtime import status_file as sf
    from ganga_like.backends.runtime import trace

    root = str(tmp_path / "gl")
    n = 4
    job_id = run_and_kill_a_session(root, shared_ray_env, str(n), "1")
    workdirs = [os.path.join(root, "workspace", job_id, str(i)) for i in range(n)]
    deadline = time.monotonic() + 30
    while not all(trace.last(w) is not None and trace.last(w).terminal for w in workdirs):
        assert time.monotonic() < deadline, [trace.last(w) for w in workdirs]
        time.sleep(0.1)
    for workdir in workdirs:
        trace.tidy(workdir)  # (False when the actor, still alive, did it first)
    assert not any(os.path.exists(w) for w in workdirs)
    session = Engine(Config.from_env(root=root))
    set_default_session(session)
    try:
        job = session.jobs.get(int(job_id))
        assert session.wait([job], timeout=60) == [Status.COMPLETED], job.subjob_counts
        assert all(sj.exit_code == 0 for sj in job.subjobs)
        assert all(trace.history(w)[-1].state == sf.RUN_DONE for w in workdirs)
    finally:
        session.close()
        set_default_session(None)
