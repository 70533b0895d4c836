"""The service's guardian: a small process that ends the service's Ray when the service ends.

A service killed with SIGKILL cannot end the Ray it started: its GCS and raylet go
with it, but Ray's agents (dashboard, runtime-env) and idle workers were seen to
live on. The guardian, started by the service in a session of its own, waits on
the service's pidfd; whenever the service ends, however it ends, it ends every
process that uses the service's Ray directory (``reaper.reap``), then exits. The
next start reaps too, for a guardian that was killed as well. Payloads never carry
the Ray directory on their command line: they outlive the service by design and the
next one adopts them.

Run as ``python -m ganga_like.service.guardian PID`` with the Ray directory in
``GANGA_LIKE_GUARDIAN_RAY_DIR`` (not on the command line: the reaper finds Ray's
processes by their command lines, and must not take the guardian for one).
"""

from __future__ import annotations

import os
import select
import subprocess
import sys

from . import reaper

RAY_DIR_VARIABLE = "GANGA_LIKE_GUARDIAN_RAY_DIR"

def start(service_pid: int, ray_dir: str, log_path: str) -> subprocess.Popen:
    """Start the guardian of ``service_pid`` (the caller); it logs to ``log_path``."""
    with open(os.devnull, "rb") as devnull, open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "ganga_like.service.guardian", str(service_pid)],
                                env={**os.environ, RAY_DIR_VARIABLE: ray_dir}, stdin=devnull, stdout=log,
                                stderr=log, close_fds=True, start_new_session=True)


def watch(service_pid: int, ray_dir: str) -> int:
    """Wait until ``service_pid`` ends, then reap its Ray; the number of processes ended."""
    try:
        pidfd = os.pidfd_open(service_pid)
    except ProcessLookupError:
        pass  # already gone
    else:
        select.select([pidfd], [], [])
        os.close(pidfd)
    return reaper.reap(ray_dir)


def main(argv: list[str]) -> int:
    ray_dir = os.environ.get(RAY_DIR_VARIABLE, "")
    if len(argv) != 1 or not argv[0].isdigit() or not ray_dir:
        print(f"usage: {RAY_DIR_VARIABLE}=DIR python -m ganga_like.service.guardian SERVICE_PID",
              file=sys.stderr)
        return 2
    ended = watch(int(argv[0]), ray_dir)
    if ended:
        print(f"guardian: the service (pid {argv[0]}) ended; ended {ended} Ray process(es) it left",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
