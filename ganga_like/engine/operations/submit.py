"""submit(): split, move to submitting, hand the specs to the backend actor."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from ...backends import base
from ...backends.config import BackendConfig
from ...errors import BackendError, GangaLikeError, InvalidValue, OperationRefused
from ...model.application import payload_command
from ...model.component import Component, Field
from ...model.counts import StatusCounts
from ...model.files import dataset_inputs, files_among
from ...model.files import stage_inputs as copy_inputs
from ...model.job import Job
from ...model.jobtime import new_stamps
from ...model.status_index import StatusIndex
from ...model.stream import SubmitStream, stream_of
from ...model.writes import current_cause
from ...ray_runtime import import_ray
from ...repository.diskspace import disk_full, mentions_disk_full
from ...status import Source, Status
from ..context import EngineContext, Submission
from .common import SUBMIT_CHUNK, active_set, begin_attempt, failed_handle
from .preflight import check_application, check_resources, runs_here


def submit(ctx: EngineContext, job: Job, keep_going: bool = False,
           environment: Mapping[str, str] | None = None) -> Job:
    """Submit ``job``. Its payloads start with ``environment`` (the submitting
    client's; default: this process's) unless the job says ``env_from='backend'``."""
    if job.master is not None:
        raise OperationRefused(job.fqid, "submit", job.status.value,
                               "subjobs are submitted with their master; use resubmit()")
    if job.status is Status.TEMPLATE:
        raise OperationRefused(job.fqid, "submit", "template", "submit Job(template) instead")
    ctx.store.register(job)
    if job.status is Status.NEW and job.backend is not None:
        # What the backend's own system refuses (Slurm: no sbatch here, an unknown
        # partition) is one line now, with the job still new and nothing stored.
        job.backend.check_submit()
        # Start the backend's actor now (Ray creates it asynchronously): it boots while
        # the job is split and committed, instead of after; and a backend that cannot
        # be reached leaves the job `new`, untouched.
        ctx.backends.actor(job.backend)
    prepared: list[Job] = []

    def prepare() -> None:
        prepared.clear()
        if job.status is not Status.NEW:
            raise OperationRefused(job.fqid, "submit", job.status.value,
                                   "only a new job can be submitted; use resubmit() for "
                                   "finished ones or j.copy() for a fresh copy")
        if job.splitter is not None and job._subjobs is None:
            split(job)
        targets = ([sj for sj in job._subjobs.values() if sj._status == Status.NEW.value]
                   if job._subjobs is not None else [job])
        env = None  # refuse now what cannot run (here: all that can be told here)
        if runs_here(job.backend):
            env = environment if environment is not None and job.env_from == "submitter" \
                else os.environ
        check_application(job, targets, env)
        check_resources(job, targets)
        job.submit_environment = submitter_environment(
            os.environ if environment is None else environment)
        first = targets[:SUBMIT_CHUNK]
        for target in first:
            begin_attempt(target, "", source=Source.USER)
        if len(targets) > len(first):  # the rest is sent after submit() returns
            job._stream = SubmitStream(int(first[-1].id or 0) + 1, len(targets) - len(first), len(targets),
                                       keep_going=keep_going, cause=current_cause())
        mark_active(ctx, job)
        prepared.extend(first)

    ctx.store.write(prepare, note=f"submit {job.fqid}")
    send_first(ctx, job, prepared, keep_going)
    return job


def send_first(ctx: EngineContext, top: Job, first: Sequence[Job], keep_going: bool) -> None:
    """Send the first batch (all of a small job) and wait until it is recorded; then
    the streamer sends the rest, if any (a failed first batch stops it, unsent)."""
    try:
        send(ctx, top, first, keep_going=keep_going)
    except GangaLikeError as exc:
        if stream_of(top) is not None:
            ctx.streams.stop(top, f"its first batch failed: {str(exc)[:200]}")
        raise
    if stream_of(top) is not None:
        assert top.id is not None  # a submitted job is registered
        ctx.streams.start(top.id)


def send(ctx: EngineContext, top: Job, targets: Sequence[Job], keep_going: bool) -> None:
    """Hand subjobs to the backend; the monitor records the answers (this waits for
    that, then raises what could not be submitted unless ``keep_going``)."""
    pairs = hand_over(ctx, top, targets, keep_going)
    submission = Submission(pairs)
    ctx.monitor.submit_results(submission)
    submission.done.wait()
    ctx.store.refresh()
    if submission.error is not None:
        raise submission.error
    errors = [h for _, _, h in pairs if h.error]
    if errors and not keep_going and mentions_disk_full(errors[0].error):
        raise disk_full(top.workspace, f"{len(errors)} of {len(pairs)} (sub)jobs of job {top.fqid} "
                        f"could not be prepared there and are 'new' again", "submit() again")
    if errors and not keep_going:
        raise BackendError(
            f"{len(errors)} of {len(pairs)} could not be submitted and are 'new' again "
            f"(first reason: {errors[0].error}); fix and submit() again, or use keep_going=True",
            job_id=top.fqid, status=top.status.value,
        )


def hand_over(ctx: EngineContext, top: Job, targets: Sequence[Job],
              keep_going: bool) -> list[tuple[str, int, base.Handle]]:
    """Give subjobs (already ``submitting``) to the backend's actor in chunks; one
    ``(fqid, attempt, handle)`` per subjob, a handle with an error for each that was
    not taken (after a failed chunk, unless ``keep_going``, the rest are not sent)."""
    assert top.backend is not None  # (given its default when it was stored)
    specs = specs_for(ctx, top, targets)
    staging_failed = stage_inputs(ctx, top, targets, specs)
    return send_specs(ctx, top.backend, specs, staging_failed, keep_going, top.fqid)


def send_specs(ctx: EngineContext, backend: BackendConfig, specs: Sequence[base.SubjobSpec],
               staging_failed: Mapping[str, base.Handle], keep_going: bool,
               label: str) -> list[tuple[str, int, base.Handle]]:
    """:func:`hand_over` once the specs are made and their inputs staged (those whose
    staging failed have their handle in ``staging_failed``): the actor's calls. Reads no
    stored object (the streamer calls it with a detached copy of the backend)."""
    actor = ctx.backends.actor(backend)
    pairs: list[tuple[str, int, base.Handle]] = []
    failure: str = ""
    ray = import_ray()
    show = len(specs) > SUBMIT_CHUNK and sys.stderr.isatty()  # a live line, on a terminal only
    for start in range(0, len(specs), SUBMIT_CHUNK):
        if show:
            print(f"\rsubmitting {label}: {start}/{len(specs)}", end="", file=sys.stderr,
                  flush=True)
        chunk = [s for s in specs[start:start + SUBMIT_CHUNK] if s.fqid not in staging_failed]
        pairs.extend((s.fqid, s.attempt, staging_failed[s.fqid])
                     for s in specs[start:start + SUBMIT_CHUNK] if s.fqid in staging_failed)
        if not chunk:
            continue
        if failure and not keep_going:
            handles = [failed_handle(s, f"not sent: an earlier batch failed ({failure})")
                       for s in chunk]
        else:
            try:
                handles = ray.get(actor.submit.remote(chunk))
            except Exception as exc:
                failure = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                handles = [failed_handle(s, failure) for s in chunk]
        pairs.extend((s.fqid, s.attempt, h) for s, h in zip(chunk, handles, strict=True))
    if show:
        print(f"\rsubmitting {label}: {len(specs)}/{len(specs)}", file=sys.stderr, flush=True)
    return pairs


def stages_inputs(top: Job, targets: Sequence[Job]) -> bool:
    """Whether any of ``targets`` has input files to copy into its workdir."""
    return bool(top.inputfiles or dataset_inputs(top) or files_among(
        top.application.exe, top.application.args,
        *(t._overrides.get("application.exe") for t in targets),
        *(t._overrides.get("application.args") for t in targets)))


def stage_inputs(ctx: EngineContext, top: Job, targets: Sequence[Job],
                  specs: Sequence[base.SubjobSpec]) -> dict[str, base.Handle]:
    """Copy input files into each workdir; a failure sends that subjob back to new.

    The job's own ``inputdir`` exists from its submit on, inputs or not, as in Ganga
    (scripts put files there); a subjob's is made when it has inputs to stage."""
    if top.inputdir:
        try:
            os.makedirs(top.inputdir, exist_ok=True)
        except OSError:
            pass  # its workspace is not writable: each subjob's preparation says so
    if not stages_inputs(top, targets):
        return {}
    failed: dict[str, base.Handle] = {}
    for target, spec in zip(targets, specs, strict=True):
        try:
            copy_inputs(target, spec.workdir)
        except (GangaLikeError, OSError) as exc:
            failed[spec.fqid] = failed_handle(spec, f"input files: {exc}")
    return failed


