"""The Slurm backend's driver: a batch of subjobs goes to Slurm as job arrays.

The contract's mechanics are ``backends/runtime``'s; this file hands runs to Slurm
and learns from Slurm how they are:

* **submit**: the runs are prepared (output/, the status file's first line), grouped
  into arrays (``script.plan``: one per master and requests) and each array is one
  ``sbatch``; a run is ``pending`` (detail ``Queued``) once Slurm took it, and its
  handle's ``task_id`` is Slurm's ``<array id>_<task id>``. An array Slurm refuses
  fails its runs with sbatch's one line (the subjobs go back to ``new``).
* **monitoring**: one thread asks Slurm once per round about every task
  (``squeue``, and ``sacct`` only for tasks that left squeue), reads the status files
  of the tasks that started or ended, and reports through the one state table
  (``states``): DETAIL ``Slurm PENDING (Reason)`` while a task waits, STARTED once the
  wrapper runs (the wrapper's pid from its RUNNING line), the final event once Slurm
  says the task ended, with the exit status the wrapper recorded.
* **kill**: ``scancel`` (Slurm drops what waits and TERMs what runs), KILL to every
  process of what still runs after the grace period; confirmed once Slurm no longer
  runs them and no process with their marker is left on this machine.
* **adopt**, **held**, **find**: by the handles' Slurm ids and the arrays' job names,
  from one ``squeue``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import NamedTuple

from ganga_like.backends import base
from ganga_like.backends.base import Handle, KillResult, SubjobSpec
from ganga_like.backends.resources import Capacity, Request, refusal, refusal_anywhere
from ganga_like.backends.runtime import native, outcome, procs
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime.actor import RuntimeActor
from ganga_like.backends.runtime.runs import QUEUED_DETAIL, Run
from ganga_like.backends.slurm import script, states
from ganga_like.backends.slurm.commands import Accounted, SlurmCommandError, SlurmCommands, Task
from ganga_like.ray_runtime import import_ray

BACKEND = "Slurm"
POLL_INTERVAL = 0.5  # seconds between rounds after a change (a submit, an adopt, news)
POLL_INTERVAL_MAX = 5.0  # rounds back off to this while nothing changes: a site's slurmctld
# answers every user's squeue, and a long job need not be asked about twice a second
KILL_CONFIRM = 30.0  # seconds kill() waits for Slurm to end tasks after its SIGKILL
KILL_RECHECK = 0.1  # seconds between squeue calls while a kill waits


@dataclasses.dataclass(eq=False)
class SlurmRun(Run):
    slurm_id: str = ""  # "<array job id>_<task id>"
    raw_id: str = ""  # the task's own job id, once Slurm gave it one (for sacct)


class News(NamedTuple):
    """What one round learnt about one run (worked out without the lock)."""

    order: int  # at equal times: finals, then starts, then details
    kind: str  # base.STARTED, base.DETAIL, or a final kind
    code: int | None = None
    note: str = ""
    detail: str = ""  # Slurm's state (and reason): a final one too, ``Slurm TIMEOUT``
    handle: Handle | None = None
    when: float = math.inf  # when it happened, by the status file (details: after the rest)
    started: float = 0.0  # a final's run that started since the last round: its RUNNING line's time


FINAL_ORDER, START_ORDER, DETAIL_ORDER = 0, 1, 2


def in_time_order(news: list[tuple[SlurmRun, News]]) -> list[tuple[SlurmRun, News]]:
    """One round's news as it happened, by the wrapper's own time stamps: a run that
    started and ended between two rounds gives its start and its end at their times, so
    the stream shows the tasks that ran side by side as Slurm ran them (never more than
    the array's limit), whatever the length of a round."""
    steps: list[tuple[float, int, SlurmRun, News]] = []
    for run, found in news:
        if found.order == FINAL_ORDER and found.handle is not None:  # ran and ended meanwhile
            start = found.started or found.when
            steps.append((start, START_ORDER, run, News(START_ORDER, base.STARTED, handle=found.handle,
                                                        note=f"as Slurm job {run.slurm_id}")))
            found = found._replace(handle=None, when=max(found.when, start))
        steps.append((found.when, found.order, run, found))
    return [(run, found) for _when, _order, run, found in sorted(steps, key=lambda s: (s[0], s[1]))]


class SlurmActor(RuntimeActor):
    """Runs subjobs as tasks of Slurm job arrays; implements :class:`base.BackendActor`.

    Args:
        conf: the slurm.conf of the cluster ('' for the machine's own).
        max_running: how many tasks of an array run at once when the spec names no limit.
    """

    BACKEND = BACKEND

    def __init__(self, conf: str = "", max_running: int | None = None) -> None:
        super().__init__(cap=None)  # Slurm queues; the actor holds no queue of its own
        self._slurm = SlurmCommands(conf)
        self._wrapper = native.wrapper_command()
        self._own_env = dict(os.environ)
        self._max_running = max_running
        self._rounds = 0
        self._monitor_commands = 0  # Slurm commands the monitoring rounds ran
        self._interval = POLL_INTERVAL
        self._poked = False  # something to watch came in: the next round starts now
        self._round_commands = 0
        self._adopt_view: dict[str, Task] = {}
        self._last_array: dict[str, str] = {}  # a master's folder -> its last array sbatch took
        self._loop("slurm-monitor", self._monitor_round)

    # ------------------------------------------------------------------ submitting

    def submit(self, specs: list[SubjobSpec]) -> list[Handle]:
        """sbatch the specs as arrays; one handle per spec, ``task_id`` Slurm's id."""
        handles: list[Handle] = []
        accepted: dict[str, SlurmRun] = {}
        line = sf.StatusInfo(sf.QUEUED, "accepted by the Slurm backend", time.time()).line()
        never = self._never_fits(specs)
        for spec in specs:
            handle = Handle(BACKEND, spec.fqid, workdir=spec.workdir, attempt=spec.attempt)
            run = SlurmRun(spec.fqid, spec.workdir, spec.marker, handle, spec=spec)
            refused = never.get(spec.fqid) or self._accept(run, line)
            handles.append(dataclasses.replace(handle, error=refused) if refused else handle)
            if not refused:
                accepted[spec.fqid] = run
        with self._cond:
            for run in accepted.values():
                self._runs.move(run, rs.STARTING, "being handed to sbatch")
        for array in script.plan([run.spec for run in accepted.values() if run.spec is not None],
                                 self._slurm.limits()):
            job_id = self._submit_array(array, [accepted[spec.fqid] for spec in array.specs],
                                        self._chain_after(array))
            if job_id:
                self._last_array[array.folder] = job_id
        with self._cond:
            return [accepted[h.fqid].handle if h.fqid in accepted else h for h in handles]

    def _never_fits(self, specs: list[SubjobSpec]) -> dict[str, str]:
        """fqid -> why no node of its partition could ever hold its request, for the specs
        that ask for more than one CPU (one sinfo per partition; none if Slurm cannot say:
        sbatch then refuses)."""
        nodes: dict[str, list[Capacity]] = {}
        found = {}
        for spec in specs:
            if spec.request == Request():
                continue
            partition = str(spec.options.get("partition") or "")
            if partition not in nodes:
                try:
                    nodes[partition] = self._slurm.capacities(partition)
                except SlurmCommandError:
                    nodes[partition] = []
            capacities = nodes[partition]
            why = (refusal(spec.request, capacities[0]) if len(capacities) == 1
                   else refusal_anywhere(spec.request, capacities) if capacities else "")
            if why:
                found[spec.fqid] = why
        return found

    def _chain_after(self, array: script.Array) -> str:
        """The array this one must start after ('' for none). Slurm's ``%N`` holds per
        array: where the master's tasks are limited and its tasks still open here with
        this array's could pass N, this one waits for the master's last array (while it is
        open: one that ended need not be waited for, one Slurm forgot cannot be). The
        engine sends a large master in several submit() calls: they chain too."""
        limit = array.specs[0].options.get("max_running") or self._max_running
        job_id = self._last_array.get(array.folder, "")
        if not limit or not job_id:
            return ""
        with self._cond:
            open_ = [run for run in self._runs if isinstance(run, SlurmRun) and run.slurm_id
                     and os.path.dirname(run.workdir.rstrip("/")) == array.folder]
            last_open = any(run.slurm_id.startswith(job_id + "_") for run in open_)
        return job_id if last_open and len(open_) + len(array.specs) > int(str(limit)) else ""

    def _submit_array(self, array: script.Array, runs: list[SlurmRun], after: str) -> str:
        """sbatch one array (after the array ``after`` of the same master, if its tasks
        are limited: see ``script.sbatch_options``); Slurm's job id, '' if refused."""
        for run in runs:
            if run.spec is not None and run.spec.attempt > 1:
                _fresh_slurm_out(run.workdir)
        try:
            path = script.write(array, self._wrapper)
            job_id = self._slurm.submit(script.sbatch_options(array, self._max_running, after), path,
                                        script.submit_environment(array.specs[0], self._own_env))
        except (SlurmCommandError, OSError) as error:
            self._not_taken(runs, f"Slurm did not take it: {error}")
            return ""
        with self._cond:
            for run, index in zip(runs, array.indices, strict=True):
                run.slurm_id = f"{job_id}_{index}"
                run.handle = dataclasses.replace(run.handle, task_id=run.slurm_id)
                self._runs.move(run, rs.PENDING, "handed to Slurm")
                self._runs.tell(run, base.QUEUED, QUEUED_DETAIL,
                                f"in Slurm's queue as job {run.slurm_id}")
            self._poked = True
            self._cond.notify_all()
        return job_id

    def _not_taken(self, runs: list[SlurmRun], reason: str) -> None:
        """An array Slurm did not (or would not) take: each of its runs fails with the reason."""
        for run in runs:
            sf.append_quietly(run.status_path, sf.WRAPPER_ERROR, f"exit=126 {reason}")
        with self._cond:
            for run in runs:
                run.handle = dataclasses.replace(run.handle, error=reason)
                self._runs.finish(run, base.LOST, note=reason)
            self._cond.notify_all()

    # ------------------------------------------------------------------ monitoring

    def _monitor_round(self) -> None:
        with self._cond:
            watched = [r for r in self._runs if isinstance(r, SlurmRun) and r.slurm_id and not r.killing
                       and r.state in (rs.PENDING, rs.RUNNING)]
            if not watched:
                self._poked = False
                self._cond.wait_for(lambda: self._closed or self._poked, POLL_INTERVAL_MAX)
                return
        view = self._slurm.queue()
        gone = [r.raw_id for r in watched if r.slurm_id not in view and r.raw_id]
        accounted = self._slurm.accounting(gone) if gone else {}
        news = [(run, self._news(run, view.get(run.slurm_id), accounted)) for run in watched]
        with self._cond:
            self._rounds += 1
            self._round_commands = 1 + bool(gone)
            self._monitor_commands += self._round_commands
            seq = self._stream.seq
            for run, found in in_time_order(news):
                self._apply(run, found)
            quiet = self._stream.seq == seq and not self._poked
            self._interval = min(POLL_INTERVAL_MAX, self._interval * 1.5) if quiet else POLL_INTERVAL
            self._poked = False
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._closed or self._poked, self._interval)

    def _news(self, run: SlurmRun, task: Task | None,
              accounted: dict[str, Accounted]) -> News:
        if task is not None and task.raw_id and task.state != "PENDING":
            # Its own job id, once it has one (a waiting task shows its array's): for sacct,
            # once squeue forgets it.
            run.raw_id = task.raw_id
        if task is not None and task.state not in states.FINAL:
            if run.state == rs.PENDING and states.STATES.get(task.state, states.STATES["PENDING"]).status \
                    is states.S.RUNNING:
                started = self._wrapper_started(run, task.node)
                if started is not None:
                    return News(START_ORDER, base.STARTED, handle=started[0], when=started[1],
                                note=f"on {task.node} as Slurm job {run.slurm_id}")
            if run.state == rs.RUNNING and task.state == "RUNNING":
                return News(DETAIL_ORDER, "")
            return News(DETAIL_ORDER, base.DETAIL, detail=states.detail(task.state, task.reason),
                        note=states.explain(task.state, task.reason))
        said = task.state if task is not None else getattr(accounted.get(run.raw_id), "state", "")
        last = sf.last_status(run.status_path)
        kind, code, note = states.final_event(run.slurm_id, said, last, slurm_wrote(run.workdir))
        started = self._wrapper_started(run, task.node if task is not None else "") \
            if run.state == rs.PENDING else None
        ended = last.when if last is not None and last.terminal else time.time()
        return News(FINAL_ORDER, kind, code, note, _final_detail(said, task), when=ended,
                    handle=started[0] if started else None, started=started[1] if started else 0.0)

    def _wrapper_started(self, run: SlurmRun, node: str) -> tuple[Handle, float] | None:
        """The run's handle once its wrapper has written RUNNING, and that line's time;
        else None. The handle's ``create_time`` is the wrapper's start (its RUNNING line's
        time where the process is not on this machine, or has ended). Runs are put in
        order by the line's time, never by ``create_time``: the line is stamped with the
        same clock as the end lines, while a process's start time is counted from the boot
        time, which Linux gives in whole seconds (measured: up to a second early), and
        would put a task's start before the end of the one Slurm waited for."""
        ran = outcome.wrapper_ran(outcome.history(run.workdir))
        if ran is None:
            return None
        wrapper, written = ran
        created = procs.create_time(wrapper) or 0.0
        if created and procs.read_marker(wrapper) != run.marker:
            created = 0.0  # another machine's pid (the node is not this one)
        return dataclasses.replace(run.handle, pid=wrapper, create_time=created or written,
                                   host=node or run.handle.host), written

    def _apply(self, run: SlurmRun, news: News) -> None:
        """(cond held) One run's news of this round, unless a kill took the run meanwhile."""
        if run.killing or run.state == rs.DONE or not news.kind:
            return
        if news.kind == base.STARTED and news.handle is not None:
            self._started(run, news.handle, news.note)
        elif news.kind == base.DETAIL:
            self._runs.tell(run, base.DETAIL, news.detail, news.note)
        elif news.order == FINAL_ORDER:
            if news.kind == base.LOST:
                outcome.lost_line(run.workdir, news.note)
            self._runs.finish(run, news.kind, news.code, news.note, news.detail)

    # ------------------------------------------------------------------ killing

    def _kill_work(self, work: list[tuple[Handle, Run | None]], grace: float) -> list[KillResult]:
        """scancel what waits, TERM what runs, KILL after ``grace``; confirm with squeue
        and, on this machine, by the processes' markers. A Slurm that does not answer
        confirms nothing: the runs are watched again."""
        try:
            return self._cancel_in_slurm(work, grace)
        except SlurmCommandError as error:
            with self._cond:
                for _handle, run in work:
                    if run is not None:
                        run.killing = False
                self._poked = True
                self._cond.notify_all()
            return [KillResult(handle.fqid, False, f"not confirmed: {error}") for handle, _run in work]

    def _cancel_in_slurm(self, work: list[tuple[Handle, Run | None]], grace: float) -> list[KillResult]:
        ids = [_slurm_id(handle, run) for handle, run in work]
        view = self._slurm.queue()
        active = [i for i in ids if i and i in view and view[i].state in states.ACTIVE]
        # scancel: Slurm records the task CANCELLED (a later service reads the kill there)
        # and TERMs its processes; KILL follows after our grace, not only Slurm's KillWait.
        self._slurm.cancel(active)
        left = self._wait_gone(active, grace)
        if left:
            # What runs here is KILLed by us first, parents before children: Slurm's
            # process tracking signals one process at a time, in its own order, so a
            # shell that ignores TERM could run on for a moment after its child died.
            _sweep([_marker(handle, run) for (handle, run), slurm_id in zip(work, ids, strict=True)
                    if slurm_id in left], grace=0.0)
            self._slurm.signal(left, "KILL")
            left = self._wait_gone(left, KILL_CONFIRM)
        swept = _sweep([_marker(handle, run) for handle, run in work])
        return [self._kill_result(handle, run, slurm_id, slurm_id in left, swept.get(index))
                for index, ((handle, run), slurm_id) in enumerate(zip(work, ids, strict=True))]

    def _wait_gone(self, ids: list[str], timeout: float) -> list[str]:
        """Wait until Slurm runs none of ``ids`` (or ``timeout``); those it still runs."""
        deadline = time.monotonic() + timeout
        while True:
            view = self._slurm.queue()
            left = [i for i in ids if i in view and view[i].state in states.ACTIVE]
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(KILL_RECHECK)

    def _kill_result(self, handle: Handle, run: Run | None, slurm_id: str, in_slurm: bool,
                     swept: procs.KillOutcome | None) -> KillResult:
        ended = f"; what it left on this machine: {swept.note}" if swept is not None else ""
        if in_slurm or (swept is not None and not swept.confirmed):
            if run is not None:
                with self._cond:
                    run.killing = False  # the monitor watches it again and reports its end
                    self._poked = True
                    self._cond.notify_all()
            still = f"Slurm job {slurm_id} still runs after scancel" if in_slurm else "processes still alive"
            return KillResult(handle.fqid, False, f"{still}{ended}")
        note = (f"cancelled in Slurm (job {slurm_id}){ended}" if slurm_id
                else "nothing to kill: it was never handed to Slurm")
        if run is not None or slurm_id:
            self._killed(run, handle, note)
        return KillResult(handle.fqid, True, note)

    # ------------------------------------------------------------------ after a restart

    def adopt(self, handles: list[Handle]) -> list[base.Event]:
        """One squeue for every handle, then the runtime's adopt (see ``_adopt_elsewhere``)."""
        self._adopt_view = self._slurm.queue() if handles else {}
        try:
            return super().adopt(handles)
        finally:
            self._adopt_view = {}

    def _task_of(self, handle: Handle) -> str:
        """The handle's Slurm id; for a handle that has none (recovery found the run in its
        status file, ended), the newest task of this subjob Slurm still remembers."""
        if handle.task_id:
            return handle.task_id
        marker = outcome.marker_of(handle.workdir) if handle.workdir else None
        mine = [task_id for task_id, task in self._adopt_view.items()
                if marker and script.marker_of(task.name, task_id.partition("_")[2]) == marker]
        return max(mine, key=lambda t: int(t.partition("_")[0])) if mine else ""

    def _adopt_elsewhere(self, handle: Handle) -> tuple[str, int | None, str, str, Handle]:
        handle = dataclasses.replace(handle, task_id=self._task_of(handle))
        task = self._adopt_view.get(handle.task_id) if handle.task_id else None
        if task is not None and task.state in states.ACTIVE:
            run = SlurmRun(handle.fqid, handle.workdir, outcome.marker_of(handle.workdir) or "",
                           handle, slurm_id=handle.task_id, raw_id=task.raw_id)
            ran = self._wrapper_started(run, task.node)
            started = ran[0] if ran is not None else None
            with self._cond:
                self._runs.add(run)
                if started is not None:
                    run.handle = started
                    self._runs.move(run, rs.RUNNING, "adopted: its wrapper still runs")
                else:
                    self._runs.move(run, rs.STARTING, "adopted: in Slurm's queue")
                    self._runs.move(run, rs.PENDING, "adopted: in Slurm's queue")
                self._poked = True
                self._cond.notify_all()
            note = f"Slurm job {handle.task_id}: {states.explain(task.state, task.reason)}"
            if started is not None:
                return base.STARTED, None, f"adopted: {note}", rs.RUNNING_DETAIL, started
            return base.QUEUED, None, f"adopted: {note}", states.detail(task.state, task.reason), handle
        said = task.state if task is not None else ""
        kind, code, note = states.final_event(handle.task_id, said, sf.last_status(
            os.path.join(handle.workdir, "status")) if handle.workdir else None, slurm_wrote(handle.workdir))
        if kind == base.LOST:
            outcome.lost_line(handle.workdir, note)
        return kind, code, note, _final_detail(said, task), handle

    def _held_elsewhere(self, handles: list[Handle]) -> list[bool]:
        try:
            view = self._slurm.queue() if any(h.task_id for h in handles) else {}
            in_slurm = [bool(h.task_id) and h.task_id in view and view[h.task_id].state in states.ACTIVE
                        for h in handles]
        except SlurmCommandError:  # Slurm cannot say: what it was given may still run there
            in_slurm = [bool(h.task_id) for h in handles]
        here = super()._held_elsewhere([dataclasses.replace(h, pid=0) for h in handles])
        return [a or b for a, b in zip(in_slurm, here, strict=True)]

    def _find_live(self, marker_prefix: str) -> list[Handle]:
        found = []
        for task_id, task in self._slurm.queue().items():
            marker = script.marker_of(task.name, task_id.partition("_")[2])
            if task.state in states.ACTIVE and marker.startswith(marker_prefix):
                fqid = marker[len(marker_prefix):]
                with self._cond:
                    run = self._runs.get(fqid)
                known = run.handle if isinstance(run, SlurmRun) and run.slurm_id == task_id else None
                found.append(known or Handle(BACKEND, fqid, host=task.node, task_id=task_id))
        return found

    def _ping_extra(self) -> dict[str, object]:
        return {"running": self._runs.count(rs.RUNNING, rs.LINGERING),
                "pending": self._runs.count(rs.STARTING, rs.PENDING), "conf": self._slurm.conf,
                "rounds": self._rounds, "commands": self._slurm.count,
                "monitor_commands": self._monitor_commands,
                "commands_last_round": self._round_commands, "max_running": self._max_running,
                "poll_interval": self._interval}


