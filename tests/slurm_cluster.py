"""A real one-node Slurm for the tests: munged, slurmctld and slurmd under a temporary
directory, started once per test session and stopped after it.

The recipe is the one measured in FACTS.md (Slurm 22.05 as root, no systemd, no
cgroups): a private munge key and socket (its directory 0711), loopback addresses
instead of DNS, free ports, process tracking by Linux processes, more CPUs declared
than the machine has (so that tasks run side by side), no batch scheduling delay,
job completions in a text file (``sacct -c``: there is no slurmdbd), and two fake GPUs
(character devices named by ``gres.conf``) so that ``--gres=gpu:N`` is honoured.

It is tuned for pace, as a site tunes its own Slurm: an ``Epilog`` that does nothing
(``/bin/true``). Seen in the daemons' debug logs: with no epilog, the next task of a
limited array (``--array=...%N``) mostly starts at slurmctld's next periodic pass, about
a second after the last one ended; with one, slurmd sends "epilog complete" as each task
ends and slurmctld starts the next within 0.1 s (16 tasks of ``true`` at ``%2``: 6-7 s
without, 2-4 s with, on this loaded machine). ``sched/builtin`` and
``sched_min_interval=0`` made no difference measurable here.

``MaxArraySize`` is :data:`MAX_ARRAY_SIZE` (16: a job of 20 subjobs goes as two arrays;
the benchmark starts one with Slurm's default, 1001), so that Slurm's array limits are
reached by small tests. Memory is not limited by default (as before: nothing watches the
tasks' processes); ``memory=`` asks for one of the two ways a site limits it, for the
tests of what Slurm then does (each starts a Slurm of its own): ``"watched"``,
``jobacct_gather/linux`` every second with ``OverMemoryKill`` (slurmstepd kills a task
over its ``--mem``), and ``"cgroups"``, ``task/cgroup`` with ``ConstrainRAMSpace`` on
cgroup v1 (the kernel ends it; Slurm says OUT_OF_MEMORY). ``"cgroups"`` needs a writable
``/sys/fs/cgroup/memory`` and puts the cluster's jobs under
``/sys/fs/cgroup/memory/slurm_<node>/``, which two such clusters on one machine would
share.

Where Slurm cannot start, :func:`start` raises :class:`SlurmUnavailable` with the
reason: the tests that need Slurm fail with it (CI installs Slurm; see ``.ci/run``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sacct", "sinfo", "scontrol")
CPUS = 8  # declared; the machine may have fewer (SlurmdParameters=config_overrides)
GPUS = 2
PARTITIONS = ("debug", "long")
READY_TIMEOUT = 30.0
MEMORY_LIMITS = {  # memory= -> its slurm.conf lines
    "": "TaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none",
    "watched": "TaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/linux\n"
               "JobAcctGatherFrequency=task=1\nJobAcctGatherParams=OverMemoryKill",
    "cgroups": "TaskPlugin=task/cgroup\nJobAcctGatherType=jobacct_gather/linux",
}
MAX_ARRAY_SIZE = 16  # task ids 0-15 (Slurm's default is 1001)


class SlurmUnavailable(RuntimeError):
    """Slurm could not be started here (missing programs, a daemon that died)."""


@dataclasses.dataclass
class SlurmCluster:
    """A running one-node Slurm; ``conf`` is its slurm.conf (``SLURM_CONF``)."""

    root: str
    conf: str
    node: str
    jobcomp: str
    pids: dict[str, int]
    cgroups: str = ""  # the memory cgroup its slurmd makes (memory="cgroups"), removed at stop

    def env(self) -> dict[str, str]:
        """This process's environment with ``SLURM_CONF`` pointing at this cluster."""
        return dict(os.environ, SLURM_CONF=self.conf)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), env=self.env(), capture_output=True, text=True,
                              timeout=30, check=check)

    def log(self, daemon: str) -> str:
        try:
            with open(os.path.join(self.root, f"{daemon}.log"), errors="replace") as handle:
                return handle.read()[-3000:]
        except OSError:
            return ""


def missing_programs() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name, path=_path()) is None]


def _path() -> str:
    return os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def _free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _write(path: str, text: str, mode: int = 0o644) -> None:
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def _config(root: str, node: str, ports: list[int], max_array_size: int | None, memory: str = "") -> str:
    gpus = ",".join(f"{root}/dev/gpu{i}" for i in range(GPUS))
    partitions = "\n".join(
        f"PartitionName={name} Nodes={node} Default={'YES' if i == 0 else 'NO'} "
        f"MaxTime=INFINITE State=UP" for i, name in enumerate(PARTITIONS))
    _write(os.path.join(root, "gres.conf"), f"NodeName={node} Name=gpu File={gpus}\n")
    if memory == "cgroups":
        _write(os.path.join(root, "cgroup.conf"), "CgroupPlugin=cgroup/v1\nConstrainRAMSpace=yes\n"
                                                   "CgroupMountpoint=/sys/fs/cgroup\n")
    return f"""\
ClusterName=gltest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
{MEMORY_LIMITS[memory]}
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MailProg=/bin/true
Epilog=/bin/true
KillWait=5
MinJobAge=300
DefMemPerCPU=100
ReturnToService=2
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.txt
GresTypes=gpu
{f"MaxArraySize={max_array_size}" if max_array_size else ""}
NodeName={node} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory=8000 Gres=gpu:{GPUS} State=UNKNOWN
{partitions}
"""


