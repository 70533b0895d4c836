"""The RayCluster backend's actor: each subjob is one Ray task, on any node of the cluster.

``RayClusterActor`` is a threaded Ray actor (create it with
:func:`start_raycluster_actor`) implementing the contract of
``ganga_like/backends/base.py``. How it works:

* **A subjob = one Ray task** (:func:`run_subjob`), scheduled with the spec's
  options (:data:`OPTION_KEYS`): ``num_cpus`` (float, default 1), ``resources``
  (custom resources, default none) and ``max_retries`` (default 0: a subjob whose
  node dies is reported LOST rather than silently re-run). The task runs the
  wrapper (``native.wrapper_command()``: ``<wrapper...> <workdir> <exe> [args]``) in
  its own session on whatever node it lands on, waits for it, waits until no
  process of the wrapper's group is left, and returns the outcome read from the
  status file *on that node*. Assumption: ``workdir`` is on a filesystem every node
  reaches under the same path (here every node is this machine).
* **Events.** At hand-off to Ray a DETAIL event ``Pending`` (waiting in Ray for a
  worker with the resources). ``max_in_flight`` (None: unlimited) caps the tasks
  handed to Ray at once; subjobs over the cap wait in the actor with a QUEUED
  event, detail ``Queued`` (the contract reserves QUEUED for that detail, which is
  why ``Pending`` is a DETAIL event). **STARTED** is reported by the task itself:
  right after starting the wrapper it calls :meth:`RayClusterActor.report_started`
  on this actor (its handle is a task argument) with the node, pid and process
  start time: no polling, and the event carries a complete handle. Should that
  report come after the task's result (a very short payload), the result carries
  the same facts and STARTED is emitted from it, before the final event.
  **FINISHED** (with the exit code) once the task has returned, i.e. the wrapper
  and every process of its group are gone (``Lingering`` DETAIL meanwhile).
  **LOST** with the reason when the task fails without an outcome
  (``NodeDiedError``, ``WorkerCrashedError``, ...); processes of the subjob still
  visible on this machine are then ended, so a lost subjob holds nothing here.
  Task completion is learnt from ``ObjectRef.future()`` callbacks, not a poll.
* **Handles.** ``task_id`` = the Ray task id (hex); ``host`` = ``<node ip>/<first
  12 hex of the node id>`` and ``pid``/``create_time`` = the wrapper's, once started
  (pid 0 while queued or pending).
* **kill**: cancels pending tasks (``ray.cancel(force=True)``), ends the process
  trees of started ones with ``procs.kill_trees`` (TERM, grace, KILL: the payload
  gets a chance to clean up, which a forced cancel would not give it), waits for
  the tasks to end and force-cancels what has not, then sweeps the markers once
  more (a task cancelled while starting may have left a wrapper). Confirmed only
  when the task is finished or cancelled and no process carries the marker.
* **adopt**: Ray task refs belong to the actor that submitted them and die with
  it. A detached actor under a ``ray start`` cluster survives its driver; the
  next session re-attaches to it by name and ``adopt`` answers from its live
  records ("already watched"). Otherwise adopt works from the status file and
  psutil, *on this machine*: a terminal status line -> FINISHED with its exit code;
  the wrapper (pid + start time) or any process with the marker alive -> STARTED,
  then watched (re-checked every :data:`ADOPT_RECHECK` s) until gone, then
  FINISHED/LOST from the status file; otherwise LOST. The wrapper outlives its task
  only if Ray does not kill workers' children (``kill_child_processes_on_worker_exit``
  false, as ``ray_runtime.ensure_ray`` sets for a local Ray); with Ray's default a
  subjob dies with the actor that owned its task, and is reported LOST on adoption.
  Processes on another machine cannot be seen from here: adopting work on a
  remote node gives FINISHED if its status line is there, else LOST.
* **find(prefix)**: processes whose marker starts with ``prefix`` (on this
  machine), plus this actor's subjobs not yet started.

Payload environment: ``base.payload_environment``: the submitting client's
environment (``spec.base_env``; the Ray worker's own when the job opted out), without
Ray's variables, updated with ``spec.env``, plus ``GANGA_LIKE_MARKER=<spec.marker>``.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import queue
import subprocess
import threading
import time
from typing import Any

import psutil
import ray

from ganga_like import status_file as sf
from ganga_like.backends import base
from ganga_like.backends.base import Event, Handle, KillResult, SubjobSpec, payload_environment
from ganga_like.backends.event_stream import LongPollEvents
from ganga_like.backends.local import native, procs

BACKEND = "RayCluster"
OPTION_KEYS = ("num_cpus", "resources", "max_retries")  # what SubjobSpec.options may hold
DEFAULT_OPTIONS: dict[str, Any] = {"num_cpus": 1.0, "resources": {}, "max_retries": 0}
QUEUED_DETAIL = "Queued"  # held by the actor (over max_in_flight)
PENDING_DETAIL = "Pending"  # handed to Ray, waiting for a worker with the resources
RUNNING_DETAIL = "Running"
LINGERING_DETAIL = "Lingering"  # wrapper ended, processes of its group still run
ADOPT_RECHECK = 0.25  # seconds between liveness checks of adopted (Ray-less) subjobs
LINGER_RECHECK = 0.1  # seconds between group checks inside a task
TASK_END_WAIT = 5.0  # seconds kill() waits for a task to end before force-cancelling it


# ---------------------------------------------------------------------- the task


def run_subjob(spec: SubjobSpec, reporter: Any) -> dict[str, Any]:
    """Body of one subjob's Ray task: run the wrapper on this node; return its outcome.

    Returns ``{"kind", "exit_code", "note", "pid", "create_time", "host"}`` where
    ``kind`` is FINISHED or LOST. Returns only once no process of the wrapper's
    group is left. ``reporter`` (the actor's handle, or None) hears
    ``report_started`` / ``report_lingering``.
    """
    context = ray.get_runtime_context()
    task_id = context.get_task_id() or ""
    host = node_host(ray.util.get_node_ip_address(), context.get_node_id() or "")
    status_path = os.path.join(spec.workdir, "status")
    outcome: dict[str, Any] = {"pid": 0, "create_time": 0.0, "host": host}
    try:
        os.makedirs(os.path.join(spec.workdir, "output"), exist_ok=True)
        sf.StatusFile(status_path).set(sf.CREATED, f"node={host} task={task_id}")
        env = payload_environment(spec, os.environ)
        env[procs.MARKER_VAR] = spec.marker
        command = native.wrapper_command()
        with open(os.devnull, "r+b") as devnull:
            wrapper = subprocess.Popen([*command, spec.workdir, spec.exe, *spec.args], env=env,
                                       cwd=spec.workdir, stdin=devnull, stdout=devnull, stderr=devnull,
                                       close_fds=True, start_new_session=True)
    except OSError as error:
        reason = f"cannot start the wrapper on {host}: {error}"
        sf.append_quietly(status_path, sf.WRAPPER_ERROR, f"exit=126 {reason}")
        return dict(outcome, kind=base.LOST, exit_code=None, note=reason)
    # Not reaped before wait(): pid and start time are stable while we read them.
    created = procs.create_time(wrapper.pid) or 0.0
    outcome.update(pid=wrapper.pid, create_time=created)
    _call(reporter, "report_started", spec.fqid, task_id, wrapper.pid, created, host)
    returncode = wrapper.wait()
    if procs.group_may_live(wrapper.pid, created):
        _call(reporter, "report_lingering", spec.fqid, task_id)
        while procs.group_may_live(wrapper.pid, created):
            time.sleep(LINGER_RECHECK)
    kind, code, note = outcome_from_status(sf.last_status(status_path), returncode)
    if kind == base.LOST:
        sf.append_quietly(status_path, sf.LOST_ERROR, note)
    return dict(outcome, kind=kind, exit_code=code, note=note)


def node_host(ip: str, node_id: str) -> str:
    """The ``Handle.host`` of a node: ``<ip>/<first 12 hex of its node id>``."""
    return f"{ip}/{node_id[:12]}" if node_id else ip


def outcome_from_status(last: sf.StatusInfo | None, returncode: int | None) -> tuple[str, int | None, str]:
    """(kind, exit_code, note) of a subjob whose wrapper ended, from its last status line."""
    if last is None or not last.terminal:
        seen = f"last status {last.state}" if last is not None else "no status line"
        if returncode is not None and returncode < 0:
            how = f"ended by signal {-returncode}"
        elif returncode is not None:
            how = f"exited with {returncode}"
        else:
            how = "ended"
        return base.LOST, None, f"wrapper {how} before recording the exit status ({seen})"
    if last.state == sf.LOST_ERROR:
        return base.LOST, None, last.note
    code = last.exit_code
    if code is None:
        code = 0 if last.state == sf.RUN_DONE else 1
    note = f"{last.state} {last.note}".strip()
    if last.state == sf.KILLED:
        note += " (signalled from outside ganga_like)"  # our own kills never reach here
    return base.FINISHED, code, note


def _call(actor: Any, method: str, *args: Any) -> None:
    """Fire-and-forget report to the actor; a dead actor must not fail the subjob."""
    if actor is None:
        return
    try:
        getattr(actor, method).remote(*args)
    except Exception:
        pass



_remote_task: Any = None


def _task() -> Any:
    global _remote_task
    if _remote_task is None:
        _remote_task = ray.remote(run_subjob)
    return _remote_task


def task_options(options: dict[str, Any]) -> dict[str, Any]:
    """Ray ``.options()`` for a spec's options; ValueError naming the valid form if bad."""
    unknown = set(options) - set(OPTION_KEYS)
    if unknown:
        raise ValueError(f"unknown RayCluster option(s) {sorted(unknown)}; valid: {list(OPTION_KEYS)}")
    merged = {**DEFAULT_OPTIONS, **options}
    cpus, resources, retries = merged["num_cpus"], merged["resources"], merged["max_retries"]
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or cpus < 0:
        raise ValueError(f"num_cpus={cpus!r}: expected a number >= 0")
    if not isinstance(resources, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        for k, v in resources.items()
    ):
        raise ValueError(f"resources={resources!r}: expected a dict of name -> amount >= 0")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"max_retries={retries!r}: expected a whole number >= 0")
    return {"num_cpus": float(cpus), "resources": dict(resources), "max_retries": retries,
            "retry_exceptions": False}


