"""A subjob's resource request, the one definition every backend uses.

A user asks for ``cpus``, ``gpus``, ``memory`` and custom ``resources`` on any backend
(:class:`ResourceFields`, mixed into every backend config, so the names, defaults and
checks are the same everywhere). What travels to the actor is a :class:`Request` in
each ``SubjobSpec``. Before anything runs, :func:`refusal` (one place) or
:func:`refusal_anywhere` (a cluster's nodes) says in one line why a request could never
fit what exists; while it runs, a :class:`Pool` hands out one machine's GPUs (a
:class:`GpuPool`: whole ids, lowest free first, all or nothing) and memory.

Pure: no Ray, no I/O. Memory is counted in MB of 1024 * 1024 bytes, as Slurm's
``--mem`` and ``free -m`` count it: ``'4GB'``, ``'4G'`` and ``'4GiB'`` are all 4096 MB.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence

from ..model.component import Field, FrozenDict

BYTES_PER_MB = 1024 * 1024
CUDA_VARIABLE = "CUDA_VISIBLE_DEVICES"  # a running subjob's GPU ids, for CUDA
# Ray takes these as keywords of their own (num_cpus, num_gpus, memory): never as custom names.
RESERVED_NAMES = ("CPU", "GPU", "memory", "object_store_memory")
_MB_PER_UNIT = {"": 1.0, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0 ** 2}
_MEMORY_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([KMGT])(?:i?B)?|(MB?))?\s*\Z", re.IGNORECASE)

CPUS_FORM = "a number of CPUs > 0, e.g. 1, 2 or 0.5"
GPUS_FORM = "a whole number of GPUs >= 0"
MEMORY_FORM = ("None (not requested), a number of MB > 0, or a string such as '512MB', '4GB', "
               "'1.5GiB' (units K, M, G, T, each 1024 of the one before)")
RESOURCES_FORM = "a dict of custom resource name -> amount >= 0, e.g. {'bignode': 1}"


# ---------------------------------------------------------------- checks (Field)

def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def check_cpus(value: object) -> float:
    number = _number(value)
    if number <= 0:
        raise ValueError("not above 0")
    return number


def check_gpus(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"got {type(value).__name__}")
    if value < 0:
        raise ValueError("negative")
    return value


def parse_memory(value: object) -> float | None:
    """MB from a number of MB or a string with a unit; None stays None (not requested)."""
    if value is None:
        return None
    if isinstance(value, str):
        match = _MEMORY_RE.match(value)
        if match is None:
            raise ValueError("not a number with an optional unit K, M, G or T")
        unit = (match.group(2) or match.group(3) or "").upper()[:1]
        number = float(match.group(1)) * _MB_PER_UNIT[unit]
    else:
        number = _number(value)
    if number <= 0:
        raise ValueError("not above 0")
    return int(number) if float(number).is_integer() else float(number)


def check_resources(value: object) -> FrozenDict:
    if not isinstance(value, Mapping):
        raise TypeError(f"got {type(value).__name__}")
    out: dict[str, float] = {}
    for name, amount in value.items():
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"bad resource name {name!r}")
        if name in RESERVED_NAMES:
            raise ValueError(f"{name} is not a custom resource (ask with cpus, gpus or memory)")
        try:
            number = _number(amount)
        except TypeError as error:
            raise ValueError(f"amount of {name}: {error}") from None
        if number < 0:
            raise ValueError(f"amount of {name} is negative")
        out[name] = number
    return FrozenDict(out)


# ---------------------------------------------------------------- the request

def _count(amount: float, one: str, many: str = "") -> str:
    shown = f"{amount:g}"
    return f"{shown} {one if amount == 1 else (many or one + 's')}"


def format_mb(mb: float) -> str:
    return f"{mb:g} MB" if float(mb).is_integer() else f"{mb:.1f} MB"


@dataclasses.dataclass(frozen=True)
class Request:
    """What one subjob asks for: plain, picklable, carried by ``SubjobSpec.request``."""

    cpus: float = 1
    gpus: int = 0
    memory_mb: float | None = None  # None: not requested
    resources: tuple[tuple[str, float], ...] = ()  # sorted (name, amount) pairs

    @classmethod
    def of(cls, cpus: float = 1, gpus: int = 0, memory: object = None,
           resources: Mapping[str, float] | None = None) -> Request:
        return cls(cpus, gpus, parse_memory(memory), tuple(sorted((resources or {}).items())))

    def describe(self) -> str:
        """``2 CPUs, 1 GPU, 4096 MB, 1 bignode``."""
        parts = [_count(self.cpus, "CPU")]
        if self.gpus:
            parts.append(_count(self.gpus, "GPU"))
        if self.memory_mb is not None:
            parts.append(format_mb(self.memory_mb))
        parts += [f"{amount:g} {name}" for name, amount in self.resources]
        return ", ".join(parts)

    def ray_options(self) -> dict[str, object]:
        """Ray's ``.options()`` for it: ``num_cpus``, ``num_gpus``, ``memory`` (bytes),
        ``resources``."""
        options: dict[str, object] = {"num_cpus": float(self.cpus), "num_gpus": self.gpus,
                                      "resources": dict(self.resources)}
        if self.memory_mb is not None:
            options["memory"] = int(self.memory_mb * BYTES_PER_MB)
        return options


class ResourceFields:
    """The request's fields, declared once and mixed into every backend config (with
    :class:`~ganga_like.backends.config.BackendConfig`): ``Local(gpus=1)``,
    ``RayCluster(cpus=2, memory='4GB')``, ``Hosts(label='x', gpus=2)``."""

    cpus = Field(1, check_cpus, CPUS_FORM,
                 "CPUs each subjob takes (Local: its share of the concurrency slots)")
    gpus = Field(0, check_gpus, GPUS_FORM,
                 "GPUs each subjob gets for itself (its ids in CUDA_VISIBLE_DEVICES)")
    memory = Field(None, parse_memory, MEMORY_FORM, "memory each subjob reserves, in MB")
    resources = Field(FrozenDict(), check_resources, RESOURCES_FORM,
                      "custom resources each subjob reserves (Ray resources of the nodes)")

    def resource_request(self) -> Request:
        """This config's request (a subjob's own values come through its view of it)."""
        return Request(self.cpus, self.gpus, self.memory, tuple(sorted(dict(self.resources).items())))


# ---------------------------------------------------------------- what exists

@dataclasses.dataclass(frozen=True)
class Capacity:
    """What one machine or node has in all (not what is free now).

    ``cpus``/``memory_mb`` None: not limited here; ``gpu_ids``: its GPUs' ids;
    ``resources`` None: custom resources are not known here (not checked)."""

    name: str  # 'this machine', 'node 10.0.0.2/8d1f...'
    cpus: float | None = None
    gpu_ids: tuple[int, ...] = ()
    memory_mb: float | None = None
    resources: tuple[tuple[str, float], ...] | None = ()
    cpu_note: str = ""  # what its CPU count is: "Local's concurrency"

    def totals(self) -> str:
        """``node a: 2 CPUs, 1 GPU, 8192 MB, 1 bignode``."""
        parts = [] if self.cpus is None else [_count(self.cpus, "CPU")]
        parts.append(_count(len(self.gpu_ids), "GPU"))
        if self.memory_mb is not None:
            parts.append(format_mb(self.memory_mb))
        parts += [f"{amount:g} {name}" for name, amount in self.resources or ()]
        return f"{self.name}: {', '.join(parts)}"


_RAY_OWN_RESOURCES = ("node:", "accelerator_type:")  # what Ray itself puts on every node


def node_capacities(nodes: Sequence[Mapping[str, object]]) -> list[Capacity]:
    """What each alive node in ``ray.nodes()`` has: CPUs, GPUs (ids 0..n-1, Ray's
    logical ones), memory and custom resources (Ray's own ``node:``/``accelerator``
    entries left out)."""
    found = []
    for node in nodes:
        if not node.get("Alive"):
            continue
        resources = node.get("Resources")
        totals = {str(k): float(v) for k, v in resources.items()} if isinstance(resources, Mapping) else {}
        custom = tuple(sorted((k, v) for k, v in totals.items()
                              if k not in RESERVED_NAMES and not k.startswith(_RAY_OWN_RESOURCES)))
        name = f"node {node.get('NodeManagerAddress', '?')}/{str(node.get('NodeID', ''))[:12]}"
        found.append(Capacity(name, totals.get("CPU", 0.0), tuple(range(int(totals.get("GPU", 0)))),
                              totals.get("memory", 0.0) / BYTES_PER_MB, custom))
    return found


def shortfalls(request: Request, capacity: Capacity) -> list[str]:
    """Each part of ``request`` that ``capacity`` could never hold, as a phrase."""
    found = []
    if capacity.cpus is not None and request.cpus > capacity.cpus:
        note = f" ({capacity.cpu_note})" if capacity.cpu_note else ""
        found.append(f"asks for {_count(request.cpus, 'CPU')}; {capacity.name} has {capacity.cpus:g}{note}")
    if request.gpus > len(capacity.gpu_ids):
        has = (f"{len(capacity.gpu_ids)} (ids {', '.join(map(str, capacity.gpu_ids))})"
               if capacity.gpu_ids else "none")
        found.append(f"asks for {_count(request.gpus, 'GPU')}; {capacity.name} has {has}")
    if capacity.memory_mb is not None and request.memory_mb is not None \
            and request.memory_mb > capacity.memory_mb:
        found.append(f"asks for {format_mb(request.memory_mb)} of memory; {capacity.name} has "
                     f"{format_mb(capacity.memory_mb)}")
    if capacity.resources is not None:
        totals = dict(capacity.resources)
        for name, amount in request.resources:
            if amount > totals.get(name, 0):
                what = f"{totals[name]:g}" if name in totals else "none"
                found.append(f"asks for {amount:g} of resource {name!r}; {capacity.name} has {what}")
    return found


def refusal(request: Request, capacity: Capacity) -> str:
    """Why ``request`` could never run on ``capacity``, in one line ('' if it could)."""
    return "; ".join(shortfalls(request, capacity))


SHOWN_NODES = 4  # nodes named in a refusal; the rest are counted


def refusal_anywhere(request: Request, capacities: Sequence[Capacity], what: str = "node") -> str:
    """Why no one of ``capacities`` (a cluster's nodes) could ever hold ``request``
    ('' if one could), naming what the nodes have."""
    if any(not shortfalls(request, c) for c in capacities):
        return ""
    if not capacities:
        return f"asks for {request.describe()}; there is no {what}"
    shown = "; ".join(c.totals() for c in capacities[:SHOWN_NODES])
    more = f"; and {len(capacities) - SHOWN_NODES} more" if len(capacities) > SHOWN_NODES else ""
    return f"asks for {request.describe()}; no {what} could ever hold it ({shown}{more})"


# ---------------------------------------------------------------- handing out

class GpuPool:
    """One machine's (or node's) GPU ids: ``take(n)`` gives the ``n`` lowest free ids or
    nothing, ``give(ids)`` takes them back, ``restore(ids)`` marks ids a running subjob
    already holds (a restarted actor adopting it). No id is ever out twice."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = tuple(sorted(set(ids)))
        self._free = set(self.ids)

    @property
    def free(self) -> int:
        return len(self._free)

    def take(self, count: int) -> tuple[int, ...] | None:
        if count > len(self._free):
            return None
        taken = tuple(sorted(self._free)[:count])
        self._free.difference_update(taken)
        return taken

    def give(self, ids: Iterable[int]) -> None:
        """Take back ids handed out; ids not out (or not ours) are ignored."""
        self._free.update(i for i in ids if i in self.ids)

    def restore(self, ids: Iterable[int]) -> tuple[int, ...]:
        """Mark ``ids`` as held; return those that could not be (not ours, or out already)."""
        wanted = tuple(ids)
        clash = tuple(i for i in wanted if i not in self._free)
        self._free.difference_update(wanted)
        return clash


