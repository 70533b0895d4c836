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

Until a function is written it raises NotImplementedError, which the runner
shows as "not yet measured" while still printing Ganga's and the limits'
figures.
"""

from __future__ import annotations

_NOTE = "ganga_like side not plugged in yet (bench/ours.py)"


def submit_and_complete(n: int, tmp_root: str) -> dict:
    """(a) Submit one job of n subjobs of /bin/true (Local backend) and wait
    until every subjob is `completed`.

    Headline key: ``submit_to_all_completed_s`` (just before submit -> every
    subjob reads `completed`). Also useful: ``submit_s``.
    Ganga: a_submit_complete.py.
    """
    raise NotImplementedError(_NOTE)


def list_repository(n_jobs: int, repo_dir: str, tmp_root: str) -> dict:
    """(b) Start a session on a repository of n_jobs jobs and list it (the
    table a user sees), then read every job's status.

    ``repo_dir`` is where the runner keeps our prepared repository of n_jobs
    jobs (built once by ``prepare_repository`` and copied for each run).
    Headline: the runner's ``outer_wall_s`` (process start to exit, as for
    Ganga). Report ``startup_s``, ``list_s``, ``read_status_s`` too.
    Ganga: b_list.py.
    """
    raise NotImplementedError(_NOTE)


def prepare_repository(n_jobs: int, repo_dir: str) -> dict:
    """Build, once, a repository of n_jobs jobs for (b) and (c) in repo_dir:
    70 % completed, 20 % failed, 10 % new, like the Ganga one
    (bench/ganga_scenarios/prepare_repo.py)."""
    raise NotImplementedError(_NOTE)


def select_by_status(n_jobs: int, repo_dir: str, tmp_root: str) -> dict:
    """(c) Over the repository of (b): select the failed jobs, then the
    completed ones.

    Headline key: ``select_s`` (both selections); ``n_failed``,
    ``n_completed``. Ganga: c_select.py.
    """
    raise NotImplementedError(_NOTE)


def kill_running(n: int, tmp_root: str, immediately: bool = False,
                 after_s: float | None = None) -> dict:
    """(d) Submit n subjobs of `/bin/sleep 60`, wait until all are running
    (or, with immediately=True, kill right after submit returns; with
    after_s, kill that many seconds after submit returns), kill the job, and watch the process table until every payload and helper process
    is gone.

    Headline key: ``all_gone_s`` (kill called -> no process left).
    Also: ``kill_call_s``, ``leaked_processes`` (still there 3 s later).
    Ganga: d_kill.py.
    """
    raise NotImplementedError(_NOTE)


def resubmit_failed(n: int, tmp_root: str) -> dict:
    """(e) n subjobs of /bin/sh that fail the first time and succeed the
    second (a marker file each); wait until all failed, resubmit the failed
    ones, wait until all completed.

    Headline key: ``resubmit_to_all_completed_s``. Ganga: e_resubmit.py.
    """
    raise NotImplementedError(_NOTE)


def disk_per_subjob(n: int, tmp_root: str) -> dict:
    """(f) Bytes on disk per subjob after n /bin/true subjobs completed
    (repository + per-subjob files, allocated blocks, minus an empty
    session's).

    Headline key: ``bytes_per_subjob``; also ``files_per_subjob``.
    Ganga: f_disk.py.
    """
    raise NotImplementedError(_NOTE)


def peak_memory(n: int, tmp_root: str) -> dict:
    """(g) Peak RSS of a session that submits n /bin/true subjobs and follows
    them to `completed` (every process of ours that the session needs, e.g. a
    daemon, should be added in).

    Headline key: ``peak_rss_bytes``. Ganga: g_memory.py.
    """
    raise NotImplementedError(_NOTE)


def exit_to_completed_latency(k: int, tmp_root: str) -> dict:
    """(h) k subjobs of /bin/sh that sleep 1 s + i/k s, write their time of
    day (`date +%s.%N`) and exit; read each subjob's status every 20 ms and
    record when it first reads `completed`.

    Headline key: ``latency_median_s``; also ``latency_max_s``.
    Ganga: h_latency.py.
    """
    raise NotImplementedError(_NOTE)
