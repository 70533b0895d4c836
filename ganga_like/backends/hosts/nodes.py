"""The Hosts backend's view of the cluster: its nodes as hosts, and an agent on each.

:class:`Nodes` keeps the last inventory (a host once seen stays, as Repair Failed,
after Ray forgets its dead node) and one :class:`~ganga_like.backends.hosts.agent.HostAgent`
per live node, through which kills, checks and finds run there.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ganga_like.backends.hosts.agent import remote
from ganga_like.backends.hosts.inventory import Inventory, discover

CONTROL_TIMEOUT = 30.0  # seconds for a kill / held / find call on one node


class Nodes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inventory = Inventory({}, {}, {})
        self._agents: dict[str, Any] = {}  # node id -> HostAgent

    def refresh(self) -> Inventory:
        """Read the cluster's nodes again; start an agent on each new live node."""
        inventory = discover(ray.nodes())
        with self._lock:
            named = {h.node_id: n for n, h in self.inventory.hosts.items()}
            for name, host in list(inventory.hosts.items()):
                # Ray may describe a dead node without its resources: it would come back
                # named by its node id, beside its host name. Each host is listed once.
                if not host.alive and named.get(host.node_id, name) != name:
                    del inventory.hosts[name]
            for name, host in self.inventory.hosts.items():
                if name not in inventory.hosts:
                    inventory.hosts[name] = dataclasses.replace(host, alive=False)
            self.inventory = inventory
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

    def known(self) -> Inventory:
        return self.inventory if self.inventory.hosts else self.refresh()

    def has_host_resource(self, node_id: str) -> bool:
        """Whether the node names itself with a ``host:<name>`` resource (a gang can be
        reserved on it with a placement group)."""
        return any(h.node_id == node_id and h.name != node_id[:12] for h in self.inventory.hosts.values())

    def call_async(self, node_id: str, name: str, *args: Any) -> Any:
        """``HostAgent.<name>(*args)`` on that node: an ObjectRef."""
        with self._lock:
            agent = self._agents.get(node_id)
        if agent is None:
            self.refresh()
            with self._lock:
                agent = self._agents[node_id]
        return getattr(agent, name).remote(*args)

    def call(self, node_id: str, name: str, *args: Any) -> Any:
        return ray.get(self.call_async(node_id, name, *args), timeout=CONTROL_TIMEOUT)
