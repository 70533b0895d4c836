"""``RayCluster()``: run each subjob as a Ray task anywhere in a Ray cluster.

The per-subjob Ray options travel in ``SubjobSpec.options`` (see
:meth:`RayCluster.spec_options` and ``actor.OPTION_KEYS``): the session fills them
from the job's config, the actor passes them to ``.options()`` of the task.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Mapping
from typing import Any

from ...errors import BackendError
from ...model.component import Field, FrozenDict
from ...ray_runtime import import_ray
from ..config import BackendConfig

_ADDRESS_RE = re.compile(r"(auto|(ray://)?[A-Za-z0-9][A-Za-z0-9._-]*:\d{1,5})\Z")
_RESERVED = ("CPU", "GPU", "memory", "object_store_memory")  # Ray takes these as keywords


def _check_address(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    if value and not _ADDRESS_RE.match(value):
        raise ValueError("not 'auto', 'host:port' or 'ray://host:port'")
    return value


def _check_amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError("negative or not finite")
    return float(value)


def _check_resources(value: Any) -> FrozenDict:
    if not isinstance(value, Mapping):
        raise TypeError(f"got {type(value).__name__}")
    out = {}
    for name, amount in value.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"bad resource name {name!r}")
        if name in _RESERVED:
            raise ValueError(f"{name} is not a custom resource (use num_cpus for CPUs)")
        try:
            out[name] = _check_amount(amount)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"amount of {name}: {exc}") from None
    return FrozenDict(out)


def _check_retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not a whole number >= 0")
    return value


class RayCluster(BackendConfig):
    """Run each subjob as one Ray task, on whichever node of the cluster has the resources.

    ``num_cpus`` and ``resources`` are what each subjob's task reserves (Ray runs it
    only on a node that has them free; until then its backend detail is
    ``Pending``). ``max_retries``: how many times Ray re-runs a subjob whose node or
    worker died (0: it fails as lost, and you decide). The workdir must be on a
    filesystem every node can reach (the same path on every node).
    """

    address = Field("", _check_address, "'' (the session's Ray), 'auto', 'host:port' or 'ray://host:port'",
                    "which Ray cluster; it must be the one the session is connected to")
    num_cpus = Field(1.0, _check_amount, "a number >= 0", "CPUs each subjob's Ray task reserves")
    resources = Field(FrozenDict(), _check_resources,
                      "a dict of custom resource name -> amount >= 0, e.g. {'bignode': 1}",
                      "custom Ray resources each subjob's task reserves")
    max_retries = Field(0, _check_retries, "a whole number >= 0",
                        "times Ray re-runs a subjob whose node or worker died")

    def spec_options(self) -> dict[str, Any]:
        """What the session puts in ``SubjobSpec.options`` (keys: ``actor.OPTION_KEYS``)."""
        return {"num_cpus": float(self.num_cpus), "resources": dict(self.resources),
                "max_retries": int(self.max_retries)}

    def actor_key(self) -> tuple:
        # Task options are per spec, so every RayCluster config of a cluster shares one actor.
        return ("RayCluster", self.address) if self.address else ("RayCluster",)

    def make_actor(self, name: str) -> object:
        from ...ray_runtime import RAY_NAMESPACE
        from .actor import start_raycluster_actor

        self._check_connected_cluster()
        return start_raycluster_actor(name, namespace=RAY_NAMESPACE, get_if_exists=True)

    def _check_connected_cluster(self) -> None:
        """One process joins one Ray cluster: refuse a config naming another one."""
        if not self.address or self.address == "auto" or self.address.startswith("ray://"):
            return
        ray = import_ray()
        gcs = ray.get_runtime_context().gcs_address or ""
        if _same_endpoint(gcs, self.address):
            return
        raise BackendError(f"RayCluster(address={self.address!r}) but this session's Ray is "
                           f"{gcs or 'unknown'}; "
                           f"set GANGA_LIKE_RAY_ADDRESS={self.address} before the session starts Ray")


def _same_endpoint(one: str, other: str) -> bool:
    host1, _, port1 = one.rpartition(":")
    host2, _, port2 = other.rpartition(":")
    if port1 != port2:
        return False
    try:
        return socket.gethostbyname(host1) == socket.gethostbyname(host2)
    except OSError:
        return host1 == host2
