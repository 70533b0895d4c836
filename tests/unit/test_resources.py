"""The resource request (``backends/resources.py``): its fields on every backend, their
one-line refusals, the "could it ever fit" rule and the GPU/memory pool."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganga_like.backends.hosts.config import Hosts
from ganga_like.backends.local.config import Local, configured_gpu_ids
from ganga_like.backends.raycluster.config import RayCluster
from ganga_like.backends.resources import (
    BYTES_PER_MB,
    Capacity,
    GpuPool,
    Grant,
    Pool,
    Request,
    cluster_shortage,
    held_text,
    node_capacities,
    parse_held,
    parse_memory,
    refusal,
    refusal_anywhere,
)
from ganga_like.errors import ConfigurationError, InvalidValue

BACKENDS = [Local, RayCluster, Hosts]


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_backend_has_the_same_request_fields_and_defaults(kind):
    config = kind()
    assert (config.cpus, config.gpus, config.memory, dict(config.resources)) == (1, 0, None, {})
    assert config.resource_request() == Request()
    asked = kind(cpus=2, gpus=1, memory="4GB", resources={"big": 1})
    assert asked.resource_request() == Request(2, 1, 4096, (("big", 1),))


@pytest.mark.parametrize(("text", "mb"), [
    (512, 512), (1.5, 1.5), ("512MB", 512), ("512M", 512), ("512 mib", 512), ("4GB", 4096),
    ("4G", 4096), ("1.5GiB", 1536), ("2048KB", 2), ("1T", 1024 * 1024), ("100", 100), (None, None),
])
def test_memory_is_mb_from_a_number_or_a_string_with_a_unit(text, mb):
    assert parse_memory(text) == mb


@pytest.mark.parametrize(("field", "value", "said"), [
    ("cpus", 0, "a number of CPUs > 0"),
    ("cpus", -1, "(not above 0)"),
    ("cpus", "2", "(got str)"),
    ("cpus", True, "(got bool)"),
    ("gpus", 1.5, "a whole number of GPUs >= 0 (got float)"),
    ("gpus", -1, "(negative)"),
    ("memory", "4 parsecs", "'512MB', '4GB', '1.5GiB'"),
    ("memory", 0, "(not above 0)"),
    ("memory", [4], "(got list)"),
    ("resources", {"GPU": 1}, "GPU is not a custom resource (ask with cpus, gpus or memory)"),
    ("resources", {"big": -1}, "amount of big is negative"),
    ("resources", {"big": "x"}, "amount of big: got str"),
    ("resources", ["big"], "a dict of custom resource name -> amount >= 0"),
])
@pytest.mark.parametrize("kind", BACKENDS)
def test_a_bad_request_is_one_line_naming_the_valid_forms(kind, field, value, said):
    with pytest.raises(InvalidValue) as info:
        kind(**{field: value})
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{kind.__name__}.{field} = ")
    assert said in message


def test_raycluster_num_cpus_is_an_alias_of_cpus():
    config = RayCluster(num_cpus=0.5)
    assert config.cpus == 0.5 and config.num_cpus == 0.5
    config.num_cpus = 2
    assert config.cpus == 2
    assert config.spec_options() == {"max_retries": 0}
    with pytest.raises(InvalidValue, match=r"RayCluster\.cpus = -1 is not valid"):
        RayCluster(num_cpus=-1)


def test_raycluster_state_stored_before_the_request_fields_loads_num_cpus_as_cpus():
    config = RayCluster.__new__(RayCluster)
    config.__setstate__({"num_cpus": 0.25, "resources": {"big": 1.0}, "max_retries": 1})
    assert (config.cpus, dict(config.resources), config.max_retries) == (0.25, {"big": 1.0}, 1)


def test_ray_options_name_ray_s_keywords_and_memory_in_bytes():
    assert Request.of(2, 1, "1GB", {"big": 1}).ray_options() == {
        "num_cpus": 2.0, "num_gpus": 1, "memory": 1024 * BYTES_PER_MB, "resources": {"big": 1}}
    assert "memory" not in Request().ray_options()


def test_a_request_that_cannot_fit_says_what_the_machine_has():
    machine = Capacity("this machine", 2, (0, 1), 8192, (), "Local's concurrency")
    assert refusal(Request(gpus=3), machine) == "asks for 3 GPUs; this machine has 2 (ids 0, 1)"
    assert refusal(Request(cpus=3), machine) == "asks for 3 CPUs; this machine has 2 (Local's concurrency)"
    assert refusal(Request(memory_mb=9000), machine) == \
        "asks for 9000 MB of memory; this machine has 8192 MB"
    assert refusal(Request(resources=(("big", 1),)), machine) == \
        "asks for 1 of resource 'big'; this machine has none"
    assert refusal(Request(gpus=1), Capacity("this machine")) == "asks for 1 GPU; this machine has none"
    assert refusal(Request(cpus=2, gpus=2, memory_mb=8192), machine) == ""


def test_a_cluster_refuses_only_what_no_node_could_hold_naming_the_nodes():
    nodes = [Capacity("node a", 4, (), 1024, ()), Capacity("node b", 2, (0,), 2048, (("big", 1),))]
    assert refusal_anywhere(Request(gpus=1, memory_mb=2048), nodes) == ""
    assert refusal_anywhere(Request(gpus=1, memory_mb=4096), nodes) == (
        "asks for 1 CPU, 1 GPU, 4096 MB; no node could ever hold it "
        "(node a: 4 CPUs, 0 GPUs, 1024 MB; node b: 2 CPUs, 1 GPU, 2048 MB, 1 big)")
    assert refusal_anywhere(Request(), []) == "asks for 1 CPU; there is no node"


def test_ray_nodes_become_capacities_without_ray_s_own_entries():
    nodes = [{"Alive": True, "NodeManagerAddress": "10.0.0.2", "NodeID": "ab" * 20,
              "Resources": {"CPU": 4.0, "GPU": 2.0, "memory": 2048.0 * BYTES_PER_MB,
                            "object_store_memory": 1.0, "node:10.0.0.2": 1.0, "big": 1.0}},
             {"Alive": False, "Resources": {"CPU": 64.0}}]
    (node,) = node_capacities(nodes)
    assert node == Capacity("node 10.0.0.2/abababababab", 4.0, (0, 1), 2048.0, (("big", 1.0),))


def test_gpu_ids_come_lowest_free_first_all_or_nothing():
    pool = GpuPool([3, 1, 0])
    assert pool.take(2) == (0, 1)
    assert pool.take(2) is None and pool.free == 1  # all or nothing
    pool.give((1,))
    assert pool.take(2) == (1, 3)
    assert pool.take(0) == ()
    pool.give((0, 1, 3, 7))  # 7 is not ours: ignored
    assert pool.free == 3 and pool.ids == (0, 1, 3)


def test_restore_marks_held_ids_and_names_a_clash():
    pool = Pool([0, 1], memory_mb=1000)
    assert pool.restore(Grant((1,), 200)) == (Grant((1,), 200), "")
    assert pool.take(Request(gpus=1)) == Grant((0,), 0)
    held, note = pool.restore(Grant((0, 5), 0))
    assert held == Grant((), 0) and note == "GPU id(s) 0, 5 not free here"


def test_pool_reserves_memory_and_says_what_is_short_with_counts():
    pool = Pool([0, 1], memory_mb=4096)
    first = pool.take(Request(memory_mb=3072, gpus=2))
    assert first == Grant((0, 1), 3072)
    assert pool.shortage(Request(gpus=1)) == "needs 1 GPU, 0 of 2 free"
    assert pool.shortage(Request(memory_mb=2048)) == "needs 2048 MB, 1024 MB unreserved"
    assert pool.take(Request(memory_mb=2048)) is None
    pool.give(first)
    assert pool.shortage(Request(memory_mb=2048, gpus=2)) == ""


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=40))
def test_no_gpu_id_is_ever_out_twice(steps):
    pool, out = GpuPool(range(4)), []
    for take, count in steps:
        if take:
            got = pool.take(count)
            if got is not None:
                out.append(got)
        elif out:
            pool.give(out.pop(count % len(out)))
        held = [i for ids in out for i in ids]
        assert len(held) == len(set(held)) and pool.free + len(held) == 4


def test_configured_gpu_ids_are_read_and_a_bad_value_is_one_line():
    assert configured_gpu_ids({"GANGA_LIKE_GPU_IDS": "1, 0"}) == (0, 1)
    assert configured_gpu_ids({"GANGA_LIKE_GPU_IDS": ""}) == ()
    assert configured_gpu_ids({}) is None
    with pytest.raises(ConfigurationError, match="GANGA_LIKE_GPU_IDS='a' is not valid: expected GPU ids"):
        configured_gpu_ids({"GANGA_LIKE_GPU_IDS": "a"})


def test_local_gpu_ids_choose_the_actor_and_are_the_machines_capacity():
    local = Local(gpu_ids=[1, 0], concurrency=2)
    assert local.effective_gpu_ids() == (0, 1)
    assert local.actor_key() == ("Local", 2, "0,1")
    (machine,) = local.capacities()
    assert (machine.cpus, machine.gpu_ids, machine.resources) == (2, (0, 1), ())
    assert Local(gpu_ids=[]).actor_key() == ("Local", Local().effective_concurrency())
    with pytest.raises(InvalidValue, match=r"Local.gpu_ids = \[0, 0\] is not valid: .*appears twice"):
        Local(gpu_ids=[0, 0])


def test_rays_view_of_what_is_short_now():
    free = {"CPU": 1.0, "GPU": 0.0, "memory": 1024.0 * BYTES_PER_MB}
    total = {"CPU": 2.0, "GPU": 2.0, "memory": 8192.0 * BYTES_PER_MB}
    assert cluster_shortage(Request(gpus=1), free, total) == \
        "needs 1 GPU; Ray has 0 of 2 free in the cluster"
    assert cluster_shortage(Request(memory_mb=2048), free, total) == \
        "needs 2048 MB of memory; Ray has 1024 of 8192 MB free in the cluster"
    assert cluster_shortage(Request(resources=(("big", 1),)), free, total) == \
        "needs 1 big; Ray has 0 of 0 free in the cluster"
    assert cluster_shortage(Request(cpus=1), free, total) == ""


def test_what_a_run_holds_reads_back_from_its_environment_text():
    text = held_text(2, Grant((0, 3), 1024))
    assert text == "cpus=2 memory=1024 gpus=0,3"
    assert parse_held(text) == (2.0, Grant((0, 3), 1024.0))
    assert parse_held(held_text(0.5, Grant())) == (0.5, Grant((), 0.0))
    assert parse_held("cpus=x") is None and parse_held("") is None
