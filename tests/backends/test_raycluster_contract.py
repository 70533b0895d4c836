"""The backend contract against RayClusterActor on the session's shared local Ray; plus its specifics.

The contract's ``concurrency`` becomes the actor's ``max_in_flight``, and each
spec's request (``spec.request``, filled by the session in real use) asks for
``CPUs / concurrency`` CPUs, so that Ray's resources and the cap agree: with 2
CPUs and ``concurrency=4`` four sleeps run at once, as the contract expects.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from typing import Any

import pytest

from ganga_like.backends import base
from ganga_like.backends.base import SubjobSpec
from ganga_like.backends.raycluster.actor import start_raycluster_actor
from ganga_like.backends.raycluster.config import RayCluster
from ganga_like.backends.raycluster.task import task_options
from ganga_like.backends.resources import Request
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.runtime import trace
from ganga_like.errors import InvalidValue

from .contract import BackendContract, EventLog, RayClient, actor_factory, output_of

NAMESPACE = "ganga_like_tests"
_names = itertools.count()


class RayClusterClient(RayClient):
    """Blocking calls; ``submit`` gives a spec asking for the default request the CPUs
    that let ``concurrency`` tasks run at once on the test's Ray."""

    def __init__(self, actor: Any, request: Request) -> None:
        super().__init__(actor)
        self.request = request

    def submit(self, specs: list[SubjobSpec]) -> list[base.Handle]:
        import ray

        specs = [s if s.request != Request() else dataclasses.replace(s, request=self.request)
                 for s in specs]
        return ray.get(self.actor.submit.remote(specs))


@pytest.fixture
def make_actor(ray_session, leftover_check, actor_pool):
    """``make_actor(concurrency=N)``: a named RayClusterActor, new or idle in the module's
    pool; given back, or killed, after the test."""
    import ray

    cpus = ray.cluster_resources().get("CPU", 2.0)

    def start(concurrency: int = 2) -> RayClusterClient:
        name = f"raycluster-{os.getpid()}-{next(_names)}"
        actor = start_raycluster_actor(name, 16, max_in_flight=concurrency, namespace=NAMESPACE)
        return RayClusterClient(actor, Request(cpus=min(1.0, cpus / concurrency)))

    yield from actor_factory(start, actor_pool)


class TestRayClusterContract(BackendContract):
    """Runs every contract test against RayClusterActor (none skipped; one sized for it)."""

    @pytest.mark.parametrize("count", [50])
    def test_many_small_subjobs_in_one_batch(self, make_actor, specs, count):
        """50, not 200: each subjob is a Ray task that Ray schedules and gives a worker
        (200 took 20 s with the machine under load), and nothing in this actor depends
        on the size: its queue is the run table every actor shares, which the Local
        contract drives with 200. 50 keep 48 waiting behind the two in flight."""
        super().test_many_small_subjobs_in_one_batch(make_actor, specs, count)

