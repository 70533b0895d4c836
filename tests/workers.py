"""How the suite is shared between pytest-xdist workers (``make test``: ``-n 2``).

The suite spends most of its time waiting on processes: services starting, payloads
running, Ray nodes joining. Two workers overlap that waiting. What a test shares must
stay on one worker, or it would be started twice:

* a module's tests go together (its module and class fixtures: a service, a repository);
* the modules that read one slow shared run go together (:data:`GROUPS`): the Hosts
  cluster driver, the session's one-node Slurm.

:class:`ModuleScheduling` (xdist's own load-scope scheduler, scoped by module and these
groups) hands out whole groups in the order they come (:func:`order`): the Slurm group
first (its tests wait on Slurm's pace, so the other worker fills in), then the modules,
the pure ones (``tests/unit``: seconds each) after them, and last the readers of the runs
``tests/early.py`` launches (:data:`PINNED`). Each of those is pinned to one worker, which
launches its run right after collection (:func:`start_pinned_runs`) and works through the
other groups while it runs: the Hosts cluster driver's two minutes are spent beside the
suite, not waited for.

Run without ``-n`` (a developer running one file), nothing here applies:
``tests/early.py`` then starts the slow drivers beside the other tests instead.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

from tests import early

SHARED = {"hosts_cluster_run": "hosts-cluster", "slurm": "slurm"}
"""Fixture -> the group of the modules that use it (its run is started once per worker
that runs such a module: once, when they are one group)."""

GROUPS = {
    "tests/backends/test_hosts_cluster.py": "hosts-cluster",
    "tests/backends/test_hosts_node_loss.py": "hosts-cluster",
    "tests/backends/test_slurm_cli.py": "slurm",
    "tests/backends/test_slurm_contract.py": "slurm",
    "tests/backends/test_slurm_jobs.py": "slurm",
    "tests/backends/test_slurm_limits.py": "slurm",
    "tests/backends/test_slurm_recovery.py": "slurm",
    "tests/backends/test_slurm_states.py": "slurm",
}
"""Module -> its group, where it is not its own. The scheduler runs in xdist's controller,
which collects nothing, so the groups are named here; :func:`order` checks, in each worker,
that every module using a :data:`SHARED` fixture is listed."""

FIRST = ("slurm",)

PINNED = ("hosts-cluster", "tests/test_docs.py")
"""Groups that read a run ``tests/early.py`` launches; the i-th goes to worker i modulo
the number of workers, as their last group."""


def under_xdist(config: pytest.Config) -> bool:
    """Whether this process is an xdist worker (``workerinput`` is there from the start)."""
    return hasattr(config, "workerinput")


def module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def order(items: list[pytest.Item]) -> None:
    """Check :data:`GROUPS` against the fixtures the tests use; put the groups in order."""
    for item in items:
        for name, group in SHARED.items():
            if name in getattr(item, "fixturenames", ()) and GROUPS.get(module_of(item)) != group:
                raise pytest.UsageError(
                    f"{module_of(item)} uses {name}: add it to tests/workers.py's GROUPS as {group!r}, "
                    f"or each worker that gets it starts that run again")

    def rank(item: pytest.Item) -> int:
        scope = scope_of(module_of(item))
        if scope in FIRST:
            return FIRST.index(scope)
        if scope in PINNED:
            return len(FIRST) + 2 + PINNED.index(scope)
        return len(FIRST) + scope.startswith("tests/unit/")

    items.sort(key=rank)  # stable: within a rank, collection order


def scope_of(module: str) -> str:
    return GROUPS.get(module, module)


def pinned_worker(scope: str, workers: int) -> int | None:
    """The index of the worker that runs ``scope``, if it is pinned."""
    return PINNED.index(scope) % workers if scope in PINNED else None


def worker_index(worker_id: str) -> int:
    return int(worker_id.removeprefix("gw"))


def start_pinned_runs(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In a worker: launch the runs read by the groups pinned to this worker."""
    me, workers = worker_index(config.workerinput["workerid"]), config.workerinput["workercount"]  # type: ignore[attr-defined]
    early.start(config, {name for item in items for name in early.needs(item)
                         if pinned_worker(scope_of(module_of(item)), workers) == me})


class ModuleScheduling(LoadScopeScheduling):
    """xdist's load-scope scheduling, scoped by module, or by the group of :data:`GROUPS`;
    a :data:`PINNED` group goes only to its worker. A worker left with nothing it may take
    is shut down at once: xdist's worker runs its last test only when more work or its
    shutdown arrives, and the run would otherwise wait for it forever."""

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid.split("::", 1)[0])

    def _takes(self, node: WorkerController, scope: str) -> bool:
        live = {worker_index(each.gateway.id) for each in self.nodes}
        owner = pinned_worker(scope, node.workerinput["workercount"])
        return owner is None or owner not in live or owner == worker_index(node.gateway.id)

    def _reschedule(self, node: WorkerController) -> None:
        if not node.shutting_down and not any(self._takes(node, each) for each in self.workqueue):
            node.shutdown()
            return
        super()._reschedule(node)

    def _assign_work_unit(self, node: WorkerController) -> None:
        scope = next((each for each in self.workqueue if self._takes(node, each)), None)
        if scope is None:
            node.shutdown()
            return
        work_unit = self.workqueue.pop(scope)
        self.assigned_work.setdefault(node, {})[scope] = work_unit
        collection = self.registered_collections[node]
        node.send_runtest_some([collection.index(nodeid) for nodeid, done in work_unit.items() if not done])
