"""Hosts on a real multi-node Ray cluster: run in its OWN pytest process by test_hosts_cluster.py.

Ray allows one cluster connection per process and the rest of the suite shares one
local Ray, so this module (not collected by the main run: its name does not start
with ``test_``) builds a ``ray.cluster_utils.Cluster`` for itself:

=====  ====================================================  =========================
host   resources                                             what it is
=====  ====================================================  =========================
head   host:head, label:x86_64                               a plain x86_64 host
n1     host:n1, label:x86_64, protection:do_not_verify       a plain x86_64 host, never verified
n2     host:n2, label:x86_64, only_if_needed:gpu             x86_64 + gpu (only if needed),
                                                             2 (Ray logical) GPUs
n3     host:n3, label:i386                                   a plain i386 host, with site
                                                             verify, repair and cleanup
                                                             commands (FLAGS files break it)
r1,r2  host:r*, atomic:rack:rack1 = 2                        atomic group rack, instance rack1, max 2;
                                                             r2 with a site verify command, and
                                                             protection:do_not_repair
=====  ====================================================  =========================

It runs the backend contract (explicit hosts head, n1, n2, n3) and the Autotest scenarios;
the node-death scenario runs after them (it removes r2, then adds it back), and last the
node-loss phase of a real Engine (hosts_node_loss_phase.py: n1 leaves and comes back four
times; test_hosts_node_loss.py asserts its facts), in this same cluster rather than a
second one. Every node is on this machine, so the leak checks of
tests/backends/conftest.py see every process.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time

import pytest

from ganga_like.backends import base
from ganga_like.backends.base import SubjobSpec
from ganga_like.backends.runtime import procs
from ganga_like.backends.runtime import status_file as sf
from ganga_like.ray_runtime import RAY_SYSTEM_CONFIG, import_ray, settle_environment

from .contract import BackendContract, EventLog, RayClient, actor_factory

NAMESPACE = "ganga_like_hosts_tests"
CONTRACT_HOSTS = ["head", "n1", "n2", "n3"]  # the contract runs up to 4 subjobs at once
_names = itertools.count()

NODES = {
    "n1": {"host:n1": 1, "label:x86_64": 1, "protection:do_not_verify": 1},
    "n2": {"host:n2": 1, "label:x86_64": 1, "only_if_needed:gpu": 1},
    "n3": {"host:n3": 1, "label:i386": 1},
    "r1": {"host:r1": 1, "atomic:rack:rack1": 2},
    "r2": {"host:r2": 1, "atomic:rack:rack1": 2, "protection:do_not_repair": 1},
}
GPUS = {"n2": 2}  # Ray's logical GPUs: no GPU needed to test their handing out
# The site's commands on n3 and r2 (the environment their Ray node starts with), driven by
# files in FLAGS: "broken" fails verify, "fixable" lets repair mend it, "cleanups" counts.
SITE = {
    "n3": {"GANGA_LIKE_VERIFY_COMMAND": "test ! -e {flags}/n3-broken || {{ echo n3 is broken >&2; exit 3; }}",
           "GANGA_LIKE_REPAIR_COMMAND": "if test -e {flags}/n3-fixable; then rm -f {flags}/n3-broken; fi",
           "GANGA_LIKE_CLEANUP_COMMAND": "echo cleaned >> {flags}/n3-cleanups",
           "GANGA_LIKE_SCRATCH": "{flags}/n3-scratch"},
    "r2": {"GANGA_LIKE_VERIFY_COMMAND": "test ! -e {flags}/r2-broken"},
}


def flags_dir() -> str:
    return os.path.join(os.environ["RAY_TMPDIR"], "flags")


def site_env(name: str) -> dict[str, str]:
    return {k: v.format(flags=flags_dir()) for k, v in SITE.get(name, {}).items()}


# num_cpus is also how many idle workers Ray keeps per node: with 3, a subjob's task
# reuses a warm worker instead of waiting 1-2 s for a new one (subjobs ask for no CPU).
SMALL = dict(num_cpus=3, object_store_memory=80 * 1024 * 1024)


@pytest.fixture(scope="session")
def cluster():
    """Head + 5 labelled nodes, connected; shut down (its own processes only) at the end."""
    if "RAY_TMPDIR" not in os.environ:  # (the test that runs this driver names one)
        os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="glh-", dir="/tmp")
    # The product's Ray environment (token authentication on), the token in the run's directory.
    settle_environment(token_path=os.path.join(os.environ["RAY_TMPDIR"], "ray-auth-token"))
    ray = import_ray()
    from ray.cluster_utils import Cluster

    started = time.monotonic()
    c = Cluster(initialize_head=True, head_node_args=dict(
        SMALL, resources={"host:head": 1, "label:x86_64": 1}, include_dashboard=False,
        _system_config=dict(RAY_SYSTEM_CONFIG)))
    os.makedirs(flags_dir(), exist_ok=True)
    nodes = {name: c.add_node(**SMALL, resources=res, env_vars=site_env(name), num_gpus=GPUS.get(name, 0))
             for name, res in NODES.items()}
    ray.init(address=c.address, namespace=NAMESPACE, log_to_driver=False, logging_level="WARNING")
    c.wait_for_nodes()
    # A first task on a node waits for Ray to start a worker there (1-2 s): do it now, not in a test.
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    warm = ray.remote(num_cpus=0)(lambda: os.getpid())
    ray.get([warm.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
             .remote()
             for n in ray.nodes() if n["Alive"]])
    print(f"cluster ready in {time.monotonic() - started:.1f} s")
    c.named_nodes = nodes  # type: ignore[attr-defined]
    yield c
    ray.shutdown()
    c.shutdown()


class HostsClient(RayClient):
    """A HostsActor client whose submit gives option-less specs a default request."""

    def __init__(self, actor, request: dict | None = None) -> None:
        super().__init__(actor)
        self.request = request or {}

    def hosts_table(self) -> list[dict]:
        import ray

        return ray.get(self.actor.hosts.remote())

    def submit(self, specs):
        import dataclasses

        import ray

        specs = [s if s.options else dataclasses.replace(s, options=dict(self.request)) for s in specs]
        return ray.get(self.actor.submit.remote(specs))


@pytest.fixture
def make_actor(cluster, leftover_check):
    from ganga_like.backends.hosts.actor import start_hosts_actor

    def start(concurrency: int | None = 2, request: dict | None = None) -> HostsClient:
        actor = start_hosts_actor(f"hosts-{os.getpid()}-{next(_names)}", 16, max_running=concurrency,
                                  namespace=NAMESPACE)
        return HostsClient(actor, {"hosts": CONTRACT_HOSTS} if request is None else request)

    yield from actor_factory(start)


class TestHostsContract(BackendContract):
    """The one backend contract, on three explicit hosts, ``max_running`` as its concurrency."""


# ---------------------------------------------------------------------- Autotest scenarios


def with_options(batch: list[SubjobSpec], **request) -> list[SubjobSpec]:
    import dataclasses

    from ganga_like.backends.hosts.config import Hosts

    config = Hosts(**request)
    options, asked = config.request(), config.resource_request()
    return [dataclasses.replace(s, options=options, request=asked) for s in batch]


def started_hosts(log: EventLog, fqid: str) -> list[str]:
    (event,) = log.of(fqid, base.STARTED)
    return event.handle.host.split(",")


def host_table(client) -> dict[str, str]:
    return {h["name"]: h["status"] for h in client.ping()["hosts"]}


def details(log: EventLog, fqid: str) -> list[str]:
    return [e.detail for e in log.of(fqid) if e.detail]


def running_since(workdir: str) -> float:
    history = sf.StatusFile(os.path.join(workdir, "status")).history()
    return next(i.when for i in history if i.state == sf.RUNNING)


def test_host_table_and_label_definitions(make_actor):
    client = make_actor(None)
    info = client.ping()
    table = {h["name"]: h for h in info["hosts"]}
    assert set(table) == {"head", "n1", "n2", "n3", "r1", "r2"}
    assert table["n2"]["labels"] == ["gpu", "x86_64"] and table["r1"]["labels"] == ["rack1"]
    assert all(h["status"] == "Ready" for h in table.values())
    assert info["labels"]["gpu"] == {"only_if_needed": True, "atomic_group": None}
    assert info["labels"]["rack1"] == {"only_if_needed": False, "atomic_group": "rack"}
    assert info["atomic_groups"] == {"rack": 2}


def test_metahost_runs_on_plain_labelled_hosts_only(make_actor, specs):
    client = make_actor(None)
    batch = with_options(specs([["/bin/sleep", "1.5"]] * 3), label="x86_64")
    assert not any(h.error for h in client.submit(batch))
    log = EventLog(client)
    log.until(lambda _: sum(bool(log.of(s.fqid, base.STARTED)) for s in batch) == 2)
    table = host_table(client)
    assert table["head"] == table["n1"] == "Running" and table["n2"] == "Ready"  # only if needed: unused
    # The one that waited said why (it may have started since, once a host came free; on a
    # loaded machine a host's verify can outlast another's 1.5 s subjob, so which one waited
    # is not known in advance).
    log.until(lambda _: any("HostsNotReady" in details(log, s.fqid) for s in batch))
    waiting = next(s for s in batch if "HostsNotReady" in details(log, s.fqid))
    note = next(e.note for e in log.of(waiting.fqid, base.DETAIL) if e.detail == "HostsNotReady")
    assert note.startswith("needs 1 Ready hosts labelled x86_64, 0 Ready; of 6 hosts: "), note
    assert "2 hold subjobs" in note and "3 lack label x86_64" in note and "1 is only if needed (gpu)" in note
    log.until(log.all_final([s.fqid for s in batch]))
    for spec in batch:
        assert started_hosts(log, spec.fqid)[0] in ("head", "n1")
        (final,) = log.finals()[spec.fqid]
        assert final.kind == base.FINISHED and final.exit_code == 0


def test_only_if_needed_and_explicit_hosts(make_actor, specs):
    client = make_actor(None)
    by_dependency = with_options(specs([["/bin/true"]]), label="x86_64", dependencies=["gpu"])
    by_label = with_options(specs([["/bin/true"]]), label="gpu")
    by_name = with_options(specs([["/bin/true"]]), hosts=["n2"])
    atomic_host = with_options(specs([["/bin/true"]]), hosts=["r1"])
    regular_on_rack = with_options(specs([["/bin/true"]]), label="rack1")
    handles = client.submit(by_dependency + by_label + by_name + atomic_host + regular_on_rack)
    assert not any(h.error for h in handles[:3])
    assert "atomic group instance rack1" in handles[3].error
    assert handles[4].error  # no regular host has the label
    fqids = [s.fqid for s in by_dependency + by_label + by_name]
    log = EventLog(client)
    log.until(log.all_final(fqids))
    assert [started_hosts(log, f) for f in fqids] == [["n2"], ["n2"], ["n2"]]


def test_atomic_group_job_is_gang_scheduled(make_actor, specs):
    from ray.util.placement_group import placement_group_table

    client = make_actor(None)
    command = "echo $GANGA_LIKE_HOST $GANGA_LIKE_HOST_INDEX $GANGA_LIKE_HOSTS; sleep 1"
    (spec,) = with_options(specs([["/bin/bash", "-c", command]]), atomic_group="rack", synch_count=2)
    client.submit([spec])
    log = EventLog(client)
    log.until(lambda _: bool(log.of(spec.fqid, base.STARTED)))
    hosts = started_hosts(log, spec.fqid)
    assert sorted(hosts) == ["r1", "r2"]
    table = host_table(client)
    assert table["r1"] == table["r2"] == "Running"
    groups = [g for g in placement_group_table().values() if g["name"] == f"ganga_like-{spec.fqid}"]
    assert len(groups) == 1 and groups[0]["strategy"] == "STRICT_SPREAD" and groups[0]["state"] == "CREATED"
    log.until(log.all_final([spec.fqid]))
    (final,) = log.finals()[spec.fqid]
    assert final.kind == base.FINISHED and final.exit_code == 0
    assert details(log, spec.fqid) == ["Queued", "Verifying", "Starting", "Running", "Gathering"]
    dirty = {h["name"]: h["dirty"] for h in client.hosts_table() if h["name"] in hosts}
    assert dirty == {"r1": True, "r2": True}
    second = os.path.join(spec.workdir, "hosts", hosts[1])
    # All started together: both wrappers running within a second of each other.
    assert abs(running_since(spec.workdir) - running_since(second)) < 1.0
    with open(os.path.join(second, "output", "stdout")) as handle:
        assert handle.read().split() == [hosts[1], "1", ",".join(hosts)]
    assert all(g["state"] == "REMOVED" for g in placement_group_table().values()
               if g["name"] == f"ganga_like-{spec.fqid}")


def test_synch_count_waits(make_actor, specs):
    client = make_actor(None)
    rack_busy = with_options(specs([["/bin/sleep", "2"]]), atomic_group="rack", synch_count=2)
    head_busy = with_options(specs([["/bin/sleep", "2"]]), hosts=["head"])
    client.submit(rack_busy + head_busy)
    log = EventLog(client)
    log.until(lambda _: all(log.of(s.fqid, base.STARTED) for s in rack_busy + head_busy))
    atomic_wait = with_options(specs([["/bin/true"]]), atomic_group="rack", synch_count=2)
    synchronous = with_options(specs([["/bin/true"]]), hosts=["head", "n1"], synch_count=2)
    client.submit(atomic_wait + synchronous)
    log.until(lambda _: log.of(atomic_wait[0].fqid, base.DETAIL) and log.of(synchronous[0].fqid, base.DETAIL))
    time.sleep(0.3)
    log.poll(0.2)
    atomic_detail = next(e for e in log.of(atomic_wait[0].fqid, base.DETAIL) if e.detail == "GroupTooSmall")
    assert atomic_detail.note == (
        f"needs 2 Ready hosts of one instance; group rack1: 0 of 2 hosts Ready "
        f"(2 hold subjob {rack_busy[0].fqid})")
    sync_detail = next(e for e in log.of(synchronous[0].fqid, base.DETAIL) if e.detail == "Pending")
    assert sync_detail.note.startswith("synchronous: holds n1;")
    assert host_table(client)["n1"] == "Pending"  # held for the synchronous job
    everything = [s.fqid for s in rack_busy + head_busy + atomic_wait + synchronous]
    log.until(log.all_final(everything))
    finals = log.finals()
    assert finals[atomic_wait[0].fqid][0].seq > finals[rack_busy[0].fqid][0].seq
    assert finals[synchronous[0].fqid][0].seq > finals[head_busy[0].fqid][0].seq
    assert sorted(started_hosts(log, synchronous[0].fqid)) == ["head", "n1"]
    assert all(f[0].kind == base.FINISHED and f[0].exit_code == 0 for f in finals.values())


def test_kill_gang_confirms(make_actor, specs):
    from ray.util.placement_group import placement_group_table

    client = make_actor(None)
    (spec,) = with_options(specs([["/bin/sleep", "30"]]), atomic_group="rack", synch_count=2)
    client.submit([spec])
    log = EventLog(client)
    log.until(lambda _: bool(log.of(spec.fqid, base.STARTED)))
    handle = log.of(spec.fqid, base.STARTED)[0].handle
    # wrapper + sleep on each host; a payload may still be between fork and exec.
    _eventually(lambda: len(procs.find_by_marker(spec.marker)) == 4)
    assert client.held([handle]) == [True]
    (result,) = client.kill([handle], 2.0)
    assert result.confirmed, result
    assert procs.find_by_marker(spec.marker) == []
    assert client.held([handle]) == [False]
    log.until(log.all_final([spec.fqid]))
    assert [e.kind for e in log.finals()[spec.fqid]] == [base.KILLED]
    assert all(g["state"] == "REMOVED" for g in placement_group_table().values()
               if g["name"] == f"ganga_like-{spec.fqid}")
    _eventually(lambda: host_table(client)["r1"] == "Ready")  # after Cleaning
    rows = {h["name"]: h for h in client.hosts_table()}
    assert rows["r1"]["last_result"].startswith("passed: cleanup") and not rows["r1"]["dirty"]


def _eventually(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_find_sees_every_host(make_actor, specs, marker_prefix):
    client = make_actor(None)
    batch = with_options(specs([["/bin/sleep", "30"]] * 2), label="x86_64")
    client.submit(batch)
    log = EventLog(client)
    log.until(lambda _: all(log.of(s.fqid, base.STARTED) for s in batch))
    found = client.find(marker_prefix + ":")
    assert sorted(h.fqid for h in found) == sorted(s.fqid for s in batch)
    results = client.kill([log.of(s.fqid, base.STARTED)[0].handle for s in batch], 1.0)
    assert all(r.confirmed for r in results)


# ---------------------------------------------------------------------- verify, repair, cleaning


def _flag(name: str, present: bool = True) -> None:
    path = os.path.join(flags_dir(), name)
    if present:
        open(path, "w").close()
    elif os.path.exists(path):
        os.unlink(path)


def test_failed_verify_is_repaired_and_the_subjob_runs(make_actor, specs):
    """n3's site verify fails; repair (the site command) mends it; the subjob, back in the
    queue meanwhile, then runs there."""
    client = make_actor(None)
    _flag("n3-broken")
    _flag("n3-fixable")
    try:
        (spec,) = with_options(specs([["/bin/true"]]), hosts=["n3"])
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]), timeout=30)
    finally:
        _flag("n3-fixable", False)
        _flag("n3-broken", False)
    (final,) = log.finals()[spec.fqid]
    assert final.kind == base.FINISHED and final.exit_code == 0, final
    queued = [e.note for e in log.of(spec.fqid, base.DETAIL) if e.detail == "Queued"]
    assert any(n.startswith("n3 failed verify: site verify command (GANGA_LIKE_VERIFY_COMMAND) exited 3: "
                            "n3 is broken") for n in queued), queued
    row = next(h for h in client.hosts_table() if h["name"] == "n3")
    assert row["status"] == "Ready" and row["subjob"] == "" and row["dirty"]


def test_repair_failed_twice_fails_the_subjob_then_naming_the_host_resets_it(make_actor, specs):
    client = make_actor(None)
    _flag("n3-broken")
    try:
        (spec,) = with_options(specs([["/bin/true"]]), hosts=["n3"])
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]), timeout=30)
        (final,) = log.finals()[spec.fqid]
        assert final.kind == base.LOST, final
        assert final.note.startswith("its hosts failed verify 2 times: n3 failed verify"), final
        _eventually(lambda: host_table(client)["n3"] == "Repair Failed")
        record = os.path.join(flags_dir(), "n3-scratch.check")
        assert open(record).read() == "Repair Failed\n"  # kept on the host for the next service
        row = next(h for h in client.hosts_table() if h["name"] == "n3")
        assert row["last_result"].startswith("failed: repair: scratch cleared; ") and "verify failed" in \
            row["last_result"], row
        # A metahost job does not reset it: it waits, and says why.
        (meta,) = with_options(specs([["/bin/true"]]), label="i386")
        client.submit([meta])
        log.until(lambda _: details(log, meta.fqid)[-1:] == ["HostsNotReady"])  # n3 stays Repair Failed
        note = log.of(meta.fqid, base.DETAIL)[-1].note
        assert note.endswith("of 6 hosts: 5 lack label i386, 1 is Repair Failed"), note
    finally:
        _flag("n3-broken", False)
    # Mended by hand; a job naming it resets it to Ready (Autotest's rule) and runs.
    (named,) = with_options(specs([["/bin/true"]]), hosts=["n3"])
    client.submit([named])
    log.until(log.all_final([meta.fqid, named.fqid]), timeout=30)
    assert all(log.finals()[f][0].kind == base.FINISHED for f in (meta.fqid, named.fqid))
    assert not os.path.exists(record)  # its verify passed


def test_cleaning_before_and_after_runs_the_site_command_and_empties_scratch(make_actor, specs):
    client = make_actor(None)
    cleanups = os.path.join(flags_dir(), "n3-cleanups")
    before = open(cleanups).read().count("cleaned") if os.path.exists(cleanups) else 0
    keep = 'touch "$GANGA_LIKE_SCRATCH/left-by-$GANGA_LIKE_HOST"'
    batch = (with_options(specs([["/bin/sh", "-c", keep]]), hosts=["n3"], reboot_before="never",
                          reboot_after="always")
             + with_options(specs([["/bin/sh", "-c", keep]]), hosts=["n3"], reboot_before="never",
                            reboot_after="never")
             + with_options(specs([["/bin/sh", "-c", "ls $GANGA_LIKE_SCRATCH"]]), hosts=["n3"],
                            reboot_before="if dirty", skip_verify=True))
    client.submit(batch)
    log = EventLog(client)
    log.until(log.all_final([s.fqid for s in batch]), timeout=30)
    assert all(log.finals()[s.fqid][0].exit_code == 0 for s in batch)
    # One cleanup after the first (reboot_after='always'), one before the third (the
    # second left the host dirty); the third found scratch empty.
    assert open(cleanups).read().count("cleaned") - before == 2
    assert open(os.path.join(batch[2].workdir, "output", "stdout")).read() == ""
    assert os.listdir(os.path.join(flags_dir(), "n3-scratch")) == []


def test_atomic_group_waits_for_more_hosts_then_runs_with_those_ready(make_actor, specs):
    client = make_actor(None)
    (too_many,) = with_options(specs([["/bin/true"]]), atomic_group="rack", synch_count=3)
    (error,) = [h.error for h in client.submit([too_many])]
    assert error == "synch count 3 is above atomic group rack's max number of machines 2"
    _flag("r2-broken")
    try:
        (spec,) = with_options(specs([["/bin/true"]]), atomic_group="rack", synch_count=1, group_wait=4,
                               reboot_before="never")
        submitted = time.monotonic()
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]), timeout=30)
    finally:
        _flag("r2-broken", False)
    # Both were Ready: it took both, r2 failed verify (repair cannot mend it: Repair Failed),
    # so it waited for r2 up to group_wait, then ran on r1 alone.
    assert started_hosts(log, spec.fqid) == ["r1"]
    assert time.monotonic() - submitted >= 4.0
    waits = [e.note for e in log.of(spec.fqid, base.DETAIL) if e.detail == "GroupTooSmall"]
    assert waits and waits[0].startswith("group rack1: 1 of 2 hosts Ready, waiting up to "), waits
    # r2 is protected "Do not repair": no repair ran, it went straight to Repair Failed.
    r2 = next(h for h in client.hosts_table() if h["name"] == "r2")
    assert (r2["status"], r2["protection"]) == ("Repair Failed", "Do not repair")
    assert r2["last_result"].startswith("failed: verify: site verify command"), r2


def test_a_host_protected_do_not_verify_is_never_verified(make_actor, specs):
    client = make_actor(None)
    batch = with_options(specs([["/bin/true"]] * 2), hosts=["n1"], reboot_before="never")
    client.submit(batch)
    log = EventLog(client)
    log.until(log.all_final([s.fqid for s in batch]), timeout=30)
    assert all(log.finals()[s.fqid][0].exit_code == 0 for s in batch)
    n1 = next(h for h in client.hosts_table() if h["name"] == "n1")
    assert (n1["protection"], n1["last_result"], n1["last_check"]) == ("Do not verify", "", 0.0)
    head = next(h for h in client.hosts_table() if h["name"] == "head")
    assert head["protection"] == "No protection"


def test_jobs_on_one_host_run_in_the_order_of_their_ids(make_actor, specs):
    """Submitted newest first while the host is busy: they still run 7.1, 7.2, 7.3, ... (BEX's
    per-host queues run in job-id order, not as they arrived)."""
    client = make_actor(None)
    batch = with_options(specs([["/bin/sleep", "1"]] + [["/bin/true"]] * 3), hosts=["n1"])
    client.submit(batch[:1])
    log = EventLog(client)
    log.until(lambda _: bool(log.of(batch[0].fqid, base.STARTED)))
    client.submit(list(reversed(batch[1:])))
    log.until(log.all_final([s.fqid for s in batch]), timeout=30)
    started = sorted((log.of(s.fqid, base.STARTED)[0].seq, s.fqid) for s in batch)
    assert [fqid for _seq, fqid in started] == [s.fqid for s in batch]


def test_a_check_a_dead_service_left_unfinished_is_verified_again(make_actor):
    """n3's agent records a check while it runs (beside its scratch directory); a service
    that died meanwhile left the record: the next actor verifies n3 before using it."""
    record = os.path.join(flags_dir(), "n3-scratch.check")
    with open(record, "w") as handle:
        handle.write("Repairing\n")
    _flag("n3-scratch.dirty")  # and a subjob ran there since its last cleanup
    client = make_actor(None)

    def n3() -> dict:
        return next(h for h in client.hosts_table() if h["name"] == "n3")

    _eventually(lambda: n3()["last_result"].startswith("passed: verify: "))
    assert n3()["status"] == "Ready" and not os.path.exists(record) and n3()["dirty"]
    assert all(h["last_result"] == "" for h in client.hosts_table() if h["name"] != "n3")


def test_gpus_of_a_host_are_handed_out_and_a_request_too_big_is_refused(make_actor, specs):
    client = make_actor(None)
    show = ["/bin/sh", "-c", 'echo "[$CUDA_VISIBLE_DEVICES]"']
    batch = (with_options(specs([show]), label="gpu", gpus=2)
             + with_options(specs([show]), label="x86_64", dependencies=["gpu"], gpus=1)
             + with_options(specs([show]), hosts=["n1"]))
    too_many = with_options(specs([show]), label="x86_64", gpus=3)
    named_small = with_options(specs([show]), hosts=["n1"], gpus=1)
    handles = client.submit(batch + too_many + named_small)
    assert not any(h.error for h in handles[:3])
    assert handles[3].error.startswith("asks for 3 GPUs; host n2 has 2 (ids 0, 1); no host could ever hold "
                                       "it (host "), handles[3].error
    assert "host n2: 3 CPUs, 2 GPUs" in handles[3].error
    assert handles[4].error == "host n1 could never hold 1 CPU, 1 GPU"
    log = EventLog(client)
    log.until(log.all_final([s.fqid for s in batch]), timeout=30)
    shown = [open(os.path.join(s.workdir, "output", "stdout")).read().strip() for s in batch]
    assert shown == ["[0,1]", "[0]", "[]"]  # all of n2's, the lowest free one, none asked: empty
    assert [started_hosts(log, s.fqid) for s in batch[:2]] == [["n2"], ["n2"]]
    assert log.of(batch[0].fqid, base.STARTED)[0].handle.gpu_ids == (0, 1)


def test_zz_node_death_is_lost(make_actor, specs, cluster):
    """Runs last: removes r2 while an atomic job runs on r1 and r2, then brings r2 back.

    r1's member is killed at once; r2's may still run on its machine, where nothing can
    confirm that it ended while r2's node is gone: the subjob is held (not final), with
    the reason as its detail, until a node with ``host:r2`` is back and its agent confirms."""
    client = make_actor(None)
    (spec,) = with_options(specs([["/bin/sleep", "30"]]), atomic_group="rack", synch_count=2)
    client.submit([spec])
    log = EventLog(client)
    log.until(lambda _: bool(log.of(spec.fqid, base.STARTED)))
    handle = log.of(spec.fqid, base.STARTED)[0].handle
    cluster.remove_node(cluster.named_nodes["r2"])
    log.until(lambda _: any(e.detail.startswith("Node lost: r2") for e in log.of(spec.fqid, base.DETAIL)),
              timeout=30)
    time.sleep(1.0)
    log.poll(0.2)
    assert spec.fqid not in log.finals() and client.held([handle]) == [True]
    deadline = time.monotonic() + 10
    while host_table(client).get("r2") != "Repair Failed" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert host_table(client)["r2"] == "Repair Failed"
    names = [h["name"] for h in client.hosts_table()]
    assert sorted(names) == ["head", "n1", "n2", "n3", "r1", "r2"]  # a dead node is listed once
    # r2's machine is back (its Ray started again, with the same host:r2): confirmed, LOST.
    _add_back(cluster, "r2")
    log.until(log.all_final([spec.fqid]), timeout=60)
    (final,) = log.finals()[spec.fqid]
    assert final.kind == base.LOST and "r2" in final.note, final
    assert client.held([handle]) == [False]
    assert procs.find_by_marker(spec.marker) == []


def _add_back(cluster, name: str, num_cpus: int = SMALL["num_cpus"]) -> None:
    """That host's machine is back: its Ray started again, with the same resources."""
    cluster.named_nodes[name] = cluster.add_node(**dict(SMALL, num_cpus=num_cpus), resources=NODES[name],
                                                 env_vars=site_env(name))
    cluster.wait_for_nodes()


