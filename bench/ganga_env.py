"""Real Ganga, from the package registry, in its own virtual environment.

``python -m bench.ganga_env`` creates ``bench/.venv-ganga`` if it is missing,
installs ``ganga`` (and ``psutil``, used only by the measuring code that runs
inside the Ganga process) into it, and prints the Ganga version. It is
idempotent: a second call only reports what is there.

Every Ganga process the benchmark starts runs in a *session directory* of its
own (a fresh temporary directory): ``HOME`` points there, the ``.gangarc``
written there is passed with ``--config``, the gangadir and the Local
backend's work directories live under it. Nothing touches the user's
``~/gangadir``, ``~/.gangarc``, ``~/.ipython-ganga`` or ``~/.cache/Ganga``.

Ganga is driven non-interactively as ``ganga --no-prompt --config FILE
script.py ARGS``: Ganga runs the script in its GPI namespace (``Job``,
``Local``, ``ArgSplitter``, ``jobs``, ... are globals) with the script's folder
on ``sys.path`` and ``sys.argv`` set to the script and its arguments, then
exits.

The settings that keep Ganga from being handicapped are in ``GANGA_SETTINGS``
below and are explained in ``bench/README.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / ".venv-ganga"
VENV_PY = VENV / "bin" / "python"
GANGA_EXE = VENV / "bin" / "ganga"
SCENARIO_DIR = BENCH_DIR / "ganga_scenarios"
CACHE_DIR = BENCH_DIR / ".cache"
RESULT_PREFIX = "BENCH_RESULT "

# Ganga's best settings for this benchmark ([section] -> {option: value}).
# Option names were read from GangaCore/__init__.py of Ganga 8.7.12.
GANGA_SETTINGS: dict[str, dict[str, str]] = {
    "Configuration": {
        # plain Python console, no IPython set-up, no release notes at start
        "TextShell": "Console",
        "ReleaseNotes": "False",
    },
    "PollThread": {
        # Monitoring is off by default in a script session: turn it on.
        "autostart": "True",
        # Interval of the loop that looks for jobs to monitor (default 2 s).
        "base_poll_rate": "1",
        # Poll interval of the Local backend (default 10 s).
        "Local": "1",
        # Fallback poll rate of any other backend (default 30 s).
        "default_backend_poll_rate": "1",
        # The monitoring kills a job after 20 failed subjobs by default: the
        # resubmit scenario needs 100 failures to stay alive.
        "autoKillThreshold": "1000000",
        # Do not ask anything at exit; wait at most 10 s for background work.
        "forced_shutdown_policy": "timeout",
        "forced_shutdown_timeout": "10",
        "forced_shutdown_first_prompt_time": "1",
    },
}

# Subjobs the Local backend runs at once (the `batchsize` attribute of the
# Local backend; -1, the default, means "number of CPUs", 2 here). Each subjob
# is a Python wrapper that mostly sleeps (it polls its payload every 0.3 s),
# so more than the number of cores is faster. 32 gave the best throughput here
# for /bin/true subjobs (see README); the kill scenario uses 100 so that all
# 100 subjobs are running when they are killed.
DEFAULT_BATCHSIZE = 32


def _say(msg: str) -> None:
    print(f"[ganga_env] {msg}", flush=True)


def installed_version() -> str | None:
    """The Ganga version installed in the venv, or None."""
    if not VENV_PY.exists():
        return None
    proc = subprocess.run(
        [str(VENV_PY), "-c",
         "import importlib.metadata as m; print(m.version('ganga'))"],
        capture_output=True, text=True, check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure(quiet: bool = False) -> str:
    """Create the venv and install Ganga if needed; return Ganga's version."""
    say = (lambda m: None) if quiet else _say
    if not VENV_PY.exists():
        say(f"creating {VENV} (python3 -m venv)")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    version = installed_version()
    have_psutil = subprocess.run(
        [str(VENV_PY), "-c", "import psutil"], capture_output=True, check=False
    ).returncode == 0
    if version is None or not have_psutil or not GANGA_EXE.exists():
        say("pip install ganga psutil (into the Ganga venv only)")
        t0 = time.monotonic()
        subprocess.run([str(VENV_PY), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "ganga", "psutil"],
                       check=True)
        say(f"installed in {time.monotonic() - t0:.1f} s")
        version = installed_version()
    if version is None:
        raise RuntimeError("ganga did not install into " + str(VENV))
    say(f"Ganga {version} in {VENV}")
    return version