def submitter_environment(environment: Mapping[str, str]) -> tuple:
    """What is kept of a submitter's environment: everything but Ray's settings and
    our own marker (a payload gets its own)."""
    from ...backends.runtime.procs import MARKER_VAR

    return tuple(sorted((k, v) for k, v in environment.items()
                        if not k.startswith(base.RAY_VARIABLES) and k != MARKER_VAR))


def base_environment(top: Job) -> dict[str, str] | None:
    """The environment a job's payloads start with (None: the backend's own)."""
    if top.env_from != "submitter" or top.submit_environment is None:
        return None
    return dict(top.submit_environment)


def specs_for(ctx: EngineContext, top: Job, targets: Sequence[Job]) -> list[base.SubjobSpec]:
    """Specs for many subjobs of one master: the master's values read once."""
    if top._subjobs is None:
        return [spec_for(ctx, t) for t in targets]
    app = top.application
    values = app.field_values()
    workspace, uuid = top.workspace, ctx.store.repo_uuid
    assert top.id is not None  # a submitted job is registered
    options, request = top.backend.spec_options(), top.backend.resource_request()
    base_env = base_environment(top)  # one dict for every spec: serialised once per batch
    specs = []
    for sub in targets:
        mine, backend_values = dict(values), {}
        for path, value in sub._overrides.items():
            root, _, leaf = path.partition(".")
            if root == "application":
                mine[leaf] = value
            elif root == "backend":
                backend_values[leaf] = value
        # A subjob's own backend values (split() let through only those that reach
        # the spec) give its options; the rest share the master's.
        mine_config = top.backend.with_values(backend_values) if backend_values else None
        own = mine_config.spec_options() if mine_config is not None else options
        own_request = mine_config.resource_request() if mine_config is not None else request
        fqid = f"{top.id}.{sub.id}"
        exe, args = payload_command(mine["exe"], mine["args"])
        specs.append(base.SubjobSpec(
            job_id=top.id, subjob_id=sub.id, fqid=fqid, exe=exe,
            args=args, env=dict(mine["env"]),
            workdir=os.path.join(workspace, str(sub.id)), marker=f"{uuid}:{fqid}",
            options=dict(own), attempt=sub.submit_counter, base_env=base_env,
            request=own_request, priority=top.priority))
    return specs


