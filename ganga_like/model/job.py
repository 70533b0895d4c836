"""The persistent Job: a master, a subjob, or a job without subjobs.

Layout in the database: the job's own record holds its scalar fields, its
history and (for a subjob) only the overrides its splitter gave it; the master's
subjobs live in an ``IOBTree`` (loaded bucket by bucket, never all at once) and
their per-status counts in a separate ``StatusCounts`` record that merges
concurrent updates. A master's status is derived from those counts.

Rules for this persistent class: every attribute has a class default (records
from older versions load); stored values are immutable (tuples, fresh dicts), so
every change is an assignment; the class lives at this import path for good.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, overload

from BTrees.IOBTree import IOBTree
from persistent import Persistent

from ..config import MODES, session_option
from ..errors import (
    GangaLikeError,
    InvalidValue,
    JobNotFound,
    NoSuchAttribute,
    OperationRefused,
    ReadOnlyError,
    UnknownAttribute,
)
from ..status import ACTIVE, MASTER_REMOVAL, Status
from . import binding
from .application import Executable
from .bound import BoundList
from .component import Component, ReadOnly, assign_declared, concrete_components, refuse_stored_field
from .index_fetch import fetch_filed
from .jobinfo import JobInfo
from .jobtime import JobTime
from .session import JobSession
from .slices import JobSlice, select_indexed
from .status_index import StatusIndex
from .stream import SubmitStream, derived_status, stream_of
from .subjob_record import expanded_state, is_compact, record_state
from .table import (
    SUBJOB_COLUMNS,
    PrettyPrinter,
    html_table,
    job_line,
    subjob_window,
    subjobs_table,
    submitted_line,
    use_colour,
)
from .why import WAITING, WhyReport, explain
from .writes import in_write

EDITABLE_AFTER_SUBMIT = ("name", "comment", "do_auto_resubmit")
CONFIG_ATTRIBUTES = ("application", "backend", "splitter", "postprocessors",
                     "inputfiles", "outputfiles", "inputdata", "mode", "env_from", "priority")
# Where a payload's environment comes from: the client that submitted the job (as
# Slurm does by default), or the backend's own process (the service's, a node's).
ENV_SOURCES = ("submitter", "backend")
USER_ATTRIBUTES = frozenset(CONFIG_ATTRIBUTES + EDITABLE_AFTER_SUBMIT)
MAX_AUTO_RESUBMITS = 5
WHY_READS = 2_000  # waiting subjobs a master's why() reads for their reasons (a second or less)


class _Inherited:
    """A job's application or backend; on a subjob, the master's with its overrides.

    Ganga users read ``j.subjobs[3].application.args``; storing a full copy per
    subjob would multiply the records of a 10,000-subjob job, so a subjob stores
    only the splitter's overrides and this descriptor builds the view.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, job: Any, owner: type | None = None) -> Any:
        if job is None:
            return self
        job._p_activate()  # __dict__ does not unghostify a persistent object
        if job.__dict__.get("master") is not None:
            return job._effective(self.name)
        return job.__dict__.get(self.name)

    def __set__(self, job: Any, value: Any) -> None:
        job._p_activate()
        job.__dict__[self.name] = value
        job._p_changed = True


