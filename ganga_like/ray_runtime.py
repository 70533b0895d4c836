"""The one module that imports Ray: its environment first, then Ray, once per process.

Ray reads part of its environment when ``ray`` is first imported (``RAY_AUTH_MODE``
among them): a driver that imported Ray before the environment was settled runs
without a token against a GCS that wants one, and the service cannot start. So
:func:`settle_environment` runs first (the service calls it before anything else),
and every module that needs Ray outside a Ray worker calls :func:`import_ray`, which
settles the environment before the first import. The actor drivers (the modules in
:data:`RAY_SIDE_MODULES`) import Ray at module level: they run in Ray's workers, which
inherit their environment from the head, and the service imports them only from a
backend's ``make_actor``, after :func:`ensure_ray`. ``tests/unit/test_ray_import.py``
holds every module to this rule.

``GANGA_LIKE_RAY_ADDRESS`` names an existing cluster (``auto`` or ``host:port``);
unset, a local Ray is started for this process (``address="local"``: a stale
cluster-address file from an earlier head must not make us wait for minutes).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import sys
import tempfile
import threading
from types import ModuleType
from typing import Any

from .errors import GangaLikeError

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


# The actor drivers: they run in Ray's workers and import Ray at module level; the
# service reaches them only through a backend's ``make_actor`` (after ensure_ray).
RAY_SIDE_MODULES = (
    "ganga_like.backends.hosts.actor",
    "ganga_like.backends.hosts.agent",
    "ganga_like.backends.hosts.care",
    "ganga_like.backends.hosts.nodes",
    "ganga_like.backends.raycluster.actor",
    "ganga_like.backends.raycluster.task",
)

# Where Ray looks for its token (Ray's own variables); see settle_environment.
TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
TOKEN = "RAY_AUTH_TOKEN"

_settled = False


class RayEnvironmentError(GangaLikeError):
    """Ray was imported before :func:`settle_environment`: a developer's error, named."""


def ray_is_opened(environ: Any = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("GANGA_LIKE_RAY_OPEN", "") not in ("", "0", "no", "false")


def joins_a_cluster(environ: Any = None) -> bool:
    """True when Ray is an existing cluster's (``GANGA_LIKE_RAY_ADDRESS``), not our own head."""
    env = os.environ if environ is None else environ
    return bool(env.get("GANGA_LIKE_RAY_ADDRESS"))


def settle_environment(token_path: str | None = None) -> None:
    """Set Ray's environment for this process and its children, before ``ray`` is imported.

    For a head of our own: token authentication (Ray's default for a new local cluster,
    asked for explicitly so that Ray prints no notice), and every listener on loopback
    unless the service was opened (``GANGA_LIKE_RAY_OPEN``). ``token_path``: the token
    lives there (created, 0600, if missing) instead of Ray's ``~/.ray/auth_token``, so
    that nothing in the user's home (a read-only home, a file named ``.ray``, another
    cluster's token) can stop or confuse the service's Ray. Joining an existing cluster
    keeps whatever that cluster's users set. Idempotent; later calls may add the token."""
    global _settled
    wanted = dict(_DEFAULT_ENV)
    own_head = not joins_a_cluster()
    if own_head:
        wanted[AUTH_MODE] = os.environ.get(AUTH_MODE) or "token"
        wanted[LOOPBACK_SWITCH] = os.environ.get(LOOPBACK_SWITCH) or "0"  # loopback only
        if token_path and not os.environ.get(TOKEN):
            _ensure_token_file(token_path)
            wanted[TOKEN_PATH] = token_path
    if ray_is_opened():
        wanted[LOOPBACK_SWITCH] = "1"  # asked for explicitly: whatever was inherited
    changes = {key: value for key, value in wanted.items()
               if key not in _DEFAULT_ENV and os.environ.get(key) != value
               or key in _DEFAULT_ENV and key not in os.environ}
    if changes and not _settled and "ray" in sys.modules:
        raise RayEnvironmentError(
            f"Ray was imported before its environment was settled ({', '.join(sorted(changes))} "
            f"would change under it); import Ray through ganga_like.ray_runtime.import_ray()")
    os.environ.update(changes)
    _settled = True


def _ensure_token_file(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))  # Ray's own token format: 256 random bits


def import_ray() -> ModuleType:
    """``ray``, imported after its environment is settled (the one way in, outside workers)."""
    if not _settled:
        settle_environment()
    import ray

    return ray


def ensure_ray(address: str | None = None) -> None:
    """Initialise Ray in this process if it is not already.

    ``address``: join that cluster (a RayCluster backend's address) rather than
    ``GANGA_LIKE_RAY_ADDRESS`` or a local Ray; ignored once Ray is initialised.
    """
    ray = import_ray()

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
