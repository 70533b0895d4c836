"""A GPU held by a running subjob stays its own across a SIGKILL of the service: the
next service adopts the subjob with its stored ids and the subjob waiting for that GPU
starts only once it is free again (real service, real client processes, declared ids).

The holder runs until the test releases it (a flag file), so the new service's recovery
is watched while the GPU is still held, whatever the machine's pace."""

from __future__ import annotations

import os
import signal

import psutil

from tests.service.test_service import client, nothing_runs_for, service_pid, wait_for


def held_until(flag: str) -> str:
    return (f'echo "[$CUDA_VISIBLE_DEVICES] $(date +%s.%N)"; '
            f'while [ ! -e {flag} ]; do sleep 0.1; done; echo "$(date +%s.%N)"')


def test_a_service_killed_while_a_subjob_holds_the_gpu_does_not_give_it_twice(root):
    flag = str(root.parent / "release-the-gpu")
    PAYLOAD = held_until(flag)  # noqa: N806  (the one payload both subjobs run)
    submitted = client(root, f"""
        import time
        j = Job(application=Executable(exe='/bin/sh', args=['-c', {PAYLOAD!r}]),
                backend=Local(gpu_ids=[0], gpus=1, concurrency=4),
                splitter=ArgSplitter(args=[['-c', {PAYLOAD!r}]] * 2))
        j.submit()
        while j.subjob_counts.get('running') != 1:
            time.sleep(0.1)
        waiting = [s for s in j.subjobs if s.status == 'submitted'][0]
        print(j.id, waiting.id, waiting.backend_detail, waiting.backend_note, sep='|')
    """)
    assert submitted.returncode == 0, submitted.stderr
    job_id, waiting_id, detail, note = submitted.stdout.strip().split("|")
    assert (detail, note) == ("Resources", "needs 1 GPU, 0 of 1 free")
    old = service_pid(root)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE,
             what="the service to die")
    done = client(root, f"""
        import time
        j = jobs({job_id})
        waiter = j.subjobs({waiting_id})
        # The new service re-queues the waiting subjob once it has adopted the holder:
        # from then on a GPU it thought free would be handed out within a round. (Reads
        # do not wait for its recovery, which runs once its Ray is up: a status read
        # shows the latest commits, a history read alone does not.)
        while not any("re-queued" in entry[3] for entry in waiter.history):
            time.sleep(0.1)
            waiter.status
        for _ in range(20):  # re-queued: submitting until the new actor has it, then submitted
            holder, waiting = sorted(j.subjobs, key=lambda s: s.id != waiter.id, reverse=True)
            assert holder.status == "running" and waiting.status in ("submitting", "submitted"), \
                [(s.id, s.status, s.backend_detail) for s in j.subjobs]
            time.sleep(0.1)
        open({flag!r}, "w").close()
        print(j.wait(timeout=120).value)
    """)
    assert done.returncode == 0 and done.stdout.strip() == "completed", (done.stdout, done.stderr)
    spans = []
    for sub in (0, 1):
        first, end = (root / "workspace" / job_id / str(sub) / "output" / "stdout").read_text().splitlines()
        ids, start = first.split()
        assert ids == "[0]"
        spans.append((float(start), float(end)))
    (a_start, a_end), (b_start, b_end) = sorted(spans)
    assert b_start >= a_end, f"GPU 0 was held by both subjobs at once: {spans}"
    nothing_runs_for(root, job_id)
