"""The benchmark runner: Ganga vs ganga_like vs the machine's limits.

``python -m bench [--quick] [--reps N] [--only a,b] [--skip-ganga]``

For every repetition it measures the physical limits (bench/limits.py), then
runs each scenario once for Ganga and once for ganga_like, alternating which
goes first, each run in a fresh process (Ganga: ``ganga script.py`` in its
own temporary session directory; ours: ``python -m bench._run_ours``). It
prints medians, ratios (ours / Ganga) and our distance to the limit (ours /
limit), and writes bench/results/latest.json and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import ganga_env, trash

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = BENCH_DIR / ".cache"
RESULT_PREFIX = "BENCH_RESULT "


# ---------------------------------------------------------------- scenarios

@dataclass
class Row:
    key: str                      # e.g. "a100"
    letter: str                   # scenario letter, for --only
    label: str
    metric: str                   # headline key in both sides' dicts
    unit: str                     # "s", "bytes", "bytes_rss"
    ganga: tuple[str, list[str]] | None   # (script, args) or None
    ours: tuple[str, dict] | None          # (function, kwargs) or None
    limit: Callable[[dict], float | None] | None = None
    limit_note: str = ""
    repo_n: int | None = None     # needs the prepared repository of n jobs
    ganga_timeout: float = 900.0
    notes: list[str] = field(default_factory=list)
    # Ganga's gangarc: "tuned" (GANGA_SETTINGS) or "default" (no [PollThread] section)
    ganga_polling: str = "tuned"
    # Shown in the Ganga column when Ganga has nothing to compare (ganga is None)
    ganga_absent: str = ""
    # Rows whose figures come from another row's run in the same repetition (no run
    # of their own): the key of that row, and for ours the part of its result dict
    # (None: all of it). The source row must come first in the table.
    ganga_from: str | None = None
    ours_from: tuple[str, str | None] | None = None


def _g(lim: dict, *path, default=None):
    cur = lim
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return default
        cur = cur[p]
    return cur


# The (a) sizes whose submit() and slope are compared; 30,000 is run with --a-max-n of
# 30,000 or more (where a loaded machine cannot run 100,000: extrapolate from two points).
A_CURVE = (1000, 10000, 30000, 100000)


def build_rows(quick: bool, ganga_max_n: int, bs: int, a_max_n: int = 10000) -> list[Row]:
    rows: list[Row] = []
    a_ns = [10, 100] if quick else [n for n in (10, 100, *A_CURVE) if n <= a_max_n]
    for n in a_ns:
        rows.append(Row(
            key=f"a{n}", letter="a",
            label=f"(a) submit + complete {n:,} subjobs of /bin/true",
            metric="submit_to_all_completed_s", unit="s",
            ganga=("a_submit_complete.py", [str(n), str(bs), "1800"]) if n <= ganga_max_n else None,
            ours=("submit_and_complete", {"n": n}),
            limit=lambda L, n=n: _g(L, "spawn_2", "per_process_ms", default=None) and
            n * L["spawn_2"]["per_process_ms"] / 1e3,
            limit_note="N x (start+reap /bin/true, 2 at a time)",
            ganga_timeout=2400.0))
    for n in (n for n in a_ns if n in A_CURVE):  # the same runs: when submit() gave back
        rows.append(Row(
            key=f"a{n}s", letter="a", label=f"(a) submit() of {n:,} subjobs returns",
            metric="submit_s", unit="s", ganga=None, ours=None,
            ganga_absent="(in its submit + complete)", ours_from=(f"a{n}", None)))
    repo_ns = [1000] if quick else [1000, 10000]
    for n in repo_ns:
        rows.append(Row(
            key=f"b{n}", letter="b",
            label=f"(b) start a session and list {n:,} jobs",
            metric="outer_wall_s", unit="s",
            ganga=("b_list.py", []), ours=("list_repository", {"n_jobs": n}),
            limit=lambda L, n=n: _g(L, f"zodb_{n}", "reopen_read_all_s"),
            limit_note="ZODB: open a FileStorage, read N objects", repo_n=n))
    for n in repo_ns:
        rows.append(Row(
            key=f"c{n}", letter="c",
            label=f"(c) jobs.select by status over {n:,} jobs",
            metric="select_s", unit="s",
            ganga=("c_select.py", []), ours=("select_by_status", {"n_jobs": n}),
            limit=lambda L, n=n: _g(L, f"zodb_{n}", "reopen_read_all_s"),
            limit_note="ZODB: open + read N objects' status", repo_n=n))
    rows.append(Row(
        key="d100", letter="d", label="(d) kill 100 running subjobs, until every process is gone",
        metric="all_gone_s", unit="s",
        ganga=("d_kill.py", ["100", "running"]), ours=("kill_running", {"n": 100}),
        limit=lambda L: _g(L, "kill_100", "total_s"),
        limit_note="SIGKILL 100 process groups + reap"))
    rows.append(Row(
        key="d100i", letter="d", label="(d') kill 100 subjobs right after submit, until gone",
        metric="all_gone_s", unit="s",
        ganga=("d_kill.py", ["100", "immediate"]),
        ours=("kill_running", {"n": 100, "immediately": True}),
        limit=lambda L: _g(L, "kill_100", "total_s"),
        limit_note="SIGKILL 100 process groups + reap"))
    rows.append(Row(
        key="d100s", letter="d", label="(d'') kill 100 subjobs 1 s after submit, until gone",
        metric="all_gone_s", unit="s",
        ganga=("d_kill.py", ["100", "after=1"]),
        ours=("kill_running", {"n": 100, "after_s": 1.0}),
        limit=lambda L: _g(L, "kill_100", "total_s"),
        limit_note="SIGKILL 100 process groups + reap"))
    rows.append(Row(
        key="e100", letter="e", label="(e) resubmit 100 failed subjobs until done",
        metric="resubmit_to_all_completed_s", unit="s",
        ganga=("e_resubmit.py", ["100", str(bs)]), ours=("resubmit_failed", {"n": 100}),
        limit=lambda L: _g(L, "spawn_2", "per_process_ms") and
        100 * L["spawn_2"]["per_process_ms"] / 1e3,
        limit_note="100 x (start+reap, 2 at a time)"))
    fg_n = 100 if quick else 1000
    rows.append(Row(
        key=f"f{fg_n}", letter="f", label=f"(f) bytes on disk per subjob ({fg_n:,} subjobs)",
        metric="bytes_per_subjob", unit="bytes",
        ganga=("f_disk.py", [str(fg_n), str(bs)]), ours=("disk_per_subjob", {"n": fg_n}),
        limit=lambda L: _g(L, "zodb_1000", "bytes_per_object"),
        limit_note="ZODB: bytes per small object in an IOBTree"))
    # (p): the disk a subjob that writes nothing costs once the database is packed
    # (issue 22, point 4): database + workspace; Ganga at 100 (its own cost per subjob).
    p_ns = [100, 1000] if quick else [1000, 10000, 100000]
    for n in p_ns:
        rows.append(Row(
            key=f"p{n}", letter="p",
            label=f"(p) bytes per subjob after a pack, database + workspace ({n:,} subjobs of "
                  "/bin/true; Ganga: 100)",
            metric="bytes_per_subjob_after_pack", unit="bytes",
            ganga=("f_disk.py", ["100", str(bs)]) if n == p_ns[0] else None,
            ganga_from=None if n == p_ns[0] else f"p{p_ns[0]}",
            ours=("disk_per_subjob", {"n": n}),
            limit=lambda L: _g(L, "zodb_1000", "bytes_per_object"),
            limit_note="ZODB: bytes per small object in an IOBTree"))
    rows.append(Row(
        key=f"g{fg_n}", letter="g", label=f"(g) peak memory of the session ({fg_n:,} subjobs)",
        metric="peak_rss_bytes", unit="bytes",
        ganga=("g_memory.py", [str(fg_n), str(bs)]), ours=("peak_memory", {"n": fg_n}),
        limit=lambda L: _g(L, "python_rss", "peak_rss_bytes"),
        limit_note="peak RSS of `python3 -c pass`"))
    rows.append(Row(
        key="h20", letter="h", label="(h) latency, subjob exit -> `completed` (median of 20)",
        metric="latency_median_s", unit="s",
        ganga=("h_latency.py", ["20"]), ours=("exit_to_completed_latency", {"k": 20}),
        limit=lambda L: (_g(L, "exit_latency", "median_s") or 0) +
        (_g(L, "zodb_1000", "one_commit_median_s") or 0) or None,
        limit_note="child exit -> wait() returns, + one ZODB commit"))
    # (i), (j), (k): every ganga_like process is a client of the root's service,
    # timed from fork to exit (bench/ours.py: script_cold_then_warm, kill_from_cli)
    rows.append(Row(
        key="i10", letter="i",
        label="(i) script, 10 subjobs of /bin/echo, fork to exit: first run, service cold "
              "(Ganga tuned: polling 1 s, batchsize 32)",
        metric="script_wall_s", unit="s",
        ganga=("i_script_echo.py", ["10", str(bs)]), ours=("script_cold_then_warm", {"n": 10})))
    rows.append(Row(
        key="i10w", letter="i",
        label="(i') the same script, second run: service up (Ganga tuned: the same run as (i), "
              "it has no service)",
        metric="script_wall_s", unit="s", ganga=None, ours=None,
        ganga_from="i10", ours_from=("i10", "warm")))
    rows.append(Row(
        key="i10d", letter="i",
        label="(i'') the same script, Ganga with its defaults (runMonitoring(), Local polled "
              "every 10 s, batchsize = CPUs) vs ours with the service up",
        metric="script_wall_s", unit="s", ganga=("i_script_echo.py", ["10"]), ours=None,
        ganga_polling="default", ours_from=("i10", "warm")))
    rows.append(Row(
        key="j", letter="j",
        label="(j) `ganga-like kill <id>` of a running `sleep 60` job while another client "
              "holds the GPI open, fork to exit",
        metric="kill_command_wall_s", unit="s", ganga=None, ours=("kill_from_cli", {}),
        ganga_absent="no such command (a second Ganga session cannot write the first "
                     "one's jobs)"))
    rows.append(Row(
        key="j1", letter="j",
        label="(j') for reference: in-session `j.kill()` of one running `sleep 60` job, "
              "until its processes are gone",
        metric="all_gone_s", unit="s", ganga=("d_kill.py", ["1", "running"]), ours=None,
        ours_from=("j", "in_session")))
    rows.append(Row(
        key="k10", letter="k", label="(k) peak RSS of the script's process ((i'); Ganga: (i))",
        metric="peak_rss_bytes", unit="bytes", ganga=None, ours=None,
        ganga_from="i10", ours_from=("i10", "warm"),
        limit=lambda L: _g(L, "python_rss", "peak_rss_bytes"),
        limit_note="peak RSS of `python3 -c pass`"))
    rows.append(Row(
        key="k10t", letter="k",
        label="(k') script's peak + RSS of the service and its Ray processes after the run "
              "(Ganga: its session's peak, one process)",
        metric="total_rss_bytes", unit="bytes", ganga=None, ours=None,
        ganga_from="i10", ours_from=("i10", "after_run")))
    rows.append(Row(
        key="i10r", letter="i",
        label="(i) for reference: Ray's own start-up, `import ray; ray.init()` in a fresh "
              "process, fork to ray.init returned (same run; the cold script's bar is this "
              "+ 0.5 s)",
        metric="ray_init_since_fork_s", unit="s", ganga=None, ours=None,
        ours_from=("i10", "ray_init_alone"), ganga_absent="no Ray"))
    stored = 1000 if quick else 10000
    for n in (10, 1000):
        rows.append(Row(
            key=f"k{n}p", letter="k",
            label=f"(k'') PSS of the service and every Ray process it started, after a script "
                  f"of {n:,} subjobs of /bin/true, {stored:,} jobs stored (Ganga: no service; "
                  "its session's peak RSS is (g))",
            metric="service_pss_bytes", unit="bytes", ganga=None,
            ours=("service_memory", {"n": n, "n_jobs": stored}), repo_n=stored,
            ganga_absent="no service: see (g) and (k')"))
        rows.append(Row(
            key=f"k{n}c", letter="k",
            label=f"(k'') PSS of that script's process (a client) at its end, {n:,} subjobs, "
                  f"{stored:,} jobs stored",
            metric="client_pss_bytes", unit="bytes", ganga=None, ours=None,
            ours_from=(f"k{n}p", None), ganga_absent="see (k)"))
    web_jobs = 10000 if quick else 100000
    rows.append(Row(
        key="w", letter="w",
        label=f"(w) the web view's jobs list, first page, in a repository of {web_jobs:,} jobs "
              "(request to whole answer, loopback)",
        metric="jobs_page_s", unit="s", ganga=None,
        ours=("web_pages", {"n_jobs": web_jobs, "n_subjobs": web_jobs}),
        ganga_absent="no web view"))
    for key, metric, label in [
            ("w1", "job_page_s", f"(w) the web view's page of a job of {web_jobs:,} subjobs, "
                                 "first page"),
            ("w2", "failed_page_s", "(w) the same job's subjobs filtered by a status only its "
                                    "last 10 have (the read stops at its time budget)")]:
        rows.append(Row(key=key, letter="w", label=label, metric=metric, unit="s", ganga=None,
                        ours=None, ours_from=("w", None), ganga_absent="no web view"))
    rows.append(Row(
        key="wl", letter="w",
        label="(w') a live page following a running job of 10,000 subjobs (a batch of 40 "
              "moves every 30 ms): the service's extra CPU, fraction of one core",
        metric="live_cpu_fraction", unit="", ganga=None,
        ours=("web_live_cpu", {"n_subjobs": 10000, "seconds": 10.0}),
        ganga_absent="no web view"))
    rows.append(Row(
        key="s", letter="s",
        label="(s) one pure Hosts scheduler round: 100 hosts, 10,000 waiting subjobs (median of 7)",
        metric="round_s", unit="s", ganga=None,
        ours=("hosts_scheduler_round", {"hosts": 100, "waiting": 10_000}),
        ganga_absent="no scheduler of its own (its Local backend runs what it is given)"))
    return rows


def with_sources(selected: list[Row], every: list[Row]) -> list[Row]:
    """The selected rows plus the rows they take their figures from, in table order."""
    keys = {r.key for r in selected}
    keys |= {r.ganga_from for r in selected if r.ganga_from}
    keys |= {r.ours_from[0] for r in selected if r.ours_from}
    return [r for r in every if r.key in keys]


def copied(runs: dict, row: Row, side: str, rep: int) -> dict | None:
    """This repetition's result of the row ``row`` takes its figures from, or None."""
    if side == "ganga" and row.ganga_from:
        src, part = row.ganga_from, None
    elif side == "ours" and row.ours_from:
        src, part = row.ours_from
    else:
        return None
    for res in runs.get(src, {}).get(side, []):
        if res.get("rep") == rep:
            sub = res.get(part) if part else res
            out = dict(sub) if isinstance(sub, dict) else {"error": f"no {part!r} in {src}'s run"}
            if res.get("error"):
                out.setdefault("error", res["error"])
            out["copied_from"] = src + (f".{part}" if part else "")
            return out
    return None


