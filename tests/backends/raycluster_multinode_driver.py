"""Subprocess driver for test_raycluster_multinode.py: a 3-node ``ray.cluster_utils.Cluster``.

Ray allows one ``ray.init`` per process and the test session already has its
shared local Ray, so this script builds the cluster in a process of its own,
runs the scenario and prints one JSON object (the facts the test asserts) as
its last stdout line. Usage: ``python raycluster_multinode_driver.py <workdir root> <marker prefix>``.

Cluster: a head with no CPU and resource ``head`` (the actor lives there), and
two nodes with 1 CPU each and a custom resource ``node_a`` / ``node_b``; node_b has
2 logical GPUs; node_a and a third node added later also offer ``worker`` (for the
re-run scenario).
Ray's default ``kill_child_processes_on_worker_exit`` is kept (as on a real cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

from ganga_like.ray_runtime import import_ray, settle_environment


def main(root: str, prefix: str) -> dict:
    os.environ["RAY_TMPDIR"] = tmp = tempfile.mkdtemp(prefix="glmn-", dir="/tmp")
    # The product's Ray environment (token authentication on), the token in the run's directory.
    settle_environment(token_path=os.path.join(tmp, "ray-auth-token"))
    ray = import_ray()
    from ray.cluster_utils import Cluster

    from ganga_like.backends import base
    from ganga_like.backends.base import SubjobSpec
    from ganga_like.backends.raycluster.actor import start_raycluster_actor
    from ganga_like.backends.resources import Request
    from ganga_like.backends.runtime import procs, trace

    facts: dict = {"timings": {}}
    t0 = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "resources": {"head": 1}, "include_dashboard": False})
    node_a = cluster.add_node(num_cpus=1, resources={"node_a": 1, "worker": 1})
    node_b = cluster.add_node(num_cpus=1, num_gpus=2, resources={"node_b": 1})
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    cluster.wait_for_nodes()
    facts["timings"]["cluster"] = round(time.monotonic() - t0, 2)
    facts["nodes"] = {"a": node_a.node_id, "b": node_b.node_id}
    try:
        actor = start_raycluster_actor("raycluster-multinode", resources={"head": 0.01})
        call = lambda method, *args: ray.get(getattr(actor, method).remote(*args), timeout=60)  # noqa: E731

        def spec(sub: int, command: list[str], resource: str, retries: int = 0, gpus: int = 0) -> SubjobSpec:
            workdir = os.path.join(root, "workspace", "9", str(sub))
            os.makedirs(workdir, exist_ok=True)
            return SubjobSpec(job_id=9, subjob_id=sub, fqid=f"9.{sub}", exe=command[0],
                              args=tuple(command[1:]), env={}, workdir=workdir, marker=f"{prefix}:9.{sub}",
                              options={"max_retries": retries},
                              request=Request(cpus=1, gpus=gpus,
                                              resources=((resource, 1),) if resource else ()))

        since, events = 0, []

        def until(done, timeout: float = 30.0) -> None:
            nonlocal since
            deadline = time.monotonic() + timeout
            while not done() and time.monotonic() < deadline:
                since, new = call("events", since, 1.0)
                events.extend(new)
            if not done():
                raise RuntimeError(f"timed out; events: {[(e.fqid, e.kind, e.note) for e in events]}")

        def finals(fqid: str) -> list:
            return [e for e in events if e.fqid == fqid and e.kind in (base.FINISHED, base.LOST, base.KILLED)]

        # 1. One subjob per node, forced by the custom resources.
        t1 = time.monotonic()
        spread = [spec(0, ["/bin/true"], "node_a"), spec(1, ["/bin/sh", "-c", "exit 4"], "node_b")]
        call("submit", spread)
        until(lambda: all(finals(s.fqid) for s in spread))
        facts["spread"] = {
            s.fqid: {"kinds": [e.kind for e in finals(s.fqid)], "exit_code": finals(s.fqid)[0].exit_code,
                     "host": finals(s.fqid)[0].handle.host}
            for s in spread}
        facts["timings"]["spread"] = round(time.monotonic() - t1, 2)

        # 1b. GPUs: a request for 2 lands on the node that has them, with Ray's ids in
        #     CUDA_VISIBLE_DEVICES; one for 3 is refused at submit, naming every node.
        gpus = spec(4, ["/bin/sh", "-c", 'echo "[$CUDA_VISIBLE_DEVICES]"'], "", gpus=2)
        too_many = spec(5, ["/bin/true"], "", gpus=3)
        refused, accepted = call("submit", [too_many, gpus])
        until(lambda: bool(finals(gpus.fqid)))
        with open(os.path.join(gpus.workdir, "output", "stdout")) as out:
            facts["gpus"] = {"refused": refused.error, "accepted": accepted.error,
                             "shown": out.read().strip(), "host": finals(gpus.fqid)[0].handle.host}

        # 2. Remove node_b while a subjob runs there.
        t2 = time.monotonic()
        victim = spec(2, ["/bin/sleep", "60"], "node_b")
        (handle,) = call("submit", [victim])
        until(lambda: any(e.fqid == victim.fqid and e.kind == base.STARTED for e in events))
        started = next(e for e in events if e.fqid == victim.fqid and e.kind == base.STARTED).handle
        facts["victim_started_alive"] = procs.is_alive(started.pid, started.create_time)
        cluster.remove_node(node_b)
        until(lambda: bool(finals(victim.fqid)), timeout=40)
        facts["lost"] = [(e.kind, e.note) for e in finals(victim.fqid)]
        facts["held_after"] = call("held", [started])
        facts["marked_after"] = [m for _, _, m in procs.find_by_marker(prefix + ":")]
        facts["ping_after"] = call("ping")
        facts["timings"]["node_loss"] = round(time.monotonic() - t2, 2)

        # 3. With max_retries, Ray re-runs a subjob whose node died on another node; the
        #    copy that survived on the "dead" node (this machine) is ended, not left running twice.
        t3 = time.monotonic()
        node_c = cluster.add_node(num_cpus=1, resources={"worker": 1})
        cluster.wait_for_nodes()
        facts["nodes"]["c"] = node_c.node_id
        retried = spec(3, ["/bin/sleep", "3"], "worker", retries=1)
        call("submit", [retried])
        starts = lambda: [e for e in events if e.fqid == retried.fqid and e.kind == base.STARTED]  # noqa: E731
        until(lambda: bool(starts()))
        first_host = starts()[0].handle.host
        doomed = node_a if first_host.endswith(node_a.node_id[:12]) else node_c
        cluster.remove_node(doomed)
        until(lambda: bool(finals(retried.fqid)), timeout=40)
        facts["retry"] = {"starts": [(e.handle.host, e.handle.pid, e.note) for e in starts()],
                          "finals": [(e.kind, e.exit_code, e.note) for e in finals(retried.fqid)],
                          "removed": doomed.node_id}
        # Its own status file, or its master's collected trace once it was tidied.
        facts["retry"]["states"] = [i.state for i in trace.history(retried.workdir)]
        facts["marked_end"] = [m for _, _, m in procs.find_by_marker(prefix + ":")]
        facts["timings"]["retry"] = round(time.monotonic() - t3, 2)
        ray.kill(actor, no_restart=True)
    finally:
        t4 = time.monotonic()
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)  # Ray's session files of this cluster
        facts["timings"]["shutdown"] = round(time.monotonic() - t4, 2)
    return facts


if __name__ == "__main__":
    result = main(sys.argv[1], sys.argv[2])
    sys.stdout.flush()
    print(json.dumps(result, default=repr))
