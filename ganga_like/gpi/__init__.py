"""The GPI: the names a Ganga user's script expects, as a plain module.

``from ganga_like.gpi import *`` gives ``Job``, ``jobs``, ``templates``,
``Executable``, ``ArgSplitter``, ``GenericSplitter``, ``Local``, ``RayCluster``, ``Hosts``, ``Slurm``,
``LocalFile``, ``File``, ``GangaDataset``,
``runMonitoring``, ... Importing has no side effects: the default session
(repository, monitor, Ray) starts on first use.
"""

from __future__ import annotations

from typing import Any

from .. import errors as _errors
from ..backends.hosts.config import Hosts
from ..backends.local.config import Local
from ..backends.local.interactive import Interactive
from ..backends.raycluster.config import RayCluster
from ..backends.slurm.config import Slurm
from ..errors import GANGA_NAMES, GangaLikeError, NotAvailable
from ..model import job as _job
from ..model.application import Executable
from ..model.datasets import GangaDataset
from ..model.files import UNAVAILABLE_FILES, File, LocalFile
from ..model.postprocessors import CustomChecker, CustomMerger, FileChecker, Notifier, TextMerger
from ..model.slices import JobSlice
from ..model.splitters import ArgSplitter, GenericSplitter
from ..status import Status
from .gangaconfig import config
from .registry import JobsView, TemplatesView


class _Registering:
    """Construct a persistent class and store the new object in the default session,
    as Ganga does when ``Job()`` is called; ``isinstance`` and ``help`` still work
    (``help(Job)`` is answered by the class itself, see ``ganga_like.gpi.ipython``)."""

    def __init__(self, cls: type) -> None:
        self._cls = cls
        self.__doc__ = cls.__doc__
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ..client.default import default_session

        obj = self._cls(*args, **kwargs)
        return default_session().register(obj)

    def __instancecheck__(self, obj: object) -> bool:
        return isinstance(obj, self._cls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cls, name)

    def __dir__(self) -> list[str]:
        # Tab completion on ``Job.`` offers what ``j.`` offers (the class's own list,
        # which reads nothing of the object), not this wrapper's machinery.
        return list(self._cls.__dir__(self._cls))  # type: ignore[call-arg]

    def __repr__(self) -> str:
        return f"<class {self._cls.__module__}.{self._cls.__name__}>"


Job = _Registering(_job.Job)
JobTemplate = _Registering(_job.JobTemplate)


def help(obj: Any = None) -> None:  # noqa: A001 (the GPI's help, as Ganga has its own)
    """``help(Job)`` shows what a user works with: the fields, what can be set when,
    and the verbs (``help(Executable)``, ``help(j)`` likewise); anything else as
    Python's ``help``."""
    import builtins

    from .helptext import show_help

    if isinstance(obj, _Registering):
        obj = obj._cls
    if obj is not None and show_help(obj):
        return
    builtins.help(obj) if obj is not None else builtins.help()



jobs = JobsView()
templates = TemplatesView()


def runMonitoring(jobs: Any = None, steps: int = 1, timeout: float | None = None,  # noqa: N802 (Ganga's name)
                  _loadCredentials: bool = False) -> bool:  # noqa: N803
    """Ganga's ``runMonitoring(jobs=None, steps=1, timeout=300)``. The monitor always
    runs here (in the repository's service); this waits until the given jobs (a job, a
    list or a slice; default: every active job) are final, and returns True, or False
    after ``timeout`` seconds (default: no limit) with some still active. ``steps`` is
    accepted for Ganga's scripts and means nothing here."""
    from ..client.default import default_session
    from ..errors import WaitTimeout

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        from ..errors import InvalidValue

        raise InvalidValue("runMonitoring", "steps", steps, "a positive whole number")
    session = default_session()
    try:
        if jobs is None:
            JobsView().wait(timeout=timeout)
        else:
            chosen = list(jobs) if isinstance(jobs, (list, tuple, JobSlice)) else [jobs]
            session.wait(chosen, timeout=timeout)
    except WaitTimeout:
        return False
    return True


def enableMonitoring() -> None:  # noqa: N802 (Ganga's name)
    """Ganga's switch for its monitoring loop. Here the repository's service monitors
    every job all the time, whoever submitted it; there is nothing to switch on."""


def disableMonitoring() -> None:  # noqa: N802 (Ganga's name)
    """Ganga's switch for its monitoring loop. Here monitoring belongs to the service and
    keeps going for every client (a script's jobs must not stop being watched); use
    ``j.unmonitor()`` (relaxed mode) to take one job out of it."""


def leaks(reap: bool = False) -> list[dict[str, Any]]:
    """Audit work that still holds resources although its job is finished or removed."""
    from ..client.default import default_session

    return default_session().leaks(reap=reap)


def hosts(name: str = "") -> list[dict[str, object]]:
    """The Hosts backend's hosts, each once (or the one named): name, labels, status,
    protection, dirty flag, the subjob it holds, its last check and its result."""
    from ..client.default import default_session

    return default_session().hosts(name=name)


def export(jobs_or_job: Any, path: Any, mode: str = "w") -> int:
    """Write jobs as readable, editable text (JSON) to ``path`` (a file name or
    ``LocalFile('jobs.txt')``); ``mode='a'`` appends; returns how many were written."""
    from ..client import export as _export

    return _export.export(jobs_or_job, path, mode)


def load(path: Any, returnList: bool = True) -> list[Any] | None:  # noqa: N803 (Ganga's name)
    """Read jobs written by ``export`` (or by hand) back as NEW jobs, registered; returns
    them (``returnList=False``: None, as Ganga)."""
    from ..client import export as _export
    from ..client.default import default_session

    loaded = _export.load(path, session=default_session())
    return loaded if returnList else None


def submit_bex(path: str, hosts: list[str] | str) -> Any:
    """Queue a BEX job file (``ID:``, ``Subject:``, ``Prep:``, a blank line, the body) on
    hosts, one subjob each, and return the job: ``submit_bex('build.job', ['n1', 'n2'])``
    (or ``'n1,n2'``). A malformed file, an ID the queue has or an unknown host is
    refused in one line, and nothing is stored (docs/backends.md, "BEX queues")."""
    from ..bex.jobfile import read_job_file
    from ..client.default import default_session

    text = read_job_file(str(path))  # malformed: one line here, nothing sent
    names = hosts.split(",") if isinstance(hosts, str) else list(hosts)
    chosen = default_session()
    return chosen.jobs.get(chosen.submit_bex(text, names, source=str(path)))


def session() -> Any:
    """The default session (repository, backends, monitor)."""
    from ..client.default import default_session

    return default_session()


__all__ = [
    "Job", "JobTemplate", "jobs", "templates", "Executable", "ArgSplitter", "GenericSplitter",
    "Local", "Interactive", "RayCluster", "Hosts", "Slurm", "LocalFile", "File", "GangaDataset", "config",
    "TextMerger", "CustomMerger", "FileChecker", "CustomChecker",
    "Notifier", "help", "Status", "runMonitoring", "enableMonitoring", "disableMonitoring", "leaks", "hosts",
    "export", "load", "session", "submit_bex", "GangaLikeError",
    # Ganga's exception names, as aliases in the one hierarchy
    *GANGA_NAMES, "NotAvailable",
    # Ganga's remote file types: each raises NotAvailable (one line) when used
    *UNAVAILABLE_FILES,
]
globals().update(UNAVAILABLE_FILES)
globals().update({name: getattr(_errors, name) for name in GANGA_NAMES})
