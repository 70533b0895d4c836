"""Starting (or joining) Ray, once per process, only when a backend needs it.

``GANGA_LIKE_RAY_ADDRESS`` names an existing cluster (``auto`` or ``host:port``);
unset, a local Ray is started for this process (``address="local"``: a stale
cluster-address file from an earlier head must not make us wait for minutes).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from typing import Any

_lock = threading.Lock()
_before_shutdown: list = []


def before_ray_shutdown(callback) -> None:
    """Run ``callback`` at exit before Ray's own exit hook shuts Ray down.

    Sessions stop their monitor threads here: a thread still inside a Ray call while
    Ray is torn down can crash the interpreter on its way out."""
    _before_shutdown.append(callback)


def _run_before_shutdown() -> None:
    while _before_shutdown:
        callback = _before_shutdown.pop()
        try:
            callback()
        except Exception:  # at exit: nothing left to report to
            pass

RAY_NAMESPACE = "ganga_like"

# Ray kills a worker's children when the worker exits; Local's subjobs must outlive
# their actor (the next one adopts them). A `ray start` cluster needs the same
# `--system-config`.
RAY_SYSTEM_CONFIG = {"kill_child_processes_on_worker_exit": False}

_DEFAULT_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    # A Ray call after shutdown (a monitor thread at interpreter exit) must fail, not
    # start a new Ray from that thread.
    "RAY_ENABLE_AUTO_CONNECT": "0",
    # Stopping a head with a live actor otherwise waits 31 s for a drain.
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
}


# Ray's own switch: when false, every Ray listener binds 127.0.0.1 (no other machine can
# reach it). Ours is on by default; GANGA_LIKE_RAY_OPEN=1 (`ganga-like service start
# --ray-open`) leaves Ray on the machine's interface, so that other machines can join.
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

# Ray's documented switch of its token authentication (disabled | token).
AUTH_MODE = "RAY_AUTH_MODE"


def ray_is_opened(environ: Any = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("GANGA_LIKE_RAY_OPEN", "") not in ("", "0", "no", "false")


def ensure_ray(address: str | None = None) -> None:
    """Initialise Ray in this process if it is not already.

    ``address``: join that cluster (a RayCluster backend's address) rather than
    ``GANGA_LIKE_RAY_ADDRESS`` or a local Ray; ignored once Ray is initialised.
    """
    for key, value in _DEFAULT_ENV.items():
        os.environ.setdefault(key, value)  # before `import ray`: some are read at import
    if not address and not os.environ.get("GANGA_LIKE_RAY_ADDRESS"):
        # A head of our own: token authentication, as Ray's default for a new local
        # cluster, but asked for explicitly, so that Ray does not print its notice
        # ("Token authentication is enabled ... Set RAY_AUTH_MODE=disabled to opt out").
        # Joining an existing cluster keeps whatever that cluster's users set.
        os.environ.setdefault(AUTH_MODE, "token")
    if ray_is_opened():
        os.environ[LOOPBACK_SWITCH] = "1"  # asked for explicitly: whatever was inherited
    elif not address and not os.environ.get("GANGA_LIKE_RAY_ADDRESS"):
        os.environ.setdefault(LOOPBACK_SWITCH, "0")  # a local Ray: loopback only
    import ray

    with _lock:
        if ray.is_initialized():
            return
        if sys.stderr.isatty():
            # The first backend use pays Ray's start-up; say so rather than hang silently.
            print("starting Ray for the backends (once per session, a few seconds) ...",
                  file=sys.stderr, flush=True)
        if "RAY_TMPDIR" not in os.environ:
            # Ray's socket paths must stay short: a long TMPDIR breaks them.
            tmpdir = tempfile.mkdtemp(prefix="glray-", dir="/tmp")
            os.environ["RAY_TMPDIR"] = tmpdir
            # Registered before ray.init, so it runs after Ray's own exit hook (LIFO).
            atexit.register(shutil.rmtree, tmpdir, True)
        address = address or os.environ.get("GANGA_LIKE_RAY_ADDRESS", "local")
        kwargs: dict[str, Any] = dict(
            address=address,
            namespace=RAY_NAMESPACE,
            include_dashboard=False,
            logging_level="WARNING",
            log_to_driver=False,
            configure_logging=True,
        )
        if address == "local":
            kwargs["num_cpus"] = max(2, os.cpu_count() or 2)
            # Ray kills a worker's child processes when the worker exits; Local's
            # subjobs must outlive their actor (the next session adopts them).
            kwargs["_system_config"] = dict(RAY_SYSTEM_CONFIG)
        ray.init(**kwargs)
        # Registered after ray.init's own exit hook, so it runs first (LIFO).
        atexit.register(_run_before_shutdown)
