"""A Hosts subjob's gang: its hosts (members), how they are found again, how it ended.

Pure bookkeeping and status-file reading: no Ray call is made here.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from ganga_like.backends import base
from ganga_like.backends.base import Handle
from ganga_like.backends.hosts import scheduler as sch
from ganga_like.backends.hosts.inventory import Inventory
from ganga_like.backends.runtime import outcome, trace
from ganga_like.backends.runtime.runs import Run

Target = tuple[int, float, "str | None"]  # (pid, create_time, marker): a picklable procs.Target


@dataclasses.dataclass(eq=False)
class Member:
    """One host of a subjob's gang."""

    host: str
    node_id: str
    workdir: str
    ref: Any = None
    pid: int = 0
    create_time: float = 0.0
    result: dict[str, Any] | None = None  # what the task returned, or {"error": ...}
    done: bool = False  # its task (host_run or host_watch) has ended
    # Its processes are confirmed ended (its task returned, or a kill or a look confirmed it).
    gone: bool = False
    # Its processes may still run and cannot be confirmed ended now: its host's Ray node is
    # gone (or its agent did not answer, or a kill could not confirm). The run is held, not
    # final, until the host's agent confirms (HostsActor._settle_stranded).
    stranded: bool = False
    gpu_ids: tuple[int, ...] = ()  # its host's GPU ids it holds (CUDA_VISIBLE_DEVICES)

    def target(self, marker: str) -> Target:
        return (self.pid, self.create_time, marker)


@dataclasses.dataclass(eq=False)
class HostsRun(Run):
    entry: sch.Entry | None = None
    members: list[Member] = dataclasses.field(default_factory=list)
    pg: Any = None
    lost: str = ""  # why the gang is being ended (a member's host or task was lost): its final LOST note
    kill_asked: bool = False  # kill() asked for it: a confirmed end is KILLED
    verify_failures: int = 0  # how many times its hosts failed their checks before it started

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(m.host for m in self.members)

    @property
    def stranded(self) -> bool:
        """A member's processes may still run where they cannot be checked now."""
        return any(m.stranded for m in self.members)

    def gang_outcome(self) -> outcome.Outcome:
        """How the gang ended: LOST if a host's task failed or a wrapper vanished, else
        FINISHED with the first non-zero exit code of the hosts (host 0's otherwise)."""
        errors = [m.result["error"] for m in self.members if m.result and m.result.get("error")]
        if errors:
            return base.LOST, None, errors[0]
        per_host = [(m.host, *outcome.outcome_of(trace.last(m.workdir),
                                                 (m.result or {}).get("returncode")))
                    for m in self.members]
        lost = [(h, note) for h, kind, _c, note in per_host if kind == base.LOST]
        if lost:
            return base.LOST, None, f"on {lost[0][0]}: {lost[0][1]}"
        if len(per_host) == 1:
            return per_host[0][1], per_host[0][2], per_host[0][3]
        failing = [p for p in per_host if p[2]]
        code = failing[0][2] if failing else per_host[0][2]
        return base.FINISHED, code, "; ".join(f"{h}: {note}" for h, _k, _c, note in per_host)


def member_workdir(workdir: str, index: int, host: str) -> str:
    """Host 0 runs in the subjob's workdir, host *i* in ``<workdir>/hosts/<name>``."""
    return workdir if index == 0 else os.path.join(workdir, "hosts", host)


def members_of(handle: Handle, inventory: Inventory) -> list[Member]:
    """The gang a handle names (``host`` is the comma list of its hosts); a member
    whose node is down has no ``node_id``."""
    members = []
    for index, host in enumerate(handle.host.split(",") if handle.host else []):
        node = inventory.hosts.get(host)
        members.append(Member(host, node.node_id if node is not None and node.alive else "",
                              member_workdir(handle.workdir, index, host)))
    return members


def target_of(handle: Handle, member: Member, index: int) -> Target:
    marker = outcome.marker_of(member.workdir) or outcome.marker_of(handle.workdir)
    if index == 0:
        return (handle.pid, handle.create_time, marker)
    return (member.pid, member.create_time, marker)


def wait_members(members: list[Member], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(m.ref is not None and not m.done for m in members) and time.monotonic() < deadline:
        time.sleep(0.02)


def task_id_of(ref: Any) -> str:
    try:
        return ref.task_id().hex()
    except Exception:
        return ""


def reason_of(host: str, error: BaseException) -> str:
    text = str(error).strip().splitlines()
    name = type(error).__name__
    head = " ".join(text[:3]).lower()
    if "NodeDied" in name or ("node" in head and "died" in head):
        return f"host {host} died: {name}"
    return f"on host {host}: {name}: {text[0] if text else ''}"[:300]
