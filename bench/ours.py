"""The ganga_like side of the benchmark: the plug-in point.

One function per scenario. The runner (bench/runner.py) calls each one in a
fresh Python process (``python -m bench._run_ours NAME KWARGS_JSON``, with
the project's venv), so module-level state and peak memory start clean.
Each function returns a dict; the runner reads the *headline key* named in
each docstring (the same key the Ganga side reports, so the two compare
one to one) and keeps every other key in bench/results/latest.json.

Rules for filling these in (so that the comparison with Ganga stays fair):

* Do the same work as the Ganga script named in the docstring
  (bench/ganga_scenarios/), on the Local backend, with the project's
  defaults (say so in the returned dict if a non-default setting is used).
* Put everything the function creates (repository, work dirs) under
  ``tmp_root`` (a fresh temporary directory given by the runner, removed
  afterwards) and leave no process running.
* Time with ``time.monotonic()``; return seconds as floats, bytes as ints.
* The runner itself adds ``outer_wall_s`` (fork to exit of the process) and
  ``process_peak_rss_bytes`` (VmHWM of that process).

How the ganga_like side runs (the same for every scenario that submits):

* One ``Engine`` per process, its repository (an embedded ZODB FileStorage)
  and workspace under ``<tmp_root>/gl``.
* Ray is started once per session with ``ensure_ray()`` (≈4 s on this
  machine). That start-up is timed on its own (``ray_start_s``) and kept OUT
  of every headline figure, as Ganga's own start-up (≈1 s) is kept out of
  its figures: a session pays it once. The Local backend's actor, created on
  the first submit, is NOT excluded: its start-up is inside the first
  submit's time (a cold job), and (a) also reports a second, warm job.
* Ray's environment as users have it (``ganga_like.ray_runtime``: token authentication on) and ``RAY_TMPDIR``
  under ``tmp_root``, so that every Ray process of the run is tied to the
  run's directory (the runner's leftover check sees them).
* At the end: ``s.close()``, ``stop_ray()``, then the process table is
  checked for anything of ours left (subjob processes by their
  ``GANGA_LIKE_MARKER``, Ray processes by their parent or directory); any
  such process is killed and reported (``leftover_*`` keys), and tmp_root
  is emptied.

This module imports nothing of ganga_like or Ray at import time, so that
(b) can time the import itself.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import threading
import time

from bench import trash

_NOTE = "ganga_like side not plugged in yet (bench/ours.py)"
_T_IMPORT = time.monotonic()

# Processes that are subjobs (wrappers and payloads), not Ray, when walking the
# process tree below the driver.
_SUBJOB_NAMES = {"bash", "sh", "true", "sleep", "date"}


# ---------------------------------------------------------------- helpers

def _now() -> float:
    return time.monotonic()


def _since_process_start() -> float | None:
    """Seconds since this process was forked (as the Ganga scripts report)."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:
        return None


def _proc_status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (``VmHWM``, ``VmRSS``) in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _vmhwm() -> int | None:
    return _proc_status_bytes("VmHWM")


def _vmrss() -> int | None:
    return _proc_status_bytes("VmRSS")


def _prepare_env(tmp_root: str) -> None:
    # Ray's unix socket paths must stay short (≈107 bytes): use tmp_root only
    # when it is short, else ensure_ray's own /tmp/glray-* (removed at the end).
    if "RAY_TMPDIR" not in os.environ and len(tmp_root) <= 40:
        path = os.path.join(tmp_root, "ray")
        os.makedirs(path, exist_ok=True)
        os.environ["RAY_TMPDIR"] = path


def _config(root: str):
    from ganga_like.config import Config

    return Config.from_env(root=root)


def _open_session(tmp_root: str):
    """A session on a fresh repository under tmp_root/gl."""
    _prepare_env(tmp_root)
    from ganga_like.engine.core import Engine

    return Engine(_config(os.path.join(tmp_root, "gl")))


def _start_ray() -> float:
    from ganga_like.ray_runtime import ensure_ray

    t0 = _now()
    ensure_ray()
    return _now() - t0


def _true_job(n: int, concurrency: int | None = None, exe: str = "/bin/true",
              args: list[list[str]] | None = None, name: str = ""):
    from ganga_like.backends.local.config import Local
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.splitters import ArgSplitter

    backend = Local(concurrency=concurrency) if concurrency else Local()
    return Job(name=name, application=Executable(exe=exe, args=[]), backend=backend,
               splitter=ArgSplitter(args=args if args is not None else [[] for _ in range(n)]))


def _ray_processes() -> list:
    """Ray's processes started for this session: descendants of this process
    that are not subjobs (the Local actor's wrappers and payloads)."""
    import psutil

    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.name() in _SUBJOB_NAMES or p.status() == psutil.STATUS_ZOMBIE:
                continue
            out.append(p)
        except psutil.Error:
            continue
    return out


def _marker_processes(prefix: str) -> list[tuple[int, float, str]]:
    from ganga_like.backends.runtime.procs import find_by_marker

    return find_by_marker(prefix)


def _processes_in(path: str) -> list:
    """Live processes (not us) whose command line or cwd lies under path."""
    from bench.runner import processes_in  # the runner's own leftover check

    return processes_in(path)


def _kill_all(procs: list) -> None:
    import psutil

    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)


