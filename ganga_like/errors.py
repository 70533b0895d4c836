"""One exception hierarchy for everything ganga_like raises on purpose.

Every error carries structured fields (so scripts can branch on them) and renders
as one clear line: what was wrong, and what the valid choices are. The GPI and the
command line print ``str(error)`` alone for these; anything else keeps its traceback.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

# What a face says when the user presses Ctrl-C: the verbs are the service's, so only
# the client's wait for them is interrupted.
INTERRUPTED = ("interrupted here only: the service carries on with what it was asked, "
               "and the jobs go on")


class GangaLikeError(Exception):
    """Base class of every error ganga_like raises deliberately.

    Each subclass builds its one line from structured fields; a script may also raise
    any of them, under its Ganga name, with a message of its own, as Ganga scripts do
    (``raise JobError("no input found")``): given fewer arguments than the fields it
    needs, a subclass takes them as that message.
    """

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            cls.__init__ = _or_a_message(init)  # type: ignore[method-assign]


def _or_a_message(init: Callable[..., None]) -> Callable[..., None]:
    parameters = list(inspect.signature(init).parameters.values())[1:]
    required = sum(1 for p in parameters if p.default is p.empty
                   and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))

    @functools.wraps(init)
    def init_or_message(self: GangaLikeError, *args: Any, **fields: Any) -> None:
        if len(args) < required and not fields:
            GangaLikeError.__init__(self, " ".join(str(a) for a in args) or type(self).__name__)
        else:
            init(self, *args, **fields)

    return init_or_message


class InvalidTransition(GangaLikeError):
    """A status change that the transition table does not allow."""

    def __init__(
        self,
        job_id: str,
        from_status: str,
        to_status: str,
        allowed: Iterable[str],
        recent_history: Sequence[tuple] = (),
    ) -> None:
        allowed = tuple(sorted(str(a) for a in allowed))
        choices = ", ".join(allowed) if allowed else "none (it is a terminal status)"
        tail = ""
        if recent_history:
            last = "; ".join(
                f"{_fmt_time(entry[0])} {entry[1]}->{entry[2]}" for entry in recent_history
            )
            tail = f" Recent history: {last}."
        super().__init__(
            f"job {job_id}: cannot go from '{from_status}' to '{to_status}'; "
            f"from '{from_status}' it may go to: {choices}.{tail}",
            job_id=job_id,
            from_status=str(from_status),
            to_status=str(to_status),
            allowed=allowed,
            recent_history=tuple(recent_history),
        )


class UnknownStatus(GangaLikeError):
    """A status name that does not exist."""

    def __init__(self, value: object, valid: Iterable[str]) -> None:
        valid = tuple(valid)
        super().__init__(
            f"unknown status {value!r}; valid statuses are: {', '.join(valid)}",
            value=value,
            valid=valid,
        )


class ReadOnlyError(GangaLikeError):
    """An attribute of a submitted job was changed."""

    def __init__(self, job_id: str, attribute: str, status: str, writable: Iterable[str]) -> None:
        writable = tuple(writable)
        super().__init__(
            f"job {job_id} is '{status}': '{attribute}' cannot be changed after submission "
            f"(only {', '.join(writable)} can); use j.copy() to make an editable copy",
            job_id=job_id,
            attribute=attribute,
            status=status,
            writable=writable,
        )


class ReadOnlyAttribute(ReadOnlyError):
    """An attribute that is only ever set by ganga_like (an id, a directory, what the
    backend reported) was assigned."""

    def __init__(self, owner: str, attribute: str, what: str, writable: Iterable[str]) -> None:
        writable = tuple(writable)
        settable = ", ".join(writable) if writable else "none"
        GangaLikeError.__init__(
            self,
            f"{owner}.{attribute} is read-only ({what}); the attributes you can set are: "
            f"{settable}",
            owner=owner, attribute=attribute, what=what, writable=writable,
        )


class InvalidValue(GangaLikeError):
    """A value that does not fit the attribute it was given to."""

    def __init__(self, owner: str, attribute: str, value: object, expected: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(
            f"{owner}.{attribute} = {shown} is not valid: expected {expected}",
            owner=owner,
            attribute=attribute,
            value=value,
            expected=expected,
        )


class UnknownAttribute(InvalidValue):
    """An attribute name that the object does not have (a typo would otherwise be
    stored silently and ignored)."""

    def __init__(self, owner: str, attribute: str, value: object, known: Iterable[str]) -> None:
        known = tuple(known)
        GangaLikeError.__init__(
            self,
            f"{owner} has no attribute '{attribute}'; the attributes you can set are: "
            f"{', '.join(known) if known else 'none'}",
            owner=owner, attribute=attribute, value=value, expected=", ".join(known),
            known=known,
        )


class NoSuchAttribute(GangaLikeError, AttributeError):
    """Reading an attribute the object does not have (``j.stauts``): one line with the
    nearest names. An AttributeError too, so ``hasattr`` and ``getattr(o, n, d)`` work."""

    def __init__(self, owner: str, attribute: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(attribute, list(known), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        GangaLikeError.__init__(
            self, f"{owner} has no attribute '{attribute}'; {hint}dir() lists them all",
            owner=owner, attribute=attribute, suggestions=tuple(close))


class NotAvailable(GangaLikeError):
    """A Ganga name that cannot work here (a grid file type, a backend not built)."""

    def __init__(self, name: str, why: str, instead: str) -> None:
        super().__init__(f"{name} is not available in ganga_like ({why}); {instead}",
                         name=name, why=why, instead=instead)


class JobNotFound(GangaLikeError):
    """No job with that id (or fqid) in the registry."""

    def __init__(self, wanted: object, known: str) -> None:
        super().__init__(f"no job {wanted!r} in the repository ({known})", wanted=wanted, known=known)


class RepositoryError(GangaLikeError):
    """The repository could not be opened or used."""


class RepositoryLocked(RepositoryError):
    """Another process holds the FileStorage read-write."""

    def __init__(self, path: str, holder: str) -> None:
        super().__init__(
            f"the repository {path} is held by another process ({holder}); go through the "
            f"repository's service instead (the GPI and every ganga-like command do), open it "
            f"read-only (GANGA_LIKE_READ_ONLY=1), or stop that process",
            path=path,
            holder=holder,
        )


class ReadOnlySession(RepositoryError):
    """A change asked of a session that has the repository read-only."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"this session is read-only: it reads every job and changes none, so {what} is "
            f"refused; a session without GANGA_LIKE_READ_ONLY=1 can", what=what)


