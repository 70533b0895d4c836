"""The backend contract: what every backend actor does, and the plain data it exchanges.

A backend is two things:

* a small persistent *config* object the user sets on a job (``Local()``,
  ``RayCluster(address=...)``, ``Hosts(label=...)``), a :class:`BackendConfig`;
* a Ray *actor* that does the work, implementing :class:`BackendActor`.

Actors never touch the database. The session sends them :class:`SubjobSpec`
batches and receives :class:`Handle` objects and :class:`Event` objects back; the
monitor applies the events to jobs through the one status function.

The contract, method by method (every backend passes ``tests/backends/contract.py``):

``submit(specs) -> list[Handle]``
    Start (or queue) a batch of subjobs. Returns one handle per spec, in order;
    every handle (and every event's handle) carries ``spec.attempt``, so the
    monitor can tell the events of a resubmitted subjob's earlier run apart.
    A handle is enough to find the work again after the session (and the actor)
    restart: a pid plus the process start time, a Ray task id, a host name.
    A spec that cannot be started at all yields a handle with ``error`` set;
    the others go ahead (partial failures are per subjob, never all-or-nothing).

``events(since, timeout, linger=0.0) -> (seq, list[Event])``
    Long poll: return the events with sequence number > ``since`` as soon as
    there is at least one, or an empty list after ``timeout`` seconds. When
    events were already waiting as the call came in (a busy stream), the answer
    gathers more for up to ``linger`` seconds first; an event the call had to wait
    for goes out at once, so an idle backend adds no latency. ``seq`` is
    the sequence number of the last event returned (or ``since`` if none). Events
    older than ``since`` may be forgotten by the actor.

``kill(handles, grace) -> list[KillResult]``
    Stop the work and confirm that every resource it held is released (for
    Local: the whole process tree is gone). ``confirmed`` is False where that
    could not be established; the caller must then not report the job killed
    in strict mode.

``held(handles) -> list[bool]``
    Whether each handle still holds a resource (a live process, a Ray task or
    actor, a placement group). Strict mode and the leak audit ask this.

``adopt(handles) -> list[Event]``
    After a restart: take over work an earlier actor started. Returns, per
    handle, the event that describes where it is now (running, finished with
    an exit code, or lost), and keeps watching what still runs.

``find(marker_prefix) -> list[Handle]``
    Every piece of work this backend can see whose marker starts with
    ``marker_prefix`` (``"<repository id>:"``), whatever the database says: the
    leak audit and the recovery of subjobs caught in ``submitting`` use it. The
    handles' ``fqid`` is the part of the marker after the prefix.

``ping() -> dict``
    Liveness and a little self-description (backend name, host, pid, counts,
    ``loop_errors``: the last errors its threads survived).

``close()``
    Stop the actor's threads. The work it started keeps running (or, for Ray tasks,
    stays with Ray while the actor lives) for a new actor to adopt; calling it again
    does nothing.

Every actor is a :class:`~ganga_like.backends.runtime.actor.RuntimeActor` (the event
stream, the run table, the kill protocol, adopt, held, find) plus its driver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..ray_runtime import import_ray
from .resources import CUDA_VARIABLE, Request

# Event kinds, as the monitor understands them.
QUEUED = "queued"  # accepted, waiting for a slot (detail says why)
STARTED = "started"  # the payload is running
FINISHED = "finished"  # the payload exited and every resource is released; see exit_code
LOST = "lost"  # the work vanished without an exit status (reason in note)
KILLED = "killed"  # stopped on request, resources released
DETAIL = "detail"  # a backend-level minor status changed (Queued, Verifying, Pending, ...)

EVENT_KINDS = (QUEUED, STARTED, FINISHED, LOST, KILLED, DETAIL)


@dataclasses.dataclass(frozen=True)
class SubjobSpec:
    """Everything a backend needs to run one subjob; plain data, picklable."""

    job_id: int  # the master's id (or the job's own id when it has no subjobs)
    subjob_id: int | None  # None for a job without subjobs
    fqid: str  # "3" or "3.14"
    exe: str
    args: tuple[str, ...]
    env: dict[str, str]
    workdir: str  # workspace/<id>/<sub>: input/, output/ and status live here
    marker: str  # environment marker identifying our processes: "<repo-uuid>:<fqid>"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # backend specific
    attempt: int = 0  # the subjob's submit counter; echoed in its Handle
    # The environment of the client that submitted the job (its payload starts with it,
    # as Slurm's jobs do); None when the job asked for the backend's own environment.
    # Specs of one submit share one dict, so it is serialised once per batch.
    base_env: dict[str, str] | None = None
    request: Request = Request()  # what it asks for (backends.resources), its own per subjob
    priority: int = 0  # its job's priority: higher waits less (the run table's order)


RAY_VARIABLES = ("RAY_", "_RAY")  # the backend process's Ray settings never reach a payload


def payload_environment(spec: SubjobSpec, own: Mapping[str, str]) -> dict[str, str]:
    """A payload's environment before its marker: the submitter's (``spec.base_env``)
    or the backend's ``own``, without Ray's variables, updated with the job's ``env``;
    and no GPU (an empty ``CUDA_VISIBLE_DEVICES``, whatever those said) until its
    driver sets the ids it gave the subjob: an id is never used by two subjobs."""
    source = own if spec.base_env is None else spec.base_env
    env = {k: v for k, v in source.items() if not k.startswith(RAY_VARIABLES)}
    env.update(spec.env)
    env[CUDA_VARIABLE] = ""
    return env


@dataclasses.dataclass(frozen=True)
class Handle:
    """How to find a subjob's work again, across restarts of session and actor."""

    backend: str  # "Local", "RayCluster", "Hosts"
    fqid: str
    host: str = ""
    pid: int = 0
    create_time: float = 0.0  # psutil create_time of pid: survives pid reuse
    task_id: str = ""  # Ray task / actor id where applicable
    workdir: str = ""
    error: str = ""  # set when the spec could not be started at all
    attempt: int = 0  # copied from SubjobSpec.attempt: events of an earlier run are stale
    # What the run holds of its machine (Local: set on its STARTED handle, stored with the
    # subjob, so a restarted actor adopting it holds them again): CPU slots, MB of
    # memory, GPU ids (its CUDA_VISIBLE_DEVICES).
    cpus: float = 1
    memory_mb: float = 0
    gpu_ids: tuple[int, ...] = ()

    def to_tuple(self) -> tuple:
        # Not dataclasses.astuple: it deep-copies every field, and the monitor stores
        # a handle per started subjob.
        return (self.backend, self.fqid, self.host, self.pid, self.create_time, self.task_id,
                self.workdir, self.error, self.attempt, self.cpus, self.memory_mb, self.gpu_ids)

    @classmethod
    def from_tuple(cls, data: Sequence[Any]) -> Handle:
        return cls(*data)


