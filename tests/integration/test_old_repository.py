"""A repository written before the engine moved loads unchanged (persistent classes
keep their import paths): every record of the file unpickles, and every job reads
as it was written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import ZODB
from ZODB.FileStorage import FileStorage

from ganga_like.backends.base import Handle
from ganga_like.backends.raycluster.config import RayCluster
from ganga_like.cli.render import show_text
from ganga_like.config import Config
from ganga_like.engine.core import Engine
from ganga_like.model.status_index import JOBS_INDEX_KEY
from ganga_like.repository.index_build import ensure_indexes
from ganga_like.status import Source, history_entries

OLD = Path(__file__).resolve().parents[1] / "data" / "repository-before-engine" / "jobs.fs"


def test_every_record_of_an_old_repository_loads(tmp_path):
    copy = tmp_path / "jobs.fs"
    shutil.copy(OLD, copy)
    storage = FileStorage(str(copy), read_only=True)
    db = ZODB.DB(storage)
    conn = db.open()
    try:
        seen = 0
        for txn in storage.iterator():
            for record in txn:
                obj = conn.get(record.oid)
                obj._p_activate()  # unpickles: every class it names must still import
                seen += 1
        assert seen > 50
    finally:
        conn.close()
        db.close()


def test_an_old_repository_reads_as_it_was_written(tmp_path):
    root = tmp_path / "gl"
    (root / "repository").mkdir(parents=True)
    shutil.copy(OLD, root / "repository" / "jobs.fs")
    engine = Engine(Config.from_env(root=str(root)))
    try:
        rows = [(j.id, j.name, j.status.value, dict(j.subjob_counts or {})) for j in engine.jobs]
        assert rows == [(0, "split", "failed", {"completed": 2, "failed": 1}),
                        (1, "single", "completed", {}), (2, "sleeper", "killed", {}),
                        (3, "never submitted", "new", {})]
        split = engine.jobs.get(0)
        assert [s.application.args for s in split.subjobs] == [["-c", "echo one"], ["-c", "exit 3"],
                                                               ["-c", "echo three"]]
        assert split.subjobs[1].info.submit_counter == 2  # resubmitted once
        steps = [entry.dst for entry in history_entries(split.subjobs[1].history)]
        assert steps[-1] == "failed" and steps.count("submitted") == 2, steps
        # Written before causes (five-tuples, free-string sources): no cause, the sources
        # read as the enumeration, and `show` renders them as before.
        for job in [split, *split.subjobs, *engine.jobs]:
            assert all(len(entry) == 5 for entry in job.history), job.fqid
            for entry in history_entries(job.history):
                assert entry.cause is None and isinstance(entry.source, Source)
        sources = [e.source for e in history_entries(split.subjobs[1].history)]
        assert sources[0] is Source.USER and Source.BACKEND in sources, sources
        assert {e.source for e in history_entries(split.history)} == {Source.DERIVED}
        shown = show_text(split.subjobs[1], None, None, 3).splitlines()[-1]
        assert re.fullmatch(r"  \S+ \S+ running -> failed \(backend\) .*", shown), shown
        single = engine.jobs.get(1)
        assert single.comment == "kept" and single.do_auto_resubmit and single.backend.concurrency == 2
        # Written before resource requests and priorities: the defaults, and a handle of
        # nine fields that holds nothing.
        assert (single.priority, single.backend.cpus, single.backend.gpus, single.backend.memory) == (
            0, 1, 0, None)
        held = Handle.from_tuple(single.handle)
        assert held.pid and (held.cpus, held.memory_mb, held.gpu_ids) == (1, 0, ())
        assert [t.name for t in engine.templates] == ["a template"]
    finally:
        engine.close()


def test_a_raycluster_stored_with_num_cpus_loads_it_as_cpus(tmp_path):
    """RayCluster kept its CPUs as ``num_cpus`` before the request's fields: a record
    with that state, written through a real FileStorage, reads back as ``cpus``."""
    import transaction

    path = str(tmp_path / "jobs.fs")
    db = ZODB.DB(FileStorage(path))
    conn = db.open()
    old = RayCluster()
    old.__dict__.clear()
    old.__dict__.update({"num_cpus": 0.5, "resources": {"big": 1.0}, "max_retries": 1})  # as stored then
    conn.root()["old"] = old
    transaction.commit()
    conn.close()
    db.close()
    db = ZODB.DB(FileStorage(path, read_only=True))
    try:
        loaded = db.open().root()["old"]
        assert (loaded.cpus, loaded.num_cpus, dict(loaded.resources), loaded.max_retries) == (
            0.5, 0.5, {"big": 1.0}, 1)
        assert loaded.resource_request().ray_options()["num_cpus"] == 0.5
    finally:
        db.close()


def _old_root(tmp_path: Path) -> Config:
    root = tmp_path / "gl"
    (root / "repository").mkdir(parents=True)
    shutil.copy(OLD, root / "repository" / "jobs.fs")
    return Config.from_env(root=str(root))


def test_an_old_repository_gets_its_status_indexes_built_once_at_the_engines_start(tmp_path):
    config = _old_root(tmp_path)
    db = ZODB.DB(FileStorage(config.filestorage_path, read_only=True))
    written_before = JOBS_INDEX_KEY not in db.open().root()
    db.close()
    assert written_before  # the file predates the indexes
    engine = Engine(config)
    try:
        jobs = engine.jobs
        assert jobs.index is not None and jobs.index.complete
        assert set(jobs.index.entries()) == {(j.id, j.status.value) for j in jobs}
        split = jobs.get(0)
        assert split._subjob_index is not None and split._subjob_index.complete
        assert [j.id for j in jobs.select(status="failed")] == [0]
        assert [j.id for j in jobs.select(status=["completed", "killed"])] == [1, 2]
        assert split.subjobs.select(status="failed").ids() == [1]
        assert split.subjobs.select(status="completed").ids() == [0, 2]
    finally:
        engine.close()
    again = Engine(config)  # built once: the next start reads it
    try:
        assert ensure_indexes(again.main) == 0
    finally:
        again.close()


def test_an_index_found_wrong_is_rebuilt_at_the_next_start(tmp_path):
    config = _old_root(tmp_path)
    engine = Engine(config)
    try:
        split = engine.jobs.get(0)
        engine.write(lambda: split._subjob_index.move(0, "running"))  # wrong: it completed
        assert split.subjobs.select(status="running").ids() == []  # answered by a scan
        assert not split._subjob_index.complete and not engine.jobs.index.complete
    finally:
        engine.close()
    engine = Engine(config)
    try:
        split = engine.jobs.get(0)
        assert split._subjob_index.complete and engine.jobs.index.complete
        assert set(split._subjob_index.entries()) == {(s.id, s._status) for s in split.subjobs}
        assert split.subjobs.select(status="completed").ids() == [0, 2]
    finally:
        engine.close()