def spec_for(ctx: EngineContext, job: Job) -> base.SubjobSpec:
    app = job.application
    top = job.master or job
    assert top.id is not None  # a submitted job is registered
    exe, args = payload_command(app.exe, app.args)
    return base.SubjobSpec(
        job_id=top.id,
        subjob_id=job.id if job.master is not None else None,
        fqid=job.fqid,
        exe=exe,
        args=args,
        env=dict(app.env),
        workdir=job.workdir,
        marker=f"{ctx.store.repo_uuid}:{job.fqid}",
        options=top.backend.spec_options(),
        attempt=job.submit_counter,
        base_env=base_environment(top),
        request=top.backend.resource_request(),
        priority=top.priority,
    )


def mark_active(ctx: EngineContext, top: Job) -> None:
    root = ctx.store.main.root if top._p_jar is ctx.store.main.conn else top._p_jar.root()["ganga_like"]
    active = active_set(root)
    active.insert(top.id)


def split(job: Job) -> None:
    """Give ``job`` its subjobs: one per row of its splitter, each holding only its
    checked overrides (its record is then the compact form of model/subjob_record)."""
    from BTrees.IOBTree import IOBTree

    splitter: Any = job.splitter  # a Splitter, or any component with split(job)
    rows = splitter.split(job)
    if not rows:
        raise InvalidValue(type(job.splitter).__name__, "split", job.splitter,
                           "at least one subjob (it produced none)")
    checks: dict[str, tuple[Field, str]] = {}  # each path's field and owner, checked once
    made = new_stamps(len(rows), after=job.created)  # each after its master, in id order
    tree, subjobs = IOBTree(), []
    for index, row in enumerate(rows):
        overrides = {}
        for path, value in row.items():
            check = checks.get(path) or checks.setdefault(path, _override_check(job, splitter, path))
            overrides[path] = check[0].convert(check[1], value)
        sub = Job.__new__(Job)
        # A fresh subjob's four values, set as its record holds them: Job's __setattr__
        # guards users' edits of stored jobs, which a new subjob is not.
        state = sub.__dict__
        state["id"] = index
        state["created"] = made[index]
        state["master"] = job
        state["_overrides"] = overrides
        tree[index] = sub
        subjobs.append(sub)
    job._subjobs = tree
    job._counts = StatusCounts({Status.NEW.value: len(subjobs)})
    job._subjob_index = StatusIndex()
    job._subjob_index.fill(Status.NEW.value, len(subjobs), _stored(job, subjobs))


