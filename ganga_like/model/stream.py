"""A master's submission that goes on after ``submit()`` returned (the *stream*).

``submit()`` of a master with many subjobs stores every subjob (``new``), moves the
first batch to ``submitting``, hands it to the backend and returns; the rest is sent
in batches by the service (``engine/streamer.py``). What is left to send is one
small record on the master, apart from its counts and its history, so the batches
and the monitor's commits write different records:

* while subjobs are left to send and nobody stopped it, the master reads
  ``submitting`` (the first status of the master rule: the subjobs still to send are
  submissions under way), whatever its counts say;
* ``kill()`` and ``remove()`` stop it (``stopped`` says why): the subjobs not sent
  stay ``new`` and the master is derived from its counts again;
* a service that dies meanwhile leaves the record as it was: the next one recovers
  the batch it was sending and sends the rest.
"""

from __future__ import annotations

from typing import Protocol

from persistent import Persistent

from ..status import Cause, Status, master_status
from .counts import StatusCounts


class SubmitStream(Persistent):
    """Where a master's streamed submission is: the next subjob id to look at, how many
    are left to send, and why it stopped early ('' while it goes on)."""

    next_id: int = 0  # subjobs below this id were taken by a batch (or were not new)
    left: int = 0  # subjobs still to send
    total: int = 0  # subjobs the submission sends in all
    stopped: str = ""
    keep_going: bool = False  # submit(keep_going=): a refused batch does not stop the rest
    cause: tuple | None = None  # the submit's cause (``Cause.stored``), which every batch names

    def __init__(self, next_id: int, left: int, total: int, keep_going: bool = False,
                 cause: Cause | None = None) -> None:
        self.next_id, self.left, self.total = next_id, left, total
        self.keep_going = keep_going
        self.cause = None if cause is None else cause.stored()

    @property
    def sending(self) -> bool:
        """Whether subjobs are still to be sent (and nobody stopped it)."""
        return self.left > 0 and not self.stopped

    def stop(self, why: str) -> None:
        if self.sending:
            self.stopped = why

    def describe(self) -> str:
        """One line for ``why()`` and listings."""
        sent = self.total - self.left
        if self.stopped:
            return (f"its submission stopped ({self.stopped}) after {sent} of {self.total} "
                    f"subjobs were sent; {self.left} stay new")
        return f"sending its subjobs to the backend: {sent} of {self.total} sent, {self.left} to send"


class Streamed(Protocol):
    """What is read of a master here (``model.job.Job`` has it; job.py imports this
    module, so it is not imported back)."""

    _stream: SubmitStream | None
    _counts: StatusCounts


def stream_of(master: Streamed) -> SubmitStream | None:
    """The master's stream while it sends, else None."""
    stream = master._stream
    return stream if stream is not None and stream.sending else None


def derived_status(master: Streamed) -> Status:
    """A master's status: ``submitting`` while its stream sends, else the master rule
    over its counts (``status.master_status``)."""
    if stream_of(master) is not None:
        return Status.SUBMITTING
    return master_status(master._counts.counts)
