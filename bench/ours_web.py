"""The web view's benchmark rows (issue 23's aims): server time of a first page, and the
cost of following a running job live. Run through ``bench/ours.py`` (which imports
these) like every other scenario of ours.

* ``web_pages``: a repository of ``n_jobs`` jobs and one master of ``n_subjobs``
  subjobs (split, not run: the pages read records, not processes), the last
  ``n_failed`` of them failed; the web view in this process (its server thread, as in
  the service) answers HTTP requests with the token. Each figure is the time from
  sending the request to the whole answer (loopback: the server's time plus well
  under a millisecond), first (cold: the server's connection has read nothing yet)
  and the median of 5 more.
* ``web_live_cpu``: a writer commits batches of subjob moves every 30 ms (the
  monitor's pace when a 10,000-subjob job runs), first alone for ``seconds``, then
  with ``streams`` live pages following the job (server-sent events). The
  difference of this process's CPU time between the two, over the wall time, is what
  following the job costs the service, as a fraction of one core.
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
import urllib.request

FAILED_AT_END = 10


def _now() -> float:
    return time.perf_counter()


def _config(root: str):  # noqa: ANN202 (a Config: imported late, as in bench/ours.py)
    from ganga_like.config import Config

    return Config.from_env(root=root)


def _build(root: str, n_jobs: int, n_subjobs: int, n_failed: int) -> tuple[object, int, float]:
    """An engine (no Ray) on a new repository of ``n_jobs`` jobs, the last a master of
    ``n_subjobs`` subjobs whose last ``n_failed`` failed; (engine, master id, seconds)."""
    from ganga_like.backends.local.config import Local
    from ganga_like.engine.core import Engine
    from ganga_like.engine.operations.submit import split
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.lifecycle import set_status
    from ganga_like.model.splitters import ArgSplitter

    t0 = _now()
    engine = Engine(_config(root))
    batch = 5000
    for start in range(0, n_jobs - 1, batch):
        def add(start: int = start) -> None:
            for i in range(start, min(n_jobs - 1, start + batch)):
                engine.jobs.add(Job(name=f"web-{i}", application=Executable(exe="/bin/true"),
                                    backend=Local()))
        engine.write(add, note="bench: jobs")
    master = Job(name="big", application=Executable(exe="/bin/true"), backend=Local(),
                 splitter=ArgSplitter(args=[[str(i)] for i in range(n_subjobs)]))

    def big() -> None:
        engine.jobs.add(master)
        split(master)
        for sub in list(master._subjobs.values())[n_subjobs - n_failed:]:
            for status in ("submitting", "submitted", "running", "failed"):
                set_status(sub, status, source="user")
    engine.write(big, note="bench: the master")
    return engine, int(master.id), _now() - t0


def _serve(engine: object) -> object:
    from ganga_like.service.webhost import WebHost

    def answer(request: dict[str, object]) -> dict[str, object]:
        return {"ok": False, "error": {"type": "ServiceError", "message": "no verbs in the bench"}}

    host = WebHost(engine.config, engine.repository, answer)  # type: ignore[attr-defined]
    host.open()
    return host


def _get(view: object, path: str) -> tuple[float, int]:
    request = urllib.request.Request(f"http://127.0.0.1:{view.port}{path}",  # type: ignore[attr-defined]
                                     headers={"Authorization": f"Bearer {view.gate.token}"})  # type: ignore[attr-defined]
    t0 = _now()
    with urllib.request.urlopen(request, timeout=120) as answer:
        size = len(answer.read())
    return _now() - t0, size


PAGES = {
    "jobs_page_s": "/",
    "jobs_api_s": "/api/jobs",
    "job_page_s": "/jobs/{m}",
    "job_page_last_s": "/jobs/{m}?page={last}",
    "failed_page_s": "/jobs/{m}?status=failed",
    "failed_api_s": "/api/jobs/{m}/subjobs?status=failed",
    "running_page_s": "/jobs/{m}?status=running",
}


def web_pages(n_jobs: int, n_subjobs: int, tmp_root: str) -> dict:
    res: dict = {"scenario": "w", "n_jobs": n_jobs, "n_subjobs": n_subjobs,
                 "failed_at_the_end": FAILED_AT_END}
    engine, master, built = _build(os.path.join(tmp_root, "gl"), n_jobs, n_subjobs, FAILED_AT_END)
    res["build_s"] = built
    host = _serve(engine)
    try:
        view = host.view  # type: ignore[attr-defined]
        last = -(-n_subjobs // 50)
        for key, path in PAGES.items():
            path = path.format(m=master, last=last)
            first, size = _get(view, path)
            again = [_get(view, path)[0] for _ in range(5)]
            res[key] = first
            res[key.replace("_s", "_warm_s")] = statistics.median(again)
            res[key.replace("_s", "_bytes")] = size
    finally:
        host.stop()  # type: ignore[attr-defined]
        engine.close()  # type: ignore[attr-defined]
    return res


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def web_live_cpu(n_subjobs: int, tmp_root: str, seconds: float = 10.0, streams: int = 1) -> dict:
    from ganga_like.model.lifecycle import set_status

    engine, master, built = _build(os.path.join(tmp_root, "gl"), 1, n_subjobs, 0)
    res: dict = {"scenario": "w'", "n_subjobs": n_subjobs, "seconds": seconds,
                 "streams": streams, "build_s": built}
    job = engine.jobs.get(master)  # type: ignore[attr-defined]
    subs = list(job._subjobs.values())
    moves = iter([(sub, status) for status in ("submitting", "submitted", "running", "completed")
                  for sub in subs])
    stop = threading.Event()

    def writer() -> None:  # the monitor's pace: a batch of moves every 30 ms
        while not stop.wait(0.03):
            def batch() -> None:
                for sub, status in [m for _, m in zip(range(40), moves, strict=False)]:
                    set_status(sub, status, source="backend")
            engine.write(batch, note="bench: a monitor batch")  # type: ignore[attr-defined]

    host = _serve(engine)
    view = host.view  # type: ignore[attr-defined]
    try:
        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        c0, t0 = _cpu(), _now()
        time.sleep(seconds)
        alone = (_cpu() - c0) / (_now() - t0)
        rows = ",".join(str(i) for i in range(50))
        readers = [threading.Thread(target=_follow, args=(view, f"/events/jobs/{master}?rows={rows}",
                                                          seconds + 2, res), daemon=True)
                   for _ in range(streams)]
        for reader in readers:
            reader.start()
        time.sleep(1)  # connected
        c1, t1 = _cpu(), _now()
        time.sleep(seconds)
        followed = (_cpu() - c1) / (_now() - t1)
        stop.set()
        thread.join()
        for reader in readers:
            reader.join(seconds + 10)
        res.update(writer_alone_cpu_fraction=alone, with_live_pages_cpu_fraction=followed,
                   live_cpu_fraction=max(0.0, followed - alone))
    finally:
        stop.set()
        host.stop()  # type: ignore[attr-defined]
        engine.close()  # type: ignore[attr-defined]
    return res


def _follow(view: object, path: str, seconds: float, res: dict) -> None:
    """Read a live stream for ``seconds`` (as a browser's EventSource does); count its events."""
    request = urllib.request.Request(f"http://127.0.0.1:{view.port}{path}",  # type: ignore[attr-defined]
                                     headers={"Authorization": f"Bearer {view.gate.token}"})  # type: ignore[attr-defined]
    deadline = _now() + seconds
    events = 0
    with urllib.request.urlopen(request, timeout=seconds + 30) as stream:
        while _now() < deadline:
            line = stream.readline()
            if not line:
                break
            events += line.startswith(b"data: ")
    res["live_events"] = res.get("live_events", 0) + events
