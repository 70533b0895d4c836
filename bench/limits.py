"""Physical limits of this machine, measured in the same run as the scenarios.

Run with the project's venv (it has ZODB, BTrees, persistent, ray, psutil):

    .venv/bin/python -m bench.limits [--only spawn,zodb,ray,kill,latency,rss] [--n 1000]

Prints one JSON object. Each limit is what a job manager written in Python
cannot beat on this machine, whatever its design:

* spawn: start and reap /bin/true from Python, 1 at a time and 2 at a time
  (N processes; per-process ms and total s).
* zodb: a bare ZODB FileStorage: commit N small persistent objects in an
  IOBTree in one transaction (s), bytes on disk per object, reopen and read
  every object's status (s); for N = 1,000 and 10,000.
* kill: 100 `sleep 60` processes, each in its own process group: SIGKILL
  every group, reap them all (s).
* latency: a child writes its time of day and exits; the time until the
  parent's wait returns (median s), plus one small ZODB commit: the least
  time from a subjob's exit to a recorded status.
* rss: peak RSS of a bare `python3 -c pass` (bytes): the floor under any
  Python session's memory.
* ray: Ray's overhead per actor call: 1,000 sequential
  ray.get(actor.noop.remote()) on a local Ray (per call ms).
* xargs: what a user would run instead of a bulk local job: `seq N | xargs -P<slots>
  -n1 /bin/true` with as many slots as Local's default concurrency (the CPU count),
  N = 10,000 (total s, per process ms).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench import trash

TRUE = "/bin/true"


def spawn_rate(n: int, parallel: int) -> dict:
    """Start and reap n /bin/true, keeping `parallel` alive at a time."""
    devnull = subprocess.DEVNULL
    t0 = time.perf_counter()
    running: list[subprocess.Popen] = []
    started = 0
    while started < n or running:
        while started < n and len(running) < parallel:
            running.append(subprocess.Popen([TRUE], stdin=devnull, stdout=devnull,
                                            stderr=devnull, close_fds=True))
            started += 1
        # reap whichever finishes first
        pid, status = os.wait()
        for p in running:
            if p.pid == pid:
                p.returncode = os.waitstatus_to_exitcode(status)
        running = [p for p in running if p.pid != pid]
    total = time.perf_counter() - t0
    return {"n": n, "parallel": parallel, "total_s": total, "per_process_ms": total / n * 1e3}


def xargs_rate(n: int, slots: int) -> dict:
    """`seq n | xargs -P slots -n1 /bin/true`: a shell user's bulk run."""
    t0 = time.perf_counter()
    subprocess.run(f"seq {n} | xargs -P{slots} -n1 {TRUE}", shell=True, check=True,
                   stdout=subprocess.DEVNULL)
    total = time.perf_counter() - t0
    return {"n": n, "slots": slots, "total_s": total, "per_process_ms": total / n * 1e3}


_SUB = None


def _subjob_class():
    """A small persistent 'subjob' (defined lazily: ZODB is optional here)."""
    global _SUB
    if _SUB is None:
        import persistent

        class _ZSub(persistent.Persistent):
            def __init__(self, i: int):
                self.id = i
                self.status = "completed"
                self.exitcode = 0

        _ZSub.__module__ = __name__
        globals()["_ZSub"] = _ZSub
        _SUB = _ZSub
    return _SUB


def zodb_commit(n: int, tmp: str) -> dict:
    import BTrees.IOBTree
    import transaction
    import ZODB
    import ZODB.FileStorage

    Sub = _subjob_class()
    path = os.path.join(tmp, f"z{n}.fs")
    storage = ZODB.FileStorage.FileStorage(path)
    db = ZODB.DB(storage)
    conn = db.open()
    root = conn.root()
    size0 = os.path.getsize(path)
    t0 = time.perf_counter()
    tree = BTrees.IOBTree.IOBTree()
    root["subjobs"] = tree
    for i in range(n):
        tree[i] = Sub(i)
    transaction.commit()
    commit_s = time.perf_counter() - t0
    conn.close()
    db.close()
    size = os.path.getsize(path) - size0
    # reopen and read every status
    t0 = time.perf_counter()
    storage = ZODB.FileStorage.FileStorage(path, read_only=True)
    db = ZODB.DB(storage, cache_size=max(400, n + 100))
    conn = db.open()
    counts: dict[str, int] = {}
    for sj in conn.root()["subjobs"].values():
        counts[sj.status] = counts.get(sj.status, 0) + 1
    read_s = time.perf_counter() - t0
    conn.close()
    db.close()
    # one small commit (a status change), on its own
    storage = ZODB.FileStorage.FileStorage(path)
    db = ZODB.DB(storage)
    conn = db.open()
    one = []
    for k in range(20):
        t0 = time.perf_counter()
        conn.root()["subjobs"][k].status = "running"
        transaction.commit()
        one.append(time.perf_counter() - t0)
    conn.close()
    db.close()
    return {"n": n, "commit_s": commit_s, "bytes": size, "bytes_per_object": size / n,
            "reopen_read_all_s": read_s, "read_ok": counts.get("completed") == n,
            "one_commit_median_s": statistics.median(one)}


