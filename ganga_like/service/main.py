"""The service process: ``python -m ganga_like.service.main --root DIR [--listen HOST:PORT]``.

Clients start it in the background (``ganga_like.client.autostart``), or a user
with ``ganga-like service start``. What it does, in order:

1. takes the root's service lock (one service per root; a second one says who
   runs it, once the lock stayed taken for ``LOCK_PATIENCE``: a client looking whether
   a service runs takes it shared for a moment), with a umask that keeps every file
   private;
2. settles Ray's environment before anything imports Ray (``ray_runtime``: token
   authentication with the token in ``<root>/ray-auth-token``, loopback only);
   ends what a service killed earlier left of Ray (``reaper``), records the Ray
   directory it is about to use, and starts its guardian;
3. serves the FileStorage through ZEO on ``<root>/zeo.sock`` to its clients; its own
   session opens the same FileStorage directly, as a peer of those clients that
   commits in its turn in ZEO's queue (``repository.served``);
4. starts Ray in the background (``ray_runtime.start_in_background``: a head of its
   own with only the processes the backends use, or joins ``GANGA_LIKE_RAY_ADDRESS``)
   and, while Ray starts, opens its own session (the core: operations, monitor,
   backend pool) on the served FileStorage;
5. answers on ``<root>/service.sock`` at once: reads, creates and edits never wait for
   Ray. A verb that needs a backend actor (submit, kill, resubmit, ...) waits until
   Ray is up and recovery (adopting running work, reconciling ``submitting``, applying
   what finished meanwhile) has run; the service's status says ``ray: starting`` until
   then. If Ray cannot start, those verbs get its reason in one line and the service
   stays up for everything else;
6. recovers the work of a backend actor that dies, at once (housekeeping), and stops
   if the Ray head it started dies (its GCS or its raylet: the next client's service
   starts a new one and adopts the running work) or its root is deleted; that watch
   runs in a thread of its own, since recovery can wait on a dying Ray for ever. On a
   cluster it joined, another thread asks the cluster every few seconds whether this
   machine's node lives, and stops the service as above when it died;
7. serves the web view once a client asks for it (``ganga-like web``: ``webhost``), on
   loopback behind a token made at that start; its open live pages count as clients;
8. stops on SIGTERM, on ``ganga-like service stop``, or after ``GANGA_LIKE_IDLE``
   seconds (default 900; 0 = never) with no client connected and no active job: it
   refuses what comes after the stop (``ServiceStopping``: the client asks the next
   service), lets the requests under way end, and leaves no process of its own behind.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from typing import Any

from ..channel import protocol
from ..channel.paths import ServicePaths, connectable
from ..channel.verbs import VERBS
from ..config import Config
from ..engine.core import Engine
from ..errors import GangaLikeError, ServiceError, ServiceRunning, ServiceStopping
from ..ray_runtime import (
    TOKEN_PATH,
    BackgroundStart,
    RayStartFailed,
    import_ray,
    joined_node_lost,
    joins_a_cluster,
    mark_ray_lost,
    own_head_lost,
    ray_is_opened,
    settle_environment,
    start_in_background,
)
from ..repository import pack, served
from ..repository.storage import SafeFileStorage, open_served
from ..status import ACTIVE
from . import guardian, logfile, owned, reaper, sharing, start_failure
from .control import ControlServer
from .verbs import Verbs, dispatch
from .webhost import WebHost

log = logging.getLogger("ganga_like.service")

DEFAULT_IDLE = 900.0
BOOT_LOOK = 0.2  # seconds between looks at a stop request while Ray starts
WATCH_EVERY = 0.5  # seconds between looks at the root and at the Ray head of our own
JOINED_CHECK_EVERY = 2.0  # seconds between asks to a joined cluster whether our node lives
DRAIN = 30.0  # at most this long a stop waits for the requests under way (a verb waits for Ray)
# A client's look whether a service runs takes the lock shared for a moment: a start that
# meets that moment tries again, for this long, before it says another service runs.
LOCK_PATIENCE = 0.5
LOCK_RETRY = 0.005


def idle_seconds(environ: Any = None) -> float:
    env = os.environ if environ is None else environ
    raw = env.get("GANGA_LIKE_IDLE", "")
    if raw == "":
        return DEFAULT_IDLE
    try:
        value = float(raw)
    except ValueError:
        raise GangaLikeError(f"GANGA_LIKE_IDLE={raw!r} is not valid; give seconds "
                             f"(e.g. 900), or 0 to never stop when idle") from None
    if value < 0:
        raise GangaLikeError(f"GANGA_LIKE_IDLE={raw!r} is not valid; give seconds >= 0")
    return value


class Service:
    def __init__(self, config: Config, listen: tuple[str, int] | None = None,
                 idle: float = DEFAULT_IDLE, pack_policy: pack.PackPolicy | None = None) -> None:
        self.config = config
        self.pack_policy = pack_policy or pack.PackPolicy()
        self.autopack: pack.AutoPack | None = None
        self.paths = ServicePaths(config.root)
        self.listen = listen
        self.idle = idle
        self.ready = threading.Event()
        self.boot_error = ""
        self.stopping = threading.Event()
        self.stop_reason = ""
        self._under_way = 0  # requests being answered: a stop closes nothing under them
        self._answering = threading.Condition()
        self._drained = False  # then even hello and status are refused: the session is closing
        self.started = time.time()
        self.tls_address: tuple[str, int] | None = None
        self.ray_dir = ""
        self.root: owned.Held | None = None  # its root, held: stop once the path names another
        self._made: dict[str, owned.Held] = {}  # the files it removes at its stop
        self._lock_fd: int | None = None
        self.session: Any = None
        self.zeo: Any = None
        self.served: served.ServedStorage | None = None
        self.control: ControlServer | None = None
        self.web: WebHost | None = None
        self.ray: BackgroundStart | None = None

    # -- start ------------------------------------------------------------------
    def start(self) -> None:
        os.umask(sharing.PRIVATE_UMASK)
        gid = sharing.output_group()
        self.paths.make_root()
        self._take_lock()
        # Before anything can import Ray (recovery does, when there is active work).
        settle_environment(token_path=self.paths.ray_token)
        sharing.apply(self.config.root, self.config.workspace,
                      os.path.dirname(self.config.filestorage_path), gid,
                      root_is_ours=self.paths.root_is_ours())
        self.root = owned.Held(self.config.root)
        previous = self.paths.read_state()
        if previous.get("ray_dir"):
            ended = reaper.reap(previous["ray_dir"])
            if ended:
                log.info("ended %d Ray process(es) left by the service that ran as pid %s",
                         ended, previous.get("pid"))
        base = os.environ.get("RAY_TMPDIR") or "/tmp"
        self.ray_dir = tempfile.mkdtemp(prefix="gls-", dir=base)  # short: Ray's socket paths
        os.environ["RAY_TMPDIR"] = self.ray_dir
        self.paths.write_state({"pid": os.getpid(), "ray_dir": self.ray_dir,
                                "started": self.started})
        self._made[self.paths.state] = owned.Held(self.paths.state)
        # Started before Ray: whenever this process ends, even by SIGKILL, its Ray goes too.
        guardian.start(os.getpid(), self.ray_dir, self.paths.log)
        self._serve_database()  # first: a damaged database fails the start before Ray runs
        self.ray = start_in_background()  # the session opens meanwhile
        assert self.served is not None  # made by _serve_database
        repository = open_served(self.config, self.served, location=self.config.root)
        self.session = Engine(self.config, repository=repository)
        self.repo_uuid = self.session.repo_uuid  # read once: the main connection is the verbs'
        self.web = WebHost(self.config, repository, self.answer)
        self.verbs = Verbs(self.session, self.info, self.request_stop, self.web.open,
                           self.pack_now, stopping=self._refuse_if_stopping)
        self.control = ControlServer(self.paths.control_socket, self.answer)
        if self.listen is not None:
            self._listen_tls(*self.listen)
        self.control.start()
        log.info("service for %s started (pid %d, database %s%s)", self.config.root, os.getpid(),
                 self.paths.zeo_socket,
                 f", TLS on {self.tls_address[0]}:{self.tls_address[1]}" if self.tls_address else "")
        threading.Thread(target=self._watch, name="ganga_like-watch", daemon=True).start()
        if joins_a_cluster():
            threading.Thread(target=self._watch_joined_node, name="ganga_like-watch-node",
                             daemon=True).start()
        threading.Thread(target=self._housekeeping, name="ganga_like-housekeeping",
                         daemon=True).start()
        threading.Thread(target=self._packing, name="ganga_like-pack", daemon=True).start()

    def _take_lock(self) -> None:
        fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
        if not lock_patiently(fd, LOCK_PATIENCE):
            os.close(fd)
            pid = self.paths.holder_pid()
            raise ServiceRunning(self.config.root, f"pid {pid}" if pid else "another process")
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _serve_database(self) -> None:
        import ganga_like.model.counts  # noqa: F401  (conflicts of the counts resolve here)

        path = self.config.filestorage_path
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        if os.path.exists(self.paths.zeo_socket):
            os.unlink(self.paths.zeo_socket)  # a dead service's (we hold the lock)
        for line in pack.repair(path):  # what a service killed midway left
            log.info("%s", line)
        storage = SafeFileStorage(path, pack_keep_old=False)  # a full disk cannot damage it
        self.autopack = pack.AutoPack(storage, self.pack_policy)
        self.zeo, self.served = served.serve(connectable(self.paths.zeo_socket), storage)
        self.zeo.start_thread()
        deadline = time.monotonic() + 10
        while not os.path.exists(self.paths.zeo_socket) and time.monotonic() < deadline:
            time.sleep(0.005)
        os.chmod(self.paths.zeo_socket, 0o600)
        self._made[self.paths.zeo_socket] = owned.Held(self.paths.zeo_socket)

    def _listen_tls(self, host: str, port: int) -> None:
        """Requests and the database over TLS, for clients that hold the root's secret."""
        from ZEO.asyncio.server import Acceptor

        from ..channel import tls

        context = tls.server_context(self.paths)
        assert self.control is not None  # started before the listeners
        self.tls_address = self.control.listen_tls(host, port, context)
        acceptor = Acceptor(self.zeo, (host, 0), context, False)
        self.zeo_tls_port = acceptor.addr[1]
        self._zeo_tls = acceptor
        threading.Thread(target=acceptor.loop, name="ganga_like-zeo-tls", daemon=True).start()

    _zeo_tls: Any = None
    zeo_tls_port = 0

    def boot(self) -> None:
        """Answer at once; once Ray is up, recover what earlier services left and start
        the monitor (a verb that needs the actors may have done so first: it waits for
        Ray and recovers under the verb lock). Ray failing to start is logged and told
        to each verb that needs it; the service stays up for everything else."""
        assert self.ray is not None  # started by start()
        try:
            self.ready.set()
            try:
                while not self.ray.wait(timeout=BOOT_LOOK):
                    if self.stopping.is_set():
                        return  # a stop does not wait for a start that may take minutes
            except RayStartFailed as exc:
                log.error("%s; the service answers reads and edits, not what needs Ray", exc)
                return
            if self.stopping.is_set():
                return  # stopped while Ray started: nothing to recover now
            log.info("Ray is up; recovering earlier work, then monitoring")
            self.verbs.locked(self.session.ensure_monitor)
            log.info("ready (Ray up, recovery done, monitor running)")
        except BaseException as exc:  # the service must say why, not hang its clients
            self.boot_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.exception("start-up failed")
            self.ready.set()
            self.request_stop(f"start-up failed: {self.boot_error}")

    # -- answering ----------------------------------------------------------------
    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        verb = str(request.get("verb"))
        any_time = verb in VERBS and VERBS[verb].any_time  # (an unknown one: dispatch says so)
        try:
            with self._answering:
                if not any_time or self._drained:
                    self._refuse_if_stopping()
                self._under_way += 1  # counted with the check: a stop drains what got in
            try:
                if not any_time:
                    self.ready.wait()
                    if self.boot_error:
                        raise ServiceError(f"the service for {self.config.root} could not "
                                           f"start: {self.boot_error}; see {self.paths.log}")
                value = dispatch(self.verbs, request)
                return {"ok": True, "value": value, "tid": self.verbs.last_tid()}
            finally:
                with self._answering:
                    self._under_way -= 1
                    self._answering.notify_all()
        except BaseException as exc:  # every failure goes back to the client as one line
            if not isinstance(exc, GangaLikeError):
                log.exception("request %s failed", verb)
            return {"ok": False, "error": protocol.encode_error(exc)}

    def _refuse_if_stopping(self) -> None:
        """A request that comes during a stop is not carried out (and a read under way
        ends at its next look): the client may ask the next service instead."""
        if self.stopping.is_set():
            raise ServiceStopping(self.config.root, self.stop_reason)

    def _drain(self) -> None:
        """Wait (at most ``DRAIN`` s) for the requests under way: the session they use
        closes next. New ones are refused, and reads under way end at their next look."""
        deadline = time.monotonic() + DRAIN
        with self._answering:
            while self._under_way and time.monotonic() < deadline:
                self._answering.wait(max(0.0, deadline - time.monotonic()))
            if self._under_way:
                log.warning("stopping with %d request(s) still under way after %g s",
                            self._under_way, DRAIN)
            self._drained = True

    def info(self) -> dict[str, Any]:
        return {
            "root": self.config.root, "pid": os.getpid(), "started": self.started,
            "zeo": self.paths.zeo_socket, "repo_uuid": self.repo_uuid,
            "ready": self.ready.is_set() and not self.boot_error, "boot_error": self.boot_error,
            "clients": self.client_count(), "idle_stop": self.idle,
            "listen": f"{self.tls_address[0]}:{self.tls_address[1]}" if self.tls_address else "",
            "zeo_tls_port": self.zeo_tls_port,
            "web": self.web.address if self.web else "",  # (its token: the web verb's only)
            "ray": self.ray.state.value if self.ray else "", "ray_error": self.ray.error if self.ray else "",
            "ray_address": _ray_address(), "ray_open": ray_is_opened(),
            "ray_token": os.environ.get(TOKEN_PATH, ""),
            "active_jobs": self._active_count(),
            "stopping": self.stopping.is_set(),
        }

    # -- idle and stop ------------------------------------------------------------
    def client_count(self) -> int:
        """ZEO connections (the service's own database has none: ``repository.served``),
        plus open control connections and open live pages of the web view."""
        zeo = 0
        if self.zeo is not None:
            zeo = sum(len(v) for v in self.zeo.zeo_storages_by_storage_id.values())
        return zeo + (self.control.connections if self.control else 0) + \
            (self.web.streams if self.web else 0)

    def _active_count(self) -> int:
        if self.session is None:
            return 0
        conn = self.session.repository.connect()
        try:
            root = conn.root
            active = getattr(root, "active_ids", None) or ()
            count = 0
            for top_id in list(active):
                try:
                    if root.jobs[top_id].status in ACTIVE:
                        count += 1
                except KeyError:
                    continue
            return count
        finally:
            conn.close()

    def _has_active_work(self) -> bool:
        return self._active_count() > 0

    def _watch(self) -> None:
        """Every half second: stop if the root was deleted or replaced, or if the Ray head
        of our own died. A thread of its own, calling nothing that waits on Ray: recovery
        (housekeeping) can block for ever making an actor on a Ray whose raylet has just
        died, and this check must still run then (seen in a test under load: the monitor
        saw the actor die before the raylet's exit was seen, and recovery hung)."""
        while not self.stopping.wait(WATCH_EVERY):
            if self.root is not None and not self.root.is_there():
                # Deleted (or replaced): no client can find this service any more.
                self.request_stop(f"its root {self.config.root} was deleted or replaced")
                continue
            lost = own_head_lost()
            if lost:
                self._ray_lost(lost)

    def _watch_joined_node(self) -> None:
        """Every ``JOINED_CHECK_EVERY`` seconds, on a cluster this service joined: stop if
        the cluster says this machine's node died (its raylet exited). A thread of its
        own: asking the cluster's GCS can wait, and ``_watch`` must not."""
        while not self.stopping.wait(JOINED_CHECK_EVERY):
            lost = joined_node_lost()
            if lost:
                self._ray_lost(lost)
                return

    def _ray_lost(self, why: str) -> None:
        """Nothing of the backends works any more, and a verb would wait on Ray for ever:
        stop, so that the next client starts a service with a Ray that works, which adopts
        the running work as after any stop. The pool makes no more actors, the stop waits
        for none, and it leaves Ray's driver alone (``ray_runtime.stop_ray``)."""
        mark_ray_lost()
        if self.session is not None:
            self.session.backends.ray_ended()
        self.request_stop(f"its Ray ended ({why}); the next client starts a new service, "
                          f"which adopts the running work")

    def _housekeeping(self) -> None:
        """Every half second: recover the work of a backend actor that died; stop when
        idle (no client, no active job, nothing to postprocess for ``idle`` seconds)."""
        step = min(WATCH_EVERY, self.idle / 4) if self.idle > 0 else WATCH_EVERY
        while not self.stopping.wait(step):
            if not self.ready.is_set():
                continue
            try:
                self.verbs.recover_if_needed()
            except Exception:
                log.exception("recovering the work of a dead backend actor")
            if self.idle <= 0 or self.client_count():
                continue
            control = self.control
            if control is None or time.monotonic() - control.last_activity < self.idle:
                continue
            if self._has_active_work() or self.session.monitor.postprocessing(None):
                control.touch()  # work counts as activity: the idle period restarts after it
                continue
            self.request_stop(f"idle for {self.idle:g} s with no client and no active job")

    def _packing(self) -> None:
        """Every few seconds: pack ``jobs.fs`` when the policy says so (repository/pack.py)."""
        while not self.stopping.wait(pack.CHECK_EVERY):
            if self.autopack is not None:
                self.autopack.tick()

    def pack_now(self) -> dict[str, object]:
        """The ``pack`` verb: pack now, keeping the policy's days of history."""
        if self.autopack is None:
            raise ServiceError("the service serves no database yet")
        return self.autopack.pack_now().as_dict()

    def request_stop(self, reason: str) -> None:
        if not self.stopping.is_set():
            self.stop_reason = reason
            log.info("stopping: %s", reason)
            self.stopping.set()

    def wait(self) -> None:
        while not self.stopping.wait(1.0):
            pass

    def shutdown(self) -> None:
        """Refuse new requests and let those under way end; stop the monitor and the
        actors, Ray, the database server, then the control socket; end whatever of Ray
        is left; release the lock. Payloads keep running. Without
        the lock (a start that failed to take it) there is nothing of ours to stop."""
        if self._lock_fd is None:
            return
        if self.web is not None:
            _step("stopping the web view", self.web.stop)
        self.request_stop("its start failed")  # (set already, unless it did)
        self._drain()
        if self.session is not None:
            _step("closing the session", self.session.close)
        if self.ray is not None:
            _step("stopping Ray", self.ray.stop)
        if self._zeo_tls is not None:
            self._zeo_tls.close()
        if self.zeo is not None:
            _step("stopping the database server", self.zeo.close)
        self._remove_own(self.paths.zeo_socket)
        if self.control is not None:
            self.control.stop()  # requests were refused until now, with the reason
        ended = reaper.reap(self.ray_dir)
        if ended:
            log.info("ended %d Ray process(es) that outlived ray.shutdown()", ended)
        self._remove_own(self.paths.state)
        log.info("stopped")
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self.root is not None:
            self.root.release()

    def _remove_own(self, path: str) -> None:
        """Remove ``path`` if it is still the file this service made there."""
        held = self._made.pop(path, None)
        if held is not None:
            held.remove()