class TestRayClusterSpecifics:
    def test_handles_name_the_task_and_node(self, make_actor, specs):
        import ray

        client = make_actor(concurrency=2, fresh=True)  # no view of Ray's resources yet: Pending
        (spec,) = specs([["/bin/true"]])
        (handle,) = client.submit([spec])
        assert len(handle.task_id) == 48 and handle.attempt == spec.attempt
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]))
        kinds = [e.kind for e in log.of(spec.fqid)]
        assert kinds == [base.DETAIL, base.STARTED, base.FINISHED], kinds
        assert log.of(spec.fqid)[0].detail == "Pending"
        started = log.of(spec.fqid, base.STARTED)[0].handle
        assert started.task_id == handle.task_id
        assert started.host.endswith(ray.get_runtime_context().get_node_id()[:12])
        assert not os.path.exists(spec.workdir)  # it wrote nothing: tidied by its task
        history = trace.history(spec.workdir)  # its lines, in its master's subjobs.status
        assert [i.state for i in history][:2] == [sf.QUEUED, sf.CREATED]
        assert f"task={handle.task_id}" in history[1].note

    def test_a_task_ray_cannot_place_now_says_why_and_kill_cancels_it(self, make_actor, specs):
        """The test Ray has 2 logical GPUs: one subjob holds both, the next waits in Ray
        with Ray's view of what is short, and is cancelled by a kill before it starts."""
        client = make_actor(concurrency=2)
        holder, waiting = specs([["/bin/sleep", "30"], ["/bin/true"]])
        both = Request(cpus=0.5, gpus=2)
        client.submit([dataclasses.replace(holder, request=both)])
        log = EventLog(client)
        log.until(lambda _: bool(log.of(holder.fqid, base.STARTED)))
        (handle,) = client.submit([dataclasses.replace(waiting, request=both)])
        assert handle.task_id and not handle.error
        # Ray's view comes with the actor's next look (each second): until then the
        # task waits as any task Ray has not placed yet ("Pending").
        log.until(lambda _: any(e.detail == "Resources" for e in log.of(waiting.fqid, base.DETAIL)))
        told = [e for e in log.of(waiting.fqid, base.DETAIL) if e.detail == "Resources"][-1]
        assert told.note == "needs 2 GPUs; Ray has 0 of 2 free in the cluster"
        assert client.held([handle]) == [True] and client.ping()["pending"] == 1
        (result,) = client.kill([handle], 1.0)
        assert result.confirmed, result
        assert client.held([handle]) == [False]
        log.until(log.all_final([waiting.fqid]))
        assert [e.kind for e in log.finals()[waiting.fqid]] == [base.KILLED]
        assert not log.of(waiting.fqid, base.STARTED)
        client.kill([log.of(holder.fqid, base.STARTED)[0].handle], 1.0)

    def test_a_subjob_gets_rays_gpu_ids_in_cuda_visible_devices(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/sh", "-c", 'echo "[$CUDA_VISIBLE_DEVICES]"']])
        shown = output_of(client, dataclasses.replace(spec, request=Request(cpus=0.5, gpus=1)))
        assert shown in ("[0]", "[1]")

    def test_bad_options_fail_that_spec_only(self, make_actor, specs):
        client = make_actor(concurrency=2)
        bad, good = specs([["/bin/true"], ["/bin/true"]])
        bad = dataclasses.replace(bad, options={"num_gpus": 1})
        handles = client.submit([bad, good])
        assert "unknown RayCluster option" in handles[0].error and not handles[1].error
        log = EventLog(client)
        log.until(log.all_final([good.fqid]))

    def test_payload_env_has_spec_env_and_no_ray_variables(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/bash", "-c", 'echo "$FOO|${PATH:+path}|${RAY_ADDRESS-none}"']],
                        env={"FOO": "a b"})
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]))
        with open(os.path.join(spec.workdir, "output", "stdout")) as handle:
            assert handle.read().strip() == "a b|path|none"


class TestRayClusterConfig:
    def test_defaults_and_spec_options(self):
        config = RayCluster()
        assert (config.address, config.num_cpus, dict(config.resources), config.max_retries) == (
            "", 1.0, {}, 0)
        assert config.spec_options() == {"max_retries": 0}
        options = task_options(config.spec_options(), config.resource_request())
        assert (options["num_cpus"], options["num_gpus"], "memory" in options) == (1.0, 0, False)
        assert config.actor_key() == ("RayCluster",)
        other = RayCluster(address="10.0.0.1:6379", num_cpus=0.5, resources={"big": 1}, max_retries=2,
                           gpus=1, memory="1GB")
        assert other.actor_key() == ("RayCluster", "10.0.0.1:6379")
        assert other.spec_options() == {"max_retries": 2}
        assert task_options(other.spec_options(), other.resource_request()) == {
            "num_cpus": 0.5, "num_gpus": 1, "memory": 1024 ** 3, "resources": {"big": 1.0},
            "max_retries": 2, "retry_exceptions": False}

    @pytest.mark.parametrize("field, value, words", [
        ("address", "nonsense", "'auto', 'host:port'"),
        ("num_cpus", -1, "a number of CPUs > 0"),
        ("num_cpus", True, "a number of CPUs > 0"),
        ("resources", {"CPU": 1}, "custom resource"),
        ("resources", {"x": -1}, "amount >= 0"),
        ("resources", ["x"], "a dict"),
        ("max_retries", -1, "whole number >= 0"),
    ])
    def test_bad_values_are_refused_in_one_line(self, field, value, words):
        with pytest.raises(InvalidValue) as caught:
            RayCluster(**{field: value})
        message = str(caught.value)
        shown = "cpus" if field == "num_cpus" else field  # num_cpus is cpus' older name
        assert "\n" not in message and words in message and f"RayCluster.{shown} =" in message

    def test_resources_edited_in_place_are_checked_as_an_assignment(self):
        config = RayCluster(resources={"a": 1})
        config.resources["b"] = 2  # as Ganga's dicts take it
        assert config.resources == {"a": 1.0, "b": 2.0}
        with pytest.raises(InvalidValue, match="not a custom resource"):
            config.resources["CPU"] = 1
        assert config.resources == {"a": 1.0, "b": 2.0}