def test_zzz_node_loss_phase(cluster, tmp_path_factory):
    """Runs last: a real Engine's Hosts jobs on n1 while n1 leaves and comes back (see
    hosts_node_loss_phase.py). Its facts go to a file in this run's base temp, where
    test_hosts_node_loss.py reads and asserts them."""
    from . import hosts_node_loss_phase as phase

    root = tmp_path_factory.mktemp("node-loss") / "gl"
    # n1 comes back with one CPU (one idle worker to start, not three): the phase runs one
    # subjob at a time there, as on the one-CPU node of the cluster it once had to itself.
    facts = phase.run(str(root), lose_node=lambda: cluster.remove_node(cluster.named_nodes.pop("n1")),
                      node_back=lambda: _add_back(cluster, "n1", num_cpus=1))
    (tmp_path_factory.getbasetemp() / phase.FACTS_FILE).write_text(json.dumps(facts, default=repr))



def test_zzzz_a_new_actor_lists_each_host_once(make_actor):
    """After the node-loss phases (n1 and r2 left and came back): Ray still lists their dead
    nodes, without resources; a new actor lists each host once, by its name."""
    rows = make_actor(None).hosts_table()
    assert sorted(h["name"] for h in rows) == ["head", "n1", "n2", "n3", "r1", "r2"]
    assert all(h["alive"] for h in rows)
