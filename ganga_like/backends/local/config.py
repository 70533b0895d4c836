"""``Local()``: run subjobs as processes on this machine."""

from __future__ import annotations

import os

from ...model.component import Field, check_positive_int
from ..config import BackendConfig


def _check_concurrency(value: object) -> int | None:
    return None if value is None else check_positive_int(value)


class Local(BackendConfig):
    """Run each subjob as a process on this machine, through a small wrapper.

    At most ``concurrency`` subjobs run at once (default: the number of CPUs);
    the rest wait with backend detail ``Queued``. Processes run in their own
    session, so they outlive the session that started them; the next session
    adopts them.
    """

    concurrency = Field(None, _check_concurrency, "a positive whole number or None (CPU count)",
                        "how many subjobs run at once on this machine")

    @property
    def batchsize(self) -> int | None:
        """Ganga's name for ``concurrency`` (Ganga's Local runs ``batchsize`` at once)."""
        return self.concurrency

    @batchsize.setter
    def batchsize(self, value: object) -> None:
        self.concurrency = value

    def __init__(self, *positional: object, **values: object) -> None:
        if "batchsize" in values:
            values["concurrency"] = values.pop("batchsize")
        super().__init__(*positional, **values)

    def effective_concurrency(self) -> int:
        return self.concurrency or os.cpu_count() or 1

    def actor_key(self) -> tuple:
        return ("Local", self.effective_concurrency())

    def make_actor(self, name: str) -> object:
        from ...ray_runtime import RAY_NAMESPACE
        from .actor import start_local_actor

        return start_local_actor(name, concurrency=self.effective_concurrency(),
                                 namespace=RAY_NAMESPACE, get_if_exists=True)
