"""The backend contract against the Local backend, as a named Ray actor; plus Local specifics."""

from __future__ import annotations

import itertools
import os
import signal
import time

import pytest

from ganga_like.backends import base
from ganga_like.backends.local.actor import start_local_actor
from ganga_like.backends.runtime import native, procs, trace
from ganga_like.backends.runtime import status_file as sf

from .contract import ActorPool, BackendContract, EventLog, RayClient, actor_factory

NAMESPACE = "ganga_like_tests"
_names = itertools.count()


def _make_actors(pool: ActorPool | None, **actor_options):
    """Yield ``make_actor(concurrency=N)``: a named LocalActor, new or idle in ``pool``
    (started with the same options); given back, or killed, after the test (always
    killed without a pool)."""
    import ray

    def start(concurrency: int = 2) -> RayClient:
        name = f"local-{os.getpid()}-{next(_names)}"
        client = RayClient(start_local_actor(name, 16, concurrency=concurrency, namespace=NAMESPACE,
                                             **actor_options))
        client.ping()
        assert ray.get_actor(name, namespace=NAMESPACE) is not None
        return client

    yield from actor_factory(start, pool, kind=tuple(sorted(actor_options.items())))


@pytest.fixture
def make_actor(ray_session, leftover_check, actor_pool):
    yield from _make_actors(actor_pool)


class TestLocalContract(BackendContract):
    """Runs every contract test against LocalActor."""


class TestLocalContractWithTheBashWrapper(BackendContract):
    """The same contract where no C compiler exists: wrapper.sh, started with Popen."""

    @pytest.fixture
    def make_actor(self, ray_session, leftover_check, actor_pool):
        yield from _make_actors(actor_pool, wrapper=native.SHELL_WRAPPER)

    def test_it_runs_the_bash_wrapper(self, make_actor):
        assert make_actor(concurrency=1).ping()["wrapper"] == native.SHELL_WRAPPER

    @pytest.mark.parametrize("count", [70])
    def test_many_small_subjobs_in_one_batch(self, make_actor, specs, count):
        """70, not 200: the queue, the chunks of a submit (64 specs each) and the events
        are the actor's, which TestLocalContract drives with 200; the wrapper is per
        subjob, and 70 still fill more than one chunk (each bash wrapper costs several
        times the native one: 200 took 8 s quiet, 26 s under load)."""
        super().test_many_small_subjobs_in_one_batch(make_actor, specs, count)


