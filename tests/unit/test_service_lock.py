"""The service's lock (``service.main.lock_patiently``), on real files and real flocks:
a client's look whether a service runs (``autostart.service_alive``) takes the lock
shared for a moment, and a service starting in that moment still takes it; a lock a
service holds stays refused."""

from __future__ import annotations

import fcntl
import os
import threading
import time

from ganga_like.channel.paths import ServicePaths
from ganga_like.client.autostart import service_alive
from ganga_like.service.main import LOCK_PATIENCE, lock_patiently


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def test_a_start_during_a_clients_look_takes_the_lock(tmp_path):
    lock = str(tmp_path / "service.lock")
    look = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(look, fcntl.LOCK_SH)  # a client's look, as the service tries
    threading.Timer(0.1, os.close, (look,)).start()
    fd = _open(lock)
    try:
        began = time.monotonic()
        assert lock_patiently(fd, LOCK_PATIENCE)
        assert 0.05 < time.monotonic() - began < LOCK_PATIENCE
    finally:
        os.close(fd)


def test_a_lock_a_service_holds_is_refused_after_the_patience(tmp_path):
    lock = str(tmp_path / "service.lock")
    held = _open(lock)
    fcntl.flock(held, fcntl.LOCK_EX)  # a service that runs
    fd = _open(lock)
    try:
        began = time.monotonic()
        assert not lock_patiently(fd, 0.2)
        assert time.monotonic() - began >= 0.2
    finally:
        os.close(fd)
        os.close(held)


def test_clients_looking_all_the_time_do_not_keep_a_service_from_starting(tmp_path):
    """As many looks as waiting clients make (each every 10 ms in autostart): every
    start among them takes the lock."""
    paths = ServicePaths(str(tmp_path / "gl"))
    paths.make_root()
    stop = threading.Event()

    def looks() -> None:
        while not stop.is_set():
            service_alive(paths)

    lookers = [threading.Thread(target=looks, daemon=True) for _ in range(4)]
    for looker in lookers:
        looker.start()
    try:
        for _ in range(50):
            fd = _open(paths.lock)
            try:
                assert lock_patiently(fd, LOCK_PATIENCE)
            finally:
                os.close(fd)
    finally:
        stop.set()
        for looker in lookers:
            looker.join()
