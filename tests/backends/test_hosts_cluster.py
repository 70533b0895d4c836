"""Hosts on a real multi-node Ray cluster, run in a subprocess (see hosts_cluster_driver.py).

Ray allows one cluster connection per process and this suite shares one local Ray,
so the driver builds its ``ray.cluster_utils.Cluster`` in its own pytest process
(the backend contract, the Autotest scenarios and the node-loss phase, with the leak
checks of tests/backends/conftest.py). That run happens once (the ``hosts_cluster_run``
fixture of tests/backends/conftest.py); this module reads its JUnit report and reports
each inner test as one test here. Afterwards no process of that cluster may be left
(they are found by the driver's RAY_TMPDIR).
"""

from __future__ import annotations

import inspect

import pytest

from . import hosts_cluster_driver as driver
from .contract import BackendContract

INNER = sorted(
    [f"TestHostsContract::{name}" for name, _ in inspect.getmembers(BackendContract)
     if name.startswith("test_")]
    + [name for name, fn in vars(driver).items() if name.startswith("test_") and inspect.isfunction(fn)]
)


@pytest.mark.parametrize("name", INNER)
def test_in_cluster(hosts_cluster_run, name):
    results = hosts_cluster_run["results"]
    assert results, f"the cluster driver produced no report:\n{hosts_cluster_run['output'][-5000:]}"
    result = results.get(name)
    assert result is not None, f"{name} did not run:\n{hosts_cluster_run['output'][-3000:]}"
    assert result["outcome"] == "passed", result["message"]


def test_cluster_left_nothing_running(hosts_cluster_run):
    assert hosts_cluster_run["results"], hosts_cluster_run["output"][-5000:]
    assert not hosts_cluster_run["leftovers"], (
        f"processes of the test cluster still running: {hosts_cluster_run['leftovers']}")
