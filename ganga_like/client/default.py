"""The process's default session for the GPI and the command line: a client of the
root's service, opened (and the service started) on first use."""

from __future__ import annotations

import atexit
import threading
from typing import Any

from ..model import binding

_lock = threading.Lock()


def default_session() -> Any:
    with _lock:
        session = binding.get_default()
        if session is None:
            from .session import ClientSession

            session = ClientSession()
            binding.set_default(session)
            atexit.register(session.close)
        return session