def kill_groups(n: int) -> dict:
    procs = [subprocess.Popen(["/bin/sleep", "60"], stdin=subprocess.DEVNULL,
                              start_new_session=True) for _ in range(n)]
    time.sleep(0.2)
    t0 = time.perf_counter()
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        p.wait()
    total = time.perf_counter() - t0
    return {"n": n, "total_s": total}


def exit_latency(reps: int = 30) -> dict:
    lat = []
    with tempfile.TemporaryDirectory(prefix="lim-") as tmp:
        stamp = os.path.join(tmp, "t")
        for _ in range(reps):
            p = subprocess.Popen(["/bin/sh", "-c", '/bin/date +%s.%N > "$1"', "sh", stamp])
            p.wait()
            t_reaped = time.time()
            with open(stamp) as f:
                lat.append(t_reaped - float(f.read().strip()))
    return {"reps": reps, "median_s": statistics.median(lat), "min_s": min(lat)}


def python_rss() -> dict:
    # VmHWM of the new interpreter itself (ru_maxrss would carry over the
    # forking parent's peak across exec)
    code = ("import sys\nfor l in open('/proc/self/status'):\n"
            "    if l.startswith('VmHWM:'): print(int(l.split()[1]) * 1024)")
    out = subprocess.run(["python3", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return {"peak_rss_bytes": int(out.strip()), "python": "python3 -c (stdlib only)"}


def ray_actor_call(n: int) -> dict:
    tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")
    env_set = {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_TMPDIR": tmp,
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        "RAY_AUTH_MODE": "disabled",
    }
    os.environ.update(env_set)
    t0 = time.perf_counter()
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False,
             _temp_dir=tmp, log_to_driver=False)
    init_s = time.perf_counter() - t0
    try:
        @ray.remote
        class Noop:
            def noop(self):
                return None

        a = Noop.remote()
        ray.get(a.noop.remote())  # actor is up
        for _ in range(50):       # warm up
            ray.get(a.noop.remote())
        t0 = time.perf_counter()
        for _ in range(n):
            ray.get(a.noop.remote())
        total = time.perf_counter() - t0
    finally:
        t1 = time.perf_counter()
        ray.shutdown()
        shutdown_s = time.perf_counter() - t1
        trash.discard(tmp)
    return {"n": n, "total_s": total, "per_call_ms": total / n * 1e3,
            "init_s": init_s, "shutdown_s": shutdown_s}


ALL = ("spawn", "xargs", "zodb", "kill", "latency", "rss", "ray")
XARGS_N = 10000


def measure(only: tuple[str, ...] = ALL, n_spawn: int = 1000,
            zodb_ns: tuple[int, ...] = (1000, 10000)) -> dict:
    out: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    if "spawn" in only:
        out["spawn_1"] = spawn_rate(n_spawn, 1)
        out["spawn_2"] = spawn_rate(n_spawn, 2)
    if "xargs" in only:
        out[f"xargs_{XARGS_N}"] = xargs_rate(XARGS_N, os.cpu_count() or 1)
    if "zodb" in only:
        with tempfile.TemporaryDirectory(prefix="limz-") as tmp:
            for n in zodb_ns:
                out[f"zodb_{n}"] = zodb_commit(n, tmp)
    if "kill" in only:
        out["kill_100"] = kill_groups(100)
    if "latency" in only:
        out["exit_latency"] = exit_latency()
    if "rss" in only:
        out["python_rss"] = python_rss()
    if "ray" in only:
        try:
            out["ray"] = ray_actor_call(1000)
        except Exception as exc:  # ray missing or failing: say so
            out["ray"] = {"error": repr(exc)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(ALL))
    ap.add_argument("--n", type=int, default=1000, help="processes for spawn")
    ns = ap.parse_args(argv)
    res = measure(tuple(ns.only.split(",")), ns.n)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
