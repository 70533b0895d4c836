"""A Session: the repository, the backend actors and the monitor, for one process.

The GPI uses one default session, started on first use; tests and tools may open
their own (``Session(Config(...))``). Sessions write the database; actors never
do. Every operation here follows Ganga's semantics with its known bugs fixed
(see docs/concepts.md): a partial submit never leaves a master in
``submitting``; a kill is reported only once confirmed (strict mode); removal
kills first; forced removal records what it may leave running.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .backends import base
from .config import Config
from .errors import (
    BackendError,
    InvalidValue,
    KillNotConfirmed,
    OperationRefused,
)
from .model import binding
from .model.counts import StatusCounts
from .model.job import MAX_AUTO_RESUBMITS, Job
from .model.lifecycle import Change, set_status
from .monitor import Monitor, Submission
from .queue_log import QueueLog
from .repository import open_repository
from .repository.ledger import Ledger
from .status import ACTIVE, FINAL, FROZEN, Status

# What a kill can stop: a completing job's process is already gone (it holds
# nothing); it finishes on its own, and `completing -> killed` is not an edge.
KILLABLE = frozenset({Status.SUBMITTING, Status.SUBMITTED, Status.RUNNING})
SUBMIT_CHUNK = 2000  # specs per actor call: big enough to amortise, small enough to stream
KILL_GRACE = 3.0
READ_REFRESH_INTERVAL = 0.05
AUTO_RESUBMIT_STOP_FRACTION = 0.25
HOST = socket.gethostname()


class Session:
    def __init__(self, config: Config | None = None, read_only: bool | None = None,
                 fallback_read_only: bool = False) -> None:
        self.config = config or Config.from_env()
        self.repository = open_repository(self.config, read_only=read_only,
                                          fallback_read_only=fallback_read_only)
        self.main = self.repository.connect()
        binding.bind(self.repository.db, self)
        self.queue_log = QueueLog(self.config.queue_log)
        self._backends = None
        self.monitor = Monitor(self)
        self._changed = threading.Condition()
        self._recovered = False
        self._closed = False
        self._last_refresh = 0.0

    # -- plumbing -------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return self.repository.read_only

    @property
    def jobs(self) -> Any:
        return self.main.jobs

    @property
    def templates(self) -> Any:
        return self.main.templates

    @property
    def repo_uuid(self) -> str:
        return self.main.root.repo_uuid

    @property
    def backends(self) -> Any:
        if self._backends is None:
            from .backend_pool import BackendPool

            self._backends = BackendPool(self.repo_uuid)
        return self._backends

    def on_commit(self, changes: list[Change]) -> None:
        self.queue_log.append(changes)

    def notify_changed(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def write(self, work: Any, note: str = "") -> Any:
        self._check_writable()
        return self.main.write(work, on_commit=self.on_commit, note=note)

    def refresh(self) -> None:
        self.main.refresh()
        self._last_refresh = time.monotonic()

    def refresh_for_read(self, jar: Any) -> None:
        """Let reads through the user's connection see the monitor's commits.

        A Ganga script polls ``while j.status != 'completed': sleep(1)``; the job
        object belongs to this session's connection, which sees other commits only
        at a transaction boundary. Reads start a new one, at most every
        ``READ_REFRESH_INTERVAL`` seconds, so a loop over many jobs stays cheap."""
        if jar is self.main.conn and time.monotonic() - self._last_refresh > READ_REFRESH_INTERVAL:
            self.refresh()

    def _check_writable(self) -> None:
        if self.read_only:
            raise OperationRefused("-", "change the repository", "read-only",
                                   "this session opened it read-only (another session holds it)")

    def _ensure_monitor(self) -> None:
        if not self.monitor.running:
            self.monitor.start()
        if not self._recovered:
            self._recovered = True
            self.recover()

    def mode_of(self, job: Job) -> str:
        top = job.master or job
        return top.mode or self.config.mode

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.monitor.stop()
        if self._backends is not None:
            self._backends.shutdown()
        try:
            self.main.close()
        finally:
            binding.unbind(self.repository.db)
            self.repository.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- creating -------------------------------------------------------------------
    def register(self, job: Job) -> Job:
        """Store a new job (or template) under a fresh id."""
        if job.id is not None and job._p_jar is not None:
            return job
        registry = self.templates if job.status is Status.TEMPLATE else self.jobs

        def work() -> None:
            registry.add(job)

        self.write(work, note=f"register {type(job).__name__}")
        return job

    # -- submit -----------------------------------------------------------------------
    def submit(self, job: Job, keep_going: bool = False) -> Job:
        self._check_writable()
        if job.master is not None:
            raise OperationRefused(job.fqid, "submit", job.status.value,
                                   "subjobs are submitted with their master; use resubmit()")
        if job.status is Status.TEMPLATE:
            raise OperationRefused(job.fqid, "submit", "template", "submit Job(template) instead")
        self.register(job)
        self._ensure_monitor()  # recovers earlier sessions' work before adding ours
        prepared: list[Job] = []

        def prepare() -> None:
            prepared.clear()
            if job.status is not Status.NEW:
                raise OperationRefused(job.fqid, "submit", job.status.value,
                                       "only a new job can be submitted; use resubmit() for "
                                       "finished ones or j.copy() for a fresh copy")
            if job.splitter is not None and job._subjobs is None:
                _split(job)
            targets = ([sj for sj in job._subjobs.values() if sj._status == Status.NEW.value]
                       if job._subjobs is not None else [job])
            for target in targets:
                target.submit_counter += 1
                target.exit_code = None
                target.reason = ""
                set_status(target, Status.SUBMITTING, source="user", host=HOST)
            self._mark_active(job)
            prepared.extend(targets)

        self.write(prepare, note=f"submit {job.fqid}")
        self._send(job, prepared, keep_going=keep_going)
        return job

    def _send(self, top: Job, targets: Sequence[Job], keep_going: bool) -> None:
        """Hand subjobs to the backend; the monitor records the answers."""
        self._ensure_monitor()
        actor = self.backends.actor(top.backend)
        specs = self._specs(top, targets)
        pairs: list[tuple[str, int, base.Handle]] = []
        failure: str = ""
        import ray

        staging_failed = self._stage_inputs(top, targets, specs)
        for start in range(0, len(specs), SUBMIT_CHUNK):
            chunk = [s for s in specs[start:start + SUBMIT_CHUNK] if s.fqid not in staging_failed]
            pairs.extend((s.fqid, s.attempt, staging_failed[s.fqid])
                         for s in specs[start:start + SUBMIT_CHUNK] if s.fqid in staging_failed)
            if not chunk:
                continue
            if failure and not keep_going:
                handles = [_failed_handle(s, f"not sent: an earlier batch failed ({failure})")
                           for s in chunk]
            else:
                try:
                    handles = ray.get(actor.submit.remote(chunk))
                except Exception as exc:
                    failure = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                    handles = [_failed_handle(s, failure) for s in chunk]
            pairs.extend((s.fqid, s.attempt, h) for s, h in zip(chunk, handles))
        submission = Submission(pairs)
        self.monitor.submit_results(submission)
        submission.done.wait()
        self.refresh()
        if submission.error is not None:
            raise submission.error
        errors = [h for _, _, h in pairs if h.error]
        if errors and not keep_going:
            raise BackendError(
                f"{len(errors)} of {len(pairs)} could not be submitted and are 'new' again "
                f"(first reason: {errors[0].error}); fix and submit() again, or use keep_going=True",
                job_id=top.fqid, status=top.status.value,
            )

    def _stage_inputs(self, top: Job, targets: Sequence[Job],
                      specs: Sequence[base.SubjobSpec]) -> dict[str, base.Handle]:
        """Copy input files into each workdir; a failure sends that subjob back to new."""
        if not top.inputfiles:
            return {}
        from .errors import GangaLikeError
        from .model.files import stage_inputs

        failed: dict[str, base.Handle] = {}
        for target, spec in zip(targets, specs):
            try:
                stage_inputs(target, spec.workdir)
            except (GangaLikeError, OSError) as exc:
                failed[spec.fqid] = _failed_handle(spec, f"input files: {exc}")
        return failed

    def _specs(self, top: Job, targets: Sequence[Job]) -> list[base.SubjobSpec]:
        """Specs for many subjobs of one master: the master's values read once."""
        if top._subjobs is None:
            return [self._spec(t) for t in targets]
        app = top.application
        values = app.field_values()
        workspace, uuid = top.workspace, self.repo_uuid
        options = top.backend.spec_options()
        specs = []
        for sub in targets:
            mine = dict(values)
            for path, value in sub._overrides.items():
                root, _, leaf = path.partition(".")
                if root == "application":
                    mine[leaf] = value
            fqid = f"{top.id}.{sub.id}"
            specs.append(base.SubjobSpec(
                job_id=top.id, subjob_id=sub.id, fqid=fqid, exe=mine["exe"],
                args=tuple(mine["args"]), env=dict(mine["env"]),
                workdir=os.path.join(workspace, str(sub.id)), marker=f"{uuid}:{fqid}",
                options=dict(options), attempt=sub.submit_counter))
        return specs

    def _spec(self, job: Job) -> base.SubjobSpec:
        app = job.application
        top = job.master or job
        return base.SubjobSpec(
            job_id=top.id,
            subjob_id=job.id if job.master is not None else None,
            fqid=job.fqid,
            exe=app.exe,
            args=tuple(app.args),
            env=dict(app.env),
            workdir=job.workdir,
            marker=f"{self.repo_uuid}:{job.fqid}",
            options=top.backend.spec_options(),
            attempt=job.submit_counter,
        )

    def _mark_active(self, top: Job) -> None:
        root = self.main.root if top._p_jar is self.main.conn else top._p_jar.root()["ganga_like"]
        active = _active_set(root)
        active.insert(top.id)

    # -- kill -------------------------------------------------------------------------
    def kill(self, job: Job) -> None:
        self._check_writable()
        self.refresh()
        targets = _leaves(job, lambda s: s in KILLABLE)
        if not targets:
            raise OperationRefused(job.fqid, "kill", job.status.value,
                                   "nothing to kill: it is not submitted or running")
        unconfirmed = self._kill_leaves(job, targets)
        if unconfirmed and self.mode_of(job) == "strict":
            raise KillNotConfirmed(
                f"the backend could not confirm that {len(unconfirmed)} subjob(s) stopped "
                f"({', '.join(unconfirmed[:5])}); they stay in their status. Retry kill(), "
                f"or remove(force=True) to give up on them (recorded in the leak ledger)",
                job_id=job.fqid, status=job.status.value,
            )

    def _kill_leaves(self, top: Job, targets: list[Job], ledger_reason: str = "") -> list[str]:
        """Kill and record ``killed`` where confirmed; return the unconfirmed fqids."""
        self._ensure_monitor()
        import ray

        actor = self.backends.actor((top.master or top).backend)
        with_handle = [t for t in targets if t.handle]
        results = {}
        if with_handle:
            handles = [base.Handle.from_tuple(t.handle) for t in with_handle]
            for r in ray.get(actor.kill.remote(handles, KILL_GRACE)):
                results[r.fqid] = r
        relaxed = self.mode_of(top) == "relaxed"
        unconfirmed: list[str] = []

        def work() -> None:
            unconfirmed.clear()
            for target in targets:
                if target.status not in KILLABLE:
                    continue  # it finished meanwhile
                result = results.get(target.fqid)
                if result is not None and result.confirmed:
                    set_status(target, Status.KILLED, result.note or "killed, confirmed",
                               source="user", host=HOST)
                elif relaxed or ledger_reason:
                    note = "kill not confirmed" + (f": {result.note}" if result else ": no handle")
                    set_status(target, Status.KILLED, note + " (relaxed mode)" if relaxed else note,
                               source="user", host=HOST)
                    Ledger(self.main).record(target, ledger_reason or "killed in relaxed mode")
                else:
                    unconfirmed.append(target.fqid)

        self.write(work, note=f"kill {top.fqid}")
        self.notify_changed()
        return unconfirmed

    # -- resubmit -----------------------------------------------------------------------
    def resubmit(self, job: Job, force: bool = False, include_killed: bool = False) -> None:
        self._check_writable()
        self.refresh()
        wanted = {Status.FAILED} | ({Status.KILLED} if include_killed else set())
        if job.is_master:
            targets = _leaves(job, lambda s: s in wanted)
            if not targets:
                raise OperationRefused(
                    job.fqid, "resubmit", job.status.value,
                    "no failed subjobs" + (" or killed" if include_killed else
                                           " (include_killed=True also takes killed ones)")
                    + "; resubmit a single subjob with j.subjobs[i].resubmit()")
        else:
            status = job.status
            if status in (Status.SUBMITTED, Status.RUNNING, Status.COMPLETING) and not force:
                raise OperationRefused(job.fqid, "resubmit", status.value,
                                       "it is still active; resubmit(force=True) kills it first")
            if status not in (Status.SUBMITTED, Status.RUNNING, Status.COMPLETING,
                              Status.KILLED, Status.FAILED, Status.COMPLETED):
                raise OperationRefused(job.fqid, "resubmit", status.value,
                                       "only completed, failed or killed jobs can be resubmitted"
                                       + ("; unfreeze() it first" if status in FROZEN else ""))
            if status in KILLABLE:
                unconfirmed = self._kill_leaves(job, [job])
                if unconfirmed:
                    raise KillNotConfirmed("the running job could not be stopped; not resubmitted",
                                           job_id=job.fqid, status=job.status.value)
                self.refresh()
            targets = [job]
        self._resubmit_leaves(job.master or job, targets, source="user")

    def _resubmit_leaves(self, top: Job, targets: list[Job], source: str,
                         auto: bool = False, note: str = "") -> None:
        def work() -> None:
            for target in targets:
                target.submit_counter += 1
                if auto:
                    target.auto_resubmit_count += 1
                target.exit_code = None
                set_status(target, Status.SUBMITTING,
                           note or ("auto-resubmit" if auto else "resubmit()"),
                           source=source, host=HOST)
            self._mark_active(top)

        self.write(work, note=f"resubmit {top.fqid}")
        self._send(top, targets, keep_going=True)

    def auto_resubmit(self, conn: Any, fqids: list[str]) -> None:
        """Called by the monitor after failures: resubmit where the job asked for it."""
        by_master: dict[int, list[Job]] = {}
        for fqid in fqids:
            job = conn.jobs.get(fqid)
            top = job.master or job
            if not top.do_auto_resubmit or job.auto_resubmit_count >= MAX_AUTO_RESUBMITS:
                continue
            by_master.setdefault(top.id, []).append(job)
        for _top_id, leaves in by_master.items():
            top = leaves[0].master or leaves[0]
            counts = top.subjob_counts
            total = sum(counts.values()) or 1
            if counts.get("failed", 0) / total >= AUTO_RESUBMIT_STOP_FRACTION and top.is_master:
                continue  # too many failures: something is wrong beyond bad luck
            # The monitor thread owns `conn`: do the write there, then send.
            def work(leaves: list[Job] = leaves) -> None:
                for leaf in leaves:
                    if leaf.status is Status.FAILED:
                        leaf.submit_counter += 1
                        leaf.auto_resubmit_count += 1
                        set_status(leaf, Status.SUBMITTING, "auto-resubmit", source="monitor",
                                   host=HOST)

            conn.write(work, on_commit=self.on_commit)
            import ray

            actor = self.backends.actor(top.backend)
            specs = self._specs(top, [leaf for leaf in leaves if leaf.status is Status.SUBMITTING])
            try:
                handles = ray.get(actor.submit.remote(specs)) if specs else []
            except Exception as exc:
                handles = [_failed_handle(s, str(exc)) for s in specs]
            self.monitor.submit_results(Submission(
                [(s.fqid, s.attempt, h) for s, h in zip(specs, handles)]))

    # -- remove ---------------------------------------------------------------------------
    def remove(self, job: Job, force: bool = False) -> None:
        self._check_writable()
        if job.master is not None:
            raise OperationRefused(job.fqid, "remove", job.status.value,
                                   f"subjobs are not removable alone; remove the master "
                                   f"jobs({job.master.id}) or kill this subjob")
        self.refresh()
        if job.status is Status.TEMPLATE:
            self._delete(job, self.templates)
            return
        active = _leaves(job, lambda s: s in KILLABLE)
        if active:
            relaxed = self.mode_of(job) == "relaxed"
            if relaxed and force:
                self._record_leaks(job, active, "removed without a kill (relaxed, force)")
            else:
                reason = "remove(force=True): kill not confirmed" if force else ""
                unconfirmed = self._kill_leaves(job, active, ledger_reason=reason)
                if unconfirmed:
                    raise KillNotConfirmed(
                        f"not removed: {len(unconfirmed)} subjob(s) could not be confirmed "
                        f"stopped ({', '.join(unconfirmed[:5])}); remove(force=True) removes "
                        f"anyway and records them in the leak ledger",
                        job_id=job.fqid, status=job.status.value)
        self._delete(job, self.jobs)

    def _record_leaks(self, job: Job, leaves: list[Job], reason: str) -> None:
        def work() -> None:
            for leaf in leaves:
                Ledger(self.main).record(leaf, reason)

        self.write(work, note=f"ledger {job.fqid}")

    def _delete(self, job: Job, registry: Any) -> None:
        previous = job.status
        workdir = job.workspace

        def work() -> None:
            if job._subjobs is None and job.status is not Status.TEMPLATE:
                if job.status in FROZEN:
                    set_status(job, Status.COMPLETED if job.status is Status.COMPLETED_FROZEN
                               else Status.FAILED, "unfrozen to be removed", source="user")
                if job.status in ACTIVE:
                    set_status(job, Status.UNKNOWN, "removed while active (forced)", source="user")
                set_status(job, Status.REMOVED, "remove()", source="user", host=HOST)
            registry.discard(job)
            _active_set(self.main.root).discard(job.id) if job.id is not None else None

        self.write(work, note=f"remove {job.fqid}")
        if job._subjobs is not None:
            self.on_commit([Change(time.time(), job.fqid, previous.value, "removed", "remove()", HOST)])
        if workdir and os.path.isdir(workdir):
            shutil.rmtree(workdir, ignore_errors=True)

    # -- force_status, freeze -------------------------------------------------------------
    def force_status(self, job: Job, status: str, force: bool = False) -> None:
        self._check_writable()
        target = Status.parse(status)
        if target not in (Status.FAILED, Status.COMPLETED):
            raise InvalidValue("force_status", "status", status, "'failed' or 'completed'")
        self.refresh()
        if target is Status.FAILED:
            sources = {Status.SUBMITTED, Status.RUNNING, Status.KILLED, Status.COMPLETING,
                       Status.COMPLETED}
        else:
            sources = {Status.FAILED}
        leaves = _leaves(job, lambda s: s in sources)
        if not leaves:
            raise OperationRefused(job.fqid, f"force_status('{target.value}')", job.status.value,
                                   "it may only be forced from "
                                   + ", ".join(sorted(s.value for s in sources)))
        active = [leaf for leaf in leaves if leaf.status in KILLABLE]
        if active:
            unconfirmed = self._kill_leaves(job, active)
            if unconfirmed and not force:
                raise KillNotConfirmed("not forced: the running work could not be stopped",
                                       job_id=job.fqid, status=job.status.value)
            self.refresh()

        def work() -> None:
            for leaf in leaves:
                if leaf.status in sources or leaf.status is Status.KILLED:
                    if leaf.status is not target:
                        set_status(leaf, target, f"force_status('{target.value}')", source="user")

        self.write(work, note=f"force_status {job.fqid}")

    def freeze(self, job: Job) -> None:
        mapping = {Status.COMPLETED: Status.COMPLETED_FROZEN, Status.FAILED: Status.FAILED_FROZEN,
                   Status.KILLED: Status.FAILED_FROZEN}
        self._refreeze(job, mapping, "freeze")

    def unfreeze(self, job: Job) -> None:
        mapping = {Status.COMPLETED_FROZEN: Status.COMPLETED, Status.FAILED_FROZEN: Status.FAILED}
        self._refreeze(job, mapping, "unfreeze")

    def _refreeze(self, job: Job, mapping: dict[Status, Status], verb: str) -> None:
        self._check_writable()
        self.refresh()
        leaves = _leaves(job, lambda s: s in mapping)
        if not leaves:
            raise OperationRefused(job.fqid, verb, job.status.value,
                                   f"only {', '.join(s.value for s in mapping)} jobs can be {verb}d")

        def work() -> None:
            for leaf in leaves:
                if leaf.status in mapping:
                    set_status(leaf, mapping[leaf.status], f"{verb}()", source="user")

        self.write(work, note=f"{verb} {job.fqid}")

    # -- reading ---------------------------------------------------------------------------
    def peek(self, job: Job, file: str = "stdout", lines: int = 20) -> str:
        path = os.path.join(job.workdir, "output", file)
        if not os.path.isfile(path):
            present = sorted(os.listdir(os.path.dirname(path))) if os.path.isdir(
                os.path.dirname(path)) else []
            raise InvalidValue("peek", "file", file,
                               "one of: " + (", ".join(present) if present else
                                             "(no output yet)"))
        return "".join(_tail_lines(path, lines))

    def log_tail(self, job: Job, nbytes: int = 300) -> str:
        path = os.path.join(job.workdir, "output", "stderr")
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - nbytes))
                return " ".join(handle.read().decode(errors="replace").split())
        except OSError:
            return ""

    def postprocess(self, job: Job) -> tuple[bool, str]:
        """Collect outputs and run the master's postprocessors for one finished (sub)job."""
        from .postprocessing import run_for_subjob

        return run_for_subjob(job)

    def wait(self, jobs: Iterable[Job], timeout: float | None = None,
             poll: float = 0.5) -> list[Status]:
        """Block until every job is final (or new again); return their statuses."""
        jobs = list(jobs)
        if any(j.status in ACTIVE for j in jobs):
            self._ensure_monitor()
        deadline = None if timeout is None else time.monotonic() + timeout
        tops = {(j.master or j).id for j in jobs}
        while True:
            self.refresh()
            statuses = [j.status for j in jobs]
            # Final, and the master-level postprocessors (mergers) have run too.
            if all(s not in ACTIVE for s in statuses) and not self.monitor.postprocessing(tops):
                return statuses
            if deadline is not None and time.monotonic() >= deadline:
                from .errors import WaitTimeout

                raise WaitTimeout(timeout, [j.fqid for j, s in zip(jobs, statuses) if s in ACTIVE])
            with self._changed:
                self._changed.wait(poll if deadline is None else
                                   max(0.0, min(poll, deadline - time.monotonic())))

    # -- recovery and audit -----------------------------------------------------------------
    def recover(self) -> None:
        from .recovery import recover

        recover(self)

    def leaks(self, reap: bool = False) -> list[dict[str, Any]]:
        from .recovery import audit_leaks

        return audit_leaks(self, reap=reap)