class TestLocalSpecifics:
    def test_wrapper_killed_before_recording_is_lost(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/sleep", "30"]])
        client.submit([spec])
        log = EventLog(client)
        log.until(lambda _: bool(log.of(spec.fqid, base.STARTED)))
        handle = log.of(spec.fqid, base.STARTED)[0].handle
        time.sleep(0.2)
        os.killpg(handle.pid, signal.SIGKILL)  # wrapper and payload, no chance to write
        log.until(log.all_final([spec.fqid]))
        (event,) = log.finals()[spec.fqid]
        assert event.kind == base.LOST
        assert "signal 9 before recording the exit status" in event.note
        assert sf.StatusFile(os.path.join(spec.workdir, "status")).current().state == sf.LOST_ERROR

    @pytest.mark.parametrize("wrapper", ["native", "bash"])
    @pytest.mark.parametrize("leftover", [
        "/bin/sleep 30 &",                      # in the payload's group
        "setsid /bin/sleep 30 &",               # a session of its own
        "(setsid env -i /bin/sleep 30 &)",      # no marker, no group, parent gone
    ])
    def test_what_the_payload_leaves_behind_is_ended(self, ray_session, leftover_check, actor_pool,
                                                   specs, wrapper, leftover):
        """The payload's main process ends: so does the job. What it left running is
        ended (TERM, grace, KILL) and counted in the note, then FINISHED is told."""
        if wrapper == "bash" and "env -i" in leftover:
            pytest.skip("bash cannot be a subreaper: a process that leaves the group and "
                        "clears its marker escapes the bash wrapper (documented)")
        options = {"wrapper": native.SHELL_WRAPPER} if wrapper == "bash" else {}
        for make_actor in _make_actors(actor_pool, **options):
            client = make_actor(concurrency=2)
            (spec,) = specs([["/bin/bash", "-c", f"{leftover}\nexit 0"]])
            started = time.monotonic()
            client.submit([spec])
            log = EventLog(client)
            log.until(log.all_final([spec.fqid]), timeout=15)
            (final,) = log.finals()[spec.fqid]
            assert final.kind == base.FINISHED and final.exit_code == 0, final
            assert time.monotonic() - started < 8, "it waited for the leftover to end by itself"
            assert "leftover" in final.note, final.note
            leftovers = [p.pid for p in _sleepers(spec.workdir)]
            assert leftovers == [], f"left running: {leftovers}"

    def test_a_dead_wrapper_is_lost_within_a_second_and_its_payload_ended(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/sleep", "30"]])
        client.submit([spec])
        log = EventLog(client)
        log.until(lambda _: bool(log.of(spec.fqid, base.STARTED)))
        handle = log.of(spec.fqid, base.STARTED)[0].handle
        # STARTED comes with the wrapper's spawn; its RUNNING line once the payload runs.
        deadline = time.monotonic() + 20
        while (last := trace.last(spec.workdir)) is None or last.state != sf.RUNNING:
            assert time.monotonic() < deadline, f"the payload never started: {last}"
            time.sleep(0.02)
        os.kill(handle.pid, signal.SIGKILL)  # the wrapper only: its payload runs on
        killed = time.monotonic()
        log.until(log.all_final([spec.fqid]), timeout=10)
        assert time.monotonic() - killed < 1.5
        (event,) = log.finals()[spec.fqid]
        assert event.kind == base.LOST and "signal 9" in event.note, event
        assert "1 leftover process(es) ended" in event.note, event.note
        assert client.held([handle]) == [False]

    def test_junk_in_the_status_file_does_not_change_the_outcome(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/bash", "-c", "printf 'partial line' >> ../status; "
                          "head -c 300 /dev/urandom >> ../status; exit 0"]])
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]), timeout=15)
        (final,) = log.finals()[spec.fqid]
        assert final.kind == base.FINISHED and final.exit_code == 0, final
        assert trace.last(spec.workdir).state == sf.RUN_DONE

    def test_a_fake_outcome_line_does_not_change_the_exit_status(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/bash", "-c",
                          "echo \"$(date -Iseconds) RUN_DONE exit=0\" >> ../status; exit 3"]])
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]), timeout=15)
        (final,) = log.finals()[spec.fqid]
        assert final.kind == base.FINISHED and final.exit_code == 3, final

    def test_payload_env_has_spec_env_and_path(self, make_actor, specs):
        client = make_actor(concurrency=2)
        (spec,) = specs([["/bin/bash", "-c", 'echo "$FOO|${PATH:+path}|${RAY_ADDRESS-none}"']],
                        env={"FOO": "bar baz"})
        client.submit([spec])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]))
        with open(os.path.join(spec.workdir, "output", "stdout")) as handle:
            assert handle.read().strip() == "bar baz|path|none"

    def test_payload_inherits_no_descriptor_of_the_actor(self, specs, leftover_check):
        # The actor starts wrappers with posix_spawn (no close_fds pass): the wrapper
        # must close what the actor left inheritable, or work that outlives the actor
        # would hold its sockets and files.
        from ganga_like.backends.local.actor import LocalActor

        actor = LocalActor(concurrency=1)
        read_end, write_end = os.pipe()
        os.set_inheritable(read_end, True)
        os.set_inheritable(write_end, True)
        try:
            (spec,) = specs([["/bin/ls", "/proc/self/fd"]])
            actor.submit([spec])
            deadline = time.monotonic() + 10
            finished = []
            while not finished and time.monotonic() < deadline:
                _, events = actor.events(0, 1.0)
                finished = [e for e in events if e.kind == base.FINISHED]
            assert finished and finished[0].exit_code == 0
            with open(os.path.join(spec.workdir, "output", "stdout")) as handle:
                fds = sorted(int(word) for word in handle.read().split())
            assert fds[:3] == [0, 1, 2]
            assert read_end not in fds[3:] and write_end not in fds[3:]
            assert len(fds) <= 4  # 0, 1, 2 and the directory ls itself reads
        finally:
            actor.close()
            os.close(read_end)
            os.close(write_end)

    def test_a_spec_the_kernel_cannot_take_is_a_submission_failure(self, specs, leftover_check):
        # Validation refuses NUL characters when they are set; an actor given one anyway
        # (a spec built by hand) must fail that subjob, not its own thread or a slot.
        from ganga_like.backends.local.actor import LocalActor

        actor = LocalActor(concurrency=1)
        try:
            bad, good = specs([["/bin/echo", "a\0b"], ["/bin/true"]])
            handles = actor.submit([bad, good])
            deadline = time.monotonic() + 10
            finals: dict[str, base.Event] = {}
            since = 0
            while len(finals) < 2 and time.monotonic() < deadline:
                since, events = actor.events(since, 1.0)
                finals.update({e.fqid: e for e in events if e.kind in (base.LOST, base.FINISHED)})
            assert finals[bad.fqid].kind == base.LOST and "null" in finals[bad.fqid].note
            assert finals[good.fqid].kind == base.FINISHED and finals[good.fqid].exit_code == 0
            assert len(handles) == 2 and actor.ping()["running"] == 0
        finally:
            actor.close()

    def test_start_time_is_psutils_create_time(self):
        import subprocess

        proc = subprocess.Popen(["/bin/sleep", "5"])
        try:
            assert procs.start_time(proc.pid) == pytest.approx(procs.create_time(proc.pid),
                                                               abs=procs.CT_TOLERANCE)
            assert procs.start_time(os.getpid()) == pytest.approx(procs.create_time(os.getpid()),
                                                                  abs=procs.CT_TOLERANCE)
        finally:
            proc.kill()
            proc.wait()
        assert procs.start_time(proc.pid) is None  # reaped: no such process

    def test_a_spawned_process_start_time_needs_no_read_and_equals_the_stat_file(self):
        # The Local actor brackets each spawn with CLOCK_BOOTTIME: within one clock tick
        # the start time is known without reading /proc (here: after the process is gone,
        # so nothing could be read), and it is the value /proc gave while it lived.
        bracketed = 0
        for _ in range(50):
            before = procs.boot_clock_ns()
            pid = os.posix_spawn("/bin/sleep", ["/bin/sleep", "5"], dict(os.environ))
            after = procs.boot_clock_ns()
            try:
                from_stat = procs.start_time(pid)
                # Readings a whole tick apart: read from /proc, the same value.
                assert procs.spawned_start_time(pid, before - procs.NS_PER_TICK, after) == from_stat
            finally:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            if before // procs.NS_PER_TICK == after // procs.NS_PER_TICK:
                bracketed += 1
                assert procs.spawned_start_time(pid, before, after) == from_stat
        assert bracketed  # the bracket held at least once (a spawn takes well under a tick)

    def test_find_by_marker_and_kill_tree(self, specs, marker_prefix):
        import subprocess

        env = dict(os.environ, GANGA_LIKE_MARKER=f"{marker_prefix}:direct")
        proc = subprocess.Popen(
            ["/bin/bash", "-c", "/bin/sleep 30 & /bin/sleep 30 & wait"], env=env, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 5
            while len(procs.find_by_marker(marker_prefix)) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            found = procs.find_by_marker(marker_prefix)
            assert len(found) == 3
            created = procs.create_time(proc.pid)
            assert procs.is_alive(proc.pid, created)
            assert not procs.is_alive(proc.pid, created + 5)  # another process's identity
            outcome = procs.kill_tree(proc.pid, created, grace=1.0, marker=f"{marker_prefix}:direct")
            assert outcome.confirmed and outcome.killed == 3
            proc.wait(timeout=5)
            assert procs.find_by_marker(marker_prefix) == []
            assert not procs.is_alive(proc.pid, created)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _sleepers(workdir: str) -> list:
    """Processes still running `sleep 30` started from this subjob's output directory."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if proc.info["cmdline"][-2:] == ["/bin/sleep", "30"] and \
                    (proc.info["cwd"] or "").startswith(workdir) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, TypeError):
            continue
    return found
