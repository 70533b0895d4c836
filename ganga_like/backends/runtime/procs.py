"""Process helpers for every backend: identity, liveness, whole-tree kills, markers.

A process is identified by ``(pid, create_time)``: the pid alone may be reused by
an unrelated process, the pair may not. ``create_time`` is psutil's value (seconds
since the epoch); comparisons allow :data:`CT_TOLERANCE` because it is derived
from clock ticks and the boot time.

What belongs to one subjob (its *tree*), given the wrapper's ``(pid, create_time)``
and optionally its marker:

* the wrapper itself and its descendants (by parent pid);
* every process in the wrapper's process group or session: the wrapper is
  started with ``start_new_session=True``, so its pid is both ids, and orphans
  that were re-parented to init are still found this way;
* every process whose environment carries ``GANGA_LIKE_MARKER=<marker>``, which
  also finds what left the session (daemons calling ``setsid``).

Zombies count as dead everywhere: they hold no resources but a pid, and psutil's
``is_running()`` is True for them.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterable, Sequence

import psutil

from ganga_like.backends.resources import BYTES_PER_MB

MARKER_VAR = "GANGA_LIKE_MARKER"
CT_TOLERANCE = 0.005  # seconds; psutil create_time has clock-tick resolution

_MARKER_NEEDLE = (MARKER_VAR + "=").encode()


def create_time(pid: int) -> float | None:
    """psutil create_time of ``pid``, or None if there is no such process."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_boot_time_cache = (0.0, 0.0)  # (monotonic time read, boot time)


def _boot_time() -> float:
    # psutil re-reads /proc/stat on every call; the boot time only moves when the clock
    # is stepped, so one read per second keeps the hot path of the actor short.
    global _boot_time_cache
    read_at, value = _boot_time_cache
    now = time.monotonic()
    if now - read_at > 1.0:
        value = psutil.boot_time()
        _boot_time_cache = (now, value)
    return value


