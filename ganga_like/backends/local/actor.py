"""The Local backend's actor: runs subjobs as processes on this machine.

``LocalActor`` is a plain class (usable in-process, which the benchmarks do) and
becomes a threaded Ray actor through :func:`start_local_actor`; nothing here
imports Ray or starts anything at import time.

How it works (see ``ganga_like/backends/base.py`` for the contract):

* Each subjob runs under the wrapper (native build of ``wrapper.c``, else ``wrapper.sh``), started with
  ``start_new_session=True`` so it outlives the actor and leads its own process
  group; the wrapper records RUNNING / RUN_DONE / RUN_FAILED ... in
  ``<workdir>/status`` (``ganga_like.status_file``).
* At most ``concurrency`` wrappers run at once; the rest wait in a FIFO queue
  (event QUEUED, detail "Queued"). Handles of queued subjobs have ``pid == 0``;
  the STARTED event carries the full handle.
* One watcher thread waits on a pidfd per wrapper with epoll: no timer polls the
  jobs. When a wrapper ends, its slot goes to the next queued subjob first, then
  the status file's last line gives the payload's exit code. FINISHED is emitted
  only once no process of the wrapper's process group is left (strict); until
  then the subjob is "Lingering" (a DETAIL event) and re-checked every 0.25 s.
  The slot is freed when the wrapper itself ends.
* A wrapper that ended without recording an exit status (killed by SIGKILL,
  say) yields LOST with the reason, and a LOST_ERROR line in the status file.
* Sequence numbers start at the actor's start time in microseconds, so a
  restarted actor's numbers are above its predecessor's and a monitor's
  ``since`` stays meaningful.

Ray must not kill the actor's children when the actor ends: Ray does by default
(``kill_child_processes_on_worker_exit``). Start Ray with :data:`RAY_SYSTEM_CONFIG`
(``ray.init(_system_config=RAY_SYSTEM_CONFIG)``, or ``ray start --head
--system-config='{"kill_child_processes_on_worker_exit": false}'``), else
subjobs die with their actor and are reported LOST on adoption.

Payload environment: ``base.payload_environment``: the submitting client's
environment (``spec.base_env``; the actor's own when the job opted out), without
Ray's variables, updated with ``spec.env``, plus ``GANGA_LIKE_MARKER=<spec.marker>``.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from typing import Any

import psutil

from ganga_like import status_file as sf
from ganga_like.backends import base
from ganga_like.backends.base import Event, Handle, KillResult, SubjobSpec, payload_environment
from ganga_like.backends.event_stream import LongPollEvents
from ganga_like.backends.local import native, procs
from ganga_like.ray_runtime import RAY_SYSTEM_CONFIG  # noqa: F401  (documented above)

BACKEND = "Local"
WRAPPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrapper.sh")
LINGER_RECHECK = 0.25  # seconds between checks of subjobs whose group outlived the wrapper
LEFTOVER_GRACE = 2.0  # TERM to KILL, for what a payload left behind when its wrapper ended
SUBMIT_CHUNK = 64  # specs prepared on disk per step of submit()
QUEUED_DETAIL = "Queued"
RUNNING_DETAIL = "Running"
LINGERING_DETAIL = "Lingering"


@dataclasses.dataclass(eq=False)
class _Job:
    """The actor's record of one subjob it queued, runs or watches."""

    fqid: str
    workdir: str
    marker: str
    spec: SubjobSpec | None = None
    handle: Handle | None = None
    state: str = "queued"  # new | queued | starting | running | lingering | done
    popen: subprocess.Popen | None = None  # set when a script wrapper was started with Popen
    child: bool = False  # our own child (we reap it); False for adopted wrappers
    pidfd: int = -1
    slot: bool = False  # counts against the concurrency limit
    killing: bool = False  # kill() owns the final event
    exited: bool = False  # the wrapper has ended
    exit_event: tuple | None = None  # (kind, exit_code, note) worked out when the wrapper ended
    leftovers: str = ""  # what ending the processes it left behind did (added to the note)

    @property
    def status_path(self) -> str:
        return os.path.join(self.workdir, "status")


