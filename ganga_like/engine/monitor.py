"""The monitor: waits on the backend actors and applies their events in batches.

Runs in every session that has used a backend (interactive or script), as two
threads: a *poller* keeps one long poll in flight per actor and puts what comes
back on a queue; the *monitor* thread waits on that queue (with the submissions
and calls the session hands it) and applies what it gets. Neither wakes on a
timer while nothing happens, and either one wakes as soon as there is work. The
monitor is the only writer of backend-driven status changes, so the user's
thread and the monitor rarely conflict: the user's thread moves jobs to
``submitting`` and hands the backend's answer here (``submit_results``), which waits
for the first events of the subjobs the backend queued, to be applied with them
(``submission_wait.py``: one write of each such subjob instead of two).

For each batch of events, one transaction applies them through ``set_status``.
What an event does to a job is not decided here: the monitor looks up its rule in
``ganga_like.event_rules`` (a table, beside the status table) and applies it.
``running -> completing -> completed`` is a critical section: ``completing`` is
committed first, outputs are collected and postprocessors run outside any
transaction, then a second transaction moves each to ``completed`` or
``failed``. A (sub)job with nothing to collect or check
(``postprocessing.has_completing_work``) moves on to ``completed`` in the same
transaction: the same two history entries, one commit fewer per subjob. A
``ConflictError`` aborts the batch, which is re-read and re-applied.
A batch whose commit finds the disk full is kept, whole and in order, and tried
again every ``DISK_RETRY`` seconds until there is room: nothing the backends said
is lost, and the thread goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from .. import event_rules
from ..backends import base
from ..backends.runtime.runs import QUEUED_DETAIL
from ..errors import DiskFull, GangaLikeError
from ..model.job import Job
from ..model.lifecycle import set_status
from ..model.writes import acting_as
from ..ray_runtime import import_ray
from ..repository.registry import JobRegistry
from ..repository.storage import Connection
from ..status import FINAL, Source, Status
from .context import EngineContext, Submission
from .operations import output
from .operations import resubmit as resubmit_op
from .postprocessing import has_completing_work, run_for_subjob
from .submission_wait import SubmissionWait

log = logging.getLogger(__name__)

POLL_TIMEOUT = 1.0  # seconds an actor holds a long poll open
# The poller looks for newly created actors this often (a new actor takes longer than
# this to start, so its first events are not delayed by it); answers wake it at once.
POLL_WAKE = 0.05
IDLE_WAIT = 1.0  # the monitor's longest sleep on its queue (anything put there wakes it)
# Under load, events are gathered until this long after the previous commit, so
# one transaction applies a few hundred at once; an event that comes after a
# quiet spell is applied at once. (Actors add their own ``EVENT_LINGER`` only while
# their stream is busy.)
BATCH_INTERVAL = 0.03
# Under a steady stream (the batch before had to wait for the interval and applied at
# least BUSY_EVENTS events), the next waits this long instead: at 10,000 /bin/true the
# 30 ms interval made a commit per 17 events, and each commit costs the same whatever
# it holds (the master's counts, its index chunk, its record, the queue log, a sync).
BUSY_INTERVAL = 0.1
BUSY_EVENTS = 8
MAX_BATCH = 5000
EVENT_LINGER = 0.03  # an actor gathers events this long after the first, per answer
DISK_RETRY = 1.0  # a batch whose commit found the disk full is tried again this often


_WAKE = object()  # put on the queue to wake the monitor (stop); ignored otherwise
CALL_LOOK = 0.5  # seconds between looks whether the monitor still runs, for a call handed to it

T = TypeVar("T")


class MonitorStopped(Exception):
    """The monitor ended before it ran a call handed to it (its service is stopping)."""


class _Call(Generic[T]):
    """A function run on the monitor's thread with its connection (:meth:`Monitor.run_here`)."""

    def __init__(self, fn: Callable[[Connection], T]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None

    def run(self, conn: Connection) -> None:
        try:
            self.value = self.fn(conn)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            self.error = exc
        finally:
            self.done.set()


class Monitor:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        # Submissions, calls, lists of events (adopted or polled) and _WAKE.
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._poller: threading.Thread | None = None
        self._since: dict[tuple, int] = {}
        self._inflight: dict[tuple, Any] = {}
        self._buffer: list[base.Event] = []
        self._outcomes: dict[str, tuple[bool, str]] = {}
        self._last_apply = 0.0
        self._interval = BATCH_INTERVAL  # the wait after the last commit (see BUSY_INTERVAL)
        self._held_back = False  # the events in the buffer waited for the interval
        # While the disk is full: no commit before this (monotonic), the submissions
        # whose answers wait to be recorded, and when the spell began (wall clock).
        self._retry_at = 0.0
        self._held_submissions: list[Submission] = []
        self._waiting = SubmissionWait()  # submissions waiting for their first events
        self._full_since = 0.0
        self._touched_masters: set[int] = set()  # top-level jobs whose postprocessing is due
        self._post_lock = threading.Lock()
        # Set when a backend actor died: the session recovers at its next turn.
        self.recovery_needed = threading.Event()
        self.batches = 0
        self.events_applied = 0
        self.errors: list[str] = []

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ganga_like-monitor", daemon=True)
            self._thread.start()
        if self._poller is None or not self._poller.is_alive():
            self._poller = threading.Thread(target=self._poll_loop, name="ganga_like-poller", daemon=True)
            self._poller.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._inbox.put(_WAKE)  # the monitor may be asleep on its queue
        for thread in (self._thread, self._poller):
            if thread is not None:
                thread.join(timeout)

    def submit_results(self, submission: Submission) -> None:
        self._inbox.put(submission)

    def run_here(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` with the monitor's connection, on its thread, between two of its
        batches; return what it returns, or raise what it raises (MonitorStopped if the
        monitor ends first). The streamer takes its batches so: they and the monitor's
        records of them are then written through one connection, which reads each
        subjob once and never conflicts with itself."""
        if threading.current_thread() is self._thread:
            return fn(self.conn)  # (from one of its own calls: waiting for itself would hang)
        call = _Call(fn)
        self._inbox.put(lambda: call.run(self.conn))
        while not call.done.wait(CALL_LOOK):
            if not self.running:
                # Its last turn may have taken the call just before it ended.
                if call.done.is_set():
                    break
                raise MonitorStopped("the monitor ended before it ran the call")
        if call.error is not None:
            raise call.error
        return cast(T, call.value)

    def inject(self, events: list[base.Event]) -> None:
        """Apply events that did not come from a long poll (adoption after a restart)."""
        self._inbox.put(list(events))

    def settle(self, timeout: float = 5.0) -> None:
        """Return once the monitor has finished the turn it is in (its commit and the
        queue-log lines that follow it), so a caller that saw the commit also finds
        the log complete."""
        if not self.running or threading.current_thread() is self._thread:
            return
        done = threading.Event()
        self._inbox.put(done.set)
        done.wait(timeout)

    # -- the loop -----------------------------------------------------------------
    def _run(self) -> None:
        self.conn = self.ctx.store.repository.connect()
        try:
            while not self._stop.is_set():
                try:
                    self._turn()
                except DiskFull as exc:  # after its commit (auto-resubmission): one line
                    log.warning("monitor: %s", exc)
                    self.errors.append(str(exc))
                    time.sleep(0.2)
                except Exception as exc:  # the loop must never die (Ganga's did)
                    if self._stop.is_set():
                        break
                    log.exception("monitor turn failed")
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(0.2)
            self._record_held()
        finally:
            self.conn.close()

    def _record_held(self) -> None:
        """On the way out: submissions still held for their first events (a stop that came
        between two turns) are recorded now, so no submitter waits on them for ever."""
        if not self._waiting.held:
            return
        submissions, events = self._waiting.take()
        try:
            self._apply(events, submissions)
        except Exception as exc:  # (told to the submitters by _apply; the next start recovers)
            log.warning("monitor: recording the submissions held at its stop failed: %s", exc)

    def _turn(self) -> None:
        inbox = self._drain()
        calls = [i for i in inbox if callable(i) and not isinstance(i, (Submission, list))]
        try:
            self._take_in(inbox)
        finally:  # a caller waits for each: run even when the batch failed
            for fn in calls:
                fn()

    def _take_in(self, inbox: list[object]) -> None:
        """Sort what the queue held and apply a batch when one is due."""
        now = time.monotonic()
        for item in inbox:
            if isinstance(item, list):
                self._buffer.extend(self._waiting.sort_out(item))
            elif isinstance(item, Submission):
                # Held, with its subjobs' events, until their first events are here
                # (submission_wait.py); others' events are applied meanwhile as before.
                self._buffer = self._waiting.hold(item, self._buffer, now)
        submissions: list[Submission] = []
        if self._waiting.ready(now) or (self._stop.is_set() and self._waiting.held):
            submissions, events = self._waiting.take()
            self._buffer[:0] = events
        due = now - self._last_apply >= self._interval
        held = now < self._retry_at  # the disk was full: a new submission still tries
        if submissions or (not held and (self._held_submissions or (
                (self._buffer or self._outcomes) and (due or len(self._buffer) >= MAX_BATCH)))):
            batch, self._buffer = self._buffer, []
            submissions, self._held_submissions = self._held_submissions + submissions, []
            busy = self._held_back and len(batch) >= BUSY_EVENTS
            self._held_back = False
            self._apply(batch, submissions)
            self._waiting.applied(batch)
            if self._last_apply:  # (0: outcomes are due at once)
                self._interval = BUSY_INTERVAL if busy else BATCH_INTERVAL
        elif self._buffer:
            self._held_back = True
        if self.ctx.store.queue_log.held:
            self.ctx.store.queue_log.flush()  # lines a full disk held back

    def _drain(self) -> list[object]:
        """What the queue holds, once something is there or it is time to look again."""
        inbox: list[object] = []
        wait = self._wait_time()
        try:
            inbox.append(self._inbox.get(timeout=wait) if wait > 0 else self._inbox.get_nowait())
        except queue.Empty:
            pass
        while True:
            try:
                inbox.append(self._inbox.get_nowait())
            except queue.Empty:
                return inbox

    def _wait_time(self) -> float:
        """How long the monitor may sleep on its queue before it has something to do."""
        if self._stop.is_set():
            return 0.0
        hold_left = self._waiting.left(time.monotonic())
        if hold_left is not None and not (self._buffer or self._outcomes or self._held_submissions):
            return min(IDLE_WAIT, hold_left)
        if (self._buffer or self._outcomes or self._held_submissions) and \
                self._retry_at > time.monotonic():
            return min(IDLE_WAIT, self._retry_at - time.monotonic())  # the disk was full
        if self._outcomes or self._held_submissions:
            return 0.0  # outcomes of postprocessing wait for no event
        if self._buffer:
            wait = max(0.0, self._interval - (time.monotonic() - self._last_apply))
            return wait if hold_left is None else min(wait, hold_left)
        return IDLE_WAIT

    def _poll_loop(self) -> None:
        """The poller thread: answers of the actors' long polls go to the monitor's queue."""
        while not self._stop.is_set():
            try:
                events = self._poll(self.ctx.backends.items())
            except Exception as exc:  # never die: a dead poller would leave jobs unwatched
                if self._stop.is_set():
                    break
                log.exception("polling the backends failed")
                self.errors.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(0.2)
                continue
            if events:
                self._inbox.put(events)

    def _poll(self, actors: list[tuple[tuple, Any]]) -> list[base.Event]:
        """Keep one long poll in flight per actor; return the events of the first answers."""
        if not actors and not self._inflight:
            self._stop.wait(POLL_WAKE)  # nothing to watch yet: Ray need not even be imported
            return []
        ray = import_ray()
        if not ray.is_initialized():
            # Ray was shut down under us (at interpreter exit): nothing left to watch.
            self._inflight.clear()
            self._stop.wait(POLL_WAKE * 2)
            return []
        for key, actor in actors:
            if key not in self._inflight:
                since = self._since.get(key, 0)
                self._inflight[key] = actor.events.remote(since, POLL_TIMEOUT, EVENT_LINGER)
        refs = list(self._inflight.values())
        ready, _ = ray.wait(refs, num_returns=1, timeout=POLL_WAKE)
        ready_set = set(ready)
        events: list[base.Event] = []
        for key, ref in list(self._inflight.items()):
            if ref in ready_set:
                del self._inflight[key]
                try:
                    seq, got = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    # The actor is gone (its worker crashed, or it was killed): forget it,
                    # so the next use makes a new one, and have its work recovered (the
                    # new actor adopts it from the handles and status files).
                    log.warning("backend actor %s died: %s", key[0], str(exc).splitlines()[0])
                    self.errors.append(f"{key[0]} actor died: {str(exc).splitlines()[0]}")
                    self.ctx.backends.forget(key)
                    self._since.pop(key, None)
                    self.recovery_needed.set()
                    continue
                except Exception as exc:
                    self.errors.append(f"events from {key[0]}: {exc}")
                    continue
                self._since[key] = max(seq, self._since.get(key, 0))
                events.extend(got)
        return events

    # -- applying -----------------------------------------------------------------
    def _apply(self, events: list[base.Event], submissions: list[Submission]) -> None:
        completing: list[str] = []
        failed_auto: list[str] = []
        resubmitted: list[list[Job]] = []
        outcomes, self._outcomes = self._outcomes, {}
        batch = self.ctx.new_cause("monitor batch")  # every change it makes names it

        def work() -> None:
            completing.clear()
            failed_auto.clear()
            jobs = BatchJobs(self.conn.jobs)
            self._finish_completing(jobs, outcomes)
            self._record_submissions(jobs, submissions)
            for event in events:
                job = _lookup(jobs, event.fqid)
                if job is not None:  # else removed
                    self._apply_event(job, event, completing, failed_auto)
            completing[:] = self._complete_at_once(jobs, completing)
            resubmitted[:] = resubmit_op.begin_auto_resubmits(self.ctx, jobs, failed_auto, after=batch)

        self._last_apply = time.monotonic()
        try:
            with acting_as(batch):
                self.conn.write(work, on_commit=self.ctx.store.on_commit)
        except DiskFull as exc:
            self._hold(events, submissions, outcomes, exc)
            return
        except BaseException as exc:
            self._outcomes.update(outcomes)
            _answer(submissions, exc)
            raise
        _answer(submissions)
        self.ctx.touched(event.fqid for event in events)  # backend details it recorded
        self._room_again()
        self.batches += 1
        self.events_applied += len(events)
        if completing:
            self._complete(completing)
            # Outcomes are ready: record them at the next turn, not a batch window later.
            self._last_apply = 0.0
        if self._touched_masters:
            self._finish_masters()
        if resubmitted:
            resubmit_op.send_auto_resubmits(self.ctx, resubmitted)
        self.ctx.notify_changed()

    def _record_submissions(self, jobs: BatchJobs, submissions: list[Submission]) -> None:
        """The backends' handles of submitted work, for jobs still on that attempt."""
        for sub in submissions:
            for fqid, attempt, handle in sub.pairs:
                job = _lookup(jobs, fqid)
                if job is not None and job.submit_counter == attempt:
                    self._record_submission(job, handle)

    def _room_again(self) -> None:
        """After a commit: if the disk had been full, say that what it held is recorded."""
        if self._full_since:
            log.info("the disk has room again: recorded what was held back since %s",
                     time.strftime("%H:%M:%S", time.localtime(self._full_since)))
            self._full_since = 0.0

    def _hold(self, events: list[base.Event], submissions: list[Submission],
              outcomes: dict[str, tuple[bool, str]], exc: DiskFull) -> None:
        """The commit found the disk full: keep the batch, whole and in order, for the
        next try; tell waiting submitters that their work runs but is not recorded yet."""
        self._buffer[:0] = events
        for fqid, outcome in outcomes.items():
            self._outcomes.setdefault(fqid, outcome)
        for sub in submissions:
            if not sub.done.is_set():
                tops = sorted({fqid.split(".")[0] for fqid, _, _ in sub.pairs}, key=int)
                sub.error = DiskFull(
                    exc.fields["filesystem"], exc.fields["path"], exc.fields["free"],
                    f"job {', '.join(tops)} went to its backend, but that cannot be recorded "
                    f"yet (it shows 'submitting' until then)",
                    "it is recorded by itself: nothing is lost")
                sub.done.set()
        self._held_submissions = submissions
        self._retry_at = time.monotonic() + DISK_RETRY
        if not self._full_since:
            self._full_since = time.time()
            log.warning("monitor: no space left on %s (%s free) for the database; what the "
                        "backends report is held and recorded once there is room (tried "
                        "every %g s)", exc.fields["filesystem"], exc.fields["free"], DISK_RETRY)
            self.errors.append(str(exc))

    def _record_submission(self, job: Job, handle: base.Handle) -> None:
        status = job._current_status()  # (inside the batch's write: nothing to refresh)
        if handle.error:  # the backend could not start it at all
            refused = event_rules.REFUSED.get(status)
            if refused is not None:
                target, note = refused
                set_status(job, target, note.format(error=handle.error), source=Source.BACKEND,
                           host=handle.host)
            return
        if status is Status.SUBMITTING or handle.pid or handle.task_id or job.handle is None:
            # A handle without a pid must not replace one a STARTED event already
            # recorded (the events of a batch may overtake the submit's own answer).
            job.handle = handle.to_tuple()
        if status is Status.SUBMITTING:
            if not handle.pid and not handle.task_id:
                # Accepted, not started, and no event seen yet: say "Queued" now, so
                # that the backend's QUEUED event finds nothing left to change (one
                # write of the subjob fewer).
                job.backend_detail = QUEUED_DETAIL
                if job.backend_note:
                    job.backend_note = ""
            set_status(job, Status.SUBMITTED, source=Source.BACKEND, host=handle.host)

    def _apply_event(self, job: Job, event: base.Event, completing: list[str],
                     failed_auto: list[str]) -> None:
        """Apply the event's rule (``ganga_like.event_rules``) to ``job``."""
        handle = event.handle
        rule = event_rules.rule_for(event_rules.Situation(
            event.kind, job._current_status(), event_rules.exit_class(event.exit_code),
            handle is not None and bool(handle.error), (job.master or job).monitored,
            handle is None or handle.attempt == job.submit_counter))
        if rule.record_handle and handle is not None and event_rules.records(handle, job.handle):
            job.handle = handle.to_tuple()
        detail = rule.detail_for(event.detail)
        if detail and job.backend_detail != detail:
            job.backend_detail = detail
        note = rule.backend_note_for(event.note, event.detail, job.backend_note)
        if job.backend_note != note:
            job.backend_note = note
        if rule.record_exit_code:
            job.exit_code = event.exit_code
        if rule.moves:
            self._move(job, event, rule)
        if rule.collect:
            completing.append(job.fqid)
        if rule.auto_resubmit:
            failed_auto.append(job.fqid)
        if rule.touch:
            self._touch(job)

    def _move(self, job: Job, event: base.Event, rule: event_rules.Rule) -> None:
        """Move ``job`` through the rule's statuses; the last move carries its note."""
        handle = event.handle
        note = rule.note_for(event.note, event.exit_code, handle.error if handle is not None else "")
        tail = output.log_tail(self.ctx, job) if rule.stderr_tail else ""
        if tail:
            note += f" | stderr: {tail}"
        now = event.time if rule.at_event_time else None
        host = handle.host if handle is not None else ""
        *through, target = rule.moves
        for status in through:
            set_status(job, status, source=Source.BACKEND, now=now, host=host)
        set_status(job, target, note, source=Source.BACKEND, now=now, host=host)

    def _complete(self, fqids: list[str]) -> None:
        """Outputs and postprocessors, outside any transaction, after ``completing`` has
        been committed; the next batch's transaction records each outcome."""
        outcomes = self._outcomes
        jobs = self.conn.jobs
        for fqid in fqids:
            job = _lookup(jobs, fqid)
            if job is None:
                continue
            try:
                ok, note = run_for_subjob(job)
            except GangaLikeError as exc:
                ok, note = False, str(exc)
            except Exception as exc:  # a user's checker must not stop the monitor
                ok, note = False, f"postprocessing raised {type(exc).__name__}: {exc}"
            outcomes[fqid] = (ok, note)

    def _finish_completing(self, jobs: BatchJobs, outcomes: dict[str, tuple[bool, str]]) -> None:
        for fqid, (ok, note) in outcomes.items():
            job = _lookup(jobs, fqid)
            if job is None or job._current_status() is not Status.COMPLETING:
                continue
            self._record_outcome(job, ok, note)

    def _complete_at_once(self, jobs: BatchJobs, fqids: list[str]) -> list[str]:
        """(In the batch's transaction) record ``completed`` now for those of ``fqids``
        whose completing step has nothing to do; return the others, whose step runs
        after this commit."""
        later = []
        for fqid in dict.fromkeys(fqids):  # once each, in order
            job = _lookup(jobs, fqid)
            if job is None or job._current_status() is not Status.COMPLETING:
                continue
            if has_completing_work(job):
                later.append(fqid)
            else:
                self._record_outcome(job, True, "")
        return later

    def _record_outcome(self, job: Job, ok: bool, note: str) -> None:
        """(In the batch's transaction) the outcome of a (sub)job's completing step."""
        set_status(job, Status.COMPLETED if ok else Status.FAILED, note, source=Source.MONITOR)
        self._touch(job)

    def _touch(self, job: Job) -> None:
        """Note a top-level job whose master-level postprocessors may now be due.

        Called inside the transaction, before its commit, so ``wait()`` cannot see the
        final status before it also sees the postprocessing pending."""
        top = job.master or job
        if top.postprocessors and top.id is not None:  # (a stored job: it has its id)
            with self._post_lock:
                self._touched_masters.add(top.id)

    def postprocessing(self, top_ids: set[int] | None) -> bool:
        """Whether master-level postprocessing of any of these jobs (None: of any job)
        is still pending."""
        with self._post_lock:
            if top_ids is None:
                return bool(self._touched_masters)
            return bool(self._touched_masters & top_ids)

    def _finish_masters(self) -> None:
        """Master-level postprocessors (mergers, notifiers), once per master turning final."""
        from .postprocessing import run_for_master

        with self._post_lock:
            touched = set(self._touched_masters)
        for master_id in touched:
            master = _lookup(self.conn.jobs, str(master_id))
            if master is not None and master.status in FINAL and master.postprocessors:
                try:
                    run_for_master(master)
                except Exception as exc:  # a user's merger must not stop the monitor
                    log.exception("postprocessing of job %s failed", master_id)
                    self.errors.append(f"job {master_id}: postprocessing raised {exc}")
            with self._post_lock:
                self._touched_masters.discard(master_id)


def _answer(submissions: list[Submission], error: BaseException | None = None) -> None:
    """Wake the submitters waiting on these submissions (with the error, if the batch failed)."""
    for sub in submissions:
        if error is not None:
            sub.error = error
        sub.done.set()


class BatchJobs:
    """The jobs registry as one batch's transaction reads it: each top-level job looked
    up once, its subjobs straight from its tree (a batch names the subjobs of one master
    hundreds of times, and each lookup through the registry parsed the id and went
    through the database's root again). Made afresh by each attempt of the batch."""

    def __init__(self, jobs: JobRegistry) -> None:
        self._jobs = jobs
        self._tops: dict[str, Job] = {}

    def get(self, fqid: str) -> Job:
        head, dot, tail = fqid.partition(".")
        if not dot or not tail.isdigit():
            return self._jobs.get(fqid)
        top = self._tops.get(head)
        if top is None:
            top = self._jobs.get(head)
            if top is None:  # (a registry raises JobNotFound; a plain mapping gives None)
                return self._jobs.get(fqid)
            self._tops[head] = top
        tree = top._subjobs
        sub: Job | None = None if tree is None else tree.get(int(tail))
        return sub if sub is not None else self._jobs.get(fqid)  # (raises, saying why)


def _lookup(jobs: Any, fqid: str) -> Any:
    try:
        return jobs.get(fqid)
    except GangaLikeError:
        return None


__all__ = ["Monitor", "Submission", "FINAL"]
