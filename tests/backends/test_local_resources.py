"""Local's resource requests on a real LocalActor (a named Ray actor, real processes):
GPU ids from ``gpu_ids`` in ``CUDA_VISIBLE_DEVICES``, never held by two running
subjobs, back on every end, kill and lost wrapper, held again after adoption; CPU
slots and memory; the reason a subjob waits. Declared ids only: no GPU is needed."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import time

import pytest

from ganga_like.backends import base
from ganga_like.backends.base import Handle
from ganga_like.backends.resources import Request
from ganga_like.backends.runtime.procs import machine_memory_mb

from .contract import EventLog, read
from .test_local_contract import _make_actors

SHOW_GPUS = 'echo "[$CUDA_VISIBLE_DEVICES]"'


@pytest.fixture
def make_actor(ray_session, leftover_check, actor_pool):
    yield from _make_actors(actor_pool, gpu_ids=(0, 1))


def _asking(specs, request: Request, *scripts: str):
    return [dataclasses.replace(s, request=request) for s in specs([["/bin/sh", "-c", c] for c in scripts])]


def _shown(spec, timeout: float = 10.0) -> str:
    """The first line the payload wrote; a payload still running may not have written it
    yet when its STARTED event arrives (STARTED means its wrapper runs), so it is
    waited for."""
    path = os.path.join(spec.workdir, "output", "stdout")
    deadline = time.monotonic() + timeout
    while True:
        lines = read(path).splitlines() if os.path.exists(path) else []
        if lines or time.monotonic() > deadline:
            assert lines, f"{spec.fqid} wrote nothing to {path} in {timeout} s"
            return lines[0]
        time.sleep(0.02)


def _started(log: EventLog, spec) -> Handle:
    log.until(lambda _: bool(log.of(spec.fqid, base.STARTED)))
    return log.of(spec.fqid, base.STARTED)[0].handle


def test_each_running_subjob_gets_its_own_gpus_lowest_free_first(make_actor, specs):
    client = make_actor(concurrency=4)
    one, two, three = _asking(specs, Request(gpus=1), *[f"{SHOW_GPUS}; sleep 1"] * 3)
    client.submit([one, two, three])
    log = EventLog(client)
    log.until(lambda _: bool(log.of(three.fqid, base.QUEUED)))
    (waiting,) = log.of(three.fqid, base.QUEUED)
    assert (waiting.detail, waiting.note) == ("Resources", "needs 1 GPU, 0 of 2 free")
    log.until(log.all_final([one.fqid, two.fqid, three.fqid]))
    assert sorted([_shown(one), _shown(two)]) == ["[0]", "[1]"]
    third = _started(log, three)
    assert _shown(three) in ("[0]", "[1]") and third.gpu_ids == (int(_shown(three)[1]),)
    first_end = min(log.finals()[s.fqid][0].seq for s in (one, two))
    assert log.of(three.fqid, base.STARTED)[0].seq > first_end  # only once an id came back


def test_gpus_come_back_on_a_kill_and_on_a_lost_wrapper(make_actor, specs):
    client = make_actor(concurrency=4)
    killed, lost, after_kill, after_loss = _asking(
        specs, Request(gpus=1), "sleep 30", "sleep 30", f"{SHOW_GPUS}; exec sleep 30", SHOW_GPUS)
    client.submit([killed, lost])
    log = EventLog(client)
    held = {spec.fqid: _started(log, spec) for spec in (killed, lost)}
    assert sorted(h.gpu_ids for h in held.values()) == [(0,), (1,)]
    client.submit([after_kill, after_loss])
    (result,) = client.kill([held[killed.fqid]], 1.0)
    assert result.confirmed
    holder = _started(log, after_kill)  # it keeps the freed id
    assert holder.gpu_ids == held[killed.fqid].gpu_ids
    os.killpg(held[lost.fqid].pid, signal.SIGKILL)  # the wrapper dies without a word
    log.until(log.all_final([lost.fqid, after_loss.fqid]))
    assert log.finals()[lost.fqid][0].kind == base.LOST
    assert _shown(after_loss) == f"[{held[lost.fqid].gpu_ids[0]}]"
    shown = _shown(after_kill)  # before the kill: the line is written while it runs
    assert client.kill([holder], 1.0)[0].confirmed
    assert shown == f"[{held[killed.fqid].gpu_ids[0]}]"
    assert client.ping()["gpus_free"] == 2


def test_a_restarted_actor_holds_the_adopted_subjobs_gpus_again(make_actor, specs):
    first = make_actor(concurrency=4)
    (running,) = _asking(specs, Request(gpus=1), "sleep 30")
    first.submit([running])
    handle = Handle.from_tuple(_started(EventLog(first), running).to_tuple())  # as stored
    assert handle.gpu_ids == (0,)
    first.stop()
    second = make_actor(concurrency=4)
    (adopted,) = second.adopt([handle])
    assert adopted.kind == base.STARTED and second.ping()["gpus_free"] == 1
    wide, narrow = specs([["/bin/sh", "-c", SHOW_GPUS]] * 2)
    second.submit([dataclasses.replace(wide, request=Request(gpus=2))])
    log = EventLog(second)
    log.until(lambda _: bool(log.of(wide.fqid, base.QUEUED)))
    assert log.of(wide.fqid, base.QUEUED)[0].note == "needs 2 GPUs, 1 of 2 free"
    (result,) = second.kill([handle], 1.0)
    assert result.confirmed
    log.until(log.all_final([wide.fqid]))
    assert _shown(wide) == "[0,1]"
    second.submit([narrow])
    log.until(log.all_final([narrow.fqid]))
    assert _shown(narrow) == "[]"


def test_adopted_before_its_start_was_recorded_it_holds_what_its_environment_says(make_actor, specs):
    """The service died between the start and the monitor storing the STARTED handle:
    recovery adopts it from a handle without pid; its wrapper's environment tells what
    it holds, so its GPU is not given to another subjob."""
    first = make_actor(concurrency=4)
    (running,) = _asking(specs, Request(cpus=2, gpus=1, memory_mb=100), "sleep 30")
    first.submit([running])
    started = _started(EventLog(first), running)
    first.stop()
    second = make_actor(concurrency=4)
    unstarted = Handle("Local", running.fqid, workdir=running.workdir)  # as stored at submit
    (adopted,) = second.adopt([unstarted])
    assert adopted.kind == base.STARTED and adopted.handle.pid == started.pid
    assert (adopted.handle.cpus, adopted.handle.memory_mb, adopted.handle.gpu_ids) == (2, 100, (0,))
    ping = second.ping()
    assert (ping["gpus_free"], ping["memory_reserved_mb"], ping["running"]) == (1, 100, 1)
    assert second.kill([adopted.handle], 1.0)[0].confirmed
    assert second.ping()["gpus_free"] == 2


def test_a_two_cpu_subjob_takes_two_slots(make_actor, specs):
    client = make_actor(concurrency=2)
    (wide,) = _asking(specs, Request(cpus=2), "sleep 1")
    (narrow,) = specs([["/bin/true"]])
    client.submit([wide])
    client.submit([narrow])
    log = EventLog(client)
    log.until(log.all_final([wide.fqid, narrow.fqid]))
    (waiting,) = log.of(narrow.fqid, base.QUEUED)
    assert (waiting.detail, waiting.note) == ("ConcurrencyLimit", "Local's concurrency limit 2 reached")
    assert log.of(narrow.fqid, base.STARTED)[0].seq > log.finals()[wide.fqid][0].seq


def test_memory_is_reserved_from_the_machines_total_while_a_subjob_runs(make_actor, specs):
    client = make_actor(concurrency=4)
    share = machine_memory_mb() * 3 // 5
    first, second = _asking(specs, Request(memory_mb=share), "sleep 1", "true")
    client.submit([first, second])
    log = EventLog(client)
    log.until(log.all_final([first.fqid, second.fqid]))
    (waiting,) = log.of(second.fqid, base.QUEUED)
    assert waiting.detail == "Resources" and waiting.note.startswith(f"needs {share} MB, ")
    assert log.of(second.fqid, base.STARTED)[0].seq > log.finals()[first.fqid][0].seq


CUDA_COUNT = ("import ctypes; cuda = ctypes.CDLL('libcuda.so.1'); count = ctypes.c_int(); "
              "assert cuda.cuInit(0) == 0; assert cuda.cuDeviceGetCount(ctypes.byref(count)) == 0; "
              "print(count.value)")


@pytest.mark.skipif(shutil.which("nvidia-smi") is None or subprocess.run(
    ["nvidia-smi", "-L"], capture_output=True).returncode != 0,
    reason="no GPU here: nvidia-smi is missing or lists none")
def test_a_real_cuda_query_sees_only_the_subjobs_own_gpu(ray_session, leftover_check, specs):
    """The CUDA driver itself, asked in the payload, counts the one GPU it was given."""
    from ganga_like.backends.local.config import detected_gpu_ids

    gpu = detected_gpu_ids()[0]
    client = next(_make_actors(None, gpu_ids=(gpu,)))(concurrency=1)
    try:
        (spec,) = specs([["python3", "-c", CUDA_COUNT]])
        client.submit([dataclasses.replace(spec, request=Request(gpus=1))])
        log = EventLog(client)
        log.until(log.all_final([spec.fqid]), timeout=60)
        assert log.finals()[spec.fqid][0].exit_code == 0, read(os.path.join(spec.workdir, "output", "stderr"))
        assert _shown(spec) == "1"
    finally:
        client.stop()