def _override_check(job: Job, splitter: Component, path: str) -> tuple[Field, str]:
    """(the Field a splitter's ``path`` sets, its owner's name for the error line);
    raises InvalidValue for a path no subjob can have its own value of."""
    root, _, leaf = path.partition(".")
    base_component = cast(Component, job.__dict__.get(root))
    fields = type(base_component).fields()
    if leaf not in fields:
        raise InvalidValue(type(splitter).__name__, "attribute", path,
                           f"a field of {type(base_component).__name__}: " + ", ".join(fields))
    if root == "backend":
        per_subjob = backend_fields_per_subjob(base_component)
        if leaf not in per_subjob[0]:
            raise InvalidValue(type(splitter).__name__, _splitter_setting(splitter, path),
                               path, _per_subjob_expected(base_component, *per_subjob))
    return fields[leaf], type(base_component).__name__


def _stored(job: Job, subjobs: Iterable[Job]) -> list[bytes] | None:
    """Each subjob's oid, given now (the commit would give the same ones) so the index
    keeps it; None for a master not stored yet (the index then reads them by the tree)."""
    jar = job._p_jar
    if jar is None:
        return None
    oids: list[bytes] = []
    for sub in subjobs:
        jar.add(sub)
        oids.append(sub._p_oid)
    return oids



def backend_fields_per_subjob(backend: Any) -> tuple[list[str], list[str]]:
    """(fields a subjob may have its own value of, fields it may not) for ``backend``.

    A subjob runs with its own values of the fields its backend puts in each spec
    (``spec_options()``: RayCluster's ``max_retries``, every Hosts request field) or in
    its resource request (``resource_request()``: ``cpus``, ``gpus``, ``memory``,
    ``resources``). A field that chooses the actor (``actor_key()``:
    Local's ``concurrency``, RayCluster's ``address``) is the whole job's: every
    subjob goes to the master's actor. Which fields each method reads is observed,
    not declared, so a backend's list cannot drift from its code.
    """
    fields = list(type(backend).fields())
    in_spec = _fields_read(backend, "spec_options") | _fields_read(backend, "resource_request")
    choose_actor = _fields_read(backend, "actor_key")
    can = [name for name in fields if name in in_spec and name not in choose_actor]
    return can, [name for name in fields if name not in can]


def _fields_read(backend: Any, method: str) -> set[str]:
    """The fields of ``backend`` that ``backend.<method>()`` reads."""
    cls, read = type(backend), set()
    fields = cls.fields()

    def __getattribute__(self: Any, name: str) -> Any:  # noqa: N807 (a method of Tracing)
        if name in fields:
            read.add(name)
        return super(tracing, self).__getattribute__(name)

    tracing: Any = type(cls.__name__, (cls,), {"__getattribute__": __getattribute__})
    probe = tracing.__new__(tracing)
    probe.__dict__.update({name: getattr(backend, name) for name in fields})
    getattr(probe, method)()
    return read


def _per_subjob_expected(backend: Any, can: list[str], cannot: list[str]) -> str:
    name = type(backend).__name__
    choose_actor = _fields_read(backend, "actor_key")
    allowed = ", ".join(["application.<field>", *(f"backend.{f}" for f in can)])
    why = []
    fixed = [f for f in cannot if f in choose_actor]
    if fixed:
        why.append(f"{', '.join(fixed)} {'chooses' if len(fixed) == 1 else 'choose'} the one "
                   "actor that runs every subjob of the job")
    unused = [f for f in cannot if f not in choose_actor]
    if unused:
        why.append(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not part of "
                   "a subjob's run")
    return (f"a field a subjob can have its own value of: {allowed} (on {name}, "
            f"{'; '.join(why)})")


def _splitter_setting(splitter: Any, path: str) -> str:
    """Which setting of the splitter named ``path`` (for the error line)."""
    if getattr(splitter, "attribute", None) == path:
        return "attribute"
    if path in (getattr(splitter, "multi_attrs", None) or {}):
        return "multi_attrs"
    return "split"
