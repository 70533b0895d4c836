"""What the Hosts backend runs on a host: a subjob's task, and the host's agent.

:func:`host_run` (one Ray task per host of a subjob, ``num_cpus=0``, pinned to the
node) starts the wrapper, reports its start to the actor and returns once no
process of the wrapper's group is left (the host is Cleaning meanwhile).
:func:`host_watch` waits for a wrapper an earlier actor started. A
:class:`HostAgent` per node kills, checks and finds marked process trees there.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import ray

from ganga_like.backends.base import SubjobSpec, payload_environment
from ganga_like.backends.hosts import checks
from ganga_like.backends.hosts.gang import Target
from ganga_like.backends.runtime import native, procs
from ganga_like.backends.runtime import status_file as sf


def host_run(spec: SubjobSpec, workdir: str, extra_env: dict[str, str], host: str, reporter: Any,
             first_line: bool) -> dict[str, Any]:
    """(A Ray task on the host.) Run the wrapper, report its start, wait until its group is gone."""
    status_path = os.path.join(workdir, "status")
    os.makedirs(os.path.join(workdir, "output"), exist_ok=True)
    if first_line:
        sf.append_line(status_path, sf.StatusInfo(sf.CREATED, f"starting on {host}", time.time()).line())
    command = native.wrapper_command()
    env = payload_environment(spec, os.environ)
    env.update(extra_env)
    env[checks.SCRATCH_VAR] = checks.scratch_of(host)
    env[procs.MARKER_VAR] = spec.marker
    try:
        with open(os.devnull, "r+b") as devnull:
            popen = subprocess.Popen([*command, workdir, spec.exe, *spec.args], env=env, cwd=workdir,
                                     stdin=devnull, stdout=devnull, stderr=devnull, close_fds=True,
                                     start_new_session=True)
    except OSError as error:
        reason = f"cannot start the wrapper {command[-1]} on {host}: {error}"
        sf.StatusFile(status_path).set(sf.WRAPPER_ERROR, f"exit=126 {reason}")
        return {"host": host, "pid": 0, "create_time": 0.0, "error": reason}
    created = procs.create_time(popen.pid) or 0.0
    checks.mark_dirty(host)
    reporter.on_started.remote(spec.fqid, spec.attempt, host, popen.pid, created)
    returncode = popen.wait()
    while procs.group_may_live(popen.pid, created):  # Cleaning: nothing of the job may stay
        time.sleep(0.1)
    return {"host": host, "pid": popen.pid, "create_time": created, "returncode": returncode}


def host_watch(host: str, pid: int, created: float, marker: str | None) -> dict[str, Any]:
    """(A Ray task on the host.) Wait until an adopted wrapper's tree is gone."""
    target = procs.Target(pid, created, marker)
    while procs.held([target])[0]:
        time.sleep(0.25)
    return {"host": host, "pid": pid, "create_time": created, "returncode": None}


def host_held(targets: list[Target]) -> list[bool]:
    return procs.held([procs.Target(*t) for t in targets])


class HostAgent:
    """A small actor on each host (``num_cpus=0``) that kills, checks and finds processes there.

    One per node, created when the node is first seen: a kill must not wait for
    Ray to start a worker on a busy node. Named ``ganga_like.hostagent.<node id>``
    and detached, so a restarted HostsActor reuses it (it ends with its node, or
    with the cluster; under a plain ``ray.init()`` with the driver).
    """

    def host_kill(self, targets: list[Target], grace: float) -> list[tuple[bool, int, str]]:
        """Kill trees; (confirmed, processes signalled, note) per target."""
        outcomes = procs.kill_trees([procs.Target(*t) for t in targets], grace)
        return [(o.confirmed, o.killed, o.note) for o in outcomes]

    def host_held(self, targets: list[Target]) -> list[bool]:
        return host_held(targets)

    def host_check(self, host: str, step: str, status: str, clear: bool = True,
                   command: bool = True, failed_leaves: str = "") -> checks.Answer:
        """Verify, clean up or repair this host (``checks``); (ok, one-line note).
        ``status`` is recorded while it runs: a service that dies meanwhile leaves it;
        ``failed_leaves`` stays recorded if the check fails (Repair Failed)."""
        checks.begin(host, status)
        try:
            if step == "verify":
                answer = checks.verify(host)
            elif step == "cleanup":
                answer = checks.cleanup(host)
            else:
                answer = checks.repair(host, clear, command)
        except Exception as error:  # a check that breaks is a failed check, with why
            answer = (False, f"{step} raised {type(error).__name__}: {error}")
        checks.end(host, "" if answer[0] else failed_leaves)
        return answer

    def host_left(self, host: str) -> tuple[str, bool]:
        """What an earlier service left on this host: the check it left under way ('' none),
        and whether a subjob ran there since its last cleanup (dirty)."""
        return checks.unfinished(host), checks.is_dirty(host)

    def host_find(self, prefix: str) -> list[tuple[int, float, str]]:
        """The top process of each marked tree: (pid, create_time, marker)."""
        return procs.marked_tops(prefix)


_REMOTE: dict[str, Any] = {}


def remote(name: str) -> Any:
    """The Ray remote of :func:`host_run`, :func:`host_watch`, :func:`host_held` or
    ``HostAgent`` (made on first use: importing this module starts nothing)."""
    if not _REMOTE:
        for fn in (host_run, host_watch, host_held):
            _REMOTE[fn.__name__] = ray.remote(num_cpus=0, max_retries=0)(fn)
        # Ray's stubs type the decorator's options for functions only.
        _REMOTE["HostAgent"] = ray.remote(num_cpus=0, max_concurrency=8,  # type: ignore[call-overload]
                                          max_restarts=0)(HostAgent)
    return _REMOTE[name]
