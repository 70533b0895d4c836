"""A client on another machine: the service's TLS listener and the root's secret.

``GANGA_LIKE_SERVICE=host:port`` names a service started with ``ganga-like
service start --listen``; ``GANGA_LIKE_SECRET`` is the path of a copy of that
root's ``service-secret.pem`` (the client certificate the service requires).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from ..channel import tls
from ..config import Config
from ..errors import ConfigurationError, ServiceUnavailable
from .link import Link, NoService


def target_from_env() -> tuple[str, int] | None:
    value = os.environ.get("GANGA_LIKE_SERVICE", "")
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigurationError(f"GANGA_LIKE_SERVICE={value!r} is not valid; give HOST:PORT of a "
                                 f"service started with `ganga-like service start --listen`")
    return host, int(port)


def connect(config: Config, target: tuple[str, int]) -> tuple[Link, dict[str, Any], Any, ssl.SSLContext]:
    secret = os.environ.get("GANGA_LIKE_SECRET", "")
    if not secret:
        raise ConfigurationError("GANGA_LIKE_SERVICE is set but GANGA_LIKE_SECRET is not; set it to "
                                 "a copy of the service root's service-secret.pem")
    context = tls.client_context(secret)
    where = f"{target[0]}:{target[1]}"
    link = Link(where, tcp=target, context=context)
    try:
        info, _ = link.call("hello")
    except NoService as exc:
        raise ServiceUnavailable(where, str(exc)) from None
    return link, info, (target[0], int(info["zeo_tls_port"])), context
