"""The RayCluster backend's driver: each subjob is one Ray task, on any node of the cluster.

The contract's mechanics are ``backends/runtime``'s; this file hands runs to Ray
and learns how they end:

* **A subjob = one Ray task** (``task.run_subjob``) with the spec's options
  (``num_cpus`` default 1, ``resources``, ``max_retries`` default 0: a subjob whose
  node dies is LOST, not silently re-run). ``max_in_flight`` caps the tasks handed
  to Ray; the rest wait in the run table (``Queued``).
* **Events**: DETAIL ``Pending`` at hand-off; STARTED reported by the task itself
  (``report_started``: no polling; a very short payload's result carries the same
  facts); FINISHED once the task returned (wrapper and group gone; ``Lingering``
  meanwhile); LOST when the task fails, after ending what this machine still sees
  of it. Completions come from ``ObjectRef.future()`` callbacks.
* **Handles**: ``task_id``; ``host`` ``<node ip>/<node id[:12]>``; the wrapper's pid.
* **kill** cancels tasks not started, ends started trees (TERM, grace, KILL), waits
  for the tasks, force-cancels the rest and sweeps the markers (after
  :data:`EXEC_SETTLE` when a task may have been cut short while it launched its
  wrapper); confirmed only when every task ended and no marked process lives.
* **adopt**: task refs die with their actor; a detached actor (``ray start``
  cluster) answers from its records, else the status file and psutil on this
  machine tell, and what still runs is watched until it is gone.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from typing import Any

import ray

from ganga_like.backends import base
from ganga_like.backends.base import Handle, KillResult, SubjobSpec
from ganga_like.backends.raycluster.task import node_host, remote_task, task_options
from ganga_like.backends.resources import cluster_shortage, node_capacities, refusal_anywhere
from ganga_like.backends.runtime import outcome, procs
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime.actor import RuntimeActor
from ganga_like.backends.runtime.runs import (
    LINGERING_DETAIL,
    PENDING_DETAIL,
    RESOURCES_DETAIL,
    RUNNING_DETAIL,
    Run,
)

BACKEND = "RayCluster"
ADOPT_RECHECK = 0.25  # seconds between liveness checks of adopted (Ray-less) subjobs
TASK_END_WAIT = 5.0  # seconds kill() waits for a task to end before force-cancelling it
# A task cancelled while it launched its wrapper may leave a child between fork and exec:
# it carries the subjob's marker only once it has exec'd, so the last sweep waits this long.
EXEC_SETTLE = 0.5  # seconds
RAY_VIEW_AGE = 1.0  # seconds Ray's view of free resources is reused (one GCS call per period)
PENDING_NOTE = "handed to Ray, waiting for a worker"


@dataclasses.dataclass(eq=False)
class RayRun(Run):
    ref: Any = None  # the task's ObjectRef
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    early_report: tuple | None = None  # report_started that came before the ref was stored


class RayClusterActor(RuntimeActor):
    """Runs each subjob as a Ray task; implements :class:`base.BackendActor`.

    Args:
        max_in_flight: how many subjobs may be handed to Ray at once (None: all; Ray's
            resources then decide how many run).
    """

    BACKEND = BACKEND

    def __init__(self, max_in_flight: int | None = None) -> None:
        super().__init__(cap=max(1, int(max_in_flight)) if max_in_flight else None,
                         limit="RayCluster's max_in_flight")
        try:
            self._me = ray.get_runtime_context().current_actor  # tasks report STARTED to it
        except Exception:
            self._me = None  # not running as an actor: STARTED comes with the result
        self._node_id = ray.get_runtime_context().get_node_id() or ""
        self._host = node_host(ray.util.get_node_ip_address(), self._node_id)
        self._done: queue.SimpleQueue[RayRun | None] = queue.SimpleQueue()  # from future callbacks
        self._view: tuple[float, dict[str, float], dict[str, float]] = (0.0, {}, {})  # (when, free, total)
        self._loop("raycluster-reaper", self._reap_round)
        self._loop("raycluster-adopted", self._adopted_round)
        self._loop("raycluster-pending", self._pending_round)

    # ------------------------------------------------------------------ submitting

    def submit(self, specs: list[SubjobSpec]) -> list[Handle]:
        """Hand each spec to Ray (or queue it over ``max_in_flight``); one handle per
        spec: ``task_id`` set once the task exists, ``pid`` 0 until it starts."""
        handles: list[Handle] = []
        accepted: list[RayRun] = []
        line = sf.StatusInfo(sf.QUEUED, "accepted by RayCluster", time.time()).line()
        nodes = node_capacities(ray.nodes())  # what exists, once per batch
        for spec in specs:
            handle = Handle(BACKEND, spec.fqid, workdir=spec.workdir, attempt=spec.attempt)
            never = refusal_anywhere(spec.request, nodes)  # infeasible work would wait forever
            try:
                if never:
                    raise ValueError(never)
                run = RayRun(spec.fqid, spec.workdir, spec.marker, handle, spec=spec,
                             options=task_options(dict(spec.options), spec.request))
            except ValueError as error:
                handles.append(dataclasses.replace(handle, error=str(error)))
                continue
            refused = self._accept(run, line)
            handles.append(dataclasses.replace(handle, error=refused) if refused else handle)
            if not refused:
                accepted.append(run)
        with self._cond:
            now = [run for run in accepted if self._runs.admit(run, "waiting for a free slot")]
            self._cond.notify_all()
        for run in now:
            self._launch(run)
        by_fqid = {run.fqid: run for run in accepted}
        with self._cond:  # the task ids known by now
            return [by_fqid[h.fqid].handle if h.fqid in by_fqid and not h.error else h for h in handles]

    def _launch(self, run: RayRun) -> None:
        try:
            ref = remote_task().options(**run.options).remote(run.spec, self._me)
            task_id = ref.task_id().hex()
        except Exception as error:  # Ray refused the options or is going away
            reason = f"Ray refused the task: {type(error).__name__}: {_first_line(error)}"
            sf.append_quietly(run.status_path, sf.WRAPPER_ERROR, f"exit=126 {reason}")
            with self._cond:
                self._runs.finish(run, base.LOST, note=reason)
                self._cond.notify_all()
            self._fill()
            return
        with self._cond:
            run.ref = ref
            run.handle = dataclasses.replace(run.handle, task_id=task_id)
            self._runs.move(run, rs.PENDING, "handed to Ray")
            self._runs.tell(run, base.DETAIL, *self._waiting_in_ray(run))
            if run.early_report is not None:
                self._task_started(run, *run.early_report)
            self._cond.notify_all()
        # Runs in a Ray thread when the task ends (at once if it already has): just enqueue.
        ref.future().add_done_callback(lambda _future, run=run: self._done.put(run))

    def _waiting_in_ray(self, run: RayRun) -> tuple[str, str]:
        """(cond held) Why a task handed to Ray has not started, by Ray's own view of
        its free resources: ``Resources`` with what is short, or ``Pending``."""
        when, free, total = self._view
        if time.monotonic() - when > RAY_VIEW_AGE:
            free, total = self._refresh_view()
        short = cluster_shortage(run.request, free, total)
        return (RESOURCES_DETAIL, short) if short else (PENDING_DETAIL, PENDING_NOTE)

    def _refresh_view(self) -> tuple[dict[str, float], dict[str, float]]:
        free, total = ray.available_resources(), ray.cluster_resources()
        self._view = (time.monotonic(), free, total)
        return free, total

    def _pending_round(self) -> None:
        """Tell each task still waiting in Ray why, as Ray's view changes (told on change)."""
        self._cond_sleep(RAY_VIEW_AGE)
        with self._cond:
            waiting = any(r.state == rs.PENDING for r in self._runs)
        if not waiting:
            return
        self._refresh_view()  # outside the lock: a call to Ray's GCS
        with self._cond:
            for run in self._runs:
                if isinstance(run, RayRun) and run.state == rs.PENDING and not run.killing:
                    self._runs.tell(run, base.DETAIL, *self._waiting_in_ray(run))
            self._cond.notify_all()

    def _fill(self) -> None:
        with self._cond:
            batch = self._runs.take_queued()
        for run in batch:
            self._launch(run)  # type: ignore[arg-type]

    def _after_kill(self) -> None:
        self._fill()

    # ------------------------------------------------------------------ task reports

    def report_started(self, fqid: str, task_id: str, pid: int, create_time: float, host: str) -> None:
        """Called by a subjob's task once its wrapper runs (internal; not the contract)."""
        with self._cond:
            run = self._runs.get(fqid)
            if not isinstance(run, RayRun) or run.state not in (rs.STARTING, rs.PENDING, rs.RUNNING):
                return
            if run.state == rs.STARTING:
                run.early_report = (task_id, pid, create_time, host)
                return
            stale = self._task_started(run, task_id, pid, create_time, host)
            self._cond.notify_all()
        if stale is not None:
            # Ray re-ran the task (max_retries) because its node or worker died: a copy that
            # survived there (visible when that "node" is this machine) must not run twice.
            procs.kill_trees([stale], 1.0)

    def report_lingering(self, fqid: str, task_id: str) -> None:
        """Called by a task whose wrapper ended while processes of its group still run."""
        with self._cond:
            run = self._runs.get(fqid)
            if run is None or run.handle.task_id != task_id or run.killing:
                return
            self._runs.tell(run, base.DETAIL, LINGERING_DETAIL,
                            "the wrapper ended but processes of its group still run")
            self._cond.notify_all()

    def _task_started(self, run: RayRun, task_id: str, pid: int, create_time: float,
                      host: str) -> procs.Target | None:
        """(cond held) STARTED for the run; the earlier wrapper if Ray re-ran the task."""
        if (task_id != run.handle.task_id or run.killing
                or (run.state == rs.RUNNING and run.handle.pid == pid)):
            return None
        rerun = run.state == rs.RUNNING and run.handle.pid
        stale = procs.Target(run.handle.pid, run.handle.create_time) if rerun else None
        handle = dataclasses.replace(run.handle, pid=pid, create_time=create_time, host=host)
        note = f"re-run by Ray on {host}" if rerun else f"on {host}"
        if rerun:
            run.handle = handle
            self._stream.emit(run.fqid, base.STARTED, note=note, detail=RUNNING_DETAIL, handle=handle)
        else:
            self._started(run, handle, note)
        return stale

    # ------------------------------------------------------------------ results

    def _reap_round(self) -> None:
        """Turn one finished task into its final event (woken by future callbacks)."""
        run = self._done.get()
        if run is None:
            return
        try:
            self._reap(run)
        except Exception as error:
            with self._cond:
                if not run.killing:
                    self._runs.finish(run, base.LOST, note=f"actor error while reaping: {error!r}")
                self._cond.notify_all()
            raise
        finally:
            self._fill()

    def _reap(self, run: RayRun) -> None:
        with self._cond:
            if run.state == rs.DONE or run.killing:
                return  # kill() reports it
        try:
            result = ray.get(run.ref, timeout=10)
        except ray.exceptions.RayError as error:
            result = {"kind": base.LOST, "exit_code": None, "pid": 0, "create_time": 0.0, "host": "",
                      "note": f"the Ray task failed: {type(error).__name__}: {_first_line(error)}"}
            # Whatever of it is still visible here must not outlive the report (strict).
            target = procs.Target(run.handle.pid, run.handle.create_time, run.marker)
            if procs.held([target])[0]:
                (ended,) = procs.kill_trees([target], 1.0)
                result["note"] += f" [its processes on this machine were ended: {ended.note}]"
        with self._cond:
            if run.state == rs.DONE or run.killing:
                return
            if run.state != rs.RUNNING and result.get("pid"):
                self._task_started(run, run.handle.task_id, result["pid"], result["create_time"],
                                   result["host"])
            self._runs.finish(run, result["kind"], result["exit_code"], result["note"])
            self._cond.notify_all()

    def _wake_loops(self) -> None:
        self._done.put(None)

    # ------------------------------------------------------------------ killing

    def _kill_work(self, work: list[tuple[Handle, Run | None]], grace: float) -> list[KillResult]:
        results: list[KillResult | None] = [None] * len(work)
        targets: dict[int, procs.Target] = {}
        for index, (handle, run) in enumerate(work):
            target = _kill_target(handle, run)
            if target is None:
                results[index] = KillResult(handle.fqid, True, "nothing to kill: unknown here, never started")
            else:
                targets[index] = target
        marked = {i: t for i, t in targets.items() if t.pid or t.marker}
        ended = (dict(zip(marked, procs.kill_trees(list(marked.values()), grace), strict=True))
                 if marked else {})
        open_tasks = _wait_tasks_end(work)
        if any(not marked[i].pid for i in marked):  # cancelled while (maybe) launching
            time.sleep(EXEC_SETTLE)
        alive = _sweep_again(marked, ended)
        for index, (handle, run) in enumerate(work):
            if results[index] is None:
                task_open = isinstance(run, RayRun) and run.ref is not None and run.ref.hex() in open_tasks
                results[index] = self._kill_result(handle, run, ended.get(index), task_open,
                                                   alive.get(index, False))
        return [r if r is not None else KillResult(h.fqid, False, "not handled")
                for r, (h, _) in zip(results, work, strict=True)]

    def _kill_result(self, handle: Handle, run: Run | None, ended: procs.KillOutcome | None,
                     task_open: bool, alive: bool) -> KillResult:
        """One subjob's kill: confirmed (and recorded) or not, with why."""
        note = ended.note if ended is not None else "the Ray task was cancelled before it started"
        if task_open or alive:
            why = "the Ray task has not ended" if task_open else "processes still alive"
            if isinstance(run, RayRun):
                with self._cond:
                    run.killing = False  # keep watching it: the reaper reports its end
                if run.ref is not None and not task_open:
                    self._done.put(run)
            return KillResult(handle.fqid, False, f"{why}: {note}")
        if run is not None or (ended is not None and ended.killed):
            self._killed(run, handle, f"killed: {note}")
        return KillResult(handle.fqid, True, f"killed: {note}")

    # ------------------------------------------------------------------ adopting

    def _adopt_elsewhere(self, handle: Handle) -> tuple[str, int | None, str, str, Handle]:
        found = outcome.find_again(handle)
        pid, created, alive = found.pid, found.create_time, found.alive
        if not alive and found.marker:
            # The wrapper is gone but a payload may remain (e.g. Ray killed the worker's child).
            left = [(p, c) for p, c, m in procs.find_by_marker(found.marker) if m == found.marker]
            if left:
                (pid, created), alive = min(left), True
        now = dataclasses.replace(handle, pid=pid, create_time=created, host=handle.host or self._host)
        if alive:
            run = RayRun(handle.fqid, handle.workdir, found.marker or "", now)
            with self._cond:
                self._runs.add(run)
                self._runs.move(run, rs.RUNNING, "adopted: its wrapper still runs")
                self._cond.notify_all()
            return base.STARTED, None, "adopted: still running", RUNNING_DETAIL, now
        kind, code, note = outcome.outcome_of(found.last, None)
        if kind == base.LOST and (found.last is None or not found.last.terminal):
            seen = f"last status {found.last.state}" if found.last is not None else "no status line"
            note = (f"no process left and no exit status recorded ({seen}); "
                    "its Ray task ended with the actor that submitted it")
            outcome.lost_line(handle.workdir, note)
        return kind, code, note, "", now

    def _adopted_round(self) -> None:
        """Re-check adopted subjobs (no Ray task to wait on) until they are gone."""
        with self._cond:
            watched = [r for r in self._runs if r.adopted and r.state == rs.RUNNING and not r.killing]
            if not watched:
                self._cond.wait(1.0)
                return
        targets = [procs.Target(r.handle.pid, r.handle.create_time, r.marker or None) for r in watched]
        gone = [run for run, alive in zip(watched, procs.held(targets), strict=True) if not alive]
        finals = [(run, outcome.outcome_in(run.workdir)) for run in gone]
        with self._cond:
            for run, (kind, code, note) in finals:
                if not run.killing:
                    self._runs.finish(run, kind, code, note)
            self._cond.notify_all()
        self._cond_sleep(ADOPT_RECHECK)

    def _cond_sleep(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed, seconds)

    def _ping_extra(self) -> dict[str, Any]:
        return {"node_id": self._node_id, "pending": self._runs.count(rs.STARTING, rs.PENDING),
                "started": self._runs.count(rs.RUNNING), "max_in_flight": self._runs.cap,
                "adopted": sum(1 for r in self._runs if r.adopted)}


