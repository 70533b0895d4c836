"""``Interactive()``: run the job on this machine and wait for it, as Ganga's Interactive.

The work is done by Local's actor (the same processes, wrapper and monitoring);
what differs is the verb: ``j.submit()`` returns only when every (sub)job has
finished, and then prints their standard output, so a script can use the results
on the next line. Subjobs run side by side, up to the machine's CPU count (Ganga's
Interactive runs one process at a time). As for Local, an executable that cannot run
here is refused at ``submit()`` (``operations.preflight``): the job stays new.
"""

from __future__ import annotations

from ..config import BackendConfig
from .config import Local


class Interactive(BackendConfig):
    """Run the job on this machine in the foreground: ``submit()`` returns when it has
    finished, and prints its standard output (Ganga's ``Interactive()``)."""

    _foreground = True  # read by Job.submit: wait, then show the output

    def _local(self) -> Local:
        return Local()

    def actor_key(self) -> tuple:
        return self._local().actor_key()  # shares Local's actor

    def spec_options(self) -> dict:
        return self._local().spec_options()

    def make_actor(self, name: str) -> object:
        return self._local().make_actor(name)
