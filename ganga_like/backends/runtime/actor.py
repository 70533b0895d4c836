"""The contract's mechanics, once, for every backend actor; a backend adds its driver.

:class:`RuntimeActor` owns the event stream, the run table and the actor's threads,
and implements the parts of :class:`~ganga_like.backends.base.BackendActor` that do
not depend on where work runs:

* ``events()``: the stream's long poll;
* ``kill()``: wait for the runs to settle, drop the queued ones (KILLED, and a line
  in their status files), mark the others ``killing`` and hand them to the driver's
  :meth:`~RuntimeActor._kill_work`;
* ``held()``: a run the actor knows holds something until its final event; for
  other handles the driver looks (:meth:`~RuntimeActor._held_elsewhere`);
* ``adopt()``: a run the actor knows is described as it is; others are found again
  by the driver (:meth:`~RuntimeActor._adopt_elsewhere`);
* ``find()``: the driver's live work (:meth:`~RuntimeActor._find_live`) plus the
  runs not started yet;
* ``ping()`` and ``close()``: the common fields and a clean stop of every thread
  started with :meth:`~RuntimeActor._loop` (a loop survives any exception of one
  round: it is counted, shown by ``ping()``, and the loop goes on).

The driver (Local, RayCluster, Hosts) implements ``submit()`` and the hooks.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ganga_like.backends import base
from ganga_like.backends.base import Event, Handle, KillResult
from ganga_like.backends.resources import Pool
from ganga_like.backends.runtime import outcome, procs, trace
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime.events import EventStream
from ganga_like.backends.runtime.runs import QUEUED_DETAIL, RUNNING_DETAIL, Run
from ganga_like.backends.runtime.table import DROPPED_NOTE, RunTable

SETTLE_TIMEOUT = 15.0  # seconds kill() waits for runs being handed over to settle
LOOP_ERROR_PAUSE = 0.2  # seconds a loop rests after a round failed (no busy spin)
CLOSE_TIDY_BUDGET = 10.0  # seconds close() tidies what is queued (trace.py); the rest is kept


class RuntimeActor:
    """Base of every backend actor; see the module doc. ``cap``, ``pool``, ``cpu_slots``
    and ``limit``: the run table's."""

    BACKEND = ""

    def __init__(self, cap: int | None = None, *, pool: Pool | None = None, cpu_slots: bool = False,
                 limit: str = "the backend's limit") -> None:
        self._stream = EventStream(quiet=self._quiet)
        self._cond = self._stream.cond
        self._runs = RunTable(self._stream, cap, pool=pool, cpu_slots=cpu_slots, limit=limit)
        self._host = socket.gethostname()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._loop_errors: list[str] = []

    # ------------------------------------------------------------------ contract

    def events(self, since: int, timeout: float = 30.0, linger: float = 0.0) -> tuple[int, list[Event]]:
        return self._stream.poll(since, timeout, linger)

    def kill(self, handles: list[Handle], grace: float = 3.0) -> list[KillResult]:
        results: list[KillResult | None] = [None] * len(handles)
        work: list[tuple[int, Run | None]] = []
        dropped: list[Run] = []
        with self._cond:
            self._runs.wait_settled([h.fqid for h in handles], SETTLE_TIMEOUT)
            for index, handle in enumerate(handles):
                run = self._runs.get(handle.fqid)
                if run is not None and run.state == rs.QUEUED:
                    self._runs.drop(run)
                    dropped.append(run)
                    results[index] = KillResult(handle.fqid, True, DROPPED_NOTE)
                    continue
                if run is not None:
                    run.killing = True
                work.append((index, run))
            self._cond.notify_all()
        for run in dropped:
            sf.append_quietly(run.status_path, sf.KILLED, DROPPED_NOTE)
        if work:
            done = self._kill_work([(handles[i], run) for i, run in work], grace)
            for (index, _run), result in zip(work, done, strict=True):
                results[index] = result
        self._after_kill()
        return [r if r is not None else KillResult(h.fqid, False, "not handled")
                for r, h in zip(results, handles, strict=True)]

    def held(self, handles: list[Handle]) -> list[bool]:
        answer: list[bool] = [False] * len(handles)
        elsewhere: list[int] = []
        with self._cond:
            for index, handle in enumerate(handles):
                if self._runs.get(handle.fqid) is not None:
                    answer[index] = True
                else:
                    elsewhere.append(index)
        if elsewhere:
            for index, alive in zip(elsewhere, self._held_elsewhere([handles[i] for i in elsewhere]),
                                    strict=True):
                answer[index] = alive
        return answer

    def adopt(self, handles: list[Handle]) -> list[Event]:
        """One event per handle describing where it is now (a snapshot: its ``seq`` is
        the stream position it describes); what still runs is watched from now on."""
        self._before_adopt()
        found = []
        for handle in handles:
            with self._cond:
                run = self._runs.get(handle.fqid)
                if run is not None:
                    known = self._describe(run)
            if run is not None:
                found.append(self._stream.snapshot(handle.fqid, *known, handle=run.handle))
                continue
            kind, code, note, detail, now = self._adopt_elsewhere(handle)
            found.append(self._stream.snapshot(handle.fqid, kind, code, note, detail, handle=now))
        return found

    def find(self, marker_prefix: str) -> list[Handle]:
        """Handles of the live work whose marker starts with ``marker_prefix`` (one per
        marker; ``fqid`` is the marker after the prefix), and this actor's own runs,
        started or not yet."""
        # This actor's runs are read before the process table: one that starts in
        # between is then live in the table. Read after it, a run started meanwhile
        # would be in neither. Its started runs come from its table too: a process
        # just spawned may not show its environment, so its marker, for a moment
        # (measured: one read in six right after posix_spawn returned).
        # A follower's wrapper (Local) carries its marker while it waits for its slot: it
        # has not started, and is named as queued work is.
        with self._cond:
            ours = [run for run in self._runs
                    if run.marker.startswith(marker_prefix) and run.state != rs.DONE]
            started = [run.state not in rs.FOLLOWER_STATES for run in ours]
            own = [base.Handle(self.BACKEND, run.marker[len(marker_prefix):], host=run.handle.host,
                               pid=run.handle.pid if up else 0,
                               create_time=run.handle.create_time if up else 0.0,
                               workdir=run.workdir, attempt=run.handle.attempt)
                   for run, up in zip(ours, started, strict=True)]
            waiting = {h.fqid for h, up in zip(own, started, strict=True) if not up}
        handles = [h for h in self._find_live(marker_prefix) if h.fqid not in waiting]
        seen = {h.fqid for h in handles}
        return handles + [h for h in own if h.fqid not in seen]

    def ping(self) -> dict[str, Any]:
        with self._cond:
            info = {
                "backend": self.BACKEND, "host": self._host, "pid": os.getpid(), "seq": self._stream.seq,
                "running": self._runs.in_slots(), "queued": self._runs.count(rs.QUEUED),
                "lingering": self._runs.count(rs.LINGERING), "loop_errors": list(self._loop_errors[-5:]),
            }
            info.update(self._ping_extra())
        return info

    def close(self) -> None:
        """Stop the actor's threads; the work it started keeps running (a new actor may
        adopt it), except where the driver's work dies with its actor (Ray tasks)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._wake_loops()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        trace.finish_tidying(CLOSE_TIDY_BUDGET)

    # ------------------------------------------------------------------ for drivers

    def _loop(self, name: str, round_: Callable[[], None], on_exit: Callable[[], None] | None = None) -> None:
        """Start a daemon thread running ``round_`` until :meth:`close`; an exception
        ends that round only."""

        def body() -> None:
            try:
                while not self._closed:
                    try:
                        round_()
                    except Exception as error:
                        self._loop_errors.append(f"{name}: {error!r}")
                        traceback.print_exc()
                        time.sleep(LOOP_ERROR_PAUSE)
            finally:
                if on_exit is not None:
                    on_exit()

        thread = threading.Thread(target=body, name=f"ganga_like-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, run: Run, first_line: bytes) -> str:
        """Take a new run and prepare its workdir (output/, the status file's first line);
        the reason it is refused ('' if taken). The run stays ``new`` for the caller to place."""
        with self._cond:
            refused = self._runs.add(run)  # before touching its files: they may be another run's
        if refused:
            return refused
        try:
            outcome.prepare(run.workdir, first_line)
        except OSError as error:
            refused = f"cannot prepare {run.workdir}: {error.strerror or error}"
            with self._cond:
                self._runs.move(run, rs.DONE, refused)
                self._cond.notify_all()  # a kill() may wait for this run to settle
        return refused

    def _started(self, run: Run, handle: Handle, note: str = "") -> None:
        """(cond held) The run's wrapper started: STARTED with the full handle."""
        run.handle = handle
        self._runs.move(run, rs.RUNNING, "its wrapper started")
        run.detail = (RUNNING_DETAIL, note)
        self._stream.emit(run.fqid, base.STARTED, note=note, detail=RUNNING_DETAIL, handle=handle)

    def _killed(self, run: Run | None, handle: Handle, note: str) -> None:
        """A kill we confirmed: KILLED (once) and a line in the status file."""
        with self._cond:
            if run is not None:
                if run.state == rs.DONE:
                    return
                self._finish(run, base.KILLED, None, note)
            else:
                self._stream.emit(handle.fqid, base.KILLED, note=note, handle=handle)
            self._cond.notify_all()
        outcome.killed_line(run.workdir if run is not None else handle.workdir, note)

    def _finish(self, run: Run, kind: str, code: int | None = None, note: str = "") -> None:
        """(cond held) The run's final event; drivers that hold more than a slot free it too."""
        self._runs.finish(run, kind, code, note)

    def _quiet(self) -> bool:
        return not len(self._runs)  # every run this actor knew of has had its final event

    def _describe(self, run: Run) -> tuple[str, int | None, str, str]:
        """(cond held) The adopt() answer for a run this actor already has."""
        if run.state in (rs.RUNNING, rs.LINGERING):
            return base.STARTED, None, "already watched by this actor", run.detail[0] or RUNNING_DETAIL
        return base.QUEUED, None, "already queued in this actor", run.detail[0] or QUEUED_DETAIL

    # ------------------------------------------------------------------ driver hooks

    def _kill_work(self, work: list[tuple[Handle, Run | None]], grace: float) -> list[KillResult]:
        """End the work of these handles (their runs, already ``killing``, or None for
        work this actor does not know) and confirm; report each with :meth:`_killed`."""
        raise NotImplementedError

    def _held_elsewhere(self, handles: list[Handle]) -> list[bool]:
        """Whether work this actor does not know still holds a process: on this machine."""
        targets = [procs.Target(h.pid, h.create_time, outcome.marker_of(h.workdir)) for h in handles]
        findable = [t for t in targets if t.pid or t.marker]  # scan the process table only for these
        alive = dict(zip(map(id, findable), procs.held(findable), strict=True)) if findable else {}
        return [alive.get(id(t), False) for t in targets]

    def _adopt_elsewhere(self, handle: Handle) -> tuple[str, int | None, str, str, Handle]:
        raise NotImplementedError

    def _find_live(self, marker_prefix: str) -> list[Handle]:
        """Live marked trees on this machine, one handle per marker (its top process)."""
        return [base.Handle(self.BACKEND, marker[len(marker_prefix):], host=self._host, pid=pid,
                            create_time=created)
                for pid, created, marker in procs.marked_tops(marker_prefix)]

    def _before_adopt(self) -> None:
        pass

    def _after_kill(self) -> None:
        pass

    def _wake_loops(self) -> None:
        pass

    def _ping_extra(self) -> dict[str, Any]:
        return {}
