"""What the service's own threads spend per subjob of a run (issue 22, point 3), without Ray.

Run from the repository root with the project's venv::

    .venv/bin/python -m bench.monitor_cpu --sizes 10000 --reps 3
    .venv/bin/python -m bench.monitor_cpu --sizes 1000 --reps 1       # quick check

The service's CPU for 10,000 ``/bin/true`` through it is mostly its streamer's and its
monitor's database work; the Local actor's share and Ray's are measured by (a) and the
profiling tools, not here. Each figure is taken in a fresh process (``--measure N``): an
in-process engine on a new FileStorage (no Ray, no actor), a job of N subjobs of
``/bin/true`` split and its first batch moved to ``submitting`` as ``submit()`` does;
then, batch after batch of ``SUBMIT_CHUNK``, the streamer's transaction (``new ->
submitting``) and the monitor's, fed what a Local actor on two slots answers: the
submission (two started, the rest queued) with the queued subjobs' QUEUED events (the
monitor holds the one for the other: ``engine/submission_wait.py``), then STARTED and
FINISHED events as two slots give them, ``--per`` subjobs ended per monitor batch (80:
about what a 100 ms batch saw at 10,000 on this machine). Timed: each thread's CPU time
(``thread_time``: comparable on a loaded machine); counted: the records each subjob
cost in ``jobs.fs`` and its bytes. Prints a table (medians over ``--reps``) and writes
``bench/results/monitor_cpu.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from bench.fresh_runs import fresh_runs, median_and_each, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(n: int, per: int) -> dict[str, float]:
    """One run of n subjobs through the streamer's and monitor's transactions."""
    from ganga_like.config import Config
    from ganga_like.engine.core import Engine
    from ganga_like.engine.monitor import Monitor

    tmp = tempfile.mkdtemp(prefix="mc-")
    engine = Engine(Config.from_env(root=os.path.join(tmp, "gl")))
    try:
        cpu: collections.Counter = collections.Counter()
        job = _submitted(engine, n, cpu)
        monitor = Monitor(engine.context)  # its thread is not started: this one turns it
        monitor.conn = engine.repository.connect()
        _run(engine, monitor, job, per, cpu)
        engine.refresh()
        assert engine.jobs.get(job.id).subjob_counts == {"completed": n}
        monitor.conn.close()
        records, size = _stores(engine)
        return {"n": n, "split_cpu_s": cpu["split"], "streamer_cpu_s": cpu["streamer"],
                "monitor_cpu_s": cpu["monitor"], "records_per_subjob": records / n,
                "jobs_fs_bytes_per_subjob": size / n, "monitor_batches": monitor.batches}
    finally:
        engine.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _timed(cpu: collections.Counter, name: str, fn: Callable[[], object]) -> None:
    started = time.thread_time()
    fn()
    cpu[name] += time.thread_time() - started


def _submitted(engine, n: int, cpu: collections.Counter):  # type: ignore[no-untyped-def]
    """A stored job of n subjobs, split, its first batch submitting, the rest to stream."""
    from bench import ours
    from ganga_like.engine.operations.common import SUBMIT_CHUNK, begin_attempt
    from ganga_like.engine.operations.submit import mark_active, split
    from ganga_like.model.stream import SubmitStream
    from ganga_like.model.writes import acting_as, current_cause
    from ganga_like.status import Source

    job = ours._true_job(n, name=f"monitor-cpu-{n}")
    engine.register(job)

    def prepare() -> None:
        split(job)
        for sub in job._subjobs.values(0, SUBMIT_CHUNK - 1):
            begin_attempt(sub, "", source=Source.USER)
        if n > SUBMIT_CHUNK:
            job._stream = SubmitStream(SUBMIT_CHUNK, n - SUBMIT_CHUNK, n, keep_going=False,
                                       cause=current_cause())
        mark_active(engine.context, job)

    with acting_as(engine.context.new_cause("submit")):
        _timed(cpu, "split", lambda: engine.write(prepare))
    return job


def _run(engine, monitor, job, per: int, cpu: collections.Counter) -> None:  # type: ignore[no-untyped-def]
    """The streamer's batches and the monitor's, in the order a Local actor's answers come."""
    from ganga_like.backends.base import FINISHED, QUEUED, STARTED, Event, Handle
    from ganga_like.engine.context import Submission
    from ganga_like.engine.operations.common import SUBMIT_CHUNK
    from ganga_like.engine.streamer import Streamer

    streamer, conn = Streamer(engine.context), engine.repository.connect()
    seq = iter(range(1, 10**9))

    def event(fqid: str, kind: str, pid: int = 0, **fields: object) -> Event:
        handle = Handle("Local", fqid, host="here", pid=pid, create_time=time.time() if pid else 0.0,
                        attempt=1)
        return Event(seq=next(seq), fqid=fqid, kind=kind, time=time.time(), handle=handle,
                     **fields)  # type: ignore[arg-type]

    waiting: collections.deque[str] = collections.deque()
    running: list[str] = []

    def ends(count: int) -> list[Event]:
        out = []  # two slots: each start comes as the run before the last ends
        for _ in range(min(count, len(waiting))):
            fqid = waiting.popleft()
            out.append(event(fqid, STARTED, pid=4242, detail="Running"))
            running.append(fqid)
            if len(running) > 1 or not waiting:
                for done in running[:-1] if waiting else list(running):
                    out.append(event(done, FINISHED, pid=4242, exit_code=0, note="RUN_DONE exit=0"))
                    running.remove(done)
        return out

    for first in range(0, len(job.subjobs), SUBMIT_CHUNK):
        fqids = [f"{job.id}.{i}" for i in range(first, min(len(job.subjobs), first + SUBMIT_CHUNK))]
        if first:
            _timed(cpu, "streamer", lambda: streamer._take_batch(conn, job.id))
        pairs = [(f, 1, event(f, QUEUED).handle) for f in fqids]
        queued = [event(f, QUEUED, detail="ConcurrencyLimit", note="Local's concurrency limit 2 reached")
                  for f in fqids]
        _timed(cpu, "monitor", lambda: monitor._apply(queued, [Submission(pairs)]))  # noqa: B023
        waiting.extend(fqids)
        _timed(cpu, "monitor", lambda: monitor._apply(ends(per), []))
    while waiting or running or monitor._outcomes:
        _timed(cpu, "monitor", lambda: monitor._apply(ends(per), []))
    conn.close()


