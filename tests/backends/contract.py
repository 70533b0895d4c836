"""The backend contract suite: every backend's test module subclasses BackendContract.

A backend's test module provides one fixture, ``make_actor``: a factory
``make_actor(concurrency=N) -> client`` where the client has the contract's
methods as plain blocking calls (see :class:`RayClient` for actors) plus
``stop()`` (end the actor, leaving the subjobs it started running). The
``specs`` fixture (tests/backends/conftest.py) builds SubjobSpecs with a marker
the leak check knows. A module may share its actors between tests
(:class:`ActorPool`, through :func:`actor_factory`): a test may then get an actor
an earlier test used, idle and with its events acknowledged, so no test may rely
on an actor being new unless it stopped or closed another.

Real processes, real Ray, no mocks. Payloads are coreutils and bash.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Hashable
from typing import Any

import pytest

from ganga_like.backends import base
from ganga_like.backends.base import Event, Handle
from ganga_like.backends.resources import Request
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime import trace

STATUS_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d{4} [A-Z][A-Z0-9_]{0,14}( .*)?$")


class RayClient:
    """Blocking calls to a backend Ray actor:
    ``client.submit(specs)`` == ``ray.get(actor.submit.remote(specs))``."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.ended = False
        """Stopped or closed by its test: an :class:`ActorPool` never hands it on."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        import ray

        method = getattr(self.actor, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "close":
                self.ended = True
            return ray.get(method.remote(*args, **kwargs))

        return call

    def stop(self) -> None:
        import ray

        self.ended = True
        ray.kill(self.actor, no_restart=True)


def stop_quietly(client: Any) -> None:
    try:
        client.stop()
    except Exception:  # already stopped by the test
        pass


BUSY_FIELDS = ("running", "queued", "lingering", "pending")
"""The ``ping()`` counts of an actor's runs by state (``pending``: RayCluster, Slurm):
all zero once every run it was given has had its final event."""


class ActorPool:
    """Backend actors that the tests of one module share (``actor_pool``, conftest.py).

    A new actor is a new Ray worker (a Python process that imports Ray and the driver:
    a test that only pings a new actor took 1.8 s at a load of 10, 4 to 5 s at 20),
    most of what a short contract test costs. A test gets an idle actor started with the same arguments when
    one is left, else a new one. After the test an actor goes back only when nothing of
    the test is left in it: the test did not stop or close it, ``ping()`` counts no run
    in any state and no loop error, and every event it emitted is acknowledged (so the
    next test's ``EventLog`` from 0 sees its own events only). Anything else is stopped.
    Tests that need a fresh actor (adoption by a new one, close) stop or close the first.
    """

    def __init__(self) -> None:
        self._idle: dict[Hashable, list[Any]] = {}

    def take(self, key: Hashable) -> Any | None:
        idle = self._idle.get(key)
        return idle.pop() if idle else None

    def give_back(self, key: Hashable, client: Any) -> None:
        if not client.ended and self._settled(client):
            self._idle.setdefault(key, []).append(client)
        else:
            stop_quietly(client)

    @staticmethod
    def _settled(client: Any) -> bool:
        try:
            info = client.ping()
            if any(info.get(field, 0) for field in BUSY_FIELDS) or info["loop_errors"]:
                return False
            client.events(info["seq"], 0)  # acknowledges every event up to now
        except Exception:  # a dead actor (a test killed its worker): not reusable
            return False
        return True

    def stop(self) -> None:
        for clients in self._idle.values():
            for client in clients:
                stop_quietly(client)
        self._idle.clear()


def actor_factory(start: Callable[..., Any], pool: ActorPool | None = None, kind: Hashable = ""):
    """Yield ``make_actor(...)`` built on ``start(...) -> client``: each client is pinged
    (so the actor is up) and stopped after the test, or, with ``pool``, taken from and
    given back to it (``kind`` and the arguments are its key: actors started alike);
    ``make_actor(..., fresh=True)`` starts a new one all the same (for a test of what a
    new actor says first). Backend test modules' ``make_actor`` fixtures ``yield from`` it."""
    clients: list[tuple[Hashable, Any]] = []

    def make(*args: Any, fresh: bool = False, **kwargs: Any) -> Any:
        key = (kind, args, tuple(sorted(kwargs.items())))
        client = pool.take(key) if pool is not None and not fresh else None
        if client is None:
            client = start(*args, **kwargs)
            client.ping()  # wait until it is up
        clients.append((key, client))
        return client

    yield make
    for key, client in clients:
        if pool is not None:
            pool.give_back(key, client)
        else:
            stop_quietly(client)


class EventLog:
    """Accumulates a client's events through long polls."""

    def __init__(self, client: Any, since: int = 0) -> None:
        self.client = client
        self.since = since
        self.events: list[Event] = []

    def poll(self, timeout: float = 1.0) -> list[Event]:
        self.since, new = self.client.events(self.since, timeout)
        self.events.extend(new)
        return new

    def until(self, done: Callable[[list[Event]], bool], timeout: float = 20.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        while not done(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [(e.fqid, e.kind, e.note) for e in self.events]
                raise AssertionError(f"timed out; events so far: {seen}")
            self.poll(min(left, 2.0))
        return self.events

    def of(self, fqid: str, kind: str | None = None) -> list[Event]:
        return [e for e in self.events if e.fqid == fqid and (kind is None or e.kind == kind)]

    def finals(self) -> dict[str, list[Event]]:
        out: dict[str, list[Event]] = {}
        for event in self.events:
            if event.kind in (base.FINISHED, base.LOST, base.KILLED):
                out.setdefault(event.fqid, []).append(event)
        return out

    def all_final(self, fqids: list[str]) -> Callable[[list[Event]], bool]:
        return lambda _events: all(fqid in self.finals() for fqid in fqids)


def read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def output_of(client: Any, spec: base.SubjobSpec) -> str:
    """Run ``spec`` to its end; its standard output, stripped."""
    client.submit([spec])
    log = EventLog(client)
    log.until(log.all_final([spec.fqid]))
    return read(os.path.join(spec.workdir, "output", "stdout")).strip()


class BackendContract:
    """The contract every backend passes. Subclasses provide the ``make_actor`` fixture."""

    OVERLAP_SECONDS = "0.3"
    """How long the concurrency test's payloads run: long enough that two of them are
    seen running at once. A backend that learns of starts and ends by polling (Slurm)
    can see a short task start and end in one round, its events one after the other."""
    PEAKS = (2,)
    """The most runs seen at once under ``concurrency=2``: both slots used, never more."""

    def test_batch_of_true_and_false(self, make_actor, specs):
        client = make_actor(concurrency=2)
        batch = specs(["/bin/true"] if i % 2 == 0 else ["/bin/false"] for i in range(20))
        handles = client.submit(batch)
        assert [h.fqid for h in handles] == [s.fqid for s in batch]
        assert not any(h.error for h in handles)
        log = EventLog(client)
        log.until(log.all_final([s.fqid for s in batch]))
        log.poll(0.3)  # nothing more may come
        finals = log.finals()
        for index, spec in enumerate(batch):
            assert [e.kind for e in finals[spec.fqid]] == [base.FINISHED], finals[spec.fqid]
            assert finals[spec.fqid][0].exit_code == (0 if index % 2 == 0 else 1)
            started = log.of(spec.fqid, base.STARTED)
            assert len(started) == 1 and started[0].seq < finals[spec.fqid][0].seq
            assert started[0].handle is not None and started[0].handle.pid > 0
        seqs = [e.seq for e in log.events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    def test_handles_survive_a_new_actor_adopts(self, make_actor, specs, tmp_path):
        first = make_actor(concurrency=4)
        # 'later' ends when the test says so, after the second actor adopted it (a fixed
        # sleep raced with a slow actor start on a loaded machine and ended first).
        go = tmp_path / "later-may-end"
        later = f"while [ ! -e {go} ]; do sleep 0.05; done"
        done_spec, failed_spec, long_spec, later_spec = specs(
            [["/bin/true"], ["/bin/sh", "-c", "exit 3"], ["/bin/sleep", "30"], ["/bin/sh", "-c", later]]
        )
        handles = first.submit([done_spec, failed_spec, long_spec, later_spec])
        log = EventLog(first)
        log.until(log.all_final([done_spec.fqid, failed_spec.fqid]))
        # Both sleeps must have started: no backend promises to start work in the
        # order it was submitted (Ray does not).
        log.until(lambda _: all(len(log.of(s.fqid, base.STARTED)) == 1
                                for s in (long_spec, later_spec)))
        handles = [e.handle for fqid in (done_spec.fqid, failed_spec.fqid, long_spec.fqid, later_spec.fqid)
                   for e in log.of(fqid, base.STARTED)]
        first.stop()
        time.sleep(0.3)

        second = make_actor(concurrency=4)
        # Handles travel through the database as tuples: adopt what was stored.
        stored = [Handle.from_tuple(h.to_tuple()) for h in handles]
        adopted = second.adopt(stored)
        by_fqid = {e.fqid: e for e in adopted}
        assert by_fqid[done_spec.fqid].kind == base.FINISHED and by_fqid[done_spec.fqid].exit_code == 0
        assert by_fqid[failed_spec.fqid].kind == base.FINISHED and by_fqid[failed_spec.fqid].exit_code == 3
        assert by_fqid[long_spec.fqid].kind == base.STARTED
        assert by_fqid[later_spec.fqid].kind == base.STARTED
        assert second.held(stored) == [False, False, True, True]

        log2 = EventLog(second)
        go.touch()
        log2.until(log2.all_final([later_spec.fqid]), timeout=10)
        (final,) = log2.finals()[later_spec.fqid]
        assert final.kind == base.FINISHED and final.exit_code == 0

        results = second.kill([stored[2]], 2.0)
        assert results[0].confirmed, results
        assert second.held(stored) == [False, False, False, False]
        log2.until(log2.all_final([long_spec.fqid]), timeout=10)
        assert [e.kind for e in log2.finals()[long_spec.fqid]] == [base.KILLED]

    def test_find_names_running_and_queued_work(self, make_actor, specs, marker_prefix):
        client = make_actor(concurrency=1)
        running, queued = specs([["/bin/sleep", "30"], ["/bin/sleep", "30"]])
        handles = client.submit([running, queued])
        log = EventLog(client)
        log.until(lambda _: len([s for s in (running, queued) if log.of(s.fqid, base.STARTED)]) >= 1)
        found = {h.fqid: h for h in client.find(marker_prefix + ":")}
        assert set(found) == {running.fqid, queued.fqid}, found
        started = next(s for s in (running, queued) if log.of(s.fqid, base.STARTED))
        waiting = queued if started is running else running
        assert found[started.fqid].pid == log.of(started.fqid, base.STARTED)[0].handle.pid
        assert found[waiting.fqid].pid == 0 and all(h.backend == handles[0].backend for h in found.values())
        assert client.find(marker_prefix + "-no-such:") == []
        client.kill([log.of(started.fqid, base.STARTED)[0].handle,
                     handles[[running, queued].index(waiting)]], 2.0)
        assert client.find(marker_prefix + ":") == []

    def test_close_stops_the_actor_and_leaves_its_work_to_adopt(self, make_actor, specs):
        first = make_actor(concurrency=2)
        (spec,) = specs([["/bin/sleep", "30"]])
        first.submit([spec])
        log = EventLog(first)
        log.until(lambda _: bool(log.of(spec.fqid, base.STARTED)))
        handle = log.of(spec.fqid, base.STARTED)[0].handle
        first.close()
        first.close()  # idempotent
        assert first.ping()["loop_errors"] == []
        second = make_actor(concurrency=2)
        (now,) = second.adopt([handle])
        assert now.kind == base.STARTED, now  # closing an actor does not end its work
        (result,) = second.kill([now.handle], 2.0)
        assert result.confirmed and second.held([now.handle]) == [False]

    def test_kill_running_confirms_and_releases(self, make_actor, specs):
        client = make_actor(concurrency=4)
        batch = specs([["/bin/sleep", "30"]] * 3)
        client.submit(batch)
        log = EventLog(client)
        log.until(lambda _: all(log.of(s.fqid, base.STARTED) for s in batch))
        handles = [log.of(s.fqid, base.STARTED)[0].handle for s in batch]
        assert client.held(handles) == [True, True, True]
        grace = 20.0  # far above what a loaded machine adds: a wait for it cannot pass unseen
        started = time.monotonic()
        results = client.kill(handles, grace)
        assert time.monotonic() - started < grace / 2  # sleep obeys TERM: no wait for the grace period
        assert [r.confirmed for r in results] == [True, True, True], results
        assert client.held(handles) == [False, False, False]
        log.until(log.all_final([s.fqid for s in batch]))
        log.poll(0.3)
        for spec in batch:
            assert [e.kind for e in log.finals()[spec.fqid]] == [base.KILLED]

    def test_kill_escalates_when_term_is_ignored(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/bash", "-c", 'trap "" TERM; echo armed; /bin/sleep 60; echo survived']])
        client.submit([spec])
        log = EventLog(client)
        log.until(lambda _: bool(log.of(spec.fqid, base.STARTED)))
        handle = log.of(spec.fqid, base.STARTED)[0].handle
        stdout = os.path.join(spec.workdir, "output", "stdout")
        deadline = time.monotonic() + 20
        while not (os.path.exists(stdout) and read(stdout) == "armed\n"):  # the trap is installed
            assert time.monotonic() < deadline, "the payload never said its TERM trap was set"
            time.sleep(0.02)
        started = time.monotonic()
        (result,) = client.kill([handle], 0.5)
        elapsed = time.monotonic() - started
        assert result.confirmed, result
        assert elapsed >= 0.45  # it waited for the grace period, then escalated
        assert client.held([handle]) == [False]
        log.until(log.all_final([spec.fqid]))
        assert [e.kind for e in log.finals()[spec.fqid]] == [base.KILLED]
        assert "survived" not in read(os.path.join(spec.workdir, "output", "stdout"))

    def test_concurrency_limit_and_queue(self, make_actor, specs):
        client = make_actor(concurrency=2)
        batch = specs([["/bin/sleep", self.OVERLAP_SECONDS]] * 6)
        handles = client.submit(batch)
        assert client.ping()["running"] <= 2
        log = EventLog(client)
        log.until(log.all_final([s.fqid for s in batch]))
        queued = [e for e in log.events if e.kind == base.QUEUED]
        # Each waiting subjob says why: a detail of the table, a reason with counts.
        assert len(queued) >= 4 and all(e.detail in rs.DETAILS and e.note for e in queued), queued
        running = peak = 0
        for event in log.events:
            if event.kind == base.STARTED:
                running += 1
            elif event.kind in (base.FINISHED, base.KILLED, base.LOST):
                running -= 1
            peak = max(peak, running)
        assert peak in self.PEAKS, (peak, [(e.fqid, e.kind) for e in log.events])
        # The processes themselves, from their status files: never more than 2 at once.
        edges = []
        for spec in batch:
            history = trace.history(spec.workdir)  # its own file, or its master's collected trace
            edges.append((next(i.when for i in history if i.state == sf.RUNNING), 1))
            edges.append((history[-1].when, -1))
        running = peak = 0
        for _when, step in sorted(edges):
            running += step
            peak = max(peak, running)
        assert peak <= 2
        assert all(e.exit_code == 0 for f in log.finals().values() for e in f)
        # A queued handle is held; killing it drops it at once.
        more = specs([["/bin/sleep", "5"]] * 3)
        handles = client.submit(more)
        assert handles[2].pid == 0  # still queued behind two sleeps
        assert client.held([handles[2]]) == [True]
        (result,) = client.kill([handles[2]], 1.0)
        assert result.confirmed
        results = client.kill(handles[:2], 1.0)
        assert all(r.confirmed for r in results)
        log.until(log.all_final([s.fqid for s in more]))
        assert all([e.kind for e in log.finals()[s.fqid]] == [base.KILLED] for s in more)

    def test_missing_or_unusable_executable_fails_per_subjob(self, make_actor, specs, tmp_path):
        plain_file = tmp_path / "not-executable"
        plain_file.write_text("echo hi\n")
        client = make_actor(concurrency=2)
        batch = specs(
            [["/nonexistent/program"], ["no-such-command-ganga-like"], [str(plain_file)], ["/bin/true"]]
        )
        handles = client.submit(batch)  # no exception for the batch
        assert len(handles) == 4
        log = EventLog(client)
        log.until(log.all_final([s.fqid for s in batch]))
        finals = {fqid: events[0] for fqid, events in log.finals().items()}
        for spec, code, words in zip(batch, (127, 127, 126, 0),
                                     ("not found", "not found", "not executable", ""), strict=True):
            event = finals[spec.fqid]
            assert event.kind == base.FINISHED and event.exit_code == code, event
            assert words in event.note, event

    def test_arguments_arrive_verbatim(self, make_actor, specs):
        args = ["a b", "'single'", '"double"', "$HOME", "; echo injected", "*", "", "back\\slash",
                "`id`", "$(id)"]
        client = make_actor(concurrency=2)
        (spec,) = specs([["/usr/bin/printf", "%s\\0", *args]])
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]))
        assert log.finals()[spec.fqid][0].exit_code == 0
        with open(os.path.join(spec.workdir, "output", "stdout"), "rb") as handle:
            out = handle.read()
        assert out.split(b"\0")[:-1] == [a.encode() for a in args]

    def test_output_lands_in_output_dir_and_status_format(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/bash", "-c", "echo out; echo err >&2; pwd; echo $GANGA_LIKE_MARKER"]])
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]))
        output = os.path.join(spec.workdir, "output")
        out_lines = read(os.path.join(output, "stdout")).splitlines()
        assert out_lines[0] == "out"
        assert os.path.realpath(out_lines[1]) == os.path.realpath(output)
        assert out_lines[2] == spec.marker
        assert read(os.path.join(output, "stderr")).strip() == "err"
        raw = read(os.path.join(spec.workdir, "status")).splitlines()
        assert raw and all(STATUS_LINE.match(line) for line in raw), raw
        history = sf.StatusFile(os.path.join(spec.workdir, "status")).history()
        states = [info.state for info in history]
        assert states[-2:] == [sf.RUNNING, sf.RUN_DONE] and states[0] in (sf.CREATED, sf.QUEUED)
        assert history[-1].exit_code == 0
        assert f"marker={spec.marker}" in history[-2].note
        assert history[0].when <= history[-1].when

    def test_signal_exit_code_and_note(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/bash", "-c", "kill -KILL $$"]])
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]))
        (event,) = log.finals()[spec.fqid]
        assert event.kind == base.FINISHED and event.exit_code == 137
        assert "signal=KILL" in event.note

    def test_ping(self, make_actor):
        client = make_actor(concurrency=3)
        info = client.ping()
        assert info["backend"] and info["host"] and info["pid"] > 0
        assert info["running"] == 0 and info["queued"] == 0

    def test_events_long_poll(self, make_actor, specs):
        client = make_actor(concurrency=2)
        since = client.ping()["seq"]
        started = time.monotonic()
        seq, events = client.events(since, 0.5)
        waited = time.monotonic() - started
        assert events == [] and seq == since
        assert 0.45 <= waited < 2.0

        client.submit(specs([["/bin/true"]]))
        time.sleep(0.3)
        started = time.monotonic()
        seq, events = client.events(since, 10.0)
        assert events and time.monotonic() - started < 2.0
        assert seq == events[-1].seq > since

        # A poll already waiting returns as soon as an event arrives.
        import ray

        pending = client.actor.events.remote(seq, 10.0) if hasattr(client, "actor") else None
        if pending is not None:
            time.sleep(0.2)
            client.submit(specs([["/bin/true"]]))
            started = time.monotonic()
            seq2, events2 = ray.get(pending, timeout=5)
            assert events2 and time.monotonic() - started < 2.0 and seq2 > seq
        # Let every subjob end (the leak check runs next), whatever events were consumed.
        deadline = time.monotonic() + 10
        while any(client.held([Handle("", f"7.{i}")])[0] for i in range(2)) and time.monotonic() < deadline:
            time.sleep(0.05)

    @pytest.mark.parametrize("count", [200])
    def test_many_small_subjobs_in_one_batch(self, make_actor, specs, count):
        client = make_actor(concurrency=2)
        batch = specs([["/bin/true"]] * count)
        client.submit(batch)
        log = EventLog(client)
        log.until(log.all_final([s.fqid for s in batch]), timeout=30)
        assert sum(1 for f in log.finals().values() for e in f
                   if e.kind == base.FINISHED and e.exit_code == 0) == count

    # ------------------------------------------------------------------ resource requests

    def test_a_request_no_machine_could_hold_is_refused_in_one_line(self, make_actor, specs):
        """Refused at submit with what exists, never left waiting forever; the rest of
        the batch goes ahead."""
        client = make_actor(concurrency=2)
        huge, fine = specs([["/bin/true"], ["/bin/true"]])
        huge = dataclasses.replace(huge, request=Request(gpus=1000))
        refused, accepted = client.submit([huge, fine])
        why = refused.error
        assert why.startswith("asks for") and "1000 GPUs" in why and "\n" not in why, refused
        assert re.search(r"has (none|\d+|\d+ \(ids [\d, ]+\))\b|\d+ GPUs?\b", why.split(";", 1)[1]), why
        assert not accepted.error
        log = EventLog(client)
        log.until(log.all_final([fine.fqid]))
        assert not log.of(huge.fqid) and client.held([refused]) == [False]

    def test_a_subjob_that_asked_for_no_gpu_sees_none(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/sh", "-c", 'echo "[${CUDA_VISIBLE_DEVICES-unset}]"']],
                        env={"CUDA_VISIBLE_DEVICES": "0,1"})
        assert output_of(client, spec) == "[]"
