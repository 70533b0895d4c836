"""The Hosts actor's record of its hosts: one :class:`~.host_states.HostState` per host.

Pure (no Ray): the actor calls it with its lock held. Every status change goes through
``host_states.move_host``; this class decides which move a moment calls for:

* :meth:`HostBook.sync`: new hosts are Ready (or Verifying, when an earlier service left
  a check unfinished on them); a host whose node is gone is Repair Failed; one whose
  node is back, and that nothing holds, is verified again;
* :meth:`HostBook.hold`: the synchronous subjobs' holds of this round (Pending);
* :meth:`HostBook.first_step`: what an assigned host does before its subjob (Cleaning,
  Verifying, or straight to Running);
* :meth:`HostBook.after_run`: Ready, or Cleaning when the job or a kill asks for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from ganga_like.backends import resources as rq
from ganga_like.backends.hosts import host_states as hs
from ganga_like.backends.hosts import scheduler as sch
from ganga_like.backends.hosts.inventory import Inventory

NODE_LOST = "its Ray node is gone"


class HostBook:
    def __init__(self) -> None:
        self.states: dict[str, hs.HostState] = {}
        self.gpus: dict[str, rq.GpuPool] = {}  # host -> its node's GPU ids (Ray's logical GPUs)

    def state(self, host: str) -> hs.HostState:
        return self.states[host]

    def move(self, host: str, dst: str, cause: str) -> None:
        hs.move_host(self.states[host], dst, cause)

    def checked(self, host: str, ok: bool, note: str) -> None:
        state = self.states[host]
        state.last_check, state.last_result = time.time(), ("passed: " if ok else "failed: ") + note

    # ------------------------------------------------------------------ the cluster's news

    def sync(self, inventory: Inventory, busy: Mapping[str, object],
             unfinished: Mapping[str, str] | None = None, dirty: Iterable[str] = ()) -> list[str]:
        """Follow the nodes: returns the hosts to verify now (see the module doc).
        ``unfinished``: host -> the check an earlier service left under way there;
        ``dirty``: hosts a subjob ran on since their last cleanup (as the hosts say)."""
        dirty = set(dirty)
        to_verify = []
        for name, node in inventory.hosts.items():
            state = self.states.get(name)
            if state is None:
                state = self.states[name] = hs.HostState(name, protection=node.protection,
                                                         dirty=name in dirty)
                left = (unfinished or {}).get(name, "")
                if node.alive and left in hs.LEFT_TO_VERIFY:
                    hs.move_host(state, hs.VERIFYING, f"a service start found it left {left}")
                    to_verify.append(name)
            state.protection = node.protection
            if not node.alive and state.status != hs.REPAIR_FAILED:
                hs.move_host(state, hs.REPAIR_FAILED, NODE_LOST)
            elif node.alive and state.status == hs.REPAIR_FAILED and name not in busy and \
                    state.history and state.history[-1][2].startswith(NODE_LOST):
                hs.move_host(state, hs.VERIFYING, "its node is back: verify it")
                to_verify.append(name)
        return to_verify

    def hold(self, held: Iterable[str]) -> None:
        """This round's holds: Ready hosts a synchronous subjob holds are Pending, and
        Pending hosts nobody holds any more are Ready again."""
        wanted = set(held)
        for name, state in self.states.items():
            if name in wanted and state.status == hs.READY:
                hs.move_host(state, hs.PENDING, "held by a synchronous subjob")
            elif name not in wanted and state.status == hs.PENDING:
                hs.move_host(state, hs.READY, "no subjob holds it any more")

    def reset(self, host: str) -> None:
        hs.move_host(self.states[host], hs.READY, "a job named it explicitly")

    # ------------------------------------------------------------------ a subjob's hosts

    def first_step(self, host: str, reboot_before: str, skip_verify: bool) -> str:
        """Move an assigned host to what it does first; returns that status."""
        state = self.states[host]
        if reboot_before == "always" or (reboot_before == "if dirty" and state.dirty):
            dst, cause = hs.CLEANING, f"reboot_before={reboot_before!r}"
        elif skip_verify or not state.policy.verify:
            dst, cause = hs.RUNNING, "skip_verify" if skip_verify else hs.DO_NOT_VERIFY
        else:
            dst, cause = hs.VERIFYING, "assigned to a subjob"
        hs.move_host(state, dst, cause)
        return dst

    def next_step(self, host: str, skip_verify: bool) -> str:
        """After a cleanup before a subjob passed: Verifying, or Running when verify is skipped."""
        state = self.states[host]
        state.dirty = False
        dst = hs.RUNNING if skip_verify or not state.policy.verify else hs.VERIFYING
        hs.move_host(state, dst, "cleanup passed")
        return dst

    def failed(self, host: str, cause: str) -> bool:
        """A check failed on the host: Repairing (True: run the repair) or, when its
        protection forbids any repair, Repair Failed (False)."""
        state = self.states[host]
        policy = state.policy
        if policy.clear_scratch or policy.repair_command:
            hs.move_host(state, hs.REPAIRING, cause)
            return True
        hs.move_host(state, hs.REPAIR_FAILED, f"{cause}; protection {state.protection}: no repair")
        return False

    def running(self, host: str) -> None:
        state = self.states[host]
        if state.status != hs.RUNNING:
            hs.move_host(state, hs.RUNNING, "verify passed")
        state.dirty = True

    def adopted(self, host: str) -> None:
        """A service start found a subjob still running on the host."""
        state = self.states.get(host)
        if state is not None and state.status == hs.READY:
            hs.move_host(state, hs.RUNNING, "adopted: its subjob still runs there")
            state.dirty = True

    def after_run(self, host: str, clean: bool, alive: bool, why: str) -> bool:
        """Its subjob let it go: True if a cleanup must run now (the host is Cleaning)."""
        state = self.states[host]
        if not alive:
            if state.status != hs.REPAIR_FAILED:
                hs.move_host(state, hs.REPAIR_FAILED, NODE_LOST)
            return False
        if state.status == hs.RUNNING and clean:
            hs.move_host(state, hs.CLEANING, why)
            return True
        if state.status in (hs.VERIFYING, hs.RUNNING):
            hs.move_host(state, hs.READY, why)
        return False  # not started, or a check (cleanup, repair) runs and ends it

    def check_done(self, host: str, ok: bool, status_before: str) -> str:
        """A cleanup after a subjob, a repair or a lone verify ended: its new status."""
        state = self.states[host]
        if state.status != status_before:
            return state.status  # its node went meanwhile
        if ok:
            if status_before == hs.CLEANING:
                state.dirty = False
            hs.move_host(state, hs.READY, f"{status_before.lower()} passed")
        elif status_before == hs.REPAIRING:
            hs.move_host(state, hs.REPAIR_FAILED, "repair failed")
        else:
            self.failed(host, f"{status_before.lower()} failed")
        return state.status

    def take_gpus(self, inventory: Inventory, hosts: Iterable[str],
                  count: int) -> dict[str, tuple[int, ...]] | None:
        """``count`` GPU ids of each host (the lowest free, as Local hands them out), all or
        nothing: None if some host has not that many free."""
        taken: dict[str, tuple[int, ...]] = {}
        for host in hosts:
            pool = self.gpus.get(host)
            if pool is None:
                pool = self.gpus[host] = rq.GpuPool(inventory.hosts[host].capacity.gpu_ids)
            ids = pool.take(count)
            if ids is None:
                for other, back in taken.items():
                    self.gpus[other].give(back)
                return None
            taken[host] = ids
        return taken

    def give_gpus(self, host: str, ids: tuple[int, ...]) -> None:
        if ids and host in self.gpus:
            self.gpus[host].give(ids)

    # ------------------------------------------------------------------ views

    def scheduler_hosts(self, inventory: Inventory, holders: Mapping[str, str]) -> list[sch.Host]:
        return [sch.Host(name, node.labels, self.states[name].status, holder=holders.get(name, ""))
                for name, node in inventory.hosts.items() if name in self.states]

    def rows(self, inventory: Inventory, holders: Mapping[str, str]) -> list[dict[str, object]]:
        """Each host once, as ``ganga-like hosts`` shows it."""
        rows = []
        for name in sorted(inventory.hosts):
            node, state = inventory.hosts[name], self.states.get(name)
            if state is None:
                continue
            rows.append({"name": name, "labels": sorted(node.labels), "status": state.status,
                         "protection": state.protection, "dirty": state.dirty,
                         "subjob": holders.get(name, ""), "last_check": state.last_check,
                         "last_result": state.last_result, "node_id": node.node_id, "alive": node.alive,
                         **({"problem": node.problem} if node.problem else {})})
        return rows
