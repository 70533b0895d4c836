"""The node-loss phase of the Hosts cluster driver (hosts_cluster_driver.py runs it last,
in its own ``ray.cluster_utils.Cluster``); test_hosts_node_loss.py asserts its facts.

A real :class:`~ganga_like.engine.core.Engine` (the service's core: repository, monitor,
the Hosts actor and its node agents) runs on the cluster that driver built, and its
node ``n1`` (``host:n1``) leaves and comes back, four times.

``Cluster.remove_node`` kills the node's raylet and workers; the payloads, in
sessions of their own, live on (as when a machine's raylet dies but the machine
does not). ``add_node`` with the same ``host:n1`` resource is that machine's Ray
coming back. Four subjobs meet it:

1. ``sleep 60``: its node goes, kill() cannot be confirmed, the node comes back and
   the kill is confirmed through it (killed);
2. ``sleep 4; echo ended-away``: it ends while its node is away; once the node is back
   the host's agent finds nothing running and its status file says exit 0 (completed);
3. ``sleep 12; echo watched``: its node goes and comes back while it runs: it is
   watched again and completes on its own;
4. ``sleep 60`` again, forced failed while its node is away: in the leak ledger, which
   lists it until the node is back and the kill is confirmed there.

A sampler thread records, every 20 ms, whether each subjob's processes (found by
their marker: every node is this machine) are alive; the facts compare those
samples with the time each subjob's final status was recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ganga_like.backends.hosts.config import Hosts
from ganga_like.backends.runtime import procs
from ganga_like.config import Config
from ganga_like.engine.core import Engine, set_default_session
from ganga_like.errors import KillNotConfirmed
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter
from ganga_like.status import FINAL, history_entries

FACTS_FILE = "node-loss-facts.json"  # in the driver's pytest base temp, for test_hosts_node_loss.py


def run(root: str, lose_node: Callable[[], None], node_back: Callable[[], None]) -> dict:
    """The four scenarios on the Ray this process is connected to, a repository at
    ``root``; ``lose_node()`` removes n1, ``node_back()`` adds it again (and waits for
    it). Returns the facts (JSON-able)."""
    facts: dict = {"timings": {}}
    session = Engine(Config.from_env(root=root))
    set_default_session(session)
    prefix = session.repo_uuid + ":"
    alive_at: dict[str, list[tuple[float, bool]]] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now = time.time()
            markers = {m for _pid, _created, m in procs.find_by_marker(prefix)}
            for fqid, series in list(alive_at.items()):
                series.append((now, prefix + fqid in markers))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _scenarios(session, prefix, alive_at, facts, lose_node, node_back)
        facts["leaks_end"] = session.leaks()
    finally:
        stop.set()
        sampler.join(timeout=5)
        facts["left_running"] = [(pid, marker) for pid, _c, marker in procs.find_by_marker(prefix)]
        t5 = time.monotonic()
        session.close()
        set_default_session(None)
        for pid, created, _marker in procs.find_by_marker(prefix):  # never leave one behind
            procs.kill_tree(pid, created, grace=0.5)
        facts["timings"]["shutdown"] = round(time.monotonic() - t5, 2)
    return facts


def _scenarios(session, prefix: str, alive_at: dict, facts: dict,
               lose: Callable[[], None], back: Callable[[], None]) -> None:
    def leaf(job):
        session.refresh()
        return job.subjobs[0] if job.subjobs else job

    def until(what: str, condition, timeout: float = 60.0, job=None) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                now = "" if job is None else (
                    f": the subjob is {leaf(job).status.value} ({leaf(job).backend_detail}), its processes "
                    f"{'alive' if procs.find_by_marker(prefix + leaf(job).fqid) else 'gone'}; "
                    f"history {history_entries(leaf(job).history)}")
                raise RuntimeError(f"timed out waiting for {what}{now}")
            time.sleep(0.05)

    def seen(job, seconds: float) -> list[tuple[str, str]]:
        """(status, detail) of the leaf, sampled for ``seconds``."""
        found, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            sub = leaf(job)
            found.append((sub.status.value, sub.backend_detail))
            time.sleep(0.1)
        return sorted(set(found))

    def submit(args: list[str]):
        job = Job(application=Executable(exe="/bin/sh"), backend=Hosts(hosts=["n1"]),
                  splitter=ArgSplitter(args=[["-c", " ".join(args)]]))
        session.submit(job)
        until("the subjob to run", lambda: leaf(job).status.value == "running")
        alive_at[leaf(job).fqid] = []
        until("its processes", lambda: bool(procs.find_by_marker(prefix + leaf(job).fqid)))
        return job

    def lose_node():
        t = time.monotonic()
        lose()
        return round(time.monotonic() - t, 2)

    def node_back():
        t = time.monotonic()
        back()
        return round(time.monotonic() - t, 2)

    def node_lost(job) -> bool:
        return leaf(job).backend_detail.startswith("Node lost")

    def report(job) -> dict:
        sub = leaf(job)
        entries = history_entries(sub.history)
        final = next((e for e in reversed(entries) if e.dst in {s.value for s in FINAL}), None)
        series = alive_at.get(sub.fqid, [])
        return {"fqid": sub.fqid, "status": sub.status.value, "master": job.status.value,
                "exit_code": sub.exit_code,
                "detail": sub.backend_detail, "final_note": final.note if final else None,
                "alive_after_final": [t for t, alive in series if final and alive and t > final.when],
                "last_alive": max((t for t, alive in series if alive), default=None),
                "final_time": final.when if final else None,
                "history": [(e.src, e.dst, e.note[:160]) for e in entries]}

    # 1. The node goes while `sleep 60` runs: held, kill unconfirmed; back: kill confirmed.
    t1 = time.monotonic()
    first = submit(["sleep", "60"])
    facts["s1_remove"] = lose_node()
    until("'Node lost'", lambda: node_lost(first), timeout=30, job=first)
    facts["s1_while_lost"] = seen(first, 3.0)
    facts["s1_alive_while_lost"] = bool(procs.find_by_marker(prefix + leaf(first).fqid))
    facts["s1_leaks_while_lost"] = session.leaks()
    try:
        session.kill(first)
        facts["s1_kill"] = "returned"
    except KillNotConfirmed as error:
        facts["s1_kill"] = f"KillNotConfirmed: {error}"
    facts["s1_after_kill"] = seen(first, 1.0)
    facts["s1_alive_after_kill"] = bool(procs.find_by_marker(prefix + leaf(first).fqid))
    facts["s1_back"] = node_back()
    until("the kill to be confirmed", lambda: leaf(first).status in FINAL)
    facts["s1"] = report(first)
    facts["timings"]["s1"] = round(time.monotonic() - t1, 2)

    # 2. It ends while its node is away: still held until the node is back to say so.
    t2 = time.monotonic()
    second = submit(["sleep", "4;", "echo", "ended-away"])
    lose_node()
    until("'Node lost'", lambda: node_lost(second), timeout=30, job=second)
    until("the payload to end", lambda: not procs.find_by_marker(prefix + leaf(second).fqid), timeout=30)
    facts["s2_ended_while_lost"] = seen(second, 2.0)
    node_back()
    until("its outcome", lambda: leaf(second).status in FINAL)
    facts["s2"] = report(second)
    facts["s2"]["stdout"] = session.peek(leaf(second)).strip()
    facts["timings"]["s2"] = round(time.monotonic() - t2, 2)

    # 3. The node goes and comes back while it runs: watched again, it ends on its own.
    t3 = time.monotonic()
    third = submit(["sleep", "12;", "echo", "watched"])
    lose_node()
    until("'Node lost'", lambda: node_lost(third), timeout=30, job=third)
    facts["s3_while_lost"] = seen(third, 1.0)
    node_back()
    until("it to be watched again", lambda: leaf(third).backend_detail == "Running", timeout=30)
    facts["s3_alive_when_back"] = bool(procs.find_by_marker(prefix + leaf(third).fqid))
    until("its end", lambda: leaf(third).status in FINAL)
    facts["s3"] = report(third)
    facts["s3"]["stdout"] = session.peek(leaf(third)).strip()
    facts["timings"]["s3"] = round(time.monotonic() - t3, 2)

    # 4. The user gives up while the node is away: force_status('failed', force=True)
    #    declares it failed and records it in the leak ledger, which lists it (its host
    #    cannot be asked) until the node is back and the kill is confirmed there.
    t4 = time.monotonic()
    fourth = submit(["sleep", "60"])
    lose_node()
    until("'Node lost'", lambda: node_lost(fourth), timeout=30, job=fourth)
    session.force_status(fourth, "failed", force=True)
    facts["s4_forced"] = report(fourth)
    facts["s4_alive_when_forced"] = bool(procs.find_by_marker(prefix + leaf(fourth).fqid))
    facts["s4_leaks_while_lost"] = [(f["fqid"], f["source"]) for f in session.leaks()]
    node_back()
    until("the kill to be confirmed", lambda: not procs.find_by_marker(prefix + leaf(fourth).fqid))
    until("the ledger entry to be resolved", lambda: not session.leaks(), timeout=30)
    facts["timings"]["s4"] = round(time.monotonic() - t4, 2)
