"""The Hosts backend's inventory: hosts, labels and atomic groups read from Ray's nodes.

Pure: :func:`discover` reads what ``ray.nodes()`` returns and :func:`entry_for`
turns a subjob's request into the scheduler's entry; nothing here talks to Ray.
A node describes itself with custom resources (``ray start --resources`` or
``Cluster.add_node(resources=...)``):

==============================  ============================================================
``host:<name>``                 the host's name (else the first 12 hex digits of its node id)
``label:<name>``                the host has label ``<name>``
``only_if_needed:<name>``       the host has label ``<name>`` and that label is "only if needed"
                                (one node declaring it makes the label only-if-needed)
``atomic:<group>:<instance>``   the host has label ``<instance>``, an instance of atomic group
                                ``<group>``; the resource's amount is the group's max number
                                of machines (the smallest amount any node gives; 0: no ceiling)
``protection:<word>``           the host's protection (``host_states.PROTECTIONS``: none,
                                repair_software_only, repair_filesystem_only, do_not_repair,
                                do_not_verify); none given: No protection
==============================  ============================================================

Explicit hosts are named by that name, by node id, or by ``node:<ip>`` (where the
ip is unique in the cluster).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ganga_like.backends import resources as rq
from ganga_like.backends.base import SubjobSpec
from ganga_like.backends.hosts import host_states as hs
from ganga_like.backends.hosts import scheduler as sch

HOST_PREFIX = "host:"
LABEL_PREFIX = "label:"
ONLY_IF_NEEDED_PREFIX = "only_if_needed:"
ATOMIC_PREFIX = "atomic:"
PROTECTION_PREFIX = "protection:"


@dataclasses.dataclass(frozen=True)
class NodeHost:
    name: str
    node_id: str
    alive: bool
    labels: frozenset[str]
    ip: str = ""
    protection: str = hs.NO_PROTECTION
    problem: str = ""  # what is wrong with how the node describes itself ('' nothing)
    capacity: rq.Capacity = rq.Capacity("")  # what the node has: CPUs, GPUs (Ray's logical ones), ...


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
                   if (len(name) >= 8 and h.node_id.startswith(name))
                   or (name.startswith("node:") and h.ip == name[5:])]
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
        if not resources and not node.get("Alive"):
            continue  # Ray forgets a dead node's resources: nothing names it (it is not listed twice)
        name, node_labels, protection, problem = "", set(), hs.NO_PROTECTION, ""
        for key, amount in resources.items():
            if key.startswith(PROTECTION_PREFIX):
                word = key[len(PROTECTION_PREFIX):]
                protection = hs.PROTECTION_OF_WORD.get(word, hs.NO_PROTECTION)
                if word not in hs.PROTECTION_OF_WORD:
                    problem = (f"unknown protection {word!r} (taken as No protection); known: "
                               f"{', '.join(hs.PROTECTION_OF_WORD)}")
            elif key.startswith(HOST_PREFIX):
                name = key[len(HOST_PREFIX):]
            elif key.startswith(LABEL_PREFIX):
                node_labels.add(key[len(LABEL_PREFIX):])
            elif key.startswith(ONLY_IF_NEEDED_PREFIX):
                node_labels.add(key[len(ONLY_IF_NEEDED_PREFIX):])
                only_if_needed.add(key[len(ONLY_IF_NEEDED_PREFIX):])
            elif key.startswith(ATOMIC_PREFIX) and key.count(":") >= 2:
                group, instance = key[len(ATOMIC_PREFIX):].split(":", 1)
                node_labels.add(instance)
                instance_of[instance] = group
                ceilings[group] = min(ceilings.get(group, amount), amount)
        host = NodeHost(name or node_id[:12], node_id, bool(node.get("Alive")), frozenset(node_labels),
                        node.get("NodeManagerAddress", ""), protection, problem,
                        capacity_of(f"host {name or node_id[:12]}", resources))
        old = hosts.get(host.name)
        if old is None or (host.alive and not old.alive):  # a restarted node replaces its dead self
            hosts[host.name] = host
    ips = collections.Counter(h.ip for h in hosts.values())
    hosts = {n: h if ips[h.ip] == 1 else dataclasses.replace(h, ip="") for n, h in hosts.items()}
    names = {l for h in hosts.values() for l in h.labels}
    labels = {n: sch.Label(n, n in only_if_needed, instance_of.get(n)) for n in names}
    groups = {g: sch.AtomicGroup(g, int(c) if c >= 1 else None) for g, c in ceilings.items()}
    return Inventory(hosts, labels, groups)


_RAY_OWN = ("CPU", "GPU", "memory", "object_store_memory")
# Resources that describe a node (its name, labels, ...), not what a subjob may ask for.
_DESCRIBING = ("node:", HOST_PREFIX, LABEL_PREFIX, ONLY_IF_NEEDED_PREFIX, ATOMIC_PREFIX, PROTECTION_PREFIX)


def capacity_of(name: str, resources: Mapping[str, float]) -> rq.Capacity:
    """What a node has in all, from its Ray resources: a host is given whole to one subjob
    at a time, so a request fits a host when this could hold it."""
    custom = tuple(sorted((k, float(v)) for k, v in resources.items()
                          if k not in _RAY_OWN and not k.startswith(_DESCRIBING)))
    return rq.Capacity(name, float(resources.get("CPU", 0)), tuple(range(int(resources.get("GPU", 0)))),
                       float(resources["memory"]) / rq.BYTES_PER_MB if "memory" in resources else None,
                       custom)


def fitting(request: rq.Request, inventory: Inventory) -> frozenset[str] | None:
    """The hosts whose node could hold ``request`` (None: the default request, any host)."""
    if request == rq.Request():
        return None
    return frozenset(h.name for h in inventory.hosts.values() if not rq.shortfalls(request, h.capacity))


def entry_for(spec: SubjobSpec, inventory: Inventory, since: float = 0.0,
              fits: frozenset[str] | None = None) -> sch.Entry:
    """The scheduler's entry for a subjob, from ``spec.options`` (``Hosts.request()``),
    queued at ``since`` (the actor's monotonic clock)."""
    options = spec.options or {}
    return sch.Entry(
        key=spec.fqid,
        hosts=tuple(inventory.resolve(h) for h in options.get("hosts") or ()),
        metahost=options.get("label") or None,
        dependencies=frozenset(options.get("dependencies") or ()),
        atomic_group=options.get("atomic_group") or None,
        synch_count=int(options.get("synch_count") or 1),
        group_wait=float(options.get("group_wait") or 0.0),
        since=since,
        fits=fits,
        needs="" if fits is None else spec.request.describe(),
    )


def impossible(entry: sch.Entry, inventory: Inventory) -> str:
    """Why no host of the cluster, whatever its status, could run ``entry`` ('' if one could)."""
    hosts = [sch.Host(h.name, h.labels) for h in inventory.hosts.values()]
    wait = sch.schedule(hosts, inventory.labels, inventory.groups, [entry]).wait(entry.key)
    return wait.reason if wait is not None and wait.impossible else ""
