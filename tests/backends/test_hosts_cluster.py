"""Hosts on a real multi-node Ray cluster, run in a subprocess (see hosts_cluster_driver.py).

Ray allows one cluster connection per process and this suite shares one local Ray,
so the driver builds its ``ray.cluster_utils.Cluster`` in its own pytest process
(the backend contract plus the Autotest scenarios, with the leak checks of
tests/backends/conftest.py). This module runs it once, reads its JUnit report as
JSON-like results, and reports each inner test as one test here. Afterwards no
process of that cluster may be left (they are found by the driver's RAY_TMPDIR).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import psutil
import pytest

from tests.backends.cluster_processes import processes_of

from . import hosts_cluster_driver as driver
from .contract import BackendContract

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TIMEOUT = 420  # seconds: ≈60 s on a quiet machine, several times that under heavy load

INNER = sorted(
    [f"TestHostsContract::{name}" for name, _ in inspect.getmembers(BackendContract)
     if name.startswith("test_")]
    + [name for name, fn in vars(driver).items() if name.startswith("test_") and inspect.isfunction(fn)]
)


def _results(xml_path: str) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        name = case.get("name", "").split("[", 1)[0]
        key = f"{cls}::{name}" if cls.startswith("Test") else name
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if outcome == "passed" else outcome
                message += f"[{child.tag}] {child.get('message', '')}\n{(child.text or '')[-3000:]}\n"
            elif child.tag == "skipped":
                outcome, message = "skipped", child.get("message", "")
        previous = results.get(key)
        if previous is None or previous["outcome"] == "passed":
            results[key] = {"outcome": outcome, "message": message, "time": float(case.get("time", 0))}
    return results


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hosts-cluster")
    xml_path = str(out / "report.xml")
    ray_tmp = tempfile.mkdtemp(prefix="glh-", dir="/tmp")  # short: Ray's socket paths are limited
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # a new user's
    env["RAY_TMPDIR"] = ray_tmp
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", xml_path,
         "--basetemp", str(out / "tmp"), os.path.join(HERE, "hosts_cluster_driver.py")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        output, _ = proc.communicate()
        output += f"\n(driver killed after {TIMEOUT} s)"
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 10
    while (left := processes_of(ray_tmp)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for leftover in left:
        try:
            leftover.kill()
        except psutil.Error:
            pass
    results = _results(xml_path) if os.path.exists(xml_path) else {}
    print(json.dumps({"elapsed": round(elapsed, 1), "results": {k: v["outcome"] for k, v in results.items()}},
                     indent=1))
    yield {"results": results, "output": output, "leftovers": [p.pid for p in left], "elapsed": elapsed}
    shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.parametrize("name", INNER)
def test_in_cluster(cluster_run, name):
    results = cluster_run["results"]
    assert results, f"the cluster driver produced no report:\n{cluster_run['output'][-5000:]}"
    result = results.get(name)
    assert result is not None, f"{name} did not run:\n{cluster_run['output'][-3000:]}"
    assert result["outcome"] == "passed", result["message"]


def test_cluster_left_nothing_running(cluster_run):
    assert cluster_run["results"], cluster_run["output"][-5000:]
    assert not cluster_run["leftovers"], (
        f"processes of the test cluster still running: {cluster_run['leftovers']}")
