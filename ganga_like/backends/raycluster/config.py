"""``RayCluster()``: run each subjob as a Ray task anywhere in a Ray cluster.

The per-subjob Ray options travel in ``SubjobSpec.options`` (see
:meth:`RayCluster.spec_options` and ``actor.OPTION_KEYS``): the session fills them
from the job's config, the actor passes them to ``.options()`` of the task.
"""

from __future__ import annotations

import re
import socket
from typing import Any

from ...errors import BackendError
from ...model.component import Field
from ...ray_runtime import import_ray
from ..config import BackendConfig
from ..resources import Capacity, ResourceFields, node_capacities

_ADDRESS_RE = re.compile(r"(auto|(ray://)?[A-Za-z0-9][A-Za-z0-9._-]*:\d{1,5})\Z")


def _check_address(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    if value and not _ADDRESS_RE.match(value):
        raise ValueError("not 'auto', 'host:port' or 'ray://host:port'")
    return value


def _check_retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not a whole number >= 0")
    return value


class RayCluster(ResourceFields, BackendConfig):
    """Run each subjob as one Ray task, on whichever node of the cluster has the resources.

    ``cpus``, ``gpus``, ``memory`` and ``resources`` are what each subjob's task
    reserves (Ray's ``num_cpus``, ``num_gpus``, ``memory`` and custom resources; Ray
    runs it only on a node that has them free; until then its backend detail says
    why). ``num_cpus`` is the older name of ``cpus``. ``max_retries``: how many times
    Ray re-runs a subjob whose node or worker died (0: it fails as lost, and you
    decide). The workdir must be on a filesystem every node can reach (the same path
    on every node).
    """

    address = Field("", _check_address, "'' (the session's Ray), 'auto', 'host:port' or 'ray://host:port'",
                    "which Ray cluster; it must be the one the session is connected to")
    max_retries = Field(0, _check_retries, "a whole number >= 0",
                        "times Ray re-runs a subjob whose node or worker died")

    def __init__(self, *positional: object, **values: object) -> None:
        if "num_cpus" in values:
            values["cpus"] = values.pop("num_cpus")
        super().__init__(*positional, **values)

    @property
    def num_cpus(self) -> float:
        """The older name of ``cpus`` (Ray's word)."""
        return self.cpus

    @num_cpus.setter
    def num_cpus(self, value: object) -> None:
        self.cpus = value

    def __setstate__(self, state: dict[str, object]) -> None:
        # Stored before the request's fields existed: its CPUs were kept as num_cpus.
        if "num_cpus" in state:
            state = dict(state)
            state.setdefault("cpus", state.pop("num_cpus"))
        super().__setstate__(state)

    def spec_options(self) -> dict[str, Any]:
        """What the session puts in ``SubjobSpec.options`` (keys: ``task.OPTION_KEYS``);
        the resources travel in ``SubjobSpec.request``."""
        return {"max_retries": int(self.max_retries)}

    def capacities(self) -> list[Capacity]:
        """Each alive node of the session's Ray, with its totals (``ray.nodes()``)."""
        return node_capacities(import_ray().nodes())

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
