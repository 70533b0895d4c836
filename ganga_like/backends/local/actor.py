"""The Local backend's driver: subjobs as processes on this machine.

``LocalActor`` is a plain class (the benchmarks use it in-process) and a threaded
Ray actor through :func:`start_local_actor`. The contract's mechanics are
``backends/runtime``'s; this file starts, watches and ends processes:

* Each subjob runs under the wrapper (``runtime.native``) in its own session: it
  outlives the actor and leads its own process group. Subjobs take their ``cpus``
  of ``concurrency`` slots, their memory from the machine's total and their GPUs
  (``CUDA_VISIBLE_DEVICES``) from ``gpu_ids`` while they run; the rest wait in the
  run table's queue (shared fairly between jobs, by priority; the detail says why,
  handle pid 0).
* One watcher thread waits on a pidfd per wrapper with epoll (no timer polls).
  When a wrapper ends its slot goes to the next queued subjob; the outcome comes
  from its exit status and status file (``runtime.outcome``). What it left behind
  is ended (TERM, grace, KILL) while it is ``Lingering``: FINISHED only once
  nothing is left (strict).
* The slot changes hands without the actor: each running subjob of ours gets a
  *follower*, the next queued subjob that fits its slot, whose wrapper is spawned
  ahead (``--after``, run state ``primed``) and waits on the running one's pidfd:
  it starts the moment that one ends, while the watcher is still reading the
  outcome. The watcher then reports the end, then the follower's start (the stream
  never shows more than ``concurrency`` running), and primes the next. The follower
  also waits on a pipe whose end the actor holds: written (a kill calls it off
  before it signals anything) or closed (the actor gone), a follower that has not
  started ends without running (the recovery finds it ``accepted`` only, and sends it
  again; one that started is found by its marker).

Ray must not kill the actor's children when it ends (``ray_runtime.RAY_SYSTEM_CONFIG``),
else subjobs die with their actor and are reported LOST on adoption.
"""

from __future__ import annotations

import dataclasses
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from typing import Any

from ganga_like.backends import base
from ganga_like.backends.base import Handle, KillResult, SubjobSpec, payload_environment
from ganga_like.backends.resources import (
    CUDA_VARIABLE,
    HELD_VARIABLE,
    Grant,
    Pool,
    gpu_visible,
    held_text,
    parse_held,
)
from ganga_like.backends.runtime import native, outcome, procs, trace
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime.actor import RuntimeActor
from ganga_like.backends.runtime.runs import LINGERING_DETAIL, RUNNING_DETAIL, Run
from ganga_like.ray_runtime import import_ray

BACKEND = "Local"
LINGER_RECHECK = 0.25  # seconds between checks of subjobs whose processes outlived the wrapper
LEFTOVER_GRACE = 2.0  # TERM to KILL, for what a payload left behind when its wrapper ended
SUBMIT_CHUNK = 64  # specs prepared on disk per step of submit()
NEVER_RAN = "its wrapper ended while it waited for its slot: it never ran"
# A wrapper starts with no signal blocked and with those CPython ignores (SIGPIPE,
# SIGXFSZ) at their defaults: an ignored signal stays ignored across exec, down to the
# payload (`yes | head -1` would end with an error instead of quietly).
CLEAN_SIGNALS: dict[str, Any] = {"setsigdef": (signal.SIGPIPE, signal.SIGXFSZ), "setsigmask": ()}

_EnvKey = tuple[dict[str, str] | None, dict[str, str]]  # a spec's (base_env, env)


@dataclasses.dataclass(eq=False)
class LocalRun(Run):
    popen: subprocess.Popen | None = None  # a script wrapper started with Popen
    child: bool = False  # our own child (we reap it); False for adopted wrappers
    pidfd: int = -1
    exited: bool = False  # the wrapper has ended
    exit_event: outcome.Outcome | None = None  # how it ended, worked out when it did
    leftovers: str = ""  # what ending the processes it left behind did
    kill_gave_up: bool = False  # kill() could not confirm: the lingering check reports its end
    follower: LocalRun | None = None  # primed to start in its slot the moment it ends
    call_off: int = -1  # a follower's pipe to its wrapper: closed, the wrapper ends unrun
    turn_came: bool = False  # a follower whose leader ended: its wrapper went on


