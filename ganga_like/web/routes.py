"""The web view's addresses and what answers each (Tornado request handlers).

Pages: ``/`` (jobs), ``/jobs/3`` (a job or subjob), ``/jobs/3/why``,
``/jobs/3/configuration`` (as ``print(j)``), ``/jobs/3/kill``
(``resubmit``, ``remove``: a confirmation on GET, the action on POST), ``/hosts``.
JSON, in ``--json``'s shapes: ``/api/jobs``, ``/api/jobs/3``, ``/api/jobs/3/subjobs``,
``/api/jobs/3/why``, ``/api/jobs/3/peek``, and POST ``/api/jobs/3/kill`` (...). Live
updates: ``/events/jobs`` and ``/events/jobs/3`` (server-sent events). Every request
passes the gate (``auth``) first; every refusal is one line (HTML or JSON).
"""

from __future__ import annotations

import logging

import tornado.web

from .api import ActionApi, JobApi, JobsApi, PeekApi, SubjobsApi
from .base import ACTION_VERBS, View
from .events import Events
from .page_handlers import (
    ActionPage,
    ConfigurationPage,
    HostsPage,
    JobPage,
    JobsPage,
    NotFound,
    Static,
    WhyPage,
)

access = logging.getLogger("ganga_like.web.access")


def application(view: View) -> tornado.web.Application:
    job = r"([0-9]{1,12}(?:\.[0-9]{1,12})?)"
    actions = "(" + "|".join(ACTION_VERBS) + ")"
    where = {"view": view}
    return tornado.web.Application([
        (r"/", JobsPage, where),
        (rf"/jobs/{job}", JobPage, where),
        (rf"/jobs/{job}/why", WhyPage, where),
        (rf"/jobs/{job}/configuration", ConfigurationPage, where),
        (rf"/jobs/{job}/{actions}", ActionPage, where),
        (r"/hosts", HostsPage, where),
        (r"/static/([a-z.]+)", Static, where),
        (r"/api/jobs", JobsApi, where),
        (rf"/api/jobs/{job}", JobApi, where),
        (rf"/api/jobs/{job}/subjobs", SubjobsApi, where),
        (rf"/api/jobs/{job}/why", WhyPage, where),
        (rf"/api/jobs/{job}/peek", PeekApi, where),
        (rf"/api/jobs/{job}/{actions}", ActionApi, where),
        (r"/events/jobs", Events, where),
        (rf"/events/jobs/{job}", Events, where),
        (r".*", NotFound, where),
    ], xsrf_cookies=False, compress_response=True, log_function=_log_request)


def _log_request(handler: tornado.web.RequestHandler) -> None:
    """One debug line per request, without its query: a first visit's address holds the token."""
    request = handler.request
    access.debug("%d %s %s %.1f ms", handler.get_status(), request.method, request.path,
                 1000 * request.request_time())


__all__ = ["application"]
