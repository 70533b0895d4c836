"""The Hosts backend's actor: subjobs on labelled Ray nodes, scheduled the Autotest way.

Hosts are the nodes of the Ray cluster, discovered from ``ray.nodes()``. A node
describes itself with custom resources (set with ``ray start --resources`` or
``Cluster.add_node(resources=...)``); the convention:

==============================  ============================================================
``host:<name>``                 the host's name (else the first 12 hex digits of its node id)
``label:<name>``                the host has label ``<name>``
``only_if_needed:<name>``       the host has label ``<name>`` and that label is "only if needed"
                                (one node declaring it makes the label only-if-needed)
``atomic:<group>:<instance>``   the host has label ``<instance>``, an instance of atomic group
                                ``<group>``; the resource's amount is the group's max number
                                of machines (the smallest amount any node gives; 0: no ceiling)
==============================  ============================================================

Explicit hosts are named by that name, by node id, or by ``node:<ip>`` (where the
ip is unique in the cluster).

How a subjob runs (``spec.options`` holds :meth:`Hosts.request`; empty means
"any plain host"): it is queued (event QUEUED, detail ``Queued``); a scheduler
thread runs :func:`scheduler.schedule` over the queue, oldest first, whenever
something changes (a submit, a job ending, a node coming or going; at least every
second); an assigned subjob goes to ``Verifying`` (its hosts are checked alive and,
for more than one host, reserved together with a STRICT_SPREAD placement group
pinned to those hosts: all start together or none), ``Starting`` (one Ray task per
host, ``num_cpus=0``, pinned to its node) and ``Running`` once every task has
started its wrapper (``native.wrapper_command()``) and called back (event STARTED).
Host 0 runs in ``spec.workdir``; host *i* > 0 in ``<workdir>/hosts/<name>``; each
wrapper sees ``GANGA_LIKE_HOSTS`` (comma list), ``GANGA_LIKE_HOST`` and
``GANGA_LIKE_HOST_INDEX``. When the wrappers end the subjob is ``Gathering`` while
each task waits until no process of its wrapper's group is left (host status
Cleaning); then FINISHED with the first non-zero exit code of the hosts (host 0's
otherwise). A node that dies under a subjob makes it LOST with the reason (the
gang's other members are killed).

Workdirs must be on a file system every host sees (the status file tells the
exit code). Ray must keep children of workers (``kill_child_processes_on_worker_exit``
false, as for Local) for subjobs to survive the actor.

What survives a restart (``adopt``): the processes (they run in their own
sessions) and the status files. A handle's ``host`` is the comma list of its
hosts, ``pid``/``create_time`` are host 0's wrapper, ``task_id`` the Ray task ids.
A new actor finds the wrappers again on their nodes by pid and marker (read from
the status file), watches them with a small task per host, and reports how each
ended. What does not survive: the queue (a subjob still queued when its actor died
is reported LOST, to be resubmitted) and placement groups (they die with the actor
that created them; adopted gangs keep running unreserved).

Host statuses (``ping()["hosts"]``): Ready, Pending (held for a synchronous job),
Verifying, Running, Cleaning, Repair Failed (the node is dead).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import ray
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from ganga_like import status_file as sf
from ganga_like.backends import base
from ganga_like.backends.base import Event, Handle, KillResult, SubjobSpec
from ganga_like.backends.event_stream import LongPollEvents
from ganga_like.backends.hosts import scheduler as sch
from ganga_like.backends.local import native, procs
from ganga_like.backends.local.actor import event_from_status, marker_from_status

BACKEND = "Hosts"
HOST_PREFIX, LABEL_PREFIX, ONLY_IF_NEEDED_PREFIX, ATOMIC_PREFIX = "host:", "label:", "only_if_needed:", "atomic:"
REFRESH = 1.0  # seconds between looks at the cluster's nodes when nothing else happens
GANG_READY_TIMEOUT = 10.0  # seconds a gang's placement group may take to be reserved
CONTROL_TIMEOUT = 30.0  # seconds for a kill / held / find task on one node
VERIFY_COOLDOWN = 30.0  # a host that failed verify is not tried again for this long


# ---------------------------------------------------------------------- discovery (pure)


@dataclasses.dataclass(frozen=True)
class NodeHost:
    name: str
    node_id: str
    alive: bool
    labels: frozenset[str]
    ip: str = ""


@dataclasses.dataclass(frozen=True)
class Inventory:
    hosts: dict[str, NodeHost]
    labels: dict[str, sch.Label]
    groups: dict[str, sch.AtomicGroup]

    def resolve(self, name: str) -> str:
        """A host's name from its name, node id (or a prefix of 8+ hex digits) or ``node:<ip>``."""
        if name in self.hosts:
            return name
        matches = [h.name for h in self.hosts.values()
                   if (len(name) >= 8 and h.node_id.startswith(name)) or (name.startswith("node:") and h.ip == name[5:])]
        return matches[0] if len(matches) == 1 else name