def _final_detail(state: str, task: Task | None) -> str:
    """The backend detail of a task that ended: Slurm's state (``Slurm TIMEOUT``, ``Slurm
    FAILED (JobLaunchFailure)``), or '' where Slurm no longer says (the rules' default)."""
    return states.detail(state, task.reason if task is not None else "") if state else ""


SLURM_OUT = "slurm.out"  # what Slurm itself writes for a task (script.Array.output)
SLURM_WORDS = 2  # slurmstepd's distinct error lines kept (the first says most)


def slurm_wrote(workdir: str) -> str:
    """slurmstepd's error lines in the task's ``slurm.out`` (why Slurm ended it: "DUE TO
    TIME LIMIT", "exceeded memory limit (...)"), without its prefix; '' if none."""
    try:
        with open(os.path.join(workdir, SLURM_OUT), errors="replace") as handle:
            lines = handle.read()[-8192:].splitlines()
    except OSError:
        return ""
    said: list[str] = []
    for line in reversed(lines):
        prefix, found, message = line.partition(" error: ")
        if found and prefix.startswith("slurmstepd") and message.strip() not in said:
            said.insert(0, message.strip())
            if len(said) == SLURM_WORDS:
                break
    return "; ".join(said)[:400]


def _fresh_slurm_out(workdir: str) -> None:
    """Empty an earlier attempt's slurm.out (Slurm appends to it): its words are that
    attempt's, not the next one's."""
    try:
        os.truncate(os.path.join(workdir, SLURM_OUT), 0)
    except OSError:
        pass