class LocalActor(RuntimeActor):
    """Runs subjobs as local processes; implements :class:`base.BackendActor`.

    Args:
        concurrency: how many CPU slots subjobs may take at once (default:
            ``os.cpu_count()``); a subjob takes its request's ``cpus``.
        gpu_ids: the GPUs it hands out, each to one running subjob at a time (its
            ``CUDA_VISIBLE_DEVICES``); memory is reserved from the machine's total.
        wrapper: a wrapper *script* run with bash (default: the native wrapper, or
            ``wrapper.sh`` where no C compiler exists).
        bash: the bash that runs a script wrapper (default: found in PATH).
    """

    BACKEND = BACKEND

    def __init__(self, concurrency: int | None = None, wrapper: str | None = None,
                 bash: str | None = None, gpu_ids: tuple[int, ...] = ()) -> None:
        super().__init__(cap=max(1, int(concurrency or os.cpu_count() or 1)),
                         pool=Pool(gpu_ids, procs.machine_memory_mb()), cpu_slots=True,
                         limit="Local's concurrency limit")
        self._bash = bash or shutil.which("bash") or "/bin/bash"
        self._command = [self._bash, wrapper] if wrapper is not None else native.wrapper_command(self._bash)
        self._wrapper = self._command[-1]
        self._spawn_directly = len(self._command) == 1  # the native wrapper (see _launch)
        self._own_env = dict(os.environ)
        # (the base_env and env it was worked out for, the payload environment): _environment
        self._last_env: tuple[_EnvKey | None, dict[str, str]] = (None, {})
        self._watched: dict[int, LocalRun] = {}  # pidfd -> run
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)  # shared by every start
        self._std_actions = [(os.POSIX_SPAWN_DUP2, self._devnull, fd) for fd in (0, 1, 2)]
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._loop("local-watcher", self._watch_round, on_exit=self._close_fds)

    # ------------------------------------------------------------------ submitting

    def submit(self, specs: list[SubjobSpec]) -> list[Handle]:
        """Start up to the free slots now, queue the rest; one handle per spec, in order.

        Specs are prepared in chunks so the first subjobs run while later ones are
        still accepted; a queued subjob gets its directory when a slot frees, so a
        batch of 10,000 is accepted in milliseconds.
        """
        handles: list[Handle] = []
        runs: list[LocalRun | None] = []
        with self._cond:
            for spec in specs:
                handle = Handle(BACKEND, spec.fqid, host=self._host, workdir=spec.workdir,
                                attempt=spec.attempt)
                run = LocalRun(spec.fqid, spec.workdir, spec.marker, handle, spec=spec)
                refused = self._runs.add(run)
                handles.append(dataclasses.replace(handle, error=refused) if refused else handle)
                runs.append(None if refused else run)
        for first in range(0, len(runs), SUBMIT_CHUNK):
            with self._cond:
                now = [r for r in runs[first:first + SUBMIT_CHUNK]
                       if r is not None and self._runs.admit(r, "waiting for a free slot")]
                self._cond.notify_all()
            for run in now:
                self._start(run)
            self._fill_slots()  # slots freed meanwhile go to the queue now
        self._wake_loops()  # the watcher primes followers for what runs now
        with self._cond:
            return [run.handle if run is not None else handle
                    for run, handle in zip(runs, handles, strict=True)]

    def _fill_slots(self) -> None:
        while True:
            with self._cond:
                batch = self._runs.take_queued()
            if not batch:
                return
            for run in batch:
                self._start(run)  # type: ignore[arg-type]

    def _start(self, run: LocalRun) -> None:
        """Prepare (output/ and the first status line), then launch; a subjob that
        cannot be prepared or started is a submission failure (LOST, error handle)."""
        try:
            outcome.prepare(run.workdir, sf.StatusInfo(sf.CREATED, "starting", time.time()).line())
        except OSError as error:
            return self._not_started(run, f"cannot prepare {run.workdir}: {error.strerror or error}")
        spec = run.spec
        assert spec is not None
        grant = run.grant or Grant()
        env = self._launch_environment(run, grant)
        argv = [*self._command, spec.workdir, spec.exe, *spec.args]
        popen = None
        before = procs.boot_clock_ns()
        try:
            if self._spawn_directly:
                # The native wrapper closes inherited descriptors and enters its output
                # directory itself: posix_spawn (a vfork, no Python in the child) is
                # enough, a third of Popen's cost per subjob.
                pid = os.posix_spawn(argv[0], argv, env, setsid=True, file_actions=self._std_actions,
                                     **CLEAN_SIGNALS)
            else:
                popen = subprocess.Popen(argv, env=env, cwd=spec.workdir, stdin=self._devnull,
                                         stdout=self._devnull, stderr=self._devnull, close_fds=True,
                                         start_new_session=True)
                pid = popen.pid
            after = procs.boot_clock_ns()
        except (OSError, ValueError) as error:  # ValueError: a NUL in an argument or variable
            reason = f"cannot start the wrapper {self._wrapper}: {error}"
            sf.append_quietly(run.status_path, sf.WRAPPER_ERROR, f"exit=126 {reason}")
            return self._not_started(run, reason)
        # Our child is not reaped before we waitpid it: its pid and start time are stable.
        pidfd = os.pidfd_open(pid)
        # What it holds goes with its handle (stored with the subjob): an actor that
        # adopts it after a restart holds the same again.
        handle = self._handle(run, pid, procs.spawned_start_time(pid, before, after), grant)
        with self._cond:
            run.popen, run.child, run.pidfd = popen, True, pidfd
            self._watched[pidfd] = run
            self._epoll.register(pidfd, select.EPOLLIN)
            self._started(run, handle)
            self._cond.notify_all()

    def _launch_environment(self, run: LocalRun, grant: Grant) -> dict[str, str]:
        """The wrapper's environment: the payload's, its marker, its GPUs and what it holds."""
        spec = run.spec
        assert spec is not None
        env = self._environment(spec)
        env[procs.MARKER_VAR] = spec.marker
        env[CUDA_VARIABLE] = gpu_visible(grant.gpu_ids)  # its own GPUs; none: empty, so no GPU
        # Read back on adoption when the service died before its STARTED handle was stored.
        env[HELD_VARIABLE] = held_text(run.slots, grant)
        return env

    def _handle(self, run: LocalRun, pid: int, created: float | None, grant: Grant) -> Handle:
        """The handle of a wrapper just spawned (what it holds goes with it: an actor that
        adopts it after a restart holds the same again)."""
        assert run.spec is not None
        return Handle(BACKEND, run.fqid, self._host, pid, created or 0.0, "", run.workdir,
                      attempt=run.spec.attempt, cpus=run.slots, memory_mb=grant.memory_mb,
                      gpu_ids=grant.gpu_ids)

    # ------------------------------------------------------------------ followers

    def _prime_followers(self) -> None:
        """(watcher thread: the leaders' pidfds are closed only here) Give each running
        subjob of ours that has none a follower, while the queue has one that fits."""
        if not self._spawn_directly:
            return  # the bash wrapper cannot wait on a pidfd
        while True:
            with self._cond:
                if not self._runs.count(rs.QUEUED):
                    return
                leader = next((r for r in self._watched.values()
                               if r.state == rs.RUNNING and r.child and r.follower is None
                               and not r.killing and not r.exited), None)
                if leader is None:
                    return
                follower = self._runs.take_follower(leader)
                if follower is None:
                    return
                assert isinstance(follower, LocalRun)
                leader.follower = follower
            if not self._prime(leader, follower):
                return  # back at the head of the queue: its normal start reports why

    def _prime(self, leader: LocalRun, run: LocalRun) -> bool:
        """Spawn ``run``'s wrapper to wait for ``leader``'s end (module docstring)."""
        spec = run.spec
        assert spec is not None
        call_off_r = call_off_w = -1
        pid = 0
        try:
            outcome.prepare(run.workdir, sf.StatusInfo(sf.CREATED, "starting", time.time()).line())
            grant = Grant()  # a follower asks nothing of the pool (RunTable.take_follower)
            env = self._launch_environment(run, grant)
            call_off_r, call_off_w = os.pipe2(os.O_CLOEXEC)
            actions = [*self._std_actions, (os.POSIX_SPAWN_DUP2, leader.pidfd, 3),
                       (os.POSIX_SPAWN_DUP2, call_off_r, 4)]
            before = procs.boot_clock_ns()
            pid = os.posix_spawn(self._command[0], [self._command[0], "--after", spec.workdir,
                                                    spec.exe, *spec.args],
                                 env, setsid=True, file_actions=actions, **CLEAN_SIGNALS)
            after = procs.boot_clock_ns()
            pidfd = os.pidfd_open(pid)
        except (OSError, ValueError):
            for fd in (call_off_r, call_off_w):
                if fd >= 0:
                    os.close(fd)
            if pid:  # spawned, then no pidfd: called off above, it ends at once
                os.waitpid(pid, 0)
            with self._cond:
                leader.follower = None
                self._runs.move(run, rs.QUEUED, "its wrapper could not be spawned", first=True)
                self._cond.notify_all()
            return False
        os.close(call_off_r)
        handle = self._handle(run, pid, procs.spawned_start_time(pid, before, after), grant)
        with self._cond:
            run.handle, run.child, run.pidfd, run.call_off = handle, True, pidfd, call_off_w
            self._watched[pidfd] = run
            self._epoll.register(pidfd, select.EPOLLIN)
            self._runs.move(run, rs.PRIMED, f"its wrapper waits for {leader.fqid} to end")
            self._cond.notify_all()
        return True

    def _call_off(self, runs: list[LocalRun]) -> None:
        """Before a kill signals anything: the followers among ``runs`` whose turn has not
        come end without running, as queued work killed never starts (their wrappers
        read the call-off before their leader's end, which the kill may bring).

        A follower still PRIMED here may be past its wait: its leader ended and it
        started, but the watcher has not seen the end yet. Its wrapper closed the pipe,
        so the write fails; the kill then signals it, as it signals any running wrapper."""
        with self._cond:
            for run in runs:
                if run.state == rs.PRIMED and run.call_off >= 0:
                    try:
                        os.write(run.call_off, b"k")
                    except BrokenPipeError:
                        pass

    def _hand_over(self, leader: LocalRun) -> None:
        """(cond held) ``leader``'s wrapper ended, after its own event: its follower
        started in its slot, unless a kill has it."""
        follower, leader.follower = leader.follower, None
        if follower is not None and follower.state == rs.PRIMED and not follower.killing:
            self._started(follower, follower.handle)

    def _environment(self, spec: SubjobSpec) -> dict[str, str]:
        """A copy of ``payload_environment(spec)``, worked out once for the subjobs of a
        batch (they share one ``base_env`` and mostly the same ``env``)."""
        key = (spec.base_env, spec.env)
        known, env = self._last_env
        if known is None or known != key:  # compared by value: a dict changed in place is seen
            env = payload_environment(spec, self._own_env)
            self._last_env = ((dict(spec.base_env) if spec.base_env is not None else None,
                               dict(spec.env)), env)
        return dict(env)

    def _not_started(self, run: LocalRun, reason: str) -> None:
        with self._cond:
            run.handle = dataclasses.replace(run.handle, error=reason)
            self._runs.finish(run, base.LOST, note=reason)
            self._cond.notify_all()

    # ------------------------------------------------------------------ watching

    def _watch_round(self) -> None:
        try:
            ready = self._epoll.poll(LINGER_RECHECK if self._runs.count(rs.LINGERING) else -1)
        except InterruptedError:
            return
        ended: list[LocalRun] = []
        with self._cond:
            for fd, _mask in ready:
                run = self._watched.pop(fd, None)
                if run is not None:
                    self._epoll.unregister(fd)
                    ended.append(run)
        if any(fd == self._wake_r for fd, _ in ready):
            _drain(self._wake_r)
        if ended:
            try:
                self._on_ended(ended)
            except Exception as error:  # one bad run must not leave the others unreported
                with self._cond:
                    for run in ended:
                        self._runs.finish(run, base.LOST, note=f"actor error while reaping: {error!r}")
                    self._cond.notify_all()
                raise
        if self._runs.count(rs.LINGERING):
            self._check_lingering()
        self._prime_followers()

    def _on_ended(self, ended: list[LocalRun]) -> None:
        # Leaders first: a follower whose leader ended in the same round has started.
        ended.sort(key=lambda run: run.state == rs.PRIMED)
        found: list[tuple[LocalRun, outcome.Outcome, bool]] = []
        for run in ended:
            os.close(run.pidfd)
            run.pidfd = -1
            with self._cond:  # (kill writes to it under the lock: never to a closed descriptor)
                if run.call_off >= 0:
                    os.close(run.call_off)  # its wait is over, either way
                    run.call_off = -1
            if run.follower is not None:
                run.follower.turn_came = True
            if run.state == rs.PRIMED and not run.turn_came:
                _reap(run)  # (our child: never left a zombie)
                found.append((run, (base.KILLED if run.killing else base.LOST, None, NEVER_RAN), False))
                continue
            own = trace.read_own(run.workdir)  # once, for its outcome and its tidying
            event = outcome.outcome_in(run.workdir, _reap(run), own)
            # The native wrapper ends every descendant itself (it is their subreaper);
            # the bash wrapper cannot: look for what left its group by the marker.
            lingers = procs.group_may_live(run.handle.pid, run.handle.create_time) or (
                not self._spawn_directly and _marked_alive(run.marker))
            if not lingers and not run.killing:
                # Before its final event: until then its fqid is taken in the run table,
                # so no resubmission of it can be preparing the same directory.
                outcome.tidy_after(run.fqid, run.workdir, event, own=own)
            found.append((run, event, lingers))
        # Final events go out before the freed slots are reused: the stream never
        # shows more than `concurrency` subjobs running.
        with self._cond:
            for run, event, lingers in found:
                run.exited, run.exit_event = True, event
                if run.state == rs.PRIMED:  # ended before its turn: never ran
                    if not run.killing:  # else kill() reports it
                        self._runs.finish(run, *event)
                    continue
                if lingers or run.killing:
                    self._runs.move(run, rs.LINGERING, "its wrapper ended")
                    if not run.killing:  # else kill() reports it
                        self._runs.tell(run, base.DETAIL, LINGERING_DETAIL,
                                        "the wrapper ended but processes of its group still run: ending them")
                        self._end_leftovers_later(run)
                else:
                    self._runs.finish(run, *event)
                self._hand_over(run)
            self._cond.notify_all()
        self._fill_slots()

    def _end_leftovers_later(self, run: LocalRun) -> None:
        threading.Thread(target=self._end_leftovers, args=(run,), name="ganga_like-leftovers",
                         daemon=True).start()

    def _end_leftovers(self, run: LocalRun) -> None:
        try:
            (ended,) = procs.kill_trees(
                [procs.Target(run.handle.pid, run.handle.create_time, run.marker or None)], LEFTOVER_GRACE)
            run.leftovers = (f"{ended.killed} leftover process(es) ended" if ended.confirmed
                             else f"leftover processes could not all be ended: {ended.note}")
        except Exception as error:  # the lingering check still waits for the group to go
            run.leftovers = f"ending leftover processes failed: {error!r}"
        self._wake_loops()

    def _check_lingering(self) -> None:
        with self._cond:
            lingering = [r for r in self._runs if isinstance(r, LocalRun) and r.state == rs.LINGERING]
        # Done once what it left behind was ended (or, under a kill, once its group is
        # empty): not merely when its group empties, as a leftover may have left it.
        gone = [r for r in lingering if (r.leftovers if not r.killing else r.kill_gave_up and
                                         not procs.group_may_live(r.handle.pid, r.handle.create_time))]
        if not gone:
            return
        with self._cond:
            for run in gone:
                if run.killing:
                    self._runs.finish(run, base.KILLED, note="killed: every process has ended")
                    continue
                kind, code, note = run.exit_event or (base.LOST, None, "ended without an exit status")
                self._runs.finish(run, kind, code, f"{note}; {run.leftovers}")
            self._cond.notify_all()
        self._fill_slots()  # their GPUs and memory are free only now

    def _after_kill(self) -> None:
        self._fill_slots()  # a killed run gives its GPUs and memory back only once it is done
        self._wake_loops()  # followers for what started

    def _wake_loops(self) -> None:
        with self._cond:  # never a write to a closed (or reused) descriptor
            if self._wake_w >= 0:
                try:
                    os.write(self._wake_w, b"x")
                except BlockingIOError:
                    pass  # the pipe is full: the watcher is awake anyway

    def _close_fds(self) -> None:
        with self._cond:
            # Followers not started end without running (the actor that adopts the work
            # sends them again); those started are found by their marker.
            calls_off = [run.call_off for run in self._watched.values() if run.call_off >= 0]
            for fd in [*calls_off, *self._watched, self._wake_r, self._wake_w, self._devnull]:
                os.close(fd)
            self._watched.clear()
            self._wake_w = -1
        self._epoll.close()

    # ------------------------------------------------------------------ killing

    def _kill_work(self, work: list[tuple[Handle, Run | None]], grace: float) -> list[KillResult]:
        """TERM, grace, KILL every tree together; confirm with psutil."""
        results: list[KillResult | None] = [None] * len(work)
        targets: list[tuple[int, procs.Target]] = []
        for index, (handle, run) in enumerate(work):
            if run is not None and run.handle.pid:
                targets.append((index, procs.Target(run.handle.pid, run.handle.create_time, run.marker)))
            elif run is None and handle.pid:
                targets.append((index, procs.Target(handle.pid, handle.create_time,
                                                    outcome.marker_of(handle.workdir))))
            elif run is None:
                results[index] = KillResult(handle.fqid, True, "nothing to kill: never started")
            else:
                results[index] = KillResult(handle.fqid, False, f"still {run.state} after the wait")
        self._call_off([run for _, run in work if isinstance(run, LocalRun)])
        ended = procs.kill_trees([t for _, t in targets], grace) if targets else []
        for (index, _target), done in zip(targets, ended, strict=True):
            handle, run = work[index]
            results[index] = KillResult(handle.fqid, done.confirmed, done.note)
            if not done.confirmed:
                if isinstance(run, LocalRun):
                    run.kill_gave_up = True  # the lingering check reports it once it is gone
                continue
            if run is None:
                if done.killed:
                    self._killed(None, handle, done.note)
                continue
            assert isinstance(run, LocalRun)
            own: LocalRun = run

            def exited(own: LocalRun = own) -> bool:  # bound now (it is waited for at once)
                return own.exited

            with self._cond:  # our own wrapper: the watcher sees it end in a moment
                self._cond.wait_for(exited, timeout=2.0)
                if own.state != rs.DONE and done.killed == 0 and own.exit_event is not None \
                        and own.exit_event[0] != base.KILLED:  # (a follower called off: killed)
                    self._runs.finish(own, *own.exit_event)  # it had ended on its own
                    self._cond.notify_all()
                    continue
            self._killed(run, handle, done.note)
        return [r if r is not None else KillResult(h.fqid, False, "not handled")
                for r, (h, _) in zip(results, work, strict=True)]

    # ------------------------------------------------------------------ adopting

    def _adopt_elsewhere(self, handle: Handle) -> tuple[str, int | None, str, str, Handle]:
        found = outcome.find_again(handle)
        now = (dataclasses.replace(handle, pid=found.pid, create_time=found.create_time) if found.pid
               else handle)
        if found.pid and not handle.pid:
            now = _with_held(now)  # its STARTED handle was never stored: what it holds is in its env
        if found.alive and self._watch_foreign(now, found.marker):
            return base.STARTED, None, "adopted: still running", RUNNING_DETAIL, now
        if found.pid and procs.group_may_live(found.pid, found.create_time):
            run = LocalRun(now.fqid, now.workdir, found.marker or "", now, exited=True,
                           exit_event=outcome.outcome_of(found.last, None))
            with self._cond:
                self._runs.add(run)
                self._runs.move(run, rs.LINGERING, "adopted: processes of its group still run")
            self._end_leftovers_later(run)
            return base.DETAIL, None, "adopted: processes of its group still run", LINGERING_DETAIL, now
        kind, code, note = outcome.outcome_in(handle.workdir)
        ran = outcome.wrapper_ran(outcome.history(handle.workdir)) if not now.pid else None
        if ran is not None:  # over before anyone recorded its start: named by its wrapper, as it ran
            now = dataclasses.replace(now, pid=ran[0], create_time=ran[1])
        return kind, code, note, "", now

    def _watch_foreign(self, handle: Handle, marker: str | None) -> bool:
        try:
            pidfd = os.pidfd_open(handle.pid)
        except ProcessLookupError:
            return False
        if not procs.is_alive(handle.pid, handle.create_time):  # pinned now: is it still ours?
            os.close(pidfd)
            return False
        run = LocalRun(handle.fqid, handle.workdir, marker or "", dataclasses.replace(
            handle, host=handle.host or self._host), pidfd=pidfd)
        with self._cond:
            self._runs.add(run)
            self._runs.move(run, rs.RUNNING, "adopted: its wrapper still runs")  # it takes a slot
            self._watched[pidfd] = run
            self._epoll.register(pidfd, select.EPOLLIN)
        return True

    def _ping_extra(self) -> dict[str, Any]:
        pool = self._runs.pool
        assert pool is not None
        return {"concurrency": self._runs.cap, "wrapper": self._wrapper,
                "followers": self._runs.count(rs.PRIMED), "gpu_ids": list(pool.gpus.ids),
                "gpus_free": pool.gpus.free, "memory_mb": pool.memory_mb,
                "memory_reserved_mb": pool.reserved_mb}


