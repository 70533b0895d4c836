"""The backend pool on a Ray that dies under it (issue 22's fault: the service's Ray).

When the service's raylet dies, a thread that is making a backend actor waits for ever
in Ray. The service's watch then tells the pool that Ray ended: the monitor's poller,
other verbs and the stop must not wait on that thread. Here the hang is a real Ray actor
whose answer to the pool's ping never comes until the test lets it.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from ganga_like.backends.config import BackendConfig
from ganga_like.engine.backend_pool import BackendPool
from ganga_like.errors import BackendError
from ganga_like.ray_runtime import import_ray


class _Stalled:
    """An actor whose ping waits until its file exists: an actor being made for ever."""

    def __init__(self, release: str) -> None:
        self.release = release

    def ping(self) -> bool:
        while not os.path.exists(self.release):
            time.sleep(0.05)
        return True


class StalledBackend(BackendConfig):
    release_path = ""  # set by the test on the class: a config's fields are declared

    def make_actor(self, name: str) -> object:
        ray = import_ray()
        return ray.remote(num_cpus=0)(_Stalled).options(name=name, namespace="ganga_like").remote(
            self.release_path)


class OtherBackend(BackendConfig):
    def make_actor(self, name: str) -> object:  # never reached: Ray ended first
        raise AssertionError("an actor was made after Ray ended")


def _returns_within(seconds: float, call) -> object:
    started = time.monotonic()
    result = call()
    assert time.monotonic() - started < seconds, f"{call} took {time.monotonic() - started:.1f} s"
    return result


@pytest.mark.usefixtures("ray_session")
def test_nothing_waits_on_an_actor_being_made_once_ray_ended(tmp_path):
    release = tmp_path / "release"
    StalledBackend.release_path = str(release)
    stalled = StalledBackend()
    pool = BackendPool(f"pool-test-{os.getpid()}")
    made: list[object] = []  # once the test lets the ping answer
    making = threading.Thread(target=lambda: made.append(pool.actor(stalled)), daemon=True)
    making.start()
    waiting: list[BaseException] = []

    def wait_in_line() -> None:
        try:
            pool.actor(OtherBackend())
        except BackendError as error:
            waiting.append(error)

    in_line = threading.Thread(target=wait_in_line, daemon=True)
    try:
        time.sleep(1.0)  # the stalled actor is being made
        assert making.is_alive()
        in_line.start()
        # The poller's view and a dead actor's removal never wait on the making.
        assert _returns_within(1.0, pool.items) == []
        _returns_within(1.0, lambda: pool.forget(("StalledBackend",)))
        pool.ray_ended()
        in_line.join(timeout=2.0)
        assert not in_line.is_alive(), "a thread waiting its turn was not let go"
        assert len(waiting) == 1 and "\n" not in str(waiting[0])
        assert "the Ray of this service ended" in str(waiting[0])
        with pytest.raises(BackendError, match="no OtherBackend actor can be made"):
            _returns_within(2.0, lambda: pool.actor(OtherBackend()))
        _returns_within(2.0, pool.shutdown)
        assert making.is_alive()  # still in Ray: the stop did not wait for it
    finally:
        release.touch()
        making.join(timeout=30)
        assert made, "the stalled actor was not made once its ping answered"
        ray = import_ray()
        for name in ray.util.list_named_actors(all_namespaces=True):
            if name["name"].startswith("StalledBackend.pool-test-"):
                ray.kill(ray.get_actor(name["name"], namespace=name["namespace"]))
