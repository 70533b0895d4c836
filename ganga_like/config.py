"""Where the repository lives and how the session behaves, from the environment.

``GANGA_LIKE_DIR``        root directory (default ``~/gangalike``, also when set but empty;
                          with ``HOME`` set but empty or relative, one line asks for either)
``GANGA_LIKE_REPOSITORY`` ``file`` (the embedded FileStorage, default) or ``zeo://host:port``
``GANGA_LIKE_MODE``       ``strict`` (default) or ``relaxed``
``GANGA_LIKE_READ_ONLY``  ``1`` to open the repository read-only
``GANGA_LIKE_KEEP_HISTORY`` ``1`` to keep finished BEX queue entries in ``queue/history/``
"""

from __future__ import annotations

import dataclasses
import os
import pwd
from collections.abc import Mapping

from .errors import ConfigurationError

MODES = ("strict", "relaxed")
DEFAULT_ROOT = "~/gangalike"


@dataclasses.dataclass(frozen=True)
class Config:
    root: str
    repository: str = "file"
    mode: str = "strict"
    read_only: bool = False
    keep_history: bool = False  # BEX's keep_history: OK jobs' queue files go to history/

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigurationError(
                f"mode {self.mode!r} is not valid; choose one of: {', '.join(MODES)}",
                value=self.mode, valid=MODES,
            )
        if self.repository != "file" and not self.repository.startswith("zeo://"):
            raise ConfigurationError(
                f"repository {self.repository!r} is not valid; use 'file' or 'zeo://host:port'",
                value=self.repository,
            )

    @property
    def filestorage_path(self) -> str:
        return os.path.join(self.root, "repository", "jobs.fs")

    @property
    def workspace(self) -> str:
        return os.path.join(self.root, "workspace")

    @property
    def queue_log(self) -> str:
        return os.path.join(self.root, "log")

    @property
    def bex_queue(self) -> str:
        return os.path.join(self.root, "queue")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Config:
        env = os.environ if environ is None else environ
        root = overrides.get("root")
        values: dict[str, object] = {
            # Set but empty means the default: never the current directory.
            "root": os.path.abspath(os.path.expanduser(
                str(root) if root is not None
                else env.get("GANGA_LIKE_DIR", "").strip() or _default_root(env))),
            "repository": env.get("GANGA_LIKE_REPOSITORY", "file"),
            "mode": env.get("GANGA_LIKE_MODE", "strict"),
            "read_only": _switch(env.get("GANGA_LIKE_READ_ONLY", "")),
            "keep_history": _switch(env.get("GANGA_LIKE_KEEP_HISTORY", "")),
        }
        values.update({k: v for k, v in overrides.items() if v is not None and k != "root"})
        return cls(**values)  # type: ignore[arg-type]


def _default_root(env: Mapping[str, str]) -> str:
    """``~/gangalike`` in the home directory: ``HOME``, or the password database's when
    ``HOME`` is not set (as a shell and Python do). A ``HOME`` set but empty would put
    the repository at ``/gangalike`` and a relative one under the current directory:
    both refused, in one line."""
    if "HOME" not in env:
        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            home = ""
    else:
        home = env["HOME"]
    if not os.path.isabs(home):
        raise ConfigurationError(
            f"no home directory for the default root {DEFAULT_ROOT} (HOME is {home!r}); "
            "set HOME to your home directory, or GANGA_LIKE_DIR to the repository's directory",
            value=home, valid=("an absolute HOME", "GANGA_LIKE_DIR"),
        )
    return os.path.join(home, DEFAULT_ROOT[2:])


def _switch(value: str) -> bool:
    return value not in ("", "0", "no", "false")


# --- Ganga's ``config``: the sections a Ganga script reads, mapped to ours -----------------

# (section, option) -> the environment variable that sets it here ('' if nothing does)
GANGA_OPTION_SOURCES = {
    ("Configuration", "gangadir"): "GANGA_LIKE_DIR",
    ("Configuration", "repositorytype"): "GANGA_LIKE_REPOSITORY",
    ("GangaLike", "mode"): "GANGA_LIKE_MODE",
    ("GangaLike", "read_only"): "GANGA_LIKE_READ_ONLY",
    ("GangaLike", "keep_history"): "GANGA_LIKE_KEEP_HISTORY",
    ("GangaLike", "repository"): "GANGA_LIKE_REPOSITORY",
    ("GangaLike", "root"): "GANGA_LIKE_DIR",
}


# Ganga options a script may set in its own session (``config['Configuration'][...] =``):
# {(section, option): (default, what it is)}. Each is the process's own, as in Ganga: a
# verb that uses one carries the caller's value (``model.session``'s fillers).
SESSION_OPTIONS: dict[tuple[str, str], tuple[bool, str]] = {
    ("Configuration", "resubmitOnlyFailedSubjobs"): (
        True, "True (Ganga's default): resubmit() of a master takes its failed subjobs "
              "(none: nothing to do); False: every finished subjob"),
}
_session_values: dict[tuple[str, str], bool] = {}


def session_option(section: str, option: str) -> bool:
    """The value this process set for a session option, else its default."""
    return _session_values.get((section, option), SESSION_OPTIONS[(section, option)][0])


def set_session_option(section: str, option: str, value: object) -> None:
    """Set a session option for this process (True or False; else one line saying so)."""
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"config['{section}']['{option}'] takes True or False, not {value!r}",
            value=value, valid=(True, False))
    _session_values[(section, option)] = value


def ganga_sections(config: Config) -> dict[str, dict[str, tuple[object, str]]]:
    """Ganga's configuration sections as far as they mean something here:
    ``{section: {option: (value, what it is)}}``. Values are this session's."""
    import getpass

    return {
        "Configuration": {
            "gangadir": (config.root, "the root of the repository and workspace"),
            "user": (getpass.getuser(), "the user the jobs run as"),
            "repositorytype": (config.repository, "'file' (a ZODB FileStorage) or zeo://host:port"),
            "workspacetype": ("LocalFilesystem", "outputs are files under gangadir/workspace"),
            **{option: (session_option(section, option), what)
               for (section, option), (_, what) in SESSION_OPTIONS.items()
               if section == "Configuration"},
        },
        "Local": {
            "location": (config.workspace, "where each (sub)job's directory is made"),
            "remove_workdir": (False, "outputs are kept in the workspace until j.remove()"),
            "batchsize": (os.cpu_count() or 1, "subjobs run at once by Local() by default "
                          "(Local(concurrency=N) per job)"),
        },
        "Logging": {
            "Ganga": ("INFO", "messages: errors print as one line; there is no level to set"),
            "_logfile": (config.queue_log, "the queue log: one line per status change"),
        },
        "PollThread": {
            "autostart": (True, "the repository's service monitors every job, always"),
            "base_poll_rate": (0, "event driven: a backend's news is applied at once"),
        },
        "GangaLike": {
            "root": (config.root, "the root directory"),
            "mode": (config.mode, "'strict' or 'relaxed'"),
            "read_only": (config.read_only, "whether the repository is opened read-only"),
            "keep_history": (config.keep_history, "whether OK jobs of the BEX queue move to "
                             "queue/history/<host>/ (else their queue files are deleted)"),
            "repository": (config.repository, "'file' or zeo://host:port"),
        },
    }
