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
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from ganga_like.backends.hosts import host_states as hs
from ganga_like.backends.hosts import why
from ganga_like.backends.runtime import runs as rs

# ---------------------------------------------------------------------- host statuses
# The one table of them is ``host_states`` (the actor moves hosts through it).

READY = hs.READY
PENDING = hs.PENDING
VERIFYING = hs.VERIFYING
RUNNING = hs.RUNNING
CLEANING = hs.CLEANING
REPAIRING = hs.REPAIRING
REPAIR_FAILED = hs.REPAIR_FAILED
HOST_STATUSES = hs.HOST_STATUSES
FREE_STATUSES = hs.FREE_STATUSES

# ---------------------------------------------------------------------- job statuses (backend detail)
# Autotest's job statuses, and the reasons a subjob waits, are a subjob's backend detail:
# the words of the one table of them (``ganga_like.backends.runtime.runs.DETAILS``).

QUEUED = rs.QUEUED_DETAIL  # not yet picked up by the scheduler
HOSTS_NOT_READY = rs.HOSTS_NOT_READY_DETAIL  # hosts that could run it exist; too few are Ready
GROUP_TOO_SMALL = rs.GROUP_TOO_SMALL_DETAIL  # atomic: too few Ready hosts in any instance, or waits for more
JOB_PENDING = rs.PENDING_DETAIL  # has some of its hosts, waits for the others (synchronous job)
WAIT_DETAILS = (HOSTS_NOT_READY, GROUP_TOO_SMALL, JOB_PENDING)
JOB_VERIFYING = rs.VERIFYING_DETAIL  # hosts chosen, being cleaned / checked / reserved together
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
    holder: str = ""  # the subjob it is given to or held for ('' none): named in wait notes

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
    """One pending job (a subjob here). ``key`` identifies it in the answer (its fqid)."""

    key: str
    hosts: tuple[str, ...] = ()  # explicit hosts: candidates named by the user
    metahost: str | None = None  # "run on any <label>"; with atomic_group: a chosen instance
    dependencies: frozenset[str] = frozenset()
    atomic_group: str | None = None  # run against one instance of this atomic group
    synch_count: int = 1
    group_wait: float = 0.0  # atomic: seconds it may wait for more than synch_count hosts
    since: float = 0.0  # when it was queued (the caller's clock; ``schedule``'s ``now``)
    fits: frozenset[str] | None = None  # hosts big enough for its resources (None: any)
    needs: str = ""  # those resources, said ("1 CPU, 2 GPUs"), for notes

    @property
    def request(self) -> tuple:
        """What it asks for, without who asks: entries alike are decided alike."""
        return (self.hosts, self.metahost, self.dependencies, self.atomic_group, self.synch_count,
                self.fits)


def id_order(key: str) -> tuple:
    """A subjob's place in the queue: its id's parts compared in turn, numbers as numbers.
    Ids are handed out in submission order, so this is submission order ("10.2" after
    "9.11"), whether or not a site pads its ids with zeros."""
    try:
        return (0, *map(int, key.split(".")))  # the usual id: numbers only (fast)
    except ValueError:
        return (1, *((0, int(part), "") if part.isdigit() else (1, 0, part) for part in key.split(".")))


# ---------------------------------------------------------------------- outputs


class Assignment(NamedTuple):  # NamedTuples: a round makes one per waiting subjob (10,000)
    key: str
    hosts: tuple[str, ...]
    instance: str | None = None  # the atomic group instance (label) used, if any


class Wait(NamedTuple):
    key: str
    status: str  # the backend detail: one of WAIT_DETAILS, or QUEUED when impossible
    reason: str  # one line, with counts ("of 5 hosts: 2 lack label gpu, ...")
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
    """The hosts and label definitions of one round, and what this round has taken.

    ``version`` rises whenever a host is taken or reset: a decision made for one entry
    holds for the next entry asking the same at the same version (10,000 waiting subjobs
    of one job cost one decision, not 10,000).
    """

    def __init__(self, hosts: Iterable[Host], labels: Mapping[str, Label], groups: Mapping[str, AtomicGroup]):
        self.hosts = {h.name: h for h in sorted(hosts, key=lambda h: h.name)}
        self.labels = dict(labels)
        self.groups = dict(groups)
        self.taken: dict[str, str] = {}  # host -> the key of the entry that took or holds it
        self.resets: list[str] = []
        self.version = 0
        self.candidates: dict[tuple, tuple[list[Host], str]] = {}  # request -> (hosts, problem)
        self.looks: dict[tuple, tuple[int, list[_Instance]]] = {}  # request -> (version, instances)
        self._instances: dict[str, list[str]] = {}

    def atomic_instances(self, host: Host) -> list[str]:
        return sorted(l for l in host.labels if self._label(l).atomic_group is not None)

    def only_if_needed(self, host: Host) -> list[str]:
        return sorted(l for l in host.labels if self._label(l).only_if_needed)

    def _label(self, name: str) -> Label:
        return self.labels.get(name) or Label(name)

    def available(self, host: why.HostView) -> bool:
        return host.status in FREE_STATUSES and not host.locked and host.name not in self.taken

    def take(self, key: str, hosts: Iterable[str]) -> None:
        for host in hosts:
            self.taken[host] = key
            self.version += 1

    def instances_of(self, group: str) -> list[str]:
        """The labels that are instances of an atomic group, by name."""
        found = self._instances.get(group)
        if found is None:
            found = self._instances[group] = sorted(
                l.name for l in self.labels.values() if l.atomic_group == group)
        return found

    def holder(self, host: why.HostView) -> str:
        return self.taken.get(host.name) or host.holder


