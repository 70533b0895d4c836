"""Who may use the web view: the token, its cookie, and the checks against other sites.

It is a job manager that can kill and remove, so every request needs the secret token
made at the web view's start (``secrets``, 256 bits; compared in constant time), as
Jupyter does:

- a first visit brings it in the address (``/?token=...``, what ``ganga-like web``
  prints); the answer keeps it in an HttpOnly, SameSite=Strict cookie (no script reads
  it, no other site's request carries it) and redirects to the same address without it,
  so it leaves the address bar, the history and any Referer;
- a script may send it as ``Authorization: Bearer <token>`` instead;
- anywhere else (a form field, the address of a request that changes something) it is
  refused: a token in the wrong place is a token about to leak.

A request that changes something (POST) must also come from the view's own pages
(pages are served with ``Referrer-Policy: same-origin``: a browser then names the
page's origin in a change it sends, and no other site ever gets a Referer from them):
its ``Origin`` (or, without one, its ``Referer``) must be the view's own origin, and it
must carry the page's action key (``_csrf``: derived from the token, so a page never
holds the token itself), unless it authenticates with the Bearer header, which no
other site's page can send. No CORS header is ever sent. On loopback the ``Host``
header must name a loopback address (another site's name resolving to 127.0.0.1 is
refused: DNS rebinding).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from ..errors import WebRefused

TOKEN_PARAM = "token"
CSRF_FIELD = "_csrf"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
GET_AGAIN = "open the address `ganga-like web` prints (it holds the token) to sign in again"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def host_name(host: str) -> str:
    """The name in a Host header or an origin's netloc, without its port (``[::1]:80``: ``::1``)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclasses.dataclass(frozen=True)
class Request:
    """What the gate reads of an HTTP request."""

    method: str
    host: str  # the Host header
    query_token: str | None
    cookies: Mapping[str, str]
    headers: Mapping[str, str]
    form: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Gate:
    """The checks, for one start of the web view (``token``) on ``port``."""

    token: str
    port: int
    loopback: bool = True

    @property
    def cookie(self) -> str:
        # Cookies are per host, not per port: two repositories' views on 127.0.0.1 each
        # keep their own.
        return f"ganga_like_web_{self.port}"

    @property
    def csrf(self) -> str:
        """The action key a page's forms carry: derived from the token, not the token."""
        return hmac.new(self.token.encode(), b"ganga_like web actions", hashlib.sha256).hexdigest()

    def matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def check_host(self, request: Request) -> None:
        if self.loopback and host_name(request.host) not in LOOPBACK_NAMES:
            raise WebRefused(403, f"the address {request.host!r} is not this web view's",
                             f"it answers on loopback only: http://127.0.0.1:{self.port}/")

    def admit(self, request: Request) -> bool:
        """Check ``request``; True when it signs in with the token in its address (the
        caller then sets the cookie and redirects to the address without it). Raises
        ``WebRefused`` (one line) otherwise."""
        self.check_host(request)
        changing = request.method not in ("GET", "HEAD")
        if TOKEN_PARAM in request.form or (changing and request.query_token is not None):
            raise WebRefused(400, "the token is in the wrong place (a form field or the address of "
                             "a request that changes something)", "it goes only in the address of "
                             "a first visit (a GET), or in an Authorization: Bearer header")
        bearer = _bearer(request.headers.get("Authorization", ""))
        if bearer is not None:
            if not self.matches(bearer):
                raise WebRefused(403, "the Authorization header's token is not this web view's",
                                 GET_AGAIN)
            return False  # a script: no other site's page can send this header
        if request.query_token is not None:
            if not self.matches(request.query_token):
                raise WebRefused(403, "the token in the address is not this web view's "
                                 "(the service was restarted?)", GET_AGAIN)
            return True
        if not self.matches(request.cookies.get(self.cookie)):
            raise WebRefused(403, "this page needs the web view's token", GET_AGAIN)
        if changing:
            self._same_site(request)
        return False

    def _same_site(self, request: Request) -> None:
        origin = request.headers.get("Origin") or _origin_of(request.headers.get("Referer", ""))
        own = f"http://{request.host}"
        if not origin or origin == "null" or not hmac.compare_digest(origin, own):
            raise WebRefused(403, f"a change asked from another site ({origin or 'no origin'})",
                             f"changes are made from this web view's own pages ({own})")
        if not hmac.compare_digest(request.form.get(CSRF_FIELD, ""), self.csrf):
            raise WebRefused(403, "a change without this page's action key",
                             "reload the page and use its buttons")


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


__all__ = ["CSRF_FIELD", "TOKEN_PARAM", "Gate", "Request", "host_name", "new_token"]
