"""The Slurm commands the backend runs, each in one place, and what they answer.

Every command runs with ``SLURM_CONF`` set when the backend names a cluster's
slurm.conf (``Slurm(conf=...)``), and is counted (``SlurmCommands.count``), so that
the number of commands per monitoring round can be shown (``ping()``) and tested: one
``squeue`` for every task of every array, plus at most one ``sacct`` for tasks that
have left Slurm's memory.

Where Slurm keeps no accounting database (no slurmdbd), ``sacct -c`` reads the
job-completion file instead; the first plain ``sacct`` that is refused switches to it.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from ...errors import BackendError
from ..resources import Capacity
from .script import Limits, array_ranges

TIMEOUT = 60.0  # seconds any one Slurm command may take
QUEUE_FORMAT = "%i|%A|%T|%r|%N|%j"  # task id, its own job id, state, reason, node, job name
INSTALL = ("is Slurm installed here? (Debian: apt-get install slurm-client; a site: "
           "module load slurm, or the path of its commands in PATH)")


class Task(NamedTuple):
    """One task of an array as ``squeue`` shows it."""

    state: str
    reason: str
    node: str
    raw_id: str  # the task's own job id (the array's id while it waits)
    name: str


class Accounted(NamedTuple):
    state: str
    exit_code: int | None


class SlurmCommandError(BackendError):
    """A Slurm command failed; the message is its one line."""


class SlurmCommands:
    """Runs Slurm's commands for one cluster (``conf``: its slurm.conf, '' for the default)."""

    def __init__(self, conf: str = "", base_env: Mapping[str, str] | None = None) -> None:
        self.conf = conf
        self.count = 0
        self._lock = threading.Lock()
        self._completion_file = False  # sacct -c: no accounting database
        self._limits: Limits | None = None  # Slurm's array limits, once asked
        self._env = dict(os.environ if base_env is None else base_env)
        if conf:
            self._env["SLURM_CONF"] = conf

    # ------------------------------------------------------------------ running

    def program(self, name: str) -> str:
        """The path of a Slurm command, or one line saying it is missing."""
        found = shutil.which(name, path=self._env.get("PATH", os.defpath))
        if found is None:
            raise SlurmCommandError(f"{name} is not in PATH ({self._env.get('PATH', '')}): {INSTALL}")
        return found

    def run(self, name: str, *args: str, env: Mapping[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [self.program(name), *args]
        with self._lock:
            self.count += 1
        try:
            result = subprocess.run(argv, env=self._with_conf(env), capture_output=True, text=True,
                                    timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SlurmCommandError(f"{name} did not answer within {TIMEOUT:.0f} s") from None
        except OSError as error:
            raise SlurmCommandError(f"{name} could not be run: {error}") from None
        if check and result.returncode != 0:
            raise SlurmCommandError(f"{name} failed: {first_error(result)}")
        return result

    def _with_conf(self, env: Mapping[str, str] | None) -> dict[str, str]:
        if env is None:
            return self._env
        merged = dict(env)
        if self.conf:
            merged["SLURM_CONF"] = self.conf
        return merged

    # ------------------------------------------------------------------ asking

    def partitions(self) -> list[str]:
        out = self.run("sinfo", "-h", "-o", "%R").stdout
        return sorted({line.strip() for line in out.splitlines() if line.strip()})

    def check_partition(self, partition: str) -> None:
        """One line if Slurm cannot be asked, or has no such partition."""
        if self.conf and not os.path.isfile(self.conf):
            raise BackendError(f"Slurm(conf={self.conf!r}): no such file; name the slurm.conf of "
                               f"your Slurm, or '' for this machine's own")
        try:
            self.program("sbatch")
            known = self.partitions()
        except SlurmCommandError as error:
            raise BackendError(f"Slurm cannot be used: {error}") from None
        if partition and partition not in known:
            raise BackendError(f"Slurm(partition={partition!r}): no such partition in this Slurm; "
                               f"valid: {', '.join(known) or 'none'}")

    def capacities(self, partition: str = "") -> list[Capacity]:
        """What each node of the partition (every node: '') has in all, from one sinfo."""
        out = self.run("sinfo", "-h", "-N", *(["-p", partition] if partition else []),
                       "-o", "%N|%c|%m|%G").stdout
        return parse_nodes(out)

    def limits(self) -> Limits:
        """What Slurm lets one array be (MaxArraySize, max_array_tasks, MaxJobCount), from
        one ``scontrol show config`` asked once (a site changes them with a restart of
        slurmctld); none known while Slurm does not answer (sbatch then says why)."""
        if self._limits is None:
            try:
                out = self.run("scontrol", "show", "config").stdout
            except SlurmCommandError:
                return Limits()
            self._limits = parse_limits(out)
        return self._limits

    def queue(self) -> dict[str, Task]:
        """Every task of this user that Slurm still knows (pending, running, or ended less
        than MinJobAge ago), one per line: one command for all of them."""
        out = self.run("squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(),
                       "-o", QUEUE_FORMAT).stdout
        return parse_queue(out)

    def accounting(self, raw_ids: Iterable[str]) -> dict[str, Accounted]:
        """Slurm's record of ended jobs by their own ids: one ``sacct`` (``-c`` where there
        is no accounting database)."""
        ids = ",".join(sorted(set(raw_ids)))
        if not ids:
            return {}
        args = ["-n", "-P", "-X", "-o", "JobIDRaw,State,ExitCode", "-j", ids]
        if not self._completion_file:
            result = self.run("sacct", *args, check=False)
            if result.returncode == 0:
                return parse_accounting(result.stdout)
            self._completion_file = True
        return parse_accounting(self.run("sacct", "-c", *args, check=False).stdout)

    # ------------------------------------------------------------------ changing

    def submit(self, options: list[str], script: str, env: Mapping[str, str]) -> str:
        """sbatch the script; the array's job id."""
        result = self.run("sbatch", "--parsable", *options, script, env=env)
        job_id = result.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise SlurmCommandError(f"sbatch answered {result.stdout.strip()!r}, not a job id")
        return job_id

    def cancel(self, task_ids: list[str]) -> None:
        """scancel the tasks: Slurm drops what waits, and ends what runs (TERM, its
        KillWait, KILL)."""
        if task_ids:
            self.run("scancel", *compact(task_ids), check=False)

    def signal(self, task_ids: list[str], name: str) -> None:
        """Send SIGNAME to every process of the running tasks, their batch script included
        (the wrapper forwards TERM to the payload and records it)."""
        if task_ids:
            self.run("scancel", f"--signal={name}", "--full", *compact(task_ids), check=False)


def first_error(result: subprocess.CompletedProcess[str]) -> str:
    """The line of a failed command that says why (Slurm's last error line)."""
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines
    return (errors[-1] if errors else f"exit status {result.returncode}")[:300]


def compact(task_ids: Iterable[str]) -> list[str]:
    """Task ids as scancel reads them, one word per array: ``12_[0-999]``, however many
    tasks (a command line of 100,000 ids would pass the kernel's limit)."""
    arrays: dict[str, list[int]] = {}
    words = []
    for task_id in task_ids:
        job, _, index = task_id.partition("_")
        if index.isdigit():
            arrays.setdefault(job, []).append(int(index))
        else:
            words.append(task_id)
    return words + [f"{job}_[{array_ranges(indices)}]" for job, indices in arrays.items()]


def parse_limits(out: str) -> Limits:
    """``scontrol show config``'s MaxArraySize, MaxJobCount and max_array_tasks."""
    def number(pattern: str) -> int | None:
        found = re.search(pattern, out, re.M)
        return int(found.group(1)) if found else None

    return Limits(number(r"^MaxArraySize\s*=\s*(\d+)"),
                  number(r"^SchedulerParameters\s*=.*\bmax_array_tasks=(\d+)"),
                  number(r"^MaxJobCount\s*=\s*(\d+)"))


def parse_queue(out: str) -> dict[str, Task]:
    tasks = {}
    for line in out.splitlines():
        parts = line.strip().split("|", 5)
        if len(parts) == 6:
            task_id, raw_id, state, reason, node, name = parts
            tasks[task_id] = Task(state.split()[0] if state else "", reason, node, raw_id, name)
    return tasks


def parse_accounting(out: str) -> dict[str, Accounted]:
    found = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[0]:
            code = parts[2].split(":")[0]
            found[parts[0]] = Accounted(parts[1].split()[0] if parts[1] else "",
                                        int(code) if code.isdigit() else None)
    return found


def parse_nodes(out: str) -> list[Capacity]:
    """``sinfo -N -o '%N|%c|%m|%G'`` lines as capacities, one per node (sinfo repeats a
    node for each of its partitions). GRES ``gpu:2`` or ``gpu:tesla:2(S:0-1)`` are GPUs;
    other GRES are custom resources."""
    nodes: dict[str, Capacity] = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4 or parts[0] in nodes:
            continue
        name, cpus, memory, gres = parts
        counts: dict[str, float] = {}
        for item in gres.split(","):
            fields = item.split("(")[0].split(":")
            if fields[0] and fields[0] != "null" and item != "(null)":
                count = int(fields[-1]) if fields[-1].isdigit() else 1
                counts[fields[0]] = counts.get(fields[0], 0) + count
        gpus = int(counts.pop("gpu", 0))
        nodes[name] = Capacity(f"node {name}", float(cpus) if cpus.isdigit() else None, tuple(range(gpus)),
                               float(memory) if memory.isdigit() else None, tuple(sorted(counts.items())))
    return list(nodes.values())
