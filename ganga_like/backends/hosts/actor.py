"""The Hosts backend's driver: subjobs on labelled Ray nodes, scheduled the Autotest way.

Hosts are the nodes of the Ray cluster (``inventory.discover``: labels, only-if-needed
labels and atomic groups are the nodes' custom resources). The contract's mechanics
are ``backends/runtime``'s; this file schedules, starts gangs and gathers them:

* A subjob (``spec.options`` holds ``Hosts.request()``; empty: any plain host) is
  queued (QUEUED, ``Queued``). A scheduler loop runs ``scheduler.schedule`` over the
  queue, oldest first, whenever something changes (a submit, an end, a node coming
  or going; at least every :data:`REFRESH` s).
* An assigned subjob is ``Verifying`` (run state ``starting``): its hosts are checked
  alive and, for more than one host, reserved together with a STRICT_SPREAD
  placement group pinned to them (all start together or none; a host that fails
  sends the subjob back to the head of the queue). Then ``Starting`` (``pending``):
  one ``agent.host_run`` task per host; ``Running`` with STARTED once every
  wrapper has called back. Host 0 runs in ``spec.workdir``, host *i* in
  ``<workdir>/hosts/<name>``; each wrapper sees ``GANGA_LIKE_HOSTS``,
  ``GANGA_LIKE_HOST`` and ``GANGA_LIKE_HOST_INDEX``.
* When every host's task has returned (no process of its wrapper's group left):
  ``Gathering``, then FINISHED with the first non-zero exit code of the hosts
  (host 0's otherwise). A host that dies under a subjob makes it LOST (the gang's
  other members are killed).
* ``max_running`` is the run table's cap (a site limit).

Workdirs must be on a file system every host sees. What survives a restart
(``adopt``): the processes and the status files (a handle's ``host`` is the comma
list of its hosts, ``pid``/``create_time`` host 0's wrapper); not the queue (a
subjob still queued is LOST, to be resubmitted) nor placement groups.

Host statuses (``ping()["hosts"]``) follow from the runs using each host: Ready,
Pending (held for a synchronous job), Verifying, Running, Repair Failed (dead node).
"""

from __future__ import annotations

import dataclasses
import os
import queue
import time
from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

from ganga_like import status_file as sf
from ganga_like.backends import base
from ganga_like.backends.base import Handle, KillResult, SubjobSpec
from ganga_like.backends.hosts import scheduler as sch
from ganga_like.backends.hosts.agent import Target, remote
from ganga_like.backends.hosts.inventory import HOST_PREFIX, Inventory, NodeHost, discover, entry_for
from ganga_like.backends.runtime import outcome
from ganga_like.backends.runtime import runs as rs
from ganga_like.backends.runtime.actor import RuntimeActor
from ganga_like.backends.runtime.runs import Run

BACKEND = "Hosts"
REFRESH = 1.0  # seconds between looks at the cluster's nodes when nothing else happens
GANG_READY_TIMEOUT = 10.0  # seconds a gang's placement group may take to be reserved
CONTROL_TIMEOUT = 30.0  # seconds for a kill / held / find call on one node
VERIFY_COOLDOWN = 30.0  # a host that failed verify is not tried again for this long
HOST_OF_STATE = {rs.STARTING: sch.VERIFYING, rs.PENDING: sch.VERIFYING}  # else Running


@dataclasses.dataclass(eq=False)
class Member:
    """One host of a subjob's gang."""

    host: str
    node_id: str
    workdir: str
    ref: Any = None
    pid: int = 0
    create_time: float = 0.0
    result: dict[str, Any] | None = None  # what the task returned, or {"error": ...}
    done: bool = False


@dataclasses.dataclass(eq=False)
class HostsRun(Run):
    entry: sch.Entry | None = None
    members: list[Member] = dataclasses.field(default_factory=list)
    pg: Any = None

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(m.host for m in self.members)


