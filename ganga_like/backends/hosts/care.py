"""The Hosts actor's care of its hosts: their checks, asked of each host's agent.

A part of :class:`~ganga_like.backends.hosts.actor.HostsActor` (a base class of it), kept
apart so the actor's file stays about subjobs. It follows the cluster's nodes in the
host table (``HostBook``), runs verify, cleanup and repair on the hosts (``checks.py``,
through ``HostAgent.host_check``) and moves each host by what they found:

* before a subjob, :meth:`HostCare._prepare_hosts` cleans (``reboot_before``) and
  verifies its hosts, all at once, and says which failed;
* a host no subjob holds is checked in a thread of its own (:meth:`HostCare._check_later`):
  a cleanup after a subjob, a repair, a verify after a service start or a node's return;
* the first look (:meth:`HostCare._first_look`) asks every host for a check an earlier
  service left unfinished there, and whether a subjob left it dirty.

Every method runs with the actor's ``_cond`` released unless it says "(cond held)".
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import ray

from ganga_like.backends.hosts import host_states as hs
from ganga_like.backends.hosts.gang import HostsRun
from ganga_like.backends.hosts.hostbook import HostBook
from ganga_like.backends.hosts.inventory import Inventory
from ganga_like.backends.hosts.nodes import Nodes

CHECK_TIMEOUT = 600.0  # seconds a verify, cleanup or repair on a host may take (site commands: 300)

Answer = tuple[bool, str]  # (ok, one-line note)


class HostCare:
    """The host-care half of the Hosts actor (see the module doc)."""

    _cond: threading.Condition
    _nodes: Nodes
    _busy: dict[str, HostsRun]
    _wake: bool

    def _init_care(self) -> None:
        self._book = HostBook()  # each host's status, protection, dirty flag, GPUs, last check
        self._unfinished: dict[str, str] = {}  # host -> a check an earlier service left under way
        self._dirty_left: set[str] = set()  # hosts an earlier service left dirty
        self._first_lock = threading.Lock()
        self._looked = False  # _first_look done

    def _first_look(self, inventory: Inventory) -> None:
        """Once, before the host table first follows the nodes (whichever thread comes
        first: a verb or the scheduler): ask each host for a check an earlier service left
        unfinished there."""
        with self._first_lock:
            if self._looked:
                return
            answers = self._ask_each(inventory, [h.name for h in inventory.hosts.values() if h.alive],
                                     "host_left")
            left = {h: answer for h, (ok, answer) in answers.items()
                    if ok and isinstance(answer, (tuple, list)) and len(answer) == 2}
            with self._cond:
                self._unfinished = {h: str(check) for h, (check, _dirty) in left.items() if check}
                self._dirty_left = {h for h, (_check, dirty) in left.items() if dirty}
                self._follow(inventory)
            self._looked = True

    def _follow(self, inventory: Inventory) -> None:
        """(cond held) Follow the nodes in the host table (``HostBook.sync``); verify those
        it says to."""
        unfinished, self._unfinished = self._unfinished, {}
        dirty, self._dirty_left = self._dirty_left, set()
        for host in self._book.sync(inventory, self._busy, unfinished, dirty):
            self._check_later(host, "verify", hs.VERIFYING)

    def _ask_each(self, inventory: Inventory, hosts: list[str], method: str, *args: object,
                  extra: Callable[[str], tuple[object, ...]] = lambda _host: ()
                  ) -> dict[str, tuple[bool, object]]:
        """``HostAgent.<method>(host, *args, *extra(host))`` on every host at once:
        host -> (answered, answer); an agent that does not answer gives (False, why)."""
        calls: dict[str, ray.ObjectRef | Exception | None] = {}
        for host in hosts:
            node = inventory.hosts.get(host)
            try:
                calls[host] = (self._nodes.call_async(node.node_id, method, host, *args, *extra(host))
                               if node else None)
            except Exception as error:
                calls[host] = error
        answers: dict[str, tuple[bool, object]] = {}
        for host, call in calls.items():
            if call is None or isinstance(call, Exception):
                answers[host] = (False, f"its agent cannot be reached: {call or 'unknown host'}")
                continue
            try:
                answers[host] = (True, ray.get(call, timeout=CHECK_TIMEOUT))
            except Exception as error:
                answers[host] = (False, f"its agent did not answer: {type(error).__name__}")
        return answers

    def _check_on(self, inventory: Inventory, hosts: list[str], step: str, status: str) -> dict[str, Answer]:
        """Run a check (verify, cleanup, repair) on each host at once: host -> (ok, note),
        recorded as the host's last check. Repair does what the host's protection allows."""
        with self._cond:
            policies = {h: self._book.state(h).policy for h in hosts}
        answers: dict[str, Answer] = {}
        def extra(host: str) -> tuple[object, ...]:
            # A failed repair, or a failed check where the protection allows no repair,
            # leaves the host Repair Failed: the host keeps that word for the next service.
            policy = policies[host]
            repairable = policy.clear_scratch or policy.repair_command
            return (policy.clear_scratch, policy.repair_command,
                    hs.REPAIR_FAILED if step == "repair" or not repairable else "")

        asked = self._ask_each(inventory, hosts, "host_check", step, status, extra=extra)
        for host, (answered, answer) in asked.items():
            if answered and isinstance(answer, (tuple, list)) and len(answer) == 2:
                answers[host] = (bool(answer[0]), str(answer[1]))
            else:
                answers[host] = (False, str(answer))
        with self._cond:
            for host, (ok, note) in answers.items():
                self._book.checked(host, ok, f"{step}: {note}")
        return answers

    def _check_later(self, host: str, step: str, status: str) -> None:
        """(cond held) Run a check on a host no subjob holds, in a thread of its own;
        its result moves the host (``HostBook.check_done``); a failure starts a repair."""
        def body() -> None:
            ((ok, _note),) = self._check_on(self._nodes.inventory, [host], step, status).values()
            with self._cond:
                if self._busy.get(host) is None and self._book.state(host).status == status:
                    if self._book.check_done(host, ok, status) == hs.REPAIRING:
                        self._check_later(host, "repair", hs.REPAIRING)
                self._wake = True
                self._cond.notify_all()

        threading.Thread(target=body, name=f"hosts-{step}-{host}", daemon=True).start()

    def _prepare_hosts(self, run: HostsRun) -> dict[str, str]:
        """Clean (``reboot_before``) and verify a run's hosts before it starts, each step on
        all of them at once; host -> why it failed (empty: all are Running now)."""
        options = (run.spec.options if run.spec else None) or {}
        skip = bool(options.get("skip_verify"))
        inventory = self._nodes.inventory
        with self._cond:
            steps = {h: self._book.first_step(h, options.get("reboot_before") or "if dirty", skip)
                     for h in run.hosts}
        failures: dict[str, str] = {}
        cleaning = [h for h, s in steps.items() if s == hs.CLEANING]
        for host, (ok, note) in self._check_on(inventory, cleaning, "cleanup", hs.CLEANING).items():
            if not ok:
                failures[host] = f"cleanup failed on {host}: {note}"
            else:
                with self._cond:
                    steps[host] = self._book.next_step(host, skip)
        verifying = [h for h, s in steps.items() if s == hs.VERIFYING]
        for host, (ok, note) in self._check_on(inventory, verifying, "verify", hs.VERIFYING).items():
            if not ok:
                failures[host] = f"{host} failed verify: {note}"
        if not failures:
            with self._cond:
                for host in run.hosts:
                    self._book.running(host)
        return failures