# -- helpers -----------------------------------------------------------------------------


def _split(job: Job) -> None:
    from BTrees.IOBTree import IOBTree

    from .model.component import Component

    rows = job.splitter.split(job)
    if not rows:
        raise InvalidValue(type(job.splitter).__name__, "split", job.splitter,
                           "at least one subjob (it produced none)")
    checked: list[dict[str, Any]] = []
    for row in rows:
        clean = {}
        for path, value in row.items():
            root, _, leaf = path.partition(".")
            base_component: Component = job.__dict__.get(root)
            fields = type(base_component).fields()
            if leaf not in fields:
                raise InvalidValue(type(job.splitter).__name__, "attribute", path,
                                   f"a field of {type(base_component).__name__}: "
                                   + ", ".join(fields))
            clean[path] = fields[leaf].convert(type(base_component).__name__, value)
        checked.append(clean)
    tree = IOBTree()
    for index, overrides in enumerate(checked):
        sub = Job.__new__(Job)
        state = sub.__dict__
        state["id"] = index
        state["master"] = job
        state["_overrides"] = overrides
        tree[index] = sub
    job._subjobs = tree
    job._counts = StatusCounts({Status.NEW.value: len(checked)})


def _leaves(job: Job, wanted: Any) -> list[Job]:
    """The job itself, or its subjobs, whose status satisfies ``wanted``."""
    if job._subjobs is not None:
        return [sj for sj in job._subjobs.values() if wanted(Status(sj._status))]
    return [job] if wanted(job.status) else []


def _failed_handle(spec: base.SubjobSpec, error: str) -> base.Handle:
    return base.Handle(backend="?", fqid=spec.fqid, error=error, attempt=spec.attempt)


def _active_set(root: Any) -> Any:
    if getattr(root, "active_ids", None) is None:
        from BTrees.IIBTree import IITreeSet

        root.active_ids = IITreeSet()
    return root.active_ids


def _tail_lines(path: str, lines: int) -> list[str]:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        data = handle.read().decode(errors="replace")
    return data.splitlines(keepends=True)[-lines:]


_default: Session | None = None
_default_lock = threading.Lock()


def default_session() -> Session:
    """The process's session for the GPI, opened on first use."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Session()
            import atexit

            atexit.register(_default.close)
        return _default


def set_default_session(session: Session | None) -> None:
    global _default
    with _default_lock:
        _default = session


__all__ = ["Session", "default_session", "set_default_session", "FINAL"]