def schedule(
    hosts: Iterable[Host],
    labels: Iterable[Label] | Mapping[str, Label],
    groups: Iterable[AtomicGroup] | Mapping[str, AtomicGroup],
    entries: Sequence[Entry],
    now: float = 0.0,
) -> Round:
    """One round: assign hosts to ``entries`` in the order of their ids (:func:`id_order`);
    ``now`` on the clock of the entries' ``since``. See the module doc."""
    label_map = labels if isinstance(labels, Mapping) else {l.name: l for l in labels}
    group_map = groups if isinstance(groups, Mapping) else {g.name: g for g in groups}
    inv = _Inventory(hosts, label_map, group_map)
    assignments: list[Assignment] = []
    waits: list[Wait] = []
    alike: dict[tuple, tuple[int, Wait]] = {}  # request -> (version, the wait decided for it)
    for entry in sorted(entries, key=lambda e: id_order(e.key)):
        known = alike.get(entry.request)
        if known is not None and known[0] == inv.version:
            same = known[1]
            waits.append(Wait(entry.key, same.status, same.reason, same.held, same.impossible))
            continue
        decision = _decide(inv, entry, now)
        if isinstance(decision, Assignment):
            inv.take(entry.key, decision.hosts)
            assignments.append(decision)
            continue
        inv.take(entry.key, decision.held)
        waits.append(decision)
        if not decision.held and not (entry.atomic_group and entry.group_wait):
            alike[entry.request] = (inv.version, decision)
    return Round(tuple(assignments), tuple(waits), tuple(inv.resets))


def _decide(inv: _Inventory, entry: Entry, now: float) -> Assignment | Wait:
    if entry.atomic_group:
        return _schedule_atomic(inv, entry, now)
    return _schedule_regular(inv, entry)


def eligible_for_metahost(inv_labels: Mapping[str, Label], host: Host, entry: Entry) -> bool:
    """The "only if needed" rule for one host and one metahost (or label-less) entry."""
    return not _needless(inv_labels, host, entry)


def _needless(inv_labels: Mapping[str, Label], host: Host, entry: Entry) -> str:
    """The host's "only if needed" label that keeps it from this entry ('' if none does)."""
    for name in sorted(host.labels):
        label = inv_labels.get(name)
        if (label is not None and label.only_if_needed
                and name not in entry.dependencies and name != entry.metahost):
            return name
    return ""


def _schedule_regular(inv: _Inventory, entry: Entry) -> Assignment | Wait:
    need = max(1, entry.synch_count)
    candidates, problem = _candidates(inv, entry)
    if problem:
        return Wait(entry.key, QUEUED, problem, impossible=True)
    if len(candidates) < need:
        return Wait(entry.key, QUEUED, f"needs {need} {_what(entry)}; only {len(candidates)} exist "
                    f"({why.counts(inv, entry, inv.hosts.values())})", impossible=True)
    if entry.hosts:
        for host in candidates:
            if host.status == REPAIR_FAILED and not host.locked and host.name not in inv.taken:
                inv.resets.append(host.name)  # scheduling against it resets it to Ready
                inv.hosts[host.name] = dataclasses.replace(host, status=READY)
                inv.version += 1
        candidates = [inv.hosts[h.name] for h in candidates]
    ready = [h for h in candidates if inv.available(h)]
    if len(ready) >= need:
        return Assignment(entry.key, tuple(h.name for h in ready[:need]))
    scope = candidates if entry.hosts else inv.hosts.values()
    note = f"needs {need} Ready {_what(entry)}, {len(ready)} Ready; {why.counts(inv, entry, scope)}"
    if need > 1 and ready:
        return Wait(entry.key, JOB_PENDING, "synchronous: holds " + ", ".join(h.name for h in ready)
                    + "; " + note, held=tuple(h.name for h in ready))
    return Wait(entry.key, HOSTS_NOT_READY, note)


