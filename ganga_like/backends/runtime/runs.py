"""A backend actor's record of one subjob (a *run*) and the one table of its states.

Every backend actor keeps a :class:`Run` per subjob it queued, starts, runs or
watches, from ``submit()`` (or ``adopt()``) until the subjob's final event; then
the run is ``done`` and forgotten. Its state moves only through
:meth:`RunTable.move <ganga_like.backends.runtime.table.RunTable.move>`, which checks
:data:`RUN_MOVES` (edges as data, with what triggers each) and refuses anything else
with :class:`RunStateError`, naming the moves allowed from there.

What each state means, for every backend alike:

==========  ===================================================================
new         accepted by ``submit()``, not placed yet (being checked, prepared)
queued      waiting in the actor: no free slot, or no host assigned yet
starting    being handed over (a process spawned, a Ray task created, hosts
            verified); settles in a moment: ``kill()`` waits for it
priming     taken from the queue to follow a running run in its slot, its wrapper
            being spawned; settles in a moment: ``kill()`` waits for it
primed      its wrapper waits for the run it follows to end, then starts at once
            (Local: the slot changes hands without the actor); holds no slot
pending     handed over, its wrapper not started yet (a Ray task waiting for a
            worker, host tasks starting); can be cancelled
running     its wrapper runs (or, adopted, was found running)
lingering   its wrapper ended but processes it left behind are being ended or
            awaited: the subjob still holds its resources
done        its final event is out; nothing of it is held
==========  ===================================================================

Runs in :data:`SLOT_STATES` count against the actor's cap (``concurrency``,
``max_in_flight``, ``max_running``); a lingering run no longer holds a slot (its
payload has ended) but still holds its processes, so it is not ``done``.

Beside the run states, the words a subjob's *backend detail* (``j.backend_detail``,
a backend's minor status) may say, in :data:`DETAILS`: every actor and the monitor
take them from there (docs/architecture.md shows the table, checked by
``tests/unit/test_event_rules.py``).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from ganga_like.backends.base import Handle, SubjobSpec
from ganga_like.backends.resources import Grant, Request
from ganga_like.errors import GangaLikeError

NEW, QUEUED, STARTING, PRIMING, PRIMED, PENDING, RUNNING, LINGERING, DONE = (
    "new", "queued", "starting", "priming", "primed", "pending", "running", "lingering", "done")
RUN_STATES = (NEW, QUEUED, STARTING, PRIMING, PRIMED, PENDING, RUNNING, LINGERING, DONE)

# (from, to) -> what makes a run move so.
RUN_MOVES: dict[tuple[str, str], str] = {
    (NEW, QUEUED): "accepted; no free slot, or waiting for the scheduler",
    (NEW, STARTING): "accepted with a free slot",
    (NEW, RUNNING): "adopted: its wrapper still runs",
    (NEW, LINGERING): "adopted: its wrapper ended, processes it left still run",
    (NEW, DONE): "refused: it cannot be prepared",
    (QUEUED, STARTING): "a slot freed, or the scheduler assigned its hosts",
    (QUEUED, DONE): "killed while queued, or no host can ever run it",
    (STARTING, QUEUED): "a host failed verify: back to the head of the queue",
    (STARTING, PENDING): "handed over, waiting for its wrapper to start",
    (STARTING, RUNNING): "its wrapper started",
    (STARTING, DONE): "it could not be started",
    (QUEUED, PRIMING): "next in the queue, to follow a running run in its slot",
    (PRIMING, PRIMED): "its wrapper waits for the run it follows to end",
    (PRIMING, QUEUED): "its wrapper could not be spawned: back to the head of the queue",
    (PRIMED, RUNNING): "the run it follows ended: its wrapper started in that slot",
    (PRIMED, DONE): "killed, or its wrapper ended before the run it follows did",
    (PENDING, RUNNING): "its wrapper started",
    (PENDING, DONE): "cancelled, or lost before it started",
    (RUNNING, LINGERING): "its wrapper ended; processes it left still run",
    (RUNNING, DONE): "ended with every process gone, killed, or lost",
    (LINGERING, DONE): "the processes it left are gone",
}

# The backend detail: the words a subjob's ``backend_detail`` says, the one table
# of them. Actors send them with their events (``Event.detail``); the monitor writes
# Done, Lost and Killed itself when an event names none (``ganga_like.event_rules``).
QUEUED_DETAIL = "Queued"
# Why a subjob waits (Slurm's Reason column): the code is the detail, the event's note
# says it with counts.
CONCURRENCY_LIMIT_DETAIL = "ConcurrencyLimit"
RESOURCES_DETAIL = "Resources"
PRIORITY_DETAIL = "Priority"
HOSTS_NOT_READY_DETAIL = "HostsNotReady"
GROUP_TOO_SMALL_DETAIL = "GroupTooSmall"
PENDING_DETAIL = "Pending"
VERIFYING_DETAIL = "Verifying"
STARTING_DETAIL = "Starting"
RUNNING_DETAIL = "Running"
LINGERING_DETAIL = "Lingering"
GATHERING_DETAIL = "Gathering"
NODE_LOST_DETAIL = "Node lost"
SLURM_DETAIL = "Slurm"  # followed by Slurm's own state and reason: "Slurm PENDING (Priority)"
DONE_DETAIL = "Done"
LOST_DETAIL = "Lost"
KILLED_DETAIL = "Killed"


class Detail(NamedTuple):
    states: tuple[str, ...]  # the run states a run may be in while its subjob says it
    who: str  # which backends (or the monitor) say it
    meaning: str


DETAILS: dict[str, Detail] = {
    QUEUED_DETAIL: Detail((QUEUED, PENDING), "every backend",
                          "accepted, waiting in the actor for a free slot or for the scheduler, "
                          "or (Slurm) taken into Slurm's queue (the reason says which)"),
    CONCURRENCY_LIMIT_DETAIL: Detail((QUEUED,), "Local, RayCluster",
                                     "every slot is taken: `Local's concurrency limit 4 reached` "
                                     "(RayCluster: its `max_in_flight`)"),
    RESOURCES_DETAIL: Detail((QUEUED, PENDING), "Local, RayCluster",
                             "Local: a slot is free but not the GPUs or memory it asks for "
                             "(`needs 2 GPUs, 0 of 2 free`, `needs 4096 MB, 1024 MB unreserved`); "
                             "RayCluster: handed to Ray, and no node has what it asks for free now "
                             "(Ray's view of the demand in the note)"),
    PRIORITY_DETAIL: Detail((QUEUED,), "Local, RayCluster",
                            "others go first: a subjob of a higher priority, or of a job with fewer "
                            "subjobs running (fair share), waits ahead of it and cannot start yet"),
    HOSTS_NOT_READY_DETAIL: Detail((QUEUED,), "Hosts",
                                   "hosts that could run it exist, too few are Ready; the note counts "
                                   "the hosts by reason (`of 5 hosts: 2 lack label gpu, 1 is Repair "
                                   "Failed, 2 hold subjobs 3.1 and 3.2`)"),
    GROUP_TOO_SMALL_DETAIL: Detail((QUEUED,), "Hosts",
                                   "an atomic-group subjob: no instance has synch_count Ready hosts, or "
                                   "it waits (group_wait) for more (`group rack1: 2 of 3 hosts Ready, "
                                   "waiting up to 540 s more for the others`)"),
    PENDING_DETAIL: Detail((QUEUED, PENDING), "RayCluster, Hosts",
                           "RayCluster: handed to Ray, waiting for a worker with the resources; "
                           "Hosts: a synchronous subjob holding some of its hosts, waiting for the others"),
    VERIFYING_DETAIL: Detail((STARTING,), "Hosts",
                             "hosts chosen, being cleaned (reboot_before), verified and reserved together"),
    STARTING_DETAIL: Detail((PENDING,), "Hosts",
                            "its host tasks were launched, its wrappers not started yet"),
    RUNNING_DETAIL: Detail((RUNNING, LINGERING), "every backend",
                           "its wrapper runs (or, adopted, was found running)"),
    LINGERING_DETAIL: Detail((LINGERING,), "Local, RayCluster",
                             "its wrapper ended; processes it left are being ended or awaited"),
    GATHERING_DETAIL: Detail((RUNNING,), "Hosts",
                             "the payload ended on every host; collecting the exit status"),
    NODE_LOST_DETAIL: Detail((PENDING, RUNNING), "Hosts",
                             "`Node lost: <hosts>, payload state unknown`: held until the host's agent "
                             "confirms the payload ended"),
    SLURM_DETAIL: Detail((PENDING, RUNNING), "Slurm",
                         "`Slurm <STATE> (<Reason>)`: the task's state and reason in Slurm, as squeue "
                         "shows them (docs/backends.md maps each state to a status)"),
    DONE_DETAIL: Detail((DONE,), "the monitor", "it finished (the backend named no detail)"),
    LOST_DETAIL: Detail((DONE,), "the monitor", "the backend lost it without an exit status"),
    KILLED_DETAIL: Detail((DONE,), "the monitor", "killed, the backend confirmed it"),
}


def node_lost_detail(hosts: list[str]) -> str:
    """The detail of a run held because the Ray node of these hosts is gone."""
    return f"{NODE_LOST_DETAIL}: {', '.join(hosts)}, payload state unknown"


def details_markdown() -> str:
    """The backend-detail table as Markdown (docs/architecture.md quotes it)."""
    rows = ["| detail | run states | said by | meaning |", "|---|---|---|---|"]
    rows += [f"| {word} | {', '.join(d.states)} | {d.who} | {d.meaning} |" for word, d in DETAILS.items()]
    return "\n".join(rows)


SETTLING_STATES = frozenset({NEW, STARTING, PRIMING})  # kill() waits until a run leaves them
SLOT_STATES = frozenset({STARTING, PENDING, RUNNING})  # counted against the cap
FOLLOWER_STATES = frozenset({PRIMING, PRIMED})  # a wrapper waits for its slot: not started
HELD_STATES = frozenset(RUN_STATES) - {DONE}  # a known run holds something until done


class RunStateError(GangaLikeError):
    """A run asked to move where the run-state table does not allow."""

    def __init__(self, fqid: str, src: str, dst: str, cause: str) -> None:
        allowed = sorted(to for (frm, to) in RUN_MOVES if frm == src)
        super().__init__(
            f"run {fqid} cannot move {src} -> {dst} ({cause}); "
            f"from {src} it may move to: {', '.join(allowed) or 'nowhere (final)'}",
            fqid=fqid, src=src, dst=dst, allowed=allowed)


@dataclasses.dataclass(eq=False)
class Run:
    """One subjob in an actor. Drivers subclass it for what only they keep (a
    process's pidfd, a Ray task's ref, a gang's hosts); the state is the table's.

    ``killing``: ``kill()`` owns the run's final event; watchers leave it alone.
    ``history``: the run's moves, ``(from, to, cause)``, newest last (for errors).
    """

    fqid: str
    workdir: str
    marker: str
    handle: Handle
    spec: SubjobSpec | None = None  # None for work adopted from an earlier actor
    state: str = NEW
    detail: tuple[str, str] = ("", "")  # the last DETAIL told: (backend status, reason)
    killing: bool = False
    history: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    # What it asks for and holds (set by RunTable.add from its spec, or its adopted handle):
    request: Request = Request()
    priority: int = 0
    slots: float = 1  # of the table's cap it takes while in SLOT_STATES
    grant: Grant | None = None  # what it holds of the table's pool (GPU ids, memory)
    queued_seq: int = 0  # its place in the queue's order (RunTable.queued)

    @property
    def status_path(self) -> str:
        return f"{self.workdir}/status"

    @property
    def adopted(self) -> bool:
        return self.spec is None

    @property
    def job(self) -> str:
        """Its top-level job's id: the unit slots are shared between (fair share)."""
        return self.fqid.partition(".")[0]


def check_move(run: Run, dst: str, cause: str) -> None:
    """Raise :class:`RunStateError` unless ``run`` may move to ``dst``."""
    if (run.state, dst) not in RUN_MOVES:
        raise RunStateError(run.fqid, run.state, dst, cause)


def table_markdown() -> str:
    """The run-state table as Markdown (docs/architecture.md quotes it)."""
    rows = ["| from | to | when |", "|---|---|---|"]
    rows += [f"| {src} | {dst} | {why} |" for (src, dst), why in RUN_MOVES.items()]
    return "\n".join(rows)

