"""Local's native launcher (backends/runtime/launcher.py, launcher.c) on real processes.

The launcher makes each wrapper as the actor's own child, so the actor watches and
reaps it as one it spawned itself. These tests use an actor in this process (the
plain class: its watcher can be held, the launcher found among our children) and
check what a lost launcher leaves: every subjob it was asked for runs exactly once,
whether its wrapper was made and still runs, was made and has ended, or was never made.
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from ganga_like.backends import base
from ganga_like.backends.local.actor import LAUNCHER_PATIENCE, LocalActor
from ganga_like.backends.runtime import status_file as sf

from .contract import EventLog, stop_quietly
from .test_local_contract import _make_actors

WAITS_FOR_GO = "while [ ! -e {go} ]; do sleep 0.02; done; echo $GANGA_LIKE_MARKER >> {ran}"
COUNTS = "echo $GANGA_LIKE_MARKER >> {ran}"
SIGNALS = "grep -E '^Sig(Ign|Blk)' /proc/self/status"


def _until(done, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _launcher(actor: LocalActor) -> psutil.Process:
    path = actor.ping()["launcher"]
    assert path, "the actor runs without its launcher"
    (found,) = [child for child in psutil.Process().children() if _exe(child) == path]
    return found


def _exe(proc: psutil.Process) -> str | None:
    try:
        return proc.exe()
    except psutil.Error:
        return None


def _stop(launcher: psutil.Process) -> None:
    """SIGSTOP, and wait until it took effect (a signal is delivered in a moment, not at once)."""
    launcher.send_signal(signal.SIGSTOP)
    _until(lambda: launcher.status() == psutil.STATUS_STOPPED, "the launcher did not stop")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _every_thread_gone(pid: int) -> bool:
    """No thread of ``pid`` runs (its leader a zombie at most): its descriptors are closed."""
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1 and _gone(pid)
    except FileNotFoundError:
        return True


def _states(spec) -> list[str]:
    return [info.state for info in sf.StatusFile(os.path.join(spec.workdir, "status")).history()]


def _zombies() -> set[int]:
    found = set()
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.Error:
            pass
    return found


def _no_zombies() -> None:
    """No child of ours left unreaped by the actor (beyond those other tests in this
    process left before this one began)."""
    left = _zombies() - _zombies_before
    assert not left, f"children left unreaped: {sorted(left)}"


_zombies_before: set[int] = set()


@pytest.fixture
def actor():
    _zombies_before.clear()
    _zombies_before.update(_zombies())
    made = []

    def make(**options) -> LocalActor:
        made.append(LocalActor(**options))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_wrappers_are_the_actors_children_and_start_with_default_signals(actor, specs, leftover_check):
    """A wrapper the launcher made is our child; its payload (a start, and a follower
    behind it) starts with no signal ignored or blocked, though CPython ignores SIGPIPE
    (``yes | head`` would otherwise end with an error instead of quietly)."""
    local = actor(concurrency=1)
    jobs = specs([["/bin/sh", "-c", f"{SIGNALS}; sleep 0.3"], ["/bin/sh", "-c", SIGNALS]])
    local.submit(jobs)
    log = EventLog(local)
    log.until(lambda _: bool(log.of(jobs[0].fqid, base.STARTED)))
    wrapper = log.of(jobs[0].fqid, base.STARTED)[0].handle.pid
    assert psutil.Process(wrapper).ppid() == os.getpid()
    assert _launcher(local).ppid() == os.getpid()
    log.until(log.all_final([job.fqid for job in jobs]))
    assert local.ping()["launcher"], "the launcher was lost on the way"
    for job in jobs:
        assert [e.exit_code for e in log.finals()[job.fqid]] == [0]
        _assert_default_signals(job)
    _no_zombies()


def _assert_default_signals(job) -> None:
    lines = open(os.path.join(job.workdir, "output", "stdout")).read().split()
    assert lines[0::2] == ["SigBlk:", "SigIgn:"], lines
    # The standard signals; 32 to 34 are the C library's own (it sets them up itself).
    assert [int(mask, 16) & 0x7FFFFFFF for mask in lines[1::2]] == [0, 0], lines


def test_a_lost_launcher_loses_no_subjob_and_runs_none_twice(actor, specs, tmp_path, monkeypatch,
                                                             leftover_check):
    """The launcher killed with three requests unanswered: one whose wrapper was made and
    has ended (found by the wrapper its status file names), one made and still running
    (found by its marker), one never made (the launcher was stopped before it read it:
    started again by the actor itself). Each runs exactly once."""
    local = actor(concurrency=3)
    dropped = []
    monkeypatch.setattr(local, "_on_launched", dropped.extend)  # answers lost on the way
    ran, go = tmp_path / "ran", tmp_path / "go"
    ended, running, never = specs([["/bin/sh", "-c", COUNTS.format(ran=ran)],
                                   ["/bin/sh", "-c", WAITS_FOR_GO.format(go=go, ran=ran)],
                                   ["/bin/sh", "-c", f"{COUNTS.format(ran=ran)}; {SIGNALS}"]])
    launcher = _launcher(local)
    local.submit([ended, running])
    _until(lambda: sf.RUN_DONE in _states(ended) and sf.RUNNING in _states(running),
           "the launcher did not make the first two wrappers")
    _stop(launcher)
    local.submit([never])
    launcher.send_signal(signal.SIGKILL)
    log = EventLog(local)
    log.until(lambda _: bool(log.of(running.fqid, base.STARTED)) and bool(log.finals().get(ended.fqid)))
    assert local.ping()["launcher"] is None  # the actor spawns for itself from now on
    go.touch()
    log.until(log.all_final([ended.fqid, running.fqid, never.fqid]))
    for job in (ended, running, never):
        assert [(e.kind, e.exit_code) for e in log.finals()[job.fqid]] == [(base.FINISHED, 0)], job.fqid
    assert sorted(ran.read_text().split()) == sorted(job.marker for job in (ended, running, never))
    assert len(dropped) == 2  # the two it answered before it was stopped
    _assert_default_signals(never)  # spawned by the actor itself
    _no_zombies()


def test_a_launcher_killed_in_a_burst_loses_nothing(actor, specs, tmp_path, leftover_check):
    """SIGKILL of the launcher while 300 short subjobs pass through two slots: every one
    reported once, completed, and run exactly once; nothing left unreaped."""
    local = actor(concurrency=2)
    ran = tmp_path / "ran"
    jobs = specs([["/bin/sh", "-c", COUNTS.format(ran=ran)]] * 300)
    launcher = _launcher(local)
    local.submit(jobs)
    _until(lambda: ran.exists() and len(ran.read_text().split()) >= 60, "the burst did not start")
    launcher.kill()
    log = EventLog(local)
    log.until(log.all_final([job.fqid for job in jobs]), timeout=120)
    finals = log.finals()
    assert all([(e.kind, e.exit_code) for e in finals[job.fqid]] == [(base.FINISHED, 0)] for job in jobs)
    lines = ran.read_text().split()
    assert len(lines) == len(set(lines)) == 300
    _no_zombies()


def test_a_launcher_that_stops_answering_is_replaced_by_the_actor_itself(actor, specs, tmp_path,
                                                                         leftover_check):
    """A launcher stopped (SIGSTOP: it neither answers nor ends) holds nothing for long:
    after LAUNCHER_PATIENCE the actor kills it and starts the subjob itself, once."""
    local = actor(concurrency=1)
    ran = tmp_path / "ran"
    (job,) = specs([["/bin/sh", "-c", COUNTS.format(ran=ran)]])
    launcher = _launcher(local)
    _stop(launcher)
    started = time.monotonic()
    local.submit([job])
    log = EventLog(local)
    log.until(log.all_final([job.fqid]), timeout=LAUNCHER_PATIENCE + 20)
    assert time.monotonic() - started >= LAUNCHER_PATIENCE * 0.9
    assert [(e.kind, e.exit_code) for e in log.finals()[job.fqid]] == [(base.FINISHED, 0)]
    assert ran.read_text().split() == [job.marker]
    assert local.ping()["launcher"] is None
    assert not launcher.is_running() or launcher.status() == psutil.STATUS_ZOMBIE
    _no_zombies()


@pytest.fixture
def ray_actor(ray_session, leftover_check, actor_pool):
    yield from _make_actors(actor_pool)


def test_an_actor_killed_with_requests_at_its_launcher_starts_none_of_them(ray_actor, specs, tmp_path):
    """The actor (a Ray actor) SIGKILLed while its launcher holds three requests not read
    yet: the launcher exits without making any (an ended actor starts nothing new; the
    recovery finds those subjobs only accepted and sends them again)."""
    client = ray_actor(concurrency=3)
    info = client.ping()
    actor_pid = info["pid"]
    (launcher,) = [child for child in psutil.Process(actor_pid).children() if _exe(child) == info["launcher"]]
    ran = tmp_path / "ran"
    jobs = specs([["/bin/sh", "-c", COUNTS.format(ran=ran)]] * 3)
    _stop(launcher)
    client.submit(jobs)  # returns once the requests are sent
    os.kill(actor_pid, signal.SIGKILL)
    # Until its last thread has exited, its descriptors are still open: a launcher that
    # reads a request before then makes it (a spawn of the actor's last moment, which
    # the recovery finds by its marker as any started work).
    _until(lambda: _every_thread_gone(actor_pid), "the actor's process never died")
    stop_quietly(client)  # (its pool forgets it)
    launcher.send_signal(signal.SIGCONT)
    _until(lambda: _gone(launcher.pid), "the launcher outlived its actor")
    time.sleep(0.3)  # time enough for a wrapper that (wrongly) was made to run
    assert not ran.exists(), [open(os.path.join(j.workdir, "status")).read() for j in jobs] + [
        launcher.pid, actor_pid]
    assert all(_states(job) == [sf.CREATED] for job in jobs), [_states(job) for job in jobs]
