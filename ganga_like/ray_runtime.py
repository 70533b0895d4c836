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
unset, a head of our own is started for this process (:func:`start_own_head`) with
only the processes the backends use: the GCS, the raylet, and a worker per actor or
running task. Ray's API server ("dashboard"), its autoscaler monitor and its log
monitor are not started, no worker is prestarted, a worker left idle is ended after a
second, and the raylet's two agents (dashboard, runtime-env), which it will not run
without, are the stand-in of :mod:`ganga_like.ray_stand_in` (about 5 MiB each against
50): about 0.45 of the memory of ``ray.init()``'s head (issue 22).

The service starts Ray in the background (:func:`start_in_background`): it answers
reads, creates and edits meanwhile, and :func:`ensure_ray` in any other thread waits
for that start (or raises its failure, in one line) instead of starting a second Ray.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Protocol

from .errors import GangaLikeError
from .status import RayState

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
# their actor (the next one adopts them). Ray also starts its workers at niceness 15,
# and a worker's children inherit it: every Local payload (and the actor that starts
# them) ran at 15, below whatever else the machine ran, where Ganga's run at its
# user's; with 0 they run at the niceness of the service, i.e. of the user who started
# it. A `ray start` cluster needs the same `--system-config`.
RAY_SYSTEM_CONFIG = {"kill_child_processes_on_worker_exit": False, "worker_niceness": 0}

# A head of our own runs no worker it does not need (measured with Ray 2.60: each Python
# worker costs about 47 MiB PSS). Ray prestarts one worker per CPU at its start and again
# when a driver connects, and keeps idle workers up to one per CPU; here a worker starts
# when an actor or a task needs it, and one left idle ends after Ray's idle threshold (1 s).
OWN_HEAD_SYSTEM_CONFIG = {
    **RAY_SYSTEM_CONFIG,
    "enable_worker_prestart": False,
    "prestart_worker_first_driver": False,
    "num_workers_soft_limit": 0,
    # Nothing reads Ray's metrics, and the stand-in agents do not collect them: without
    # this, every worker logs a failed export every 10 s.
    "enable_metrics_collection": False,
}

STAND_IN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ray_stand_in.py")
# The Ray releases whose raylet was seen to run with the stand-in (the port files it
# waits for, what it does when an agent exits). Any other runs Ray's own agents: more
# memory, never a head that cannot start.
STAND_IN_RAY_RELEASES = ("2.60",)
# The raylet's options that carry its agents' command lines.
AGENT_COMMAND_OPTIONS = ("--dashboard_agent_command=", "--runtime_env_agent_command=")

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


class RayStartFailed(GangaLikeError):
    """Ray could not start (or join its cluster): said in one line to whoever needs it."""


