"""What runs on a node for one RayCluster subjob: one Ray task, and its options.

:func:`run_subjob` is the task's body: it starts the wrapper in its own session on
whatever node the task lands on, tells the actor it started (``report_started``),
waits for it and for every process of its group, and returns the outcome read
from the status file *on that node* (``runtime.outcome``). Assumption: the
workdir is on a filesystem every node reaches under the same path.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import ray

from ganga_like.backends import base
from ganga_like.backends.base import SubjobSpec, payload_environment
from ganga_like.backends.resources import CUDA_VARIABLE, Request
from ganga_like.backends.runtime import native, outcome, procs
from ganga_like.backends.runtime import status_file as sf

OPTION_KEYS = ("max_retries",)  # what SubjobSpec.options may hold (resources: SubjobSpec.request)
LINGER_RECHECK = 0.1  # seconds between group checks once the wrapper ended


def run_subjob(spec: SubjobSpec, reporter: Any) -> dict[str, Any]:
    """Run the wrapper on this node; return ``{"kind", "exit_code", "note", "pid",
    "create_time", "host"}`` (``kind`` FINISHED or LOST) once no process of its group
    is left. ``reporter`` (the actor, or None) hears ``report_started`` and
    ``report_lingering``."""
    context = ray.get_runtime_context()
    task_id = context.get_task_id() or ""
    host = node_host(ray.util.get_node_ip_address(), context.get_node_id() or "")
    result: dict[str, Any] = {"pid": 0, "create_time": 0.0, "host": host}
    try:
        os.makedirs(os.path.join(spec.workdir, "output"), exist_ok=True)
        sf.StatusFile(os.path.join(spec.workdir, "status")).set(sf.CREATED, f"node={host} task={task_id}")
        env = payload_environment(spec, os.environ)
        env[procs.MARKER_VAR] = spec.marker
        # Ray's own GPU ids for this task (none: empty, so the payload sees no GPU).
        env[CUDA_VARIABLE] = ",".join(map(str, ray.get_gpu_ids()))
        with open(os.devnull, "r+b") as devnull:
            wrapper = subprocess.Popen([*native.wrapper_command(), spec.workdir, spec.exe, *spec.args],
                                       env=env, cwd=spec.workdir, stdin=devnull, stdout=devnull,
                                       stderr=devnull, close_fds=True, start_new_session=True)
    except OSError as error:
        reason = f"cannot start the wrapper on {host}: {error}"
        sf.append_quietly(os.path.join(spec.workdir, "status"), sf.WRAPPER_ERROR, f"exit=126 {reason}")
        return dict(result, kind=base.LOST, exit_code=None, note=reason)
    # Not reaped before wait(): pid and start time are stable while we read them.
    created = procs.create_time(wrapper.pid) or 0.0
    result.update(pid=wrapper.pid, create_time=created)
    _tell(reporter, "report_started", spec.fqid, task_id, wrapper.pid, created, host)
    returncode = wrapper.wait()
    if procs.group_may_live(wrapper.pid, created):
        _tell(reporter, "report_lingering", spec.fqid, task_id)
        while procs.group_may_live(wrapper.pid, created):
            time.sleep(LINGER_RECHECK)
    kind, code, note = outcome.outcome_in(spec.workdir, returncode)
    outcome.tidy_after(spec.fqid, spec.workdir, (kind, code, note), now=True)  # the task ends next
    return dict(result, kind=kind, exit_code=code, note=note)


def node_host(ip: str, node_id: str) -> str:
    """The ``Handle.host`` of a node: ``<ip>/<first 12 hex of its node id>``."""
    return f"{ip}/{node_id[:12]}" if node_id else ip


def _tell(actor: Any, method: str, *args: Any) -> None:
    """Fire-and-forget report to the actor; a dead actor must not fail the subjob."""
    if actor is None:
        return
    try:
        getattr(actor, method).remote(*args)
    except Exception:
        pass


_remote_task: Any = None


def remote_task() -> Any:
    global _remote_task
    if _remote_task is None:
        _remote_task = ray.remote(run_subjob)
    return _remote_task


def task_options(options: dict[str, Any], request: Request) -> dict[str, Any]:
    """Ray ``.options()`` for a spec: its request (``num_cpus``, ``num_gpus``, ``memory``,
    ``resources``) and its options (``max_retries``); ValueError naming the valid form."""
    unknown = set(options) - set(OPTION_KEYS)
    if unknown:
        raise ValueError(f"unknown RayCluster option(s) {sorted(unknown)}; valid: {list(OPTION_KEYS)} "
                         f"(resources are asked for with cpus, gpus, memory and resources)")
    retries = options.get("max_retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"max_retries={retries!r}: expected a whole number >= 0")
    return {**request.ray_options(), "max_retries": retries, "retry_exceptions": False}