def start_time(pid: int) -> float | None:
    """The same value as :func:`create_time` (psutil's formula), from one read of
    ``/proc/<pid>/stat``; None if there is no such process."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        ticks = int(data[data.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return create_time(pid)
    return ticks / _CLOCK_TICKS + _boot_time()


def process_tag(pid: int | None = None) -> str:
    """``<pid>-<start time>``: names a process for as long as it lives (files a process
    leaves for whoever outlives it: the tidier's journal, spare directories)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{start_time(pid) or 0.0:.2f}"


def tag_alive(tag: str) -> bool:
    """Whether the process :func:`process_tag` named (a name may carry more after a
    second ``-``) still runs."""
    pid, _, start = tag.partition("-")
    try:
        started = float(start.split("-")[0])
        return abs((start_time(int(pid)) or -1.0) - started) <= 0.02  # the tag rounds it
    except ValueError:
        return False


NS_PER_TICK = 1_000_000_000 // _CLOCK_TICKS


def boot_clock_ns() -> int:
    """CLOCK_BOOTTIME now, in ns: the clock the kernel stamps a new process with."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def spawned_start_time(pid: int, before_ns: int, after_ns: int) -> float | None:
    """:func:`start_time` of a process this one started between two :func:`boot_clock_ns`
    readings, read from /proc only when they straddle a clock tick.

    The kernel stamps a process with CLOCK_BOOTTIME as it is forked and shows it in
    ``/proc/<pid>/stat`` in whole clock ticks (10 ms). A spawn takes well under a tick,
    so both readings nearly always fall in the tick the process was stamped in: the
    start time is known without the open, read and close of its stat file (a tenth of
    what the Local actor spent per subjob). Otherwise it is read as :func:`start_time`
    does.
    """
    tick = before_ns // NS_PER_TICK
    if tick != after_ns // NS_PER_TICK:
        return start_time(pid)
    return tick / _CLOCK_TICKS + _boot_time()


def same_process(proc: psutil.Process, create_time_: float) -> bool:
    try:
        return abs(proc.create_time() - create_time_) < CT_TOLERANCE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def is_alive(pid: int, create_time_: float) -> bool:
    """True if the process ``(pid, create_time)`` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if abs(proc.create_time() - create_time_) >= CT_TOLERANCE:
                return False  # the pid was reused
            return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _dead(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def group_may_live(pid: int, create_time_: float) -> bool:
    """Cheap test (one or two syscalls): may a process still be in the group ``pid``?

    The wrapper leads its own group, so its pid is the group id. Linux does not
    hand out a pid still used as a group id, so if process ``pid`` exists but is
    not the wrapper, the wrapper's group is gone and that is someone else's.
    """
    if pid <= 0:
        return False
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else: decided below
    leader = create_time(pid)
    if leader is None:
        # Leader gone, group not: orphans of the wrapper (or zombies awaiting init).
        return _group_has_live_member(pid)
    if abs(leader - create_time_) >= CT_TOLERANCE:
        return False
    return is_alive(pid, create_time_) or _group_has_live_member(pid)


def _group_has_live_member(pgid: int) -> bool:
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def read_marker(pid: int) -> str | None:
    """The value of GANGA_LIKE_MARKER in the environment ``pid`` was started with."""
    return read_variable(pid, _MARKER_NEEDLE)


def read_variable(pid: int, needle: bytes) -> str | None:
    """The value of a variable (``needle``: ``b"NAME="``) in the environment ``pid`` was
    started with, None if it has none or cannot be read."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    if data.startswith(needle):
        start = len(needle)
    else:
        found = data.find(b"\0" + needle)
        if found < 0:
            return None
        start = found + 1 + len(needle)
    end = data.find(b"\0", start)
    return data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")


@dataclasses.dataclass(frozen=True)
class ProcInfo:
    """One live process seen by :func:`scan`."""

    pid: int
    create_time: float
    ppid: int
    pgid: int
    sid: int
    marker: str | None


def scan(with_markers: bool = True) -> list[ProcInfo]:
    """One pass over every live (non-zombie) process of the machine."""
    result = []
    for proc in psutil.process_iter():
        try:
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                info = ProcInfo(
                    pid=proc.pid,
                    create_time=proc.create_time(),
                    ppid=proc.ppid(),
                    pgid=os.getpgid(proc.pid),
                    sid=os.getsid(proc.pid),
                    marker=read_marker(proc.pid) if with_markers else None,
                )
        except (psutil.Error, OSError):
            continue
        result.append(info)
    return result


def find_by_marker(prefix: str) -> list[tuple[int, float, str]]:
    """``(pid, create_time, marker)`` of live processes whose marker starts with ``prefix``."""
    found = []
    for pid in psutil.pids():
        marker = read_marker(pid)
        if marker is None or not marker.startswith(prefix):
            continue
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            found.append((pid, proc.create_time(), marker))
        except psutil.Error:
            continue
    return found


def marked_tops(prefix: str) -> list[tuple[int, float, str]]:
    """The top process of each live marked tree (a process whose parent does not carry a
    marker too) for markers starting with ``prefix``: ``(pid, create_time, marker)``,
    one per marker, sorted by marker."""
    found = find_by_marker(prefix)
    marked = {pid for pid, _created, _marker in found}
    tops: dict[str, tuple[int, float, str]] = {}
    for pid, created, marker in sorted(found):
        try:
            parent = psutil.Process(pid).ppid()
        except psutil.Error:
            continue
        if parent not in marked:
            tops.setdefault(marker, (pid, created, marker))
    return [tops[marker] for marker in sorted(tops)]


@dataclasses.dataclass(frozen=True)
class Target:
    """A subjob's tree to find or kill: its wrapper's identity and marker."""

    pid: int
    create_time: float
    marker: str | None = None


def tree_members(target: Target, table: Sequence[ProcInfo]) -> list[ProcInfo]:
    """Every process of ``table`` that belongs to ``target``'s tree (see module doc)."""
    leader = next((p for p in table if p.pid == target.pid), None)
    leader_ours = leader is not None and abs(leader.create_time - target.create_time) < CT_TOLERANCE
    # If the pid now belongs to an unrelated process, group/session ids equal to it are
    # that process's, not ours (Linux does not reuse a pid still used as a group id).
    by_ids = target.pid > 0 and (leader is None or leader_ours)
    members: dict[int, ProcInfo] = {}
    if leader is not None and leader_ours:
        members[leader.pid] = leader
    for proc in table:
        if by_ids and (proc.pgid == target.pid or proc.sid == target.pid):
            members[proc.pid] = proc
        elif target.marker and proc.marker == target.marker:
            members[proc.pid] = proc
    # Descendants by parent pid (a child that changed group and session and dropped
    # the marker is still found while its ancestors live).
    children: dict[int, list[ProcInfo]] = {}
    for proc in table:
        children.setdefault(proc.ppid, []).append(proc)
    stack = list(members.values())
    while stack:
        for child in children.get(stack.pop().pid, ()):
            if child.pid not in members and child.create_time >= target.create_time - CT_TOLERANCE:
                members[child.pid] = child
                stack.append(child)
    return _parents_first(members)


def _parents_first(members: dict[int, ProcInfo]) -> list[ProcInfo]:
    """The members, each after its ancestors among them: signalled in this order, a
    parent has its SIGKILL pending before its child's death can wake it (a shell that
    ignores TERM would otherwise run its next command, killed a moment later)."""
    def depth(proc: ProcInfo) -> int:
        level, parent = 0, members.get(proc.ppid)
        while parent is not None and level < len(members):
            level, parent = level + 1, members.get(parent.ppid)
        return level

    return sorted(members.values(), key=lambda proc: (depth(proc), proc.pid))


def held(targets: Sequence[Target]) -> list[bool]:
    """For each target: does any process of its tree still live? (one scan for all)"""
    table = scan(with_markers=any(t.marker for t in targets))
    return [bool(tree_members(t, table)) for t in targets]


@dataclasses.dataclass(frozen=True)
class KillOutcome:
    confirmed: bool
    killed: int  # processes signalled
    survivors: tuple[int, ...] = ()
    note: str = ""


def kill_tree(pid: int, create_time_: float, grace: float = 3.0, marker: str | None = None) -> KillOutcome:
    """Kill one subjob's whole tree; see :func:`kill_trees`."""
    return kill_trees([Target(pid, create_time_, marker)], grace)[0]


def kill_trees(targets: Sequence[Target], grace: float = 3.0) -> list[KillOutcome]:
    """TERM every tree, wait up to ``grace`` s, KILL what is left, confirm all are gone.

    All targets are handled together (one grace period, one scan per round), so
    killing 100 subjobs costs about as much as killing one. SIGTERM may be
    ignored, and an ignored SIGTERM is inherited by children: SIGKILL always
    follows for anything still alive. ``confirmed`` is True only when a final
    scan finds no process of the tree alive (zombies count as dead).
    """
    killer = _TreeKiller(targets)
    _wait_dead(killer.send(killer.collect(), signal.SIGTERM), grace)
    for _round in range(3):
        remaining = killer.collect()
        if not any(remaining):
            break
        _wait_dead(killer.send(remaining, signal.SIGKILL), 2.0)
    return killer.outcomes(killer.collect())


class _TreeKiller:
    """The trees of several targets: who is in each, and whom each signal reached."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self.targets = targets
        self.with_markers = any(t.marker for t in targets)
        self.signalled: list[set[int]] = [set() for _ in targets]
        self.procs: dict[tuple[int, float], psutil.Process] = {}

    def collect(self) -> list[list[ProcInfo]]:
        table = scan(self.with_markers)
        return [tree_members(t, table) for t in self.targets]

    def send(self, members_per_target: list[list[ProcInfo]], sig: int) -> list[psutil.Process]:
        sent = []
        for index, members in enumerate(members_per_target):
            for info in members:
                proc = self._process(info)
                if proc is None:
                    continue
                try:
                    # psutil checks (pid, create_time) before signalling: reuse-safe.
                    proc.send_signal(sig)
                except (psutil.NoSuchProcess, ProcessLookupError):
                    continue
                except psutil.AccessDenied:
                    pass
                self.signalled[index].add(info.pid)
                sent.append(proc)
        return sent

    def _process(self, info: ProcInfo) -> psutil.Process | None:
        key = (info.pid, info.create_time)
        proc = self.procs.get(key)
        if proc is None:
            try:
                proc = psutil.Process(info.pid)
            except psutil.NoSuchProcess:
                return None
            if not same_process(proc, info.create_time):
                return None
            self.procs[key] = proc
        return proc

    def outcomes(self, final: list[list[ProcInfo]]) -> list[KillOutcome]:
        outcomes = []
        for index, members in enumerate(final):
            count = len(self.signalled[index])
            if members:
                pids = tuple(sorted(p.pid for p in members))
                note = f"{len(pids)} process(es) still alive after SIGKILL: {pids}"
                outcomes.append(KillOutcome(False, count, pids, note))
            else:
                note = _ended(count)
                outcomes.append(KillOutcome(True, count, (), note))
        return outcomes


def _ended(count: int) -> str:
    """A confirmed kill, as a user reads it. No count: how many processes were signalled
    one by one (the wrapper, a shell, its children, or a group at once) means nothing
    to whoever ran one command ("3 process(es) ended" for one sh -c with a sleep)."""
    return "its processes ended" if count else "nothing was running"


def _wait_dead(procs: Iterable[psutil.Process], timeout: float) -> None:
    """Wait until every process is dead or a zombie (psutil's wait would wait on zombies)."""
    pending = [p for p in procs if not _dead(p)]
    deadline = time.monotonic() + timeout
    delay = 0.001
    while pending and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
        pending = [p for p in pending if not _dead(p)]


def machine_memory_mb() -> int:
    """This machine's total memory, in MB (what Local reserves subjobs' memory from)."""
    return int(psutil.virtual_memory().total // BYTES_PER_MB)
