"""``Monitor.run_here``: a function run on the monitor's thread with its connection
(the streamer takes its batches so). A real engine on a real FileStorage, the
monitor's thread started, no Ray (nothing is submitted)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from ganga_like.config import Config
from ganga_like.engine import monitor as monitor_module
from ganga_like.engine.core import Engine
from ganga_like.engine.monitor import Monitor, MonitorStopped


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Iterator[Engine]:
    made = Engine(Config.from_env(root=str(tmp_path_factory.mktemp("calls") / "gl")))
    yield made
    made.close()


@pytest.fixture
def monitor(engine: Engine) -> Iterator[Monitor]:
    made = Monitor(engine.context)
    made.start()
    yield made
    made.stop()


def test_a_call_runs_on_the_monitors_thread_with_its_connection(monitor):
    seen = monitor.run_here(lambda conn: (threading.current_thread().name, conn is monitor.conn,
                                          len(conn.jobs)))
    assert seen == ("ganga_like-monitor", True, 0)


def test_a_call_made_from_a_call_runs_at_once(monitor):
    assert monitor.run_here(lambda conn: monitor.run_here(lambda inner: inner is conn)) is True


def test_what_a_call_raises_is_raised_in_the_callers_thread(monitor):
    def fails(conn):
        raise ValueError("raised on the monitor's thread")

    with pytest.raises(ValueError, match="raised on the monitor's thread"):
        monitor.run_here(fails)
    assert monitor.running  # the monitor goes on
    assert monitor.run_here(lambda conn: "still answers") == "still answers"


def test_a_call_runs_even_when_the_batch_of_its_turn_fails(monitor, monkeypatch):
    def broken(events, submissions):
        raise RuntimeError("this batch failed")

    monkeypatch.setattr(monitor, "_apply", broken)
    monitor.inject([])  # a list: the turn that takes it applies a batch, which fails
    monitor._outcomes["0"] = (True, "")  # (due at once: the turn applies even with no event)
    answers: list[str] = []
    caller = threading.Thread(target=lambda: answers.append(monitor.run_here(lambda conn: "ran")),
                              daemon=True)
    caller.start()
    caller.join(10)
    assert answers == ["ran"], "the call was dropped with the failed batch of its turn"


def test_a_call_handed_to_a_stopped_monitor_raises_monitor_stopped(engine, monkeypatch):
    monkeypatch.setattr(monitor_module, "CALL_LOOK", 0.05)
    stopped = Monitor(engine.context)
    stopped.start()
    stopped.stop()
    began = time.monotonic()
    with pytest.raises(MonitorStopped):
        stopped.run_here(lambda conn: "never")
    assert time.monotonic() - began < 2.0
