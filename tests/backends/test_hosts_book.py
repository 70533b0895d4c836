"""The Hosts actor's host record (HostBook, pure) and the checks a host's agent runs
(checks.py, with real site commands, real directories and the real free-disk figure)."""

from __future__ import annotations

import os

import pytest

from ganga_like.backends.hosts import checks
from ganga_like.backends.hosts import host_states as hs
from ganga_like.backends.hosts.hostbook import HostBook
from ganga_like.backends.hosts.inventory import Inventory, NodeHost


def inventory(*hosts: NodeHost) -> Inventory:
    return Inventory({h.name: h for h in hosts}, {}, {})


def node(name: str, alive: bool = True, protection: str = hs.NO_PROTECTION) -> NodeHost:
    return NodeHost(name, f"id-{name}", alive, frozenset({"x86_64"}), protection=protection)


# ---------------------------------------------------------------------- HostBook


def test_a_service_start_verifies_again_the_hosts_left_checking():
    book = HostBook()
    left = {"a": hs.CLEANING, "b": hs.REPAIRING, "c": hs.VERIFYING, "e": hs.REPAIR_FAILED}
    to_verify = book.sync(inventory(node("a"), node("b"), node("c"), node("d"), node("e")), {}, left,
                          dirty={"d"})
    assert to_verify == ["a", "b", "c", "e"]
    assert [n for n, s in book.states.items() if s.dirty] == ["d"]  # as the host said
    assert {n: s.status for n, s in book.states.items()} == {"a": hs.VERIFYING, "b": hs.VERIFYING,
                                                             "c": hs.VERIFYING, "d": hs.READY,
                                                             "e": hs.VERIFYING}
    assert book.state("b").history[-1][2] == "a service start found it left Repairing"


def test_a_lost_node_is_repair_failed_and_verified_when_back_unless_held():
    book = HostBook()
    book.sync(inventory(node("a"), node("b")), {})
    book.sync(inventory(node("a", alive=False), node("b", alive=False)), {})
    assert book.state("a").status == book.state("b").status == hs.REPAIR_FAILED
    # b still holds a stranded subjob: not verified (nor given) until that is settled.
    assert book.sync(inventory(node("a"), node("b")), {"b": object()}) == ["a"]
    assert book.state("a").status == hs.VERIFYING and book.state("b").status == hs.REPAIR_FAILED


@pytest.mark.parametrize(("before", "dirty", "skip", "protection", "first"), [
    ("if dirty", False, False, hs.NO_PROTECTION, hs.VERIFYING),
    ("if dirty", True, False, hs.NO_PROTECTION, hs.CLEANING),
    ("always", False, False, hs.NO_PROTECTION, hs.CLEANING),
    ("never", True, False, hs.NO_PROTECTION, hs.VERIFYING),
    ("never", False, True, hs.NO_PROTECTION, hs.RUNNING),
    ("never", False, False, hs.DO_NOT_VERIFY, hs.RUNNING),
])
def test_what_an_assigned_host_does_first(before, dirty, skip, protection, first):
    book = HostBook()
    book.sync(inventory(node("a", protection=protection)), {})
    book.state("a").dirty = dirty
    assert book.first_step("a", before, skip) == first == book.state("a").status


@pytest.mark.parametrize(("protection", "after"), [
    (hs.NO_PROTECTION, hs.REPAIRING), (hs.REPAIR_SOFTWARE_ONLY, hs.REPAIRING),
    (hs.REPAIR_FILESYSTEM_ONLY, hs.REPAIRING), (hs.DO_NOT_REPAIR, hs.REPAIR_FAILED)])
def test_a_failed_verify_is_repaired_as_the_protection_allows(protection, after):
    book = HostBook()
    book.sync(inventory(node("a", protection=protection)), {})
    book.first_step("a", "never", False)
    assert book.failed("a", "a failed verify") == (after == hs.REPAIRING)
    assert book.state("a").status == after
    if after == hs.REPAIRING:
        assert book.check_done("a", False, hs.REPAIRING) == hs.REPAIR_FAILED
        book.reset("a")  # a job names it
        assert book.state("a").status == hs.READY


def test_after_a_run_a_host_is_cleaned_when_asked_and_stays_dirty_otherwise():
    book = HostBook()
    book.sync(inventory(node("a"), node("b")), {})
    for host in "ab":
        book.first_step(host, "never", True)
        book.running(host)
    assert book.after_run("a", clean=True, alive=True, why="reboot_after='always'") is True
    assert book.state("a").status == hs.CLEANING
    assert book.check_done("a", True, hs.CLEANING) == hs.READY and not book.state("a").dirty
    assert book.after_run("b", clean=False, alive=True, why="done") is False
    assert book.state("b").status == hs.READY and book.state("b").dirty


def test_the_host_rows_show_each_host_once_with_its_subjob():
    book = HostBook()
    inv = inventory(node("b"), node("a", protection=hs.DO_NOT_REPAIR))
    book.sync(inv, {})
    book.checked("a", False, "verify: no")
    rows = book.rows(inv, {"b": "3.1"})
    assert [(r["name"], r["status"], r["protection"], r["subjob"]) for r in rows] == [
        ("a", hs.READY, hs.DO_NOT_REPAIR, ""), ("b", hs.READY, hs.NO_PROTECTION, "3.1")]
    assert rows[0]["last_result"] == "failed: verify: no" and rows[0]["last_check"] > 0


