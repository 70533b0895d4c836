"""The Hosts backend's driver: subjobs on labelled Ray nodes, scheduled the Autotest way.

Hosts are the cluster's nodes (``inventory``: labels, only-if-needed labels and
atomic groups are node resources; ``nodes``: an agent per node). The contract's
mechanics are ``backends/runtime``'s; this file schedules, starts gangs, gathers:

* A subjob is queued (``Queued``); a scheduler loop runs ``scheduler.schedule`` over
  the queue, oldest first, on every change and at least every :data:`REFRESH` s.
  ``max_running`` (a site limit) is the run table's cap.
* Assigned: ``Verifying`` (run state ``starting``): hosts checked alive and, for a
  gang, reserved together (a STRICT_SPREAD placement group: all start or none; a
  failure sends it back to the head of the queue). ``Starting`` (``pending``): one
  ``agent.host_run`` task per host (host *i* > 0 in ``<workdir>/hosts/<name>``,
  with ``GANGA_LIKE_HOSTS``/``_HOST``/``_HOST_INDEX``); ``Running`` (STARTED) once
  every wrapper called back.
* Every task returned (its group gone): ``Gathering``, then FINISHED with the first
  non-zero exit code of the hosts (``gang.HostsRun.gang_outcome``). A host that
  dies makes a gang LOST, its other members killed.
* A host whose Ray node is gone may still run its payload (a raylet can die while its
  machine and the payload live on): nothing can confirm there that the processes
  ended, so the run is *stranded*, held and not final, with detail ``Node lost: <host>,
  payload state unknown``. Once a node with the same ``host:<name>`` is back, that
  host's agent looks: a lone subjob still running is watched again (it ends as it
  ends), one that ended is reported from its status file; a gang's member (or a subjob
  kill() asked for) is killed and confirmed first (LOST, or KILLED). ``kill()`` of a
  stranded run is unconfirmed until then.

Across a restart (``adopt``) the processes and status files survive (a handle's
``host`` lists its hosts); the queue and placement groups do not. Host statuses
(``ping()["hosts"]``) are a view of the runs using each host.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

from ganga_like.backends import base
from ganga_like.backends import resources as rq
from ganga_like.backends.base import Handle, KillResult, SubjobSpec
from ganga_like.backends.hosts import host_states as hs
from ganga_like.backends.hosts import scheduler as sch
from ganga_like.backends.hosts.agent import remote
from ganga_like.backends.hosts.care import HostCare
from ganga_like.backends.hosts.gang import (
    HostsRun,
    Member,
    member_workdir,
    members_of,
    reason_of,
    target_of,
    task_id_of,
    wait_members,
)
from ganga_like.backends.hosts.inventory import HOST_PREFIX, Inventory, entry_for, fitting, impossible
from ganga_like.backends.hosts.nodes import CONTROL_TIMEOUT, Nodes
from ganga_like.backends.runtime import outcome, trace
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime.actor import RuntimeActor
from ganga_like.backends.runtime.runs import Run

BACKEND = "Hosts"
REFRESH = 1.0  # seconds between looks at the cluster's nodes when nothing else happens
STRANDED_GRACE = 1.0  # seconds a stranded member's tree gets after TERM, once its host is back
GANG_READY_TIMEOUT = 10.0  # seconds a gang's placement group may take to be reserved
VERIFY_TRIES = 2  # "a second failure for the same subjob fails it"


class HostsActor(RuntimeActor, HostCare):
    """Implements :class:`base.BackendActor` on a Ray cluster's nodes (see the module doc).

    Args:
        max_running: at most this many subjobs run at once (None: as many as hosts).
    """

    BACKEND = BACKEND

    def __init__(self, max_running: int | None = None) -> None:
        super().__init__(cap=max_running)
        self._busy: dict[str, HostsRun] = {}  # host -> the run using it
        self._init_care()
        self._nodes = Nodes()
        self._me: Any = None
        self._wake = False
        self._done_refs: queue.Queue = queue.Queue()  # (run, member) from future callbacks
        self._loop("hosts-scheduler", self._schedule_tick)
        self._loop("hosts-gatherer", self._gather_tick)
        self._loop("hosts-stranded", self._stranded_tick)

    # ------------------------------------------------------------------ submitting

    def submit(self, specs: list[SubjobSpec]) -> list[Handle]:
        """Queue every spec (oldest first); refuse, per subjob, what no host could ever run."""
        self._attach()
        inventory = self._nodes.refresh()
        handles: list[Handle] = []
        first = sf.StatusInfo(sf.QUEUED, "waiting for hosts", time.time()).line()
        fits: dict[rq.Request, frozenset[str] | None] = {}  # a job's subjobs mostly ask alike
        for spec in specs:
            handle = Handle(BACKEND, spec.fqid, workdir=spec.workdir, attempt=spec.attempt)
            if spec.request not in fits:
                fits[spec.request] = fitting(spec.request, inventory)
            entry = entry_for(spec, inventory, since=time.monotonic(), fits=fits[spec.request])
            run = HostsRun(spec.fqid, spec.workdir, spec.marker, handle, spec=spec, entry=entry)
            too_big = fits[spec.request] == frozenset() and _too_big(spec.request, inventory)
            problem = too_big or impossible(entry, inventory) or self._accept(run, first)
            if not problem:
                with self._cond:
                    self._runs.move(run, rs.QUEUED, "waiting for the scheduler")
                    self._runs.tell(run, base.QUEUED, sch.QUEUED, "waiting for the scheduler")
                    self._wake = True
                    self._cond.notify_all()
            handles.append(dataclasses.replace(handle, error=problem) if problem else handle)
        return handles

    # ------------------------------------------------------------------ scheduling

    def _schedule_tick(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._wake or self._closed, timeout=REFRESH)
            self._wake = False
        if self._closed:
            return
        try:
            self._schedule_round()
        except Exception as error:
            with self._cond:
                for run in self._runs.queued():
                    self._runs.tell(run, base.DETAIL, sch.QUEUED, f"scheduler error: {error!r}")
                self._cond.notify_all()
            raise

    def _schedule_round(self) -> None:
        inventory = self._nodes.refresh()
        self._first_look(inventory)
        self._notice_dead_nodes(inventory)
        starting: list[HostsRun] = []
        with self._cond:
            self._follow(inventory)
            waiting = {run.fqid: run for run in self._runs.queued()}
            if not waiting:
                self._book.hold(())
                return
            hosts = self._book.scheduler_hosts(inventory, self._holders())
            entries = [run.entry for run in waiting.values() if isinstance(run, HostsRun) and run.entry]
            decided = sch.schedule(hosts, inventory.labels, inventory.groups, entries, now=time.monotonic())
            self._book.hold(decided.held)
            for host in decided.resets:
                self._book.reset(host)
            for assignment in decided.assignments:
                run = waiting[assignment.key]
                assert isinstance(run, HostsRun)
                if self._runs.free_slots() <= 0:
                    self._runs.tell(run, base.DETAIL, sch.QUEUED,
                                    f"site limit: {self._runs.cap} subjobs run at once")
                    continue
                self._runs.move(run, rs.STARTING, "the scheduler assigned its hosts")
                run.members = [Member(h, inventory.hosts[h].node_id, member_workdir(run.workdir, i, h))
                               for i, h in enumerate(assignment.hosts)]
                for host in assignment.hosts:
                    self._busy[host] = run
                where = ", ".join(assignment.hosts) + (
                    f" (atomic group instance {assignment.instance})" if assignment.instance else "")
                self._runs.tell(run, base.DETAIL, sch.JOB_VERIFYING, f"verifying {where}")
                starting.append(run)
            for wait in decided.waits:
                run = waiting[wait.key]
                if wait.impossible:
                    self._runs.finish(run, base.LOST, note=f"cannot be scheduled any more: {wait.reason}")
                else:
                    self._runs.tell(run, base.DETAIL, wait.status, wait.reason)
            self._cond.notify_all()
        for run in starting:
            try:
                self._start(run, inventory)
            except Exception as error:  # e.g. Ray refused the placement group: try again later
                self._back_to_queue(run, f"could not be started: {type(error).__name__}: {error}"[:300])

    def _start(self, run: HostsRun, inventory: Inventory) -> None:
        """Verifying -> Starting: clean and verify the hosts, reserve a gang together, launch
        one task per host."""
        dead = [m.host for m in run.members if not inventory.hosts[m.host].alive]
        if dead:
            return self._back_to_queue(run, f"host {dead[0]} failed verify: its Ray node is down")
        failures = self._prepare_hosts(run)
        if failures:
            return self._verify_failed(run, failures)
        with self._cond:
            gpus = self._book.take_gpus(inventory, run.hosts, run.spec.request.gpus if run.spec else 0)
            for member in run.members:
                member.gpu_ids = gpus[member.host] if gpus else ()
        if gpus is None:
            return self._back_to_queue(run, "its hosts' GPUs are not free")
        if len(run.members) > 1 and all(self._nodes.has_host_resource(m.node_id) for m in run.members):
            # Each bundle pinned to its host by the host's own resource; STRICT_SPREAD: one per node.
            pg = placement_group([{f"{HOST_PREFIX}{m.host}": 0.001} for m in run.members],
                                 strategy="STRICT_SPREAD", name=f"ganga_like-{run.fqid}")
            if not pg.wait(GANG_READY_TIMEOUT):
                remove_placement_group(pg)
                return self._back_to_queue(run, "the hosts could not be reserved together in time")
            run.pg = pg
            strategies: list[Any] = [PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)
                                     for i in range(len(run.members))]
        else:  # one host, or hosts without a host:<name> resource (not gang-reserved: documented)
            strategies = [NodeAffinitySchedulingStrategy(m.node_id, soft=False) for m in run.members]
        hosts = ",".join(run.hosts)
        with self._cond:
            for index, (member, strategy) in enumerate(zip(run.members, strategies, strict=True)):
                extra = {"GANGA_LIKE_HOSTS": hosts, "GANGA_LIKE_HOST": member.host,
                         "GANGA_LIKE_HOST_INDEX": str(index),
                         rq.CUDA_VARIABLE: rq.gpu_visible(member.gpu_ids)}
                member.ref = remote("host_run").options(scheduling_strategy=strategy).remote(
                    run.spec, member.workdir, extra, member.host, self._me, index > 0)
                member.ref.future().add_done_callback(lambda _f, r=run, m=member: self._done_refs.put((r, m)))
            self._runs.move(run, rs.PENDING, "its host tasks were launched")
            self._runs.tell(run, base.DETAIL, sch.STARTING, f"starting on {hosts}")
            self._cond.notify_all()

    def _back_to_queue(self, run: HostsRun, reason: str) -> None:
        """"A job can go back to Queued from Verifying when a machine fails verify"."""
        with self._cond:
            self._release_hosts(run, clean=False, why="its subjob went back to the queue")
            run.members = []
            self._runs.move(run, rs.QUEUED, reason, first=True)  # it keeps its place: first
            self._runs.tell(run, base.DETAIL, sch.QUEUED, reason)
            self._wake = True
            self._cond.notify_all()

    def _notice_dead_nodes(self, inventory: Inventory) -> None:
        """An adopted gang with a host whose node died is ended (its other hosts killed; the
        dead host's member stays stranded until confirmed). For our own runs, and for a lone
        adopted subjob, the failure of its task tells."""
        with self._cond:
            victims = {id(r): r for h, r in self._busy.items()
                       if h in inventory.hosts and not inventory.hosts[h].alive and r.state == rs.RUNNING
                       and r.adopted and not r.killing and len(r.members) > 1}
            for run in victims.values():
                run.killing = True
        for run in victims.values():
            dead = [m.host for m in run.members if not inventory.hosts[m.host].alive]
            self._kill_gang(run, 1.0, lost_reason=f"host {dead[0]} died (its Ray node is gone)")

    # ------------------------------------------------------------------ gathering

    def on_started(self, fqid: str, attempt: int, host: str, pid: int, created: float) -> None:
        """Called by a host task once its wrapper runs (internal; not the contract)."""
        with self._cond:
            run = self._runs.get(fqid)
            if not isinstance(run, HostsRun) or run.handle.attempt != attempt:
                return
            for member in run.members:
                if member.host == host:
                    member.pid, member.create_time = pid, created
            self._maybe_started(run)
            self._cond.notify_all()

    def _gather_tick(self) -> None:
        item = self._done_refs.get()
        if item is None:
            return
        run, member = item
        try:
            member.result = ray.get(member.ref, timeout=5)
        except Exception as error:  # the node died, the worker crashed, the task was cancelled, ...
            # The task is gone, not necessarily its payload (in a session of its own).
            member.result = {"host": member.host, "error": reason_of(member.host, error), "task_failed": True}
        member.done = True
        self._on_member_done(run, member)

    def _on_member_done(self, run: HostsRun, member: Member) -> None:
        result = member.result or {}
        lost = result.get("error")
        with self._cond:
            if run.state == rs.DONE or run.killing:
                self._cond.notify_all()
                return  # kill() reports it
            if result.get("pid") and not member.pid:  # the task ended before its callback arrived
                member.pid, member.create_time = result["pid"], result.get("create_time", 0.0)
            self._maybe_started(run)
            if lost and result.get("task_failed") and len(run.members) == 1:
                # A lone subjob whose task died: its payload may live on. Nothing is reported
                # until its host's agent has looked (_settle_stranded, within REFRESH s, or
                # once its node is back).
                member.stranded = True
                self._tell_stranded(run)
                self._cond.notify_all()
                return
            if not lost:
                member.gone = True  # host_run and host_watch return once the tree is gone
            everyone = all(m.done for m in run.members)
            if not everyone and not lost:
                self._cond.notify_all()
                return  # the gang's other hosts still run
            # A gang member is lost: end the others, and confirm the lost one's processes
            # gone too when only its task died (even if it was the last to end).
            ending = bool(lost) and (not everyone or bool(result.get("task_failed")))
            if ending:
                run.killing = True
            else:
                self._runs.tell(run, base.DETAIL, sch.GATHERING, "collecting the exit status")
            self._cond.notify_all()
        if ending:
            self._nodes.refresh()  # a node that just died must not be asked (and waited for)
            self._kill_gang(run, 1.0, lost_reason=lost)
            return
        kind, code, note = run.gang_outcome()
        with self._cond:
            self._finish(run, kind, code, note)
            self._cond.notify_all()

    def _maybe_started(self, run: HostsRun) -> None:
        """(cond held) Starting -> Running once every host's wrapper has started: STARTED."""
        if run.state != rs.PENDING or not all(m.pid for m in run.members):
            return
        first = run.members[0]
        handle = dataclasses.replace(run.handle, host=",".join(run.hosts), pid=first.pid,
                                     create_time=first.create_time, gpu_ids=first.gpu_ids,
                                     task_id=",".join(task_id_of(m.ref) for m in run.members))
        self._started(run, handle, f"running on {', '.join(run.hosts)}")

    def _wake_loops(self) -> None:
        self._done_refs.put(None)

    # ------------------------------------------------------------------ killing

    def _kill_work(self, work: list[tuple[Handle, Run | None]], grace: float) -> list[KillResult]:
        self._nodes.refresh()  # a node that just died must not be asked (and waited for)
        for _handle, run in work:
            if isinstance(run, HostsRun):
                run.kill_asked = True
        return [self._kill_gang(run, grace) if isinstance(run, HostsRun)
                else self._kill_foreign(handle, grace)
                for handle, run in work]

    def _kill_gang(self, run: HostsRun, grace: float, lost_reason: str | None = None) -> KillResult:
        """Cancel tasks that have not started a wrapper, kill every member's tree on its host, confirm.

        ``lost_reason``: a member's host or task was lost, so the gang is ended: LOST once
        every member is confirmed gone. A member that cannot be confirmed gone (its host's
        node is down, its agent does not answer, a tree survived SIGKILL) leaves the run
        stranded: held, not final, until :meth:`_settle_stranded` confirms it."""
        if lost_reason and not run.lost:
            run.lost = lost_reason
        for member in run.members:
            if member.ref is not None and not member.pid and not member.done:
                ray.cancel(member.ref, force=True)
        wait_members([m for m in run.members if not m.pid], 5.0)
        notes = [f"{member.host}: {note}" for member, note in self._kill_on_hosts(run, grace)]
        wait_members(run.members, 5.0)
        for member in run.members:
            if not member.done and member.ref is not None:
                ray.cancel(member.ref, force=True)
        wait_members(run.members, 5.0)
        settled = all(m.done or m.ref is None for m in run.members)
        if len(run.members) > 1:
            note = "; ".join(notes)
        else:
            note = notes[0].split(": ", 1)[1] if notes else "never started"
        confirmed = settled and all(m.gone for m in run.members)
        if confirmed:
            self._end_gang(run, note)
        else:
            self._strand(run, settled)
        return KillResult(run.fqid, confirmed, note if settled else note + "; a host task did not end")

    def _kill_on_hosts(self, run: HostsRun, grace: float) -> list[tuple[Member, str]]:
        """Ask each member's host (its agent, on the host's current node) to kill the
        member's tree; mark each confirmed gone, free its host; (member, note) each."""
        inventory = self._nodes.inventory  # refreshed by the caller
        calls = []
        for member in run.members:
            node = inventory.hosts.get(member.host)
            try:
                # The host's current node: a restarted node (a new id) runs on the same machine.
                calls.append((member, None if node is None or not node.alive else self._nodes.call_async(
                    node.node_id, "host_kill", [member.target(run.marker)], grace)))
            except Exception as error:
                calls.append((member, error))
        answers = []
        for member, call in calls:
            ok, note = self._kill_answer(member, call)
            with self._cond:
                member.gone = member.gone or ok
                member.stranded = not member.gone
                if member.gone:  # nothing of the run is left there: the host is cleaned, then free
                    self._let_go(member.host, run, True, "its subjob was killed or its gang ended")
            answers.append((member, note))
        return answers

    def _kill_answer(self, member: Member, call: Any) -> tuple[bool, str]:
        """(confirmed gone, note) from a host's answer to ``host_kill`` (or why there is none)."""
        if call is None:
            return False, "its node is down, cannot confirm"
        if isinstance(call, Exception):
            return False, reason_of(member.host, call)
        try:
            (ok, _killed, note), = ray.get(call, timeout=CONTROL_TIMEOUT)
        except Exception as error:
            return False, reason_of(member.host, error)
        return ok, note

    def _strand(self, run: HostsRun, settled: bool) -> None:
        """A run some member of which is not confirmed gone: held, not final (see _settle_stranded)."""
        with self._cond:
            if settled and run.pg is not None:  # no task of the gang is left: its reservation goes
                try:
                    remove_placement_group(run.pg)
                except Exception:  # already gone with its node
                    pass
                run.pg = None
            self._tell_stranded(run)
            self._cond.notify_all()

    def _end_gang(self, run: HostsRun, note: str) -> None:
        """Every member of a run being killed is confirmed gone: KILLED if kill() asked, else LOST."""
        if run.lost and not run.kill_asked:
            with self._cond:
                self._finish(run, base.LOST, None, f"{run.lost}; the other hosts were stopped ({note})")
                self._cond.notify_all()
            return
        self._killed(run, run.handle, note)
        for member in run.members[1:]:
            outcome.killed_line(member.workdir, note)

    # ------------------------------------------------------------------ stranded runs

    def _tell_stranded(self, run: HostsRun) -> None:
        """(cond held) Say why a stranded run is held: its hosts whose node is down."""
        hosts = self._nodes.inventory.hosts
        down = [m.host for m in run.members if m.stranded and not (m.host in hosts and hosts[m.host].alive)]
        if down and run.state != rs.DONE:
            self._runs.tell(run, base.DETAIL, rs.node_lost_detail(down),
                            f"the Ray node of {', '.join(down)} is gone; its payload may still run there: "
                            "held until that host's agent confirms it ended (once a node with its host "
                            "name is back)")

    def _stranded_tick(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed, timeout=REFRESH)
            stranded = [r for r in self._runs
                        if isinstance(r, HostsRun) and r.stranded and r.state != rs.DONE]
        if stranded and not self._closed:
            inventory = self._nodes.refresh()
            for run in stranded:
                self._settle_stranded(run, inventory)

    def _settle_stranded(self, run: HostsRun, inventory: Inventory) -> None:
        """Ask the agents of a stranded run's hosts that are up again. A run being ended
        (a gang with a lost member, or kill() asked) is killed and confirmed; a lone subjob
        still running is watched again, one that ended is reported from its status file."""
        waiting = [m for m in run.members if m.stranded]
        up = [m for m in waiting if m.host in inventory.hosts and inventory.hosts[m.host].alive]
        with self._cond:
            self._tell_stranded(run)
            self._cond.notify_all()
        if not up:
            return  # still down: nothing can be confirmed
        if run.killing:
            self._kill_gang(run, STRANDED_GRACE)
            return
        for member in up:
            node = inventory.hosts[member.host]
            try:
                (alive,) = self._nodes.call(node.node_id, "host_held", [member.target(run.marker)])
            except Exception:
                continue  # its agent is not ready yet: next round
            with self._cond:
                if run.state == rs.DONE or run.killing or not member.stranded:
                    return
                member.stranded, member.node_id = False, node.node_id
                if alive:  # it ran on while its node was away: watch it again, from its new node
                    member.done, member.result = False, None
                    member.ref = remote("host_watch").options(
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False)
                    ).remote(member.host, *member.target(run.marker))
                    member.ref.future().add_done_callback(
                        lambda _f, r=run, m=member: self._done_refs.put((r, m)))
                    self._runs.tell(run, base.DETAIL, sch.JOB_RUNNING,
                                    f"host {member.host} is back; its payload still runs: watched again")
                else:  # it ended while its node was away: its status file tells how
                    member.done, member.gone = True, True
                    member.result = {"host": member.host, "returncode": None}
                self._cond.notify_all()
        with self._cond:
            ended = run.state != rs.DONE and not run.killing and all(m.gone for m in run.members)
        if ended:
            kind, code, note = run.gang_outcome()
            with self._cond:
                self._finish(run, kind, code, note)
                self._cond.notify_all()

    def _kill_foreign(self, handle: Handle, grace: float) -> KillResult:
        members = members_of(handle, self._nodes.known())
        if not members:
            return KillResult(handle.fqid, True, "nothing to kill: never started")
        confirmed, killed_any, notes = True, False, []
        for index, member in enumerate(members):
            if not member.node_id:
                confirmed = False
                notes.append(f"{member.host}: its node is down, cannot confirm")
                continue
            (ok, killed, note), = self._nodes.call(member.node_id, "host_kill",
                                                [target_of(handle, member, index)], grace)
            confirmed, killed_any = confirmed and ok, killed_any or killed > 0
            notes.append(note)
        note = "; ".join(notes)
        if confirmed and killed_any:
            self._killed(None, handle, note)
        return KillResult(handle.fqid, confirmed, note)

    def _finish(self, run: Run, kind: str, code: int | None = None, note: str = "") -> None:
        """(cond held) The final event; the run's hosts are cleaned if the job asks
        (``reboot_after``; a killed or lost run's always are), else free again."""
        if isinstance(run, HostsRun):
            after = ((run.spec.options or {}).get("reboot_after") if run.spec else None) or "never"
            clean = (kind != base.FINISHED or after == "always"
                     or (after == "if all passed" and code == 0))
            self._release_hosts(run, clean, f"its subjob ended ({kind}); reboot_after={after!r}")
        self._runs.finish(run, kind, code, note)
        self._wake = True

    # ------------------------------------------------------------------ held, adopt, find

    def _held_elsewhere(self, handles: list[Handle]) -> list[bool]:
        """A member on a host whose node is down (or unknown) counts as held: nothing can
        confirm there that it ended (the leak audit keeps such an entry open)."""
        answer = []
        for handle in handles:
            members = members_of(handle, self._nodes.known())
            answer.append(any(
                not m.node_id or self._nodes.call(m.node_id, "host_held", [target_of(handle, m, i)])[0]
                for i, m in enumerate(members)))
        return answer

    def _before_adopt(self) -> None:
        self._attach()

    def _attach(self) -> None:
        """Know our own handle (host tasks report to it), the cluster's hosts, and the
        checks an earlier service left unfinished on them (they are verified again)."""
        if self._me is None:
            try:
                self._me = ray.get_runtime_context().current_actor  # host tasks report to it
            except Exception:  # used outside an actor
                self._me = None
        self._first_look(self._nodes.refresh())

    def _adopt_elsewhere(self, handle: Handle) -> tuple[str, int | None, str, str, Handle]:
        members = members_of(handle, self._nodes.known())
        last = trace.last(handle.workdir)
        if not members or not handle.pid:
            if last is not None and last.terminal:
                return (*outcome.outcome_of(last, None), "", handle)
            return (base.LOST, None, "it was still queued when its actor ended; the queue does not survive a "
                    "restart", "", handle)
        targets = [target_of(handle, m, i) for i, m in enumerate(members)]
        live = [(m, t) for m, t in zip(members, targets, strict=True)
                if m.node_id and self._nodes.call(m.node_id, "host_held", [t])[0]]
        down = [m for m in members if not m.node_id]  # its node is gone: it may still run there
        run = HostsRun(handle.fqid, handle.workdir, outcome.marker_of(handle.workdir) or "", handle,
                       members=members)
        if not live and not down:
            if len(members) == 1 and last is not None and last.terminal:
                return (*outcome.outcome_of(last, None), "", handle)
            return (*run.gang_outcome(), "", handle)
        with self._cond:
            self._runs.add(run)
            self._runs.move(run, rs.RUNNING, "adopted: its wrappers still run" if live else
                            "adopted: its hosts' nodes are down, its wrappers may still run")
            for index, member in enumerate(members):
                self._busy[member.host] = run
                self._book.adopted(member.host)
                if member in down:
                    member.stranded = True
                    member.pid, member.create_time = targets[index][0], targets[index][1]
                    continue
                match = next((t for m, t in live if m is member), None)
                if match is None:
                    member.done, member.gone = True, True
                    member.result = {"host": member.host, "returncode": None}
                    continue
                member.pid, member.create_time = match[0], match[1]
                member.ref = remote("host_watch").options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(member.node_id, soft=False)
                ).remote(member.host, *match)
                member.ref.future().add_done_callback(lambda _f, r=run, m=member: self._done_refs.put((r, m)))
            self._tell_stranded(run)
            self._cond.notify_all()
            if down:
                return base.STARTED, None, run.detail[1], run.detail[0], handle
        return base.STARTED, None, "adopted: still running", sch.JOB_RUNNING, handle

    def _find_live(self, marker_prefix: str) -> list[Handle]:
        seen: dict[tuple[int, float], Handle] = {}
        for host in self._nodes.refresh().hosts.values():
            if not host.alive:
                continue
            try:
                found = self._nodes.call(host.node_id, "host_find", marker_prefix)
            except Exception:
                continue
            for pid, created, marker in found:
                seen.setdefault((pid, round(created, 2)),
                                Handle(BACKEND, marker[len(marker_prefix):], host=host.name, pid=pid,
                                       create_time=created))
        return sorted(seen.values(), key=lambda h: h.fqid)

    # ------------------------------------------------------------------ hosts

    def _holders(self) -> dict[str, str]:
        """(cond held) host -> the subjob using it."""
        return {host: run.fqid for host, run in self._busy.items()}

    def _release_hosts(self, run: HostsRun, clean: bool = False, why: str = "its subjob let it go") -> None:
        """(cond held) The run lets its hosts go: cleaned first when ``clean``."""
        for host in run.hosts:
            self._let_go(host, run, clean, why)
        if run.pg is not None:
            try:
                remove_placement_group(run.pg)
            except Exception:  # already gone with its node
                pass
            run.pg = None

    def _let_go(self, host: str, run: HostsRun, clean: bool, why: str) -> None:
        """(cond held) One host of ``run`` is free of it: Ready, or Cleaning then Ready."""
        if self._busy.get(host) is not run:
            return
        del self._busy[host]
        for member in run.members:
            if member.host == host:
                self._book.give_gpus(host, member.gpu_ids)
                member.gpu_ids = ()
        node = self._nodes.inventory.hosts.get(host)
        if host in self._book.states and self._book.after_run(host, clean, node is not None and node.alive,
                                                               why):
            self._check_later(host, "cleanup", hs.CLEANING)
        self._wake = True

    def _verify_failed(self, run: HostsRun, failures: dict[str, str]) -> None:
        """Hosts failed their check before a run: they go to repair, the run back to the
        queue, or fails with the reason when this is its second failed try."""
        reason = "; ".join(failures.values())
        with self._cond:
            for host, why in failures.items():
                if self._book.failed(host, why):
                    self._check_later(host, "repair", hs.REPAIRING)
            run.verify_failures += 1
            if run.verify_failures >= VERIFY_TRIES:
                self._finish(run, base.LOST,
                             note=f"its hosts failed verify {run.verify_failures} times: {reason}")
                self._cond.notify_all()
                return
        self._back_to_queue(run, reason)

    def hosts(self) -> list[dict[str, object]]:
        """Each host once: name, labels, status, protection, dirty flag, the subjob it
        holds, its last check and its result (``ganga-like hosts``)."""
        self._look()
        with self._cond:
            return self._book.rows(self._nodes.inventory, self._holders())

    def _look(self) -> None:
        """Read the cluster's nodes now and follow them in the host table."""
        self._attach()
        with self._cond:
            self._follow(self._nodes.inventory)

    def _ping_extra(self) -> dict[str, Any]:
        """(cond held) The host table, and the labels and atomic groups of the cluster."""
        inventory = self._nodes.inventory
        return {
            "hosts": self._book.rows(inventory, self._holders()),
            "labels": {n: {"only_if_needed": label.only_if_needed, "atomic_group": label.atomic_group}
                       for n, label in sorted(inventory.labels.items())},
            "atomic_groups": {g.name: g.max_machines for g in inventory.groups.values()},
        }

    def ping(self) -> dict[str, Any]:
        self._look()
        return super().ping()