def discover(nodes: Iterable[Mapping[str, Any]]) -> Inventory:
    """Hosts, label definitions and atomic groups from ``ray.nodes()`` (see the module doc)."""
    hosts: dict[str, NodeHost] = {}
    only_if_needed: set[str] = set()
    instance_of: dict[str, str] = {}
    ceilings: dict[str, float] = {}
    for node in nodes:
        resources = node.get("Resources") or {}
        node_id = node.get("NodeID", "")
        name, labels = "", set()
        for key, amount in resources.items():
            if key.startswith(HOST_PREFIX):
                name = key[len(HOST_PREFIX):]
            elif key.startswith(LABEL_PREFIX):
                labels.add(key[len(LABEL_PREFIX):])
            elif key.startswith(ONLY_IF_NEEDED_PREFIX):
                labels.add(key[len(ONLY_IF_NEEDED_PREFIX):])
                only_if_needed.add(key[len(ONLY_IF_NEEDED_PREFIX):])
            elif key.startswith(ATOMIC_PREFIX) and key.count(":") >= 2:
                group, instance = key[len(ATOMIC_PREFIX):].split(":", 1)
                labels.add(instance)
                instance_of[instance] = group
                ceilings[group] = min(ceilings.get(group, amount), amount)
        host = NodeHost(name or node_id[:12], node_id, bool(node.get("Alive")), frozenset(labels),
                        node.get("NodeManagerAddress", ""))
        old = hosts.get(host.name)
        if old is None or (host.alive and not old.alive):  # a restarted node replaces its dead self
            hosts[host.name] = host
    ips = collections.Counter(h.ip for h in hosts.values())
    hosts = {n: h if ips[h.ip] == 1 else dataclasses.replace(h, ip="") for n, h in hosts.items()}
    names = {l for h in hosts.values() for l in h.labels}
    labels = {n: sch.Label(n, n in only_if_needed, instance_of.get(n)) for n in names}
    groups = {g: sch.AtomicGroup(g, int(c) if c >= 1 else None) for g, c in ceilings.items()}
    return Inventory(hosts, labels, groups)


def entry_for(spec: SubjobSpec, inventory: Inventory) -> sch.Entry:
    """The scheduler's entry for a subjob, from ``spec.options`` (``Hosts.request()``)."""
    options = spec.options or {}
    return sch.Entry(
        key=spec.fqid,
        hosts=tuple(inventory.resolve(h) for h in options.get("hosts") or ()),
        metahost=options.get("label") or None,
        dependencies=frozenset(options.get("dependencies") or ()),
        atomic_group=options.get("atomic_group") or None,
        synch_count=int(options.get("synch_count") or 1),
    )


# ---------------------------------------------------------------------- what runs on a host


def _clean_env(extra: Mapping[str, str], base_env: Mapping[str, str] | None) -> dict[str, str]:
    source = os.environ if base_env is None else base_env  # the submitter's, or this host's
    env = {k: v for k, v in source.items() if not k.startswith(base.RAY_VARIABLES)}
    env.update(extra)
    return env


def host_run(workdir: str, exe: str, args: list[str], env: dict[str, str], fqid: str, attempt: int,
             host: str, reporter: Any, first_line: bool,
             base_env: dict[str, str] | None = None) -> dict[str, Any]:
    """(A Ray task on the host.) Run the wrapper, report its start, wait until its group is gone."""
    status_path = os.path.join(workdir, "status")
    os.makedirs(os.path.join(workdir, "output"), exist_ok=True)
    if first_line:
        sf.append_line(status_path, sf.StatusInfo(sf.CREATED, f"starting on {host}", time.time()).line())
    command = native.wrapper_command()
    try:
        with open(os.devnull, "r+b") as devnull:
            popen = subprocess.Popen([*command, workdir, exe, *args], env=_clean_env(env, base_env), cwd=workdir,
                                     stdin=devnull, stdout=devnull, stderr=devnull, close_fds=True,
                                     start_new_session=True)
    except OSError as error:
        reason = f"cannot start the wrapper {command[-1]} on {host}: {error}"
        sf.StatusFile(status_path).set(sf.WRAPPER_ERROR, f"exit=126 {reason}")
        return {"host": host, "pid": 0, "create_time": 0.0, "error": reason}
    created = procs.create_time(popen.pid) or 0.0
    reporter.on_started.remote(fqid, attempt, host, popen.pid, created)
    returncode = popen.wait()
    while procs.group_may_live(popen.pid, created):  # Cleaning: nothing of the job may stay
        time.sleep(0.1)
    return {"host": host, "pid": popen.pid, "create_time": created, "returncode": returncode}


def host_watch(host: str, pid: int, created: float, marker: str | None) -> dict[str, Any]:
    """(A Ray task on the host.) Wait until an adopted wrapper's tree is gone."""
    target = procs.Target(pid, created, marker)
    while procs.held([target])[0]:
        time.sleep(0.25)
    return {"host": host, "pid": pid, "create_time": created, "returncode": None}


