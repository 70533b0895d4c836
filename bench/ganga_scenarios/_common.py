"""Helpers shared by the Ganga-side scenario scripts.

These scripts run *inside* a Ganga process (``ganga --no-prompt script.py``),
with the Ganga venv's interpreter: keep this module to the standard library
plus psutil (installed in that venv for measuring only).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

RESULT_PREFIX = "BENCH_RESULT "
T_PROCESS_START = None
try:
    import psutil  # measuring only
    T_PROCESS_START = psutil.Process().create_time()
except Exception:  # pragma: no cover - psutil missing
    psutil = None


def now() -> float:
    return time.monotonic()


def since_process_start() -> float | None:
    """Seconds since this Ganga process was forked (wall clock)."""
    if T_PROCESS_START is None:
        return None
    return time.time() - T_PROCESS_START


def peak_rss_bytes() -> int:
    """Peak RSS of this process (VmHWM; ru_maxrss would include the peak of
    the process that forked us, carried across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes() -> int | None:
    if psutil is None:
        return None
    return psutil.Process().memory_info().rss


def emit(**fields) -> None:
    fields.setdefault("peak_rss_bytes", peak_rss_bytes())
    fields.setdefault("rss_bytes_at_end", rss_bytes())
    sys.stdout.write(RESULT_PREFIX + json.dumps(fields) + "\n")
    sys.stdout.flush()


def session_root() -> Path:
    return Path(os.environ["BENCH_SESSION_ROOT"])


def wait_until(pred, timeout: float, interval: float = 0.05) -> bool:
    deadline = now() + timeout
    while True:
        if pred():
            return True
        if now() > deadline:
            return False
        time.sleep(interval)


def subjob_status_counts(job) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sj in job.subjobs:
        counts[sj.status] = counts.get(sj.status, 0) + 1
    return counts


def wait_subjobs(job, wanted: set[str], timeout: float,
                 interval: float = 0.2) -> tuple[bool, dict[str, int]]:
    """Wait until every subjob's status is in ``wanted``.

    Looks at the master's status first (cheap) and walks the subjobs only
    when the master looks final, or every 2 s as a fallback (Ganga's master
    can lag behind its subjobs).
    """
    deadline = now() + timeout
    last_walk = now()
    final = {"completed", "failed", "killed"}
    while True:
        walk = job.status in final or job.status in wanted or now() - last_walk > 2.0
        if walk:
            counts = subjob_status_counts(job)
            last_walk = now()
            if set(counts) <= wanted:
                return True, counts
        if now() > deadline:
            return False, subjob_status_counts(job)
        time.sleep(interval)


def tree_usage(path: Path) -> tuple[int, int, int]:
    """(bytes allocated on disk, apparent bytes, number of files) under path."""
    alloc = apparent = files = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            alloc += st.st_blocks * 512
            apparent += st.st_size
            if name in filenames:
                files += 1
    return alloc, apparent, files


def processes_under_session(root: Path | None = None) -> list:
    """Processes (other than us) whose command line or cwd is in the session dir."""
    if psutil is None:
        return []
    root_s = str(root or session_root())
    me = os.getpid()
    found = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        if p.info["pid"] == me:
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        cwd = p.info["cwd"] or ""
        if root_s in cmd or cwd.startswith(root_s):
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            found.append(p)
    return found


def gpi():
    """Ganga's public interface (Job, Local, ...), importable once Ganga runs."""
    import GangaCore.GPI as g
    return g


def submit_true_and_wait(n: int, batchsize: int, timeout: float) -> dict:
    """Submit one job of n subjobs of /bin/true and wait for all `completed`."""
    g = gpi()
    j = g.Job(name=f"bench-{n}",
              application=g.Executable(exe="/bin/true", args=[]),
              backend=g.Local(batchsize=batchsize),
              splitter=g.ArgSplitter(args=[[] for _ in range(n)]))
    t0 = now()
    j.submit()
    t_submitted = now()
    ok, counts = wait_subjobs(j, {"completed"}, timeout=timeout)
    t_done = now()
    wait_until(lambda: j.status == "completed", timeout=30, interval=0.05)
    t_master = now()
    return {"job": j, "ok": ok, "counts": counts,
            "submit_s": t_submitted - t0,
            "submit_to_all_completed_s": t_done - t0,
            "master_completed_s": t_master - t0,
            "master_status": j.status}
