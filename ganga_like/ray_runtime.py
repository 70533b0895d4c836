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

_lock = threading.Lock()

RAY_NAMESPACE = "ganga_like"

_DEFAULT_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    # Stopping a head with a live actor otherwise waits 31 s for a drain.
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
}


def ensure_ray(address: str | None = None) -> None:
    """Initialise Ray in this process if it is not already.

    ``address``: join that cluster (a RayCluster backend's address) rather than
    ``GANGA_LIKE_RAY_ADDRESS`` or a local Ray; ignored once Ray is initialised.
    """
    import ray

    with _lock:
        if ray.is_initialized():
            return
        if sys.stderr.isatty():
            # The first backend use pays Ray's start-up; say so rather than hang silently.
            print("starting Ray for the backends (once per session, a few seconds) ...",
                  file=sys.stderr, flush=True)
        for key, value in _DEFAULT_ENV.items():
            os.environ.setdefault(key, value)
        if "RAY_TMPDIR" not in os.environ:
            # Ray's socket paths must stay short: a long TMPDIR breaks them.
            tmpdir = tempfile.mkdtemp(prefix="glray-", dir="/tmp")
            os.environ["RAY_TMPDIR"] = tmpdir
            # Registered before ray.init, so it runs after Ray's own exit hook (LIFO).
            atexit.register(shutil.rmtree, tmpdir, True)
        address = address or os.environ.get("GANGA_LIKE_RAY_ADDRESS", "local")
        kwargs = dict(
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
            from .backends.local.actor import RAY_SYSTEM_CONFIG

            kwargs["_system_config"] = dict(RAY_SYSTEM_CONFIG)
        ray.init(**kwargs)
