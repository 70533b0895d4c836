"""Fault injection: SIGKILL the service, a client, or everything at random points of each verb.

``python -m tests.faults.soak --rounds 100 [--seed N]`` (``make soak``); a few rounds
run in ``make test`` (tests/faults/test_faults.py). Each round starts a client that
does one verb (submit, kill, resubmit, remove, force_status) on one repository, then
after a random delay SIGKILLs the service, or the client, or every process of the
repository at once (a power cut: service, guardian, Ray, actors, wrappers, payloads),
then a fresh client (which starts a new service, which recovers) checks the promises
of the README. Every ``CROWD_EVERY``-th round is a crowd instead: clients at once,
each doing every verb on the same jobs for a few seconds, the service stopped, the
next one SIGKILLed and the next stopped among them; each client must end without a
traceback (what it was refused, or a verb the kill cut off, comes as one line; its
reads and writes go on with the next service), and no client may be told that a
service was stopping (it asks the next one), could not start, or failed on its own
(``UNEXPLAINED``). Everything runs as a new user would run it: a fresh HOME, no Ray or
ganga_like variable but ``GANGA_LIKE_DIR`` (Ray's token authentication on, the
default idle stop).
The checks:

* nothing stuck: no subjob stays ``submitting``; every kill, resubmit and remove still
  works afterwards; every job that was submitted reaches a final status;
* nothing lost: every job created is there, unless a remove of it went through;
* nothing leaked: no process of a finished or removed job, no process of a dead
  service's Ray;
* the queue log holds every status change the database recorded;
* nothing readable by others: the root 0700, the database, the log, status files and
  outputs 0600.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

import psutil

from ganga_like.service import reaper

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GANGA_LIKE = [str(BIN / "ganga-like")]
VERBS = ("submit", "kill", "resubmit", "remove", "force_status")
# Who is killed in a round: the service alone (an OOM kill), the client alone (Ctrl-C,
# a closed terminal), or every process of the repository at once (a power cut).
VICTIMS = ("service", "client", "power cut")
VICTIM_WEIGHTS = (0.55, 0.3, 0.15)


def env_for(root: Path, home: Path) -> dict[str, str]:
    """A fresh user's environment: a new HOME, no Ray or ganga_like variable but the root."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANGA_LIKE_", "RAY_"))}
    home.mkdir(mode=0o700, exist_ok=True)
    env.update({"HOME": str(home), "GANGA_LIKE_DIR": str(root), "PYTHONUNBUFFERED": "1"})
    return env


def repository_processes(root: Path, ray_dirs: list[str]) -> list[psutil.Process]:
    """Every process of the repository: its service and all it started (guardian, Ray,
    the actors, wrappers), the Ray of its earlier services, and whatever works in its
    workspace (payloads reparented after an earlier kill)."""
    found: dict[int, psutil.Process] = {}
    try:
        service = psutil.Process(int((root / "service.lock").read_text()))
        if "ganga_like.service.main" in " ".join(service.cmdline()):
            found[service.pid] = service
            found.update((p.pid, p) for p in service.children(recursive=True))
    except (OSError, ValueError, psutil.Error):
        pass
    for ray_dir in filter(None, ray_dirs):
        found.update((p.pid, p) for p in reaper.processes_using(ray_dir))
    for proc in psutil.process_iter(["cwd"]):
        if (proc.info["cwd"] or "").startswith(str(root) + os.sep):
            found[proc.pid] = proc
    found.pop(os.getpid(), None)
    return list(found.values())


def power_cut(root: Path, ray_dirs: list[str]) -> int:
    """Every process of the repository gone at once, as in a power cut: all stopped
    first (none sees another die), then all killed. Returns how many."""
    victims = repository_processes(root, ray_dirs)
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for proc in victims:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
    return len(victims)


