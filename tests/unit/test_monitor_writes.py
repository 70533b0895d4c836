"""How often the monitor writes a subjob's record (issue 22: the service's CPU per subjob).

A real engine on a real FileStorage, its monitor fed by hand what a backend's actor
answers (no Ray): a submission whose queued subjobs' first events come a moment after
it is recorded together with them, so each such subjob's record is written once; a
subjob that starts and ends between two batches is written once more; the stores are
counted in the FileStorage itself. A submission is held no longer than
``SUBMISSION_WAIT``, one that started everything is not held, and a held one delays
no other job's events.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from ganga_like.backends.base import FINISHED, QUEUED, STARTED, Event, Handle
from ganga_like.backends.local.config import Local
from ganga_like.config import Config
from ganga_like.engine.context import Submission
from ganga_like.engine.core import Engine
from ganga_like.engine.monitor import Monitor
from ganga_like.engine.operations.common import begin_attempt
from ganga_like.engine.operations.submit import split
from ganga_like.engine.submission_wait import SUBMISSION_WAIT
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter
from ganga_like.status import Source


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[Engine]:
    made = Engine(Config.from_env(root=str(tmp_path_factory.mktemp("writes") / "gl")))
    yield made
    made.close()


@pytest.fixture
def monitor(engine: Engine) -> Iterator[Monitor]:
    made = Monitor(engine.context)  # its thread is not started: each turn is the test's
    made.conn = engine.repository.connect()
    yield made
    made.conn.close()


def _submitting(engine: Engine, n: int) -> Job:
    """A stored master whose ``n`` subjobs are ``submitting``, as submit() leaves them."""
    job = Job(name="writes", application=Executable(exe="/bin/true"), backend=Local(),
              splitter=ArgSplitter(args=[[] for _ in range(n)]))
    engine.register(job)

    def prepare() -> None:
        split(job)
        for sub in job._subjobs.values():
            begin_attempt(sub, "", source=Source.USER)

    engine.write(prepare)
    return job


def _handle(fqid: str, pid: int = 0) -> Handle:
    return Handle("Local", fqid, host="here", pid=pid, create_time=1.0 if pid else 0.0, attempt=1)


def _event(fqid: str, kind: str, **fields: object) -> Event:
    return Event(seq=0, fqid=fqid, kind=kind, time=time.time(), **fields)  # type: ignore[arg-type]


def _queued(fqid: str) -> Event:
    return _event(fqid, QUEUED, detail="ConcurrencyLimit", note="Local's concurrency limit 2 reached",
                  handle=_handle(fqid))


def _ran(fqid: str) -> list[Event]:
    handle = _handle(fqid, pid=4242)
    return [_event(fqid, STARTED, detail="Running", handle=handle),
            _event(fqid, FINISHED, exit_code=0, note="RUN_DONE exit=0", handle=handle)]


def _stores_since(engine: Engine, tid: bytes, job: Job) -> Counter:
    """How many times each subjob's record was written in transactions after ``tid``."""
    oids = {sub._p_oid: sub.id for sub in job._subjobs.values()}
    written: Counter = Counter()
    for txn in engine.repository.db.storage.iterator(start=tid):
        if txn.tid > tid:
            written.update(oids[rec.oid] for rec in txn if rec.oid in oids)
    return written


def _turn_now(monitor: Monitor) -> None:
    monitor._last_apply = 0.0  # no batch interval to wait for
    monitor._turn()