def _stores(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Records and bytes the run's transactions wrote (the job's registration excluded)."""
    records = size = 0
    for number, txn in enumerate(engine.repository.db.storage.iterator()):
        if number < 2:  # the root and the registries, the job's registration
            continue
        for record in txn:
            records += 1
            size += len(record.data or b"")
    return records, size


def _table_row(n: int, runs: list[dict]) -> str:
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "n"}
    return (f"| {n:,} | {med['streamer_cpu_s']:.2f} s | "
            f"{median_and_each([r['monitor_cpu_s'] for r in runs])} | {med['split_cpu_s']:.2f} s "
            f"| {med['records_per_subjob']:.2f} | {med['jobs_fs_bytes_per_subjob']:.0f} B |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--per", type=int, default=80, help="subjobs ended per monitor batch")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print("MONITOR_CPU " + json.dumps(measure(args.measure, args.per)), flush=True)
        return 0
    rows = []
    print("| N | streamer CPU | monitor CPU (median; each) | split + first batch "
          "| records per subjob | jobs.fs per subjob |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in (int(s) for s in args.sizes.split(",")):
        runs = fresh_runs("monitor_cpu", "MONITOR_CPU", ["--measure", str(n), "--per", str(args.per)],
                          args.reps)
        rows.append({"n": n, "per": args.per, "runs": runs})
        print(_table_row(n, runs))
    write_results("monitor_cpu", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
