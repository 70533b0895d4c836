"""How the suite is shared between pytest-xdist workers (``make test``: ``-n 2``).

The suite spends most of its time waiting on processes: services starting, payloads
running, Ray nodes joining. Two workers overlap that waiting. What a test shares must
stay on one worker, or it would be started twice:

* a module's tests go together (its module and class fixtures: a service, a repository);
* the modules that read one slow shared run go together (:data:`GROUPS`): the Hosts
  cluster driver, the session's one-node Slurm.

:class:`ModuleScheduling` (xdist's own load-scope scheduler, scoped by module and these
groups) hands out whole groups in the order they come. The slow shared runs come first
(:func:`order`), so that they start at once and the small groups fill in around them,
and the pure modules (``tests/unit``: seconds each) come last, to fill the ends.

Run without ``-n`` (a developer running one file), nothing here applies:
``tests/early.py`` then starts the slow drivers beside the other tests instead.
"""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadScopeScheduling

SHARED = {"hosts_cluster_run": "hosts-cluster", "slurm": "slurm"}
"""Fixture -> the group of the modules that use it (its run is started once per worker
that runs such a module: once, when they are one group)."""

GROUPS = {
    "tests/backends/test_hosts_cluster.py": "hosts-cluster",
    "tests/backends/test_hosts_node_loss.py": "hosts-cluster",
    "tests/backends/test_slurm_cli.py": "slurm",
    "tests/backends/test_slurm_contract.py": "slurm",
    "tests/backends/test_slurm_jobs.py": "slurm",
    "tests/backends/test_slurm_recovery.py": "slurm",
    "tests/backends/test_slurm_states.py": "slurm",
}
"""Module -> its group, where it is not its own. The scheduler runs in xdist's controller,
which collects nothing, so the groups are named here; :func:`order` checks, in each worker,
that every module using a :data:`SHARED` fixture is listed."""

FIRST = ("hosts-cluster", "slurm", "tests/test_docs.py")


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
        scope = GROUPS.get(module_of(item), module_of(item))
        if scope in FIRST:
            return FIRST.index(scope)
        return len(FIRST) + scope.startswith("tests/unit/")

    items.sort(key=rank)  # stable: within a rank, collection order


class ModuleScheduling(LoadScopeScheduling):
    """xdist's load-scope scheduling, scoped by module, or by the group of :data:`GROUPS`."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return GROUPS.get(module, module)