def test_a_submission_and_its_queued_subjobs_first_events_are_written_once(engine, monitor):
    job = _submitting(engine, 6)
    fqids = [f"{job.id}.{i}" for i in range(6)]
    before = engine.repository.db.storage.lastTransaction()
    # Two subjobs started at once (their handles name a process), four wait in the queue.
    submission = Submission([(f, 1, _handle(f, pid=100 + i if i < 2 else 0))
                             for i, f in enumerate(fqids)])
    monitor.submit_results(submission)
    _turn_now(monitor)
    assert not submission.done.is_set()  # held: the queued subjobs' events are on their way
    monitor.inject([_queued(f) for f in fqids[2:]] + _ran(fqids[0]))
    _turn_now(monitor)
    assert submission.done.is_set() and submission.error is None
    engine.refresh()
    subs = [engine.jobs.get(f) for f in fqids]
    assert [s.status.value for s in subs] == ["completed"] + ["submitted"] * 5
    assert [s.backend_detail for s in subs[2:]] == ["ConcurrencyLimit"] * 4
    assert _stores_since(engine, before, job) == Counter(range(6))  # each written once
    # Started and ended between two batches: one more write each.
    middle = engine.repository.db.storage.lastTransaction()
    monitor.inject([event for f in fqids[1:] for event in _ran(f)])
    _turn_now(monitor)
    engine.refresh()
    assert [engine.jobs.get(f).status.value for f in fqids] == ["completed"] * 6
    assert _stores_since(engine, middle, job) == Counter(range(1, 6))
    history = [(e[1], e[2]) for e in engine.jobs.get(fqids[3]).history]
    assert history == [("new", "submitting"), ("submitting", "submitted"), ("submitted", "running"),
                       ("running", "completing"), ("completing", "completed")]


def test_a_submission_whose_events_do_not_come_is_recorded_after_the_wait(engine, monitor):
    job = _submitting(engine, 2)
    submission = Submission([(f"{job.id}.{i}", 1, _handle(f"{job.id}.{i}")) for i in range(2)])
    monitor.submit_results(submission)
    started = time.monotonic()
    while not submission.done.is_set() and time.monotonic() - started < 5 * SUBMISSION_WAIT:
        monitor._turn()  # sleeps on its queue until the wait is over
    waited = time.monotonic() - started
    assert submission.done.is_set() and waited >= SUBMISSION_WAIT
    engine.refresh()
    assert [sub.status.value for sub in engine.jobs.get(job.id).subjobs] == ["submitted"] * 2


def test_a_submission_that_started_everything_is_not_held(engine, monitor):
    job = _submitting(engine, 2)
    submission = Submission([(f"{job.id}.{i}", 1, _handle(f"{job.id}.{i}", pid=7 + i))
                             for i in range(2)])
    monitor.submit_results(submission)
    _turn_now(monitor)
    assert submission.done.is_set()


def test_a_held_submission_does_not_delay_other_jobs_events(engine, monitor):
    other = _submitting(engine, 1)
    other_sub = f"{other.id}.0"
    monitor.submit_results(Submission([(other_sub, 1, _handle(other_sub, pid=9))]))
    _turn_now(monitor)
    job = _submitting(engine, 2)
    held = Submission([(f"{job.id}.{i}", 1, _handle(f"{job.id}.{i}")) for i in range(2)])
    monitor.submit_results(held)
    monitor.inject(_ran(other_sub))
    _turn_now(monitor)
    engine.refresh()
    assert not held.done.is_set()
    assert engine.jobs.get(other_sub).status.value == "completed"
    monitor.inject([_queued(f"{job.id}.{i}") for i in range(2)])
    _turn_now(monitor)
    assert held.done.is_set()


def test_a_submission_held_when_the_monitor_stops_is_recorded(engine):
    monitor = Monitor(engine.context)
    job = _submitting(engine, 2)
    held = Submission([(f"{job.id}.{i}", 1, _handle(f"{job.id}.{i}")) for i in range(2)])
    monitor.start()  # its own threads (no backend yet: nothing to poll)
    try:
        monitor.submit_results(held)
        deadline = time.monotonic() + 5
        while not monitor._waiting.held and time.monotonic() < deadline:
            time.sleep(0.005)
        assert monitor._waiting.held and not held.done.is_set()
    finally:
        monitor.stop()
    assert held.done.is_set() and held.error is None
    engine.refresh()
    assert [sub.status.value for sub in engine.jobs.get(job.id).subjobs] == ["submitted"] * 2
