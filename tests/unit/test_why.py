"""``why``: the lines it says, from what a job stores (pure: no database, no backend)."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from ganga_like.model.why import explain, id_ranges
from ganga_like.status import Cause, Source, Status

NOW = 1_000_000.0


@dataclasses.dataclass
class Leaf:
    fqid: str
    status: Status
    backend_detail: str = ""
    backend_note: str = ""
    reason: str = ""
    exit_code: int | None = None
    handle: tuple | None = None
    history: tuple = ()


def since(seconds: float, to: Status, note: str = "", cause: Cause | None = None,
          source: Source = Source.BACKEND) -> tuple:
    entry = (NOW - seconds, "submitted", to.value, note, source.value)
    return (entry + (cause.stored(),),) if cause is not None else (entry,)


def test_a_master_groups_its_waiting_subjobs_by_reason_biggest_first():
    subs = ([Leaf("3.0", Status.RUNNING, "Running", handle=("Local", "3.0", "node1", 42, 0.0, ""))]
            + [Leaf(f"3.{n}", Status.SUBMITTED, "ConcurrencyLimit", "Local's concurrency limit 1 reached")
               for n in range(1, 5)]
            + [Leaf("3.5", Status.SUBMITTED, "Resources", "needs 2 GPUs, 0 of 2 free"),
               Leaf("3.6", Status.COMPLETED), Leaf("3.7", Status.SUBMITTING)])
    report = explain(Leaf("3", Status.RUNNING), subs, now=NOW)
    assert report.lines() == [
        "3 is running: 6 of 8 subjobs wait; 1 completed, 1 running",
        "  4 subjobs (3.1-3.4): ConcurrencyLimit: Local's concurrency limit 1 reached",
        "  1 subjob (3.5): Resources: needs 2 GPUs, 0 of 2 free",
        "  1 subjob (3.7): Submitting: being handed to its backend",
    ]
    assert report.as_dict()["reasons"][0] == {
        "code": "ConcurrencyLimit", "note": "Local's concurrency limit 1 reached", "count": 4,
        "subjobs": ["3.1", "3.2", "3.3", "3.4"]}
    assert str(report) == repr(report) == "\n".join(report.lines())


def test_a_master_with_nothing_waiting_says_so_with_its_counts():
    subs = [Leaf("4.0", Status.COMPLETED), Leaf("4.1", Status.FAILED), Leaf("4.2", Status.FAILED)]
    assert str(explain(Leaf("4", Status.FAILED), subs, now=NOW)) == (
        "4 is failed: no subjob waits (2 failed, 1 completed)")


def test_a_waiting_leaf_says_its_backends_words_and_since_when():
    leaf = Leaf("5", Status.SUBMITTED, "HostsNotReady", "of 5 hosts: 2 lack label gpu, 3 are Repair Failed",
                history=since(30, Status.SUBMITTED))
    assert str(explain(leaf, now=NOW)).startswith("5 waits (submitted since ")
    assert str(explain(leaf, now=NOW)).endswith(
        ", 30 s ago): HostsNotReady: of 5 hosts: 2 lack label gpu, 3 are Repair Failed")
    assert str(explain(Leaf("5", Status.SUBMITTED), now=NOW)) == "5 waits (submitted): Queued"


def test_a_leaf_that_does_not_wait_says_what_it_does():
    assert str(explain(Leaf("6", Status.NEW), now=NOW)) == (
        "6 is new: not submitted yet (submit it with j.submit())")
    running = Leaf("6.1", Status.RUNNING, "Gathering", "collecting the exit status",
                   handle=("Hosts", "6.1", "n2", 0, 0.0, "task-7"), history=since(7200, Status.RUNNING))
    assert str(explain(running, now=NOW)).endswith(
        "2.0 h ago: Gathering: collecting the exit status")
    assert str(explain(running, now=NOW)).startswith("6.1 is running on n2 since ")
    failed = Leaf("6.2", Status.FAILED, "Done", reason="exit code 3 | stderr: boom", exit_code=3,
                  history=since(120, Status.FAILED, "exit code 3 | stderr: boom"))
    assert str(explain(failed, now=NOW)).endswith(
        "2 min ago (exit code 3), exit code 3 | stderr: boom: nothing waits")
    asked = Cause("kill", "41", origin="ganga-like kill, pid 9")
    killed = Leaf("6.3", Status.KILLED, handle=("Local", "6.3", "vm", 42, 0.0, ""),
                  history=since(5, Status.KILLED, "its processes ended", asked, Source.USER))
    assert str(explain(killed, now=NOW)).startswith("6.3 is killed on vm since ")
    assert str(explain(killed, now=NOW)).endswith(
        "5 s ago, its processes ended, by kill #41 from ganga-like kill, pid 9: nothing waits")
    # A change the monitor applied names no cause: a batch number tells a user nothing.
    batch = Cause("monitor batch", "12")
    # Nor a place where it never ran (dropped from the queue: its handle names no process).
    seen = Leaf("6.4", Status.KILLED, history=since(5, Status.KILLED, "its processes ended", batch),
                handle=("Local", "6.4", "vm", 0, 0.0, ""))
    assert str(explain(seen, now=NOW)).startswith("6.4 is killed since ")
    assert str(explain(seen, now=NOW)).endswith("5 s ago, its processes ended: nothing waits")


def test_id_ranges():
    assert id_ranges(["3.1", "3.2", "3.3", "3.7", "3.9", "3.10"]) == "3.1-3.3, 3.7, 3.9-3.10"
    assert id_ranges([f"2.{n}" for n in range(0, 40, 2)], limit=3) == "2.0, 2.2, 2.4, and 17 more"
    assert id_ranges(["7"]) == "7"


@given(st.lists(st.integers(0, 60), unique=True).map(sorted))
def test_id_ranges_name_every_subjob_once(numbers):
    words = id_ranges([f"1.{n}" for n in numbers], limit=10**6)
    named: list[int] = []
    for word in filter(None, words.split(", ")):
        first, _, last = word.partition("-")
        named += range(int(first[2:]), int((last or first)[2:]) + 1)
    assert named == numbers