def host_kill(targets: list[tuple[int, float, str | None]], grace: float) -> list[tuple[bool, int, str]]:
    """(A Ray task on the host.) Kill trees; (confirmed, processes signalled, note) per target."""
    outcomes = procs.kill_trees([procs.Target(*t) for t in targets], grace)
    return [(o.confirmed, o.killed, o.note) for o in outcomes]


def host_held(targets: list[tuple[int, float, str | None]]) -> list[bool]:
    return procs.held([procs.Target(*t) for t in targets])


def host_find(prefix: str) -> list[tuple[int, float, str]]:
    """(A Ray task on the host.) The top process of each marked tree: (pid, create_time, marker)."""
    import psutil

    found = procs.find_by_marker(prefix)
    marked = {pid for pid, _, _ in found}
    tops: dict[str, tuple[int, float, str]] = {}
    for pid, created, marker in found:
        try:
            if psutil.Process(pid).ppid() in marked:
                continue
        except psutil.Error:
            continue
        tops.setdefault(marker, (pid, created, marker))
    return list(tops.values())


class HostAgent:
    """A small actor on each host (``num_cpus=0``) that kills, checks and finds processes there.

    One per node, created when the node is first seen: a kill must not wait for
    Ray to start a worker on a busy node. Named ``ganga_like.hostagent.<node id>``
    and detached, so a restarted HostsActor reuses it (it ends with its node, or
    with the cluster; under a plain ``ray.init()`` with the driver).
    """

    def host_kill(self, targets: list[tuple[int, float, str | None]], grace: float) -> list[tuple[bool, int, str]]:
        return host_kill(targets, grace)

    def host_held(self, targets: list[tuple[int, float, str | None]]) -> list[bool]:
        return host_held(targets)

    def host_find(self, prefix: str) -> list[tuple[int, float, str]]:
        return host_find(prefix)


_REMOTE: dict[str, Any] = {}


def _remote(name: str) -> Any:
    if not _REMOTE:
        for fn in (host_run, host_watch, host_held):
            _REMOTE[fn.__name__] = ray.remote(num_cpus=0, max_retries=0)(fn)
        _REMOTE["HostAgent"] = ray.remote(num_cpus=0, max_concurrency=8, max_restarts=0)(HostAgent)
    return _REMOTE[name]


# ---------------------------------------------------------------------- the actor's records


@dataclasses.dataclass(eq=False)
class _Member:
    host: str
    node_id: str
    workdir: str
    ref: Any = None
    pid: int = 0
    create_time: float = 0.0
    result: dict[str, Any] | None = None  # what the task returned, or {"error": ...}
    done: bool = False


@dataclasses.dataclass(eq=False)
class _Job:
    spec: SubjobSpec | None
    fqid: str
    workdir: str
    attempt: int
    marker: str | None
    entry: sch.Entry | None = None
    state: str = "queued"  # queued | verifying | starting | running | gathering | done
    detail: tuple[str, str] = ("", "")
    members: list[_Member] = dataclasses.field(default_factory=list)
    pg: Any = None
    handle: Handle | None = None
    killing: bool = False

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(m.host for m in self.members)