SCRIPTS = {
    "submit": """
        import random
        n = random.randint(1, 300)
        j = Job(application=Executable(exe='/bin/sh'),
                splitter=ArgSplitter(args=[['-c', random.choice(['true', 'sleep 0.3', 'exit 3',
                                                                  'sleep 0.1; echo x'])]
                                           for _ in range(n)]))
        print('created', j.id, flush=True)
        j.submit()
    """,
    "kill": """
        active = [j for j in jobs if j.status.value in ('submitted', 'running')]
        if active:
            print('target', active[-1].id, flush=True)
            active[-1].kill()
    """,
    "resubmit": """
        done = [j for j in jobs if j.status.value in ('failed', 'killed')]
        if done:
            print('target', done[-1].id, flush=True)
            done[-1].resubmit(include_killed=True)
    """,
    "force_status": """
        active = [j for j in jobs if j.status.value in ('submitted', 'running')]
        if active:
            print('target', active[-1].id, flush=True)
            active[-1].force_status('failed')
    """,
    "remove": """
        if len(jobs):
            victim = jobs[-1]
            print('target', victim.id, flush=True)
            victim.remove()
            print('removed', victim.id, flush=True)
    """,
}

CROWD_EVERY = 5
CROWD = """
import random, time
rnd = random.Random(SEED)
end = time.monotonic() + SECONDS
while time.monotonic() < end:
    verb = rnd.choice(('submit', 'submit', 'kill', 'resubmit', 'remove', 'force', 'read'))
    try:
        every = list(jobs)
        if verb == 'submit' or not every:
            j = Job(application=Executable(exe='/bin/sh'),
                    splitter=ArgSplitter(args=[['-c', rnd.choice(['true', 'sleep 0.2', 'exit 3'])]
                                               for _ in range(rnd.randint(1, 5))]))
            print('created', j.id, flush=True)
            j.submit()
            continue
        j = rnd.choice(every)
        if verb == 'kill' and j.status.value in ('submitted', 'running'):
            j.kill()
        elif verb == 'resubmit' and j.status.value in ('failed', 'killed'):
            j.resubmit(include_killed=True)
        elif verb == 'force' and j.status.value in ('submitted', 'running'):
            j.force_status('failed')
        elif verb == 'remove':
            print('target', j.id, flush=True)
            j.remove()
            print('removed', j.id, flush=True)
        else:
            [sub.status for sub in j.subjobs]
    except GangaLikeError as exc:  # a job another client removed, a verb the kill cut off
        assert '\\n' not in str(exc), repr(str(exc))
        print('refused', type(exc).__name__, str(exc), flush=True)
"""

# What a crowd's client may not be told: a request a stopping service refused (the client
# asks the next one), a service it could not start, or a service's own failure.
UNEXPLAINED = ("ServiceStopping", "ServiceUnavailable", "ServiceError")

CHECK = """
import json, time
deadline = time.time() + 90
while any('submitting' in (j.subjob_counts or {j.status.value: 1}) for j in jobs):
    assert time.time() < deadline, 'stuck in submitting: ' + str([(j.id, j.subjob_counts) for j in jobs])
    time.sleep(0.2)
for j in list(jobs):      # every job submitted reaches a final status
    if j.status.value == 'new' and j.subjob_counts:
        j.submit()         # subjobs a dead service never sent went back to new
    if j.status.value not in ('new',):
        j.wait(timeout=120)
for j in jobs:             # every job reads whole: no part stored under an oid no commit stored
    assert all(repr(part) for part in (j.application, j.backend, j.splitter)), j.id
history = []
for j in jobs:
    for job in ([j] + list(j.subjobs) if j.subjob_counts else [j]):
        history += [(when, job.fqid, entry_to) for when, _f, entry_to, *_ in job.history]
print('STATE', json.dumps({'ids': [j.id for j in jobs], 'leaks': leaks(),
                           'statuses': {j.id: j.status.value for j in jobs},
                           'history': history}))
"""