class DiskFull(RepositoryError):
    """A write the filesystem had no room for (ENOSPC, or the quota): ``what`` says what
    became of it (nothing half-written is ever kept), ``then`` what happens once there
    is space again."""

    def __init__(self, filesystem: str, path: str, free: str, what: str, then: str) -> None:
        super().__init__(
            f"no space left on {filesystem} (which holds {path}; {free} free): {what}; "
            f"free space there (delete large outputs of finished jobs, or other files), "
            f"then {then}",
            filesystem=filesystem, path=path, free=free, what=what, then=then,
        )


class OperationRefused(GangaLikeError):
    """An operation that is not allowed for a job in its present state."""

    def __init__(self, job_id: str, operation: str, status: str, reason: str) -> None:
        super().__init__(
            f"job {job_id} ({status}): cannot {operation}: {reason}",
            job_id=job_id,
            operation=operation,
            status=status,
            reason=reason,
        )


class BackendError(GangaLikeError):
    """A backend failed to do what it was asked; carries the job state and the log tail."""

    def __init__(self, message: str, job_id: str = "", status: str = "", log_tail: str = "") -> None:
        text = message
        if job_id:
            text = f"job {job_id} ({status}): {message}"
        if log_tail:
            text += f" | last output: {log_tail.strip()[-300:]}"
        super().__init__(text, job_id=job_id, status=status, log_tail=log_tail)


class KillNotConfirmed(BackendError):
    """The backend could not confirm that the resources were released."""


class ConfigurationError(GangaLikeError):
    """A configuration value that is not valid."""


def _fmt_time(stamp: float) -> str:
    import time

    return time.strftime("%H:%M:%S", time.localtime(stamp))


class WaitTimeout(GangaLikeError):
    """``wait()`` gave up with jobs still active."""

    def __init__(self, timeout: float, pending: list[str]) -> None:
        shown = ", ".join(pending[:10]) + (" ..." if len(pending) > 10 else "")
        super().__init__(f"timed out after {timeout:g} s; {len(pending)} still active: {shown}",
                         timeout=timeout, pending=pending)