@dataclasses.dataclass(frozen=True)
class Grant:
    """What a running subjob holds of a :class:`Pool`: its GPU ids and its memory."""

    gpu_ids: tuple[int, ...] = ()
    memory_mb: float = 0


class Pool:
    """What one machine hands out beyond CPU slots: GPUs (a :class:`GpuPool`) and memory
    (reserved from ``memory_mb``, None: not counted). ``take`` is all or nothing."""

    def __init__(self, gpu_ids: Iterable[int] = (), memory_mb: float | None = None) -> None:
        self.gpus = GpuPool(gpu_ids)
        self.memory_mb = memory_mb
        self.reserved_mb: float = 0

    def shortage(self, request: Request) -> str:
        """Why ``request`` cannot be granted now, with counts ('' if it can)."""
        if request.gpus > self.gpus.free:
            return (f"needs {_count(request.gpus, 'GPU')}, {self.gpus.free} of "
                    f"{len(self.gpus.ids)} free")
        if self.memory_mb is not None and request.memory_mb is not None \
                and request.memory_mb > self.memory_mb - self.reserved_mb:
            return (f"needs {format_mb(request.memory_mb)}, "
                    f"{format_mb(max(0, self.memory_mb - self.reserved_mb))} unreserved")
        return ""

    def take(self, request: Request) -> Grant | None:
        if self.shortage(request):
            return None
        ids = self.gpus.take(request.gpus)
        assert ids is not None  # shortage() said they are free
        memory = request.memory_mb or 0
        self.reserved_mb += memory
        return Grant(ids, memory)

    def give(self, grant: Grant) -> None:
        self.gpus.give(grant.gpu_ids)
        self.reserved_mb = max(0, self.reserved_mb - grant.memory_mb)

    def restore(self, grant: Grant) -> tuple[Grant, str]:
        """Mark what an adopted subjob holds: (what it holds of this pool, the note of a
        clash or ''). An id that is not ours or already out stays with its holder."""
        clash = self.gpus.restore(grant.gpu_ids)
        self.reserved_mb += grant.memory_mb
        if not clash:
            return grant, ""
        kept = tuple(i for i in grant.gpu_ids if i not in clash)
        return Grant(kept, grant.memory_mb), f"GPU id(s) {', '.join(map(str, clash))} not free here"

    def capacity(self, name: str, cpus: float | None, cpu_note: str = "") -> Capacity:
        return Capacity(name, cpus, self.gpus.ids, self.memory_mb, (), cpu_note)