def _with_held(handle: Handle) -> Handle:
    """``handle`` with what its wrapper's environment says the run holds."""
    text = procs.read_variable(handle.pid, f"{HELD_VARIABLE}=".encode())
    held = parse_held(text) if text is not None else None
    if held is None:
        return handle
    cpus, grant = held
    return dataclasses.replace(handle, cpus=cpus, memory_mb=grant.memory_mb, gpu_ids=grant.gpu_ids)


def _marked_alive(marker: str) -> bool:
    return bool(marker) and any(found == marker for _pid, _created, found in procs.find_by_marker(marker))


def _reap(run: LocalRun) -> int | None:
    """Reap our own ended wrapper: its return code (negative: killed by that signal)."""
    if run.popen is not None:
        return run.popen.poll()
    if not run.child:
        return None  # adopted: init reaps it; its exit status is in the status file
    try:
        pid, wait_status = os.waitpid(run.handle.pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(wait_status) if pid else None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def start_local_actor(name: str | None = None, max_concurrency_slots: int = 32, *,
                      concurrency: int | None = None, wrapper: str | None = None,
                      gpu_ids: tuple[int, ...] = (), namespace: str | None = None,
                      lifetime: str | None = None, get_if_exists: bool = False, **actor_options: Any) -> Any:
    """Create a threaded Ray actor running :class:`LocalActor`; return its handle.

    ``max_concurrency_slots``: method calls that run at once in the actor (a long
    poll must not block ``submit`` or ``kill``); ``concurrency``: subjobs that run
    at once. The actor asks for no CPU: its subjobs are not Ray tasks.
    """
    ray = import_ray()
    options = base.actor_options(max_concurrency_slots, name, namespace, lifetime, get_if_exists,
                                 **actor_options)
    return ray.remote(LocalActor).options(**options).remote(concurrency=concurrency, wrapper=wrapper,
                                                                 gpu_ids=gpu_ids)