def _finish(session, tmp_root: str, result: dict, prefix: str | None = None,
            ray_started: bool = True) -> dict:
    """Close the session and Ray, check that nothing of ours is left, empty tmp_root."""
    import psutil

    t0 = _now()
    if session is not None:
        try:
            session.close()
        except Exception as exc:  # reported, not hidden
            result["close_error"] = repr(exc)
    result["session_close_s"] = _now() - t0
    if ray_started:
        try:
            from ganga_like.ray_runtime import stop_ray

            t1 = _now()
            stop_ray()  # ray.shutdown(), and the head ensure_ray started (ray.shutdown leaves it)
            result["ray_shutdown_s"] = _now() - t1
        except Exception as exc:
            result["ray_shutdown_error"] = repr(exc)
    # What is left: subjob processes (by marker), our descendants, anything in tmp_root.
    deadline = _now() + 5.0
    left: list = []
    while True:
        left = []
        seen = set()
        if prefix:
            for pid, _ct, _m in _marker_processes(prefix):
                try:
                    left.append(psutil.Process(pid))
                    seen.add(pid)
                except psutil.Error:
                    pass
        for p in _ray_processes() + _processes_in(tmp_root):
            if p.pid not in seen:
                left.append(p)
                seen.add(p.pid)
        if not left or _now() > deadline:
            break
        time.sleep(0.05)
    result["leftover_processes_at_end"] = len(left)
    if left:
        desc = []
        for p in left[:5]:
            try:
                desc.append(" ".join(p.cmdline())[:150])
            except psutil.Error:
                pass
        result["leftover_examples"] = desc
        _kill_all(left)
    ray_tmp = os.environ.get("RAY_TMPDIR", "")
    if ray_tmp and not ray_tmp.startswith(tmp_root) and os.path.basename(ray_tmp).startswith("glray-"):
        trash.discard(ray_tmp)  # ensure_ray's own, outside tmp_root
    _empty(tmp_root)
    return result


def _empty(tmp_root: str) -> None:
    """Discard everything inside tmp_root (the runner discards tmp_root itself); the
    files are removed at the end of the benchmark (see bench/trash.py)."""
    try:
        names = os.listdir(tmp_root)
    except OSError:
        return
    for name in names:
        trash.discard(os.path.join(tmp_root, name))


def _wait_counts(session, job, wanted: str, n: int, timeout: float) -> tuple[bool, dict]:
    """Wait (session.wait: woken by the monitor's commits) until every subjob
    reads ``wanted``; return (ok, counts)."""
    deadline = _now() + timeout
    while True:
        try:
            session.wait([job], timeout=max(0.0, deadline - _now()), poll=0.5)
        except Exception:
            pass  # WaitTimeout: checked below
        session.refresh()
        counts = job.subjob_counts
        if counts.get(wanted, 0) == n:
            return True, counts
        if _now() > deadline:
            return False, counts
        # final but not all `wanted` (e.g. some failed): not going to change
        if not any(k in counts for k in ("new", "submitting", "submitted", "running",
                                         "completing")):
            return False, counts


def _run_true(session, n: int, timeout: float = 1800.0) -> dict:
    job = _true_job(n, name=f"bench-{n}")
    t0 = _now()
    session.submit(job)
    t_sub = _now()
    ok, counts = _wait_counts(session, job, "completed", n, timeout)
    t_done = _now()
    return {"job": job, "ok": ok, "counts": counts, "submit_s": t_sub - t0,
            "submit_to_all_completed_s": t_done - t0,
            "master_status": job.status.value}


def _tree_usage(path: str) -> tuple[int, int, int]:
    """(allocated bytes, apparent bytes, files) under path, as the Ganga side."""
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


def _monitor_stats(session) -> dict:
    m = session.monitor
    return {"monitor_batches": m.batches, "monitor_events_applied": m.events_applied,
            "monitor_errors": list(m.errors)[:5]}


# ---------------------------------------------------------------- (a)

def submit_and_complete(n: int, tmp_root: str) -> dict:
    """(a) Submit one job of n subjobs of /bin/true (Local backend) and wait
    until every subjob is `completed`.

    Headline key: ``submit_to_all_completed_s`` (just before submit -> every
    subjob reads `completed`). Also useful: ``submit_s``.
    Ganga: a_submit_complete.py.

    Ours: Local() with its default concurrency (the CPU count, 2 here; Ganga
    runs with batchsize=32). The headline is the session's first job (cold:
    it includes the start of the Local actor); Ray's start is excluded and
    reported as ``ray_start_s``. For n <= 1,000 a second job of n subjobs is
    then run in the same session: ``warm_*``.
    """
    s = _open_session(tmp_root)
    prefix = s.repo_uuid + ":"
    res: dict = {"scenario": "a", "n": n, "backend": "Local() default concurrency",
                 "concurrency": os.cpu_count(),
                 "excluded_from_headline": "ray_start_s (once per session)"}
    try:
        res["ray_start_s"] = _start_ray()
        r = _run_true(s, n)
        r.pop("job")
        res.update(r)
        if n <= 1000:
            w = _run_true(s, n)
            w.pop("job")
            res.update({"warm_" + k: v for k, v in w.items()})
        res.update(_monitor_stats(s))
    finally:
        _finish(s, tmp_root, res, prefix)
    if not res.get("ok"):
        res["error"] = f"not every subjob completed: {res.get('counts')}"
    return res


# ---------------------------------------------------------------- (b), (c)

def prepare_repository(n_jobs: int, repo_dir: str) -> dict:
    """Build, once, a repository of n_jobs jobs for (b) and (c) in repo_dir:
    70 % completed, 20 % failed, 10 % new, like the Ganga one
    (bench/ganga_scenarios/prepare_repo.py).

    ``repo_dir`` is the session's root (repository/jobs.fs inside). Jobs are
    real ``Job`` objects (Executable('/bin/true'), Local()), registered with
    ``s.jobs.add`` in transactions of 1,000; their statuses move along the
    transition table with ``set_status`` (new -> submitting -> submitted ->
    running -> completed|failed). No Ray, nothing runs.
    """
    from ganga_like.backends.local.config import Local
    from ganga_like.engine.core import Engine
    from ganga_like.model.application import Executable
    from ganga_like.model.job import Job
    from ganga_like.model.lifecycle import set_status

    s = Engine(_config(repo_dir))
    counts: dict[str, int] = {}
    t0 = _now()
    try:
        batch = 1000
        for start in range(0, n_jobs, batch):
            def work(start: int = start) -> None:
                for i in range(start, min(n_jobs, start + batch)):
                    j = Job(name=f"repo-{i}", application=Executable(exe="/bin/true", args=[]),
                            backend=Local())
                    s.jobs.add(j)
                    k = i % 10
                    final = "completed" if k < 7 else ("failed" if k < 9 else "new")
                    if final != "new":
                        for st in ("submitting", "submitted", "running", final):
                            set_status(j, st, source="user")
            s.write(work, note="bench prepare")
        for i in range(n_jobs):
            k = i % 10
            final = "completed" if k < 7 else ("failed" if k < 9 else "new")
            counts[final] = counts.get(final, 0) + 1
        t1 = _now()
        n_in = len(s.jobs)
    finally:
        s.close()
    return {"scenario": "prepare_repo", "n": n_jobs, "create_s": t1 - t0, "counts": counts,
            "n_in_registry": n_in}


