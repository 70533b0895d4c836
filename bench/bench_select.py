"""Select by status, 100 matches among N (issue 22, point 5): before and after the index.

Run from the repository root with the project's venv::

    .venv/bin/python -m bench.bench_select --sizes 1000,10000,100000 --reps 3
    .venv/bin/python -m bench.bench_select --sizes 10000 --reps 1 --via file   # quick check
    .venv/bin/python -m bench.bench_select --sizes 1000 --ganga                 # + Ganga 8.7.12
    .venv/bin/python -m bench.bench_select --writes 10000   # what the index costs writers

For each N, a repository (built once, cached in bench/.cache/select-N/) holds one
master of N subjobs (100 failed, spread evenly, the rest completed) and N plain jobs
(100 failed, the rest completed; with the master, 101 match), so both ``jobs.select(status='failed')`` and
``jobs(0).subjobs.select(status='failed')`` find 100. Every status went through
``set_status`` (the index is the one users get).

Each figure is taken in a FRESH process, cold: opening the repository is not timed;
the time is the select plus reading each match's status (what a user does next), so
an index that only returned ghosts could not look better than it is:

- ``file``: the process opens the FileStorage itself (read-only);
- ``service``: the real service (``ganga-like service start``; its ZEO server over the
  FileStorage, a unix socket), the process is a GPI client (``ganga_like.gpi``) with
  a new, empty ZEO cache: how users read. Measured once the service's Ray has started
  (``service status`` no longer says "starting"): while it starts, the service's
  ZEO server answers several times slower. Its scan is timed up to
  ``--service-scan-max`` (10,000) only: above, one run takes minutes.

"before" is the scan every select did before the index (``slices.select_jobs`` over
every (sub)job, the code of ``main`` before it), in the same kind of fresh process.
``--ganga``: Ganga's ``jobs.select(status='failed')`` and
``j.subjobs.select(status='failed')`` on a Ganga repository built the same way
(bench/ganga_scenarios/q_select.py), at the sizes given (Ganga builds 1,000 jobs in
about a minute: keep it to 1,000 and 10,000).

Prints a table and writes bench/results/select.json. Medians over --reps.

``--writes N``: what keeping the index costs the writers, the other side of its chunks'
size: the bytes each monitor-like batch adds to ``jobs.fs`` (a master of N subjobs, all
submitted; each batch moves the next 20 to running and the 20 before them to completed,
as a run's batches do), median and mean over the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")
RESULTS = os.path.join(HERE, "results", "select.json")
MATCHES = 100
BATCH = 5_000  # jobs per transaction while building


def _environ(root: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["GANGA_LIKE_DIR"] = root
    return env


# --- the repository ------------------------------------------------------------------------


def build(n: int, root: str) -> None:
    """One master of n subjobs and n plain jobs, 100 failed of each kind (see above)."""
    from ganga_like.config import Config
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.lifecycle import set_status
    from ganga_like.repository import open_repository

    repo = open_repository(Config(root=root))
    conn = repo.connect()
    step = n // MATCHES

    def finish_all(jobs: list[tuple[Job, bool]]) -> None:
        """Each (job, whether it fails) to its final status, each step for every job before
        the next, as a real run moves them: one subjob at a time through all its steps
        would flip its master's derived status three times per subjob (failed ->
        submitting -> submitted -> failed), and its history, one record, would grow to
        19 MB at 100,000."""
        for target in ("submitting", "submitted", "completed"):
            for job, failed in jobs:
                if target == "submitting" or not failed:
                    set_status(job, target)
                elif target == "submitted":
                    set_status(job, "failed")

    master = _split_master(conn, n)
    for low in range(0, n, BATCH):
        def move(low: int = low) -> None:
            finish_all([(sub, sub.id % step == step // 2)
                        for sub in master._subjobs.values(low, min(n, low + BATCH) - 1)])

        conn.write(move)
        conn.conn.cacheGC()
    for low in range(1, n + 1, BATCH):
        def plain(low: int = low) -> None:
            made = []
            for i in range(low, min(n + 1, low + BATCH)):
                job = Job(application=Executable(exe="/bin/true"), name=f"plain-{i}")
                conn.jobs.add(job)
                made.append((job, i % step == step // 2 and i < n))
            finish_all(made)

        conn.write(plain)
        conn.conn.cacheGC()
    conn.close()
    repo.close()


def _split_master(conn: Any, n: int) -> Any:
    """Job 0 (in a new repository): a master of n subjobs of /bin/true, split."""
    from ganga_like.engine.operations.submit import split
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.splitters import ArgSplitter

    master = Job(application=Executable(exe="/bin/true"),
                 splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))

    def make() -> None:
        conn.jobs.add(master)
        split(master)

    conn.write(make)
    return master


def cached(n: int) -> str:
    root = os.path.join(CACHE, f"select-{n}")
    if not os.path.exists(os.path.join(root, "done")):
        shutil.rmtree(root, ignore_errors=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "bench.bench_select", "--build", str(n), root],
                       check=True, cwd=ROOT, env=_environ(root))
        print(f"built the repository of {n:,} in {time.monotonic() - started:.1f} s",
              file=sys.stderr)
        open(os.path.join(root, "done"), "w").close()
    return root


def batch_bytes(n: int, step: int = 20) -> dict:
    """Bytes added to jobs.fs by each batch of a run-like sweep over n subjobs."""
    from ganga_like.config import Config
    from ganga_like.model.lifecycle import set_status
    from ganga_like.repository import open_repository

    with tempfile.TemporaryDirectory(prefix="bench-select-writes-") as root:
        repo = open_repository(Config(root=root))
        conn = repo.connect()
        master = _split_master(conn, n)
        for low in range(0, n, BATCH):
            def submit(low: int = low) -> None:
                for target in ("submitting", "submitted"):
                    for sub in master._subjobs.values(low, min(n, low + BATCH) - 1):
                        set_status(sub, target)

            conn.write(submit)
        path = os.path.join(root, "repository", "jobs.fs")
        added = []
        for k in range(0, n + step, step):
            def batch(k: int = k) -> None:
                for i in range(k, min(k + step, n)):
                    set_status(master._subjobs[i], "running")
                for i in range(max(k - step, 0), min(k, n)):
                    set_status(master._subjobs[i], "completed")

            before = os.path.getsize(path)
            conn.write(batch)
            added.append(os.path.getsize(path) - before)
        conn.close()
        repo.close()
    return {"n": n, "batches": len(added), "median_bytes": statistics.median(added),
            "mean_bytes": statistics.mean(added)}


# --- one measurement, in a fresh process ----------------------------------------------------


def measure(via: str, how: str) -> dict:
    """In this (fresh) process: open, then time the two selects (how: index or scan)."""
    if via == "file":
        from ganga_like.config import Config
        from ganga_like.repository import open_repository

        repo = open_repository(Config.from_env(), read_only=True)
        jobs = repo.connect().jobs
    else:
        from ganga_like.gpi import jobs  # the client of the running service
    master = jobs(0) if via == "service" else jobs.get(0)
    assert len(master.subjobs) > 0
    out = {}
    for what, call in (("subjobs", lambda: _select(master.subjobs, how)),
                       ("jobs", lambda: _select(jobs, how))):
        start = time.perf_counter()
        found = call()
        statuses = [job.status for job in found]  # read what was returned
        out[f"{what}_s"] = time.perf_counter() - start
        out[f"{what}_found"] = len(statuses)
    return out


def _select(where: object, how: str) -> list:
    from ganga_like.model.slices import select_jobs

    if how == "index":
        return list(where.select(status="failed"))  # type: ignore[attr-defined]
    return select_jobs(iter(where), status="failed")  # type: ignore[call-overload]


def fresh(root: str, via: str, how: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench.bench_select", "--measure", via, how],
                          check=True, cwd=ROOT, env=_environ(root), capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def service(root: str, verb: str) -> None:
    subprocess.run([sys.executable, "-m", "ganga_like.cli", "service", verb], check=True,
                   cwd=ROOT, env=_environ(root), capture_output=True)
    if verb == "start":
        _until_ray_started(root)


def _until_ray_started(root: str, timeout: float = 60.0) -> None:
    """Wait for the service's Ray: the service answers reads at once, but Ray's start
    (seconds of CPU in the service's own process and its children) slows its ZEO
    server several times over, and a figure taken meanwhile measures that start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = subprocess.run([sys.executable, "-m", "ganga_like.cli", "service", "status"],
                                cwd=ROOT, env=_environ(root), capture_output=True, text=True)
        if "Ray: starting" not in status.stdout:
            return
        time.sleep(0.5)


# --- Ganga ------------------------------------------------------------------------------------


def ganga(n: int, reps: int) -> dict:
    """Ganga 8.7.12's selects over a Ganga repository built the same way (cached)."""
    from pathlib import Path

    from bench import ganga_env

    ganga_env.ensure(quiet=True)
    base = Path(CACHE) / f"ganga-select-{n}"
    gangadir = base / "gangadir"
    if not (base / "done").exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        session = ganga_env.Session(root=base / "session", gangadir=gangadir)
        built = ganga_env.run_script("q_select.py", ["build", str(n)], session, timeout=7200,
                                     log_path=base / "build.log")
        if built.get("n_subjobs") != n:
            raise RuntimeError(f"building the Ganga repository failed: {built}")
        print(f"built Ganga's repository of {n:,} in {built['outer_wall_s']:.1f} s",
              file=sys.stderr)
        shutil.rmtree(base / "session", ignore_errors=True)
        (base / "done").touch()
    results = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory(prefix="bench-select-ganga-") as tmp:
            work = Path(tmp) / "gangadir"
            shutil.copytree(gangadir, work, symlinks=True)  # Ganga writes at start: a copy
            session = ganga_env.Session(root=Path(tmp) / "session", gangadir=work)
            results.append(ganga_env.run_script("q_select.py", ["select"], session, timeout=1800))
    if any("error" in r for r in results):
        raise RuntimeError(f"Ganga's select failed: {results[0]}")
    return {key: statistics.median(r[key] for r in results)
            for key in ("subjobs_s", "jobs_s", "subjobs_found", "jobs_found")}


# --- the table ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--via", default="file,service")
    parser.add_argument("--ganga", action="store_true")
    parser.add_argument("--service-scan-max", type=int, default=10_000,
                        help="the largest N whose scan is timed through the service "
                             "(cold over ZEO it reads every record: 15 s at 10,000)")
    parser.add_argument("--writes", type=int, metavar="N",
                        help="only the bytes each run-like batch adds to jobs.fs, N subjobs")
    parser.add_argument("--build", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build:
        build(int(args.build[0]), args.build[1])
        return 0
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    if args.writes:
        print(json.dumps(batch_bytes(args.writes)))
        return 0
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        root = cached(n)
        for via in args.via.split(","):
            if via == "service":
                service(root, "start")
            try:
                for how in ("scan", "index"):
                    if how == "scan" and via == "service" and n > args.service_scan_max:
                        continue  # (minutes per run: reading every record over ZEO, cold)
                    runs = [fresh(root, via, how) for _ in range(args.reps)]
                    row = {"n": n, "via": via, "how": how}
                    row.update({k: statistics.median(r[k] for r in runs) for k in runs[0]})
                    rows.append(row)
            finally:
                if via == "service":
                    service(root, "stop")
        if args.ganga:
            rows.append({"n": n, "via": "ganga", "how": "Ganga 8.7.12", **ganga(n, args.reps)})
    print(f"{'N':>8} {'via':8} {'how':14} {'subjobs ms':>11} {'found':>6} {'jobs ms':>9} {'found':>6}")
    for row in rows:
        print(f"{row['n']:>8,} {row['via']:8} {row['how']:14} {row['subjobs_s'] * 1e3:>11.1f} "
              f"{row['subjobs_found']:>6} {row['jobs_s'] * 1e3:>9.1f} {row['jobs_found']:>6}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as out:
        json.dump({"rows": rows, "command": " ".join(sys.argv), "date": time.strftime("%F %T")},
                  out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
