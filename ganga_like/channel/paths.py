"""The service's files in a repository root, and the rule that keeps them private.

The root is 0700 and every file the service creates is 0600 (its umask is 077):
job definitions carry environments, outputs are the user's data.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import threading
from typing import Any

from ..errors import ConfigurationError

ROOT_MODE = 0o700
SOCKET_PATH_MAX = 107  # bytes: a unix socket's path fills sun_path[108] with its NUL

_directory_fds: dict[str, int] = {}
_directory_fds_lock = threading.Lock()


def connectable(path: str) -> str:
    """The path to bind or connect the unix socket ``path`` by: itself when the kernel
    takes it, else the same file reached through this process's descriptor of its
    deepest existing directory (``/proc/self/fd/N/rest``), so that a repository works at
    any depth (AFS and cluster home directories are long). The socket file stays where
    ``path`` says. Called at each bind or connect: a directory made or replaced since
    is found again."""
    if len(os.fsencode(path)) <= SOCKET_PATH_MAX:
        return path
    directory = os.path.dirname(path)
    while directory != os.path.dirname(directory):
        fd = _directory_fd(directory)
        if fd is not None:
            short = f"/proc/self/fd/{fd}/{os.path.relpath(path, directory)}"
            return short if len(os.fsencode(short)) <= SOCKET_PATH_MAX else path
        directory = os.path.dirname(directory)
    return path


def _directory_fd(directory: str) -> int | None:
    """An open descriptor of ``directory`` (None if it does not exist), kept for the
    process's life; opened again when the directory was replaced (another inode)."""
    with _directory_fds_lock:
        try:
            current = os.stat(directory)
        except OSError:
            return None
        fd = _directory_fds.get(directory)
        if fd is not None:
            held = os.fstat(fd)
            if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                return fd
            os.close(fd)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        _directory_fds[directory] = fd
        return fd


@dataclasses.dataclass(frozen=True)
class ServicePaths:
    root: str

    @property
    def zeo_socket(self) -> str:
        """The database's socket (bound and connected through :func:`connectable`)."""
        return os.path.join(self.root, "zeo.sock")

    @property
    def control_socket(self) -> str:
        """The service's request socket (bound and connected through :func:`connectable`)."""
        return os.path.join(self.root, "service.sock")

    @property
    def lock(self) -> str:
        """Held (flock) by the running service for its whole life; holds its pid."""
        return os.path.join(self.root, "service.lock")

    @property
    def start_lock(self) -> str:
        """Held by a client while it starts a service, so two clients start one."""
        return os.path.join(self.root, "service.starting")

    @property
    def state(self) -> str:
        """What a dead service left to clean up: its Ray directory, its pid."""
        return os.path.join(self.root, "service.json")

    @property
    def ray_token(self) -> str:
        """The token of the service's own Ray head (Ray's token authentication)."""
        return os.path.join(self.root, "ray-auth-token")

    @property
    def log(self) -> str:
        return os.path.join(self.root, "service.log")

    @property
    def server_cert(self) -> str:
        return os.path.join(self.root, "service-tls.pem")

    @property
    def client_secret(self) -> str:
        """The file a remote client must present (TLS client key and certificates)."""
        return os.path.join(self.root, "service-secret.pem")

    @property
    def made_here(self) -> str:
        """Present when ganga_like created the root: only then may it change the root's mode."""
        return os.path.join(self.root, ".made-by-ganga-like")

    def root_is_ours(self) -> bool:
        return os.path.exists(self.made_here)

    def make_root(self) -> None:
        """Create the root if needed, private (0700). A root ganga_like made is kept
        private (unless it was opened to an output group: then it is left as the service
        made it); a directory the user made and pointed GANGA_LIKE_DIR at keeps the mode
        the user gave it (every file and directory ganga_like makes in it is private)."""
        try:
            try:
                os.makedirs(self.root, mode=ROOT_MODE)
            except FileExistsError:
                if not os.path.isdir(self.root):
                    raise NotADirectoryError(errno.ENOTDIR, "not a directory", self.root) from None
                if self.root_is_ours() and os.stat(self.root).st_mode & 0o007:
                    os.chmod(self.root, ROOT_MODE)
                return
            fd = os.open(self.made_here, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write("This directory was made by ganga_like, which keeps it private (0700).\n")
        except OSError as exc:
            raise ConfigurationError(
                f"the repository {self.root} cannot be used ({exc.strerror}: {exc.filename}); "
                f"set GANGA_LIKE_DIR to a directory you can write, or unset it for "
                f"~/gangalike") from None

    def read_state(self) -> dict[str, Any]:
        try:
            with open(self.state) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle)
        os.replace(tmp, self.state)

    def holder_pid(self) -> int | None:
        """The pid written in the lock file (it may be stale: check the lock itself)."""
        try:
            with open(self.lock) as handle:
                return int(handle.read().strip() or 0) or None
        except (OSError, ValueError):
            return None