class Soak:
    def __init__(self, base: Path, seed: int) -> None:
        self.root = base / "gl"
        self.env = env_for(self.root, base / "home")
        self.random = random.Random(seed)
        self.created: set[int] = set()
        self.removed: set[int] = set()  # gone by a remove the soak asked for
        self.dead_ray_dirs: list[str] = []
        self.ray_dirs: list[str] = []  # of every service the soak has seen
        self.log: list[str] = []

    def client(self, code: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from ganga_like.gpi import *\n" + code],
                              env=self.env, cwd=str(REPO), text=True, capture_output=True,
                              timeout=timeout)

    def service_pid(self) -> int | None:
        try:
            return int((self.root / "service.lock").read_text())
        except (OSError, ValueError):
            return None

    def round(self, number: int, victim: str | None = None) -> str:
        if number % CROWD_EVERY == 0:
            return self.crowd(number)
        verb = self.random.choice(VERBS)
        chosen = self.random.choices(VICTIMS, weights=VICTIM_WEIGHTS)[0]
        victim = victim or chosen
        delay = self.random.uniform(0.0, 1.5)
        proc = subprocess.Popen(
            [sys.executable, "-c", "from ganga_like.gpi import *\n" + textwrap.dedent(SCRIPTS[verb])],
            env=self.env, cwd=str(REPO), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        pid = self.service_pid()
        self.note_ray_dir()
        if victim == "power cut":
            self.dead_ray_dirs.append(self.ray_dirs[-1] if self.ray_dirs else "")
            power_cut(self.root, self.ray_dirs)
            proc.kill()
        elif victim == "service" and pid and psutil.pid_exists(pid):
            self.dead_ray_dirs.append(self.ray_dirs[-1] if self.ray_dirs else "")
            os.kill(pid, signal.SIGKILL)
        else:
            proc.kill()
        out, _err = proc.communicate(timeout=120)
        target = None
        for line in out.splitlines():
            words = line.split()
            if words[:1] == ["created"]:
                self.created.add(int(words[1]))
            if words[:1] == ["target"] and verb == "remove":
                target = int(words[1])
        what = f"round {number}: {verb}, SIGKILL of the {victim} after {delay:.2f} s"
        self.check(what, may_be_gone={target} if target is not None else set())
        self.note_ray_dir()
        return what

    def crowd(self, number: int, clients: int = 4, seconds: float = 6.0) -> str:
        """``clients`` scripts at once, each doing every verb on the same jobs for
        ``seconds``; among them the service is stopped with ``ganga-like service stop``
        (maybe while it starts), the next one SIGKILLed, and the next stopped again (its
        database closes while its clients still commit)."""
        procs = [subprocess.Popen(
            [sys.executable, "-c", "from ganga_like.gpi import *\n"
             f"SEED, SECONDS = {self.random.randrange(10**9)}, {seconds}\n" + CROWD],
            env=self.env, cwd=str(REPO), text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(clients)]
        started = time.monotonic()
        kill_at = self.random.uniform(1.0, seconds / 2 - 0.5)
        first_stop_at = self.random.uniform(0.6, kill_at - 0.2)
        stop_at = self.random.uniform(seconds / 2 + 0.5, seconds - 0.5)
        time.sleep(first_stop_at)
        self.stop_service()
        time.sleep(max(0.0, kill_at - (time.monotonic() - started)))
        self.note_ray_dir()
        pid = self.service_pid()
        if pid and psutil.pid_exists(pid):
            self.dead_ray_dirs.append(self.ray_dirs[-1] if self.ray_dirs else "")
            os.kill(pid, signal.SIGKILL)
        time.sleep(max(0.0, stop_at - (time.monotonic() - started)))
        self.stop_service()
        what = (f"round {number}: {clients} clients at once, `service stop` after "
                f"{first_stop_at:.2f} s, SIGKILL of the service after {kill_at:.2f} s, "
                f"`service stop` after {stop_at:.2f} s")
        cut_short: set[int] = set()  # removes the kill may have cut after they went through
        refused: Counter[str] = Counter()
        unexplained: list[str] = []
        # Every client ends before one is judged: a failed one leaves the others to finish
        # (still running, they would start services and be taken for leftovers).
        ended = [(proc, *proc.communicate(timeout=seconds + 300)) for proc in procs]
        for proc, out, err in ended:
            assert proc.returncode == 0, f"{what}: a client failed:\n{err[-3000:]}"
            targets: set[int] = set()
            for line in out.splitlines():
                word, _, rest = line.partition(" ")
                if word == "created":
                    self.created.add(int(rest))
                elif word == "target":
                    targets.add(int(rest))
                elif word == "removed":
                    self.removed.add(int(rest))
                    targets.discard(int(rest))
                elif word == "refused":
                    kind, _, message = rest.partition(" ")
                    refused[kind] += 1
                    if kind in UNEXPLAINED:
                        unexplained.append(message)
            cut_short |= targets
        assert not unexplained, f"{what}: refusals that are the service's defects: {unexplained}"

        self.check(what, may_be_gone=cut_short)
        self.note_ray_dir()
        return f"{what} (refused: {dict(refused) or 'none'})"

    def stop_service(self) -> None:
        """``ganga-like service stop``, as the admin types it (none may run at the moment)."""
        self.note_ray_dir()
        subprocess.run([*GANGA_LIKE, "service", "stop"], env=self.env, cwd=str(REPO),
                       capture_output=True, timeout=120)

    def note_ray_dir(self) -> None:
        """The running service's Ray directory, from its state file (for the leak checks)."""
        try:
            ray_dir = json.loads((self.root / "service.json").read_text()).get("ray_dir", "")
        except (OSError, ValueError):
            return
        if ray_dir and ray_dir not in self.ray_dirs:
            self.ray_dirs.append(ray_dir)

    def check(self, what: str, may_be_gone: set[int] = frozenset()) -> None:
        result = self.client(CHECK)
        assert result.returncode == 0, f"{what}: the check failed:\n{result.stderr[-3000:]}"
        state = json.loads(result.stdout.split("STATE ", 1)[1])
        ids = set(state["ids"])
        # A remove cut short may or may not have gone through; anything else is kept.
        lost = self.created - ids - self.removed - may_be_gone
        assert not lost, f"{what}: jobs lost: {sorted(lost)}"
        self.removed |= self.created - ids
        assert state["leaks"] == [], f"{what}: leaks: {state['leaks']}"
        bad = {i: s for i, s in state["statuses"].items() if s in ("submitting", "submitted",
                                                                 "running", "completing")}
        assert not bad, f"{what}: still active after the wait: {bad}"
        self.check_log(what, state["history"])
        self.check_no_dead_ray(what)
        self.check_modes(what)

    def check_log(self, what: str, history: list) -> None:
        logged = Counter()
        path = self.root / "log"
        with (open(path) if path.exists() else open(os.devnull)) as handle:
            for line in handle:
                parts = line.split(" ", 5)
                if len(parts) >= 5:
                    logged[(f"{parts[0]} {parts[1]}", parts[3], parts[4].strip())] += 1
        wanted = Counter((time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)), fqid, status)
                         for when, fqid, status in history)
        missing = wanted - logged
        assert not missing, f"{what}: the queue log lacks {sum(missing.values())} line(s), " \
                            f"e.g. {list(missing)[:5]}"

    def check_no_dead_ray(self, what: str) -> None:
        for ray_dir in filter(None, self.dead_ray_dirs):
            alive = [p.pid for p in reaper.processes_using(ray_dir)]
            assert not alive, f"{what}: processes of a dead service's Ray: {alive}"

    def check_modes(self, what: str) -> None:
        assert stat.S_IMODE(os.stat(self.root).st_mode) == 0o700, what
        paths = [self.root / "repository" / "jobs.fs", self.root / "log"]
        workspace = self.root / "workspace"
        if workspace.is_dir():
            for job_dir in list(workspace.iterdir())[:3]:
                for sub in list(job_dir.iterdir())[:3]:
                    paths += [sub / "status", sub / "output" / "stdout"]
        for path in paths:
            if path.exists():
                mode = stat.S_IMODE(os.stat(path).st_mode)
                assert mode & 0o077 == 0, f"{what}: {path} is {oct(mode)}"

    def finish(self) -> None:
        subprocess.run([*GANGA_LIKE, "service", "stop"], env=self.env, cwd=str(REPO),
                       capture_output=True, timeout=120)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            strays = repository_processes(self.root, self.ray_dirs)
            if not strays:
                break
            time.sleep(0.2)
        else:
            for proc in strays:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            raise AssertionError(f"left running after the soak: {[p.pid for p in strays]}")


def run(rounds: int, seed: int, base: Path, echo=print, every_victim: bool = False) -> list[str]:
    """``every_victim``: round n kills ``VICTIMS[n % 3]`` (a short run sees each kind)."""
    soak = Soak(base, seed)
    done = []
    try:
        for number in range(1, rounds + 1):
            victim = VICTIMS[number % len(VICTIMS)] if every_victim else None
            done.append(soak.round(number, victim))
            echo(done[-1] + ": ok")
    finally:
        soak.finish()
    return done


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.soak")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    print(f"soak: {args.rounds} rounds, seed {args.seed} (rerun with --seed {args.seed})")
    with tempfile.TemporaryDirectory(prefix="gl-soak-") as base:
        run(args.rounds, args.seed, Path(base))
    print(f"soak: {args.rounds} rounds passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
