"""The web view's query parameters, checked: a bad one is one line naming what is valid.

``status=failed,killed`` (statuses), ``name=sim*`` (a glob on the job's name),
``page=3`` (a master's subjob table, unfiltered), ``after=120`` / ``before=880`` (where
a filtered or newest-first listing goes on: the id it stopped at), ``limit=50``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..errors import WebRefused
from ..status import Status

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_NAME = 200
KNOWN = ("status", "name", "page", "after", "before", "limit", "token", "notice", "file", "lines")


@dataclasses.dataclass(frozen=True)
class Listing:
    """What a listing asks for."""

    statuses: tuple[str, ...] = ()
    name: str | None = None
    page: int | None = None
    after: int | None = None
    before: int | None = None
    limit: int = DEFAULT_LIMIT

    @property
    def filtered(self) -> bool:
        return bool(self.statuses) or self.name is not None


def listing(args: Mapping[str, str]) -> Listing:
    """The listing ``args`` (one value per name) ask for, or ``WebRefused`` (400)."""
    unknown = sorted(set(args) - set(KNOWN))
    if unknown:
        raise WebRefused(400, f"unknown parameter {unknown[0]!r}",
                         "give status, name, page, after, before or limit")
    return Listing(statuses=statuses(args.get("status")), name=_name(args.get("name")),
                   page=_whole(args, "page", 1), after=_whole(args, "after", 0),
                   before=_whole(args, "before", 0),
                   limit=_whole(args, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT)


def statuses(text: str | None) -> tuple[str, ...]:
    if text is None or text == "":
        return ()
    valid = [s.value for s in Status if s is not Status.TEMPLATE]
    wanted = tuple(part.strip() for part in text.split(","))
    wrong = [part for part in wanted if part not in valid]
    if wrong:
        raise WebRefused(400, f"unknown status {wrong[0]!r} in status={text[:80]!r}",
                         f"give one or more of {', '.join(valid)} (comma separated)")
    return wanted


def _name(text: str | None) -> str | None:
    if text is None or text == "":
        return None
    if len(text) > MAX_NAME or any(ord(c) < 32 for c in text):
        raise WebRefused(400, "name= is too long or not one line",
                         f"give a pattern of at most {MAX_NAME} characters ('sim*', 'run-?')")
    return text


def _whole(args: Mapping[str, str], key: str, least: int, most: int | None = None) -> int | None:
    text = args.get(key)
    if text is None or text == "":
        return None
    bound = f" and at most {most}" if most is not None else ""
    if not text.isdigit() or len(text) > 12 or int(text) < least or \
            (most is not None and int(text) > most):
        raise WebRefused(400, f"{key}={text[:40]!r} is not valid",
                         f"give a whole number, {least} or more{bound}")
    return int(text)


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Listing", "listing", "statuses"]