def _cancel(ref: Any) -> None:
    try:
        ray.cancel(ref, force=True)
    except Exception:
        pass  # already finished, or its owner is gone


def _first_line(error: BaseException, room: int = 240) -> str:
    """The first line of an error, cut after the last whole sentence that fits in ``room``."""
    text = (str(error).strip().splitlines() or [""])[0]
    if len(text) <= room:
        return text
    cut = text.rfind(". ", 0, room)
    return text[: cut + 1] if cut > 0 else text[:room]


def start_raycluster_actor(name: str | None = None, max_concurrency_slots: int = 32, *,
                           max_in_flight: int | None = None, namespace: str | None = None,
                           lifetime: str | None = None, get_if_exists: bool = False,
                           **actor_options: Any) -> Any:
    """Create (or with ``get_if_exists`` re-attach to) a threaded :class:`RayClusterActor`.

    ``max_concurrency_slots``: method calls that run at once in the actor (long polls,
    task reports and kills must not wait for each other). ``lifetime="detached"``
    under a ``ray start`` cluster lets it (and its task refs) outlive the driver.
    """
    options = base.actor_options(max_concurrency_slots, name, namespace, lifetime, get_if_exists,
                                 **actor_options)
    return ray.remote(RayClusterActor).options(**options).remote(max_in_flight=max_in_flight)