def lock_patiently(fd: int, patience: float) -> bool:
    """Lock ``fd`` exclusively (flock), trying again for ``patience`` seconds; whether it
    was taken. A service holds its lock for its whole life; a client's look whether one
    runs (``autostart.service_alive``) holds it shared for a moment. A start that met
    such a moment said "already runs (the pid of the last service)", and its client gave
    up (seen in a test whose script waited through a SIGKILL of its service)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOCK_RETRY)


def _step(what: str, action: Any) -> None:
    """One step of the shutdown: a failure is logged, and the next steps still run."""
    try:
        action()
    except Exception:
        log.exception(what)


def _ray_address() -> str:
    if "ray" not in sys.modules:
        return ""
    ray = import_ray()
    try:
        if ray.is_initialized():
            return ray.get_runtime_context().gcs_address
    except Exception:
        pass
    return ""


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise GangaLikeError(f"--listen {value!r} is not valid; give HOST:PORT "
                             f"(e.g. 0.0.0.0:8765, or 127.0.0.1:0 for any free port)")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ganga_like.service.main")
    parser.add_argument("--root", required=True)
    parser.add_argument("--listen", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, handlers=[logfile.LineHandler(sys.stderr)],
                        format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("ZEO").setLevel(logging.WARNING)
    logging.getLogger("ZODB").setLevel(logging.WARNING)
    logging.getLogger("ZEO.asyncio.server").addFilter(logfile.ClientsLeaving())
    config = Config.from_env(root=args.root)
    service: Service | None = None
    try:
        service = Service(config, listen=parse_listen(args.listen) if args.listen else None,
                          idle=idle_seconds(), pack_policy=pack.PackPolicy.from_env())
        signal.signal(signal.SIGTERM, lambda *_: service.request_stop("SIGTERM") if service else None)
        signal.signal(signal.SIGINT, lambda *_: service.request_stop("SIGINT") if service else None)
        service.start()
    except Exception as exc:
        if not isinstance(exc, GangaLikeError):
            log.debug("start failed", exc_info=True)
        if service is not None:
            service.shutdown()  # what did start (the guardian, the database server) ends now
        why = start_failure.explain(exc, ServicePaths(config.root), config.filestorage_path)
        # The last line of the log: the client that started us shows it.
        print(f"ganga-like service: {why}", file=sys.stderr, flush=True)
        return _exit(service, 1)
    try:
        service.boot()
        service.wait()
    finally:
        service.shutdown()
    return _exit(service, 0)


def _exit(service: Service | None, code: int) -> int:
    """``code``; or, while Ray's start is still under way in its thread, the exit itself.
    Ray's exit hook (``ray.shutdown``, registered when ``ray`` is imported) takes the
    lock that Ray's start holds while it connects, and a start whose head the reaper
    has just ended can hold it for a minute: the process stayed after its "stopped"
    line. Everything of ours is stopped and logged by then, so the hooks are skipped."""
    if service is not None and service.ray is not None and service.ray.under_way():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