class LocalActor(LongPollEvents):
    """Runs subjobs as local processes; implements :class:`base.BackendActor`.

    Args:
        concurrency: how many subjobs may run at once (default: ``os.cpu_count()``).
        wrapper: path of a wrapper *script* run with bash (default: the native wrapper built
            from ``wrapper.c``, or ``wrapper.sh`` beside this file where no compiler exists).
        bash: the bash used to run a script wrapper (default: found in PATH, else /bin/bash).
    """

    def __init__(self, concurrency: int | None = None, wrapper: str | None = None, bash: str | None = None) -> None:
        self._concurrency = max(1, int(concurrency or os.cpu_count() or 1))
        self._bash = bash or shutil.which("bash") or "/bin/bash"
        if wrapper is not None:
            self._command = [self._bash, wrapper]
        else:
            self._command = native.wrapper_command(self._bash)
        self._wrapper = self._command[-1]
        self._spawn_directly = len(self._command) == 1  # the native wrapper (see _launch)
        self._host = socket.gethostname()
        self._own_env = dict(os.environ)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._events: collections.deque[Event] = collections.deque()
        self._seq = time.time_ns() // 1000
        self._queue: collections.deque[_Job] = collections.deque()
        self._jobs: dict[str, _Job] = {}  # fqid -> job, until its final event is emitted
        self._watched: dict[int, _Job] = {}  # pidfd -> job
        self._lingering: list[_Job] = []
        self._active = 0  # slots in use
        self._queued = 0  # live entries of _queue (killed ones stay in it, marked done)
        self._closed = False
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)  # shared by every start
        self._std_actions = [(os.POSIX_SPAWN_DUP2, self._devnull, fd) for fd in (0, 1, 2)]
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._watcher = threading.Thread(target=self._watch, name="local-actor-watcher", daemon=True)
        self._watcher.start()

    # ------------------------------------------------------------------ contract

    def submit(self, specs: list[SubjobSpec]) -> list[Handle]:
        """Start up to the free slots now, queue the rest; one handle per spec, in order.

        Specs are prepared in chunks (output/ created, first status line written) so
        the first subjobs run while later ones are still being prepared. A handle
        has ``pid == 0`` if its subjob had not started when submit returned.
        """
        jobs: list[_Job | None] = []
        handles: list[Handle] = []
        with self._lock:
            for spec in specs:
                old = self._jobs.get(spec.fqid)
                if old is not None:
                    jobs.append(None)
                    handles.append(self._error_handle(spec, f"subjob {spec.fqid} is still {old.state} in this actor"))
                    continue
                job = _Job(spec.fqid, spec.workdir, spec.marker, spec=spec, state="new")
                self._jobs[spec.fqid] = job
                jobs.append(job)
                handles.append(Handle(BACKEND, spec.fqid, host=self._host, workdir=spec.workdir,
                                      attempt=spec.attempt))
        for first in range(0, len(jobs), SUBMIT_CHUNK):
            self._submit_chunk(jobs[first : first + SUBMIT_CHUNK], handles, first)
        with self._lock:
            for index, job in enumerate(jobs):
                if job is not None and job.handle is not None:
                    handles[index] = job.handle
        return handles

    def _submit_chunk(self, jobs: list[_Job | None], handles: list[Handle], offset: int) -> None:
        # Only the subjobs that start now touch the disk here; queued ones get their
        # directory and first status line when a slot frees (see _fill_slots), so a
        # batch of 10,000 is accepted in milliseconds instead of 20,000 mkdirs later.
        with self._lock:
            free = 0 if self._queued else max(0, self._concurrency - self._active)
            to_start: list[_Job] = []
            for job in jobs:
                if job is None:
                    continue
                if free:
                    free -= 1
                    job.state, job.slot = "starting", True
                    self._active += 1
                    to_start.append(job)
                else:
                    job.state = "queued"
                    self._queue.append(job)
                    self._queued += 1
                    self._emit(job.fqid, base.QUEUED, detail=QUEUED_DETAIL, note="waiting for a free slot")
            self._cond.notify_all()
        for job in to_start:
            self._start(job)
        self._fill_slots()  # slots freed meanwhile go to the queue now

    def _prepare(self, job: _Job) -> str:
        """Create the subjob's output/ and its first status line; the reason if that fails."""
        try:
            _make_dirs(job.workdir)
            sf.append_line(job.status_path, sf.StatusInfo(sf.CREATED, "starting", time.time()).line())
        except OSError as error:
            return f"cannot prepare {job.workdir}: {error.strerror or error}"
        return ""

    def _start(self, job: _Job) -> None:
        """Prepare, then launch; a subjob that cannot be prepared is a submission failure."""
        reason = self._prepare(job)
        if not reason:
            self._launch(job)
            return
        handle = self._error_handle(job.spec, reason)
        with self._cond:
            job.handle = handle
            self._release_slot(job)
            self._emit(job.fqid, base.LOST, note=reason, handle=handle)
            self._finish(job)
            self._cond.notify_all()

    def kill(self, handles: list[Handle], grace: float = 3.0) -> list[KillResult]:
        """Drop queued subjobs, kill running trees (TERM, grace, KILL); confirm with psutil."""
        results: list[KillResult | None] = [None] * len(handles)
        targets: list[tuple[int, procs.Target, _Job | None]] = []
        dropped: list[_Job] = []
        with self._cond:
            # A subjob being prepared or launched by another thread settles in a moment: wait for it.
            self._cond.wait_for(
                lambda: all(
                    self._jobs.get(h.fqid) is None or self._jobs[h.fqid].state not in ("new", "starting")
                    for h in handles
                ),
                timeout=10.0,
            )
            for index, handle in enumerate(handles):
                job = self._jobs.get(handle.fqid)
                if job is not None and job.state == "queued":
                    job.state = "done"  # _fill_slots skips it (no O(n) removal from the deque)
                    self._queued -= 1
                    del self._jobs[job.fqid]
                    dropped.append(job)
                    results[index] = KillResult(handle.fqid, True, "dropped from the queue before it started")
                    self._emit(job.fqid, base.KILLED, note="dropped from the queue before it started", handle=job.handle)
                elif job is not None and job.handle is not None and job.handle.pid:
                    job.killing = True
                    targets.append((index, procs.Target(job.handle.pid, job.handle.create_time, job.marker), job))
                elif handle.pid:
                    marker = marker_from_status(handle.workdir)
                    targets.append((index, procs.Target(handle.pid, handle.create_time, marker), None))
                else:
                    results[index] = KillResult(handle.fqid, True, "nothing to kill: never started")
            self._cond.notify_all()
        for job in dropped:
            sf.append_quietly(job.status_path, sf.KILLED, "dropped from the queue before it started")

        outcomes = procs.kill_trees([t for _, t, _ in targets], grace) if targets else []
        final_lines: list[tuple[str, str, str]] = []
        with self._cond:
            for (index, _target, job), outcome in zip(targets, outcomes):
                fqid = handles[index].fqid
                results[index] = KillResult(fqid, outcome.confirmed, outcome.note)
                if not outcome.confirmed:
                    continue  # still killing; the lingering check emits KILLED once it is gone
                if job is None:
                    if outcome.killed:
                        self._emit(fqid, base.KILLED, note=outcome.note, handle=handles[index])
                        final_lines.append((handles[index].workdir, sf.KILLED, f"killed by ganga_like: {outcome.note}"))
                    continue
                # Our own wrapper: wait (briefly) for the watcher to see it end.
                self._cond.wait_for(lambda: job.exited, timeout=2.0)
                if job.state == "done":
                    continue
                if outcome.killed == 0 and job.exit_event is not None:
                    # It ended on its own before the kill: report how it ended.
                    kind, code, note = job.exit_event
                    self._emit(fqid, kind, exit_code=code, note=note, handle=job.handle)
                else:
                    self._emit(fqid, base.KILLED, note=outcome.note, handle=job.handle)
                    final_lines.append((job.workdir, sf.KILLED, f"killed by ganga_like: {outcome.note}"))
                self._finish(job)
            self._cond.notify_all()
        for workdir, state, note in final_lines:
            sf.append_quietly(os.path.join(workdir, "status"), state, note)
        return [r if r is not None else KillResult(h.fqid, False, "not handled") for r, h in zip(results, handles)]

    def held(self, handles: list[Handle]) -> list[bool]:
        """Per handle: does it hold a resource (a live process of its tree, or a queue place)?"""
        answer: list[bool | None] = [None] * len(handles)
        targets: list[tuple[int, procs.Target]] = []
        with self._lock:
            for index, handle in enumerate(handles):
                job = self._jobs.get(handle.fqid)
                if job is not None and job.state in ("new", "queued", "starting"):
                    answer[index] = True
                    continue
                if job is not None and job.handle is not None:
                    handle = job.handle
                if not handle.pid:
                    answer[index] = False
                    continue
                marker = job.marker if job is not None else None
                targets.append((index, procs.Target(handle.pid, handle.create_time, marker)))
        targets = [
            (index, t if t.marker else dataclasses.replace(t, marker=marker_from_status(handles[index].workdir)))
            for index, t in targets
        ]
        if targets:
            for (index, _), alive in zip(targets, procs.held([t for _, t in targets])):
                answer[index] = alive
        return [bool(a) for a in answer]

    def adopt(self, handles: list[Handle]) -> list[Event]:
        """Take over subjobs an earlier actor started: one event per handle, then watch the live ones.

        The events returned are a snapshot, not part of the stream: their ``seq`` is
        the stream position they describe (later stream events follow on from it).
        """
        result = []
        for handle in handles:
            kind, code, note, detail, final_handle = self._adopt_one(handle)
            with self._lock:
                result.append(Event(self._seq, handle.fqid, kind, time.time(), code, note, detail, final_handle))
        return result

    def find(self, marker_prefix: str) -> list[Handle]:
        """Handles of the live process trees whose marker starts with ``marker_prefix``.

        One handle per marker: the top of the tree (a process whose parent does not
        carry the marker too). ``fqid`` is the marker after the prefix; ``workdir``
        and ``attempt`` are unknown here and left empty for the caller to fill in.
        """
        found = procs.find_by_marker(marker_prefix)
        marked = {pid for pid, _created, _marker in found}
        tops: dict[str, tuple[int, float]] = {}
        for pid, created, marker in found:
            try:
                parent = psutil.Process(pid).ppid()
            except psutil.Error:
                continue
            if parent in marked:
                continue  # a descendant: its tree is reached through the top
            tops.setdefault(marker, (pid, created))
        return [Handle(BACKEND, marker[len(marker_prefix):], host=self._host, pid=pid,
                       create_time=created)
                for marker, (pid, created) in sorted(tops.items())]

    def ping(self) -> dict[str, Any]:
        with self._lock:
            return {
                "backend": BACKEND,
                "host": self._host,
                "pid": os.getpid(),
                "running": self._active,
                "queued": self._queued,
                "lingering": len(self._lingering),
                "concurrency": self._concurrency,
                "wrapper": self._wrapper,
                "seq": self._seq,
            }

    def close(self) -> None:
        """Stop the watcher thread (the subjobs keep running; a new actor may adopt them)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        os.write(self._wake_w, b"x")
        self._watcher.join(timeout=5)

    # ------------------------------------------------------------------ starting

    def _error_handle(self, spec: SubjobSpec | None, reason: str) -> Handle:
        assert spec is not None
        return Handle(BACKEND, spec.fqid, host=self._host, workdir=spec.workdir, error=reason,
                      attempt=spec.attempt)

    def _fill_slots(self) -> None:
        """Start queued subjobs while there are free slots (called by submit and the watcher)."""
        while True:
            with self._lock:
                batch = []
                while self._queue and self._active < self._concurrency:
                    job = self._queue.popleft()
                    if job.state != "queued":
                        continue  # killed while queued
                    self._queued -= 1
                    job.state, job.slot = "starting", True
                    self._active += 1
                    batch.append(job)
            if not batch:
                return
            for job in batch:
                self._start(job)

    def _launch(self, job: _Job) -> Handle | None:
        spec = job.spec
        assert spec is not None
        env = payload_environment(spec, self._own_env)
        env[procs.MARKER_VAR] = spec.marker
        argv = [*self._command, spec.workdir, spec.exe, *spec.args]
        popen = None
        try:
            if self._spawn_directly:
                # The native wrapper closes inherited descriptors itself and enters its
                # output directory, so posix_spawn (a vfork, no close_fds pass, no
                # Python in the child) is enough: a third of Popen's cost per subjob.
                pid = os.posix_spawn(argv[0], argv, env, setsid=True, file_actions=self._std_actions)
            else:
                popen = subprocess.Popen(argv, env=env, cwd=spec.workdir, stdin=self._devnull,
                                         stdout=self._devnull, stderr=self._devnull, close_fds=True,
                                         start_new_session=True)
                pid = popen.pid
        except (OSError, ValueError) as error:  # ValueError: a NUL in an argument or variable
            reason = f"cannot start the wrapper {self._wrapper}: {error}"
            sf.append_quietly(job.status_path, sf.WRAPPER_ERROR, f"exit=126 {reason}")
            handle = self._error_handle(spec, reason)  # never started: a submission failure
            with self._cond:
                job.handle = handle
                self._release_slot(job)
                self._emit(job.fqid, base.LOST, note=reason, handle=handle)
                self._finish(job)
                self._cond.notify_all()
            return None
        # The child is not reaped before we waitpid it, so its pid and start time are stable.
        pidfd = os.pidfd_open(pid)
        created = procs.start_time(pid) or 0.0
        handle = Handle(BACKEND, job.fqid, self._host, pid, created, "", job.workdir, attempt=spec.attempt)
        with self._cond:
            job.popen, job.child, job.handle, job.pidfd, job.state = popen, True, handle, pidfd, "running"
            self._watched[pidfd] = job
            self._epoll.register(pidfd, select.EPOLLIN)
            self._emit(job.fqid, base.STARTED, detail=RUNNING_DETAIL, handle=handle)
            self._cond.notify_all()
        return handle

    # ------------------------------------------------------------------ watching

    def _watch(self) -> None:
        while True:
            timeout = LINGER_RECHECK if self._lingering else -1
            try:
                ready = self._epoll.poll(timeout)
            except InterruptedError:
                continue
            if self._closed:
                self._shutdown_watcher()
                return
            ended: list[_Job] = []
            with self._lock:
                for fd, _mask in ready:
                    if fd == self._wake_r:
                        continue
                    job = self._watched.pop(fd, None)
                    if job is not None:
                        self._epoll.unregister(fd)
                        ended.append(job)
            if ready and any(fd == self._wake_r for fd, _ in ready):
                _drain(self._wake_r)
            if ended:
                try:
                    self._on_ended(ended)
                except Exception as error:  # keep watching: one bad job must not stop the others
                    with self._cond:
                        for job in ended:
                            if job.state != "done":
                                self._emit(job.fqid, base.LOST, note=f"actor error while reaping: {error!r}")
                                self._finish(job)
                        self._cond.notify_all()
            if self._lingering:
                self._check_lingering()

    def _on_ended(self, ended: list[_Job]) -> None:
        statuses: dict[int, int | None] = {}
        for job in ended:
            os.close(job.pidfd)
            job.pidfd = -1
            statuses[id(job)] = _reap(job)
        outcome: list[tuple[_Job, tuple, bool]] = []
        for job in ended:
            event = _exit_event(job, statuses[id(job)])
            if event[0] == base.LOST:
                sf.append_quietly(job.status_path, sf.LOST_ERROR, event[2])
            assert job.handle is not None
            lingers = procs.group_may_live(job.handle.pid, job.handle.create_time) or (
                # The native wrapper ends every descendant itself (it is their subreaper);
                # the bash wrapper cannot: look for what left its group by the marker.
                not self._spawn_directly and _marked_alive(job.marker))
            outcome.append((job, event, lingers))
        # Final events go out before the freed slots are reused, so that the event
        # stream never shows more than `concurrency` subjobs running (~50 us later).
        with self._cond:
            for job, event, lingers in outcome:
                job.exited, job.exit_event = True, event
                self._release_slot(job)
                if job.killing:
                    continue  # kill() reports it
                if lingers:
                    # The payload's main process has ended, so has the job: what it left
                    # behind is ended now (TERM, grace, KILL), then the outcome is told.
                    job.state = "lingering"
                    self._lingering.append(job)
                    self._emit(
                        job.fqid,
                        base.DETAIL,
                        detail=LINGERING_DETAIL,
                        note="the wrapper ended but processes of its group still run: ending them",
                        handle=job.handle,
                    )
                    threading.Thread(target=self._end_leftovers, args=(job,),
                                     name="ganga_like-leftovers", daemon=True).start()
                    continue
                kind, code, note = event
                self._emit(job.fqid, kind, exit_code=code, note=note, handle=job.handle)
                self._finish(job)
            self._cond.notify_all()
        self._fill_slots()

    def _end_leftovers(self, job: _Job) -> None:
        assert job.handle is not None
        try:
            outcome = procs.kill_trees(
                [procs.Target(job.handle.pid, job.handle.create_time, job.marker or None)],
                LEFTOVER_GRACE)[0]
            job.leftovers = f"{outcome.killed} leftover process(es) ended" if outcome.confirmed \
                else f"leftover processes could not all be ended: {outcome.note}"
        except Exception as error:  # the check below still waits for the group to go
            job.leftovers = f"ending leftover processes failed: {error!r}"
        os.write(self._wake_w, b"x")

    def _check_lingering(self) -> None:
        with self._lock:
            jobs = list(self._lingering)
        # Done once what it left behind has been ended (or, while a kill owns it, once
        # its group is empty): not merely when its group empties, since a leftover
        # that left the group (setsid) still runs.
        gone = [
            job
            for job in jobs
            if job.handle is not None and (
                job.leftovers if not job.killing
                else not procs.group_may_live(job.handle.pid, job.handle.create_time))
        ]
        if not gone:
            return
        with self._cond:
            for job in gone:
                if job in self._lingering:
                    self._lingering.remove(job)
                if job.state == "done":
                    continue
                if job.killing:
                    self._emit(job.fqid, base.KILLED, note="killed: every process has ended", handle=job.handle)
                else:
                    kind, code, note = job.exit_event or (base.LOST, None, "ended without an exit status")
                    if job.leftovers:
                        note = f"{note}; {job.leftovers}"
                    self._emit(job.fqid, kind, exit_code=code, note=note, handle=job.handle)
                self._finish(job)
            self._cond.notify_all()

    def _shutdown_watcher(self) -> None:
        with self._lock:
            for fd in list(self._watched):
                os.close(fd)
            self._watched.clear()
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        os.close(self._devnull)

    # ------------------------------------------------------------------ adopting

    def _adopt_one(self, handle: Handle) -> tuple[str, int | None, str, str, Handle]:
        with self._lock:
            job = self._jobs.get(handle.fqid)
            if job is not None:
                if job.state in ("new", "queued", "starting"):
                    return base.QUEUED, None, "already queued in this actor", QUEUED_DETAIL, job.handle or handle
                return base.STARTED, None, "already watched by this actor", RUNNING_DETAIL, job.handle or handle
        status_path = os.path.join(handle.workdir, "status")
        history = sf.StatusFile(status_path).history() if handle.workdir else []
        marker = _marker_from_history(history)
        pid, created = handle.pid, handle.create_time
        if not pid:
            # Queued in the earlier actor when the handle was taken: maybe started since.
            pid, created = _wrapper_from_history(history, marker)
        if pid and procs.is_alive(pid, created):
            adopted = self._watch_foreign(handle, pid, created, marker)
            if adopted is not None:
                return base.STARTED, None, "adopted: still running", RUNNING_DETAIL, adopted
        last = history[-1] if history else None
        handle = dataclasses.replace(handle, pid=pid, create_time=created) if pid else handle
        if pid and procs.group_may_live(pid, created):
            job = _Job(handle.fqid, handle.workdir, marker or "", handle=handle, state="lingering", exited=True)
            job.exit_event = event_from_status(last, None)
            with self._lock:
                self._jobs[job.fqid] = job
                self._lingering.append(job)
            threading.Thread(target=self._end_leftovers, args=(job,),
                             name="ganga_like-leftovers", daemon=True).start()
            return base.DETAIL, None, "adopted: processes of its group still run", LINGERING_DETAIL, handle
        kind, code, note = event_from_status(last, None)
        if kind == base.LOST and (last is None or last.state != sf.LOST_ERROR):
            sf.append_quietly(status_path, sf.LOST_ERROR, note)
        return kind, code, note, "", handle

    def _watch_foreign(self, handle: Handle, pid: int, created: float, marker: str | None) -> Handle | None:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        if not procs.is_alive(pid, created):  # the pid is pinned now: check it is still ours
            os.close(pidfd)
            return None
        adopted = dataclasses.replace(handle, pid=pid, create_time=created, host=handle.host or self._host)
        job = _Job(handle.fqid, handle.workdir, marker or "", handle=adopted, state="running", pidfd=pidfd)
        with self._lock:
            job.slot = True  # adopted work occupies a slot like our own
            self._active += 1
            self._jobs[job.fqid] = job
            self._watched[pidfd] = job
            self._epoll.register(pidfd, select.EPOLLIN)
        return adopted

    # ------------------------------------------------------------------ helpers (lock held)

    def _emit(
        self,
        fqid: str,
        kind: str,
        exit_code: int | None = None,
        note: str = "",
        detail: str = "",
        handle: Handle | None = None,
    ) -> None:
        self._seq += 1
        self._events.append(Event(self._seq, fqid, kind, time.time(), exit_code, note, detail, handle))

    def _quiet(self) -> bool:
        return not self._jobs  # every subjob this actor knew of has had its final event

    def _release_slot(self, job: _Job) -> None:
        if job.slot:
            job.slot = False
            self._active -= 1

    def _finish(self, job: _Job) -> None:
        job.state = "done"
        self._release_slot(job)
        if self._jobs.get(job.fqid) is job:
            del self._jobs[job.fqid]
        if job in self._lingering:
            self._lingering.remove(job)


# ---------------------------------------------------------------------- module helpers


def _marked_alive(marker: str) -> bool:
    return bool(marker) and any(found == marker for _pid, _created, found in procs.find_by_marker(marker))


def _reap(job: _Job) -> int | None:
    """Reap our own ended wrapper: its return code (negative: killed by that signal)."""
    if job.popen is not None:
        return job.popen.poll()
    if not job.child or job.handle is None:
        return None  # adopted: init reaps it, its exit status is in the status file
    try:
        pid, wait_status = os.waitpid(job.handle.pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(wait_status) if pid else None


def _exit_event(job: _Job, wait_status: int | None) -> tuple[str, int | None, str]:
    """(kind, exit_code, note) for a wrapper that has ended, from its status file."""
    return event_from_status(sf.last_status(job.status_path), wait_status)


def event_from_status(last: sf.StatusInfo | None, returncode: int | None) -> tuple[str, int | None, str]:
    """The outcome of an ended wrapper. ``returncode``: its exit status when we are its
    parent (None for adopted work). The status file is the payload's to damage (it can
    write there); the exit status the kernel gave us is not, so it wins when they differ."""
    if returncode is not None and returncode >= 0 and not (
            last is not None and last.terminal and last.state != sf.LOST_ERROR
            and (last.exit_code if last.exit_code is not None else returncode) == returncode):
        seen = f"{last.state} {last.note}".strip()[:200] if last is not None else "no status line"
        note = (f"exit={returncode} (the wrapper's exit status; its status file ends with "
                f"something else: {seen})")
        return base.FINISHED, returncode, note
    if last is not None and last.terminal:
        code = last.exit_code
        if last.state == sf.LOST_ERROR:
            return base.LOST, None, last.note
        if last.state == sf.KILLED and code is None:
            return base.KILLED, None, last.note
        if code is None:
            code = 0 if last.state == sf.RUN_DONE else 1
        note = f"{last.state} {last.note}".strip()
        if last.state == sf.KILLED:
            note += " (signalled from outside ganga_like)"
        return base.FINISHED, code, note
    seen = f"last status {last.state}" if last is not None else "no status line"
    if returncode is None:
        reason = f"the wrapper ended before recording the exit status ({seen})"
    elif returncode < 0:
        reason = f"wrapper ended by signal {-returncode} before recording the exit status ({seen})"
    else:
        reason = f"wrapper exited with {returncode} without recording the exit status ({seen})"
    return base.LOST, None, reason


def _marker_from_history(history: list[sf.StatusInfo]) -> str | None:
    for info in reversed(history):
        if info.state == sf.RUNNING and "marker=" in info.note:
            return info.note.split("marker=", 1)[1] or None
    return None


def marker_from_status(workdir: str) -> str | None:
    if not workdir:
        return None
    return _marker_from_history(sf.StatusFile(os.path.join(workdir, "status")).history())


def _wrapper_from_history(history: list[sf.StatusInfo], marker: str | None) -> tuple[int, float]:
    """The wrapper named by the last RUNNING line, if that process still carries our marker."""
    for info in reversed(history):
        if info.state != sf.RUNNING:
            continue
        for word in info.note.split():
            if word.startswith("wrapper="):
                try:
                    pid = int(word[len("wrapper=") :])
                except ValueError:
                    return 0, 0.0
                if marker and procs.read_marker(pid) == marker:
                    return pid, procs.create_time(pid) or 0.0
                return 0, 0.0
        return 0, 0.0
    return 0, 0.0


def _make_dirs(workdir: str) -> None:
    """``<workdir>/output``: two mkdir calls in the common case (makedirs stats each level)."""
    try:
        os.mkdir(workdir)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(workdir, exist_ok=True)
    try:
        os.mkdir(os.path.join(workdir, "output"))
    except FileExistsError:
        pass



def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


# ---------------------------------------------------------------------- Ray


def start_local_actor(
    name: str | None = None,
    max_concurrency_slots: int = 32,
    *,
    concurrency: int | None = None,
    wrapper: str | None = None,
    namespace: str | None = None,
    lifetime: str | None = None,
    get_if_exists: bool = False,
    **actor_options: Any,
):
    """Create a threaded Ray actor running :class:`LocalActor`; return its handle.

    ``max_concurrency_slots`` is how many method calls run at once in the actor
    (an ``events`` long poll must not block ``submit`` or ``kill``);
    ``concurrency`` is how many subjobs run at once; ``wrapper`` a wrapper script
    to run with bash instead of the native one (see :class:`LocalActor`). The actor asks for no CPU
    (``num_cpus=0``): the subjobs it starts are not Ray tasks. Ray is imported
    here, never at module import.
    """
    import ray

    remote_cls = ray.remote(LocalActor)
    options = base.actor_options(max_concurrency_slots, name, namespace, lifetime, get_if_exists,
                                 **actor_options)
    return remote_cls.options(**options).remote(concurrency=concurrency, wrapper=wrapper)
