"""The service's writer of the BEX queue on a real FileStorage (an in-process engine; no
backend runs: statuses are moved by ``set_status`` as the monitor moves them): files
follow commits, never run ahead of them, and a write lost to a crash is repaired at the
next start from the stored state."""

from __future__ import annotations

import os

from ganga_like.backends.hosts.config import Hosts
from ganga_like.backends.local.config import Local
from ganga_like.bex.entry import bex_job_id
from ganga_like.config import Config
from ganga_like.engine.core import Engine
from ganga_like.engine.operations.common import active_set
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status


def move(engine: Engine, job_id: int, *statuses: str, detail: str = "") -> None:
    def work() -> None:
        job = engine.jobs.get(job_id)
        active_set(engine.main.root).add(job_id)
        for status in statuses:
            set_status(job, status)
        if detail:
            job.backend_detail = detail

    engine.write(work)


def stat_of(config: Config, name: str) -> str:
    with open(f"{config.bex_queue}/hosts/n1/{name}.stat") as handle:
        return handle.read()


def test_a_lost_write_is_repaired_at_the_next_start(tmp_path):
    config = Config.from_env(root=str(tmp_path / "gl"))
    engine = Engine(config)
    try:
        job = engine.register(Job(application=Executable(exe="/bin/true", args=[]),
                                  backend=Hosts(hosts=["n1"])))
        local = engine.register(Job(application=Executable(exe="/bin/true"), backend=Local()))
        name = bex_job_id(str(job.id))  # ids start at 0
        move(engine, job.id, "submitting", "submitted")
        move(engine, local.id, "submitting", "submitted")
        assert engine.bex is not None and engine.bex.flush()
        assert "Status: NEW\n" in stat_of(config, name)
        with open(f"{config.bex_queue}/jobs/{name}.job") as handle:
            assert handle.read() == f"ID: {name}\n\n/bin/true\n"
        engine.bex.stop()  # the writer is gone (as with the service killed after a commit)
        move(engine, job.id, "running", detail="Running")
        assert "Status: NEW\n" in stat_of(config, name)  # the change is committed, unwritten
    finally:
        engine.close()
    again = Engine(config)  # the next start rewrites what was active
    try:
        assert again.bex is not None and again.bex.flush()
        stat = stat_of(config, name)
        assert stat.startswith("Time: ") and "\nStatus: RUN\nMessage: Running\n" in stat, stat
        # Only Hosts jobs are queued: the Local job has no files.
        assert os.listdir(f"{config.bex_queue}/jobs") == [f"{name}.job"]
    finally:
        again.close()


def test_a_read_only_engine_writes_nothing(tmp_path):
    config = Config.from_env(root=str(tmp_path / "gl"))
    Engine(config).close()
    reader = Engine(config, read_only=True)
    try:
        assert reader.bex is None
    finally:
        reader.close()
