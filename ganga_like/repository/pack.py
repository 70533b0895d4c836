"""Packing ``jobs.fs``: what is kept, when the service packs by itself, and what a
crash or a full disk in the middle of a pack leaves.

ZODB's FileStorage only appends: every commit adds a new copy of each object it
changed, so a 10,000-subjob run leaves the file several times the size of what it
holds now. A pack copies the records still needed to ``jobs.fs.pack`` and renames it
over ``jobs.fs``. Here:

* **what is kept**: every object's current state, plus the older states of the last
  ``GANGA_LIKE_PACK_KEEP_DAYS`` days (default 0: ganga_like never reads old states:
  it has no undo). ``jobs.fs.old``, FileStorage's copy of the file before the pack, is
  not kept (it would double the disk the pack frees);
* **when the service packs by itself** (:class:`PackPolicy`): when ``jobs.fs`` has
  grown to ``GANGA_LIKE_PACK_FACTOR`` times (default 2; 0 = never by itself) its size
  after the last pack (recorded in ``jobs.fs.packed``; a file never packed counts as
  packed at :data:`MIN_BYTES` / factor), and is at least :data:`MIN_BYTES`; at a
  quiet moment (no commit for :data:`QUIET` seconds), or at once when it has grown
  :data:`HARD_FACTOR` times that (a run that never pauses);
* **faults**: a pack that fails (a full disk) removes its ``jobs.fs.pack`` and leaves
  ``jobs.fs`` as it was; a pack killed before its renames leaves a ``jobs.fs.pack``
  that the next start removes; killed between its two renames (``jobs.fs`` to
  ``jobs.fs.old``, then ``jobs.fs.pack`` to ``jobs.fs``) it leaves no ``jobs.fs``: the
  next start renames ``jobs.fs.old`` back (it holds every commit) before opening;
* ``jobs.fs.tmp`` is FileStorage's scratch file for the commit under way: FileStorage
  leaves it on close and a killed process leaves it too. :class:`SafeFileStorage`
  removes it on close; the service removes a stale one at start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, NoReturn

from ZODB.serialize import referencesf

from ..errors import ConfigurationError

log = logging.getLogger(__name__)

DAY = 86400.0
MIN_BYTES = 8 << 20  # below this a pack frees too little to be worth a pass
CHECK_EVERY = 5.0  # seconds between the service's looks at the file's size
QUIET = 10.0  # seconds without a commit: a quiet moment for a pack
HARD_FACTOR = 8.0  # grown this much: pack even while commits go on
DEFAULT_FACTOR = 2.0
DEFAULT_KEEP_DAYS = 0.0
LEFTOVERS = (".pack", ".old", ".tmp", ".packed.new")  # what a pack or a commit killed midway leaves


@dataclasses.dataclass(frozen=True)
class Packed:
    """What one pack did."""

    path: str
    before: int  # bytes of jobs.fs before
    after: int  # and after
    keep_days: float
    took: float  # seconds

    def line(self) -> str:
        kept = (f"history of the last {self.keep_days:g} days kept" if self.keep_days
                else "only the current state kept")
        return (f"packed {self.path}: {_size(self.before)} -> {_size(self.after)} "
                f"in {self.took:.1f} s ({kept})")

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "before": self.before, "after": self.after,
                "keep_days": self.keep_days, "took": self.took, "line": self.line()}


def _size(count: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def pack_storage(storage: Any, keep_days: float = DEFAULT_KEEP_DAYS) -> Packed:
    """Pack an open FileStorage (commits may go on meanwhile: FileStorage copies what
    they add at the end, under its commit lock). On failure nothing of the pack is left."""
    path = storage.getName()
    before = file_size(path)
    started = time.monotonic()
    try:
        storage.pack(time.time() - keep_days * DAY, referencesf)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(path + ".pack")
        raise
    packed = Packed(path, before, file_size(path), keep_days, time.monotonic() - started)
    record_packed(path, packed.after)
    return packed


def pack_file(path: str, keep_days: float = DEFAULT_KEEP_DAYS) -> tuple[int, int]:
    """Pack the FileStorage at ``path`` that no process holds; (bytes before, after)."""
    from .storage import SafeFileStorage

    repair(path)
    storage = SafeFileStorage(path, pack_keep_old=False)
    try:
        packed = pack_storage(storage, keep_days)
    finally:
        storage.close()
    return packed.before, packed.after


def repair(path: str) -> list[str]:
    """Before ``path`` is opened by the process that holds its lock: undo what a pack
    or a commit killed midway left (see the module docstring); what was done, as lines."""
    done = []
    if not os.path.exists(path) and os.path.exists(path + ".old"):
        os.rename(path + ".old", path)  # its index may be the packed file's: FileStorage checks
        done.append(f"{path} restored from {path}.old (a pack was killed between its renames)")
    for suffix in LEFTOVERS:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)
            done.append(f"removed {path}{suffix}, left by a process that was killed")
    return done


def record_packed(path: str, size: int) -> None:
    """Remember the size after a pack (the policy's measure of growth)."""
    tmp = path + ".packed.new"
    try:
        with open(tmp, "w") as handle:
            json.dump({"size": size, "when": time.time()}, handle)
        os.replace(tmp, path + ".packed")
    except OSError:  # a full disk: the next pack comes a little early, nothing worse
        with contextlib.suppress(OSError):
            os.remove(tmp)


def packed_size(path: str) -> int:
    """The size after the last pack (0: never packed, or not known)."""
    try:
        with open(path + ".packed") as handle:
            return int(json.load(handle)["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


@dataclasses.dataclass(frozen=True)
class PackPolicy:
    """When the service packs by itself (the module docstring says why)."""

    factor: float = DEFAULT_FACTOR  # 0: never by itself
    keep_days: float = DEFAULT_KEEP_DAYS
    min_bytes: int = MIN_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PackPolicy:
        """From ``GANGA_LIKE_PACK_FACTOR`` and ``GANGA_LIKE_PACK_KEEP_DAYS``; a bad
        value is one line naming the variable and what it takes."""
        env = os.environ if environ is None else environ
        factor = _number(env, "GANGA_LIKE_PACK_FACTOR", DEFAULT_FACTOR,
                         "0 (never by itself) or a factor of at least 1.1, e.g. 2")
        if factor and factor < 1.1 or factor < 0:
            _refuse("GANGA_LIKE_PACK_FACTOR", str(factor),
                    "0 (never by itself) or a factor of at least 1.1, e.g. 2")
        days = _number(env, "GANGA_LIKE_PACK_KEEP_DAYS", DEFAULT_KEEP_DAYS, "days >= 0, e.g. 1")
        if days < 0:
            _refuse("GANGA_LIKE_PACK_KEEP_DAYS", str(days), "days >= 0, e.g. 1")
        return cls(factor, days)

    def due(self, size: int, last_packed: int, quiet_for: float) -> bool:
        """Whether a file of ``size`` bytes, ``last_packed`` after its last pack and
        without a commit for ``quiet_for`` seconds, is packed now."""
        if not self.factor or size < self.min_bytes:
            return False
        # Never packed (or not known): as if it had been packed at min_bytes / factor.
        grown = size / (last_packed or self.min_bytes / self.factor)
        return grown >= HARD_FACTOR or (grown >= self.factor and quiet_for >= QUIET)


def _number(env: Mapping[str, str], name: str, default: float, valid: str) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        _refuse(name, text, valid)
    if value != value or value in (float("inf"), float("-inf")):
        _refuse(name, text, valid)
    return value


def _refuse(name: str, text: str, valid: str) -> NoReturn:
    raise ConfigurationError(f"{name}={text!r} is not valid; give {valid}") from None


class AutoPack:
    """The service's side of the policy: asked every housekeeping round."""

    def __init__(self, storage: Any, policy: PackPolicy) -> None:
        self.storage = storage
        self.policy = policy
        self._last_tid = storage.lastTransaction()
        self._changed = time.monotonic()
        self.packs = 0
        self._one_at_a_time = threading.Lock()

    def tick(self) -> Packed | None:
        """Pack if due; log one line of what it did (or why it could not)."""
        tid = self.storage.lastTransaction()
        now = time.monotonic()
        if tid != self._last_tid:
            self._last_tid, self._changed = tid, now
        path = self.storage.getName()
        if not self.policy.due(file_size(path), packed_size(path), now - self._changed):
            return None
        try:
            packed = self.pack_now()
        except Exception as exc:  # noqa: BLE001 - jobs.fs is as it was; tried again later
            log.warning("automatic pack of %s failed, nothing changed: %s", path,
                        (str(exc).splitlines() or [type(exc).__name__])[0])
            record_packed(path, file_size(path))  # not again before it grows once more
            return None
        log.info("automatic %s", packed.line())
        return packed

    def pack_now(self) -> Packed:
        """Pack now (the ``pack`` verb; the automatic one): one pack at a time."""
        with self._one_at_a_time:
            packed = pack_storage(self.storage, self.policy.keep_days)
            self.packs += 1
        return packed
