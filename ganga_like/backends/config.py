"""The base class of backend config objects (what a user sets as ``j.backend``)."""

from __future__ import annotations

from ..model.backend_base import BackendComponent
from .resources import Capacity, Request, refusal_anywhere


class BackendConfig(BackendComponent):
    """A backend's settings; the session maps it to the backend's Ray actor."""

    _category = "backends"

    def actor_key(self) -> tuple:
        """Which actor serves this config: configs with equal keys share one actor."""
        return (type(self).__name__,)

    def spec_options(self) -> dict:
        """Backend settings every subjob's spec carries (``SubjobSpec.options``)."""
        return {}

    def check_submit(self) -> None:
        """Refuse (one line, a ``GangaLikeError``) a job this backend's system would refuse,
        before anything is stored or sent: ``submit()`` calls it first (Slurm asks Slurm)."""

    def resource_request(self) -> Request:
        """What each subjob asks for (``resources.ResourceFields`` gives the user's)."""
        return Request()

    def capacities(self) -> list[Capacity] | None:
        """What the machines this backend runs on have in all, for the check at submit
        (``resources.refusal_anywhere``); None where that cannot be told here."""
        return None

    def refusal(self, request: Request) -> str:
        """Why ``request`` could never run on this backend, in one line naming what
        exists ('' if it could, or if that cannot be told here)."""
        capacities = self.capacities()
        return "" if capacities is None else refusal_anywhere(request, capacities)

    def make_actor(self, name: str) -> object:  # pragma: no cover - per backend
        """Create (or re-attach to) this backend's named Ray actor."""
        raise NotImplementedError(f"{type(self).__name__} has no actor")