def list_repository(n_jobs: int, repo_dir: str, tmp_root: str) -> dict:
    """(b) Start a session on a repository of n_jobs jobs and list it (the
    table a user sees), then read every job's status.

    ``repo_dir`` is where the runner keeps our prepared repository of n_jobs
    jobs (built once by ``prepare_repository`` and copied for each run).
    Headline: the runner's ``outer_wall_s`` (process start to exit, as for
    Ganga). Report ``startup_s``, ``list_s``, ``read_status_s`` too.
    Ganga: b_list.py.

    Ours does both listings: first the newest 50 (what ``ganga-like jobs``
    prints by default, ``list_last50_s``), then every job's row
    (``list_s``, the comparable one: Ganga's ``jobs`` prints all), then reads
    every job's status. The session opens the repository as the CLI does
    (``fallback_read_only=True``); no Ray is started (listing needs none).
    """
    _prepare_env(tmp_root)
    res: dict = {"scenario": "b", "n": n_jobs}
    t_imp = _now()
    from ganga_like.engine.core import Engine
    from ganga_like.model.table import job_row, render
    res["import_s"] = _now() - t_imp
    res["module_import_to_call_s"] = t_imp - _T_IMPORT

    t_open = _now()
    s = Engine(_config(repo_dir), fallback_read_only=True)
    total = len(s.jobs)
    res["open_s"] = _now() - t_open
    res["startup_s"] = _since_process_start()  # fork -> session open (Ganga: fork -> script)
    res["rss_after_open_bytes"] = _vmrss()
    try:
        t0 = _now()
        text50 = render([job_row(j) for j in s.jobs.last(50)], f"{total} jobs")
        t1 = _now()
        res["list_last50_s"] = t1 - t0
        res["list_last50_lines"] = text50.count("\n")
        res["peak_rss_after_last50_bytes"] = _vmhwm()
        text = render([job_row(j) for j in s.jobs], f"{total} jobs")
        t2 = _now()
        res["list_s"] = t2 - t1
        res["list_lines"] = text.count("\n")
        res["peak_rss_after_full_listing_bytes"] = _vmhwm()
        statuses = [j.status.value for j in s.jobs]
        t3 = _now()
        res["read_status_s"] = t3 - t2
        counts: dict[str, int] = {}
        for st in statuses:
            counts[st] = counts.get(st, 0) + 1
        res["counts"] = counts
        res["n_read"] = len(statuses)
        res["startup_plus_list_s"] = (res["startup_s"] or 0) + res["list_s"]
        res["startup_plus_list_last50_s"] = (res["startup_s"] or 0) + res["list_last50_s"]
        res["read_only"] = s.read_only
    finally:
        _finish(s, tmp_root, res, None, ray_started=False)
    if res.get("n_read") != n_jobs:
        res["error"] = f"read {res.get('n_read')} jobs, expected {n_jobs}"
    return res


def select_by_status(n_jobs: int, repo_dir: str, tmp_root: str) -> dict:
    """(c) Over the repository of (b): select the failed jobs, then the
    completed ones.

    Headline key: ``select_s`` (both selections); ``n_failed``,
    ``n_completed``. Ganga: c_select.py.
    """
    _prepare_env(tmp_root)
    from ganga_like.engine.core import Engine

    res: dict = {"scenario": "c", "n": n_jobs}
    t_open = _now()
    s = Engine(_config(repo_dir))
    res["open_s"] = _now() - t_open
    res["startup_s"] = _since_process_start()
    try:
        t0 = _now()
        failed = s.jobs.select(status="failed")
        t1 = _now()
        completed = s.jobs.select(status="completed")
        t2 = _now()
        res.update(select_s=t2 - t0, select_failed_s=t1 - t0, select_completed_s=t2 - t1,
                   n_failed=len(failed), n_completed=len(completed), n_jobs_seen=len(s.jobs))
    finally:
        _finish(s, tmp_root, res, None, ray_started=False)
    if res.get("n_failed") != n_jobs // 10 * 2 and n_jobs % 10 == 0:
        res["error"] = f"selected {res.get('n_failed')} failed, expected {n_jobs // 10 * 2}"
    return res


# ---------------------------------------------------------------- (d)

