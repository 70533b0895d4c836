"""What every backend config shows of a (sub)job's run, as Ganga's backends do.

Ganga keeps a run's process id, exit code and host on the backend object
(``j.backend.id``, ``j.backend.exitcode``, ``j.backend.actualCE``). Here the
monitor records them on the job (its backend handle and ``exit_code``); these
read-only attributes show them through ``j.backend`` for the job the config
belongs to (a subjob's ``sj.backend`` is a view bound to that subjob). They are
not fields: they are not copied, compared or exported with the configuration.
"""

from __future__ import annotations

from typing import Any

from .component import Component, ReadOnly

# The stored handle is a tuple (backends.base.Handle.to_tuple, which sits above the
# model): backend, fqid, host, pid, create_time, task_id, workdir, error, attempt.
_HOST, _PID, _TASK, _WORKDIR, _ATTEMPT = 2, 3, 5, 6, 8
TASK_INDEX = _TASK  # a backend that shows its own task id as j.backend.id reads it here


def run_handle(backend: Any) -> tuple | None:
    """The owning job's handle, if it belongs to the job's current run."""
    job = backend._owner_job
    handle = getattr(job, "handle", None) if job is not None else None
    if not handle or len(handle) <= _ATTEMPT or handle[_ATTEMPT] != job.submit_counter:
        return None
    return handle


def _run_id(backend: Any) -> Any:
    handle = run_handle(backend)
    if handle is None:
        return -1
    return handle[_PID] or handle[_TASK] or -1


def _exitcode(backend: Any) -> int | None:
    job = backend._owner_job
    return None if job is None else job.exit_code


def _actual_ce(backend: Any) -> str:
    handle = run_handle(backend)
    return handle[_HOST] if handle is not None else ""


def _workdir(backend: Any) -> str:
    handle = run_handle(backend)
    return handle[_WORKDIR] if handle is not None else ""


class BackendComponent(Component):
    """Base of the backend configs: adds Ganga's read-only run attributes."""

    _category = "backends"

    id = ReadOnly(_run_id, "the id of the (sub)job's run on the backend: its process id "
                  "for Local, its Ray task id for Ray tasks; -1 before it runs")
    exitcode = ReadOnly(_exitcode, "the exit code of the (sub)job's payload, None until "
                        "it has exited")
    actualCE = ReadOnly(_actual_ce, "the host the (sub)job ran on, '' before it runs")  # noqa: N815 (Ganga's name)
    workdir = ReadOnly(_workdir, "the directory the (sub)job's run used, '' before it runs")

    _RUN_ATTRIBUTES = ("id", "exitcode", "actualCE", "workdir")

    def run_info(self) -> dict[str, Any]:
        """The read-only run attributes and their values (for displays)."""
        return {name: getattr(self, name) for name in self._RUN_ATTRIBUTES}
