"""The service's writer of the BEX queue on a real FileStorage (an in-process engine; no
backend runs: statuses are moved by ``set_status`` as the monitor moves them): files
follow commits, never run ahead of them, and a write lost to a crash is repaired at the
next start from the stored state."""

from __future__ import annotations

import os

from ganga_like.backends.base import Handle
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


def test_an_entry_follows_its_current_attempts_host(tmp_path):
    """A label's subjob is queued where its run is; resubmitted, its earlier entry stays on
    the host it ran on, as it ended, and the new attempt appears once it has a host."""
    config = Config.from_env(root=str(tmp_path / "gl"))
    engine = Engine(config)
    try:
        job = engine.register(Job(application=Executable(exe="/bin/true", args=[]),
                                  backend=Hosts(label="x86")))
        name = bex_job_id(str(job.id))

        def ran_on(host: str, attempt: int, *statuses: str) -> None:
            """Attempt ``attempt`` moves through ``statuses``; its handle names ``host``
            ('': it has no handle of its own yet, the previous attempt's stays)."""
            def work() -> None:
                stored = engine.jobs.get(job.id)
                stored.submit_counter = attempt  # as submit() and resubmit() count attempts
                if host:
                    stored.handle = Handle("Hosts", stored.fqid, host=host, attempt=attempt).to_tuple()
                for status in statuses:
                    set_status(stored, status)
            engine.write(work)

        move(engine, job.id, "submitting", "submitted")
        assert engine.bex is not None and engine.bex.flush()
        assert not os.path.exists(f"{config.bex_queue}/hosts")  # no host chosen yet
        # Resubmitted at once (as auto-resubmission does, right after the failure's commit):
        # the failure's commit waited for its files, so attempt 1's end is on n1.
        ran_on("n1", 1, "running", "failed")
        ran_on("", 2, "submitting", "submitted")  # the handle is still attempt 1's
        assert engine.bex.flush()
        assert "Status: FAILED\n" in stat_of(config, name)  # attempt 2 is not on n1 (yet)
        ran_on("n2", 2, "running")
        assert engine.bex.flush()
        with open(f"{config.bex_queue}/hosts/n2/{name}.stat") as handle:
            assert "Status: RUN\n" in handle.read()
        assert "Status: FAILED\n" in stat_of(config, name)
    finally:
        engine.close()


def test_a_read_only_engine_writes_nothing(tmp_path):
    config = Config.from_env(root=str(tmp_path / "gl"))
    Engine(config).close()
    reader = Engine(config, read_only=True)
    try:
        assert reader.bex is None
    finally:
        reader.close()
