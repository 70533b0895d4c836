"""Local's followers on a real LocalActor (a named Ray actor, real processes): the next
queued subjob's wrapper is spawned ahead and waits on the running one's end, so the
slot changes hands without the actor (backends/local/actor.py). It starts only in its
turn, is reported after its leader's end, is killed with it without ever running, and
never runs when its actor is gone before its turn (the work is sent again)."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import pytest

from ganga_like.backends import base
from ganga_like.backends.local.actor import LocalActor
from ganga_like.backends.runtime import procs
from ganga_like.backends.runtime import status_file as sf

from .contract import EventLog, stop_quietly
from .test_local_contract import _make_actors

WAITS_FOR_GO = "while [ ! -e ../../go ]; do sleep 0.02; done"  # (cwd: <workdir>/output)


@pytest.fixture
def make_actor(ray_session, leftover_check, actor_pool):
    yield from _make_actors(actor_pool)


def _leader_and_follower(make_actor, specs, tmp_path):
    """One slot: a leader that runs until ``go`` exists, and a follower that leaves
    ``ran`` in its output directory, primed behind it."""
    client = make_actor(concurrency=1)
    leader, follower = specs([["/bin/sh", "-c", WAITS_FOR_GO.replace("../../go", str(tmp_path / "go"))],
                              ["/bin/sh", "-c", "touch ran"]])
    handles = client.submit([leader, follower])
    _until(lambda: client.ping()["followers"] == 1, "no follower was primed")
    return client, leader, follower, handles


def _until(done, what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _ran(spec) -> bool:
    return os.path.exists(os.path.join(spec.workdir, "output", "ran"))


def _states(spec) -> list[str]:
    return [info.state for info in sf.StatusFile(os.path.join(spec.workdir, "status")).history()]


def test_a_follower_starts_in_its_leaders_slot_and_is_reported_after_its_end(
        make_actor, specs, tmp_path, marker_prefix):
    client, leader, follower, _ = _leader_and_follower(make_actor, specs, tmp_path)
    log = EventLog(client)
    # Primed: its wrapper waits, named as queued work (no pid), and has run nothing.
    found = {h.fqid: h for h in client.find(marker_prefix + ":")}
    assert found[follower.fqid].pid == 0 and found[leader.fqid].pid
    time.sleep(0.3)
    assert not _ran(follower) and _states(follower) == [sf.CREATED]
    (tmp_path / "go").touch()
    log.until(log.all_final([leader.fqid, follower.fqid]), timeout=15)
    assert _ran(follower) and [e.kind for e in log.finals()[follower.fqid]] == [base.FINISHED]
    order = [(e.fqid, e.kind) for e in log.events if e.kind in (base.STARTED, base.FINISHED)]
    assert order == [(leader.fqid, base.STARTED), (leader.fqid, base.FINISHED),
                     (follower.fqid, base.STARTED), (follower.fqid, base.FINISHED)]


def test_a_leader_killed_hands_its_slot_to_its_follower(make_actor, specs, tmp_path):
    client, leader, follower, _ = _leader_and_follower(make_actor, specs, tmp_path)
    log = EventLog(client)
    log.until(lambda _: bool(log.of(leader.fqid, base.STARTED)))
    (result,) = client.kill([log.of(leader.fqid, base.STARTED)[0].handle], 2.0)
    assert result.confirmed, result
    log.until(log.all_final([leader.fqid, follower.fqid]), timeout=15)
    assert [e.kind for e in log.finals()[leader.fqid]] == [base.KILLED]
    assert [e.kind for e in log.finals()[follower.fqid]] == [base.FINISHED] and _ran(follower)


def test_a_follower_killed_with_its_leader_never_runs(make_actor, specs, tmp_path):
    """Called off before the kill signals anything: the leader's end, which the kill
    brings, never starts it (as queued work killed never starts)."""
    client, leader, follower, handles = _leader_and_follower(make_actor, specs, tmp_path)
    log = EventLog(client)
    log.until(lambda _: bool(log.of(leader.fqid, base.STARTED)))
    results = client.kill([log.of(leader.fqid, base.STARTED)[0].handle, handles[1]], 2.0)
    assert all(r.confirmed for r in results), results
    log.until(log.all_final([leader.fqid, follower.fqid]), timeout=15)
    assert [e.kind for e in log.finals()[follower.fqid]] == [base.KILLED]
    assert not log.of(follower.fqid, base.STARTED) and not _ran(follower)
    assert _states(follower) == [sf.CREATED, sf.KILLED]  # called off before any signal
    assert client.ping()["followers"] == 0


def test_a_follower_past_its_wait_before_the_watcher_sees_it_is_killed_as_running_work(
        specs, tmp_path, monkeypatch, leftover_check):
    """The window between a leader's end and the watcher's reading of it: the follower
    has started (its wrapper closed the call-off pipe), yet the actor still has it
    primed. A kill then cannot call it off (the write meets a closed pipe) and signals
    it as running work. The watcher is held in that window (an actor in this process,
    its watcher made to wait) so the kill comes in it every time."""
    actor = LocalActor(concurrency=1)
    watcher_may_go = concurrent.futures.Future()
    on_ended = actor._on_ended

    def held(ended):
        watcher_may_go.result(timeout=60)
        on_ended(ended)

    monkeypatch.setattr(actor, "_on_ended", held)
    killer = concurrent.futures.ThreadPoolExecutor(1)
    try:
        leader, follower = specs([["/bin/sh", "-c", WAITS_FOR_GO.replace("../../go", str(tmp_path / "go"))],
                                  ["/bin/sh", "-c", "touch ran; exec sleep 60"]])
        handles = actor.submit([leader, follower])
        _until(lambda: actor.ping()["followers"] == 1, "no follower was primed")
        (tmp_path / "go").touch()
        _until(lambda: _ran(follower), "the follower did not start in its leader's slot")
        assert actor.ping()["followers"] == 1  # the watcher has not seen the leader's end
        killing = killer.submit(actor.kill, [handles[1]], 2.0)
        _until(lambda: killing.done() or not procs.find_by_marker(follower.marker),
               "the kill did not end the follower")
        if killing.done():
            killing.result()  # it failed: raise what it raised
        watcher_may_go.set_result(None)
        (result,) = killing.result(timeout=30)
        assert result.confirmed, result
        log = EventLog(actor)
        log.until(log.all_final([leader.fqid, follower.fqid]), timeout=15)
        assert [e.kind for e in log.finals()[leader.fqid]] == [base.FINISHED]
        assert [e.kind for e in log.finals()[follower.fqid]] == [base.KILLED]
        assert _states(follower)[-1] == sf.KILLED and sf.RUNNING in _states(follower)
    finally:
        if not watcher_may_go.done():
            watcher_may_go.set_result(None)
        killer.shutdown()
        actor.close()


@pytest.mark.parametrize("how", ["closed", "SIGKILLed"])
def test_a_follower_whose_actor_is_gone_before_its_turn_never_runs(make_actor, specs, tmp_path,
                                                                    marker_prefix, how):
    """Its actor gone (closed, or its process killed), the follower ends at once without
    running: the recovery finds its subjob only accepted (a CREATED line) and sends it
    again; had it run, it would be found by its marker instead."""
    client, leader, follower, _ = _leader_and_follower(make_actor, specs, tmp_path)
    log = EventLog(client)
    log.until(lambda _: bool(log.of(leader.fqid, base.STARTED)))
    leader_pid = log.of(leader.fqid, base.STARTED)[0].handle.pid
    if how == "closed":
        client.close()
    else:
        # SIGKILL, as the kernel's OOM killer would (not ray.kill: with Ray's default
        # kill_child_processes_on_worker_exit, which a Ray started by another test in
        # this process may have, Ray would end the leader's wrapper first).
        actor_pid = client.ping()["pid"]
        os.kill(actor_pid, signal.SIGKILL)
        _until(lambda: _zombie(actor_pid), "the actor's process never died")
        stop_quietly(client)  # (its pool forgets it)
    # The follower's wrapper ends by itself once the pipe is gone: the last of the actor's
    # threads to exit releases it (its main thread shows as a zombie a little before).
    # Had its leader ended in that moment, it would have started, and been adopted.
    _until(lambda: not procs.find_by_marker(f"{marker_prefix}:{follower.fqid}"),
           "the follower's wrapper waits on")
    (tmp_path / "go").touch()
    _until(lambda: not os.path.exists(f"/proc/{leader_pid}") or _zombie(leader_pid),
           "the leader never ended")
    time.sleep(0.5)  # time enough for a follower that (wrongly) went on to run
    assert not _ran(follower) and _states(follower) == [sf.CREATED], (
        open(os.path.join(follower.workdir, "status")).read(), leader_pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
