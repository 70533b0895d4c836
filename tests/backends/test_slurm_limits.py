"""Slurm's own limits, reached on the session's real Slurm: a master past MaxArraySize
(16 on the test Slurm) goes as several arrays, killed, resubmitted and removed across
them; a subjob over its time limit ends as Slurm's TIMEOUT; one over its memory is
ended by Slurm (a Slurm of the test's own that limits memory): without cgroups as FAILED
with slurmstepd's words, with memory cgroups as OUT_OF_MEMORY.

Slurm ends a job over its time limit at its next check (every 30 s) after the first
whole minute: 60-90 s. That job is submitted when the session's Slurm is first used
(``slurm_over_time`` in tests/backends/conftest.py), and the other Slurm tests run
meanwhile; the test here only checks how it ended, last.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import pytest

from ganga_like.backends.slurm.config import Slurm
from ganga_like.model.application import Executable
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter
from ganga_like.status import Status
from tests.lifecycle.helpers import wait_for

pytestmark = pytest.mark.slurm

MEMORY_HOG = "import time; held = b'x' * (300 << 20); time.sleep(60)"  # 300 MB, touched


def _active(slurm, engine, job: Job) -> list[str]:
    """The job's tasks Slurm runs or holds (its arrays are named ``<repository>:<id>.*...``)."""
    out = slurm.run("squeue", "-h", "-r", "-t", "PD,R,CG,CF", "-o", "%i|%j").stdout
    return sorted(line.split("|")[0] for line in out.splitlines()
                  if f"|{engine.repo_uuid}:{job.id}." in line)


def _names(slurm, task_ids: list[str]) -> set[str]:
    out = slurm.run("squeue", "-h", "-r", "-t", "all", "-j", ",".join(task_ids), "-o", "%j").stdout
    return set(out.split())


def test_a_master_past_max_array_size_is_several_arrays_killed_resubmitted_and_removed_across_them(
        engine, slurm):
    job = Job(application=Executable(exe="/bin/sh"), backend=Slurm(conf=slurm.conf, max_running=4),
              splitter=ArgSplitter(args=[["-c", "sleep 60"]] * 20))
    job.mode = "relaxed"  # for remove(force=True) at the end: removed without a kill
    engine.submit(job)
    prefix = f"{engine.repo_uuid}:{job.id}"

    def four_run_the_rest_wait() -> bool:
        engine.refresh()
        return (job.subjob_counts.get("running") == 4
                and job.subjobs[17].backend_detail == "Slurm PENDING (Dependency)")

    wait_for(four_run_the_rest_wait, 60, 0.2)
    ids = [sj.backend.id for sj in job.subjobs if sj.handle]
    assert len(ids) == 20 and len({i.split("_")[0] for i in ids}) == 2, ids  # two arrays
    assert job.subjobs[17].backend.id.endswith("_1")  # task 17 % 16 of the second
    assert _names(slurm, ids) == {f"{prefix}.*", f"{prefix}.*+16"}
    # The second array waits for the first (max_running holds for the whole master).
    assert "waiting for a job it depends on" in str(job.why())

    engine.kill(job)
    assert job.subjob_counts == {"killed": 20} and _active(slurm, engine, job) == []

    for index in (2, 17):  # one subjob of each block
        engine.resubmit(job.subjobs[index], include_killed=True)
    wait_for(lambda: engine.refresh() or job.subjob_counts.get("running") == 2, 60, 0.2)
    again = [job.subjobs[i].backend.id for i in (2, 17)]
    assert again[0].endswith("_2") and again[1].endswith("_1"), again  # one task each, by block
    assert _active(slurm, engine, job) == sorted(again)
    assert _names(slurm, again) == {f"{prefix}.*", f"{prefix}.*+16"}

    engine.remove(job, force=True)  # the ledger keeps both Slurm ids
    leaks = engine.leaks()
    assert sorted((f["fqid"], f["handle"][5]) for f in leaks) == sorted(
        (f"{job.id}.{i}", job_id) for i, job_id in zip((2, 17), again, strict=True)), leaks
    assert all(f["reaped"] for f in engine.leaks(reap=True))
    assert _active(slurm, engine, job) == [] and engine.leaks() == []


@contextlib.contextmanager
def slurm_limiting_memory(how: str) -> Iterator:
    """A Slurm of the test's own that limits memory ``how`` (tests/slurm_cluster.py)."""
    from tests import slurm_cluster

    try:
        cluster = slurm_cluster.start(memory=how)
    except slurm_cluster.SlurmUnavailable as error:
        pytest.fail(f"this test needs a Slurm limiting memory ({how}), which cannot start here: {error}")
    try:
        yield cluster
    finally:
        slurm_cluster.stop(cluster)


def test_without_cgroups_a_subjob_over_its_memory_is_ended_and_failed_with_slurms_words(engine):
    """Without cgroups Slurm cannot say OUT_OF_MEMORY (only task/cgroup's OOM count makes
    that state): jobacct_gather's OverMemoryKill ends the step, and Slurm records FAILED
    (reason JobLaunchFailure), its own words in the task's slurm.out."""
    with slurm_limiting_memory("watched") as cluster:
        job = Job(application=Executable(exe=sys.executable, args=["-c", MEMORY_HOG]),
                  backend=Slurm(conf=cluster.conf, memory=50),
                  splitter=ArgSplitter(args=[["-c", MEMORY_HOG], ["-c", "pass"]]))
        engine.submit(job)
        assert engine.wait([job], timeout=60) == [Status.FAILED]
        hog, small = job.subjobs
        assert small.status is Status.COMPLETED
        assert hog.status is Status.FAILED
        assert hog.backend_detail.startswith("Slurm FAILED"), hog.backend_detail
        said = str(hog.why())
        assert "exceeded memory limit" in said and f"Slurm job {hog.backend.id} FAILED" in said, said
        assert _active(cluster, engine, job) == []


def test_with_memory_cgroups_slurm_says_out_of_memory(engine):
    """A Slurm that limits memory by cgroups (task/cgroup, ConstrainRAMSpace): the kernel
    ends the payload, Slurm records OUT_OF_MEMORY, and the subjob fails with that state
    as its detail and Slurm's words in its note."""
    with slurm_limiting_memory("cgroups") as cluster:
        job = Job(application=Executable(exe=sys.executable, args=["-c", MEMORY_HOG]),
                  backend=Slurm(conf=cluster.conf, memory=50))
        engine.submit(job)
        assert engine.wait([job], timeout=60) == [Status.FAILED]
        assert job.backend_detail == "Slurm OUT_OF_MEMORY (OutOfMemory)", job.backend_detail
        said = str(job.why())
        assert "used more memory than it asked for" in said and "oom-kill event" in said, said
        assert job.exit_code == 137  # the kernel's KILL, which the wrapper recorded


def test_a_subjob_over_its_time_limit_is_failed_as_slurms_timeout(slurm_over_time):
    engine, over_time = slurm_over_time
    assert engine.wait([over_time], timeout=150) == [Status.FAILED], over_time.status
    assert over_time.backend_detail.startswith("Slurm TIMEOUT"), over_time.backend_detail
    said = str(over_time.why())
    assert "TIMEOUT: reached its time limit" in said and "DUE TO TIME LIMIT" in said, said
    assert over_time.exit_code == 143  # the wrapper saw Slurm's TERM and recorded it
