"""The streamer: sends the rest of a master's subjobs after ``submit()`` returned.

``submit()`` stores every subjob, sends the first batch and leaves the rest to a
``SubmitStream`` on the master (``model/stream.py``). One thread per engine takes
batches of them, in subjob order, one master after another (a batch each, in
turn): it moves a batch to ``submitting`` in a transaction of its own (on its own
connection; the changes name the submit's cause), hands it to the backend's actor
and waits until the monitor has recorded the answer, as ``submit()`` does for its
first batch. Then the next.

What can interrupt it, and what is left:

* ``kill()``, ``remove()`` and ``force_status()`` stop a master's stream first
  (:meth:`Streamer.stop`): they wait for the batch in flight to be recorded, so they
  find every subjob that was sent, and the subjobs not sent stay ``new``;
* a refused batch stops it unless the submit said ``keep_going`` (its subjobs are
  ``new`` again, with the reason, as a refused first batch);
* the service stopping ends the thread between batches; a SIGKILL at any point
  leaves the stream and at most one batch in ``submitting``: recovery adopts what
  the backend started of it, rolls back the rest to ``new`` and back into the
  stream, and starts the stream again (``recovery.py``).
"""

from __future__ import annotations

import logging
import queue
import threading

from ..errors import GangaLikeError
from ..model.job import Job
from ..model.lifecycle import master_moved
from ..model.stream import SubmitStream, derived_status, stream_of
from ..model.writes import acting_as
from ..repository.storage import Connection
from ..status import Cause, Source, Status
from .context import EngineContext, Submission
from .operations.common import SUBMIT_CHUNK, begin_attempt
from .operations.submit import hand_over

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
        conn = self.ctx.store.repository.connect()
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
            top_stream_cause, taken = self._take_batch(conn, top_id)
            if not taken or top_stream_cause is None:
                return False
            top, stream, cause = top_stream_cause
            pairs = hand_over(self.ctx, top, taken, stream.keep_going)
            submission = Submission(pairs)
            self.ctx.monitor.submit_results(submission)
            submission.done.wait()
            self.batches += 1
            refused = [h for _, _, h in pairs if h.error]
            if refused and not stream.keep_going:
                first = refused[0].error
                why = f"{len(refused)} of a batch of {len(pairs)} could not be submitted: {first}"
                with acting_as(cause):
                    conn.write(lambda: stop_and_file(top, why[:300]))
            self.ctx.notify_changed()
            return stream.sending

    def _take_batch(self, conn: Connection, top_id: int
                    ) -> tuple[tuple[Job, SubmitStream, Cause] | None, list[Job]]:
        """(In its own transaction) move the next ``SUBMIT_CHUNK`` new subjobs of ``top_id``'s
        stream to ``submitting``, naming the submit's cause; ((the master, its stream, the
        cause) or None when it has none, the subjobs taken)."""
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
        if not found:
            return None, taken
        (top, stream), = found
        return (top, stream, cause), taken


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
