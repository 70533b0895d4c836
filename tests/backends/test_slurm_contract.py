"""The backend contract against SlurmActor on the session's real one-node Slurm; plus
what only Slurm does (arrays, its states, its commands per round, kill by scancel).

The contract's ``concurrency`` becomes the array's task limit (``--array=...%N``):
Slurm itself runs at most that many tasks of it at once.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import time

import pytest

from ganga_like.backends import base
from ganga_like.backends.base import Handle
from ganga_like.backends.runtime import status_file as sf
from ganga_like.backends.slurm.actor import start_slurm_actor

from .contract import BackendContract, EventLog, RayClient, actor_factory, read

pytestmark = pytest.mark.slurm
NAMESPACE = "ganga_like_tests"
_names = itertools.count()


@pytest.fixture
def make_actor(ray_session, slurm, leftover_check):
    """``make_actor(concurrency=N)``: a fresh named SlurmActor on the test Slurm."""

    def start(concurrency: int = 2) -> RayClient:
        name = f"slurm-{os.getpid()}-{next(_names)}"
        return RayClient(start_slurm_actor(name, 16, conf=slurm.conf, max_running=concurrency,
                                           namespace=NAMESPACE))

    yield from actor_factory(start)


class TestSlurmContract(BackendContract):
    """Runs every contract test against SlurmActor (none skipped; two sized for Slurm)."""

    # Slurm's events come from a poll: 0.3 s tasks are seen one by one. A second is
    # long enough for two to run side by side, and for a third beside them to show.
    OVERLAP_SECONDS = "1"
    # The limit is ours to keep; overlap is Slurm's to give: under load its scheduling
    # passes can start one array task at a time (seen in a full suite, even with 2 s tasks).
    PEAKS = (1, 2)

    @pytest.mark.parametrize("count", [33])
    def test_many_small_subjobs_in_one_batch(self, make_actor, specs, count):
        """33, not 200: with an array limit of 2, Slurm starts the next tasks of the array
        when the last ones are over, one scheduling pass per pair (≈0.2 s with the test
        Slurm's Epilog, more under load), so 200 would take half a minute or more. What
        the size proves on Slurm is crossing arrays: past MaxArraySize (16 here) a batch
        is several arrays, each waiting for the one before; 33 is three (16, 16 and 1),
        so a subjob goes through the chain twice. More tasks add only more of the same.
        The benchmark runs 1,000."""
        super().test_many_small_subjobs_in_one_batch(make_actor, specs, count)


class TestSlurmSpecifics:
    def test_slurm_commands_per_round_do_not_grow_with_the_subjobs(self, make_actor, specs):
        """17 subjobs of a second, 8 at once: two arrays (MaxArraySize 16), several
        rounds with many tasks watched. A command per subjob would be 8 or more a round,
        one per array 2; more subjobs only repeat the rounds."""
        client = make_actor(concurrency=8)
        batch = specs([["/bin/sleep", "1"]] * 17)
        before = client.ping()
        handles = client.submit(batch)
        log = EventLog(client)
        log.until(log.all_final([s.fqid for s in batch]), timeout=90)
        after = client.ping()
        rounds = after["rounds"] - before["rounds"]
        watching = after["monitor_commands"] - before["monitor_commands"]
        other = after["commands"] - before["commands"] - watching
        arrays = len({h.task_id.split("_")[0] for h in handles})
        assert rounds >= 3 and arrays == 2, after  # 17 subjobs, MaxArraySize 16: two arrays
        # One squeue per round (and a sacct only for tasks squeue forgot: none here), never
        # a command per subjob or per array; besides, one sbatch per array and Slurm's
        # limits asked once (scontrol show config).
        assert watching == rounds and other <= arrays + 1, (watching, rounds, other)
        assert after["commands_last_round"] == 1
        assert all(e.kind == base.FINISHED and e.exit_code == 0 for f in log.finals().values() for e in f)

    def test_waiting_and_running_tasks_are_adopted_by_their_slurm_ids(self, make_actor, specs):
        first = make_actor(concurrency=1)
        batch = specs([["/bin/sleep", "30"]] * 3)
        handles = first.submit(batch)
        assert len({h.task_id.split("_")[0] for h in handles}) == 1  # one array
        log = EventLog(first)
        log.until(lambda _: bool(log.of(batch[0].fqid, base.STARTED)), timeout=30)
        stored = [log.of(batch[0].fqid, base.STARTED)[0].handle, *handles[1:]]
        first.stop()

        second = make_actor(concurrency=1)
        adopted = second.adopt([Handle.from_tuple(h.to_tuple()) for h in stored])
        assert [e.kind for e in adopted] == [base.STARTED, base.QUEUED, base.QUEUED], adopted
        assert adopted[1].detail == "Slurm PENDING (JobArrayTaskLimit)"
        assert second.held(stored) == [True, True, True]
        results = second.kill(stored, 2.0)
        assert all(r.confirmed for r in results), results
        assert second.held(stored) == [False, False, False]

    def test_tasks_cancelled_while_no_actor_watched_are_adopted_as_killed(self, make_actor, specs, slurm):
        """The service died in the middle of a kill, after scancel: the next actor reads
        the kill in Slurm (CANCELLED), for the task that ran and the one that waited."""
        first = make_actor(concurrency=1)
        batch = specs([["/bin/sleep", "30"]] * 2)
        handles = first.submit(batch)
        log = EventLog(first)
        log.until(lambda _: bool(log.of(batch[0].fqid, base.STARTED)), timeout=30)
        stored = [log.of(batch[0].fqid, base.STARTED)[0].handle, handles[1]]
        first.stop()
        slurm.run("scancel", *(h.task_id for h in stored))
        deadline = time.monotonic() + 20
        ids = ",".join(h.task_id for h in stored)
        while slurm.run("squeue", "-h", "-r", "-t", "PD,R,CG", "-j", ids, "-o", "%i").stdout.strip() \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        second = make_actor(concurrency=1)
        adopted = second.adopt(stored)
        assert [e.kind for e in adopted] == [base.KILLED, base.KILLED], adopted
        assert all("CANCELLED" in e.note for e in adopted)
        assert second.held(stored) == [False, False]

    def test_a_task_slurm_no_longer_knows_is_failed_with_the_reason(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/true"]])
        status = sf.StatusFile(os.path.join(spec.workdir, "status"))
        status.set(sf.RUNNING, f"pid=999999 wrapper=999999 marker={spec.marker}")
        handle = Handle("Slurm", spec.fqid, task_id="999999_0", workdir=spec.workdir)
        (event,) = client.adopt([handle])
        assert event.kind == base.LOST, event
        assert "no longer known to Slurm" in event.note and "last status RUNNING" in event.note
        assert client.held([handle]) == [False]
        assert status.current().state == sf.LOST_ERROR

    def test_an_array_slurm_refuses_fails_its_subjobs_with_sbatchs_line(self, make_actor, specs):
        client = make_actor(concurrency=2)
        batch = [dataclasses.replace(s, options={"partition": "nope"}) for s in specs([["/bin/true"]] * 2)]
        handles = client.submit(batch)
        assert all("invalid partition" in h.error.lower() or "Invalid partition" in h.error
                   for h in handles), handles
        assert "\n" not in handles[0].error and client.ping()["pending"] == 0

    def test_a_subjob_id_past_slurms_max_array_size_runs_as_a_task_of_its_blocks_array(self, make_actor,
                                                                                       specs, slurm):
        """MaxArraySize is 16 on the test Slurm: subjob 1500 is task 1500 % 16 = 12 of an
        array whose name carries the offset 1488, and Slurm writes its output into the
        subjob's own directory (through the offset's links)."""
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/sh", "-c", 'echo "task $SLURM_ARRAY_TASK_ID"']])
        workdir = os.path.join(os.path.dirname(spec.workdir), "1500")
        os.makedirs(workdir)
        big = dataclasses.replace(spec, subjob_id=1500, fqid="7.1500", workdir=workdir,
                                  marker=spec.marker.rsplit(":", 1)[0] + ":7.1500")
        (handle,) = client.submit([big])
        assert not handle.error and handle.task_id.endswith("_12"), handle
        log = EventLog(client)
        log.until(log.all_final([big.fqid]), timeout=60)
        (final,) = log.finals()[big.fqid]
        assert (final.kind, final.exit_code) == (base.FINISHED, 0), final
        name = slurm.run("squeue", "-h", "-r", "-t", "all", "-j", handle.task_id, "-o", "%j").stdout.strip()
        assert name == big.marker.rsplit(".", 1)[0] + ".*+1488"
        assert os.path.exists(os.path.join(workdir, "slurm.out"))
        assert read(os.path.join(workdir, "output", "stdout")).strip() == "task 12"

    def test_a_slurm_that_does_not_answer_confirms_no_kill_and_releases_nothing(self, ray_session, slurm,
                                                                                  specs, tmp_path):
        """Slurm unreachable (here: its slurm.conf is gone): a kill is not confirmed, with
        Slurm's reason; held() answers held for what was handed to it; the actor lives on."""
        broken = tmp_path / "slurm.conf"
        # Nothing listens on port 1; MessageTimeout=1: its commands fail at once, not after 9 s.
        broken.write_text(re.sub(r"SlurmctldPort=\d+", "SlurmctldPort=1", open(slurm.conf).read())
                          + "MessageTimeout=1\n")
        name = f"slurm-broken-{os.getpid()}-{next(_names)}"
        client = RayClient(start_slurm_actor(name, 16, conf=str(broken), namespace=NAMESPACE))
        try:
            (spec,) = specs([["/bin/true"]])
            handle = Handle("Slurm", spec.fqid, task_id="12345_0", workdir=spec.workdir)
            (result,) = client.kill([handle], 0.5)
            assert not result.confirmed and "squeue failed" in result.note, result
            assert "\n" not in result.note
            assert client.held([handle]) == [True]
            assert client.ping()["backend"] == "Slurm"
        finally:
            client.stop()
