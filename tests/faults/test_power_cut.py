"""A power cut: every process of a repository gone at once, then the next command.

Run as a new user runs it (a fresh HOME, no Ray or ganga_like variable but the root).
While one job's payloads run, another job has finished and a third (auto-resubmit on)
runs too, every process of the repository is stopped and killed together: service,
guardian, Ray, the actors, the wrappers, the payloads. The next command must start a
service that recovers: the job shows exactly how far its payloads got (runs that
finished stay as they were, runs that vanished end ``failed`` saying so, the
auto-resubmit job runs again), nothing is left ``submitting``, ``running`` or
``completing``, the queue log holds every change, and ``leaks()`` is empty.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time

import psutil

from tests.faults import soak

SUBMIT = """
    a = Job(application=Executable(exe='/bin/sh'), backend=Local(concurrency=8),
            splitter=ArgSplitter(args=[['-c', 'true'], ['-c', 'exit 3'],
                                       ['-c', 'sleep 60'], ['-c', 'sleep 60']]))
    b = Job(application=Executable(exe='/bin/echo', args=['done']), backend=Local(concurrency=8))
    c = Job(application=Executable(exe='/bin/sh',
                                   args=['-c', 'test -e {marker} && exit 0; touch {marker}; sleep 60']),
            backend=Local(concurrency=8), do_auto_resubmit=True)
    for j in (a, b, c):
        j.submit()
    b.wait(timeout=60)
    deadline = time.time() + 60
    while (a.subjob_counts.get('running', 0) < 2 or c.status.value != 'running'
           or a.subjob_counts.get('completed', 0) + a.subjob_counts.get('failed', 0) < 2):
        assert time.time() < deadline, (a.subjob_counts, c.status)
        time.sleep(0.1)
    print('READY', a.id, b.id, c.id, flush=True)
"""

CHECK = """
    import json
    a, b, c = jobs({a}), jobs({b}), jobs({c})
    for j in (a, b, c):
        j.wait(timeout=120)
    def story(job):
        return dict(status=job.status.value, note=(job.history[-1][3] if job.history else ''),
                    attempts=job.info.submit_counter)
    print('STATE', json.dumps(dict(
        a=[story(s) for s in a.subjobs], b=story(b), c=story(c), leaks=leaks(),
        active=[j.fqid for j in jobs if j.status.value in ('submitting', 'submitted', 'running',
                                                           'completing')])))
"""


def test_a_power_cut_leaves_a_repository_that_recovers_exactly(tmp_path):
    run = soak.Soak(tmp_path, seed=0)
    marker = tmp_path / "c-ran-once"
    try:
        submitted = run.client("import time\n" + textwrap.dedent(SUBMIT).format(marker=marker))
        assert submitted.returncode == 0, submitted.stderr[-3000:]
        a, b, c = (int(word) for word in submitted.stdout.split("READY", 1)[1].split()[:3])
        run.note_ray_dir()
        assert marker.exists()

        cut = soak.power_cut(run.root, run.ray_dirs)
        assert cut >= 6, f"only {cut} processes found to cut"
        deadline = time.monotonic() + 10
        while soak.repository_processes(run.root, run.ray_dirs) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [p.pid for p in soak.repository_processes(run.root, run.ray_dirs)
                     if p.status() != psutil.STATUS_ZOMBIE]
        assert not survivors, f"the power cut missed {survivors}"

        started = time.monotonic()
        listed = subprocess.run([*soak.GANGA_LIKE, "jobs"], env=run.env, text=True,
                                capture_output=True, timeout=120)
        answered = time.monotonic() - started
        assert listed.returncode == 0, listed.stderr
        print(f"the first command after the power cut answered in {answered:.1f} s")

        checked = run.client(textwrap.dedent(CHECK).format(a=a, b=b, c=c))
        assert checked.returncode == 0, checked.stderr[-3000:]
        state = json.loads(checked.stdout.split("STATE ", 1)[1])
        first, second, third, fourth = state["a"]
        assert first["status"] == "completed", first
        assert second["status"] == "failed" and "exit" in second["note"], second
        for vanished in (third, fourth):  # their wrapper died with everything else
            assert vanished["status"] == "failed", vanished
            assert "ended before recording the exit status" in vanished["note"], vanished
        assert state["b"]["status"] == "completed", state["b"]
        assert state["c"]["status"] == "completed" and state["c"]["attempts"] == 2, state["c"]
        assert state["active"] == [] and state["leaks"] == [], state
        run.check(f"after a power cut (first answer in {answered:.1f} s)")
    finally:
        run.finish()