# ---------------------------------------------------------------- processes

def processes_in(root: str) -> list:
    """Live processes (not us) whose command line or cwd lies under ``root``."""
    import psutil

    me = os.getpid()
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        if p.info["pid"] == me or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if root in cmd or (p.info["cwd"] or "").startswith(root):
            out.append(p)
    return out


def reap_leftovers(root: str) -> list[str]:
    """Kill every process still tied to a session dir; return what was found."""
    try:
        procs = processes_in(root)
    except ImportError:
        return []
    found = [" ".join(p.info["cmdline"] or [])[:150] for p in procs]
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except Exception:
            pass
    return found


# ---------------------------------------------------------------- one run

def _parse(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    return {}


def run_ganga(row: Row, log_dir: Path, rep: int) -> dict:
    session = ganga_env.Session(polling=row.ganga_polling)
    try:
        if row.repo_n:
            shutil.copytree(ganga_repo(row.repo_n), session.gangadir)
        script, args = row.ganga
        res = ganga_env.run_script(script, args, session, timeout=row.ganga_timeout,
                                   log_path=log_dir / f"ganga-{row.key}-{rep}.log")
        # (i): the script's process is the `ganga` process, fork to exit
        res["script_wall_s"] = res["outer_wall_s"]
        time.sleep(0.2)
        leftovers = reap_leftovers(str(session.root))
        res["leftover_processes_after_exit"] = len(leftovers)
        if leftovers:
            res["leftover_examples"] = leftovers[:3]
        return res
    finally:
        session.cleanup()


def run_ours(row: Row, log_dir: Path, rep: int, timeout: float = 1800.0) -> dict:
    fn, kwargs = row.ours
    tmp_root = tempfile.mkdtemp(prefix="obench-")
    kwargs = dict(kwargs, tmp_root=tmp_root)
    if row.repo_n:
        repo = ours_repo(row.repo_n)
        if repo is None:
            trash.discard(tmp_root)
            return {"not_implemented": "prepare_repository not plugged in yet"}
        work = Path(tmp_root) / "repo"
        shutil.copytree(repo, work)
        kwargs["repo_dir"] = str(work)
    cmd = [sys.executable, "-m", "bench._run_ours", fn, json.dumps(kwargs)]
    t0 = time.monotonic()
    with open(log_dir / f"ours-{row.key}-{rep}.log", "w") as err:
        try:
            proc = subprocess.run(cmd, cwd=str(PROJECT_DIR), stdout=subprocess.PIPE,
                                  stderr=err, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
            out, rc = proc.stdout, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out, rc = exc.stdout or "", "timeout"
    wall = time.monotonic() - t0
    res = _parse(out if isinstance(out, str) else out.decode())
    if not res:
        res = {"error": f"no result line (rc={rc})"}
    res["outer_wall_s"] = wall
    leftovers = reap_leftovers(tmp_root)
    res["leftover_processes_after_exit"] = len(leftovers)
    trash.discard(tmp_root)
    return res


def run_limits(log_dir: Path, rep: int, only: tuple[str, ...] | None = None) -> dict:
    py = PROJECT_DIR / ".venv" / "bin" / "python"
    if not py.exists():
        py = Path(sys.executable)
    env = dict(os.environ)
    cmd = [str(py), "-m", "bench.limits"]
    if only:
        cmd += ["--only", ",".join(only)]
    with open(log_dir / f"limits-{rep}.log", "w") as err:
        proc = subprocess.run(cmd, cwd=str(PROJECT_DIR), stdout=subprocess.PIPE,
                              stderr=err, text=True, env=env, timeout=600,
                              stdin=subprocess.DEVNULL)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"limits failed (rc={proc.returncode})"}


# ---------------------------------------------------------------- repos

def ganga_repo(n: int) -> Path:
    """The cached gangadir holding n jobs (built once)."""
    base = CACHE_DIR / f"ganga-repo-{n}"
    meta = base / "meta.json"
    gangadir = base / "gangadir"
    version = ganga_env.installed_version()
    if meta.exists():
        m = json.loads(meta.read_text())
        if m.get("ganga_version") == version and m.get("n") == n and gangadir.is_dir():
            return gangadir
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    print(f"  preparing a Ganga repository of {n:,} jobs (once, cached in {base}) ...",
          flush=True)
    session = ganga_env.Session(root=base / "session", gangadir=gangadir)
    res = ganga_env.run_script("prepare_repo.py", [str(n)], session, timeout=3600,
                               log_path=base / "prepare.log")
    if res.get("n_in_registry") != n:
        raise RuntimeError(f"preparing the Ganga repository failed: {res}")
    shutil.rmtree(base / "session", ignore_errors=True)
    meta.write_text(json.dumps({"ganga_version": version, "n": n,
                                "create_s": res.get("create_s"),
                                "outer_wall_s": res.get("outer_wall_s"),
                                "counts": res.get("counts")}))
    print(f"  ... done in {res['outer_wall_s']:.1f} s", flush=True)
    return gangadir


def ours_repo(n: int) -> Path | None:
    """Our cached repository of n jobs, or None while ours.py lacks it."""
    base = CACHE_DIR / f"ours-repo-{n}"
    done = base / ".done"
    if done.exists():
        return base / "repo"
    shutil.rmtree(base, ignore_errors=True)
    (base / "repo").mkdir(parents=True)
    cmd = [sys.executable, "-m", "bench._run_ours", "prepare_repository",
           json.dumps({"n_jobs": n, "repo_dir": str(base / "repo")})]
    proc = subprocess.run(cmd, cwd=str(PROJECT_DIR), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, stdin=subprocess.DEVNULL)
    res = _parse(proc.stdout)
    if "not_implemented" in res or "error" in res or not res:
        shutil.rmtree(base, ignore_errors=True)
        return None
    done.write_text(json.dumps(res))
    return base / "repo"


# ---------------------------------------------------------------- report

def _median(xs: list[float]) -> float | None:
    xs = [x for x in xs if isinstance(x, (int, float))]
    return statistics.median(xs) if xs else None


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "–"
    if unit == "s":
        if v < 0.01:
            return f"{v * 1e3:.2f} ms"
        if v < 1:
            return f"{v * 1e3:.0f} ms"
        return f"{v:.2f} s"
    if unit == "bytes":
        if v >= 1 << 20:
            return f"{v / (1 << 20):.1f} MiB"
        if v >= 1024:
            return f"{v / 1024:.1f} KiB"
        return f"{v:.0f} B"
    return f"{v:.3g}"


def machine_info() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem,
            "os": platform.platform(), "python": platform.python_version()}


