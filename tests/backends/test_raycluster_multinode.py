"""RayCluster on a real multi-node Ray (``ray.cluster_utils.Cluster``: a head and two nodes).

Ray allows one ``ray.init`` per process and the test session shares one local
Ray, so the cluster is built by ``raycluster_multinode_driver.py`` in a
subprocess of its own; this test asserts the facts it reports. Every process the
scenario starts carries a marker of this test, so ``leftover_check`` proves that
nothing is left running (on node loss the actor ends what survived its node).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ganga_like.backends import base

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "raycluster_multinode_driver.py")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(DRIVER)))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> dict:
    """Run the driver once; its JSON facts (the cluster costs ≈15 s: share it)."""
    root = tmp_path_factory.mktemp("multinode")
    from .conftest import SESSION_PREFIX

    prefix = f"{SESSION_PREFIX}-multinode"
    python_path = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=python_path)
    for key in [k for k in env if k.startswith("RAY_ADDRESS")]:
        del env[key]  # the driver builds its own cluster
    done = subprocess.run([sys.executable, DRIVER, str(root), prefix], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    facts["prefix"] = prefix
    return facts


def test_subjobs_go_to_the_nodes_their_resources_name(scenario):
    spread = scenario["spread"]
    assert spread["9.0"]["kinds"] == [base.FINISHED] and spread["9.0"]["exit_code"] == 0
    assert spread["9.1"]["kinds"] == [base.FINISHED] and spread["9.1"]["exit_code"] == 4
    node_a, node_b = scenario["nodes"]["a"], scenario["nodes"]["b"]
    assert spread["9.0"]["host"].endswith("/" + node_a[:12])
    assert spread["9.1"]["host"].endswith("/" + node_b[:12])


def test_gpus_land_on_the_node_that_has_them_and_too_many_are_refused_naming_the_nodes(scenario):
    gpus = scenario["gpus"]
    assert gpus["accepted"] == "" and gpus["shown"] == "[0,1]"
    assert gpus["host"].endswith("/" + scenario["nodes"]["b"][:12])
    refused = gpus["refused"]
    assert refused.startswith("asks for 1 CPU, 3 GPUs; no node could ever hold it (node "), refused
    assert refused.count("node ") == 4 and ": 1 CPU, 2 GPUs, " in refused and ": 0 CPUs, 0 GPUs, " in refused


def test_node_removed_while_running_is_lost_and_nothing_is_left(scenario):
    from ganga_like.backends.runtime import procs

    assert scenario["victim_started_alive"]
    ((kind, note),) = scenario["lost"]
    assert kind == base.LOST and "NodeDiedError" in note, note
    assert scenario["held_after"] == [False]
    assert scenario["marked_after"] == []
    assert procs.find_by_marker(scenario["prefix"] + ":") == []
    ping = scenario["ping_after"]
    assert ping["running"] == 0 and ping["pending"] == 0 and ping["queued"] == 0


def test_retried_subjob_reruns_on_another_node_and_the_old_copy_is_ended(scenario):
    retry = scenario["retry"]
    (first, second) = retry["starts"]
    removed_node = "/" + retry["removed"][:12]
    assert first[0].endswith(removed_node) and not second[0].endswith(removed_node)
    assert first[1] != second[1] and "re-run by Ray" in second[2]
    assert retry["finals"] == [[base.FINISHED, 0, "RUN_DONE exit=0"]]
    # Two runs in one status file. The copy left on the removed node (this machine) got TERM
    # from the actor when the re-run started, unless it had already ended: Ray re-runs a task
    # whose result was not returned before its node died (at-least-once), seen under load.
    states = retry["states"]
    assert states.count("RUNNING") == 2 and states[-1] == "RUN_DONE", states
    first_run = states[: states.index("RUNNING", 3) + 1]
    assert "KILLED" in states or first_run[3] == "RUN_DONE", states
    assert scenario["marked_end"] == []
