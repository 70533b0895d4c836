"""What a stopping service answers (``service.main.Service.answer``), without starting one:
a request that changes or reads jobs is refused once the stop is asked, hello and status
are answered until the requests under way have ended, and refused after that (the
session they read is closing). Refused is ``ServiceStopping``: a local client asks the
next service (tests/service/test_service.py and test_start_failures.py run it for real)."""

from __future__ import annotations

from ganga_like.channel import protocol
from ganga_like.config import Config
from ganga_like.errors import ServiceStopping
from ganga_like.service.main import Service


def refusal(answer: dict) -> ServiceStopping:
    assert answer["ok"] is False, answer
    error = protocol.decode_error(answer["error"])
    assert isinstance(error, ServiceStopping), error
    return error


def test_a_stopping_service_refuses_verbs_and_after_its_drain_everything(tmp_path):
    service = Service(Config.from_env(root=str(tmp_path / "gl")))
    service.ready.set()
    service.request_stop("asked by a client")
    error = refusal(service.answer({"verb": "kill", "args": {"fqid": "3"}}))
    assert str(error) == (f"the ganga_like service for {tmp_path / 'gl'} is stopping (asked by "
                          f"a client); nothing was done: run it again (on its machine, the next "
                          f"use starts a new service)")
    assert "\n" not in str(error) and error.reason == "asked by a client"
    refusal(service.answer({"verb": "wait", "args": {"fqids": ["3"]}}))
    service._drain()  # nothing under way: at once
    for verb in ("hello", "status", "stop"):
        refusal(service.answer({"verb": verb}))