def kill_running(n: int, tmp_root: str, immediately: bool = False,
                 after_s: float | None = None) -> dict:
    """(d) Submit n subjobs of `/bin/sleep 60`, wait until all are running
    (or, with immediately=True, kill right after submit returns; with
    after_s, kill that many seconds after submit returns), kill the job,
    and watch the process table until every payload and helper process
    is gone.

    Headline key: ``all_gone_s`` (kill called -> no process left).
    Also: ``kill_call_s``, ``leaked_processes`` (still there 3 s later).
    Ganga: d_kill.py.

    Ours: ``Local(concurrency=n)`` (non-default, as Ganga's batchsize=n) so
    that all n run at once. A process "of the run" is one whose environment
    carries our repository's ``GANGA_LIKE_MARKER`` prefix, or whose command
    line or working directory lies in the session's directory (tmp_root/gl:
    wrappers and payloads), as the Ganga script looks for its own.
    """
    import psutil

    mode = "immediate" if immediately else (f"after={after_s:g}" if after_s else "running")
    s = _open_session(tmp_root)
    prefix = s.repo_uuid + ":"
    gl_root = os.path.join(tmp_root, "gl")
    res: dict = {"scenario": "d", "n": n, "mode": mode,
                 "backend": f"Local(concurrency={n}) (non-default, as Ganga's batchsize={n})",
                 "excluded_from_headline": "ray_start_s (once per session)"}

    def ours() -> list:
        procs = {pid: None for pid, _ct, _m in _marker_processes(prefix)}
        for p in _processes_in(gl_root):
            procs[p.pid] = p
        out = []
        for pid, p in procs.items():
            try:
                p = p or psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.Error:
                continue
        return out

    def payloads(procs: list) -> list:
        out = []
        for p in procs:
            try:
                if p.name() == "sleep":
                    out.append(p)
            except psutil.Error:
                pass
        return out

    try:
        res["ray_start_s"] = _start_ray()
        job = _true_job(n, concurrency=n, exe="/bin/sleep", args=[["60"] for _ in range(n)],
                        name="bench-kill")
        t_sub = _now()
        s.submit(job)
        t_submitted = _now()
        res["submit_s"] = t_submitted - t_sub
        all_running = None
        if mode == "running":
            deadline = _now() + 180
            while True:
                s.refresh()
                if job.subjob_counts.get("running", 0) == n:
                    all_running = True
                    break
                if _now() > deadline:
                    all_running = False
                    break
                time.sleep(0.01)
        elif after_s:
            time.sleep(after_s)
        t_ready = _now()
        s.refresh()
        res["wait_running_s"] = t_ready - t_submitted
        res["all_running"] = all_running
        res["counts_before_kill"] = job.subjob_counts
        before = ours()
        res["processes_before_kill"] = len(before)
        res["payloads_before_kill"] = len(payloads(before))

        t0 = _now()
        try:
            s.kill(job)
            res["kill_error"] = None
        except Exception as exc:  # KillNotConfirmed etc.: reported
            res["kill_error"] = f"{type(exc).__name__}: {exc}"[:500]
        t_killed = _now()
        res["kill_call_s"] = t_killed - t0
        gone = False
        deadline = t0 + 20.0
        while True:
            if not ours():
                gone = True
                break
            if _now() > deadline:
                break
            time.sleep(0.01)
        t_gone = _now()
        res["all_gone_s"] = (t_gone - t0) if gone else None
        time.sleep(3.0)  # a late starter counts as a leak
        leaked = ours()
        res["leaked_processes"] = len(leaked)
        res["leaked_payloads"] = len(payloads(leaked))
        res["grace_s"] = 20.0
        if leaked:
            ex = []
            for p in leaked[:5]:
                try:
                    ex.append(" ".join(p.cmdline())[:120])
                except psutil.Error:
                    pass
            res["leak_examples"] = ex
            _kill_all(leaked)
        s.refresh()
        res["counts_after_kill"] = job.subjob_counts
        res["master_status"] = job.status.value
        res.update(_monitor_stats(s))
    finally:
        _finish(s, tmp_root, res, prefix)
    return res


# ---------------------------------------------------------------- (e)

def resubmit_failed(n: int, tmp_root: str) -> dict:
    """(e) n subjobs of /bin/sh that fail the first time and succeed the
    second (a marker file each); wait until all failed, resubmit the failed
    ones, wait until all completed.

    Headline key: ``resubmit_to_all_completed_s``. Ganga: e_resubmit.py.

    Ours: Local() with its default concurrency (2 here; Ganga: batchsize=32).
    """
    s = _open_session(tmp_root)
    prefix = s.repo_uuid + ":"
    markers = os.path.join(tmp_root, "markers")
    os.makedirs(markers, exist_ok=True)
    prog = 'if [ -e "$1" ]; then exit 0; fi; : > "$1"; exit 1'
    args = [["-c", prog, "sh", os.path.join(markers, f"m{i}")] for i in range(n)]
    res: dict = {"scenario": "e", "n": n, "backend": "Local() default concurrency",
                 "concurrency": os.cpu_count(),
                 "excluded_from_headline": "ray_start_s (once per session)"}
    try:
        res["ray_start_s"] = _start_ray()
        job = _true_job(n, exe="/bin/sh", args=args, name="bench-resubmit")
        t_first = _now()
        s.submit(job)
        ok_failed, counts_failed = _wait_counts(s, job, "failed", n, 600)
        t_failed = _now()
        res.update(first_round_s=t_failed - t_first, all_failed=ok_failed,
                   counts_after_first=counts_failed, master_before_resubmit=job.status.value)
        t0 = _now()
        s.resubmit(job)
        t_resubmitted = _now()
        ok, counts = _wait_counts(s, job, "completed", n, 600)
        t_done = _now()
        res.update(resubmit_call_s=t_resubmitted - t0, resubmit_to_all_completed_s=t_done - t0,
                   ok=ok, counts=counts, master_status=job.status.value)
        res.update(_monitor_stats(s))
    finally:
        _finish(s, tmp_root, res, prefix)
    if not res.get("ok"):
        res["error"] = f"not all completed after resubmit: {res.get('counts')}"
    return res


# ---------------------------------------------------------------- (f)

def disk_per_subjob(n: int, tmp_root: str) -> dict:
    """(f) Bytes on disk per subjob after n /bin/true subjobs completed
    (repository + per-subjob files, allocated blocks, minus an empty
    session's).

    Headline key: ``bytes_per_subjob``; also ``files_per_subjob``.
    Ganga: f_disk.py.

    Ours: everything under the session's root (tmp_root/gl): the repository
    (jobs.fs and its index/lock files; the FileStorage is never packed, so
    every status change of every subjob stays in it), the workspace (one
    directory per subjob: ``status``, ``output/stdout``, ``output/stderr``)
    and the queue log. Measured as soon as all are completed (as Ganga's),
    and again after the session closed (``after_close_*``).
    """
    s = _open_session(tmp_root)
    prefix = s.repo_uuid + ":"
    root = os.path.join(tmp_root, "gl")
    res: dict = {"scenario": "f", "n": n, "backend": "Local() default concurrency",
                 "excluded_from_headline": "ray_start_s (once per session)"}
    try:
        res["ray_start_s"] = _start_ray()
        base_alloc, base_apparent, base_files = _tree_usage(root)
        r = _run_true(s, n)
        r.pop("job")
        res.update(ok=r["ok"], counts=r["counts"],
                   submit_to_all_completed_s=r["submit_to_all_completed_s"])
        alloc, apparent, files = _tree_usage(root)
        res.update(bytes_total=alloc - base_alloc, apparent_bytes_total=apparent - base_apparent,
                   files_total=files - base_files,
                   bytes_per_subjob=(alloc - base_alloc) / n,
                   apparent_bytes_per_subjob=(apparent - base_apparent) / n,
                   files_per_subjob=(files - base_files) / n)
        parts = {}
        for part in sorted(os.listdir(root)):
            a, ap, f = _tree_usage(os.path.join(root, part))
            st = os.lstat(os.path.join(root, part))
            if not os.path.isdir(os.path.join(root, part)):
                a, ap, f = st.st_blocks * 512, st.st_size, 1
            parts[part] = {"bytes": a, "apparent_bytes": ap, "files": f}
        res["parts"] = parts
        res["base_bytes"] = base_alloc
        # As with a service that stays up: its actor tidies once the burst is over
        # (trace.py); an actor closed at once tidies for CLOSE_TIDY_BUDGET only.
        res["tidy_wait_s"] = _wait_tidied(os.path.join(root, "workspace"))
        s.close()
        alloc2, apparent2, files2 = _tree_usage(root)
        res.update(after_close_bytes_per_subjob=(alloc2 - base_alloc) / n,
                   after_close_files_per_subjob=(files2 - base_files) / n)
        res.update(_after_pack(root, n))
    finally:
        _finish(s, tmp_root, res, prefix)
    return res