class BackgroundStart:
    """Ray, started in a thread of its own that lives until Ray is stopped.

    Ray ties its head processes to the thread that started them (their parent-death
    signal), so that thread must outlive Ray: it starts Ray, then waits for
    :meth:`stop`, then stops Ray itself. Other threads wait for the start with
    :meth:`wait` (``ensure_ray`` does, for every caller in this process)."""

    def __init__(self) -> None:
        self.state = RayState.STARTING
        self.error = ""
        self._done = threading.Event()
        self._release = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ganga_like-ray", daemon=True)

    def _run(self) -> None:
        # ray.init outside the main thread says it set no SIGTERM handler: the service
        # has its own, so the line would only puzzle whoever reads the service's log.
        logging.getLogger("ray._private.worker").addFilter(_no_sigterm_notice)
        try:
            _init_ray(None)
        except BaseException as exc:  # reported to every waiter, in one line
            self.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.state = RayState.FAILED
        else:
            self.state = RayState.UP
        finally:
            self._done.set()
        self._release.wait()
        try:
            stop_ray()
        finally:
            if self.state is RayState.UP:
                self.state = RayState.STOPPED

    def wait(self, timeout: float | None = None) -> bool:
        """Whether Ray is up (False: still starting after ``timeout``); raises its failure."""
        if not self._done.wait(timeout):
            return False
        if self.state is RayState.FAILED:
            raise RayStartFailed(f"Ray could not start: {self.error}")
        if self.state is RayState.STOPPED:
            raise RayStartFailed("Ray was stopped (the service is stopping)")
        return True

    def under_way(self) -> bool:
        """Whether the start has not ended yet (up, failed or not)."""
        return not self._done.is_set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop Ray and wait for it. A start still under way is not waited for: it stops
        Ray once it ends; meanwhile the caller's reaper (the service's) ends its processes."""
        self._release.set()
        if self._done.is_set() and self.thread is not threading.current_thread():
            self.thread.join(timeout)


def _no_sigterm_notice(record: logging.LogRecord) -> bool:
    return "SIGTERM handler is not set" not in record.getMessage()


_background: BackgroundStart | None = None


def start_in_background() -> BackgroundStart:
    """Start Ray in a thread of its own (the service's way); ``ensure_ray`` waits for it."""
    global _background
    if _background is None:
        _background = BackgroundStart()
        _background.thread.start()
    return _background


def ensure_ray(address: str | None = None) -> None:
    """Initialise Ray in this process if it is not already.

    ``address``: join that cluster (a RayCluster backend's address) rather than
    ``GANGA_LIKE_RAY_ADDRESS`` or a head of our own; ignored once Ray is initialised,
    or started in the background (:func:`start_in_background`): then this waits for
    that start and raises :class:`RayStartFailed` if it failed.
    """
    background = _background
    if background is not None and threading.current_thread() is not background.thread:
        background.wait()
        return
    _init_ray(address)


def _init_ray(address: str | None) -> None:
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
            namespace=RAY_NAMESPACE,
            logging_level="WARNING",
            log_to_driver=False,
            configure_logging=True,
        )
        if address == "local":
            atexit.register(stop_ray)  # before ray.init: runs after Ray's own exit hook
            address = start_own_head(ray)
        else:
            kwargs["include_dashboard"] = False
        ray.init(address=address, **kwargs)
        # Registered after ray.init's own exit hook, so it runs first (LIFO).
        atexit.register(_run_before_shutdown)


class _Head(Protocol):
    """What we use of Ray's ``Node`` (the head we started)."""

    address: str

    def kill_all_processes(self, check_alive: bool, allow_graceful: bool) -> None: ...

    def dead_processes(self) -> list[tuple[str, subprocess.Popen]]: ...


_own_head: _Head | None = None  # the head we started, until stop_ray
_abandoned = False  # Ray died under this process: its driver is left as it is until the exit

# The head's processes without which nothing of Ray works (Ray's process types). Its
# other one, Ray's reaper, only cleans up after them.
VITAL = ("gcs_server", "raylet")


def own_head_lost() -> str:
    """Why the head this process started is gone: which of its vital processes exited,
    and how (the raylet also exits when one of its agents does). Empty while they run,
    and when this process started no head (it joined a cluster, or Ray is not up)."""
    head = _own_head
    if head is None:
        return ""
    for process_type, process in head.dead_processes():
        if process_type in VITAL:
            code = process.returncode
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            return f"its {process_type} (pid {process.pid}) exited, {how}"
    return ""


def start_own_head(ray: ModuleType) -> str:
    """Start a Ray head of our own in this thread, with only what the backends use (see
    the module's docstring); its GCS address, for ``ray.init``.

    Ray's ``ray.init()`` has no switch for the API server, the autoscaler monitor or the
    log monitor (``ray start --head`` has ``--no-monitor`` and ``--include-log-monitor``
    but always runs the API server), so the head is started through Ray's own ``Node``,
    as ``ray.init`` does, with those left out."""
    global _own_head
    parameter = ray._private.parameter
    auth = ray._private.authentication.authentication_token_setup
    system_config = dict(OWN_HEAD_SYSTEM_CONFIG)
    auth.enable_token_auth_by_default()  # as ray.init does for a new cluster
    auth.ensure_token_if_auth_enabled(system_config, create_token_if_missing=True)
    params = parameter.RayParams(
        num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, no_monitor=True,
        include_log_monitor=False, _system_config=system_config)
    head_class = _own_head_class(ray)
    _own_head = head_class(params, head=True, shutdown_at_exit=False, spawn_reaper=True)
    return str(_own_head.address)


