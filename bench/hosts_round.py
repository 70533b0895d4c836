"""(s) One pure round of the Hosts scheduler: 100 hosts, 10,000 waiting subjobs (issue 18).

The inputs are what a busy site gives one round: hosts with labels (some "only if
needed", two atomic-group instances), most of them busy, and ten jobs of 1,000 waiting
subjobs each asking for a metahost, explicit hosts, dependencies or an atomic group.
No Ray, no I/O: only ``scheduler.schedule``. Median of ``rounds`` rounds.
"""

from __future__ import annotations

import statistics
import time

from ganga_like.backends.hosts import scheduler as sch


def inputs(hosts: int, waiting: int) -> tuple[list[sch.Host], list[sch.Label], list[sch.AtomicGroup],
                                              list[sch.Entry]]:
    labels = [sch.Label("x86_64"), sch.Label("i386"), sch.Label("gpu", only_if_needed=True),
              sch.Label("rack1", atomic_group="rack"), sch.Label("rack2", atomic_group="rack")]
    machines = []
    for i in range(hosts):
        names = {0: ("x86_64",), 1: ("x86_64", "gpu"), 2: ("i386",), 3: ("rack1",), 4: ("rack2",)}[i % 5]
        busy = i % 10 != 0  # one host in ten is Ready: the rest run, are checked or cleaned
        status = (sch.RUNNING, sch.VERIFYING, sch.CLEANING)[i % 3] if busy else sch.READY
        machines.append(sch.Host(f"h{i:03d}", frozenset(names), status, holder=f"1.{i}" if busy else ""))
    requests = [dict(metahost="x86_64"), dict(metahost="i386"), dict(dependencies=frozenset({"gpu"})),
                dict(hosts=("h000", "h005", "h010")), dict(metahost="x86_64", synch_count=2),
                dict(atomic_group="rack", synch_count=2), dict(metahost="gpu"), dict(),
                dict(hosts=("h002",)), dict(atomic_group="rack", synch_count=1, group_wait=600.0)]
    per_job = waiting // len(requests)
    entries = [sch.Entry(f"{job + 2}.{sub}", **request)  # type: ignore[arg-type]
               for job, request in enumerate(requests) for sub in range(per_job)]
    return machines, labels, [sch.AtomicGroup("rack", max_machines=20)], entries


def scheduler_round(hosts: int = 100, waiting: int = 10_000, rounds: int = 7,
                    tmp_root: str = "") -> dict:
    machines, labels, groups, entries = inputs(hosts, waiting)
    times, decided = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        decided = sch.schedule(machines, labels, groups, entries, now=10.0)
        times.append(time.perf_counter() - started)
    assert decided is not None
    return {"round_s": statistics.median(times), "rounds_s": times, "hosts": hosts, "waiting": waiting,
            "assigned": len(decided.assignments), "waits": len(decided.waits)}