def _what(entry: Entry) -> str:
    if entry.hosts:
        return "of the named hosts " + ", ".join(entry.hosts)
    what = f"hosts labelled {entry.metahost}" if entry.metahost else "hosts"
    return what + (" with " + ", ".join(sorted(entry.dependencies)) if entry.dependencies else "")


def _candidates(inv: _Inventory, entry: Entry) -> tuple[list[Host], str]:
    """The hosts that could ever serve a regular entry (whatever their status), or why none
    can; the same for every entry asking the same, so computed once per round."""
    known = inv.candidates.get(entry.request)
    if known is None:
        known = _explicit_candidates(inv, entry) if entry.hosts else (_metahost_candidates(inv, entry), "")
        inv.candidates[entry.request] = known
    return known


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
        if entry.fits is not None and name not in entry.fits:
            return [], f"host {name} could never hold {entry.needs}"
        candidates.append(host)
    return candidates, ""


def _metahost_candidates(inv: _Inventory, entry: Entry) -> list[Host]:
    return [host for host in inv.hosts.values() if not why.unfit(inv, entry, host)]


def _schedule_atomic(inv: _Inventory, entry: Entry, now: float) -> Assignment | Wait:
    group_name = entry.atomic_group or ""
    group = inv.groups.get(group_name)
    if group is None:
        return Wait(entry.key, QUEUED, f"unknown atomic group {group_name!r}; known: "
                    f"{', '.join(sorted(inv.groups)) or 'none'}", impossible=True)
    if entry.hosts:
        return Wait(entry.key, QUEUED, f"hosts=[...] cannot be given with atomic_group={group_name!r}: "
                    "the scheduler picks the hosts of one instance (name it with label=...)", impossible=True)
    need = max(1, entry.synch_count)
    if group.max_machines is not None and group.max_machines < need:
        return Wait(entry.key, QUEUED, f"synch count {need} is above atomic group {group_name}'s "
                    f"max number of machines {group.max_machines}", impossible=True)
    instances = inv.instances_of(group_name)
    if entry.metahost:
        if entry.metahost not in instances:
            return Wait(entry.key, QUEUED, f"label {entry.metahost} is not an instance of atomic group "
                        f"{group_name} (instances: {', '.join(instances) or 'none'})", impossible=True)
        instances = [entry.metahost]
    known = inv.looks.get(entry.request)
    if known is None or known[0] != inv.version:  # entries alike see the instances alike
        known = inv.version, [_Instance.look(inv, entry, group, name) for name in instances]
        inv.looks[entry.request] = known
    looks = known[1]
    if not any(len(look.members) >= need for look in looks):
        return Wait(entry.key, QUEUED, f"no instance of atomic group {group_name} has {need} hosts"
                    + (f" with {', '.join(sorted(entry.dependencies))}" if entry.dependencies else ""),
                    impossible=True)
    # The instance with the most Ready hosts; among equals, the one that needs the fewest more.
    usable = [look for look in looks if len(look.ready) >= need]
    if usable:
        best = max(usable, key=lambda look: (len(look.ready), -look.target))
        left = entry.group_wait - (now - entry.since)
        if len(best.ready) < best.target and left > 0:
            # Told in whole seconds, in tens past a minute: a note that changes is a new event.
            seconds = math.ceil(left) if left <= 60 else 10 * math.ceil(left / 10)
            return Wait(entry.key, GROUP_TOO_SMALL, f"group {best.name}: {len(best.ready)} of "
                        f"{best.target} hosts Ready, waiting up to {seconds} s more for the others",
                        held=tuple(h.name for h in best.ready))
        return Assignment(entry.key, tuple(h.name for h in best.ready[:best.target]), best.name)
    shown = "; ".join(f"group {look.name}: {len(look.ready)} of {len(look.members)} hosts Ready"
                      + (f" ({look.why})" if look.why else "") for look in looks[:4])
    more = f"; {len(looks) - 4} more instances" if len(looks) > 4 else ""
    return Wait(entry.key, GROUP_TOO_SMALL, f"needs {need} Ready hosts of one instance; {shown}{more}")


@dataclasses.dataclass
class _Instance:
    """One instance of an atomic group as an entry sees it this round."""

    name: str
    members: list[Host]
    ready: list[Host]
    target: int  # how many hosts the entry would use: all members, up to the group's maximum
    why: str  # the counts of its hosts that are not Ready

    @classmethod
    def look(cls, inv: _Inventory, entry: Entry, group: AtomicGroup, name: str) -> _Instance:
        members = [h for h in inv.hosts.values() if name in h.labels and entry.dependencies <= h.labels
                   and (entry.fits is None or h.name in entry.fits)]
        ready = [h for h in members if inv.available(h)]
        target = len(members) if group.max_machines is None else min(len(members), group.max_machines)
        busy = [h for h in members if not inv.available(h)]
        return cls(name, members, ready, target, why.counts(inv, entry, busy, total=False) if busy else "")