def _kill_target(handle: Handle, run: Run | None) -> procs.Target | None:
    """What to kill for one handle (None: nothing is known of it here); a task not
    started yet is cancelled, so that it never does."""
    if isinstance(run, RayRun):
        if run.ref is not None and not run.handle.pid:
            _cancel(run.ref)
        return procs.Target(run.handle.pid, run.handle.create_time, run.marker)
    if handle.pid or handle.workdir:
        return procs.Target(handle.pid, handle.create_time, outcome.marker_of(handle.workdir))
    return None


def _wait_tasks_end(work: list[tuple[Handle, Run | None]]) -> set[str]:
    """Wait for the killed runs' Ray tasks to end (cancelling those that outlive their
    processes, or a stuck worker); the hex ids of the tasks still open."""
    pending = [run.ref for _, run in work if isinstance(run, RayRun) and run.ref is not None]
    if pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=TASK_END_WAIT, fetch_local=False)
        for ref in pending:
            _cancel(ref)
        if pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=TASK_END_WAIT,
                                  fetch_local=False)
    return {ref.hex() for ref in pending}


def _sweep_again(marked: dict[int, procs.Target],
                 ended: dict[int, procs.KillOutcome]) -> dict[int, bool]:
    """A task cancelled while starting may have started a wrapper: end anything marked
    still alive (``ended`` is updated); which targets are alive after that."""
    alive = dict(zip(marked, procs.held(list(marked.values())), strict=True)) if marked else {}
    again = [i for i, live in alive.items() if live]
    swept_all = procs.kill_trees([marked[i] for i in again], 0.5) if again else []
    for index, swept in zip(again, swept_all, strict=True):
        alive[index], ended[index] = not swept.confirmed, swept
    return alive
