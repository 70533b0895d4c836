"""Slow subprocess drivers, started as soon as the tests are collected, read at the end.

A few fixtures wait on one long subprocess: the Hosts cluster driver (a six-node Ray
cluster running the backend contract and the Autotest scenarios, ≈90 s) and the docs'
runnable blocks (one ``ganga-like run`` of every block, ≈20 s). Run in place, the
whole suite waits for each. Instead, when a selected test needs one, it is launched
right after collection and runs beside the other tests, whose time is mostly spent
waiting on processes and services; the tests that read it are moved to the end of the
run, by when it has usually finished. The subprocess is the very one the fixture would
start (run alone, the fixture starts it itself), so nothing about what is tested changes,
only when.

A driver registers itself with :func:`launcher` (in the module that defines its fixture,
imported during collection); its fixture gets the run with :func:`launched`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest


class Launched:
    """One started subprocess; :meth:`finish` waits for it once and reads its output."""

    def __init__(self, proc: subprocess.Popen, timeout: float, read: Callable[[str], Any],
                 cleanup: Callable[[], None] = lambda: None) -> None:
        self.proc = proc
        self.cleanup = cleanup  # ends what the subprocess may leave; the fixture calls it
        self.started = time.monotonic()
        self.timeout = timeout
        self._read = read
        self._done = False
        self._result: Any = None

    def finish(self) -> Any:
        if not self._done:
            left = max(1.0, self.timeout - (time.monotonic() - self.started))
            try:
                output, _ = self.proc.communicate(timeout=left)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                output, _ = self.proc.communicate()
                output += f"\n(killed after {self.timeout:.0f} s)"
            self._result, self._done = self._read(output), True
        return self._result

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


Launcher = Callable[[pytest.TempPathFactory], Launched]
LAUNCHERS: dict[str, Launcher] = {}
_started: dict[str, Launched] = {}


def launcher(fixture_name: str) -> Callable[[Launcher], Launcher]:
    """Register the function that starts the subprocess behind ``fixture_name``."""
    def register(launch: Launcher) -> Launcher:
        LAUNCHERS[fixture_name] = launch
        return launch
    return register


def launched(fixture_name: str, factory: pytest.TempPathFactory) -> Launched:
    """The run behind ``fixture_name``: the one started after collection, else a new one."""
    run = _started.pop(fixture_name, None)
    return run if run is not None else LAUNCHERS[fixture_name](factory)


def needs(item: pytest.Item) -> list[str]:
    """The registered drivers whose fixture ``item`` requests."""
    names = getattr(item, "fixturenames", ())
    return [name for name in LAUNCHERS if name in names]


def start(config: pytest.Config, names: set[str]) -> None:
    """Launch the drivers ``names`` now."""
    factory = config._tmp_path_factory  # type: ignore[attr-defined]  # pytest's own, as tmp_path_factory
    for name in sorted(names):
        _started[name] = LAUNCHERS[name](factory)


def start_and_reorder(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Launch every registered driver a selected test needs; move its readers last."""
    wanted = {name for item in items for name in needs(item)}
    if not wanted:
        return
    items[:] = [item for item in items if not needs(item)] + [item for item in items if needs(item)]
    start(config, wanted)


def stop_unread() -> None:
    """At the end of the run: end what was launched but never read (a test deselected
    later, an interrupted run), so no driver outlives the run."""
    for run in _started.values():
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.communicate()
        run.cleanup()
    _started.clear()