class HostsActor(LongPollEvents):
    """Implements :class:`base.BackendActor` on a Ray cluster's nodes (see the module doc).

    Args:
        max_running: at most this many subjobs run at once (a site limit; None: as
            many as there are hosts).
    """

    def __init__(self, max_running: int | None = None) -> None:
        self._max_running = max_running
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._events: collections.deque[Event] = collections.deque()
        self._seq = time.time_ns() // 1000
        self._queue: dict[str, _Job] = {}  # fqid -> job, in submission order
        self._jobs: dict[str, _Job] = {}  # fqid -> job, until its final event
        self._busy: dict[str, _Job] = {}  # host -> the job using it
        self._held: dict[str, str] = {}  # host -> fqid of the synchronous job holding it (Pending)
        self._verify_failed: dict[str, float] = {}
        self._inventory = Inventory({}, {}, {})
        self._agents: dict[str, Any] = {}  # node id -> HostAgent
        self._self_handle: Any = None
        self._wake = False
        self._done_refs: queue.Queue = queue.Queue()
        self._host = socket.gethostname()
        threading.Thread(target=self._schedule_loop, name="hosts-scheduler", daemon=True).start()
        threading.Thread(target=self._gather_loop, name="hosts-gatherer", daemon=True).start()

    # ------------------------------------------------------------------ contract

    def submit(self, specs: list[SubjobSpec]) -> list[Handle]:
        """Queue every spec (oldest first); refuse, per subjob, what no host could ever run."""
        self._reporter()
        inventory = self._refresh()
        handles: list[Handle] = []
        accepted: list[_Job] = []
        for spec in specs:
            handle = Handle(BACKEND, spec.fqid, workdir=spec.workdir, attempt=spec.attempt)
            entry = entry_for(spec, inventory)
            problem = self._impossible(entry, inventory)
            with self._lock:
                if spec.fqid in self._jobs:
                    problem = f"subjob {spec.fqid} is still {self._jobs[spec.fqid].state} in this actor"
            if not problem:
                try:
                    os.makedirs(os.path.join(spec.workdir, "output"), exist_ok=True)
                    sf.append_line(os.path.join(spec.workdir, "status"),
                                   sf.StatusInfo(sf.QUEUED, "waiting for hosts", time.time()).line())
                except OSError as error:
                    problem = f"cannot prepare {spec.workdir}: {error.strerror or error}"
            if problem:
                handles.append(dataclasses.replace(handle, error=problem))
                continue
            accepted.append(_Job(spec, spec.fqid, spec.workdir, spec.attempt, spec.marker, entry, handle=handle))
            handles.append(handle)
        with self._cond:
            for job in accepted:
                self._jobs[job.fqid] = job
                self._queue[job.fqid] = job
                job.detail = (sch.QUEUED, "waiting for the scheduler")
                self._emit(job.fqid, base.QUEUED, detail=sch.QUEUED, note="waiting for the scheduler",
                           handle=job.handle)
            self._wake = True
            self._cond.notify_all()
        return handles

    def kill(self, handles: list[Handle], grace: float = 3.0) -> list[KillResult]:
        results: list[KillResult] = []
        for handle in handles:
            with self._cond:
                self._cond.wait_for(lambda fqid=handle.fqid: self._state(fqid) != "verifying", timeout=GANG_READY_TIMEOUT + 5)
                job = self._jobs.get(handle.fqid)
                if job is not None and job.state == "queued":
                    self._queue.pop(job.fqid, None)
                    self._finish(job)
                    self._emit(job.fqid, base.KILLED, note="dropped from the queue before it started", handle=job.handle)
                    self._wake = True
                    self._cond.notify_all()
                    results.append(KillResult(handle.fqid, True, "dropped from the queue before it started"))
                    continue
                if job is not None:
                    job.killing = True
            if job is not None:
                results.append(self._kill_job(job, grace))
            else:
                results.append(self._kill_foreign(handle, grace))
        return results

    def held(self, handles: list[Handle]) -> list[bool]:
        answer: list[bool] = []
        for handle in handles:
            with self._lock:
                job = self._jobs.get(handle.fqid)
                if job is not None and job.state != "done":
                    answer.append(True)
                    continue
            members = self._foreign_members(handle)
            answer.append(any(self._on_node(m.node_id, "host_held", [self._target(handle, m, i)])[0]
                              for i, m in enumerate(members) if m.node_id) if members else False)
        return answer

    def adopt(self, handles: list[Handle]) -> list[Event]:
        self._reporter()
        self._refresh()
        return [self._adopt_one(handle) for handle in handles]

    def find(self, marker_prefix: str) -> list[Handle]:
        inventory = self._refresh()
        seen: dict[tuple[int, float], Handle] = {}
        for host in inventory.hosts.values():
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

    def ping(self) -> dict[str, Any]:
        inventory = self._refresh()
        with self._lock:
            table = [{"name": h.name, "labels": sorted(h.labels), "status": self._host_status(h),
                      "node_id": h.node_id} for h in inventory.hosts.values()]
            running = len({id(j) for j in self._busy.values() if j.state != "done"})
            return {
                "backend": BACKEND, "host": self._host, "pid": os.getpid(), "seq": self._seq,
                "running": running, "queued": len(self._queue), "hosts": table,
                "labels": {n: {"only_if_needed": l.only_if_needed, "atomic_group": l.atomic_group}
                           for n, l in sorted(inventory.labels.items())},
                "atomic_groups": {g.name: g.max_machines for g in inventory.groups.values()},
            }

    # ------------------------------------------------------------------ callbacks from host tasks

    def on_started(self, fqid: str, attempt: int, host: str, pid: int, created: float) -> None:
        with self._cond:
            job = self._jobs.get(fqid)
            if job is None or job.attempt != attempt:
                return
            for member in job.members:
                if member.host == host:
                    member.pid, member.create_time = pid, created
            self._maybe_started(job)
            self._cond.notify_all()

    # ------------------------------------------------------------------ scheduling

    def _schedule_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wake, timeout=REFRESH)
                self._wake = False
            try:
                self._schedule_round()
            except Exception as error:  # pragma: no cover - keep scheduling whatever happened
                with self._cond:
                    for job in list(self._queue.values()):
                        self._set_detail(job, sch.QUEUED, f"scheduler error: {error!r}")

    def _schedule_round(self) -> None:
        inventory = self._refresh()
        self._notice_dead_nodes(inventory)
        with self._cond:
            if not self._queue:
                self._held = {}
                return
            now = time.monotonic()
            hosts = [sch.Host(h.name, h.labels, self._scheduler_status(h),
                              locked=now - self._verify_failed.get(h.name, -1e9) < VERIFY_COOLDOWN)
                     for h in inventory.hosts.values()]
            entries = [job.entry for job in self._queue.values() if job.entry is not None]
            decided = sch.schedule(hosts, inventory.labels, inventory.groups, entries)
            self._held = decided.held
            slots = None
            if self._max_running is not None:
                slots = self._max_running - len({id(j) for j in self._busy.values()})
            starting: list[tuple[_Job, sch.Assignment]] = []
            for assignment in decided.assignments:
                job = self._queue[assignment.key]
                if slots is not None and slots <= 0:
                    self._set_detail(job, sch.QUEUED, f"site limit: {self._max_running} subjobs run at once")
                    continue
                if slots is not None:
                    slots -= 1
                self._queue.pop(job.fqid)
                job.state = "verifying"
                job.members = [_Member(h, inventory.hosts[h].node_id, self._member_workdir(job, i, h))
                               for i, h in enumerate(assignment.hosts)]
                for host in assignment.hosts:
                    self._busy[host] = job
                where = f"{', '.join(assignment.hosts)}" + (f" (atomic group instance {assignment.instance})"
                                                            if assignment.instance else "")
                self._set_detail(job, sch.JOB_VERIFYING, f"verifying {where}")
                starting.append((job, assignment))
            for wait in decided.waits:
                job = self._queue[wait.key]
                if wait.impossible:
                    self._queue.pop(job.fqid)
                    self._finish(job)
                    self._emit(job.fqid, base.LOST, note=f"cannot be scheduled any more: {wait.reason}", handle=job.handle)
                else:
                    self._set_detail(job, wait.status, wait.reason)
            self._cond.notify_all()
        for job, _assignment in starting:
            self._start(job, inventory)

    def _start(self, job: _Job, inventory: Inventory) -> None:
        """Verifying -> Starting: check the hosts, reserve a gang together, launch one task per host."""
        dead = [m.host for m in job.members if not inventory.hosts[m.host].alive]
        if dead:
            return self._back_to_queue(job, f"host {dead[0]} failed verify: its Ray node is down", dead)
        strategies: list[Any] = []
        if len(job.members) > 1 and all(self._has_host_resource(m.node_id) for m in job.members):
            from ray.util.placement_group import placement_group, remove_placement_group

            # Each bundle pinned to its host by the host's own resource; STRICT_SPREAD: one per node.
            bundles = [{f"{HOST_PREFIX}{m.host}": 0.001} for m in job.members]
            pg = placement_group(bundles, strategy="STRICT_SPREAD", name=f"ganga_like-{job.fqid}")
            if not pg.wait(GANG_READY_TIMEOUT):
                remove_placement_group(pg)
                return self._back_to_queue(job, "the hosts could not be reserved together in time", [])
            job.pg = pg
            strategies = [PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=i)
                          for i in range(len(job.members))]
        else:  # one host, or hosts without a host:<name> resource (not gang-reserved: documented)
            strategies = [NodeAffinitySchedulingStrategy(m.node_id, soft=False) for m in job.members]
        spec = job.spec
        assert spec is not None
        hosts = ",".join(job.hosts)
        with self._cond:
            if job.killing:
                job.state = "starting"
                self._cond.notify_all()
                return
            reporter = self._self_handle
            for index, (member, strategy) in enumerate(zip(job.members, strategies)):
                env = dict(spec.env, GANGA_LIKE_HOSTS=hosts, GANGA_LIKE_HOST=member.host,
                           GANGA_LIKE_HOST_INDEX=str(index))
                env[procs.MARKER_VAR] = spec.marker
                member.ref = _remote("host_run").options(scheduling_strategy=strategy).remote(
                    member.workdir, spec.exe, list(spec.args), env, job.fqid, job.attempt, member.host,
                    reporter, index > 0, spec.base_env)
                member.ref.future().add_done_callback(lambda _f, j=job, m=member: self._done_refs.put((j, m)))
            job.state = "starting"
            self._set_detail(job, sch.STARTING, f"starting on {hosts}")
            self._cond.notify_all()

    def _back_to_queue(self, job: _Job, reason: str, failed_hosts: list[str]) -> None:
        """"A job can go back to Queued from Verifying when a machine fails verify"."""
        with self._cond:
            now = time.monotonic()
            for host in failed_hosts:
                self._verify_failed[host] = now
            self._release_hosts(job)
            job.members, job.state = [], "queued"
            if job.killing:
                self._finish(job)
                self._emit(job.fqid, base.KILLED, note="killed before it started", handle=job.handle)
            else:
                self._queue = {job.fqid: job, **self._queue}  # it keeps its place: first
                self._set_detail(job, sch.QUEUED, reason)
            self._wake = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ gathering

    def _gather_loop(self) -> None:
        while True:
            job, member = self._done_refs.get()
            try:
                member.result = ray.get(member.ref, timeout=5)
            except Exception as error:  # the node died, the task was cancelled, ...
                member.result = {"host": member.host, "error": _reason(member.host, error)}
            member.done = True
            self._on_member_done(job, member)

    def _on_member_done(self, job: _Job, member: _Member) -> None:
        result = member.result or {}
        lost = result.get("error")
        with self._cond:
            if job.state == "done" or job.killing:
                self._cond.notify_all()
                return  # kill() reports it
            if result.get("pid") and not member.pid:  # the task ended before its callback arrived
                member.pid, member.create_time = result["pid"], result.get("create_time", 0.0)
            self._maybe_started(job)
            everyone = all(m.done for m in job.members)
            if not everyone and not lost:
                self._cond.notify_all()
                return  # the gang's other hosts still run
            if everyone:
                job.state = "gathering"
                self._set_detail(job, sch.GATHERING, "collecting the exit status")
            else:
                job.killing = True  # a gang member is gone: end the others
            self._cond.notify_all()
        if not everyone:
            self._kill_job(job, 1.0, lost_reason=lost)
            return
        kind, code, note = self._outcome(job)
        with self._cond:
            if job.state == "done":
                return
            self._finish(job)
            self._emit(job.fqid, kind, exit_code=code, note=note, handle=job.handle)
            self._wake = True
            self._cond.notify_all()

    def _maybe_started(self, job: _Job) -> None:
        """(lock held) Starting -> Running once every host's wrapper has started: event STARTED."""
        if job.state != "starting" or not all(m.pid for m in job.members):
            return
        job.state = "running"
        first = job.members[0]
        job.handle = Handle(BACKEND, job.fqid, host=",".join(job.hosts), pid=first.pid,
                            create_time=first.create_time, task_id=",".join(_task_id(m.ref) for m in job.members),
                            workdir=job.workdir, attempt=job.attempt)
        self._emit(job.fqid, base.STARTED, detail=sch.JOB_RUNNING, handle=job.handle,
                   note=f"running on {', '.join(job.hosts)}")

    def _outcome(self, job: _Job) -> tuple[str, int | None, str]:
        errors = [m.result["error"] for m in job.members if m.result and m.result.get("error")]
        if errors:
            return base.LOST, None, errors[0]
        per_host = []
        for member in job.members:
            per_host.append((member.host, *event_from_status(sf.last_status(os.path.join(member.workdir, "status")),
                                                               (member.result or {}).get("returncode"))))
        lost = [(h, note) for h, kind, _c, note in per_host if kind == base.LOST]
        if lost:
            return base.LOST, None, f"on {lost[0][0]}: {lost[0][1]}"
        if len(per_host) == 1:
            return per_host[0][1], per_host[0][2], per_host[0][3]
        failing = [p for p in per_host if p[2]]
        code = failing[0][2] if failing else per_host[0][2]
        return base.FINISHED, code, "; ".join(f"{h}: {note}" for h, _k, _c, note in per_host)

    # ------------------------------------------------------------------ killing

    def _kill_job(self, job: _Job, grace: float, lost_reason: str | None = None) -> KillResult:
        """Cancel tasks that have not started a wrapper, kill every member's tree on its node, confirm."""
        for member in job.members:
            if member.ref is not None and not member.pid and not member.done:
                ray.cancel(member.ref, force=True)
        _wait_members(job.members, [m for m in job.members if not m.pid], 5.0)
        confirmed, notes = True, []
        calls = []
        for member in job.members:
            node = self._inventory.hosts.get(member.host)
            if node is None or not node.alive:
                calls.append((member, None))
                continue
            try:
                calls.append((member, self._on_node_async(member.node_id, "host_kill",
                                                          [(member.pid, member.create_time, job.marker)], grace)))
            except Exception as error:
                calls.append((member, error))
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
        _wait_members(job.members, job.members, 5.0)
        for member in job.members:
            if not member.done and member.ref is not None:
                ray.cancel(member.ref, force=True)
        _wait_members(job.members, job.members, 5.0)
        settled = all(m.done or m.ref is None for m in job.members)
        note = "; ".join(notes) if len(job.members) > 1 else (notes[0].split(": ", 1)[1] if notes else "never started")
        confirmed = confirmed and settled
        with self._cond:
            if job.state != "done" and (confirmed or lost_reason):
                self._finish(job)
                if lost_reason:
                    self._emit(job.fqid, base.LOST, note=f"{lost_reason}; the other hosts were stopped ({note})",
                               handle=job.handle)
                else:
                    self._emit(job.fqid, base.KILLED, note=note, handle=job.handle)
                    for member in job.members:
                        sf.append_quietly(os.path.join(member.workdir, "status"), sf.KILLED,
                                        f"killed by ganga_like: {note}")
            self._wake = True
            self._cond.notify_all()
        return KillResult(job.fqid, confirmed, note if settled else note + "; a host task did not end")

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
            (ok, killed, note), = self._on_node(member.node_id, "host_kill", [self._target(handle, member, index)], grace)
            confirmed, killed_any = confirmed and ok, killed_any or killed > 0
            notes.append(note)
        note = "; ".join(notes)
        if confirmed and killed_any:
            with self._cond:
                self._emit(handle.fqid, base.KILLED, note=note, handle=handle)
                self._cond.notify_all()
            sf.append_quietly(os.path.join(handle.workdir, "status"), sf.KILLED, f"killed by ganga_like: {note}")
        return KillResult(handle.fqid, confirmed, note)

    # ------------------------------------------------------------------ adopting

    def _adopt_one(self, handle: Handle) -> Event:
        with self._lock:
            job = self._jobs.get(handle.fqid)
            if job is not None:
                kind = base.QUEUED if job.state == "queued" else base.STARTED
                return Event(self._seq, handle.fqid, kind, time.time(), note="already in this actor",
                             detail=job.detail[0], handle=job.handle or handle)
        members = self._foreign_members(handle)
        marker = marker_from_status(handle.workdir)
        if not members or not handle.pid:
            last = sf.last_status(os.path.join(handle.workdir, "status")) if handle.workdir else None
            if last is not None and last.terminal:
                return self._snapshot(handle, *event_from_status(last, None))
            return self._snapshot(handle, base.LOST, None,
                                  "it was still queued when its actor ended; the queue does not survive a restart")
        last = sf.last_status(os.path.join(handle.workdir, "status"))
        if len(members) == 1 and last is not None and last.terminal and not (
                members[0].node_id and self._on_node(members[0].node_id, "host_held",
                                                     [self._target(handle, members[0], 0)])[0]):
            return self._snapshot(handle, *event_from_status(last, None))
        live = []
        for index, member in enumerate(members):
            target = self._target(handle, member, index)
            if member.node_id and self._on_node(member.node_id, "host_held", [target])[0]:
                live.append((member, target))
        if not live:
            job = _Job(None, handle.fqid, handle.workdir, handle.attempt, marker, members=members)
            kind, code, note = self._outcome(job)
            return self._snapshot(handle, kind, code, note)
        job = _Job(None, handle.fqid, handle.workdir, handle.attempt, marker, state="running",
                   members=members, handle=handle)
        with self._cond:
            self._jobs[job.fqid] = job
            for member in members:
                self._busy[member.host] = job
            for member in members:
                match = next((t for m, t in live if m is member), None)
                if match is None:
                    member.done, member.result = True, {"host": member.host, "returncode": None}
                    continue
                member.pid, member.create_time = match[0], match[1]
                member.ref = _remote("host_watch").options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(member.node_id, soft=False)
                ).remote(member.host, match[0], match[1], match[2])
                member.ref.future().add_done_callback(lambda _f, j=job, m=member: self._done_refs.put((j, m)))
            self._cond.notify_all()
        return self._snapshot(handle, base.STARTED, None, "adopted: still running", sch.JOB_RUNNING)

    def _snapshot(self, handle: Handle, kind: str, code: int | None, note: str, detail: str = "") -> Event:
        with self._lock:
            return Event(self._seq, handle.fqid, kind, time.time(), code, note, detail, handle)

    def _foreign_members(self, handle: Handle) -> list[_Member]:
        if not handle.host:
            return []
        inventory = self._inventory if self._inventory.hosts else self._refresh()
        members = []
        for index, host in enumerate(handle.host.split(",")):
            node = inventory.hosts.get(host)
            workdir = handle.workdir if index == 0 else os.path.join(handle.workdir, "hosts", host)
            members.append(_Member(host, node.node_id if node is not None and node.alive else "", workdir))
        return members

    def _target(self, handle: Handle, member: _Member, index: int) -> tuple[int, float, str | None]:
        marker = marker_from_status(member.workdir) or marker_from_status(handle.workdir)
        if index == 0:
            return (handle.pid, handle.create_time, marker)
        return (member.pid, member.create_time, marker)

    # ------------------------------------------------------------------ helpers

    def _reporter(self) -> None:
        if self._self_handle is None:
            try:
                self._self_handle = ray.get_runtime_context().current_actor
            except Exception:  # pragma: no cover - used outside an actor
                self._self_handle = None

    def _refresh(self) -> Inventory:
        inventory = discover(ray.nodes())
        with self._lock:
            # Ray forgets dead nodes after a while; a host once seen stays, as Repair Failed.
            for name, host in self._inventory.hosts.items():
                if name not in inventory.hosts:
                    inventory.hosts[name] = dataclasses.replace(host, alive=False)
            self._inventory = inventory
            for host in inventory.hosts.values():
                if host.alive and host.node_id not in self._agents:
                    strategy = NodeAffinitySchedulingStrategy(host.node_id, soft=False)
                    # Detached and named per node: the next actor (after a restart) finds it ready.
                    self._agents[host.node_id] = _remote("HostAgent").options(
                        scheduling_strategy=strategy, name=f"ganga_like.hostagent.{host.node_id}",
                        lifetime="detached", get_if_exists=True).remote()
                    # Warm a task worker too, so the first subjob on the host starts at once.
                    _remote("host_held").options(scheduling_strategy=strategy).remote([])
                elif not host.alive:
                    self._agents.pop(host.node_id, None)
        return inventory

    def _has_host_resource(self, node_id: str) -> bool:
        return any(h.node_id == node_id and h.name != node_id[:12] for h in self._inventory.hosts.values())

    def _impossible(self, entry: sch.Entry, inventory: Inventory) -> str:
        """Why no host of the cluster, whatever its status, could run ``entry`` ('' if one could)."""
        hosts = [sch.Host(h.name, h.labels) for h in inventory.hosts.values()]
        decided = sch.schedule(hosts, inventory.labels, inventory.groups, [entry])
        wait = decided.wait(entry.key)
        return wait.reason if wait is not None and wait.impossible else ""

    def _notice_dead_nodes(self, inventory: Inventory) -> None:
        """Jobs on a node that died end LOST (the task's own failure usually says so first)."""
        with self._lock:
            victims = {id(j): j for h, j in self._busy.items()
                       if h in inventory.hosts and not inventory.hosts[h].alive and j.state == "running"
                       and j.spec is None}
        for job in victims.values():  # adopted jobs have no task of ours whose failure would tell
            dead = [m.host for m in job.members if not inventory.hosts[m.host].alive]
            self._kill_job(job, 1.0, lost_reason=f"host {dead[0]} died (its Ray node is gone)")

    def _scheduler_status(self, host: NodeHost) -> str:
        if not host.alive:
            return sch.REPAIR_FAILED
        job = self._busy.get(host.name)
        if job is None:
            return sch.READY
        return {"verifying": sch.VERIFYING, "starting": sch.VERIFYING, "gathering": sch.CLEANING}.get(job.state, sch.RUNNING)

    def _host_status(self, host: NodeHost) -> str:
        status = self._scheduler_status(host)
        if status == sch.READY and host.name in self._held:
            return sch.PENDING
        return status

    def _state(self, fqid: str) -> str:
        job = self._jobs.get(fqid)
        return job.state if job is not None else ""

    def _member_workdir(self, job: _Job, index: int, host: str) -> str:
        return job.workdir if index == 0 else os.path.join(job.workdir, "hosts", host)

    def _on_node_async(self, node_id: str, name: str, *args: Any) -> Any:
        with self._lock:
            agent = self._agents.get(node_id)
        if agent is None:
            self._refresh()
            with self._lock:
                agent = self._agents[node_id]
        return getattr(agent, name).remote(*args)

    def _on_node(self, node_id: str, name: str, *args: Any) -> Any:
        return ray.get(self._on_node_async(node_id, name, *args), timeout=CONTROL_TIMEOUT)

    def _set_detail(self, job: _Job, detail: str, reason: str) -> None:
        """(lock held) A DETAIL event when the Autotest job status or its reason changes."""
        if job.detail != (detail, reason):
            job.detail = (detail, reason)
            self._emit(job.fqid, base.DETAIL, detail=detail, note=reason, handle=job.handle)

    def _emit(self, fqid: str, kind: str, exit_code: int | None = None, note: str = "", detail: str = "",
              handle: Handle | None = None) -> None:
        self._seq += 1
        self._events.append(Event(self._seq, fqid, kind, time.time(), exit_code, note, detail, handle))

    def _release_hosts(self, job: _Job) -> None:
        for host in job.hosts:
            if self._busy.get(host) is job:
                del self._busy[host]
        if job.pg is not None:
            from ray.util.placement_group import remove_placement_group

            try:
                remove_placement_group(job.pg)
            except Exception:  # pragma: no cover - already gone with its node
                pass
            job.pg = None

    def _finish(self, job: _Job) -> None:
        """(lock held) Release its hosts and forget it."""
        job.state = "done"
        self._release_hosts(job)
        if self._jobs.get(job.fqid) is job:
            del self._jobs[job.fqid]