class HostsActor(RuntimeActor):
    """Implements :class:`base.BackendActor` on a Ray cluster's nodes (see the module doc).

    Args:
        max_running: at most this many subjobs run at once (None: as many as hosts).
    """

    BACKEND = BACKEND

    def __init__(self, max_running: int | None = None) -> None:
        super().__init__(cap=max_running)
        self._busy: dict[str, HostsRun] = {}  # host -> the run using it
        self._held: dict[str, str] = {}  # host -> fqid of the synchronous job holding it (Pending)
        self._verify_failed: dict[str, float] = {}
        self._inventory = Inventory({}, {}, {})
        self._agents: dict[str, Any] = {}  # node id -> HostAgent
        self._me: Any = None
        self._wake = False
        self._done_refs: queue.Queue = queue.Queue()  # (run, member) from future callbacks
        self._loop("hosts-scheduler", self._schedule_tick)
        self._loop("hosts-gatherer", self._gather_tick)

    # ------------------------------------------------------------------ submitting

    def submit(self, specs: list[SubjobSpec]) -> list[Handle]:
        """Queue every spec (oldest first); refuse, per subjob, what no host could ever run."""
        self._attach()
        inventory = self._refresh()
        handles: list[Handle] = []
        first = sf.StatusInfo(sf.QUEUED, "waiting for hosts", time.time()).line()
        for spec in specs:
            handle = Handle(BACKEND, spec.fqid, workdir=spec.workdir, attempt=spec.attempt)
            entry = entry_for(spec, inventory)
            run = HostsRun(spec.fqid, spec.workdir, spec.marker, handle, spec=spec, entry=entry)
            problem = self._impossible(entry, inventory)
            if not problem:
                with self._cond:
                    problem = self._runs.add(run)
                if not problem:
                    try:
                        outcome.prepare(spec.workdir, first)
                    except OSError as error:
                        problem = f"cannot prepare {spec.workdir}: {error.strerror or error}"
                    with self._cond:
                        if problem:
                            self._runs.move(run, rs.DONE, problem)
                        else:
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
        inventory = self._refresh()
        self._notice_dead_nodes(inventory)
        starting: list[HostsRun] = []
        with self._cond:
            waiting = {run.fqid: run for run in self._runs.queued()}
            if not waiting:
                self._held = {}
                return
            now = time.monotonic()
            hosts = [sch.Host(h.name, h.labels, self._scheduler_status(h),
                              locked=now - self._verify_failed.get(h.name, -1e9) < VERIFY_COOLDOWN)
                     for h in inventory.hosts.values()]
            entries = [run.entry for run in waiting.values() if isinstance(run, HostsRun) and run.entry]
            decided = sch.schedule(hosts, inventory.labels, inventory.groups, entries)
            self._held = decided.held
            for assignment in decided.assignments:
                run = waiting[assignment.key]
                assert isinstance(run, HostsRun)
                if self._runs.free_slots() <= 0:
                    self._runs.tell(run, base.DETAIL, sch.QUEUED, f"site limit: {self._runs.cap} subjobs run at once")
                    continue
                self._runs.move(run, rs.STARTING, "the scheduler assigned its hosts")
                run.members = [Member(h, inventory.hosts[h].node_id, self._member_workdir(run, i, h))
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
                self._back_to_queue(run, f"could not be started: {type(error).__name__}: {error}"[:300], [])

    def _start(self, run: HostsRun, inventory: Inventory) -> None:
        """Verifying -> Starting: check the hosts, reserve a gang together, launch one task per host."""
        dead = [m.host for m in run.members if not inventory.hosts[m.host].alive]
        if dead:
            return self._back_to_queue(run, f"host {dead[0]} failed verify: its Ray node is down", dead)
        if len(run.members) > 1 and all(self._has_host_resource(m.node_id) for m in run.members):
            # Each bundle pinned to its host by the host's own resource; STRICT_SPREAD: one per node.
            pg = placement_group([{f"{HOST_PREFIX}{m.host}": 0.001} for m in run.members],
                                 strategy="STRICT_SPREAD", name=f"ganga_like-{run.fqid}")
            if not pg.wait(GANG_READY_TIMEOUT):
                remove_placement_group(pg)
                return self._back_to_queue(run, "the hosts could not be reserved together in time", [])
            run.pg = pg
            strategies: list[Any] = [PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)
                                     for i in range(len(run.members))]
        else:  # one host, or hosts without a host:<name> resource (not gang-reserved: documented)
            strategies = [NodeAffinitySchedulingStrategy(m.node_id, soft=False) for m in run.members]
        hosts = ",".join(run.hosts)
        with self._cond:
            for index, (member, strategy) in enumerate(zip(run.members, strategies)):
                extra = {"GANGA_LIKE_HOSTS": hosts, "GANGA_LIKE_HOST": member.host,
                         "GANGA_LIKE_HOST_INDEX": str(index)}
                member.ref = remote("host_run").options(scheduling_strategy=strategy).remote(
                    run.spec, member.workdir, extra, member.host, self._me, index > 0)
                member.ref.future().add_done_callback(lambda _f, r=run, m=member: self._done_refs.put((r, m)))
            self._runs.move(run, rs.PENDING, "its host tasks were launched")
            self._runs.tell(run, base.DETAIL, sch.STARTING, f"starting on {hosts}")
            self._cond.notify_all()

    def _back_to_queue(self, run: HostsRun, reason: str, failed_hosts: list[str]) -> None:
        """"A job can go back to Queued from Verifying when a machine fails verify"."""
        with self._cond:
            now = time.monotonic()
            for host in failed_hosts:
                self._verify_failed[host] = now
            self._release_hosts(run)
            run.members = []
            self._runs.move(run, rs.QUEUED, reason, first=True)  # it keeps its place: first
            self._runs.tell(run, base.DETAIL, sch.QUEUED, reason)
            self._wake = True
            self._cond.notify_all()

    def _notice_dead_nodes(self, inventory: Inventory) -> None:
        """Adopted runs on a node that died end LOST (for our own, the task's failure tells)."""
        with self._cond:
            victims = {id(r): r for h, r in self._busy.items()
                       if h in inventory.hosts and not inventory.hosts[h].alive and r.state == rs.RUNNING
                       and r.adopted and not r.killing}
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
        except Exception as error:  # the node died, the task was cancelled, ...
            member.result = {"host": member.host, "error": _reason(member.host, error)}
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
            everyone = all(m.done for m in run.members)
            if not everyone and not lost:
                self._cond.notify_all()
                return  # the gang's other hosts still run
            if everyone:
                self._runs.tell(run, base.DETAIL, sch.GATHERING, "collecting the exit status")
            else:
                run.killing = True  # a gang member is gone: end the others
            self._cond.notify_all()
        if not everyone:
            self._kill_gang(run, 1.0, lost_reason=lost)
            return
        kind, code, note = self._outcome(run)
        with self._cond:
            self._finish(run, kind, code, note)
            self._cond.notify_all()

    def _maybe_started(self, run: HostsRun) -> None:
        """(cond held) Starting -> Running once every host's wrapper has started: STARTED."""
        if run.state != rs.PENDING or not all(m.pid for m in run.members):
            return
        first = run.members[0]
        handle = dataclasses.replace(run.handle, host=",".join(run.hosts), pid=first.pid,
                                     create_time=first.create_time,
                                     task_id=",".join(_task_id(m.ref) for m in run.members))
        self._started(run, handle, f"running on {', '.join(run.hosts)}")

    def _outcome(self, run: HostsRun) -> outcome.Outcome:
        errors = [m.result["error"] for m in run.members if m.result and m.result.get("error")]
        if errors:
            return base.LOST, None, errors[0]
        per_host = [(m.host, *outcome.outcome_of(sf.last_status(os.path.join(m.workdir, "status")),
                                                 (m.result or {}).get("returncode")))
                    for m in run.members]
        lost = [(h, note) for h, kind, _c, note in per_host if kind == base.LOST]
        if lost:
            return base.LOST, None, f"on {lost[0][0]}: {lost[0][1]}"
        if len(per_host) == 1:
            return per_host[0][1], per_host[0][2], per_host[0][3]
        failing = [p for p in per_host if p[2]]
        code = failing[0][2] if failing else per_host[0][2]
        return base.FINISHED, code, "; ".join(f"{h}: {note}" for h, _k, _c, note in per_host)

    def _wake_loops(self) -> None:
        self._done_refs.put(None)

    # ------------------------------------------------------------------ killing

    def _kill_work(self, work: list[tuple[Handle, Run | None]], grace: float) -> list[KillResult]:
        return [self._kill_gang(run, grace) if isinstance(run, HostsRun) else self._kill_foreign(handle, grace)
                for handle, run in work]

    def _kill_gang(self, run: HostsRun, grace: float, lost_reason: str | None = None) -> KillResult:
        """Cancel tasks that have not started a wrapper, kill every member's tree on its node, confirm."""
        for member in run.members:
            if member.ref is not None and not member.pid and not member.done:
                ray.cancel(member.ref, force=True)
        _wait_members([m for m in run.members if not m.pid], 5.0)
        calls = []
        for member in run.members:
            node = self._inventory.hosts.get(member.host)
            try:
                calls.append((member, None if node is None or not node.alive else self._on_node_async(
                    member.node_id, "host_kill", [(member.pid, member.create_time, run.marker)], grace)))
            except Exception as error:
                calls.append((member, error))
        confirmed, notes = True, []
        for member, call in calls:
            if call is None:
                ok, note = False, "its node is down, cannot confirm"
            elif isinstance(call, Exception):
                ok, note = False, _reason(member.host, call)
            else:
                try:
                    (ok, _killed, note), = ray.get(call, timeout=CONTROL_TIMEOUT)
                except Exception as error:
                    ok, note = False, _reason(member.host, error)
            confirmed = confirmed and ok
            notes.append(f"{member.host}: {note}")
        _wait_members(run.members, 5.0)
        for member in run.members:
            if not member.done and member.ref is not None:
                ray.cancel(member.ref, force=True)
        _wait_members(run.members, 5.0)
        settled = all(m.done or m.ref is None for m in run.members)
        note = "; ".join(notes) if len(run.members) > 1 else (notes[0].split(": ", 1)[1] if notes else "never started")
        confirmed = confirmed and settled
        if lost_reason:
            with self._cond:
                self._finish(run, base.LOST, None, f"{lost_reason}; the other hosts were stopped ({note})")
                self._cond.notify_all()
        elif confirmed:
            self._killed(run, run.handle, note)
            for member in run.members[1:]:
                outcome.killed_line(member.workdir, note)
        return KillResult(run.fqid, confirmed, note if settled else note + "; a host task did not end")

    def _kill_foreign(self, handle: Handle, grace: float) -> KillResult:
        members = self._foreign_members(handle)
        if not members:
            return KillResult(handle.fqid, True, "nothing to kill: never started")
        confirmed, killed_any, notes = True, False, []
        for index, member in enumerate(members):
            if not member.node_id:
                confirmed = False
                notes.append(f"{member.host}: its node is down, cannot confirm")
                continue
            (ok, killed, note), = self._on_node(member.node_id, "host_kill", [self._target(handle, member, index)],
                                                grace)
            confirmed, killed_any = confirmed and ok, killed_any or killed > 0
            notes.append(note)
        note = "; ".join(notes)
        if confirmed and killed_any:
            self._killed(None, handle, note)
        return KillResult(handle.fqid, confirmed, note)

    def _finish(self, run: Run, kind: str, code: int | None = None, note: str = "") -> None:
        """(cond held) The final event; the run's hosts are free again."""
        if isinstance(run, HostsRun):
            self._release_hosts(run)
        self._runs.finish(run, kind, code, note)
        self._wake = True

    # ------------------------------------------------------------------ held, adopt, find

    def _held_elsewhere(self, handles: list[Handle]) -> list[bool]:
        answer = []
        for handle in handles:
            members = self._foreign_members(handle)
            answer.append(any(self._on_node(m.node_id, "host_held", [self._target(handle, m, i)])[0]
                              for i, m in enumerate(members) if m.node_id))
        return answer

    def _before_adopt(self) -> None:
        self._attach()

    def _attach(self) -> None:
        """Know our own handle (host tasks report to it) and the cluster's hosts."""
        if self._me is None:
            try:
                self._me = ray.get_runtime_context().current_actor  # host tasks report to it
            except Exception:  # used outside an actor
                self._me = None
        self._refresh()

    def _adopt_elsewhere(self, handle: Handle) -> tuple[str, int | None, str, str, Handle]:
        members = self._foreign_members(handle)
        last = sf.last_status(os.path.join(handle.workdir, "status")) if handle.workdir else None
        if not members or not handle.pid:
            if last is not None and last.terminal:
                return (*outcome.outcome_of(last, None), "", handle)
            return (base.LOST, None, "it was still queued when its actor ended; the queue does not survive a "
                    "restart", "", handle)
        targets = [self._target(handle, m, i) for i, m in enumerate(members)]
        live = [(m, t) for m, t in zip(members, targets)
                if m.node_id and self._on_node(m.node_id, "host_held", [t])[0]]
        run = HostsRun(handle.fqid, handle.workdir, outcome.marker_of(handle.workdir) or "", handle,
                       members=members)
        if not live:
            if len(members) == 1 and last is not None and last.terminal:
                return (*outcome.outcome_of(last, None), "", handle)
            return (*self._outcome(run), "", handle)
        with self._cond:
            self._runs.add(run)
            self._runs.move(run, rs.RUNNING, "adopted: its wrappers still run")
            for member in members:
                self._busy[member.host] = run
                match = next((t for m, t in live if m is member), None)
                if match is None:
                    member.done, member.result = True, {"host": member.host, "returncode": None}
                    continue
                member.pid, member.create_time = match[0], match[1]
                member.ref = remote("host_watch").options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(member.node_id, soft=False)
                ).remote(member.host, *match)
                member.ref.future().add_done_callback(lambda _f, r=run, m=member: self._done_refs.put((r, m)))
            self._cond.notify_all()
        return base.STARTED, None, "adopted: still running", sch.JOB_RUNNING, handle

    def _find_live(self, marker_prefix: str) -> list[Handle]:
        seen: dict[tuple[int, float], Handle] = {}
        for host in self._refresh().hosts.values():
            if not host.alive:
                continue
            try:
                found = self._on_node(host.node_id, "host_find", marker_prefix)
            except Exception:
                continue
            for pid, created, marker in found:
                seen.setdefault((pid, round(created, 2)), Handle(BACKEND, marker[len(marker_prefix):],
                                                                   host=host.name, pid=pid, create_time=created))
        return sorted(seen.values(), key=lambda h: h.fqid)

    def _foreign_members(self, handle: Handle) -> list[Member]:
        if not handle.host:
            return []
        inventory = self._inventory if self._inventory.hosts else self._refresh()
        members = []
        for index, host in enumerate(handle.host.split(",")):
            node = inventory.hosts.get(host)
            workdir = handle.workdir if index == 0 else os.path.join(handle.workdir, "hosts", host)
            members.append(Member(host, node.node_id if node is not None and node.alive else "", workdir))
        return members

    def _target(self, handle: Handle, member: Member, index: int) -> Target:
        marker = outcome.marker_of(member.workdir) or outcome.marker_of(handle.workdir)
        if index == 0:
            return (handle.pid, handle.create_time, marker)
        return (member.pid, member.create_time, marker)

    # ------------------------------------------------------------------ hosts

    def _refresh(self) -> Inventory:
        inventory = discover(ray.nodes())
        with self._cond:
            # Ray forgets dead nodes after a while; a host once seen stays, as Repair Failed.
            for name, host in self._inventory.hosts.items():
                if name not in inventory.hosts:
                    inventory.hosts[name] = dataclasses.replace(host, alive=False)
            self._inventory = inventory
            for host in inventory.hosts.values():
                if host.alive and host.node_id not in self._agents:
                    strategy = NodeAffinitySchedulingStrategy(host.node_id, soft=False)
                    # Detached and named per node: the next actor (after a restart) finds it ready.
                    self._agents[host.node_id] = remote("HostAgent").options(
                        scheduling_strategy=strategy, name=f"ganga_like.hostagent.{host.node_id}",
                        lifetime="detached", get_if_exists=True).remote()
                    # Warm a task worker too, so the first subjob on the host starts at once.
                    remote("host_held").options(scheduling_strategy=strategy).remote([])
                elif not host.alive:
                    self._agents.pop(host.node_id, None)
        return inventory

    def _has_host_resource(self, node_id: str) -> bool:
        return any(h.node_id == node_id and h.name != node_id[:12] for h in self._inventory.hosts.values())

    def _impossible(self, entry: sch.Entry, inventory: Inventory) -> str:
        """Why no host of the cluster, whatever its status, could run ``entry`` ('' if one could)."""
        hosts = [sch.Host(h.name, h.labels) for h in inventory.hosts.values()]
        wait = sch.schedule(hosts, inventory.labels, inventory.groups, [entry]).wait(entry.key)
        return wait.reason if wait is not None and wait.impossible else ""

    def _scheduler_status(self, host: NodeHost) -> str:
        if not host.alive:
            return sch.REPAIR_FAILED
        run = self._busy.get(host.name)
        return sch.READY if run is None else HOST_OF_STATE.get(run.state, sch.RUNNING)

    def _release_hosts(self, run: HostsRun) -> None:
        for host in run.hosts:
            if self._busy.get(host) is run:
                del self._busy[host]
        if run.pg is not None:
            try:
                remove_placement_group(run.pg)
            except Exception:  # already gone with its node
                pass
            run.pg = None

    def _member_workdir(self, run: HostsRun, index: int, host: str) -> str:
        return run.workdir if index == 0 else os.path.join(run.workdir, "hosts", host)

    def _on_node_async(self, node_id: str, name: str, *args: Any) -> Any:
        with self._cond:
            agent = self._agents.get(node_id)
        if agent is None:
            self._refresh()
            with self._cond:
                agent = self._agents[node_id]
        return getattr(agent, name).remote(*args)

    def _on_node(self, node_id: str, name: str, *args: Any) -> Any:
        return ray.get(self._on_node_async(node_id, name, *args), timeout=CONTROL_TIMEOUT)

    def _ping_extra(self) -> dict[str, Any]:
        inventory = self._inventory
        return {
            "hosts": [{"name": h.name, "labels": sorted(h.labels), "node_id": h.node_id,
                       "status": sch.PENDING if self._scheduler_status(h) == sch.READY and h.name in self._held
                       else self._scheduler_status(h)} for h in inventory.hosts.values()],
            "labels": {n: {"only_if_needed": label.only_if_needed, "atomic_group": label.atomic_group}
                       for n, label in sorted(inventory.labels.items())},
            "atomic_groups": {g.name: g.max_machines for g in inventory.groups.values()},
        }

    def ping(self) -> dict[str, Any]:
        self._refresh()
        return super().ping()


def _wait_members(members: list[Member], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(m.ref is not None and not m.done for m in members) and time.monotonic() < deadline:
        time.sleep(0.02)


def _task_id(ref: Any) -> str:
    try:
        return ref.task_id().hex()
    except Exception:
        return ""


def _reason(host: str, error: BaseException) -> str:
    text = str(error).strip().splitlines()
    name = type(error).__name__
    head = " ".join(text[:3]).lower()
    if "NodeDied" in name or ("node" in head and "died" in head):
        return f"host {host} died: {name}"
    return f"on host {host}: {name}: {text[0] if text else ''}"[:300]


def start_hosts_actor(name: str | None = None, max_concurrency_slots: int = 32, *, max_running: int | None = None,
                      namespace: str | None = None, get_if_exists: bool = False, **actor_options: Any) -> Any:
    """Create a threaded Ray actor running :class:`HostsActor` (``num_cpus=0``), pinned to the
    caller's node (``base.actor_options``): it must never die with a host it schedules onto."""
    options = base.actor_options(max_concurrency_slots, name, namespace, None, get_if_exists, **actor_options)
    return ray.remote(HostsActor).options(**options).remote(max_running=max_running)


__all__ = ["BACKEND", "HostsActor", "start_hosts_actor"]
