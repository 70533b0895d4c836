"""One Ray actor per backend configuration kind, created on first use.

Actors are named ``<backend>.<repository id>.<key>`` in the ``ganga_like``
namespace, so a session finds (re-attaches to) an actor that is still alive,
and a new session of the same repository creates a fresh one and adopts the
work the old one started.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from ..backends.config import BackendConfig
from ..errors import BackendError
from ..ray_runtime import ensure_ray, import_ray

CLOSE_WAIT = 15.0  # seconds shutdown() gives the actors to close (their threads, their tidying)
MAKING_LOOK = 0.2  # seconds between looks at "Ray ended" while waiting to make an actor
NAME_RACE_WAIT = 10.0  # seconds to wait out Ray's race on the name of a dying owner's actor


def backend_named(name: str) -> BackendConfig:
    """A backend's config with its default settings, by class name: for records that
    kept only the name (ledger entries written before their config was kept)."""
    from ..backends.hosts.config import Hosts
    from ..backends.local.config import Local
    from ..backends.local.interactive import Interactive
    from ..backends.raycluster.config import RayCluster
    from ..backends.slurm.config import Slurm

    kinds: dict[str, type[BackendConfig]] = {
        kind.__name__: kind for kind in (Local, Interactive, RayCluster, Hosts, Slurm)}
    if name not in kinds:
        raise BackendError(f"no backend is named {name!r}; known: {', '.join(kinds)}")
    return kinds[name]()


def _make_actor(config: BackendConfig, name: str) -> object:
    """``config.make_actor(name)``, answering a ping, waiting out two races inside Ray
    when the session that owned an actor of this name has just died (SIGKILL, and a new
    service at once): the name can still be registered while the class is already gone
    from the GCS, and Ray's ``get_if_exists`` then fails with an AssertionError of its
    own (seen once in CI); or ``get_if_exists`` hands back the dead owner's actor, which
    Ray ends a moment later (its first call fails with ActorDiedError: seen in the Slurm
    recovery test under load). The name is released a moment later."""
    ray = import_ray()
    deadline = time.monotonic() + NAME_RACE_WAIT
    while True:
        try:
            actor: Any = config.make_actor(name)  # its methods are Ray's, unknown to mypy
            ray.get(actor.ping.remote())
            return actor
        except (AssertionError, ray.exceptions.RayActorError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class BackendPool:
    def __init__(self, repo_uuid: str) -> None:
        self.repo_uuid = repo_uuid
        self._actors: dict[tuple, Any] = {}
        # Two locks: ``_lock`` guards the dict and is never held across a call to Ray, so
        # the poller's ``items()`` and ``forget()`` never wait on an actor being made;
        # ``_making`` makes actors one at a time (Ray's named actors race otherwise).
        self._lock = threading.Lock()
        self._making = threading.Lock()
        self._ray_ended = threading.Event()

    def ray_ended(self) -> None:
        """Ray under this pool died (the service's head, ``ray_runtime.own_head_lost``, or
        this machine's node of a joined cluster, ``ray_runtime.joined_node_lost``):
        no actor is made any more, and ``shutdown`` waits for none. A thread that was
        making one when Ray died never returns, and holds ``_making`` for ever."""
        self._ray_ended.set()

    def actor(self, config: BackendConfig) -> Any:
        key = config.actor_key()
        with self._lock:
            actor = self._actors.get(key)
        if actor is not None:
            return actor
        # One at a time; a thread waiting its turn behind one that hangs on a dead Ray
        # leaves once it is told Ray ended.
        while not self._making.acquire(timeout=MAKING_LOOK):
            self._refuse_if_ended(key)
        try:
            self._refuse_if_ended(key)
            with self._lock:
                actor = self._actors.get(key)  # made while this thread waited its turn
            if actor is None:
                ensure_ray(getattr(config, "address", "") or None)
                name = ".".join([key[0], self.repo_uuid, *map(str, key[1:])])
                actor = _make_actor(config, name)
                with self._lock:
                    self._actors[key] = actor
            return actor
        finally:
            self._making.release()

    def _refuse_if_ended(self, key: tuple) -> None:
        if self._ray_ended.is_set():
            raise BackendError(f"the Ray of this service ended: no {key[0]} actor can be "
                               f"made; the next service starts a new Ray and adopts the work")

    def forget(self, key: tuple) -> None:
        """Drop a dead actor: the next ``actor()`` for its config makes a new one."""
        with self._lock:
            self._actors.pop(key, None)

    def items(self) -> list[tuple[tuple, Any]]:
        with self._lock:
            return list(self._actors.items())

    def shutdown(self) -> None:
        ray = import_ray()
        # An actor being made is waited for, so that it is closed too; boundedly: on a Ray
        # that died under it (its raylet gone) that call never returns.
        ended = self._ray_ended.is_set()
        made = self._making.acquire(timeout=0 if ended else CLOSE_WAIT)
        try:
            with self._lock:
                actors, self._actors = list(self._actors.values()), {}
        finally:
            if made:
                self._making.release()
        if ended or not ray.is_initialized():
            return  # Ray is gone, and its actors with it (a call now could crash or hang)
        # Closed first: an actor finishes what it does after its runs (trace.py's tidying).
        closing = []
        for actor in actors:
            with contextlib.suppress(Exception):  # an actor without close(): killed as it is
                closing.append(actor.close.remote())
        with contextlib.suppress(Exception):
            ray.wait(closing, num_returns=len(closing), timeout=CLOSE_WAIT)
        for actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass  # already gone with its worker: nothing to release