def summarize(rows: list[Row], runs: dict, limits: list[dict]) -> list[dict]:
    table = []
    for row in rows:
        r = runs.get(row.key, {"ganga": [], "ours": []})
        g_vals = [x.get(row.metric) for x in r["ganga"] if "error" not in x]
        o_vals = [x.get(row.metric) for x in r["ours"]
                  if "error" not in x and "not_implemented" not in x]
        lim_vals = []
        for L in limits:
            try:
                lim_vals.append(row.limit(L) if row.limit else None)
            except Exception:
                lim_vals.append(None)
        g, o, lim = _median(g_vals), _median(o_vals), _median(lim_vals)
        status_ours = "measured" if o is not None else (
            "not yet measured" if any("not_implemented" in x for x in r["ours"])
            else ("error" if r["ours"] else "not run"))
        leaks = [x.get("leaked_processes") for x in r["ganga"] if x.get("leaked_processes")]
        status_ganga = "measured" if g is not None else (
            f"never: {max(leaks)} processes left running" if leaks else
            ("error" if r["ganga"] else (row.ganga_absent or "not run")))
        table.append({
            "key": row.key, "scenario": row.label, "metric": row.metric, "unit": row.unit,
            "ganga": g, "ours": o, "limit": lim, "limit_note": row.limit_note,
            "ratio_ours_over_ganga": (o / g) if (o is not None and g) else None,
            "ours_over_limit": (o / lim) if (o is not None and lim) else None,
            "ganga_over_limit": (g / lim) if (g is not None and lim) else None,
            "ganga_status": status_ganga, "ours_status": status_ours,
            "ganga_n": len([v for v in g_vals if v is not None]),
            "ours_n": len([v for v in o_vals if v is not None]),
        })
    return table