# ---------------------------------------------------------------------- checks (on the host)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The host's environment, as its Ray node would give it: a scratch directory here."""
    monkeypatch.setenv(checks.SCRATCH_VAR, str(tmp_path / "scratch"))
    for var in (checks.MIN_FREE_VAR, checks.VERIFY_VAR, checks.REPAIR_VAR, checks.CLEANUP_VAR):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_verify_checks_free_disk_against_the_threshold(site, monkeypatch):
    ok, note = checks.verify("h")
    assert ok and note.endswith(f"MB free under {site / 'scratch'}")
    monkeypatch.setenv(checks.MIN_FREE_VAR, str(10**12))  # more than any disk here
    ok, note = checks.verify("h")
    assert not ok and note.startswith(f"free disk under {site / 'scratch'} is ") and \
        note.endswith("MB, below the 1e+12 MB threshold")
    monkeypatch.setenv(checks.MIN_FREE_VAR, "lots")
    assert checks.verify("h") == (False, "GANGA_LIKE_MIN_FREE_MB='lots' is not a number of MB")


def test_site_commands_that_fail_say_how_in_one_line(site, monkeypatch):
    monkeypatch.setenv(checks.VERIFY_VAR, "echo disk is sad >&2; exit 4")
    assert checks.verify("h") == (
        False, "site verify command (GANGA_LIKE_VERIFY_COMMAND) exited 4: disk is sad")
    monkeypatch.setenv(checks.CLEANUP_VAR, "false")
    assert checks.cleanup("h") == (False, "site cleanup command (GANGA_LIKE_CLEANUP_COMMAND) exited 1")


def test_repair_does_only_what_it_may(site, monkeypatch):
    scratch = site / "scratch"
    scratch.mkdir()
    (scratch / "junk").write_text("x")
    (scratch / "dir").mkdir()
    monkeypatch.setenv(checks.REPAIR_VAR, f"touch {site}/repaired")
    ok, note = checks.repair("h", clear=False, command=True)  # Repair software only
    assert ok and os.path.exists(site / "repaired") and sorted(os.listdir(scratch)) == ["dir", "junk"]
    ok, note = checks.repair("h", clear=True, command=False)  # Repair filesystem only
    assert ok and os.listdir(scratch) == [] and note.startswith("scratch ") and "verify passed" in note
    monkeypatch.setenv(checks.VERIFY_VAR, "false")
    ok, note = checks.repair("h", clear=True, command=True)
    assert not ok and "verify failed: site verify command" in note


def test_a_host_is_marked_dirty_until_its_next_cleanup(site):
    assert not checks.is_dirty("h")
    checks.mark_dirty("h")
    assert checks.is_dirty("h") and os.path.exists(f"{site / 'scratch'}.dirty")
    assert checks.verify("h")[0] and checks.is_dirty("h")  # a verify leaves it dirty
    assert checks.cleanup("h")[0] and not checks.is_dirty("h")


def test_a_check_under_way_is_recorded_beside_scratch(site):
    assert checks.unfinished("h") == ""
    checks.begin("h", hs.CLEANING)
    assert checks.unfinished("h") == hs.CLEANING and os.path.exists(f"{site / 'scratch'}.check")
    checks.end("h")
    assert checks.unfinished("h") == ""
    checks.begin("h", hs.REPAIRING)
    checks.end("h", left=hs.REPAIR_FAILED)  # a failed repair leaves the word for the next service
    assert checks.unfinished("h") == hs.REPAIR_FAILED


# ---------------------------------------------------------------------- how a node describes its host


def test_a_node_declares_its_protection_and_has_a_capacity():
    from ganga_like.backends import resources as rq
    from ganga_like.backends.hosts.inventory import discover, fitting

    nodes = [
        {"NodeID": "a" * 40, "Alive": True, "Resources": {
            "host:a": 1, "label:x86_64": 1, "protection:do_not_repair": 1, "CPU": 4, "GPU": 2,
            "memory": 8 * rq.BYTES_PER_MB * 1024, "bignode": 1}},
        {"NodeID": "b" * 40, "Alive": True, "Resources": {"host:b": 1, "protection:sometimes": 1, "CPU": 1}},
        {"NodeID": "c" * 40, "Alive": False, "Resources": {}},  # Ray's record of a dead node
    ]
    inv = discover(nodes)
    assert sorted(inv.hosts) == ["a", "b"]  # the dead node, named by nothing, is not listed
    a, b = inv.hosts["a"], inv.hosts["b"]
    assert a.protection == hs.DO_NOT_REPAIR and not a.problem
    assert b.protection == hs.NO_PROTECTION and b.problem.startswith("unknown protection 'sometimes'")
    assert a.capacity == rq.Capacity("host a", 4.0, (0, 1), 8192.0, (("bignode", 1.0),))
    assert fitting(rq.Request(), inv) is None
    assert fitting(rq.Request(gpus=1), inv) == frozenset({"a"})
    assert fitting(rq.Request(cpus=8), inv) == frozenset()