# ---------------------------------------------------------------------- the actor


@dataclasses.dataclass(eq=False)
class _Run:
    """The actor's record of one subjob, until its final event."""

    fqid: str
    workdir: str
    marker: str
    handle: Handle
    spec: SubjobSpec | None = None  # None for adopted work
    # new (being accepted) | queued (in the actor) | launching | pending (in Ray) | running | adopted | done
    state: str = "queued"
    ref: Any = None  # the task's ObjectRef
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    early_report: tuple | None = None  # report_started that came before the ref was stored
    started: bool = False  # STARTED emitted
    killing: bool = False  # kill() owns the final event
    in_flight: bool = False  # counts against max_in_flight

    @property
    def status_path(self) -> str:
        return os.path.join(self.workdir, "status")


class RayClusterActor(LongPollEvents):
    """Runs each subjob as a Ray task; implements :class:`base.BackendActor`.

    Args:
        max_in_flight: how many subjobs may be handed to Ray at once (None: all;
            Ray's resources then decide how many run). Beyond it they wait in the
            actor (QUEUED, ``Queued``).
    """

    def __init__(self, max_in_flight: int | None = None) -> None:
        self._cap = max(1, int(max_in_flight)) if max_in_flight else None
        try:
            self._me = ray.get_runtime_context().current_actor  # tasks report STARTED to it
        except Exception:
            self._me = None  # not running as an actor: STARTED comes with the result
        self._node_id = ray.get_runtime_context().get_node_id() or ""
        self._host = node_host(ray.util.get_node_ip_address(), self._node_id)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._events: collections.deque[Event] = collections.deque()
        self._seq = time.time_ns() // 1000  # above any earlier actor's: a monitor's since stays valid
        self._runs: dict[str, _Run] = {}  # fqid -> run, until its final event
        self._queue: collections.deque[_Run] = collections.deque()
        self._in_flight = 0
        self._done: queue.SimpleQueue[_Run | None] = queue.SimpleQueue()  # from future callbacks
        self._closed = False
        self._reaper = threading.Thread(target=self._reap, name="raycluster-reaper", daemon=True)
        self._reaper.start()
        self._adopt_watcher: threading.Thread | None = None

    # ------------------------------------------------------------------ contract

    def submit(self, specs: list[SubjobSpec]) -> list[Handle]:
        """Hand each spec to Ray (or queue it over ``max_in_flight``); one handle per spec.

        A handle's ``task_id`` is set once the task exists; ``pid`` is 0 until it
        starts (the STARTED event carries the full handle).
        """
        handles: list[Handle] = []
        accepted: list[_Run] = []
        line = sf.StatusInfo(sf.QUEUED, "accepted by RayCluster", time.time()).line()
        for spec in specs:
            handle = Handle(BACKEND, spec.fqid, workdir=spec.workdir, attempt=spec.attempt)
            try:
                options = task_options(dict(spec.options))
            except ValueError as error:
                handles.append(dataclasses.replace(handle, error=str(error)))
                continue
            run = _Run(spec.fqid, spec.workdir, spec.marker, handle, spec=spec, options=options, state="new")
            with self._lock:
                old = self._runs.get(spec.fqid)
                if old is None:
                    self._runs[spec.fqid] = run
            if old is not None:  # checked before touching its files: they belong to that run
                handles.append(dataclasses.replace(handle, error=f"subjob {spec.fqid} is still {old.state} here"))
                continue
            try:
                os.makedirs(os.path.join(spec.workdir, "output"), exist_ok=True)
                sf.append_line(os.path.join(spec.workdir, "status"), line)
            except OSError as error:
                with self._cond:
                    del self._runs[spec.fqid]
                    self._cond.notify_all()  # a kill() may wait for this run to settle
                reason = f"cannot prepare {spec.workdir}: {error.strerror or error}"
                handles.append(dataclasses.replace(handle, error=reason))
                continue
            accepted.append(run)
            handles.append(handle)
        to_launch: list[_Run] = []
        with self._cond:
            for run in accepted:
                if not self._queue and (self._cap is None or self._in_flight < self._cap):
                    run.state, run.in_flight = "launching", True
                    self._in_flight += 1
                    to_launch.append(run)
                else:
                    run.state = "queued"
                    self._queue.append(run)
                    self._emit(run.fqid, base.QUEUED, detail=QUEUED_DETAIL, note="waiting for a free slot",
                               handle=run.handle)
            self._cond.notify_all()
        for run in to_launch:
            self._launch(run)
        by_fqid = {run.fqid: run for run in accepted}
        with self._lock:  # return the task ids known by now
            return [by_fqid[h.fqid].handle if h.fqid in by_fqid and not h.error else h for h in handles]

    def kill(self, handles: list[Handle], grace: float = 3.0) -> list[KillResult]:
        """Drop queued subjobs; cancel pending tasks; end started trees (TERM, grace, KILL);
        wait for the tasks; confirm that no process carries the marker."""
        results: list[KillResult | None] = [None] * len(handles)
        victims: list[tuple[int, _Run | None, procs.Target]] = []
        dropped: list[_Run] = []
        with self._cond:
            # A run being handed to Ray settles in a moment: its ref must be known to cancel it.
            self._cond.wait_for(lambda: not any(
                (r := self._runs.get(h.fqid)) is not None and r.state in ("new", "launching") for h in handles), 10.0)
            for index, handle in enumerate(handles):
                run = self._runs.get(handle.fqid)
                if run is not None and run.state == "queued":
                    dropped.append(run)
                    self._finish(run)
                    note = "dropped from the queue before it started"
                    results[index] = KillResult(handle.fqid, True, note)
                    self._emit(run.fqid, base.KILLED, note=note, handle=run.handle)
                elif run is not None:
                    run.killing = True
                    victims.append((index, run, procs.Target(run.handle.pid, run.handle.create_time, run.marker)))
                elif handle.pid or handle.workdir:
                    marker = _marker_from_history(_history(handle.workdir))
                    victims.append((index, None, procs.Target(handle.pid, handle.create_time, marker)))
                else:
                    results[index] = KillResult(handle.fqid, True, "nothing to kill: unknown here, never started")
            self._cond.notify_all()
        for run in dropped:
            sf.append_quietly(run.status_path, sf.KILLED, "dropped from the queue before it started")
        if victims:
            self._kill_victims(handles, victims, grace, results)
        self._fill()
        return [r if r is not None else KillResult(h.fqid, False, "internal error") for r, h in zip(results, handles)]

    def _kill_victims(self, handles: list[Handle], victims: list[tuple[int, _Run | None, procs.Target]],
                      grace: float, results: list[KillResult | None]) -> None:
        refs = {id(run): run.ref for _, run, _ in victims if run is not None and run.ref is not None}
        for _, run, _ in victims:  # not started yet: make sure it never does
            if run is not None and run.ref is not None and not run.handle.pid:
                _cancel(run.ref)
        targets = [t for _, _, t in victims if t.pid or t.marker]
        outcomes = iter(procs.kill_trees(targets, grace) if targets else [])
        notes = {id(t): next(outcomes).note for t in targets}
        pending = list(refs.values())
        if pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=TASK_END_WAIT, fetch_local=False)
            for ref in pending:  # a task that outlived its processes (or a stuck worker)
                _cancel(ref)
            if pending:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=TASK_END_WAIT, fetch_local=False)
        unfinished = {ref.hex() for ref in pending}
        # A task cancelled while starting may have started a wrapper: end anything marked.
        sweep = [t for _, _, t in victims if t.marker or t.pid]
        left = iter(procs.held(sweep) if sweep else [])
        alive = {id(t): next(left) for t in sweep}
        if any(alive.values()):
            again = [t for t in sweep if alive[id(t)]]
            for target, outcome in zip(again, procs.kill_trees(again, 0.5)):
                alive[id(target)] = not outcome.confirmed
                notes[id(target)] = outcome.note
        with self._cond:
            for index, run, target in victims:
                fqid = handles[index].fqid
                task_open = run is not None and run.ref is not None and run.ref.hex() in unfinished
                if task_open or alive.get(id(target), False):
                    why = "the Ray task has not ended" if task_open else "processes still alive"
                    results[index] = KillResult(fqid, False, f"{why}: {notes.get(id(target), '')}".strip(": "))
                    if run is not None:
                        run.killing = False  # keep watching it: the reaper reports its end
                        if run.ref is not None and not task_open:
                            self._done.put(run)
                    continue
                note = f"killed: {notes.get(id(target), 'the Ray task was cancelled before it started')}"
                results[index] = KillResult(fqid, True, note)
                if run is not None and run.state != "done":
                    self._emit(fqid, base.KILLED, note=note, handle=run.handle)
                    self._finish(run)
            self._cond.notify_all()
        for index, run, _ in victims:
            result = results[index]
            if result is not None and result.confirmed:
                workdir = run.workdir if run is not None else handles[index].workdir
                last = sf.last_status(os.path.join(workdir, "status")) if workdir else None
                if workdir and (last is None or not last.terminal):
                    sf.append_quietly(os.path.join(workdir, "status"), sf.KILLED, result.note)

    def held(self, handles: list[Handle]) -> list[bool]:
        """True while this actor still runs or queues the subjob, or a process of it lives."""
        answer: list[bool] = [False] * len(handles)
        targets: list[tuple[int, procs.Target]] = []
        with self._lock:
            for index, handle in enumerate(handles):
                run = self._runs.get(handle.fqid)
                if run is not None and run.state != "done":
                    answer[index] = True
                elif handle.pid or handle.workdir:
                    targets.append((index, procs.Target(handle.pid, handle.create_time, None)))
        targets = [(i, dataclasses.replace(t, marker=_marker_from_history(_history(handles[i].workdir))))
                   for i, t in targets]
        targets = [(i, t) for i, t in targets if t.pid or t.marker]
        if targets:
            for (index, _), alive in zip(targets, procs.held([t for _, t in targets])):
                answer[index] = alive
        return answer

    def adopt(self, handles: list[Handle]) -> list[Event]:
        """After a restart: one event per handle describing where it is now; keep watching
        what still runs (see the module docstring for what can and cannot be adopted)."""
        result = []
        for handle in handles:
            kind, code, note, detail, now = self._adopt_one(handle)
            with self._lock:
                result.append(Event(self._seq, handle.fqid, kind, time.time(), code, note, detail, now))
        return result

    def find(self, marker_prefix: str) -> list[Handle]:
        """Live processes (on this machine) whose marker starts with ``marker_prefix``, one
        handle per marker (the top of its tree), plus this actor's subjobs not started yet."""
        found = procs.find_by_marker(marker_prefix)
        pids = {pid for pid, _, _ in found}
        tops: dict[str, tuple[int, float]] = {}
        for pid, created, marker in sorted(found):
            try:
                parent = psutil.Process(pid).ppid()
            except psutil.Error:
                continue
            if parent not in pids:
                tops.setdefault(marker, (pid, created))
        handles = [Handle(BACKEND, marker[len(marker_prefix):], host=self._host, pid=pid, create_time=created)
                   for marker, (pid, created) in sorted(tops.items())]
        with self._lock:
            for run in self._runs.values():
                if run.marker.startswith(marker_prefix) and run.marker not in tops and not run.handle.pid:
                    handles.append(dataclasses.replace(run.handle, fqid=run.marker[len(marker_prefix):]))
        return handles

    def ping(self) -> dict[str, Any]:
        with self._lock:
            states = collections.Counter(run.state for run in self._runs.values())
            return {
                "backend": BACKEND,
                "host": self._host,
                "node_id": self._node_id,
                "pid": os.getpid(),
                "running": self._in_flight,  # handed to Ray and not final (pending + running)
                "queued": states["queued"],
                "pending": states["pending"] + states["launching"],
                "started": states["running"],
                "adopted": states["adopted"],
                "max_in_flight": self._cap,
                "seq": self._seq,
            }

    def close(self) -> None:
        """Stop the actor's threads (Ray tasks end with the actor that owns them)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._done.put(None)

    # ------------------------------------------------------------------ task reports

    def report_started(self, fqid: str, task_id: str, pid: int, create_time: float, host: str) -> None:
        """Called by a subjob's task once its wrapper runs (internal; not part of the contract)."""
        with self._cond:
            run = self._runs.get(fqid)
            if run is None or run.state not in ("launching", "pending", "running"):
                return
            if run.state == "launching":
                run.early_report = (task_id, pid, create_time, host)
                return
            stale = self._started(run, task_id, pid, create_time, host)
            self._cond.notify_all()
        if stale is not None:
            # Ray re-ran the task (max_retries) because its node or worker died: a copy that
            # survived there (visible when that "node" is this machine) must not run twice.
            procs.kill_trees([stale], 1.0)

    def report_lingering(self, fqid: str, task_id: str) -> None:
        """Called by a task whose wrapper ended while processes of its group still run."""
        with self._cond:
            run = self._runs.get(fqid)
            if run is None or run.handle.task_id != task_id or run.state == "done" or run.killing:
                return
            self._emit(fqid, base.DETAIL, detail=LINGERING_DETAIL,
                       note="the wrapper ended but processes of its group still run", handle=run.handle)
            self._cond.notify_all()

    # ------------------------------------------------------------------ internals

    def _launch(self, run: _Run) -> None:
        assert run.spec is not None
        try:
            ref = _task().options(**run.options).remote(run.spec, self._me)
            task_id = ref.task_id().hex()
        except Exception as error:  # Ray refused the options or is going away
            reason = f"Ray refused the task: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
            sf.append_quietly(run.status_path, sf.WRAPPER_ERROR, f"exit=126 {reason}")
            with self._cond:
                self._emit(run.fqid, base.LOST, note=reason, handle=run.handle)
                self._finish(run)
                self._cond.notify_all()
            self._fill()
            return
        with self._cond:
            run.ref = ref
            run.handle = dataclasses.replace(run.handle, task_id=task_id)
            run.state = "pending"
            self._emit(run.fqid, base.DETAIL, detail=PENDING_DETAIL,
                       note="waiting in Ray for a worker with the resources", handle=run.handle)
            if run.early_report is not None:
                self._started(run, *run.early_report)
            self._cond.notify_all()
        # Runs in a Ray thread when the task ends (at once if it already has): just enqueue.
        ref.future().add_done_callback(lambda _future, run=run: self._done.put(run))

    def _started(self, run: _Run, task_id: str, pid: int, create_time: float, host: str) -> procs.Target | None:
        """Record a started wrapper and emit STARTED (lock held).

        Returns the earlier wrapper (by pid and start time only: the marker is shared
        with the new one) when Ray re-ran the task, for the caller to end.
        """
        if task_id != run.handle.task_id or run.killing:
            return None
        if run.started and run.handle.pid == pid:
            return None
        stale = procs.Target(run.handle.pid, run.handle.create_time) if run.started and run.handle.pid else None
        run.handle = dataclasses.replace(run.handle, pid=pid, create_time=create_time, host=host)
        run.state, run.started = "running", True
        self._emit(run.fqid, base.STARTED, detail=RUNNING_DETAIL, handle=run.handle,
                   note=f"re-run by Ray on {host}" if stale else f"on {host}")
        return stale

    def _reap(self) -> None:
        """Turn finished tasks into final events (one thread; woken by future callbacks)."""
        while True:
            run = self._done.get()
            if run is None:
                return
            try:
                self._reap_one(run)
            except Exception as error:  # one bad result must not stop the reaper
                with self._cond:
                    if run.state != "done" and not run.killing:
                        self._emit(run.fqid, base.LOST, note=f"actor error while reaping: {error!r}",
                                   handle=run.handle)
                        self._finish(run)
                    self._cond.notify_all()
            self._fill()

    def _reap_one(self, run: _Run) -> None:
        with self._lock:
            if run.state == "done" or run.killing:
                return  # kill() reports it
        try:
            result = ray.get(run.ref, timeout=10)
        except ray.exceptions.RayError as error:
            result = {"kind": base.LOST, "exit_code": None, "pid": 0, "create_time": 0.0, "host": "",
                      "note": f"the Ray task failed: {type(error).__name__}: {_first_line(error)}"}
            # Whatever of it is still visible here must not outlive the report (strict).
            handle = run.handle
            target = procs.Target(handle.pid, handle.create_time, run.marker)
            if procs.held([target])[0]:
                (outcome,) = procs.kill_trees([target], 1.0)
                result["note"] += f" [its processes on this machine were ended: {outcome.note}]"
        with self._cond:
            if run.state == "done" or run.killing:
                return
            if not run.started and result.get("pid"):
                self._started(run, run.handle.task_id, result["pid"], result["create_time"], result["host"])
            self._emit(run.fqid, result["kind"], exit_code=result["exit_code"], note=result["note"],
                       handle=run.handle)
            self._finish(run)
            self._cond.notify_all()

    def _fill(self) -> None:
        """Hand queued runs to Ray while under ``max_in_flight``."""
        batch: list[_Run] = []
        with self._cond:
            while self._queue and (self._cap is None or self._in_flight < self._cap):
                run = self._queue.popleft()
                if run.state != "queued":
                    continue  # killed while queued
                run.state, run.in_flight = "launching", True
                self._in_flight += 1
                batch.append(run)
        for run in batch:
            self._launch(run)

    def _finish(self, run: _Run) -> None:
        """The run's final event is out (lock held)."""
        run.state = "done"
        if run.in_flight:
            run.in_flight = False
            self._in_flight -= 1
        if self._runs.get(run.fqid) is run:
            del self._runs[run.fqid]

    def _emit(self, fqid: str, kind: str, exit_code: int | None = None, note: str = "", detail: str = "",
              handle: Handle | None = None) -> None:
        self._seq += 1
        self._events.append(Event(self._seq, fqid, kind, time.time(), exit_code, note, detail, handle))

    # ------------------------------------------------------------------ adopting

    def _adopt_one(self, handle: Handle) -> tuple[str, int | None, str, str, Handle]:
        with self._lock:
            run = self._runs.get(handle.fqid)
            if run is not None and run.state != "done":
                if run.started or run.state == "adopted":
                    return base.STARTED, None, "already watched by this actor", RUNNING_DETAIL, run.handle
                detail = QUEUED_DETAIL if run.state == "queued" else PENDING_DETAIL
                return base.QUEUED, None, "already queued by this actor", detail, run.handle
        history = _history(handle.workdir)
        marker = _marker_from_history(history)
        pid, created = handle.pid, handle.create_time
        if not pid:  # taken before it started: the status file may name its wrapper since
            pid, created = _wrapper_from_history(history, marker)
        alive = bool(pid) and procs.is_alive(pid, created)
        if not alive and marker:
            # The wrapper is gone but a payload may remain (e.g. Ray killed the worker's child).
            found = [(p, c) for p, c, m in procs.find_by_marker(marker) if m == marker]
            if found:
                pid, created = min(found)
                alive = True
        now = dataclasses.replace(handle, pid=pid, create_time=created, host=handle.host or self._host)
        if alive:
            run = _Run(handle.fqid, handle.workdir, marker or "", now, state="adopted", started=True)
            with self._lock:
                self._runs[run.fqid] = run
            self._watch_adopted()
            return base.STARTED, None, "adopted: still running", RUNNING_DETAIL, now
        last = history[-1] if history else None
        kind, code, note = outcome_from_status(last, None)
        if kind == base.LOST:
            if last is None or not last.terminal:
                seen = f"last status {last.state}" if last is not None else "no status line"
                note = (f"no process left and no exit status recorded ({seen}); "
                        "its Ray task ended with the actor that submitted it")
                if handle.workdir:
                    sf.append_quietly(os.path.join(handle.workdir, "status"), sf.LOST_ERROR, note)
        return kind, code, note, "", now

    def _watch_adopted(self) -> None:
        with self._lock:
            if self._adopt_watcher is not None and self._adopt_watcher.is_alive():
                return
            self._adopt_watcher = threading.Thread(target=self._adopted_loop, name="raycluster-adopted",
                                                   daemon=True)
            self._adopt_watcher.start()

    def _adopted_loop(self) -> None:
        """Re-check adopted subjobs (no Ray task to wait on) until none is left."""
        while True:
            with self._cond:
                if self._closed:
                    return
                runs = [r for r in self._runs.values() if r.state == "adopted" and not r.killing]
                if not runs and not any(r.state == "adopted" for r in self._runs.values()):
                    self._adopt_watcher = None
                    return
            if runs:
                targets = [procs.Target(r.handle.pid, r.handle.create_time, r.marker or None) for r in runs]
                gone = [run for run, alive in zip(runs, procs.held(targets)) if not alive]
                finals = [(run, outcome_from_status(sf.last_status(run.status_path), None)) for run in gone]
                with self._cond:
                    for run, (kind, code, note) in finals:
                        if run.state != "adopted" or run.killing:
                            continue
                        self._emit(run.fqid, kind, exit_code=code, note=note, handle=run.handle)
                        self._finish(run)
                    self._cond.notify_all()
                for run, (kind, _, note) in finals:
                    if kind == base.LOST:
                        last = sf.last_status(run.status_path)
                        if last is None or not last.terminal:
                            sf.append_quietly(run.status_path, sf.LOST_ERROR, note)
            time.sleep(ADOPT_RECHECK)