def table_lines(table: list[dict], limits: list[dict]) -> list[str]:
    lines = ["| scenario | Ganga | ganga_like | ratio (ours / Ganga) | limit | "
             "our distance to the limit (ours / limit) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for t in table:
        g = fmt(t["ganga"], t["unit"]) if t["ganga"] is not None else t["ganga_status"]
        o = fmt(t["ours"], t["unit"]) if t["ours"] is not None else t["ours_status"]
        ratio = f"{t['ratio_ours_over_ganga']:.3g}" if t["ratio_ours_over_ganga"] else "–"
        lim = fmt(t["limit"], t["unit"])
        if t["limit"] is not None and t["limit_note"]:
            lim += f" ({t['limit_note']})"
        dist = f"{t['ours_over_limit']:.3g}x" if t["ours_over_limit"] else "–"
        lines.append(f"| {t['scenario']} | {g} | {o} | {ratio} | {lim} | {dist} |")
    ray = _median([_g(L, "ray", "per_call_ms") for L in limits])
    if ray is not None:
        lines.append(f"| Ray: overhead per actor call (1,000 sequential `ray.get`) | – | – | – | "
                     f"{ray:.3f} ms | – |")
    lines.extend(curve_lines(table, limits))
    s1 = _median([_g(L, "spawn_1", "per_process_ms") for L in limits])
    s2 = _median([_g(L, "spawn_2", "per_process_ms") for L in limits])
    if s1 is not None:
        lines.append(f"| start + reap `/bin/true` from Python, 1 / 2 at a time (per process) "
                     f"| – | – | – | {s1:.3f} ms / {s2:.3f} ms | – |")
    for n in (1000, 10000):
        z = _median([_g(L, f"zodb_{n}", "commit_s") for L in limits])
        if z is not None:
            lines.append(f"| bare ZODB commit of {n:,} small objects in an IOBTree "
                         f"| – | – | – | {fmt(z, 's')} | – |")
    return lines


def curve_lines(table: list[dict], limits: list[dict]) -> list[str]:
    """(a)'s curve (issue 22): the time per subjob at each size, how 100,000 compares
    with 10,000 (linear: at most 11 times), and 10,000 against xargs with as many slots
    (at most twice)."""
    ours = {t["key"]: t["ours"] for t in table}
    per = {n: ours.get(f"a{n}") and ours[f"a{n}"] / n * 1e3 for n in A_CURVE}
    lines = []
    if any(per.values()):
        slope = " / ".join(f"{v:.3f} ms" if v else "–" for v in per.values())
        ratio = ours.get("a100000") and ours.get("a10000") and ours["a100000"] / ours["a10000"]
        lines.append(f"| (a) per subjob at {' / '.join(f'{n:,}' for n in A_CURVE)} (slope) | – | "
                     f"{slope} | – | – | " + (f"100,000 / 10,000: {ratio:.3g} (linear: ≤ 11)"
                                              if ratio else "–") + " |")
    xargs = _median([_g(L, "xargs_10000", "total_s") for L in limits])
    if xargs is not None:
        slots = _g(limits[0], "xargs_10000", "slots")
        against = ours.get("a10000") and ours["a10000"] / xargs
        lines.append(f"| `seq 10000 \\| xargs -P{slots} -n1 /bin/true` (what a user runs instead) "
                     f"| – | {fmt(ours.get('a10000'), 's')} (a 10,000) | – | {fmt(xargs, 's')} | "
                     + (f"{against:.3g}x (goal ≤ 2)" if against else "–") + " |")
    return lines


def write_reports(report: dict, stem: str = "latest") -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    jpath = RESULTS_DIR / f"{stem}.json"
    jpath.write_text(json.dumps(report, indent=1, default=str))
    m = report["machine"]
    md = [f"Measured {report['date']} with `{report['command']}` "
          f"({report['reps']} repetition(s), medians; Ganga and ganga_like alternating, "
          f"each run in a fresh process).",
          "",
          f"Machine: {m['cpu']}, {m['cores']} cores, "
          f"{(m['memory_bytes'] or 0) / 2**30:.0f} GiB, {m['os']}, Python {m['python']}. "
          f"Ganga {report.get('ganga_version') or '(not run)'} from the package registry, "
          f"in its own venv; settings in bench/README.md "
          f"(Local polling 1 s, `batchsize={report['ganga_batchsize']}`).",
          ""]
    md += table_lines(report["table"], report["limits"])
    md.append("")
    notes = report.get("notes") or []
    if notes:
        md += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    mpath = RESULTS_DIR / f"{stem}.md"
    mpath.write_text("\n".join(md))
    return jpath, mpath


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="N up to 100 (repositories of 1,000), 1 repetition: ~5-10 min")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    ap.add_argument("--only", default="", help="scenario letters, e.g. a,b (default: all)")
    ap.add_argument("--skip-ganga", action="store_true", help="run ganga_like and limits only")
    ap.add_argument("--ganga-max-n", type=int, default=None,
                    help="largest N of (a) run for Ganga (default 1000, quick 100)")
    ap.add_argument("--a-max-n", type=int, default=10000,
                    help="largest N of (a) for ganga_like (100000 adds the curve's last point)")
    ap.add_argument("--ganga-batchsize", type=int, default=ganga_env.DEFAULT_BATCHSIZE,
                    help="Local(batchsize=) for Ganga (default %(default)s)")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/results/")
    ap.add_argument("--out", default="latest",
                    help="name of the result files in bench/results/ (default %(default)s)")
    ns = ap.parse_args(argv)

    reps = ns.reps or (1 if ns.quick else 3)
    ganga_max_n = ns.ganga_max_n or (100 if ns.quick else 1000)
    letters = set(x.strip() for x in ns.only.split(",") if x.strip())
    every = build_rows(ns.quick, ganga_max_n, ns.ganga_batchsize, ns.a_max_n)
    rows = with_sources([r for r in every if not letters or r.letter in letters], every)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    started = _dt.datetime.now().astimezone()
    log_dir = RESULTS_DIR / "logs" / ns.out
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    t_start = time.monotonic()
    trash.share()
    try:
        return _run(ns, reps, ganga_max_n, rows, command, started, log_dir, t_start)
    finally:
        trash.empty()


