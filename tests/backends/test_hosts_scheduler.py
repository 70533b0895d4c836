"""The Hosts scheduler's rules (pure: no Ray), with Hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganga_like.backends.hosts import scheduler as s
from ganga_like.backends.hosts.scheduler import (
    AtomicGroup,
    Entry,
    Host,
    Label,
    schedule,
)

LABELS = [
    Label("x86_64"),
    Label("gpu", only_if_needed=True),
    Label("rack1", atomic_group="rack"),
    Label("rack2", atomic_group="rack"),
]
GROUPS = [AtomicGroup("rack", max_machines=3)]


def H(name, *labels, status=s.READY, locked=False, holder=""):
    return Host(name, frozenset(labels), status, locked, holder)


def run(hosts, entries, labels=LABELS, groups=GROUPS):
    return schedule(hosts, labels, groups, entries)


# ---------------------------------------------------------------------- metahosts


def test_metahost_gets_any_ready_host_with_the_label():
    hosts = [H("a", "x86_64", status=s.RUNNING), H("b", "x86_64"), H("c", "i386")]
    result = run(hosts, [Entry("1", metahost="x86_64")])
    assert result.assignment("1").hosts == ("b",)


def test_metahost_waits_queued_when_no_labelled_host_is_ready():
    hosts = [H("a", "x86_64", status=s.CLEANING), H("c", "i386")]
    (wait,) = run(hosts, [Entry("1", metahost="x86_64")]).waits
    assert wait.status == s.HOSTS_NOT_READY and not wait.impossible
    assert wait.reason == ("needs 1 Ready hosts labelled x86_64, 0 Ready; "
                           "of 2 hosts: 1 is Cleaning, 1 lacks label x86_64")


def test_unknown_label_is_impossible():
    (wait,) = run([H("a", "x86_64")], [Entry("1", metahost="sparc")]).waits
    assert wait.impossible and "sparc" in wait.reason


def test_locked_hosts_are_never_used():
    result = run([H("a", "x86_64", locked=True)], [Entry("1", metahost="x86_64"), Entry("2", hosts=("a",))])
    assert not result.assignments and not any(w.impossible for w in result.waits)


def test_oldest_entry_first_and_no_host_twice():
    hosts = [H("a", "x86_64"), H("b", "x86_64")]
    result = run(hosts, [Entry(str(i), metahost="x86_64") for i in range(3)])
    assert [a.key for a in result.assignments] == ["0", "1"]
    assert result.wait("2").status == s.HOSTS_NOT_READY
    assert result.wait("2").reason.endswith("of 2 hosts: 2 hold subjobs 0 and 1")


def test_label_less_entry_takes_any_plain_host():
    hosts = [H("g", "gpu"), H("r", "rack1"), H("p")]
    assert run(hosts, [Entry("1")]).assignment("1").hosts == ("p",)


# ---------------------------------------------------------------------- only if needed


def test_only_if_needed_host_not_used_by_other_metahosts():
    hosts = [H("g", "x86_64", "gpu")]
    (wait,) = run(hosts, [Entry("1", metahost="x86_64")]).waits
    assert wait.impossible  # the only x86_64 host is only-if-needed


def test_only_if_needed_host_used_when_a_dependency():
    hosts = [H("g", "x86_64", "gpu"), H("p", "x86_64", status=s.RUNNING)]
    result = run(hosts, [Entry("1", metahost="x86_64", dependencies=frozenset({"gpu"}))])
    assert result.assignment("1").hosts == ("g",)


def test_only_if_needed_host_used_when_the_metahost_is_that_label():
    assert run([H("g", "x86_64", "gpu")], [Entry("1", metahost="gpu")]).assignment("1").hosts == ("g",)


def test_only_if_needed_host_usable_when_named_explicitly():
    assert run([H("g", "x86_64", "gpu")], [Entry("1", hosts=("g",))]).assignment("1").hosts == ("g",)


def test_plain_host_preferred_only_because_gpu_is_ineligible():
    hosts = [H("a", "x86_64", "gpu"), H("b", "x86_64")]
    assert run(hosts, [Entry("1", metahost="x86_64")]).assignment("1").hosts == ("b",)


# ---------------------------------------------------------------------- explicit hosts


def test_explicit_hosts_and_dependencies():
    hosts = [H("a", "x86_64"), H("b")]
    assert run(hosts, [Entry("1", hosts=("b", "a"))]).assignment("1").hosts == ("b",)
    (wait,) = run(hosts, [Entry("1", hosts=("b",), dependencies=frozenset({"x86_64"}))]).waits
    assert wait.impossible and "lacks the dependency" in wait.reason
    (wait,) = run(hosts, [Entry("1", hosts=("zz",))]).waits
    assert wait.impossible and "unknown host 'zz'" in wait.reason


def test_regular_job_cannot_name_an_atomic_group_host():
    (wait,) = run([H("r", "rack1")], [Entry("1", hosts=("r",))]).waits
    assert wait.impossible and "atomic group instance rack1" in wait.reason


def test_scheduling_against_repair_failed_resets_it_to_ready():
    result = run([H("a", status=s.REPAIR_FAILED)], [Entry("1", hosts=("a",))])
    assert result.resets == ("a",) and result.assignment("1").hosts == ("a",)
    # A metahost entry does not reset it.
    result = run([H("a", "x86_64", status=s.REPAIR_FAILED)], [Entry("1", metahost="x86_64")])
    assert result.resets == () and result.wait("1").status == s.HOSTS_NOT_READY


# ---------------------------------------------------------------------- synchronous jobs


def test_synchronous_job_waits_pending_and_holds_its_ready_hosts():
    hosts = [H("a", "x86_64"), H("b", "x86_64", status=s.RUNNING), H("c", "x86_64", status=s.VERIFYING)]
    result = run(hosts, [Entry("1", metahost="x86_64", synch_count=2), Entry("2", metahost="x86_64")])
    wait = result.wait("1")
    assert wait.status == s.JOB_PENDING and wait.held == ("a",)
    assert wait.reason == ("synchronous: holds a; needs 2 Ready hosts labelled x86_64, 1 Ready; "
                           "of 3 hosts: 1 is Ready, 1 is Running, 1 is Verifying")
    assert result.held == {"a": "1"}
    assert result.wait("2").status == s.HOSTS_NOT_READY  # the held host is not given to a newer job
    assert "1 holds subjob 1" in result.wait("2").reason


def test_synchronous_job_starts_on_all_hosts_together():
    hosts = [H("a", "x86_64"), H("b", "x86_64", status=s.PENDING), H("c", "x86_64")]
    result = run(hosts, [Entry("1", metahost="x86_64", synch_count=2)])
    assert result.assignment("1").hosts == ("a", "b")


def test_synch_count_above_the_hosts_that_exist_is_impossible():
    (wait,) = run([H("a", "x86_64")], [Entry("1", metahost="x86_64", synch_count=2)]).waits
    assert wait.impossible


# ---------------------------------------------------------------------- atomic groups


def rack_hosts(ready1=2, ready2=3, size=3):
    hosts = []
    for rack, ready in (("rack1", ready1), ("rack2", ready2)):
        for i in range(size):
            hosts.append(H(f"{rack}-{i}", rack, status=s.READY if i < ready else s.RUNNING))
    return hosts


def test_regular_jobs_never_use_atomic_group_hosts():
    result = run(rack_hosts(), [Entry("1"), Entry("2", metahost="rack1")])
    assert not result.assignments and all(w.impossible for w in result.waits)


def test_atomic_job_takes_one_instance_with_enough_ready_hosts():
    result = run(rack_hosts(ready1=1, ready2=3), [Entry("1", atomic_group="rack", synch_count=2)])
    assignment = result.assignment("1")
    assert assignment.instance == "rack2" and assignment.hosts == ("rack2-0", "rack2-1", "rack2-2")


def test_atomic_job_uses_every_ready_host_up_to_max_machines():
    hosts = [H(f"h{i}", "rack1") for i in range(5)]
    result = run(hosts, [Entry("1", atomic_group="rack", synch_count=1)])
    assert len(result.assignment("1").hosts) == 3  # max_machines
    result = run(hosts, [Entry("1", atomic_group="rack")], groups=[AtomicGroup("rack")])
    assert len(result.assignment("1").hosts) == 5  # no ceiling


def test_atomic_job_below_synch_count_waits_queued():
    result = run(rack_hosts(ready1=1, ready2=1), [Entry("1", atomic_group="rack", synch_count=2)])
    wait = result.wait("1")
    assert wait.status == s.GROUP_TOO_SMALL and not wait.impossible and wait.held == ()
    assert wait.reason == ("needs 2 Ready hosts of one instance; "
                           "group rack1: 1 of 3 hosts Ready (2 are Running); "
                           "group rack2: 1 of 3 hosts Ready (2 are Running)")


def test_atomic_job_on_a_chosen_instance():
    result = run(rack_hosts(), [Entry("1", atomic_group="rack", metahost="rack1", synch_count=2)])
    assert result.assignment("1").instance == "rack1"
    (wait,) = run(rack_hosts(), [Entry("1", atomic_group="rack", metahost="x86_64")]).waits
    assert wait.impossible


def test_atomic_impossibilities():
    (wait,) = run(rack_hosts(), [Entry("1", atomic_group="rack", synch_count=4)]).waits
    assert wait.impossible and "max number of machines 3" in wait.reason
    (wait,) = run(rack_hosts(size=2), [Entry("1", atomic_group="rack", synch_count=3)]).waits
    assert wait.impossible
    (wait,) = run(rack_hosts(), [Entry("1", atomic_group="cluster")]).waits
    assert wait.impossible and "unknown atomic group" in wait.reason


def test_two_atomic_jobs_take_two_instances():
    result = run(rack_hosts(ready1=3, ready2=3), [Entry(k, atomic_group="rack", synch_count=2) for k in "12"])
    assert {a.instance for a in result.assignments} == {"rack1", "rack2"}


# ---------------------------------------------------------------------- properties

LABEL_NAMES = ["x86_64", "gpu", "rack1", "rack2", "i386"]

hosts_st = st.lists(
    st.builds(
        lambda labels, status, locked: (frozenset(labels), status, locked),
        st.sets(st.sampled_from(LABEL_NAMES), max_size=3),
        st.sampled_from(s.HOST_STATUSES),
        st.booleans(),
    ),
    max_size=10,
).map(lambda specs: [Host(f"h{i}", *spec) for i, spec in enumerate(specs)])

entry_st = st.one_of(
    st.builds(lambda m, d, k: ("meta", m, d, k), st.sampled_from([None, *LABEL_NAMES]),
              st.sets(st.sampled_from(LABEL_NAMES), max_size=2), st.integers(1, 3)),
    st.builds(lambda h, k: ("explicit", h, k),
              st.lists(st.integers(0, 11), min_size=1, max_size=3, unique=True), st.integers(1, 3)),
    st.builds(lambda i, k: ("atomic", i, k), st.sampled_from([None, "rack1", "rack2"]), st.integers(1, 4)),
)


def build_entries(raw):
    entries = []
    for index, item in enumerate(raw):
        key = str(index)
        if item[0] == "meta":
            entries.append(Entry(key, metahost=item[1], dependencies=frozenset(item[2]), synch_count=item[3]))
        elif item[0] == "explicit":
            entries.append(Entry(key, hosts=tuple(f"h{i}" for i in item[1]), synch_count=item[2]))
        else:
            entries.append(Entry(key, atomic_group="rack", metahost=item[1], synch_count=item[2]))
    return entries


@settings(max_examples=300, deadline=None)
@given(hosts=hosts_st, raw=st.lists(entry_st, max_size=8),
       max_machines=st.one_of(st.none(), st.integers(1, 4)))
def test_properties(hosts, raw, max_machines):
    entries = build_entries(raw)
    groups = [AtomicGroup("rack", max_machines)]
    result = schedule(hosts, LABELS, groups, entries)
    by_name = {h.name: h for h in hosts}
    by_key = {e.key: e for e in entries}
    label_map = {l.name: l for l in LABELS}
    atomic_labels = {l.name for l in LABELS if l.atomic_group}
    # Every entry gets exactly one decision.
    decided = [a.key for a in result.assignments] + [w.key for w in result.waits]
    assert sorted(decided) == sorted(by_key)
    # Never a host twice (assigned or held).
    used = [h for a in result.assignments for h in a.hosts] + [h for w in result.waits for h in w.held]
    assert len(used) == len(set(used))
    for assignment in result.assignments:
        entry = by_key[assignment.key]
        chosen = [by_name[h] for h in assignment.hosts]
        # Only free, unlocked hosts (or Repair Failed ones this entry explicitly reset).
        for host in chosen:
            assert not host.locked
            assert host.free or (host.status == s.REPAIR_FAILED and host.name in result.resets
                                 and entry.hosts)
            assert entry.dependencies <= host.labels
        if entry.atomic_group:
            assert assignment.instance in atomic_labels
            assert all(assignment.instance in h.labels for h in chosen)
            assert len(chosen) >= entry.synch_count  # never below synch count
            if max_machines is not None:
                assert len(chosen) <= max_machines  # never above the ceiling
        else:
            # Never an atomic-group host to a regular job; exactly synch_count hosts.
            assert not any(h.labels & atomic_labels for h in chosen)
            assert len(chosen) == entry.synch_count
            if not entry.hosts:
                for host in chosen:
                    assert s.eligible_for_metahost(label_map, host, entry)
                    assert entry.metahost is None or entry.metahost in host.labels
            else:
                assert set(assignment.hosts) <= set(entry.hosts)
    for wait in result.waits:
        entry = by_key[wait.key]
        assert wait.reason and "\n" not in wait.reason
        assert wait.status == s.QUEUED if wait.impossible else wait.status in s.WAIT_DETAILS
        if wait.held:
            assert wait.status == s.JOB_PENDING and not entry.atomic_group
            assert 0 < len(wait.held) < entry.synch_count
            assert not any(by_name[h].labels & atomic_labels for h in wait.held)


# ---------------------------------------------------------------------- the config (pure too)


def test_hosts_config_request_and_one_line_errors():

    from ganga_like.backends.hosts.config import Hosts
    from ganga_like.errors import InvalidValue

    backend = Hosts(label="x86_64", dependencies=["gpu"], synch_count=2)
    assert backend.request() == {"label": "x86_64", "hosts": [], "dependencies": ["gpu"], "atomic_group": "",
                                 "synch_count": 2, "skip_verify": False, "reboot_before": "if dirty",
                                 "reboot_after": "never", "group_wait": 0.0}
    assert backend.spec_options() == backend.request()
    assert backend.actor_key() == ("Hosts",)  # one actor schedules every Hosts job
    for bad in (dict(hosts="node1"), dict(synch_count=0), dict(label=3), dict(dependencies=["a", "a"]),
                dict(hosts=[" n1"]), dict(colour="red"), dict(skip_verify="yes"),
                dict(reboot_before="sometimes"), dict(reboot_after="if dirty"), dict(group_wait=-1)):
        with pytest.raises(InvalidValue) as error:
            Hosts(**bad)
        assert "\n" not in str(error.value) and "expected" in str(error.value)


def test_importing_the_package_does_not_import_ray():
    import subprocess
    import sys

    code = ("import sys, ganga_like.backends.hosts.config, ganga_like.backends.hosts.scheduler; "
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False"


# ---------------------------------------------------------------------- order, notes, variable host counts


def test_entries_run_in_the_order_of_their_ids_not_as_given():
    hosts = [H("a")]
    result = run(hosts, [Entry("10.0"), Entry("9.11"), Entry("9.2")])
    assert [a.key for a in result.assignments] == ["9.2"]
    assert [w.key for w in result.waits] == ["9.11", "10.0"]
    assert sorted(["10", "9", "009", "1.10", "1.9"], key=s.id_order) == ["1.9", "1.10", "9", "009", "10"]


def test_a_wait_counts_every_host_by_its_reason():
    hosts = [H("g1", "gpu"), H("g2", "gpu", status=s.REPAIR_FAILED), H("c1", "x86_64"), H("c2", "x86_64"),
             H("b", "x86_64", "gpu", status=s.RUNNING, holder="3.2")]
    round_ = run(hosts, [Entry("3.1", metahost="gpu"), Entry("4.0", metahost="gpu")])
    assert round_.assignment("3.1").hosts == ("g1",)
    assert round_.wait("4.0").reason == ("needs 1 Ready hosts labelled gpu, 0 Ready; of 5 hosts: "
                                         "2 hold subjobs 3.2 and 3.1, 2 lack label gpu, 1 is Repair Failed")


def test_atomic_job_may_wait_for_more_hosts_then_runs_with_what_is_ready():
    hosts = rack_hosts(ready1=2, ready2=0)
    entry = Entry("1", atomic_group="rack", synch_count=2, group_wait=600.0, since=100.0)
    wait = schedule(hosts, LABELS, GROUPS, [entry], now=160.0).wait("1")
    assert wait.status == s.GROUP_TOO_SMALL and wait.held == ("rack1-0", "rack1-1")
    assert wait.reason == "group rack1: 2 of 3 hosts Ready, waiting up to 540 s more for the others"
    # A regular or another atomic job cannot take the held hosts meanwhile.
    other = Entry("2", atomic_group="rack", synch_count=1)
    assert schedule(hosts, LABELS, GROUPS, [entry, other], now=160.0).wait("2").status == s.GROUP_TOO_SMALL
    done = schedule(hosts, LABELS, GROUPS, [entry], now=701.0).assignment("1")
    assert done.hosts == ("rack1-0", "rack1-1") and done.instance == "rack1"
    # Every host of the instance Ready: no wait at all.
    assert schedule(rack_hosts(ready1=3), LABELS, GROUPS, [entry], now=100.0).assignment("1").hosts == (
        "rack1-0", "rack1-1", "rack1-2")


def test_atomic_job_naming_hosts_is_refused_in_one_line():
    (wait,) = run(rack_hosts(), [Entry("1", atomic_group="rack", hosts=("rack1-0",))]).waits
    assert wait.impossible and wait.reason.startswith("hosts=[...] cannot be given with atomic_group='rack'")


def test_entries_alike_are_decided_once_but_each_gets_its_answer():
    hosts = [H(f"h{i}", "x86_64") for i in range(3)]
    entries = [Entry(f"7.{i}", metahost="x86_64") for i in range(50)]
    result = run(hosts, entries)
    assert [a.key for a in result.assignments] == ["7.0", "7.1", "7.2"]
    assert [w.key for w in result.waits] == [f"7.{i}" for i in range(3, 50)]
    assert len({w.reason for w in result.waits}) == 1
