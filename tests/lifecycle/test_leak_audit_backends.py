"""The leak audit asks the backend that made each handle, not Local for all.

A RayCluster subjob that asks for a resource no node has stays *pending* in Ray: no
process exists anywhere, so only the RayCluster actor knows it still holds (and could
start at any moment, should such a node join). Local's actor, which the audit used to
ask for every handle, sees nothing there: it called such leaks gone.
"""

from __future__ import annotations

import time

import pytest
import transaction
from ZODB import DB
from ZODB.FileStorage import FileStorage

from ganga_like.backends import base
from ganga_like.backends.hosts.config import Hosts
from ganga_like.backends.local.config import Local
from ganga_like.backends.raycluster.config import RayCluster
from ganga_like.engine.audit import ledger_backend
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.lifecycle import set_status
from ganga_like.repository.ledger import LeakRecord
from ganga_like.status import Status

from .helpers import sh_job, wait_for

BOTH_GPUS = 2  # the test Ray's logical GPUs: a task asking for both waits while another holds them


@pytest.fixture
def gpus_taken(session):
    """A RayCluster job holding both of the test Ray's GPUs while the test runs: a task
    asking for them stays pending in Ray (one asking for more than exists is refused)."""
    holder = Job(application=Executable(exe="/bin/sleep", args=["60"]), backend=RayCluster(gpus=BOTH_GPUS))
    session.submit(holder)
    wait_for(lambda: session.refresh() or holder.status is Status.RUNNING, timeout=30)
    yield holder
    session.kill(holder)


def _pending_raycluster_job(session, mode: str = "relaxed") -> Job:
    job = Job(application=Executable(exe="/bin/sh", args=["-c", "echo ran"]),
              backend=RayCluster(gpus=BOTH_GPUS), mode=mode)
    session.submit(job)

    def pending() -> bool:
        session.refresh()
        return job.status is Status.SUBMITTED and bool(job.handle) and job.backend_detail == "Resources"

    wait_for(pending, timeout=30)
    return job


def _raycluster_holds(session, handle: tuple) -> bool:
    import ray

    actor = session.backends.actor(RayCluster())
    return ray.get(actor.held.remote([base.Handle.from_tuple(handle)]))[0]


def _entries(session, fqid: str) -> list[LeakRecord]:
    session.refresh()
    return [e for e in session.main.root.leaks.values() if e.fqid == fqid]


def test_a_raycluster_ledger_entry_is_audited_and_reaped_by_raycluster(session, gpus_taken):
    job = _pending_raycluster_job(session)
    fqid, handle = job.fqid, job.handle
    session.remove(job, force=True)  # relaxed + force: no kill; the ledger remembers
    [entry] = _entries(session, fqid)
    assert entry.backend_config == RayCluster(gpus=BOTH_GPUS)
    assert entry.backend_config.actor_key() == ("RayCluster",)
    assert _raycluster_holds(session, handle)  # still pending in Ray: a real leak

    found = session.leaks()
    assert [(f["fqid"], f["source"], f["backend"]) for f in found] == [(fqid, "ledger", "RayCluster")]
    assert not _entries(session, fqid)[0].resolved  # Local would have called it gone

    reaped = session.leaks(reap=True)
    assert [(f["fqid"], f["reaped"]) for f in reaped] == [(fqid, True)]
    assert not _raycluster_holds(session, handle)  # cancelled by the backend that held it
    assert _entries(session, fqid)[0].resolved.startswith("reaped")
    assert session.leaks() == []


def test_a_record_without_its_backend_config_is_asked_of_the_backend_its_handle_names(session, gpus_taken):
    """A ledger record written before the config was kept (``backend_config`` absent in
    its pickle) goes to the backend its handle names, with default settings."""
    job = _pending_raycluster_job(session)
    fqid, handle = job.fqid, job.handle

    def old_record() -> None:
        entry = LeakRecord(fqid, "RayCluster", handle, "written by an older version")
        del entry.__dict__["backend_config"]  # as unpickling an old record leaves it
        root = session.main.root
        root.leaks[root.ids.take("leak")] = entry

    session.write(old_record)
    try:
        [entry] = _entries(session, fqid)
        assert entry.backend_config is None and ledger_backend(entry) == RayCluster()
        found = session.leaks()
        assert [(f["fqid"], f["source"], f["backend"]) for f in found] == [(fqid, "ledger", "RayCluster")]
    finally:
        session.kill(job)
    assert session.leaks() == []  # killed: the backend no longer holds it; the entry is resolved
    assert _entries(session, fqid)[0].resolved.startswith("gone")