def _wait_tidied(workspace: str, timeout: float = 600.0) -> float:
    """Wait until the workspace's entries stop changing (the actor's tidying is over);
    the seconds waited."""
    from ganga_like.backends.runtime.trace import TIDY_QUIET

    t0 = _now()
    time.sleep(2 * TIDY_QUIET)
    entries, deadline = -1, t0 + timeout
    while _now() < deadline:
        now = sum(len(names) for _, names, _ in os.walk(workspace))
        if now == entries:
            break
        entries = now
        time.sleep(2 * TIDY_QUIET)
    return _now() - t0


def _after_pack(root: str, n: int) -> dict:
    """The database and the workspace per subjob once the database is packed (the
    service's own pack: ``repository/pack.py``) and the subjobs that wrote nothing are
    tidied away (the actor does it beside its watcher: waited for here), in allocated
    blocks (du's measure). The queue log is outside both (``parts``)."""
    from ganga_like.repository.pack import pack_file

    workspace = os.path.join(root, "workspace")
    _wait_tidied(workspace)
    path = os.path.join(root, "repository", "jobs.fs")
    t0 = _now()
    before, after = pack_file(path)
    took = _now() - t0
    db = sum(_tree_usage(os.path.join(root, "repository"))[:1])
    ws = _tree_usage(workspace)[0]
    return {"pack_s": took, "jobs_fs_before_pack": before, "jobs_fs_after_pack": after,
            "db_bytes_per_subjob_after_pack": db / n, "workspace_bytes_per_subjob": ws / n,
            "bytes_per_subjob_after_pack": (db + ws) / n}


# ---------------------------------------------------------------- (g)