def _run(ns: argparse.Namespace, reps: int, ganga_max_n: int, rows: list, command: str,
         started: _dt.datetime, log_dir: Path, t_start: float) -> int:
    version = None
    if not ns.skip_ganga:
        version = ganga_env.ensure()
        for n in sorted({r.repo_n for r in rows if r.repo_n and r.ganga}):
            ganga_repo(n)

    runs: dict[str, dict[str, list]] = {r.key: {"ganga": [], "ours": []} for r in rows}
    limits: list[dict] = []
    for rep in range(reps):
        print(f"== repetition {rep + 1}/{reps}: limits ...", flush=True)
        L = run_limits(log_dir, rep)
        limits.append(L)
        print(f"   spawn 1/2 at a time: {_g(L, 'spawn_1', 'per_process_ms', default=float('nan')):.3f}"
              f" / {_g(L, 'spawn_2', 'per_process_ms', default=float('nan')):.3f} ms per process;"
              f" ray {_g(L, 'ray', 'per_call_ms', default=float('nan')):.3f} ms per call", flush=True)
        for idx, row in enumerate(rows):
            # alternate who goes first: by repetition and by row
            sides = ["ganga", "ours"] if (rep + idx) % 2 == 0 else ["ours", "ganga"]
            for side in sides:
                if side == "ganga" and ns.skip_ganga:
                    continue
                t0 = time.monotonic()
                res = copied(runs, row, side, rep)
                if res is None:
                    if (side == "ganga" and row.ganga is None) or (side == "ours" and row.ours is None):
                        continue
                    res = run_ganga(row, log_dir, rep) if side == "ganga" else run_ours(row, log_dir, rep)
                res["side"], res["rep"] = side, rep
                runs[row.key][side].append(res)
                val = res.get(row.metric)
                shown = (fmt(val, row.unit) if val is not None else
                         ("not yet measured" if "not_implemented" in res else
                          f"ERROR {res.get('error', '')[:80]}"))
                print(f"   {row.key:6s} {side:5s} {shown:>18s}   ({time.monotonic() - t0:.1f} s)",
                      flush=True)

    table = summarize(rows, runs, limits)
    notes = []
    for row in rows:
        if not row.ours_from:
            for res in runs[row.key]["ours"]:
                for key in ("leftover_processes_at_end", "leftover_processes_after_exit"):
                    if res.get(key):
                        notes.append(f"{row.key} ganga_like rep {res['rep']}: {res[key]} "
                                     f"process(es) left ({key}); killed by the benchmark.")
        if row.ganga_from:
            continue
        for res in runs[row.key]["ganga"]:
            if res.get("leaked_processes"):
                notes.append(f"{row.key} Ganga rep {res['rep']}: {res['leaked_processes']} process(es) "
                             f"still running {res.get('grace_s')} s after kill() "
                             f"({res.get('leaked_payloads')} payloads); the benchmark killed them.")
            if res.get("leftover_processes_after_exit"):
                notes.append(f"{row.key} Ganga rep {res['rep']}: {res['leftover_processes_after_exit']} "
                             f"process(es) left after Ganga exited; killed by the runner.")
            if res.get("error"):
                notes.append(f"{row.key} Ganga rep {res['rep']}: {res['error']}")
    report = {
        "date": started.isoformat(timespec="seconds"), "command": command, "reps": reps,
        "quick": ns.quick, "machine": machine_info(), "ganga_version": version,
        "ganga_settings": ganga_env.GANGA_SETTINGS, "ganga_batchsize": ns.ganga_batchsize,
        "duration_s": time.monotonic() - t_start,
        "table": table, "limits": limits, "runs": runs, "notes": notes,
    }
    print()
    for line in table_lines(table, limits):
        print(line)
    if notes:
        print("\nNotes:\n" + "\n".join("- " + n for n in notes))
    if not ns.no_write:
        jpath, mpath = write_reports(report, ns.out)
        print(f"\nwrote {jpath.relative_to(PROJECT_DIR)} and {mpath.relative_to(PROJECT_DIR)}"
              f" ({report['duration_s']:.0f} s)")
    return 0