def _wait_members(all_members: list[_Member], members: list[_Member], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(m.ref is not None and not m.done for m in members) and time.monotonic() < deadline:
        time.sleep(0.02)


def _task_id(ref: Any) -> str:
    try:
        return ref.task_id().hex()
    except Exception:  # pragma: no cover
        return ""


def _reason(host: str, error: BaseException) -> str:
    text = str(error).strip().splitlines()
    name = type(error).__name__
    if "NodeDied" in name or "node" in " ".join(text[:3]).lower() and "died" in " ".join(text[:3]).lower():
        return f"host {host} died: {name}"
    return f"on host {host}: {name}: {text[0] if text else ''}"[:300]



def start_hosts_actor(name: str | None = None, max_concurrency_slots: int = 32, *, max_running: int | None = None,
                      namespace: str | None = None, get_if_exists: bool = False, **actor_options: Any):
    """Create a threaded Ray actor running :class:`HostsActor` (``num_cpus=0``); return its handle.

    The actor is placed on the caller's node (hard affinity): it must not die with
    one of the hosts it schedules onto.
    """
    # base.actor_options pins it to the driver's node: it lives and dies with its
    # driver, never with one of the hosts it schedules onto.
    options = base.actor_options(max_concurrency_slots, name, namespace, None, get_if_exists,
                                 **actor_options)
    return ray.remote(HostsActor).options(**options).remote(max_running=max_running)
