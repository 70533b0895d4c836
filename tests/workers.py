"""How the suite is shared between pytest-xdist workers (``make test``: ``-n 2``).

The suite spends most of its time waiting on processes: services starting, payloads
running, Ray nodes joining. Two workers overlap that waiting. What a test shares must
stay on one worker, or it would be started twice:

* a module's tests go together (its module and class fixtures: a service, a repository);
* every module that reads one of the slow shared runs below goes with the others that
  read it: the Hosts cluster driver, the session's one-node Slurm, the docs' blocks.

xdist's ``loadgroup`` hands out whole groups in the order they come; the slow shared
runs come first, so that they start at once and the small groups fill in around them,
and the pure modules (``tests/unit``: seconds each) come last, to fill the ends.
Run without ``-n`` (a developer running one file), nothing here applies:
``tests/early.py`` then starts the slow drivers beside the other tests instead.
"""

from __future__ import annotations

import os

import pytest

SHARED = {"hosts_cluster_run": "hosts-cluster", "slurm": "slurm", "block_results": "docs-blocks"}
"""Fixture -> the group of every module whose tests use it (its run is started once)."""
FIRST = ("hosts-cluster", "slurm", "docs-blocks")


def under_xdist() -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER"))


def group(items: list[pytest.Item]) -> None:
    """Mark each test with its group and order the groups (see the module doc)."""
    by_module: dict[str, str] = {}
    for item in items:
        module = str(item.path)
        shared = next((g for name, g in SHARED.items() if name in getattr(item, "fixturenames", ())), None)
        if shared is not None or module not in by_module:
            by_module[module] = shared or by_module.get(module) or module
    for item in items:
        item.add_marker(pytest.mark.xdist_group(by_module[str(item.path)]))

    def rank(item: pytest.Item) -> int:
        name = by_module[str(item.path)]
        if name in FIRST:
            return FIRST.index(name)
        return len(FIRST) + (1 if os.sep + "unit" + os.sep in name else 0)

    items.sort(key=rank)  # stable: within a rank, collection order