class _RaySampler:
    """Samples the summed RSS (and PSS, less often) of Ray's processes."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_count = 0
        self.peak_detail: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self, with_pss: bool) -> None:
        import psutil

        total_rss = total_pss = 0
        detail = []
        procs = _ray_processes()
        for p in procs:
            try:
                if with_pss:
                    mi = p.memory_full_info()
                    total_pss += mi.pss
                else:
                    mi = p.memory_info()
                total_rss += mi.rss
                detail.append((p.name(), mi.rss))
            except psutil.Error:
                continue
        if total_rss > self.peak_rss:
            self.peak_rss = total_rss
            self.peak_count = len(procs)
            self.peak_detail = sorted(detail, key=lambda x: -x[1])
        if with_pss and total_pss > self.peak_pss:
            self.peak_pss = total_pss

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(self.interval):
            self.sample(with_pss=(i % 5 == 0))
            i += 1

    def start(self) -> None:
        self.sample(with_pss=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample(with_pss=True)


def peak_memory(n: int, tmp_root: str) -> dict:
    """(g) Peak RSS of a session that submits n /bin/true subjobs and follows
    them to `completed` (every process of ours that the session needs, e.g. a
    daemon, should be added in).

    Headline key: ``peak_rss_bytes``. Ganga: g_memory.py.

    Ours: the headline is the driver's peak RSS (VmHWM) PLUS the peak of the
    summed RSS of the Ray processes started for the session (GCS, raylet,
    workers including the Local actor's; sampled every 0.1 s): RSS summed over
    processes counts their shared pages more than once, so this is an upper
    bound. Also: ``driver_peak_rss_bytes`` alone, ``ray_peak_rss_bytes``,
    ``ray_peak_pss_bytes`` (proportional set size: shared pages split, the
    fairest total), the number of Ray processes.
    """
    s = _open_session(tmp_root)
    prefix = s.repo_uuid + ":"
    res: dict = {"scenario": "g", "n": n, "backend": "Local() default concurrency",
                 "excluded_from_headline": "nothing: Ray's processes are added in"}
    sampler = None
    try:
        res["rss_after_startup_bytes"] = _vmrss()
        res["ray_start_s"] = _start_ray()
        res["driver_rss_after_ray_start_bytes"] = _vmrss()
        sampler = _RaySampler()
        sampler.start()
        r = _run_true(s, n)
        r.pop("job")
        res.update(ok=r["ok"], counts=r["counts"],
                   submit_to_all_completed_s=r["submit_to_all_completed_s"])
        sampler.stop()
        driver = _vmhwm() or 0
        res.update(driver_peak_rss_bytes=driver, ray_peak_rss_bytes=sampler.peak_rss,
                   ray_peak_pss_bytes=sampler.peak_pss, ray_processes=sampler.peak_count,
                   ray_processes_at_peak=[f"{name}:{rss // 2**20}MiB"
                                          for name, rss in sampler.peak_detail],
                   peak_rss_bytes=driver + sampler.peak_rss,
                   peak_rss_driver_plus_ray_pss_bytes=driver + sampler.peak_pss)
    finally:
        if sampler is not None and not sampler._stop.is_set():
            sampler.stop()
        _finish(s, tmp_root, res, prefix)
    return res


# ---------------------------------------------------------------- (h)

def exit_to_completed_latency(k: int, tmp_root: str) -> dict:
    """(h) k subjobs of /bin/sh that sleep 1 s + i/k s, write their time of
    day (`date +%s.%N`) and exit; read each subjob's status every 20 ms and
    record when it first reads `completed`.

    Headline key: ``latency_median_s``; also ``latency_max_s``.
    Ganga: h_latency.py.

    Ours: ``Local(concurrency=k)`` (non-default, as Ganga's batchsize=k) so
    that all run at once; the main thread (the session's) calls
    ``s.refresh()`` then reads every subjob's status, every 20 ms.
    """
    s = _open_session(tmp_root)
    prefix = s.repo_uuid + ":"
    stamps = os.path.join(tmp_root, "stamps")
    os.makedirs(stamps, exist_ok=True)
    prog = '/bin/sleep "$1"; /bin/date +%s.%N > "$2"'
    args = [["-c", prog, "sh", f"{1.0 + i * 1.0 / k:.3f}", os.path.join(stamps, f"s{i}")]
            for i in range(k)]
    res: dict = {"scenario": "h", "k": k,
                 "backend": f"Local(concurrency={k}) (non-default, as Ganga's batchsize={k})",
                 "excluded_from_headline": "ray_start_s (once per session)"}
    try:
        res["ray_start_s"] = _start_ray()
        job = _true_job(k, concurrency=k, exe="/bin/sh", args=args, name="bench-latency")
        s.submit(job)
        seen: dict[int, tuple[float, str]] = {}
        deadline = _now() + 300
        while len(seen) < k and _now() < deadline:
            s.refresh()
            for sj in job.subjobs:
                if sj.id not in seen:
                    st = sj.status.value
                    if st in ("completed", "failed"):
                        seen[sj.id] = (time.time(), st)
            time.sleep(0.02)
        lat = []
        for i in range(k):
            try:
                with open(os.path.join(stamps, f"s{i}")) as f:
                    t_exit = float(f.read().strip())
            except (OSError, ValueError):
                continue
            if i in seen:
                lat.append(seen[i][0] - t_exit)
        res.update(measured=len(lat), statuses=sorted({st for _, st in seen.values()}),
                   latency_median_s=statistics.median(lat) if lat else None,
                   latency_min_s=min(lat) if lat else None,
                   latency_max_s=max(lat) if lat else None,
                   latencies_s=[round(x, 4) for x in lat])
        res.update(_monitor_stats(s))
    finally:
        _finish(s, tmp_root, res, prefix)
    if res.get("measured") != k:
        res["error"] = f"measured {res.get('measured')} of {k}"
    return res


# ---------------------------------------------------------------- (i), (j), (k): the service
#
# These scenarios measure what a user runs from the shell: every process is a
# client of the root's service (ganga_like/service/), forked and timed here from
# fork to exit (os.wait4, as bench/ganga_env.run_script times `ganga`). The
# function's own process only forks, times and measures: it opens no session.
# The root (GANGA_LIKE_DIR), RAY_TMPDIR (in which the service makes its gls-*
# directory) and every client's working directory are under tmp_root; the
# service started by the first client is stopped with `ganga-like service stop`
# at the end, and its whole process tree (Ray included) is checked to be gone.

_SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ours_scripts")
_PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# variables that would point a client at another root or service
_FOREIGN_VARS = ("GANGA_LIKE_MARKER", "GANGA_LIKE_SERVICE", "GANGA_LIKE_SECRET",
                 "GANGA_LIKE_REPOSITORY", "GANGA_LIKE_READ_ONLY", "GANGA_LIKE_MODE")


PRODUCT_TREE_VAR = "BENCH_PRODUCT_TREE"  # another checkout's ganga_like to measure (memory_against)


def _service_env(tmp_root: str) -> dict[str, str]:
    """The environment of every client of a service scenario: the root in tmp_root/gl,
    RAY_TMPDIR tmp_root/r (short: the service adds gls-XXXXXXXX, Ray its session
    directory, and the socket paths must stay under ≈107 bytes), Ray's environment
    as users have it, no idle stop (the function stops the
    service itself), and PYTHONPATH led by this tree, so that the clients, the
    service and its Ray workers import the ganga_like next to this bench/ (an
    exported tree measures that tree, not the editable install's), or by the
    checkout that ``BENCH_PRODUCT_TREE`` names (``bench.memory_against``)."""
    ray_dir = os.path.join(tmp_root, "r")
    os.makedirs(ray_dir, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_VARS}
    env.update(GANGA_LIKE_DIR=os.path.join(tmp_root, "gl"), RAY_TMPDIR=ray_dir,
               GANGA_LIKE_IDLE="0",
               PYTHONPATH=os.pathsep.join(x for x in (os.environ.get(PRODUCT_TREE_VAR, _PROJECT),
                                                      os.environ.get("PYTHONPATH")) if x))
    return env


def _service_paths(env: dict[str, str]):
    from ganga_like.channel.paths import ServicePaths

    return ServicePaths(env["GANGA_LIKE_DIR"])


def _ganga_like(*args: str) -> list[str]:
    """The `ganga-like` command of this venv."""
    return [os.path.join(os.path.dirname(sys.executable), "ganga-like"), *args]


def _timed(cmd: list[str], env: dict[str, str], cwd: str, timeout: float = 300.0) -> dict:
    """Run cmd, timed from fork to exit; its stdout, exit code, peak RSS (wait4).

    A ``BENCH_RESULT {json}`` line in its stdout is merged into the result."""
    import subprocess
    import tempfile

    with tempfile.TemporaryFile(mode="w+", dir=cwd) as out:
        t0 = _now()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=sys.stderr,
                                env=env, cwd=cwd)
        deadline = t0 + timeout
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if _now() > deadline:
                proc.kill()
                pid, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = _now() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    res: dict = {"wall_s": wall, "returncode": proc.returncode,
                 "outer_maxrss_bytes": rusage.ru_maxrss * 1024,
                 "stdout_tail": text[-500:]}
    for line in text.splitlines():
        if line.startswith("BENCH_RESULT "):
            res.update(json.loads(line[len("BENCH_RESULT "):]))
            res.pop("stdout_tail")
    return res


def _service_tree(paths) -> list:
    """The service process and all its descendants (Ray's head processes, raylet, workers)."""
    import psutil

    pid = paths.holder_pid()
    if not pid:
        return []
    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.Error:
        return []


def _service_memory(paths) -> dict:
    """RSS (and PSS: shared pages split) of the service process and of its process tree."""
    import psutil

    procs = _service_tree(paths)
    out: dict = {"service_pid": procs[0].pid if procs else None, "service_processes": len(procs)}
    rss = pss = own = 0
    detail = []
    for i, p in enumerate(procs):
        try:
            mi = p.memory_full_info()
            name = p.name()
        except psutil.Error:
            continue
        rss += mi.rss
        pss += mi.pss
        if i == 0:
            own = mi.rss
        detail.append(f"{name}:{mi.rss // 2**20}MiB")
    out.update(service_rss_bytes=own, service_tree_rss_bytes=rss,
               service_tree_pss_bytes=pss, service_ray_rss_bytes=rss - own,
               service_tree=sorted(detail, key=lambda d: -int(d.rsplit(":", 1)[1][:-3])))
    return out


def _stop_service(env: dict[str, str], tmp_root: str, result: dict,
                  prefix: str | None = None) -> dict:
    """`ganga-like service stop` for this root (timed), then check that the service's
    tree, the subjobs (by marker) and anything under tmp_root are gone; kill and
    report what is left (``leftover_*``), and empty tmp_root."""
    import psutil

    paths = _service_paths(env)
    tree = _service_tree(paths)
    result["service_processes_before_stop"] = len(tree)
    if tree:
        r = _timed(_ganga_like("service", "stop"), env, tmp_root, timeout=120)
        result["service_stop_s"] = r["wall_s"]
        if r["returncode"] != 0:
            result["service_stop_error"] = f"rc={r['returncode']}: {r.get('stdout_tail', '')}"
    deadline = _now() + 10.0
    while True:
        left = {}
        for p in tree:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    left[p.pid] = p
            except psutil.Error:
                pass
        if prefix:
            for pid, _ct, _m in _marker_processes(prefix):
                try:
                    left.setdefault(pid, psutil.Process(pid))
                except psutil.Error:
                    pass
        for p in _processes_in(tmp_root):
            left.setdefault(p.pid, p)
        if not left or _now() > deadline:
            break
        time.sleep(0.05)
    result["leftover_processes_at_end"] = len(left)
    if left:
        desc = []
        for p in list(left.values())[:5]:
            try:
                desc.append(" ".join(p.cmdline())[:150] or p.name())
            except psutil.Error:
                pass
        result["leftover_examples"] = desc
        _kill_all(list(left.values()))
    if result.get("error") or result.get("service_stop_error"):
        try:
            with open(paths.log, errors="replace") as f:
                result["service_log_tail"] = f.read()[-2000:]
        except OSError:
            pass
    _empty(tmp_root)
    return result


def _script_run(env: dict[str, str], tmp_root: str, n: int) -> dict:
    """One `ganga-like run i_script_echo.py n`, from fork to exit (``script_wall_s``)."""
    r = _timed(_ganga_like("run", os.path.join(_SCRIPTS, "i_script_echo.py"), str(n)),
               env, tmp_root)
    r["script_wall_s"] = r.pop("wall_s")
    if r["returncode"] != 0 or r.get("status") != "completed":
        r["error"] = f"script rc={r['returncode']}, status {r.get('status')}"
    return r


def script_cold_then_warm(n: int, tmp_root: str) -> dict:
    """(i), (i'), (k), (k') A user's script of n subjobs of /bin/echo (an
    ArgSplitter of n args; submit; j.wait()), run twice from the shell as
    ``ganga-like run bench/ours_scripts/i_script_echo.py n``: first with no
    service for the root (the script starts it: cold), then again (the service
    the first run started is up: warm).

    Headline key: ``script_wall_s`` (fork to exit of the script's process), at
    the top level for the cold run and in ``warm`` for the second. Also
    ``peak_rss_bytes`` of each script process (its VmHWM at the script's end,
    as the Ganga script reports; ``outer_maxrss_bytes`` from wait4), and in
    ``after_run`` the memory of the service and its Ray processes once both
    runs are over: ``total_rss_bytes`` = the warm client's peak + the summed
    RSS of the service's process tree. Ganga: i_script_echo.py (one `ganga`
    process per run: Ganga has no service, each run is the same).

    Ours: Local() with its default concurrency (the CPU count, 2 here).
    Nothing is excluded: Ray's start is inside the cold run.
    """
    env = _service_env(tmp_root)
    paths = _service_paths(env)
    from ganga_like.client.autostart import service_alive

    res: dict = {"scenario": "i", "n": n, "backend": "Local() default concurrency",
                 "client": "ganga-like run", "excluded_from_headline": "nothing"}
    try:
        res["service_running_before_cold_run"] = service_alive(paths)
        # Ray's own start-up, in the same run: the cold script's bar (issue 22: at most
        # this plus 0.5 s).
        res["ray_init_alone"] = _ray_init_alone(tmp_root)
        cold = _script_run(env, tmp_root, n)
        res.update(cold)
        res["service_running_after_cold_run"] = service_alive(paths)
        res["warm"] = _script_run(env, tmp_root, n)
        if res["warm"].get("error"):
            res["error"] = "warm run: " + res["warm"]["error"]
        mem = _service_memory(paths)
        peak = res["warm"].get("peak_rss_bytes") or 0
        mem["client_peak_rss_bytes"] = peak
        mem["total_rss_bytes"] = peak + mem["service_tree_rss_bytes"]
        mem["total_rss_client_plus_tree_pss_bytes"] = peak + mem["service_tree_pss_bytes"]
        res["after_run"] = mem
    finally:
        _stop_service(env, tmp_root, res)
    if res["service_running_before_cold_run"]:
        res["error"] = "a service was already running before the cold run"
    return res


RAY_INIT_ALONE = """
import json, os, sys, time
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import ray
ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
with open(f"/proc/{os.getpid()}/stat") as f:
    start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
with open("/proc/uptime") as f:
    since_fork = float(f.read().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")
print("BENCH_RESULT " + json.dumps({"ray_init_since_fork_s": since_fork}), flush=True)
ray.shutdown()
"""


def _ray_init_alone(tmp_root: str) -> dict:
    """Ray's own start-up on this machine: a fresh ``python`` that imports Ray and calls
    ``ray.init(num_cpus=2, include_dashboard=False)``, from fork to ``ray.init``
    returned (its shutdown is not counted). ``/proc`` ticks: 10 ms resolution."""
    env = {**_service_env(tmp_root), "RAY_TMPDIR": os.path.join(tmp_root, "ri")}
    os.makedirs(env["RAY_TMPDIR"], exist_ok=True)
    r = _timed([sys.executable, "-c", RAY_INIT_ALONE], env, tmp_root)
    return {"ray_init_since_fork_s": r.get("ray_init_since_fork_s"),
            "wall_with_shutdown_s": r["wall_s"], "returncode": r["returncode"]}


def service_memory(n: int, tmp_root: str, repo_dir: str | None = None, n_jobs: int = 0,
                   settle: float = 3.0) -> dict:
    """(k'') Memory of the service and of every Ray process it started, as PSS (shared
    pages split between the processes that map them: the fair total), after a client's
    script of n subjobs of /bin/true (``ganga-like run k_script_true.py n``) on a root
    that already holds the prepared repository (``repo_dir``: 10,000 jobs); and that
    client's own PSS at its end.

    Headline key: ``service_pss_bytes`` (the service, its guardian, the GCS, the raylet,
    Ray's agents and workers: the service's process tree, ``settle`` s after the run, once
    Ray has ended its idle workers). Also ``client_pss_bytes``, the per-process table
    (``service_tree``) and ``stored_jobs`` (``n_jobs``, the prepared repository's).
    Ganga: no service; its session's peak is (g).
    """
    env = _service_env(tmp_root)
    if repo_dir:
        env["GANGA_LIKE_DIR"] = repo_dir
    paths = _service_paths(env)
    res: dict = {"scenario": "k''", "n": n, "client": "ganga-like run", "stored_jobs": n_jobs}
    try:
        r = _timed(_ganga_like("run", os.path.join(_SCRIPTS, "k_script_true.py"), str(n)),
                   env, tmp_root, timeout=900)
        res.update(r)
        if r["returncode"] != 0 or r.get("status") != "completed":
            res["error"] = f"script rc={r['returncode']}, status {r.get('status')}"
        time.sleep(settle)
        mem = _service_memory(paths)
        res.update(mem, service_pss_bytes=mem["service_tree_pss_bytes"])
    finally:
        _stop_service(env, tmp_root, res)
    return res


class _Lines:
    """The lines a child prints, read by a thread, so that each can be awaited with a timeout."""

    def __init__(self, stream) -> None:
        import queue

        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def get(self, timeout: float) -> str:
        line = self._q.get(timeout=timeout)
        if line is None:
            raise EOFError("the child closed its output")
        return line


def kill_from_cli(tmp_root: str) -> dict:
    """(j), (j') ``ganga-like kill <id>`` of a running job (`/bin/sleep 60`)
    while another client is connected: bench/ours_scripts/j_holder.py, a
    Python process holding the GPI open, which submitted the job (starting
    the service) and waits on its stdin.

    Headline key: ``kill_command_wall_s`` (fork to exit of `ganga-like kill`);
    ``payload_gone_at_exit`` (no process of the job left when the command
    exits) and ``holder_sees`` (the job's status as the other client reads it
    afterwards). Ganga has no such command: a second Ganga session cannot
    write the jobs the first one holds.

    Then, for reference, the in-session kill (``in_session``, headline
    ``all_gone_s``: j.kill() called in the holder -> no process of the job left;
    also ``kill_call_s``) of a second running `/bin/sleep 60` job, as Ganga's
    d_kill.py does with one subjob.
    """
    import subprocess

    import psutil

    env = _service_env(tmp_root)
    res: dict = {"scenario": "j", "backend": "Local() default concurrency",
                 "client": "ganga-like kill", "other_client": "python j_holder.py (GPI)"}
    prefix = None
    holder = subprocess.Popen([sys.executable, os.path.join(_SCRIPTS, "j_holder.py")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr,
                              env=env, cwd=tmp_root, text=True)
    try:
        lines = _Lines(holder.stdout)
        t0 = _now()
        ready = json.loads(lines.get(timeout=240).split(" ", 1)[1])
        res["holder_ready_s"] = _now() - t0  # service start (cold) + submit + running
        prefix = ready["repo_uuid"] + ":"
        res["fqid"], res["status_before_kill"] = ready["fqid"], ready["status"]
        before = [psutil.Process(pid) for pid, _ct, _m in _marker_processes(prefix)]
        res["processes_before_kill"] = len(before)
        r = _timed(_ganga_like("kill", ready["fqid"]), env, tmp_root, timeout=120)
        t_exit = _now()
        alive = [p for p in before if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        res.update(kill_command_wall_s=r["wall_s"], kill_command_rc=r["returncode"],
                   kill_command_output=r.get("stdout_tail", "").strip()[-200:],
                   kill_command_maxrss_bytes=r["outer_maxrss_bytes"],
                   payload_gone_at_exit=not alive and bool(before),
                   processes_alive_at_exit=len(alive))
        while alive and _now() - t_exit < 10:
            time.sleep(0.01)
            alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        res["processes_alive_10s_after_exit"] = len(alive)
        holder.stdin.write(f"status {ready['fqid']}\n")
        holder.stdin.flush()
        res["holder_sees"] = json.loads(lines.get(timeout=60))["status"]
        holder.stdin.write("kill_in_session\n")
        holder.stdin.flush()
        res["in_session"] = json.loads(lines.get(timeout=240))
        if r["returncode"] != 0 or not res["payload_gone_at_exit"]:
            res["error"] = (f"ganga-like kill rc={r['returncode']}, "
                            f"{len(before)} processes before, {res['processes_alive_at_exit']} "
                            f"alive at its exit")
    finally:
        try:
            holder.stdin.close()
            holder.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            holder.kill()
            holder.wait()
        res["holder_rc"] = holder.returncode
        _stop_service(env, tmp_root, res, prefix)
    return res


# The rows whose functions live in modules of their own: the web view's (w, w'),
# bench/ours_web.py; one pure Hosts scheduler round (s), bench/hosts_round.py.
from bench.hosts_round import scheduler_round as hosts_scheduler_round  # noqa: E402,F401
from bench.ours_web import web_live_cpu, web_pages  # noqa: E402,F401
