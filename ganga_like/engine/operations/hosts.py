"""hosts(): the Hosts backend's hosts as its actor keeps them, each once.

The actor is the one place a host's status lives (``backends/hosts/hostbook.py``); this
verb asks it and shapes the answer: name, labels, status, protection, dirty flag, the
subjob it holds, its last check and that check's result. Asking starts the actor (and
Ray) if nothing did yet: a site lists its hosts before its first job.
"""

from __future__ import annotations

from ...backends.hosts.config import Hosts
from ...errors import InvalidValue
from ...ray_runtime import import_ray
from ..context import EngineContext

ASK_TIMEOUT = 60.0  # seconds: the actor reads the cluster's nodes and answers


def list_hosts(ctx: EngineContext, name: str = "") -> list[dict[str, object]]:
    """Every host (or the one named), as dicts; an unknown name is refused in one line."""
    ray = import_ray()
    rows: list[dict[str, object]] = ray.get(ctx.backends.actor(Hosts()).hosts.remote(), timeout=ASK_TIMEOUT)
    if not name:
        return rows
    chosen = [row for row in rows if row["name"] == name]
    if not chosen:
        known = ", ".join(str(row["name"]) for row in rows) or "none (no Ray node is up)"
        raise InvalidValue("hosts()", "name", name, f"the name of a host of the cluster: {known}")
    return chosen