class EditConflict(GangaLikeError):
    """Uncommitted edits conflicted with another writer's commit and were discarded."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "your uncommitted edits conflicted with another writer's change and were "
            "discarded; read the job again and re-apply them",
            detail=detail,
        )


class ServiceError(GangaLikeError):
    """The service could not be started, reached, or did not finish a request."""


class ServiceUnavailable(ServiceError):
    """No service answers for this repository, and none could be started."""

    def __init__(self, root: str, reason: str, log: str = "") -> None:
        where = f"; its log: {log}" if log else ""
        super().__init__(
            f"the ganga_like service for {root} is not available: {reason}{where}; "
            f"`ganga-like service status` says more, `ganga-like service start` starts it",
            root=root, reason=reason, log=log,
        )


class ServiceLost(ServiceError):
    """The service stopped in the middle of a request."""

    def __init__(self, root: str, verb: str) -> None:
        super().__init__(
            f"the ganga_like service for {root} stopped during '{verb}'; nothing is lost: "
            f"run it again (a new service starts and recovers the work first)",
            root=root, verb=verb,
        )


class ServiceStopping(ServiceError):
    """The service is stopping and did not carry out the request (or ended a read early):
    asking the next service is safe, and a local client does so by itself."""

    def __init__(self, root: str, reason: str) -> None:
        super().__init__(
            f"the ganga_like service for {root} is stopping ({reason}); nothing was done: "
            f"run it again (on its machine, the next use starts a new service)",
            root=root, reason=reason,
        )


class ServiceRunning(ServiceError):
    """A second service was asked to start on a root that already has one."""

    def __init__(self, root: str, holder: str) -> None:
        super().__init__(
            f"a ganga_like service already runs for {root} ({holder}); use it, or stop it "
            f"first with `ganga-like service stop`",
            root=root, holder=holder,
        )


class PostProcessError(GangaLikeError):
    """A postprocessor that cannot do its work as configured (checked when it runs)."""


class ApplicationConfigurationError(OperationRefused):
    """The application cannot run as configured (refused at submit; the job stays new)."""


class BexJobFileError(GangaLikeError):
    """A BEX job file that does not follow the format (headers, a blank line, the body)."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        where = f"{source}, line {line}" if line else source
        super().__init__(f"BEX job file {where}: {problem}", source=source, line=line,
                         problem=problem)


class BexSubmitRefused(GangaLikeError):
    """A BEX job that cannot be queued (its ID is taken, a host is unknown): nothing stored."""

    def __init__(self, job_id: str, problem: str, valid: Iterable[str] = ()) -> None:
        valid = tuple(valid)
        super().__init__(f"BEX job {job_id!r} is not queued: {problem}", job_id=job_id,
                         problem=problem, valid=valid)


class WebRefused(GangaLikeError):
    """A request the web view refuses (no token, another site, a bad filter): one line
    saying what was wrong and what is valid, with the HTTP status it is answered with."""

    def __init__(self, status: int, problem: str, valid: str) -> None:
        super().__init__(f"{problem}; {valid}", status=status, problem=problem, valid=valid)


# Ganga's names for these errors, so that a Ganga script's ``except`` clauses catch ours.
GangaException = GangaLikeError
JobError = OperationRefused
PostProcessException = PostProcessError
ReadOnlyObjectError = ProtectedAttributeError = ReadOnlyError
GangaAttributeError = TypeMismatchError = SplitterError = InvalidValue
GangaValueError = GangaTypeError = PluginError = SchemaError = GangaFileError = InvalidValue
ApplicationPrepareError = ApplicationConfigurationError
JobManagerError = OperationRefused
IncompleteJobSubmissionError = BackendError
IncompleteKillError = KillNotConfirmed
GangaIOError = RepositoryError
GANGA_NAMES = ("GangaException", "JobError", "ApplicationConfigurationError",
               "PostProcessException", "ReadOnlyObjectError", "ProtectedAttributeError",
               "GangaAttributeError", "TypeMismatchError", "SplitterError", "BackendError",
               "RepositoryError", "GangaValueError", "GangaTypeError", "PluginError", "SchemaError",
               "GangaFileError", "ApplicationPrepareError", "JobManagerError",
               "IncompleteJobSubmissionError", "IncompleteKillError", "GangaIOError")

