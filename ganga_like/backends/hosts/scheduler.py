"""The Hosts scheduler, the Autotest way: pure rules, no Ray, no I/O.

Words as an Autotest user knows them (see the seeds "Job and Host Statuses" and
"Advanced Job Scheduling"):

* a *host* has labels and a status (Ready, Pending, Verifying, Running,
  Cleaning, Repair Failed) and may be *locked* (never scheduled); the actor
  derives a host's status from the run using it (there is no second state
  machine to keep in step with the runs');
* a *label* may be *only if needed*: its hosts are not eligible for metahost
  entries unless the job's dependency labels include that label or the
  metahost is that label; they stay usable when named explicitly;
* a label may be an *instance of an atomic group* (label "rack #1" of atomic
  group "rack"): its hosts are never used by regular jobs;
* an *atomic group* has a "max number of machines";
* a pending *entry* (one job, here one subjob) asks for explicit hosts, or a
  *metahost* ("run on any <label>"), or one instance of an atomic group, with
  *dependency labels* and a *synch count*.

:func:`schedule` makes one round of decisions, oldest entry first:

* a regular entry needs exactly ``synch_count`` hosts. A synchronous entry
  (synch count above 1) that finds some but not all of them ready waits in
  *Pending* and holds the ready ones for this round (host status Pending), so
  newer entries cannot starve it; holds are recomputed every round.
* an atomic entry takes ONE instance of its group whose ready hosts number at
  least ``synch_count``, and uses all of them up to the group's
  ``max_machines``; otherwise it waits in *Queued*, holding nothing.
* an entry that no host could ever satisfy (unknown host, too few hosts with
  the label, a regular job naming an atomic-group host, ...) is reported as a
  wait with ``impossible=True``: the caller refuses it rather than queueing it
  forever.
* "Scheduling a new job against a Repair Failed host resets it to Ready": an
  entry naming such a host explicitly resets it (``Round.resets``) and may use it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from ganga_like.backends.runtime import runs as rs

# ---------------------------------------------------------------------- host statuses

READY = "Ready"
PENDING = "Pending"
VERIFYING = "Verifying"
RUNNING = "Running"
CLEANING = "Cleaning"
REPAIR_FAILED = "Repair Failed"

HOST_STATUSES = (READY, PENDING, VERIFYING, RUNNING, CLEANING, REPAIR_FAILED)
FREE_STATUSES = (READY, PENDING)  # a Pending host is only held for this round's decision

# ---------------------------------------------------------------------- job statuses (backend detail)
# Autotest's job statuses are a subjob's backend detail: the words of the one table
# of them (``ganga_like.backends.runtime.runs.DETAILS``), by Autotest's names.

QUEUED = rs.QUEUED_DETAIL  # waiting for hosts to become ready, or not yet picked up
JOB_PENDING = rs.PENDING_DETAIL  # has some of its hosts, waits for the others (synchronous job)
JOB_VERIFYING = rs.VERIFYING_DETAIL  # hosts chosen, being checked / reserved together
STARTING = rs.STARTING_DETAIL  # about to start
JOB_RUNNING = rs.RUNNING_DETAIL
GATHERING = rs.GATHERING_DETAIL  # the payload ended; collecting results, checking the hosts are clean

# ---------------------------------------------------------------------- inputs


@dataclasses.dataclass(frozen=True)
class Host:
    name: str
    labels: frozenset[str] = frozenset()
    status: str = READY
    locked: bool = False

    @property
    def free(self) -> bool:
        return self.status in FREE_STATUSES and not self.locked


@dataclasses.dataclass(frozen=True)
class Label:
    name: str
    only_if_needed: bool = False
    atomic_group: str | None = None  # this label is an instance of that atomic group


@dataclasses.dataclass(frozen=True)
class AtomicGroup:
    name: str
    max_machines: int | None = None  # None: no ceiling


@dataclasses.dataclass(frozen=True)
class Entry:
    """One pending job (a subjob here). ``key`` identifies it in the answer."""

    key: str
    hosts: tuple[str, ...] = ()  # explicit hosts: candidates named by the user
    metahost: str | None = None  # "run on any <label>"; with atomic_group: a chosen instance
    dependencies: frozenset[str] = frozenset()
    atomic_group: str | None = None  # run against one instance of this atomic group
    synch_count: int = 1


# ---------------------------------------------------------------------- outputs


@dataclasses.dataclass(frozen=True)
class Assignment:
    key: str
    hosts: tuple[str, ...]
    instance: str | None = None  # the atomic group instance (label) used, if any


@dataclasses.dataclass(frozen=True)
class Wait:
    key: str
    status: str  # QUEUED or JOB_PENDING
    reason: str
    held: tuple[str, ...] = ()  # hosts this entry holds (status Pending) this round
    impossible: bool = False  # no host, whatever its status, could ever satisfy it


@dataclasses.dataclass(frozen=True)
class Round:
    assignments: tuple[Assignment, ...] = ()
    waits: tuple[Wait, ...] = ()
    resets: tuple[str, ...] = ()  # Repair Failed hosts reset to Ready by an explicit entry

    def assignment(self, key: str) -> Assignment | None:
        return next((a for a in self.assignments if a.key == key), None)

    def wait(self, key: str) -> Wait | None:
        return next((w for w in self.waits if w.key == key), None)

    @property
    def held(self) -> dict[str, str]:
        """host -> key of the entry holding it (host status Pending)."""
        return {host: w.key for w in self.waits for host in w.held}


# ---------------------------------------------------------------------- the round


class _Inventory:
    """The hosts and label definitions of one round, and what this round has taken."""

    def __init__(self, hosts: Iterable[Host], labels: Mapping[str, Label], groups: Mapping[str, AtomicGroup]):
        self.hosts = {h.name: h for h in sorted(hosts, key=lambda h: h.name)}
        self.labels = dict(labels)
        self.groups = dict(groups)
        self.taken: set[str] = set()
        self.resets: list[str] = []

    def atomic_instances(self, host: Host) -> list[str]:
        return sorted(l for l in host.labels if self._label(l).atomic_group is not None)

    def only_if_needed(self, host: Host) -> list[str]:
        return sorted(l for l in host.labels if self._label(l).only_if_needed)

    def _label(self, name: str) -> Label:
        return self.labels.get(name) or Label(name)

    def available(self, host: Host) -> bool:
        return host.free and host.name not in self.taken


def schedule(
    hosts: Iterable[Host],
    labels: Iterable[Label] | Mapping[str, Label],
    groups: Iterable[AtomicGroup] | Mapping[str, AtomicGroup],
    entries: Sequence[Entry],
) -> Round:
    """One round: assign hosts to ``entries`` (oldest first); see the module doc."""
    label_map = labels if isinstance(labels, Mapping) else {l.name: l for l in labels}
    group_map = groups if isinstance(groups, Mapping) else {g.name: g for g in groups}
    inv = _Inventory(hosts, label_map, group_map)
    assignments: list[Assignment] = []
    waits: list[Wait] = []
    for entry in entries:
        if entry.atomic_group:
            decision = _schedule_atomic(inv, entry)
        else:
            decision = _schedule_regular(inv, entry)
        if isinstance(decision, Assignment):
            inv.taken.update(decision.hosts)
            assignments.append(decision)
        else:
            inv.taken.update(decision.held)
            waits.append(decision)
    return Round(tuple(assignments), tuple(waits), tuple(inv.resets))


def eligible_for_metahost(inv_labels: Mapping[str, Label], host: Host, entry: Entry) -> bool:
    """The "only if needed" rule for one host and one metahost (or label-less) entry."""
    for name in host.labels:
        label = inv_labels.get(name)
        if (label is not None and label.only_if_needed
                and name not in entry.dependencies and name != entry.metahost):
            return False
    return True


def _schedule_regular(inv: _Inventory, entry: Entry) -> Assignment | Wait:
    need = max(1, entry.synch_count)
    if entry.hosts:
        candidates, problem = _explicit_candidates(inv, entry)
        what = "of the named hosts " + ", ".join(entry.hosts)
    else:
        candidates, problem = _metahost_candidates(inv, entry), ""
        what = f"hosts labelled {entry.metahost}" if entry.metahost else "hosts"
        if entry.dependencies:
            what += " with " + ", ".join(sorted(entry.dependencies))
    if problem:
        return Wait(entry.key, QUEUED, problem, impossible=True)
    if len(candidates) < need:
        return Wait(entry.key, QUEUED, f"needs {need} {what}; only {len(candidates)} exist (eligible)",
                    impossible=True)
    if entry.hosts:
        for host in candidates:
            if host.status == REPAIR_FAILED and not host.locked and host.name not in inv.taken:
                inv.resets.append(host.name)  # scheduling against it resets it to Ready
                inv.hosts[host.name] = host = dataclasses.replace(host, status=READY)
        candidates = [inv.hosts[h.name] for h in candidates]
    ready = [h for h in candidates if inv.available(h)]
    if len(ready) >= need:
        return Assignment(entry.key, tuple(h.name for h in ready[:need]))
    if need > 1 and ready:
        return Wait(entry.key, JOB_PENDING,
                    f"synchronous job: {len(ready)} of {need} {what} ready, waiting for the others",
                    held=tuple(h.name for h in ready))
    return Wait(entry.key, QUEUED, f"waiting for {need} ready {what} ({_busy(inv, candidates)})")


def _explicit_candidates(inv: _Inventory, entry: Entry) -> tuple[list[Host], str]:
    candidates = []
    for name in dict.fromkeys(entry.hosts):
        host = inv.hosts.get(name)
        if host is None:
            return [], f"unknown host {name!r}; known: {', '.join(inv.hosts) or 'none'}"
        instances = inv.atomic_instances(host)
        if instances:
            return [], (f"host {name} belongs to atomic group instance {instances[0]}: "
                        f"regular jobs cannot use it (use atomic_group=...)")
        missing = sorted(entry.dependencies - host.labels)
        if missing:
            return [], f"host {name} lacks the dependency label(s) {', '.join(missing)}"
        if entry.metahost and entry.metahost not in host.labels:
            return [], f"host {name} does not have the label {entry.metahost}"
        candidates.append(host)
    return candidates, ""


def _metahost_candidates(inv: _Inventory, entry: Entry) -> list[Host]:
    found = []
    for host in inv.hosts.values():
        if entry.metahost and entry.metahost not in host.labels:
            continue
        if inv.atomic_instances(host):
            continue  # atomic group hosts are reserved for atomic jobs
        if not entry.dependencies <= host.labels:
            continue
        if not eligible_for_metahost(inv.labels, host, entry):
            continue
        found.append(host)
    return found


def _schedule_atomic(inv: _Inventory, entry: Entry) -> Assignment | Wait:
    group_name = entry.atomic_group or ""
    group = inv.groups.get(group_name)
    if group is None:
        return Wait(entry.key, QUEUED, f"unknown atomic group {group_name!r}; known: "
                    f"{', '.join(sorted(inv.groups)) or 'none'}", impossible=True)
    need = max(1, entry.synch_count)
    if group.max_machines is not None and group.max_machines < need:
        return Wait(entry.key, QUEUED, f"synch count {need} is above atomic group {group_name}'s "
                    f"max number of machines {group.max_machines}", impossible=True)
    instances = sorted(l.name for l in inv.labels.values() if l.atomic_group == group_name)
    if entry.metahost:
        if entry.metahost not in instances:
            return Wait(entry.key, QUEUED, f"label {entry.metahost} is not an instance of atomic group "
                        f"{group_name} (instances: {', '.join(instances) or 'none'})", impossible=True)
        instances = [entry.metahost]
    best = ("", 0)
    feasible = False
    for instance in instances:
        members = [h for h in inv.hosts.values() if instance in h.labels and entry.dependencies <= h.labels]
        feasible = feasible or len(members) >= need
        ready = [h for h in members if inv.available(h)]
        if len(ready) >= need:
            use = ready if group.max_machines is None else ready[: group.max_machines]
            return Assignment(entry.key, tuple(h.name for h in use), instance)
        if len(ready) > best[1] or not best[0]:
            best = (instance, len(ready))
    if not feasible:
        return Wait(entry.key, QUEUED, f"no instance of atomic group {group_name} has {need} hosts"
                    + (f" with {', '.join(sorted(entry.dependencies))}" if entry.dependencies else ""),
                    impossible=True)
    return Wait(entry.key, QUEUED, f"no instance of atomic group {group_name} has {need} ready hosts "
                f"(best: {best[0]} with {best[1]})")


def _busy(inv: _Inventory, candidates: Sequence[Host]) -> str:
    counts: dict[str, int] = {}
    for host in candidates:
        state = "held or taken" if host.name in inv.taken else ("locked" if host.locked else host.status)
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