def start(root: str | None = None, max_array_size: int | None = MAX_ARRAY_SIZE,
          memory: str = "") -> SlurmCluster:
    """Start munged, slurmctld and slurmd for one node under ``root`` (a new temporary
    directory by default); wait until the node takes jobs. ``max_array_size``: Slurm's
    MaxArraySize (None: Slurm's default); ``memory``: how memory is limited (one of
    :data:`MEMORY_LIMITS`; see the module doc)."""
    missing = missing_programs()
    if missing:
        raise SlurmUnavailable(
            f"Slurm is not installed here (missing: {', '.join(missing)}); install it with "
            "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge")
    if os.geteuid() != 0:
        raise SlurmUnavailable("the test Slurm runs its daemons as root; run the tests as root")
    root = root or tempfile.mkdtemp(prefix="glslurm-")
    os.chmod(root, 0o755)
    node = socket.gethostname().split(".")[0]
    for sub in ("munge", "state", "spool", "dev"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    os.chmod(os.path.join(root, "munge"), 0o711)  # 0700 makes clients fail to reach it
    for index in range(GPUS):
        device = os.path.join(root, "dev", f"gpu{index}")
        if not os.path.exists(device):
            os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))  # a character device
    key = os.path.join(root, "munge", "munge.key")
    with open(key, "wb") as handle:
        handle.write(os.urandom(1024))
    os.chmod(key, 0o400)
    conf = os.path.join(root, "slurm.conf")
    if memory not in MEMORY_LIMITS:
        raise ValueError(f"memory={memory!r}: one of {', '.join(map(repr, MEMORY_LIMITS))}")
    if memory == "cgroups" and not os.access("/sys/fs/cgroup/memory", os.W_OK):
        raise SlurmUnavailable("a Slurm limiting memory by cgroups needs a writable cgroup v1 memory "
                               "controller at /sys/fs/cgroup/memory, which this machine has not")
    _write(conf, _config(root, node, _free_ports(2), max_array_size, memory))
    cluster = SlurmCluster(root, conf, node, os.path.join(root, "jobcomp.txt"), {},
                           f"/sys/fs/cgroup/memory/slurm_{node}" if memory == "cgroups" else "")
    try:
        _start_daemons(cluster, key)
        _wait_ready(cluster)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def _start_daemons(cluster: SlurmCluster, key: str) -> None:
    root = cluster.root
    munge = os.path.join(root, "munge")
    commands = {
        "munged": ["munged", "-f", f"--socket={munge}/munge.socket", f"--key-file={key}",
                   f"--pid-file={munge}/munged.pid", f"--log-file={root}/munged.log",
                   f"--seed-file={munge}/munged.seed"],
        "slurmctld": ["slurmctld", "-c", "-f", cluster.conf],
        "slurmd": ["slurmd", "-N", cluster.node, "-f", cluster.conf],
    }
    pidfiles = {"munged": f"{munge}/munged.pid", "slurmctld": f"{root}/slurmctld.pid",
                "slurmd": f"{root}/slurmd.pid"}
    env = dict(cluster.env(), PATH=_path())
    for daemon, argv in commands.items():
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise SlurmUnavailable(f"{daemon} did not start (exit {result.returncode}): "
                                   f"{(result.stderr or result.stdout).strip()[:500]} "
                                   f"{cluster.log(daemon)[-500:]}")
        cluster.pids[daemon] = _read_pid(pidfiles[daemon], daemon, cluster)


def _read_pid(path: str, daemon: str, cluster: SlurmCluster) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(path) as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise SlurmUnavailable(f"{daemon} wrote no pid file {path}: {cluster.log(daemon)[-500:]}")


def _wait_ready(cluster: SlurmCluster) -> None:
    """Until the node is idle in sinfo (it then takes jobs)."""
    deadline = time.monotonic() + READY_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        for daemon, pid in cluster.pids.items():
            if not _alive(pid):
                raise SlurmUnavailable(f"{daemon} died while starting: {cluster.log(daemon)[-800:]}")
        result = cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False)
        state = (result.stdout or result.stderr).strip()
        if result.returncode == 0 and state.split("\n")[0].rstrip("*") in ("idle", "mixed"):
            return
        time.sleep(0.2)
    raise SlurmUnavailable(f"the Slurm node was not ready after {READY_TIMEOUT:.0f} s (sinfo: {state!r}); "
                           f"slurmd: {cluster.log('slurmd')[-500:]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(cluster: SlurmCluster) -> None:
    """Cancel what is left in it, stop the three daemons (TERM, then KILL), end what they
    left (a job step's slurmstepd outlives a killed slurmd), remove its directory. Once:
    a second call does nothing."""
    if not cluster.pids:
        return
    if cluster.pids.get("slurmctld"):
        cluster.run("scancel", "--full", "-u", "root", check=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cluster.run(
                "squeue", "-h", "-o", "%i", check=False).stdout.strip():
            time.sleep(0.2)
    for daemon in ("slurmd", "slurmctld", "munged"):
        pid = cluster.pids.get(daemon)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for daemon in ("slurmd", "slurmctld", "munged"):
        pid = cluster.pids.get(daemon)
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)
    for pid in _started_by(cluster):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    cluster.pids.clear()
    shutil.rmtree(cluster.root, ignore_errors=True)
    for folder, _dirs, _files in os.walk(cluster.cgroups, topdown=False) if cluster.cgroups else ():
        try:
            os.rmdir(folder)  # a cgroup goes only once empty: never one that still holds a process
        except OSError:
            pass


def _started_by(cluster: SlurmCluster) -> list[int]:
    """Processes that carry this cluster's SLURM_CONF (what its daemons started)."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get("SLURM_CONF") == cluster.conf:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found
