"""What ``submit()`` of one big split costs in CPU (issue 22, point 3: under 5 s at 100,000).

Run from the repository root with the project's venv::

    .venv/bin/python -m bench.submit_cpu --sizes 30000,100000 --reps 3
    .venv/bin/python -m bench.submit_cpu --sizes 1000 --reps 1      # quick check

Each figure is taken in a fresh process (``--measure N``): a new repository (FileStorage)
under a temporary directory, Ray started beforehand (not timed), then one ``submit()``
of a job of N subjobs of ``/bin/true`` (Local backend, ``ArgSplitter``), in-process
engine as the (a) rows run it. Timed: ``submit()``'s wall time and this process's CPU
time (``process_time``: comparable on a loaded machine, where wall times are not), and
the bytes ``jobs.fs`` grew by per subjob. The job is killed and everything removed
after each figure. Prints a table (medians over ``--reps``) and writes
``bench/results/submit_cpu.json``. Ganga has no figure here: its ``submit()`` of 1,000
is (a)'s (bench/README.md), and it does not reach these sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from bench.fresh_runs import fresh_runs, median_and_each, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(n: int) -> dict[str, float]:
    """One submit() of n subjobs in this process (see the module's docstring)."""
    from bench import ours

    tmp = tempfile.mkdtemp(prefix="sc-")  # short: Ray's socket paths must stay short
    session = ours._open_session(tmp)
    try:
        ours._start_ray()
        job = ours._true_job(n, name=f"submit-cpu-{n}")
        fs = os.path.join(tmp, "gl", "repository", "jobs.fs")
        before = os.path.getsize(fs) if os.path.exists(fs) else 0
        wall, cpu = time.perf_counter(), time.process_time()
        session.submit(job)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        grown = (os.path.getsize(fs) - before) if os.path.exists(fs) else float("nan")
        job.kill()
        return {"n": n, "submit_wall_s": wall, "submit_cpu_s": cpu,
                "jobs_fs_bytes_per_subjob": grown / n}
    finally:
        result: dict = {}
        ours._finish(session, tmp, result, session.repo_uuid + ":")
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30000,100000")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print("SUBMIT_CPU " + json.dumps(measure(args.measure)), flush=True)
        return 0
    rows = []
    print("| N | submit() wall (median) | submit() CPU (median; each) | jobs.fs per subjob |")
    print("| --- | --- | --- | --- |")
    for n in (int(s) for s in args.sizes.split(",")):
        runs = fresh_runs("submit_cpu", "SUBMIT_CPU", ["--measure", str(n)], args.reps)
        rows.append({"n": n, "runs": runs})
        print(f"| {n:,} | {statistics.median(r['submit_wall_s'] for r in runs):.2f} s | "
              f"{median_and_each([r['submit_cpu_s'] for r in runs])} | "
              f"{statistics.median(r['jobs_fs_bytes_per_subjob'] for r in runs):.0f} B |")
    write_results("submit_cpu", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
