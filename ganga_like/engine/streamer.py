"""The streamer: sends the rest of a master's subjobs after ``submit()`` returned.

``submit()`` stores every subjob, sends the first batch and leaves the rest to a
``SubmitStream`` on the master (``model/stream.py``). One thread per engine takes
batches of them, in subjob order, one master after another (a batch each, in
turn): it moves a batch to ``submitting`` in a transaction of its own, hands it to
the backend's actor and waits until the monitor has recorded the answer, as
``submit()`` does for its first batch. Then the next.

The batch is taken, and its specs made, on the monitor's thread with the monitor's
connection (``Monitor.run_here``; the changes name the submit's cause): the monitor
then records the answer through the connection that already holds those subjobs.
On a connection of its own, the monitor read each subjob a second time (60 us
each), and the two writers' commits of one master had to be reconciled. Input files
are copied on the streamer's own thread and connection, so the monitor never waits
for a copy; the actor is called with plain data.

What can interrupt it, and what is left:

* ``kill()``, ``remove()`` and ``force_status()`` stop a master's stream first
  (:meth:`Streamer.stop`): they wait for the batch in flight to be recorded, so they
  find every subjob that was sent, and the subjobs not sent stay ``new``;
* a refused batch stops it unless the submit said ``keep_going`` (its subjobs are
  ``new`` again, with the reason, as a refused first batch);
* the service stopping ends the thread between batches (or as it hands the monitor
  a batch to take, once the monitor has ended: ``MonitorStopped``); a SIGKILL at any point
  leaves the stream and at most one batch in ``submitting``: recovery adopts what
  the backend started of it, rolls back the rest to ``new`` and back into the
  stream, and starts the stream again (``recovery.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading

from ..backends.base import Handle, SubjobSpec
from ..backends.config import BackendConfig
from ..errors import GangaLikeError
from ..model.job import Job
from ..model.lifecycle import master_moved
from ..model.stream import SubmitStream, derived_status, stream_of
from ..model.writes import acting_as
from ..repository.storage import Connection
from ..status import Cause, Source, Status
from .context import EngineContext, Submission
from .monitor import MonitorStopped
from .operations.common import SUBMIT_CHUNK, begin_attempt, failed_handle
from .operations.submit import send_specs, specs_for, stage_inputs, stages_inputs

log = logging.getLogger(__name__)

IDLE_WAIT = 1.0  # the thread's longest sleep on its queue (a start or a close wakes it)
ERROR_PAUSE = 1.0  # seconds before a master whose batch failed unexpectedly is tried again


class Streamer:
    """One thread sending the streams of every master handed to :meth:`start`."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._wanted: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._queued: set[int] = set()  # masters in _wanted (each once)
        self._lock = threading.Lock()  # guards _queued and the thread's start
        # Held while a batch is taken, handed over and recorded: stop() waits for it.
        self._batch = threading.Lock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.errors: list[str] = []

    def start(self, top_id: int) -> None:
        """Send the rest of this master's stream (again after a restart: idempotent)."""
        with self._lock:
            if self._closing.is_set():
                return  # the next service sends it
            if top_id not in self._queued:
                self._queued.add(top_id)
                self._wanted.put(top_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ganga_like-streamer",
                                                daemon=True)
                self._thread.start()

    def stop(self, top: Job, why: str) -> None:
        """Stop ``top``'s stream (the user's thread, on the session's connection): once
        this returns, no batch of it is in flight and none will be sent."""
        with self._batch:
            def work() -> None:
                stop_and_file(top, why)

            self.ctx.store.write(work, note=f"stop sending the subjobs of {top.fqid}")

    def close(self, timeout: float = 10.0) -> None:
        """End the thread between batches; what is left to send stays on the masters."""
        with self._lock:
            self._closing.set()
            thread = self._thread
        self._wanted.put(None)
        if thread is not None:
            thread.join(timeout)

    # -- the thread ------------------------------------------------------------------
    def _run(self) -> None:
        conn = self.ctx.store.repository.connect()  # (for batches with input files to copy)
        try:
            while not self._closing.is_set():
                try:
                    top_id = self._wanted.get(timeout=IDLE_WAIT)
                except queue.Empty:
                    continue
                if top_id is None:
                    continue
                with self._lock:
                    self._queued.discard(top_id)
                try:
                    more = self._send_batch(conn, top_id)
                except MonitorStopped:
                    return  # the service is stopping: the next one sends the rest
                except Exception as exc:  # the thread must not die: try this master later
                    log.exception("sending a batch of job %s failed", top_id)
                    self.errors.append(f"job {top_id}: {type(exc).__name__}: {exc}")
                    self._closing.wait(ERROR_PAUSE)
                    more = True
                if more:
                    self.start(top_id)  # at the back: masters take turns
        finally:
            conn.close()

    def _send_batch(self, conn: Connection, top_id: int) -> bool:
        """Take, hand over and record one batch of ``top_id``; whether any is left."""
        with self._batch:
            batch = self.ctx.monitor.run_here(lambda on: self._take_batch(on, top_id))
            if batch is None:
                return False
            staging_failed = self._stage(conn, batch) if batch.stages else {}
            pairs = send_specs(self.ctx, batch.backend, batch.specs, staging_failed, batch.keep_going,
                               str(top_id))
            submission = Submission(pairs)
            self.ctx.monitor.submit_results(submission)
            submission.done.wait()
            self.batches += 1
            refused = [h for _, _, h in pairs if h.error]
            more = batch.more
            if refused and not batch.keep_going:
                first = refused[0].error
                why = f"{len(refused)} of a batch of {len(pairs)} could not be submitted: {first}"
                self.ctx.monitor.run_here(lambda on: _stop_refused(on, top_id, batch.cause, why[:300]))
                more = False
            self.ctx.notify_changed()
            return more

    def _take_batch(self, conn: Connection, top_id: int) -> _Batch | None:
        """(On the monitor's connection, in a transaction of its own) move the next
        ``SUBMIT_CHUNK`` new subjobs of ``top_id``'s stream to ``submitting``, naming the
        submit's cause; the batch, or None when nothing was taken."""
        taken: list[Job] = []
        found: list[tuple[Job, SubmitStream]] = []

        def work() -> None:
            taken.clear()
            found.clear()
            top = _lookup(conn, top_id)
            stream = stream_of(top) if top is not None else None
            if top is None or stream is None or top._subjobs is None:
                return
            found.append((top, stream))
            before = derived_status(top)
            for sub in top._subjobs.values(stream.next_id):
                if len(taken) == SUBMIT_CHUNK:
                    break
                if sub._status == Status.NEW.value:
                    begin_attempt(sub, "", source=Source.USER)
                    taken.append(sub)
            stream.left = max(0, stream.left - len(taken)) if taken else 0
            if taken:
                stream.next_id = int(taken[-1].id or 0) + 1
            master_moved(top, before, "its submission sent its last subjobs")

        top = _lookup(conn, top_id)
        cause = Cause.load(top._stream.cause) if top is not None and top._stream else None
        cause = cause or self.ctx.new_cause("submit")
        with acting_as(cause):
            conn.write(work, on_commit=self.ctx.store.on_commit)
        if not found or not taken:
            return None
        (top, stream), = found
        assert top.backend is not None  # a submitted job has its backend
        return _Batch(cause, stream.keep_going, top.backend.copy(), specs_for(self.ctx, top, taken),
                      stages_inputs(top, taken), stream.sending)

    def _stage(self, conn: Connection, batch: _Batch) -> dict[str, Handle]:
        """Copy the batch's input files, on this thread's own connection (copying may take
        long: the monitor's thread does not wait for it); the handles of those that failed."""
        conn.refresh()  # (the batch was taken through the monitor's connection)
        top = _lookup(conn, batch.specs[0].job_id)
        if top is None or top._subjobs is None:
            return {spec.fqid: failed_handle(spec, "its job is gone") for spec in batch.specs}
        targets = [top._subjobs[spec.subjob_id] for spec in batch.specs]
        return stage_inputs(self.ctx, top, targets, batch.specs)


@dataclasses.dataclass(frozen=True)
class _Batch:
    """A batch taken on the monitor's connection, as plain data for the streamer's thread."""

    cause: Cause
    keep_going: bool
    backend: BackendConfig  # a detached copy of the master's
    specs: list[SubjobSpec]
    stages: bool  # input files to copy into their workdirs first
    more: bool  # subjobs of its master left to send after it


def _stop_refused(conn: Connection, top_id: int, cause: Cause, why: str) -> None:
    """(On the monitor's connection) a refused batch stops its master's stream."""

    def work() -> None:
        top = _lookup(conn, top_id)
        if top is not None:
            stop_and_file(top, why)

    with acting_as(cause):
        conn.write(work)


def stop_and_file(top: Job, why: str) -> None:
    """(In a write) stop ``top``'s stream; its status is derived from its counts again,
    recorded as a derived move when that differs."""
    stream = top._stream
    if stream is not None and stream.sending:
        before = derived_status(top)
        stream.stop(why)
        master_moved(top, before, f"its submission stopped ({why})")


def _lookup(conn: Connection, top_id: int) -> Job | None:
    try:
        return conn.jobs.get(top_id)
    except GangaLikeError:
        return None
