"""The one line a client prints while the service starts: only when the start takes over
ANNOUNCE_AFTER seconds (issue 20, point 12: it said "a few seconds" for 0.2 s)."""

from __future__ import annotations

import time

from ganga_like.channel.paths import ServicePaths
from ganga_like.client import autostart


def _connect(monkeypatch, capsys, tmp_path, answer_after: float) -> str:
    start = time.monotonic()

    def hello(link):  # the service answers once it is ready
        left = answer_after - (time.monotonic() - start)
        if left > 0:
            time.sleep(min(left, 0.1))
            return None
        return {"ready": True}

    monkeypatch.setattr(autostart, "hello", hello)
    monkeypatch.setattr(autostart, "service_alive", lambda paths: True)  # one is starting
    assert autostart.connect(ServicePaths(str(tmp_path / "gl"))) == {"ready": True}
    return capsys.readouterr().err


def test_a_quick_start_says_nothing(monkeypatch, capsys, tmp_path):
    assert _connect(monkeypatch, capsys, tmp_path, 0.2) == ""


def test_a_slow_start_says_so_once(monkeypatch, capsys, tmp_path):
    err = _connect(monkeypatch, capsys, tmp_path, autostart.ANNOUNCE_AFTER + 0.6)
    assert err.count("\n") == 1 and err.startswith("ganga-like: starting the service for ")