def test_work_only_raycluster_can_see_is_found_by_the_audit(session, gpus_taken):
    """The database says a subjob failed while RayCluster still has its task pending:
    the audit asks every backend with work for what carries the marker, not only Local
    (which looks at processes on this machine, and there is none)."""
    job = _pending_raycluster_job(session, mode="strict")
    handle = job.handle

    def lost_track() -> None:
        set_status(job, Status.FAILED, "the database was told it failed", source="backend")

    session.write(lost_track)
    try:
        found = session.leaks()
        assert [(f["fqid"], f["source"], f["backend"]) for f in found] == [
            (job.fqid, "process", "RayCluster")]
        assert "its job is failed" in found[0]["reason"]
        reaped = session.leaks(reap=True)
        assert reaped and reaped[0]["reaped"]
        assert not _raycluster_holds(session, handle)
    finally:
        import ray

        ray.get(session.backends.actor(RayCluster()).kill.remote([base.Handle.from_tuple(handle)], 1.0))
    assert session.leaks() == []


def test_ledger_records_keep_their_backend_config_across_a_reopen(tmp_path):
    """Real FileStorage: a new record keeps a copy of the job's backend config; an old one
    (no ``backend_config`` in its pickle) loads, and resolves to what its handle names."""
    from ganga_like.repository.ledger import Ledger
    from ganga_like.repository.root import RepositoryRoot

    path = str(tmp_path / "jobs.fs")
    db = DB(FileStorage(path))
    conn = db.open()
    root = conn.root()["ganga_like"] = RepositoryRoot()

    class Holder:  # what Ledger.record is given: a connection whose .root is the repository root
        pass

    holder = Holder()
    holder.root = root
    top = Job(application=Executable(exe="/bin/true"), backend=Hosts(label="gpu", synch_count=2))
    top.handle = ("Hosts", "7", "node1", 123, 1.5, "", "/w/7", "", 1)
    Ledger(holder).record(top, "test")
    old = LeakRecord("8", "Local", ("RayCluster", "8", "", 0, 0.0, "abc", "/w/8", "", 1), "old")
    del old.__dict__["backend_config"]
    root.leaks[root.ids.take("leak")] = old
    nameless = LeakRecord("9", "Local", ("?", "9", "", 0, 0.0, "", "", "never started", 1), "old")
    del nameless.__dict__["backend_config"]
    root.leaks[root.ids.take("leak")] = nameless
    transaction.commit()
    conn.close()
    db.close()

    db = DB(FileStorage(path))
    try:
        records = list(db.open().root()["ganga_like"].leaks.values())
        assert [ledger_backend(r) for r in records] == [
            Hosts(label="gpu", synch_count=2), RayCluster(), Local()]
        assert records[0].backend_config._p_oid is not None  # stored with the record
        assert records[0].backend_name() == "Hosts"
        assert records[1].backend_name() == "RayCluster"
    finally:
        transaction.abort()
        db.close()


def test_a_local_forced_removal_still_goes_to_local(session):
    job = sh_job(["sleep 60"], mode="relaxed")
    session.submit(job)
    wait_for(lambda: session.refresh() or job.subjob_counts.get("running", 0) == 1)
    fqid = job.subjobs[0].fqid
    session.remove(job, force=True)
    [entry] = _entries(session, fqid)
    assert entry.backend_config == Local() and entry.backend_name() == "Local"
    found = session.leaks(reap=True)
    assert [(f["fqid"], f["backend"], f["reaped"]) for f in found] == [(fqid, "Local", True)]
    deadline = time.monotonic() + 10
    while session.leaks() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session.leaks() == []