def gangarc_text(gangadir: Path, workdir_location: Path,
                 extra: dict[str, dict[str, str]] | None = None,
                 polling: str = "tuned") -> str:
    """The session's gangarc. ``polling="default"`` leaves out the whole
    ``[PollThread]`` section of GANGA_SETTINGS: Ganga's own defaults (monitoring
    off in a script session, Local polled every 10 s, 5 s wait at exit), as a
    user who never edited a gangarc has them."""
    if polling not in ("tuned", "default"):
        raise ValueError(f"polling {polling!r}: 'tuned' or 'default'")
    sections: dict[str, dict[str, str]] = {
        k: dict(v) for k, v in GANGA_SETTINGS.items()
        if polling == "tuned" or k != "PollThread"}
    sections["Configuration"]["gangadir"] = str(gangadir)
    sections["Configuration"]["used_versions_path"] = str(gangadir.parent / ".cache-ganga")
    sections.setdefault("Local", {})["location"] = str(workdir_location)
    for sec, opts in (extra or {}).items():
        sections.setdefault(sec, {}).update(opts)
    lines = []
    for sec, opts in sections.items():
        lines.append(f"[{sec}]")
        lines.extend(f"{k} = {v}" for k, v in opts.items())
        lines.append("")
    return "\n".join(lines)


class Session:
    """A throw-away directory for one Ganga process (or one cached repo)."""

    def __init__(self, root: Path | None = None, gangadir: Path | None = None,
                 extra: dict[str, dict[str, str]] | None = None, polling: str = "tuned"):
        self.owned = root is None
        self.root = Path(root) if root else Path(
            tempfile.mkdtemp(prefix="gbench-", dir=os.environ.get("BENCH_TMP")))
        self.root.mkdir(parents=True, exist_ok=True)
        self.home = self.root / "home"
        self.home.mkdir(exist_ok=True)
        self.gangadir = Path(gangadir) if gangadir else self.root / "gangadir"
        self.workdirs = self.root / "localwork"
        self.workdirs.mkdir(exist_ok=True)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(exist_ok=True)
        self.config = self.root / "gangarc"
        self.config.write_text(gangarc_text(self.gangadir, self.workdirs, extra, polling))

    def env(self) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "PATH": f"{VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "TMPDIR": str(self.tmp),
            "GANGA_CONFIG_FILE": str(self.config),
            "IPYTHONDIR": str(self.home / ".ipython-ganga"),
            "BENCH_SESSION_ROOT": str(self.root),
            "PYTHONUNBUFFERED": "1",
        }
        return env

    def cleanup(self) -> None:
        if self.owned:
            from bench import trash

            trash.discard(self.root)


def run_script(script: str, args: list[str], session: Session,
               timeout: float = 900.0, log_path: Path | None = None) -> dict:
    """Run one Ganga scenario script in a fresh Ganga process.

    Returns the JSON object the script printed (prefixed by RESULT_PREFIX),
    plus ``outer_wall_s`` (fork to exit, measured here), ``outer_maxrss_kb``
    (peak RSS of the Ganga process from wait4) and ``returncode``.
    """
    cmd = [str(GANGA_EXE), "--no-prompt", "--quiet", "--config", str(session.config),
           str(SCENARIO_DIR / script), *args]
    out_f = tempfile.TemporaryFile(mode="w+")
    err_f = open(log_path, "w") if log_path else tempfile.TemporaryFile(mode="w+")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, stdin=subprocess.DEVNULL,
                            env=session.env(), cwd=str(session.root),
                            start_new_session=True)
    deadline = t0 + timeout
    rusage = None
    status = None
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.monotonic() > deadline:
            _kill_group(proc.pid)
            pid, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    stdout = out_f.read()
    out_f.close()
    result: dict = {}
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
    if not result:
        err_tail = ""
        if not log_path:
            err_f.seek(0)
            err_tail = err_f.read()[-3000:]
        result = {"error": f"no result line (rc={proc.returncode}, "
                           f"{'timeout' if wall >= timeout else 'exited'})",
                  "stdout_tail": stdout[-3000:], "stderr_tail": err_tail}
    err_f.close()
    result["outer_wall_s"] = wall
    result["outer_maxrss_kb"] = rusage.ru_maxrss if rusage else None
    result["returncode"] = proc.returncode
    return result


def _kill_group(pid: int) -> None:
    import signal
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main() -> int:
    version = ensure()
    print(json.dumps({"ganga_version": version, "venv": str(VENV),
                      "settings": GANGA_SETTINGS,
                      "local_batchsize": DEFAULT_BATCHSIZE}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