def _marker(handle: Handle, run: Run | None) -> str:
    return run.marker if run is not None and run.marker else outcome.marker_of(handle.workdir) or ""


def _sweep(markers: list[str], grace: float = 0.5) -> dict[int, procs.KillOutcome]:
    """End what Slurm left of killed tasks on this machine (a process that left the job's
    tree, which Linux process tracking misses): one scan for all, by index."""
    targets = {index: procs.Target(0, 0.0, marker) for index, marker in enumerate(markers) if marker}
    if not targets:
        return {}
    alive = [index for index, live in zip(targets, procs.held(list(targets.values())), strict=True) if live]
    if not alive:
        return {}
    return dict(zip(alive, procs.kill_trees([targets[i] for i in alive], grace), strict=True))


def _slurm_id(handle: Handle, run: Run | None) -> str:
    return run.slurm_id if isinstance(run, SlurmRun) and run.slurm_id else handle.task_id


def start_slurm_actor(name: str | None = None, max_concurrency_slots: int = 32, *, conf: str = "",
                      max_running: int | None = None, namespace: str | None = None,
                      lifetime: str | None = None, get_if_exists: bool = False,
                      **actor_options: object) -> object:
    """Create (or with ``get_if_exists`` re-attach to) a threaded :class:`SlurmActor`."""
    ray = import_ray()
    options = base.actor_options(max_concurrency_slots, name, namespace, lifetime, get_if_exists,
                                 **actor_options)
    return ray.remote(SlurmActor).options(**options).remote(conf=conf, max_running=max_running)