class _ListAttribute:
    """A job's list attribute (inputfiles, outputfiles, postprocessors): stored as a
    tuple, read as a list whose in-place edits (``j.inputfiles += [...]``,
    ``.append``, ``[i] = ...``) are assignments, checked and saved as one."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _stored(self, job: Job) -> tuple[Component, ...]:
        job._p_activate()  # __dict__ does not unghostify a persistent object
        value: tuple[Component, ...] = job.__dict__.get(self.name, ())
        return value

    @overload
    def __get__(self, job: None, owner: type | None = None) -> _ListAttribute: ...

    @overload
    def __get__(self, job: Job, owner: type | None = None) -> BoundList[Component]: ...

    def __get__(self, job: Job | None, owner: type | None = None) -> _ListAttribute | BoundList[Component]:
        if job is None:
            return self
        return BoundList(self._stored(job), lambda new: setattr(job, self.name, new),
                         lambda: self._stored(job))

    def __set__(self, job: Job, value: tuple[Component, ...]) -> None:
        job._p_activate()
        job.__dict__[self.name] = value  # (Job.__setattr__ has checked it)
        job._p_changed = True


class Job(Persistent):
    """A job: an application run by a backend, optionally split into subjobs.

    ``Job(application=Executable(exe='/bin/echo', args=['hi']), backend=Local(),
    splitter=ArgSplitter(args=[['1'], ['2']]))``, or ``Job(template)``.

    Configuration (can be changed until the job is submitted; ``j.copy()`` then gives
    an editable copy):

      application     what runs: ``Executable(exe=..., args=[...], env={...})``
      backend         where it runs: ``Local()`` (the default), ``Interactive()``,
                      ``RayCluster(...)``, ``Hosts(...)``
      splitter        how it is split into subjobs: ``ArgSplitter``, ``GenericSplitter``
      postprocessors  what runs when it ends: ``TextMerger``, ``CustomMerger``,
                      ``FileChecker``, ``CustomChecker``, ``Notifier``
      inputfiles      files copied into its directory before it runs (``LocalFile``,
                      ``File``)
      outputfiles     files kept after it ends (``LocalFile('*.txt', localDir=...)``)
      inputdata       a dataset (None by default): ``GangaDataset(files=[...])``; with
                      ``treat_as_inputfiles=True`` its files are staged like inputfiles,
                      otherwise it is stored for scripts and splitters to read
      mode            'strict' or 'relaxed' (None: the session's mode)
      env_from        'submitter' (the environment you submit from) or 'backend'
      priority        a whole number (default 0): among subjobs waiting for the same
                      backend, those of a higher priority start first

    Can be changed at any time: ``name``, ``comment``, ``do_auto_resubmit`` (resubmit
    failed subjobs automatically, at most 5 times each).

    Read-only: ``id``, ``fqid`` ('3' or '3.14'), ``status``, ``reason`` (why it last
    failed), ``exit_code``, ``backend_detail`` (the backend's minor status), ``backend_note`` (its words),
    ``subjobs`` (``j.subjobs[3]``, ``j.subjobs.select(status='failed')``),
    ``subjob_counts``, ``master``, ``inputdir``, ``outputdir`` (stdout, stderr and
    output files), ``workdir``, ``info`` (``submit_counter``, ``uuid``), ``time``
    (``j.time.new()``, ``.submitted()``, ``.running()``, ``.final()`` as datetimes;
    ``details()``, ``display()``), ``history``, ``submit_counter``, ``is_master``,
    ``active``; on the backend: ``j.backend.id`` (process id), ``.exitcode``,
    ``.actualCE`` (the host it ran on), ``.workdir``.

    Verbs: ``submit()``, ``kill()``, ``resubmit()``, ``remove()``, ``copy()``,
    ``peek(file, lines)``, ``why()`` (why it waits, or what it does), ``wait(timeout)``,
    ``force_status('failed')``,
    ``freeze()``, ``unfreeze()``, ``unmonitor()`` (``resplit()`` is refused: see its
    help). ``print(j)`` shows the whole configuration; ``j == j.copy()`` compares
    configurations, as in Ganga.
    """

    # -- stored fields, with class defaults ---------------------------------------
    id: int | None = None
    name: str = ""
    comment: str = ""
    _status: str = Status.NEW.value
    application = _Inherited()  # a subjob shows its master's, with its overrides
    backend = _Inherited()
    splitter: Component | None = None
    postprocessors = _ListAttribute()
    inputfiles = _ListAttribute()
    outputfiles = _ListAttribute()
    inputdata = _Inherited()  # a dataset or None; a subjob shows its master's
    mode: str | None = None  # None: the session's configured mode
    env_from: str = "submitter"  # see ENV_SOURCES
    priority: int = 0  # higher starts first among waiting subjobs (backends/runtime/table.py)
    # On top-level jobs: the submitting client's environment, as sorted (name, value)
    # pairs, kept for resubmissions and for work re-queued after a crash.
    submit_environment: tuple | None = None
    do_auto_resubmit: bool = False
    master: Job | None = None
    _subjobs: IOBTree | None = None
    _counts: Any = None  # StatusCounts, on masters only
    _subjob_index: StatusIndex | None = None  # on masters: subjobs by status (None: written before)
    _stream: SubmitStream | None = None  # a master's submission still under way (model/stream.py)
    _overrides: Mapping[str, Any] = {}  # a subjob's differences from its master
    history: tuple = ()  # ((time, from, to, note, source, cause), ...): status.history_entries
    submit_counter: int = 0
    auto_resubmit_count: int = 0
    backend_detail: str = ""  # the backend's minor status: Queued, Running, NOPING, ...
    backend_note: str = ""  # the backend's words with it: why it waits, where it is
    handle: tuple | None = None  # the backend's Handle, as a tuple
    exit_code: int | None = None
    reason: str = ""  # why it last failed, was rolled back or lost
    workspace: str = ""  # on top-level jobs: <root>/workspace/<id>
    monitored: bool = True  # relaxed mode may take a job out of the monitoring loop
    created: float | None = None  # when it was stored (the 'new' time of j.time)

    def __init__(self, template: Job | None = None, **attributes: Any) -> None:
        if template is not None:
            if not isinstance(template, Job):
                raise InvalidValue("Job", "template", template, "a Job or JobTemplate")
            for key, value in template._config().items():
                if value is not None and value != ():
                    setattr(self, key, value)
        for key, value in attributes.items():
            if key not in CONFIG_ATTRIBUTES + EDITABLE_AFTER_SUBMIT:
                raise InvalidValue(
                    "Job", key, value,
                    "one of " + ", ".join(CONFIG_ATTRIBUTES + EDITABLE_AFTER_SUBMIT),
                )
            setattr(self, key, value)
        if self.application is None:
            self.application = Executable()
        # No backend given: the session gives it the default (Local) when it stores
        # the job; the model knows no backend (it sits below them).

    # -- the stored state: a subjob's is compact or packed (model/subjob_record.py) ------
    def __getstate__(self) -> object:
        return record_state(self.__dict__) or super().__getstate__()

    def __setstate__(self, state: object) -> None:
        super().__setstate__(expanded_state(state) if is_compact(state) else state)  # type: ignore[arg-type]

    # -- guarded attribute access -------------------------------------------------
    if not TYPE_CHECKING:  # (hidden from mypy, which would then accept any name)
        def __getattr__(self, name: str) -> NoReturn:
            # Reached only when nothing has the name: a typo (j.stauts) names the nearest.
            if name.startswith("_"):
                raise AttributeError(name)
            raise NoSuchAttribute("Job", name, self.__dir__())

    def __setattr__(self, name: str, value: Any) -> None:
        if name[:1] == "_":
            # Internal (persistent's own ``_p_*``, ``_status``, ...): no user attribute
            # starts with "_". First, and without super(), since ZODB sets five per
            # record it stores (500,000 for a split of 100,000).
            Persistent.__setattr__(self, name, value)
            return
        if name in RECORDED_FIELDS:
            # The monitor sets these for every event (a few per subjob per run): the same
            # rule as below (refuse_stored_field), without its lookups through the class.
            if self._p_jar is not None and not in_write():
                refuse_stored_field(self, name)
            Persistent.__setattr__(self, name, value)
            return
        if name in CONFIG_ATTRIBUTES:
            self._check_writable(name)
            value = self._validate(name, value)
        elif name in ("name", "comment"):
            if not isinstance(value, str) or any(ord(c) < 32 or c == "\x7f" for c in value):
                # Names and comments are shown in one-line tables, logs and the queue log.
                raise InvalidValue("Job", name, value, "a string on one line, without control "
                                   "characters (newlines, tabs, escapes)")
        elif name == "do_auto_resubmit" and not isinstance(value, bool):
            raise InvalidValue("Job", name, value, "True or False")
        elif not hasattr(type(self), name):
            # A misspelt attribute (j.splitter = ... as j.spliter) would be stored and ignored.
            raise UnknownAttribute("Job", name, value, self._settable())
        if name in USER_ATTRIBUTES:
            # Checked above, before anything is marked changed. A user's edit of a stored
            # job is committed at once (as in Ganga), in its own retrying transaction, so
            # a conflict can never drop it silently.
            binding.apply(self, lambda: Persistent.__setattr__(self, name, value), value)
        elif not assign_declared(self, name, value):
            # A plain stored field (id, history, reason, handle, ...): ganga_like's own
            # code sets it inside its writes; a user's assignment is refused before
            # persistent marks the job changed (component.assign_declared says why).
            refuse_stored_field(self, name)
            super().__setattr__(name, value)

    def _settable(self) -> list[str]:
        """What the user may assign now: the configuration until it is submitted."""
        if self.master is not None:
            return ["name", "comment"]
        if self._subjobs is not None or self._status not in (Status.NEW.value,
                                                             Status.TEMPLATE.value):
            return list(EDITABLE_AFTER_SUBMIT)
        return list(CONFIG_ATTRIBUTES + EDITABLE_AFTER_SUBMIT)

    def _check_writable(self, name: str) -> None:
        # A master's stored _status stays 'new' (its status is derived); having
        # subjobs at all means it has been submitted.
        if self._subjobs is not None or self._status not in (Status.NEW.value,
                                                             Status.TEMPLATE.value):
            raise ReadOnlyError(self.fqid, name, self.status.value, EDITABLE_AFTER_SUBMIT)
        if self.master is not None and name != "mode":
            raise ReadOnlyError(self.fqid, name, self._status + " subjob", ("name", "comment"))

    def _check_component_writable(self, component: Component, name: str) -> None:
        self._check_writable(f"{component._category[:-1]}.{name}")

    def _validate(self, name: str, value: Any) -> Any:
        if name == "mode":
            if value is not None and value not in MODES:
                raise InvalidValue("Job", "mode", value, "'strict', 'relaxed' or None")
            return value
        if name == "priority":
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidValue("Job", "priority", value,
                                   "a whole number (default 0; higher starts first), e.g. 10 or -5")
            return value
        if name == "env_from":
            if value not in ENV_SOURCES:
                raise InvalidValue("Job", "env_from", value,
                                   " or ".join(repr(v) for v in ENV_SOURCES))
            return value
        if name in ("postprocessors", "inputfiles", "outputfiles"):
            items = value if isinstance(value, (list, tuple)) else [value]
            category = "postprocessors" if name == "postprocessors" else "files"
            return tuple(self._adopt(name, item, category) for item in items)
        if name in ("splitter", "inputdata") and value is None:
            return None
        category = {"application": "applications", "backend": "backends",
                    "splitter": "splitters", "inputdata": "datasets"}[name]
        return self._adopt(name, value, category)

    def _adopt(self, name: str, value: Any, category: str) -> Component:
        if isinstance(value, str) and category != "files":
            value = _plugin_by_name("Job", name, value, category)
        if not isinstance(value, Component) or value._category != category:
            raise InvalidValue("Job", name, value, f"one of the {category} (e.g. "
                               + {"applications": "Executable()", "backends": "Local()",
                                  "splitters": "ArgSplitter(args=[...])",
                                  "postprocessors": "TextMerger(files=['stdout'])",
                                  "files": "LocalFile('*.txt')",
                                  "datasets": "GangaDataset(files=[LocalFile('x.txt')])",
                                  }[category] + (", or None" if name == "inputdata" else "")
                               + ")")
        usable_as = getattr(value, "_usable_as", None)
        if usable_as is not None:
            usable_as(name)  # e.g. File() is an input, never an output
        if value._owner_job is not None and value._owner_job is not self:
            value = value.copy()  # one owner per component, as Ganga copies on assignment
        if value._owner_job is not self:
            # (a stored component this job owns already is left untouched: marking it
            # changed here, before the assignment is accepted, would leave it registered
            # if a later item of the same assignment is refused)
            Persistent.__setattr__(value, "_owner_job", self)
        return value

    def _config(self) -> dict[str, Any]:
        return {
            "application": self.application.copy() if self.application else None,
            "backend": self.backend.copy() if self.backend else None,
            "splitter": self.splitter.copy() if self.splitter else None,
            "postprocessors": tuple(p.copy() for p in self.postprocessors),
            "inputfiles": tuple(f.copy() for f in self.inputfiles),
            "outputfiles": tuple(f.copy() for f in self.outputfiles),
            "inputdata": self.inputdata.copy() if self.inputdata is not None else None,
            "name": self.name,
            "comment": self.comment,
            "do_auto_resubmit": self.do_auto_resubmit,
            "mode": self.mode,
            "env_from": self.env_from,
            "priority": self.priority,
        }

    # -- identity and status (read-only: ganga_like sets them) ---------------------------
    fqid = ReadOnly(lambda self: (f"{self.master.id}.{self.id}" if self.master is not None
                                  else "?" if self.id is None else str(self.id)),
                    "the job's full id: '3', or '3.14' for subjob 14 of job 3")
    is_master = ReadOnly(lambda self: self._counts is not None, "whether the job has subjobs")

    @property
    def status(self) -> Status:
        """new, submitting, submitted, running, completing, completed, failed, killed, ...
        (a master's is derived from its subjobs'); changed only by the verbs."""
        binding.before_read(self)
        return self._current_status()

    @status.setter
    def status(self, value: Any) -> None:
        raise InvalidValue("Job", "status", value,
                           "no assignment: statuses change through the verbs; use "
                           "j.force_status('failed') or j.force_status('completed')")

    def _current_status(self) -> Status:
        # As this transaction's view holds it, with no refresh (a select compares it with
        # the index it read in the same view).
        if self._counts is not None and Status(self._status) not in MASTER_REMOVAL:
            return derived_status(self)  # submitting while its submission streams
        return Status(self._status)  # (a removed master's too: its own, not derived)

    def _subjob_counts(self) -> dict[str, int]:
        binding.before_read(self)
        return dict(self._counts.counts) if self._counts is not None else {}

    subjob_counts = ReadOnly(_subjob_counts, "per-status subjob counts, {} without subjobs")
    subjobs = ReadOnly(lambda self: SubjobsView(self), "the subjobs, read lazily "
                       "(j.subjobs[3], j.subjobs.select(status='failed'))")
    time = ReadOnly(lambda self: JobTime(self), "when the job changed status (datetimes)")
    info = ReadOnly(lambda self: JobInfo(self), "submit_counter, uuid, monitoring links")

    @property
    def effective_application(self) -> Component | None:
        """A subjob's application: the master's with the splitter's overrides."""
        return self._effective("application")

    def _effective(self, root: str) -> Component | None:
        if self.master is None:
            return getattr(self, root)
        base = getattr(self.master, root)
        prefix = root + "."
        overrides = {k[len(prefix):]: v for k, v in self._overrides.items() if k.startswith(prefix)}
        # A subjob's backend is always a view bound to the subjob: sj.backend.id,
        # .exitcode and .actualCE are that subjob's run, not the master's.
        if base is None or (not overrides and root != "backend"):
            return base
        view = base.with_values(overrides)
        Persistent.__setattr__(view, "_owner_job", self)  # so edits are refused, not lost
        return view

    def _workdir(self) -> str:
        if self.master is not None:
            return os.path.join(self.master.workspace, str(self.id))
        return self.workspace

    def _dir(self, name: str) -> str:
        # With a trailing separator, as in Ganga: j.outputdir + 'stdout' works too.
        workdir = self._workdir()
        return os.path.join(workdir, name, "") if workdir else ""

    workdir = ReadOnly(_workdir, "this (sub)job's directory in the workspace")
    inputdir = ReadOnly(lambda self: self._dir("input"),
                        "where this (sub)job's input files are staged")
    outputdir = ReadOnly(lambda self: self._dir("output"),
                         "where its stdout, stderr and output files are (its working directory)")
    active = ReadOnly(lambda self: self.status in ACTIVE, "whether it is submitting, "
                      "submitted, running, completing or unknown")

    def copy(self) -> Job:
        """An editable copy in status new (for a subjob: a standalone job), registered
        in the same repository when this job is stored."""
        config = self._config()
        if self.master is not None:
            config["application"] = self.application.copy()
            config["backend"] = self.backend.copy() if self.backend is not None else None
            config["splitter"] = None
        fresh = Job.__new__(type(self) if type(self) is Job else Job)
        Job.__init__(fresh, **{k: v for k, v in config.items() if v is not None})
        if self._p_jar is not None:
            # As in Ganga, the copy of a stored job is stored too (a new id, in `jobs`).
            binding.session_for(self).register(fresh)
        return fresh

    # -- verbs: carried out by the session that owns this job ------------------------
    def submit(self, keep_going: bool = False) -> Submitted:
        """Submit a new job: split it, hand its subjobs to the backend. With a
        foreground backend (``Interactive()``) it returns when the job has finished,
        after printing its standard output. Returns 1, as Ganga does (``if
        j.submit():`` holds), shown as one line: ``job 3 submitted: 50 subjobs``."""
        session = binding.session_for(self)
        session.submit(self, keep_going=keep_going)
        foreground = bool(getattr(self.backend, "_foreground", False))
        if foreground:
            session.wait([self])
            _show_output(session, self)
        return Submitted(self, foreground)

    def kill(self) -> None:
        """Kill the job (or this subjob); in strict mode, only once the backend confirms."""
        binding.session_for(self).kill(self)

    def resubmit(self, force: bool = False, include_killed: bool = False) -> None:
        """Resubmit, as Ganga does: a master's failed subjobs (killed ones too with
        include_killed; every finished one with Ganga's option
        ``config['Configuration']['resubmitOnlyFailedSubjobs'] = False``), or this job.
        A master with none of them: nothing to do, and a line on stderr saying so."""
        why = self.nothing_to_resubmit(include_killed)
        if why:
            print(f"job {self.fqid}: nothing to resubmit: {why}", file=sys.stderr)
            return
        binding.session_for(self).resubmit(self, force=force, include_killed=include_killed)

    def nothing_to_resubmit(self, include_killed: bool = False) -> str:
        """Why resubmit() of this master would take no subjob ('' if it would take some)."""
        counts = self._counts.counts if self.is_master and self._counts is not None else None
        if counts is None or not session_option("Configuration", "resubmitOnlyFailedSubjobs"):
            return ""
        wanted = ("failed", "killed") if include_killed else ("failed",)
        if any(counts.get(status, 0) for status in wanted):
            return ""
        return ("none of its subjobs failed" + ("" if include_killed else
                " (include_killed=True takes killed ones)")
                + "; config['Configuration']['resubmitOnlyFailedSubjobs'] = False takes "
                "every finished one, j.subjobs[i].resubmit() one of them")

    def remove(self, force: bool = False) -> None:
        """Kill, then remove from the repository. ``force=True`` removes even if the kill
        cannot be confirmed, recording what may be left running in the leak ledger."""
        binding.session_for(self).remove(self, force=force)

    def force_status(self, status: str, force: bool = False) -> None:
        """Force 'failed' or 'completed' (a running job is killed first)."""
        binding.session_for(self).force_status(self, status, force=force)

    def unmonitor(self) -> None:
        """Relaxed mode only: stop following this job (its handles go to the leak ledger)."""
        binding.session_for(self).unmonitor(self)

    def freeze(self) -> None:
        """Keep a final job as it is: its subjobs are left out of the master's status."""
        binding.session_for(self).freeze(self)

    def unfreeze(self) -> None:
        """Undo freeze()."""
        binding.session_for(self).unfreeze(self)

    def resplit(self, new_splitter: Any = None) -> None:
        """Not available: Ganga's ``sj.resplit(splitter)`` freezes a final subjob and adds
        new subjobs to its submitted master; here a submitted job's subjobs are fixed.
        Run the subjob's work as a new job instead: ``j2 = sj.copy();
        j2.splitter = splitter; j2.submit()`` (and ``sj.freeze()``, if wanted)."""
        where = (f"jobs({self.master.id}).subjobs[{self.id}]" if self.master is not None
                 else f"jobs({self.id})" if self.id is not None else "j")
        raise OperationRefused(
            self.fqid, "resplit", self.status.value,
            "a submitted job's subjobs are fixed here (Ganga adds new subjobs to the master); "
            f"run it as a new job instead: j2 = {where}.copy(); j2.splitter = <splitter>; "
            f"j2.submit() (and {where}.freeze() to leave it out of its master's status)")

    def peek(self, file: str = "stdout", lines: int = 20) -> str:
        """The last lines of one of the job's output files."""
        return binding.session_for(self).peek(self, file=file, lines=lines)

    def why(self) -> WhyReport:
        """Why it is not running, or what it is doing: one line, and for a master one
        line per reason its subjobs wait, with counts (``ganga-like why ID``)."""
        binding.before_read(self)
        tree, index = self._subjobs, self._subjob_index
        subjobs: Iterable[Job] | None = None if tree is None else tree.values()
        counts = None
        if tree is not None and self._counts is not None and index is not None and index.readable:
            # Its counts give the totals; only the first waiting subjobs are read for their
            # reasons (a master of 100,000 must not read every record to answer).
            ids = index.ids([status.value for status in WAITING], limit=WHY_READS)
            subjobs = [sub for sub in fetch_filed(index, tree, ids, self)
                       if sub is not None and sub.status in WAITING]
            counts = self._counts.counts
        top = self.master or self
        # A master tells where its submission is (sending, or stopped with subjobs left
        # new); a new subjob only that it waits to be sent.
        stream = top._stream if top._counts is not None else None
        told = stream is not None and stream.left > 0 and (self is top or stream_of(top) is not None)
        return explain(self, subjobs, to_send=stream.describe() if told and stream else "",
                       counts=counts)

    def wait(self, timeout: float | None = None) -> Status:
        """Block until the job is final (or timeout seconds pass); returns the status."""
        return binding.session_for(self).wait([self], timeout=timeout)[0]

    # -- equality: the configuration, as in Ganga -------------------------------------
    def __eq__(self, other: object) -> bool:
        """Equal when the configuration, status and submit counter are (ids, times and
        directories are not compared): ``j == j.copy()`` for a new job, as in Ganga."""
        if self is other:
            return True
        if not isinstance(other, Job):
            return NotImplemented
        if self.master is not None and self.master is other.master:
            return False  # two subjobs of one master are distinct entries, never equal
        mine, theirs = self._compared(), other._compared()
        return mine == theirs

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = Persistent.__hash__  # by identity: jobs stay usable in sets and dicts

    def _compared(self) -> tuple:
        top = self.master or self
        return (self.status.value, self.name, self.comment, self.application, self.backend,
                self.splitter, tuple(self.postprocessors), tuple(top.inputfiles),
                tuple(top.outputfiles), self.inputdata, self.do_auto_resubmit, self.mode, self.env_from,
                top.priority, self.submit_counter)

    # -- shown as Ganga shows a job ----------------------------------------------------------
    def __repr__(self) -> str:
        """One line (in lists, logs, ``print([j1, j2])``): ``<Job 3 'sim': running, ...>``."""
        return job_line(self)

    def __str__(self) -> str:
        """The whole configuration tree, as Ganga's ``print(j)``."""
        from .tree import job_tree

        return job_tree(self)

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        # ``j`` alone at the prompt: the whole tree, as Ganga shows it; inside a
        # container IPython prints (a dict, a mixed list): the one line.
        printer.text(repr(self) if cycle or len(printer.stack) > 1 else str(self))

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(str(self)) + "</pre>"

    def __dir__(self) -> list[str]:
        # Tab completion shows what a user works with, not ZODB's machinery.
        names = set(CONFIG_ATTRIBUTES + EDITABLE_AFTER_SUBMIT) | {
            "id", "fqid", "status", "subjobs", "subjob_counts", "time", "history", "master",
            "backend_detail", "backend_note", "exit_code", "reason", "workdir", "workspace", "submit_counter",
            "outputdir", "inputdir", "info", "created",
            "submit", "kill", "resubmit", "remove", "force_status", "freeze", "unfreeze",
            "peek", "why", "wait", "copy", "resplit", "is_master", "active", "unmonitor", "monitored"}
        return sorted(names)


# The plain stored fields only ganga_like sets (history, handle, reason, ...): class
# defaults that are plain values, not descriptors, methods or user settings.
RECORDED_FIELDS = frozenset(
    name for name, value in vars(Job).items()
    if not name.startswith("_") and name not in USER_ATTRIBUTES and not callable(value)
    and not hasattr(type(value), "__set__") and not hasattr(type(value), "__get__"))


def index_found_wrong(master: Job) -> None:
    """A select found a subjob filed under another status than its own: the index is
    wrong (it never should be). Selects scan from now on, and the engine's next start
    rebuilds it and the jobs index with it (``repository.index_build``)."""
    import logging

    from .status_index import jobs_index

    logging.getLogger(__name__).warning(
        "job %s: its index of subjobs by status disagrees with a subjob's status; "
        "answering from a scan; rebuilt at the service's next start", master.fqid)
    index, top = master._subjob_index, jobs_index(master._p_jar)
    try:
        for found in (index, top):
            if found is not None:
                binding.apply(found, functools.partial(setattr, found, "complete", False))
    except GangaLikeError:
        pass  # a read-only session: the scan still answers; the next writer's start rebuilds


def _show_output(session: JobSession[Job], job: Job) -> None:
    """Print the standard output of each (sub)job that ran (a foreground backend's)."""
    import sys

    leaves = list(job._subjobs.values()) if job._subjobs is not None else [job]
    for leaf in leaves:
        try:
            text = session.peek(leaf, file="stdout", lines=10**6)
        except InvalidValue:
            continue  # it left no stdout (killed before it started, ...)
        if len(leaves) > 1 and text:
            sys.stdout.write(f"--- {leaf.fqid} ({leaf.status.value}) ---\n")
        sys.stdout.write(text)
    sys.stdout.flush()


def _plugin_by_name(owner: str, name: str, value: str, category: str) -> Component:
    """Ganga's ``j.splitter = 'ArgSplitter'``, ``j.backend = 'Local'``: a new default
    object of the plugin of that name."""
    types = concrete_components(category)  # those imported: the GPI imports every one it offers
    if value not in types:
        raise InvalidValue(owner, name, value, f"one of the {category}: "
                           + ", ".join(sorted(types)) + " (a name, or an object such as "
                           f"{sorted(types)[0]}())")
    return types[value]()


class JobTemplate(Job):
    """A reusable job description kept in the ``templates`` registry."""

    _status = Status.TEMPLATE.value

    def _refuse(self, operation: str) -> OperationRefused:
        return OperationRefused(f"template {self.id}", operation, Status.TEMPLATE.value,
                                "a template is a description, not a job; make a job from "
                                f"it and {operation} that: Job(templates({self.id})).submit()")

    def submit(self, keep_going: bool = False) -> Submitted:
        raise self._refuse("submit")

    def kill(self) -> None:
        raise self._refuse("kill")

    def resubmit(self, force: bool = False, include_killed: bool = False) -> None:
        raise self._refuse("resubmit")

    def force_status(self, status: str, force: bool = False) -> None:
        raise self._refuse("force_status")

    def resplit(self, new_splitter: Any = None) -> None:
        raise self._refuse("resplit")


class SubjobsView(Sequence):
    """The subjobs of a job, read lazily from their BTree."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def _tree(self) -> IOBTree:
        return self._job._subjobs if self._job._subjobs is not None else IOBTree()

    def __len__(self) -> int:
        counts = self._job._counts
        return counts.total() if counts is not None else 0

    def __getitem__(self, index: Any) -> Any:
        tree = self._tree()
        if isinstance(index, slice):  # j.subjobs[20:]: a slice, shown as a subjob table
            return JobSlice([tree[i] for i in range(*index.indices(len(self))) if i in tree],
                            "subjobs")
        if isinstance(index, int):
            n = len(self)
            key = index + n if index < 0 else index
            if key in tree:
                return tree[key]
        raise JobNotFound(f"{self._job.fqid}.{index}", f"subjobs 0..{len(self) - 1}")

    def __call__(self, index: int) -> Job:
        return self[index]

    def __iter__(self) -> Iterator[Job]:
        return iter(self._tree().values())

    def select(self, minid: int | None = None, maxid: int | None = None,
               **criteria: Any) -> JobSlice:
        """A slice of the subjobs (status=, name=, id=, ...), with the verbs. With a
        status, it reads the master's index of its subjobs by status: the matches only."""
        binding.before_read(self._job)
        index = self._job._subjob_index
        chosen: list[Job] = select_indexed(index, self._tree(), self._job, minid, maxid,
                                           lambda: index_found_wrong(self._job),
                                           counted=self._counted, **criteria)
        return JobSlice(chosen, "subjobs")

    def _counted(self, statuses: set[str]) -> int:
        """How many subjobs the master's counts hold in ``statuses``."""
        counts = self._job._counts.counts if self._job._counts is not None else {}
        return sum(counts.get(status, 0) for status in statuses)

    # Ganga's j.subjobs.kill(), j.subjobs.resubmit(): the slice's verbs, on every subjob.
    def kill(self, keep_going: bool = False) -> None:
        self.select().kill(keep_going)

    def resubmit(self, keep_going: bool = False, force: bool = False) -> None:
        self.select().resubmit(keep_going, force)

    # -- shown as one table: the first rows, every count, and how to see the rest ----------
    def __repr__(self) -> str:
        return subjobs_table(self._job)

    def _repr_pretty_(self, printer: PrettyPrinter, cycle: bool) -> None:
        printer.text(subjobs_table(self._job, colour=use_colour()))

    def _repr_html_(self) -> str:
        rows, footer = subjob_window(self._job)
        return html_table(rows, footer, SUBJOB_COLUMNS)


class Submitted(int):
    """What ``j.submit()`` returns: 1, as in Ganga (scripts test it: ``if j.submit():``),
    shown as one line saying what was submitted; ``.job`` is the job."""

    job: Job
    line: str

    def __new__(cls, job: Job, finished: bool = False) -> Submitted:
        made = super().__new__(cls, 1)
        made.job = job
        made.line = submitted_line(job, finished)
        return made

    def __repr__(self) -> str:
        return self.line

    def __reduce__(self) -> tuple[type[int], tuple[int]]:
        return int, (1,)  # a copy or a pickle is Ganga's plain 1