def _own_head_class(ray: ModuleType) -> type:
    """Ray's ``Node`` without the API server, with the stand-in for the raylet's agents,
    and a wait for the GCS's port that releases the GIL. Each change replaces one of
    Ray's functions for one call of Ray's (the head starts in one thread, under
    ``_lock``)."""
    node_module = ray._private.node
    services = ray._private.services
    raylet_type = ray._private.ray_constants.PROCESS_TYPE_RAYLET
    gcs_type = ray._private.ray_constants.PROCESS_TYPE_GCS_SERVER

    class OwnHead(node_module.Node):  # type: ignore[misc,name-defined]
        def start_api_server(self, *, include_dashboard: bool | None,
                             raise_on_failure: bool) -> None:
            """No API server: we serve no dashboard, jobs or state API."""

        def start_gcs_server(self) -> None:
            """Ray's, with our wait for the GCS's port file (:func:`_port_wait`)."""
            def gcs_alive() -> bool:
                started = self.all_processes.get(gcs_type)  # made before the wait
                return not started or started[0].process.poll() is None

            wait = _port_wait(ray, node_module.wait_for_persisted_port, gcs_alive)
            with _replaced(node_module, "wait_for_persisted_port", wait):
                super().start_gcs_server()

        def start_raylet(self, *args: object, **kwargs: object) -> None:
            """The raylet, with the stand-in for its agents (with the Ray releases it was
            seen to work with: ``STAND_IN_RAY_RELEASES``). Ray builds the raylet's command
            line inside ``services.start_raylet`` and has no option for the agents, so the
            command is rewritten on its way to ``start_ray_process``."""
            if not stands_in_for_agents(ray.__version__):
                super().start_raylet(*args, **kwargs)
                return
            start_process = services.start_ray_process

            def start_with_stand_ins(command: list[str], process_type: str,
                                     *more: object, **options: object) -> object:
                if process_type == raylet_type:
                    command = stand_in_agents(command)
                return start_process(command, process_type, *more, **options)

            with _replaced(services, "start_ray_process", start_with_stand_ins):
                super().start_raylet(*args, **kwargs)

    return OwnHead


@contextlib.contextmanager
def _replaced(module: ModuleType, name: str, replacement: object) -> Iterator[None]:
    """``module.name`` is ``replacement`` inside the block, and what it was after."""
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)


PORT_LOOK = 0.01  # seconds between looks for the GCS's port file
PORT_READ_MS = 1000  # Ray's read of a port file that is there (it may be mid-write)
PortWait = Callable[..., int]


def _port_wait(ray: ModuleType, ray_wait: PortWait, gcs_alive: Callable[[], bool]) -> PortWait:
    """Ray's ``wait_for_persisted_port`` (C++) holds the GIL for all of its wait, 30 s at
    most: every thread of the service stood still while its GCS started (the control
    socket, the database server), and a service stopped meanwhile, its GCS ended by the
    reaper, could not exit until the wait ran out. This one waits in Python, the GIL
    released, until the file is there or the GCS has exited, then lets Ray read it. Past
    Ray's timeout, Ray's function says so, in its words."""
    def wait(session_dir: str, node_id: str, name: str, timeout_ms: int) -> int:
        path = os.path.join(session_dir, ray._raylet.get_port_filename(node_id, name))
        deadline = time.monotonic() + timeout_ms / 1000
        while not os.path.exists(path) and time.monotonic() < deadline:
            if not gcs_alive():
                raise RuntimeError(f"the GCS exited before it wrote its port to {path}")
            time.sleep(PORT_LOOK)
        return ray_wait(session_dir, node_id, name, timeout_ms=min(timeout_ms, PORT_READ_MS))

    return wait


