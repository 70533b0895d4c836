"""``service.logfile.ClientsLeaving``: ZEO's server logs a client whose connection
broke as an ERROR; in the service's log that line is kept at INFO, and ZEO's other
errors stay errors. ZEO's own server protocol is driven (``connection_lost``, as
asyncio calls it), through the logger the service configures."""

from __future__ import annotations

import logging

import pytest
from ZEO.asyncio import server

from ganga_like.service.logfile import ClientsLeaving


class _Protocol(server.ServerProtocol):
    """ZEO's server protocol without a transport or a storage: only its loss is driven."""

    def __init__(self) -> None:
        self.closed = True  # (a closed one tells its storage nothing)

    def stop(self) -> None:
        pass


@pytest.fixture
def records():
    logger = logging.getLogger("ZEO.asyncio.server")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    leaving, keep = ClientsLeaving(), Keep()
    logger.addFilter(leaving)
    logger.addHandler(keep)
    try:
        yield seen
    finally:
        logger.removeHandler(keep)
        logger.removeFilter(leaving)


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"),
                                   BrokenPipeError(32, "Broken pipe")])
def test_a_client_that_leaves_mid_connection_is_told_at_info(records, error, monkeypatch):
    # (ZEO's base protocol would close its transport: there is none here)
    monkeypatch.setattr(server.ServerProtocol.__mro__[1], "connection_lost", lambda self, exc: None)
    _Protocol().connection_lost(error)
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("INFO", f"Disconnected {type(error).__name__}:{error}")]


def test_other_errors_of_zeo_stay_errors(records):
    logging.getLogger("ZEO.asyncio.server").error("Disconnected %s:%s", "OSError", "no route")
    logging.getLogger("ZEO.asyncio.server").error("something else broke")
    assert [r.levelname for r in records] == ["ERROR", "ERROR"]