@dataclasses.dataclass(frozen=True)
class Event:
    """Something that happened to one subjob, reported by an actor."""

    seq: int
    fqid: str
    kind: str  # one of EVENT_KINDS
    time: float
    exit_code: int | None = None
    note: str = ""
    detail: str = ""  # backend minor status (Queued, Running, NOPING, ...)
    handle: Handle | None = None


@dataclasses.dataclass(frozen=True)
class KillResult:
    fqid: str
    confirmed: bool
    note: str = ""


class BackendActor(Protocol):
    """What a backend's Ray actor implements (called through ``.remote()``)."""

    def submit(self, specs: list[SubjobSpec]) -> list[Handle]: ...

    def events(self, since: int, timeout: float, linger: float = 0.0) -> tuple[int, list[Event]]: ...

    def kill(self, handles: list[Handle], grace: float = 3.0) -> list[KillResult]: ...

    def held(self, handles: list[Handle]) -> list[bool]: ...

    def adopt(self, handles: list[Handle]) -> list[Event]: ...

    def find(self, marker_prefix: str) -> list[Handle]: ...

    def ping(self) -> dict: ...

    def close(self) -> None: ...


def actor_options(
    max_concurrency: int,
    name: str | None = None,
    namespace: str | None = None,
    lifetime: str | None = None,
    get_if_exists: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """Ray options shared by every backend actor: threaded, asking for no CPU (the
    work it starts reserves its own, or is not a Ray task at all), optionally named,
    and placed on the caller's node (hard affinity). A backend actor must live and die
    with the service that drives it: asking for no CPU, it could otherwise land on any
    node that joins, where Local would start "local" processes on another machine and a
    RayCluster or Hosts actor would die with a node its subjobs do not even use."""
    ray = import_ray()
    options: dict[str, Any] = {"num_cpus": 0, "max_concurrency": max_concurrency}
    if ray.is_initialized():
        options["scheduling_strategy"] = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False)
    if name is not None:
        options["name"] = name
    if namespace is not None:
        options["namespace"] = namespace
    if lifetime is not None:
        options["lifetime"] = lifetime
    if get_if_exists:
        options["get_if_exists"] = True
    options.update(extra)
    return options