def stands_in_for_agents(ray_version: str) -> bool:
    """Whether our head runs the stand-in for the raylet's agents with this Ray."""
    return ray_version.rsplit(".", 1)[0] in STAND_IN_RAY_RELEASES


def stand_in_agents(raylet_command: list[str]) -> list[str]:
    """The raylet's command line with each agent's command replaced by the stand-in's
    (:mod:`ganga_like.ray_stand_in`), which gets the agent's own arguments (its ports,
    the session directory, the node id). An agent command of another shape than Ray's
    ``python ... <script>.py <arguments>`` is left as it is: that Ray runs its own agents."""
    replaced = []
    for part in raylet_command:
        for option in AGENT_COMMAND_OPTIONS:
            if part.startswith(option):
                agent = shlex.split(part[len(option):])
                scripts = [at for at, word in enumerate(agent) if word.endswith(".py")]
                if scripts:
                    stand_in = [sys.executable, "-S", "-I", STAND_IN, *agent[scripts[0] + 1:]]
                    part = option + subprocess.list2cmdline(stand_in)
        replaced.append(part)
    return replaced


def joined_node_lost() -> str:
    """Why this machine's node of the cluster this process joined (``GANGA_LIKE_RAY_ADDRESS``)
    is gone, as that cluster's GCS says: its raylet exited, and the GCS marks the node
    dead once its health checks fail (seconds later). Ray's driver does not end or tell
    the process then, and every new actor waits for ever for a node to run on. Empty
    while the node lives, when this process started its own head or Ray is not up, and
    when the GCS cannot be asked (a driver whose GCS stays away is ended by Ray itself).
    A call to the GCS: not for a thread that must never wait."""
    if _own_head is not None or "ray" not in sys.modules:
        return ""
    ray = import_ray()
    if not ray.is_initialized():
        return ""
    try:
        node_id = ray.get_runtime_context().get_node_id()
        nodes = ray.nodes()
    except Exception:  # the GCS cannot answer now: nothing known
        return ""
    for node in nodes:
        if node.get("NodeID") == node_id and not node.get("Alive", True):
            why = node.get("DeathReasonMessage") or "no reason given"
            return f"the cluster reports this machine's node {node_id[:8]} dead: {why}"
    return ""


def mark_ray_lost() -> None:
    """Ray died under this process (``own_head_lost``, ``joined_node_lost``): ``stop_ray``
    leaves its driver connected (see there)."""
    global _abandoned
    _abandoned = True


def stop_ray() -> None:
    """Disconnect from Ray, and end the head we started (if we did): ``ray.shutdown()``
    ends only a head that ``ray.init`` itself started.

    Not from a head of ours that died (:func:`own_head_lost`), nor from a joined node
    that died (:func:`mark_ray_lost`): Ray's driver ends its
    whole process with ``_exit(1)`` when its disconnect finds the raylet gone (seen with
    gdb: ``ShutdownIfLocalRayletDisconnected``), which would cut the service's own stop
    short (its database server, the index, its state file). Ray's exit hook, which would
    do the same at the interpreter's exit, is taken off too."""
    global _own_head, _abandoned
    if "ray" in sys.modules:
        ray = import_ray()
        if ray.is_initialized():
            if _abandoned or own_head_lost():
                _abandoned = True  # this is called again at exit, once the head is forgotten
                atexit.unregister(ray._private.worker.shutdown)
            else:
                ray.shutdown()
    head, _own_head = _own_head, None
    if head is not None:
        head.kill_all_processes(check_alive=False, allow_graceful=True)