def ray_demand(request: Request) -> dict[str, float]:
    """The request in the names of Ray's resource table (memory in bytes)."""
    demand = {"CPU": float(request.cpus), "GPU": float(request.gpus), **dict(request.resources)}
    if request.memory_mb is not None:
        demand["memory"] = request.memory_mb * BYTES_PER_MB
    return {name: amount for name, amount in demand.items() if amount}


def _phrase(name: str, amount: float) -> str:
    if name == "memory":
        return f"{format_mb(amount / BYTES_PER_MB)} of memory"
    return _count(amount, name) if name in ("CPU", "GPU") else f"{amount:g} {name}"


def cluster_shortage(request: Request, free: Mapping[str, float], total: Mapping[str, float]) -> str:
    """What a Ray cluster lacks right now for ``request``, by Ray's own accounting of
    its free and total resources ('' if its free resources cover it)."""
    for name, amount in ray_demand(request).items():
        have = free.get(name, 0)
        if amount > have + 1e-9:
            scale = BYTES_PER_MB if name == "memory" else 1
            return (f"needs {_phrase(name, amount)}; Ray has {have / scale:g} of "
                    f"{total.get(name, 0) / scale:g}{' MB' if scale > 1 else ''} free in the cluster")
    return ""


HELD_VARIABLE = "GANGA_LIKE_HELD"  # in a Local payload's environment: what its run holds


def held_text(cpus: float, grant: Grant) -> str:
    """What a run holds, for :data:`HELD_VARIABLE`: ``cpus=2 memory=1024 gpus=0,1``."""
    return f"cpus={cpus:g} memory={grant.memory_mb:g} gpus={gpu_visible(grant.gpu_ids)}"


def parse_held(text: str) -> tuple[float, Grant] | None:
    """(CPUs, grant) from :func:`held_text`'s form; None if it is not that."""
    try:
        fields = dict(part.split("=", 1) for part in text.split())
        ids = tuple(int(i) for i in fields["gpus"].split(",") if i)
        return float(fields["cpus"]), Grant(ids, float(fields["memory"]))
    except (KeyError, ValueError):
        return None


def gpu_visible(ids: Sequence[int]) -> str:
    """:data:`CUDA_VARIABLE`'s value for these ids (empty: no GPU)."""
    return ",".join(map(str, ids))