# ---------------------------------------------------------------------- helpers


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


def _history(workdir: str) -> list[sf.StatusInfo]:
    return sf.StatusFile(os.path.join(workdir, "status")).history() if workdir else []


def _marker_from_history(history: list[sf.StatusInfo]) -> str | None:
    """The marker of the last RUNNING line (the wrapper writes ``marker=<value>`` last)."""
    for info in reversed(history):
        if info.state == sf.RUNNING and "marker=" in info.note:
            return info.note.split("marker=", 1)[1] or None
    return None


def _wrapper_from_history(history: list[sf.StatusInfo], marker: str | None) -> tuple[int, float]:
    """``(pid, create_time)`` of the wrapper named by the last RUNNING line, if still ours."""
    for info in reversed(history):
        if info.state != sf.RUNNING:
            continue
        words = dict(word.split("=", 1) for word in info.note.split() if "=" in word)
        try:
            pid = int(words.get("wrapper", "0"))
        except ValueError:
            return 0, 0.0
        if pid and marker and procs.read_marker(pid) == marker:
            return pid, procs.create_time(pid) or 0.0
        return 0, 0.0
    return 0, 0.0


# ---------------------------------------------------------------------- Ray


def start_raycluster_actor(
    name: str | None = None,
    max_concurrency_slots: int = 32,
    *,
    max_in_flight: int | None = None,
    namespace: str | None = None,
    lifetime: str | None = None,
    get_if_exists: bool = False,
    **actor_options: Any,
) -> Any:
    """Create (or with ``get_if_exists`` re-attach to) a threaded :class:`RayClusterActor`.

    ``max_concurrency_slots``: method calls that run at once in the actor (long
    polls, task reports and kills must not wait for each other). The actor asks
    for no CPU: the subjobs' tasks reserve their own. ``lifetime="detached"``
    under a ``ray start`` cluster lets it (and its task refs) outlive the driver.
    """
    options = base.actor_options(max_concurrency_slots, name, namespace, lifetime, get_if_exists,
                                 **actor_options)
    return ray.remote(RayClusterActor).options(**options).remote(max_in_flight=max_in_flight)


__all__ = ["BACKEND", "OPTION_KEYS", "RayClusterActor", "run_subjob", "start_raycluster_actor", "task_options"]