def _too_big(request: rq.Request, inventory: Inventory) -> str:
    """Why no host could ever hold ``request``: what the biggest host lacks, then the hosts
    (those with the most GPUs, then CPUs, first)."""
    biggest = sorted((h.capacity for h in inventory.hosts.values()),
                     key=lambda c: (-len(c.gpu_ids), -(c.cpus or 0), c.name))
    if not biggest:
        return f"asks for {request.describe()}; there is no host"
    shown = "; ".join(c.totals() for c in biggest[:rq.SHOWN_NODES])
    more = f"; and {len(biggest) - rq.SHOWN_NODES} more" if len(biggest) > rq.SHOWN_NODES else ""
    return f"{rq.refusal(request, biggest[0])}; no host could ever hold it ({shown}{more})"


def start_hosts_actor(name: str | None = None, max_concurrency_slots: int = 32, *,
                      max_running: int | None = None, namespace: str | None = None,
                      get_if_exists: bool = False, **actor_options: Any) -> Any:
    """Create a threaded Ray actor running :class:`HostsActor` (``num_cpus=0``), pinned to the
    caller's node (``base.actor_options``): it must never die with a host it schedules onto."""
    options = base.actor_options(max_concurrency_slots, name, namespace, None, get_if_exists, **actor_options)
    return ray.remote(HostsActor).options(**options).remote(max_running=max_running)

