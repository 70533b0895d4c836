"""Strict mode on the backend that spans nodes (issue 16, point 6): a Hosts subjob whose
Ray node leaves the cluster is never reported final while its payload may still run.

The node-loss phase (hosts_node_loss_phase.py) runs last in the Hosts cluster driver's
own ``ray.cluster_utils.Cluster`` (hosts_cluster_driver.py, run once for this module and
test_hosts_cluster.py by the ``hosts_cluster_run`` fixture of tests/backends/conftest.py):
a real Session on that cluster, whose node n1 is removed while ``sleep`` runs there
(the raylet dies, the payload lives on: every node is this machine). The subjob stays
``running`` with detail ``Node lost: n1, payload state unknown``; kill() is not
confirmed; once the node is back its agent confirms the kill, or finds the payload
ended (reported from its status file), or watches it again. Its final status is never
recorded while one of its processes was seen alive (sampled every 20 ms), leaks() is
empty throughout, and nothing is left running. A subjob the user forces to ``failed``
meanwhile is in the leak ledger, listed until its node is back and the kill is
confirmed there.
"""

from __future__ import annotations

import json

import pytest

from .hosts_node_loss_phase import FACTS_FILE

PHASE = "test_zzz_node_loss_phase"  # the driver's test that runs the phase
HELD = "Node lost: n1, payload state unknown"


@pytest.fixture(scope="module")
def facts(hosts_cluster_run) -> dict:
    phase = hosts_cluster_run["results"].get(PHASE)
    assert phase is not None, f"the node-loss phase did not run:\n{hosts_cluster_run['output'][-5000:]}"
    assert phase["outcome"] == "passed", phase["message"]
    result = json.loads((hosts_cluster_run["basetemp"] / FACTS_FILE).read_text())
    result["cluster_left"] = hosts_cluster_run["leftovers"]
    print(json.dumps(result["timings"]))
    return result


def test_a_lost_node_keeps_its_subjob_held_and_kill_unconfirmed(facts):
    # While the node is away the subjob is running with the reason as its detail, never
    # failed: its sleep is alive, and the audit has nothing to say.
    assert facts["s1_while_lost"] == [["running", HELD]], facts["s1_while_lost"]
    assert facts["s1_alive_while_lost"] and facts["s1_leaks_while_lost"] == []
    assert facts["s1_kill"].startswith("KillNotConfirmed:") and "\n" not in facts["s1_kill"]
    assert facts["s1_after_kill"] == [["running", HELD]] and facts["s1_alive_after_kill"]


def test_the_kill_is_confirmed_through_the_node_once_it_is_back(facts):
    s1 = facts["s1"]
    assert (s1["status"], s1["master"]) == ("killed", "killed"), s1
    assert "its processes ended" in s1["final_note"], s1
    assert s1["alive_after_final"] == [] and s1["last_alive"] <= s1["final_time"], s1
    assert [h[1] for h in s1["history"]] == ["submitting", "submitted", "running", "killed"], s1["history"]


def test_a_payload_that_ended_while_away_is_reported_when_its_node_is_back(facts):
    # It ended during the loss; nothing could confirm that until the node was back.
    assert facts["s2_ended_while_lost"] == [["running", HELD]], facts["s2_ended_while_lost"]
    s2 = facts["s2"]
    assert (s2["status"], s2["exit_code"], s2["stdout"]) == ("completed", 0, "ended-away"), s2
    assert s2["alive_after_final"] == [] and "failed" not in [h[1] for h in s2["history"]], s2


def test_a_payload_still_running_when_its_node_is_back_is_watched_to_its_end(facts):
    assert facts["s3_while_lost"] == [["running", HELD]] and facts["s3_alive_when_back"]
    s3 = facts["s3"]
    assert (s3["status"], s3["exit_code"], s3["stdout"]) == ("completed", 0, "watched"), s3
    assert s3["alive_after_final"] == [], s3


def test_forced_failed_while_the_node_is_away_is_in_the_ledger_until_confirmed(facts):
    s4 = facts["s4_forced"]
    assert s4["status"] == "failed" and facts["s4_alive_when_forced"], s4
    assert [h[1] for h in s4["history"]][-2:] == ["killed", "failed"], s4["history"]
    assert "kill not confirmed" in s4["history"][-2][2], s4["history"]
    assert facts["s4_leaks_while_lost"] == [[s4["fqid"], "ledger"]], facts["s4_leaks_while_lost"]


def test_nothing_leaks_and_nothing_is_left(facts):
    assert facts["leaks_end"] == []
    assert facts["left_running"] == [], facts["left_running"]
    assert facts["cluster_left"] == [], facts["cluster_left"]
