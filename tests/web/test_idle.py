"""An open live page counts as a client of the service (its idle stop waits for it), and
stops counting when the page goes: the service's own count, with a real web view over a
real FileStorage and a real stream (no Ray: nothing runs)."""

from __future__ import annotations

import time
import urllib.request

from ganga_like.config import Config
from ganga_like.engine.core import Engine
from ganga_like.service.main import Service
from ganga_like.service.webhost import WebHost


def test_an_open_live_page_is_a_client_until_it_closes(tmp_path):
    config = Config.from_env(root=str(tmp_path / "gl"))
    engine = Engine(config)
    service = Service(config)
    service.web = WebHost(config, engine.repository, service.answer)
    try:
        info = service.web.open()
        assert service.client_count() == 0
        view = service.web.view
        request = urllib.request.Request(
            f"http://127.0.0.1:{info['port']}/events/jobs?rows=",
            headers={"Authorization": f"Bearer {view.gate.token}"})
        stream = urllib.request.urlopen(request, timeout=30)
        deadline = time.monotonic() + 10
        while service.client_count() != 1:
            assert time.monotonic() < deadline, "the open page was not counted"
            time.sleep(0.05)
        stream.close()
        deadline = time.monotonic() + 20  # noticed at the stream's next write
        while service.client_count() != 0:
            assert time.monotonic() < deadline, "the closed page still counts"
            time.sleep(0.1)
    finally:
        service.web.stop()
        engine.close()
