"""What each subcommand does. Every command is a client of the root's service
(started in the background if none runs); errors are raised, and ``main`` prints
them as one line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..channel.origin import name_this_process
from ..errors import InvalidValue, WaitTimeout
from ..model.table import job_row, plural
from ..model.table import render as render_table
from . import quick, render
from .usage import EXIT_OK, EXIT_SOME_FAILED, EXIT_TIMEOUT, UsageError, exact_ids


@contextlib.contextmanager
def _client() -> Iterator[Any]:
    """A client of the root's service (started in the background if none runs), closed
    however the command ends."""
    from ..client.session import ClientSession
    from ..model import binding

    session = ClientSession()
    binding.set_default(session)
    try:
        yield session
    finally:
        session.close()


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=None, ensure_ascii=False))


def _exit_for(statuses: Sequence[Any]) -> int:
    return EXIT_SOME_FAILED if any(str(getattr(s, "value", s)) in ("failed", "killed")
                                   for s in statuses) else EXIT_OK


# --- reading ------------------------------------------------------------------------------


def jobs_filters(args: argparse.Namespace) -> str:
    """What ``jobs``'s options chose, in words ('' for every job)."""
    which = []
    if args.status:
        which.append(f"with status {','.join(args.status)}")
    if args.name is not None:
        which.append(f"named {args.name!r}")
    if args.since is not None:
        which.append(args.since.words)
    return ", ".join(which)


def jobs_footer(shown: int, matching: int, total: int, which: str) -> str:
    """What the table shows, counted: never the repository's total as if it were shown."""
    if not which:
        if shown == total:
            return plural(total, "job")
        return f"the newest {shown} of {total} jobs (--limit N or --all for more)"
    if shown == matching:
        return f"{shown} of {plural(total, 'job')} {which}"
    return (f"the newest {shown} of the {matching} jobs {which} ({total} in all; "
            f"--limit N or --all for more)")


def cmd_jobs(args: argparse.Namespace) -> int:
    with _client() as session:
        total = len(session.jobs)
        which = jobs_filters(args)
        newest = None
        if args.status and args.name is None and args.since is None and not args.all:
            newest = session.jobs.newest_of(args.status, args.limit)  # reads what it shows
        if newest is not None:
            selected, count = newest
        elif which:
            matching = list(session.jobs.select(status=args.status, name=args.name))
            if args.since is not None:
                matching = [j for j in matching if (j.created or 0) >= args.since.when]
            count = len(matching)
            selected = matching if args.all else matching[-args.limit:]
        else:
            count = total
            selected = list(session.jobs) if args.all else list(session.jobs.last(args.limit))
        if args.json:
            _print_json([render.job_dict(j) for j in selected])
        else:
            print(render_table([job_row(j) for j in selected],
                               jobs_footer(len(selected), count, total, which)))
        return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    with _client() as session:
        job = session.jobs.get(args.id)
        if args.status and job._subjobs is None:
            raise UsageError(f"--status lists a master's subjobs; {job.fqid} has none")
        if args.json:
            _print_json(render.show_dict(job, args.status))
        else:
            print(render.show_text(job, args.status, None if args.all else args.limit,
                                   args.history))
        return EXIT_OK


def cmd_why(args: argparse.Namespace) -> int:
    with _client() as session:
        report = session.jobs.get(args.id).why()
        if args.json:
            _print_json(report.as_dict())
        else:
            print(report)
        return EXIT_OK


def cmd_peek(args: argparse.Namespace) -> int:
    with _client() as session:
        job = session.jobs.get(args.id)
        counts = job.subjob_counts
        if counts:  # the engine's hint is Python's; a command's user gets commands
            n = sum(counts.values())
            failed = " --status failed" if counts.get("failed") else ""
            raise UsageError(f"job {job.fqid} is a master: its output is its {n} subjobs'; "
                             f"peek one, e.g. `ganga-like peek {job.fqid}.0` "
                             f"(`ganga-like show {job.fqid}{failed}` lists them)")
        if args.follow:
            return quick.follow(session, job, args.file, args.lines)
        try:
            text = session.peek(job, file=args.file, lines=args.lines)
        except InvalidValue as exc:
            if getattr(exc, "attribute", "") != "file":
                raise
            raise UsageError(f"--file {args.file!r} is not valid: "
                             f"expected {exc.fields.get('expected')}") from None
        if args.json:
            _print_json({"fqid": job.fqid, "file": args.file, "lines": args.lines, "text": text})
        else:
            sys.stdout.write(text)
        return EXIT_OK


# --- verbs --------------------------------------------------------------------------------


def cmd_wait(args: argparse.Namespace) -> int:
    from .progress import wait_with_progress

    with _client() as session:
        jobs = [session.jobs.get(i) for i in args.ids]
        started = time.monotonic()
        timed_out: WaitTimeout | None = None
        try:
            wait_with_progress(session, jobs, timeout=args.timeout)
        except WaitTimeout as exc:
            timed_out = exc
        session.refresh()
        elapsed = time.monotonic() - started
        if args.json:
            _print_json({"jobs": [render.outcome_dict(j) for j in jobs],
                         "timed_out": timed_out is not None, "waited_s": round(elapsed, 3)})
        else:
            for job in jobs:
                print(render.outcome_line(job))
        if timed_out is not None:
            print(f"ganga-like: {timed_out}", file=sys.stderr)
            return EXIT_TIMEOUT
        return _exit_for([j.status for j in jobs])


def _verb(args: argparse.Namespace, verb: str, **kwargs: Any) -> int:
    done: list[dict[str, Any]] = []
    try:
        with _client() as session:
            for wanted in args.ids:
                job = session.jobs.get(wanted)
                fqid = job.fqid
                active = render.active_count(job)
                getattr(job, verb)(**kwargs)  # as the GPI does it (resubmit's notice included)
                if verb == "remove":
                    done.append({"fqid": fqid, "removed": True})
                    line = f"{fqid}: removed"
                else:
                    session.refresh()
                    done.append(render.outcome_dict(job))
                    line = render.outcome_line(job)
                    if verb == "kill" and job.subjob_counts:  # what the kill did, then the status
                        line = f"{fqid}: killed {active} active subjob(s); now {line.split(': ', 1)[1]}"
                if not args.json:
                    print(line, flush=True)
        return EXIT_OK
    finally:
        if args.json:  # what was done before an error, too
            _print_json(done)


def cmd_kill(args: argparse.Namespace) -> int:
    exact_ids(args, "kill")
    return _verb(args, "kill")


def cmd_submit(args: argparse.Namespace) -> int:
    bex = quick.bex_form(args)  # FILE.job --hosts h1,h2: a BEX job file
    built = None if bex else quick.build_job(args)  # a bad file or command: one line, nothing stored
    with _client() as session:
        if bex is not None:
            job = session.jobs.get(session.submit_bex(bex.text, bex.hosts, source=bex.path))
        else:
            job = session.register(built)
            job.submit()
        session.refresh()
        if args.wait:
            from .progress import wait_with_progress

            wait_with_progress(session, [job])
            session.refresh()
        if args.json:
            _print_json(render.outcome_dict(job))
        else:
            print(render.outcome_line(job))
        return _exit_for([job.status]) if args.wait else EXIT_OK


def cmd_resubmit(args: argparse.Namespace) -> int:
    return _verb(args, "resubmit", force=args.force, include_killed=args.include_killed)


def cmd_remove(args: argparse.Namespace) -> int:
    exact_ids(args, "remove")
    return _verb(args, "remove", force=args.force)


def cmd_leaks(args: argparse.Namespace) -> int:
    with _client() as session:
        found = session.leaks(reap=args.reap)
        if args.json:
            _print_json(found)
        elif not found:
            print("no leaks: nothing finished or removed still holds a resource")
        else:
            for item in found:
                reaped = " (reaped)" if item.get("reaped") else ""
                print(f"{item['fqid']}: {item['source']}: {item['reason']}{reaped}")
        return EXIT_OK if not found or args.reap else EXIT_SOME_FAILED


def cmd_hosts(args: argparse.Namespace) -> int:
    with _client() as session:
        rows = session.hosts(name=args.name)
        if args.json:
            _print_json(rows)
        else:
            print(render.hosts_text(rows))
        return EXIT_OK


# --- the rest -----------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    import runpy

    with _client():
        sys.argv = [args.script, *args.script_args]
        name_this_process(f"ganga-like run {os.path.basename(args.script)}")
        from .. import gpi

        namespace = {name: getattr(gpi, name) for name in gpi.__all__}
        runpy.run_path(args.script, init_globals=namespace, run_name="__main__")
        return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from ..channel.paths import ServicePaths
    from ..client import autostart, remote, service_control
    from ..config import Config
    from .demo import run_demo

    # A service the demo starts, the demo stops: it leaves nothing running behind it.
    paths = ServicePaths(Config.from_env().root)
    started_here = remote.target_from_env() is None and not autostart.service_alive(paths)
    try:
        with _client() as session:
            outcome = run_demo(session, args.subjobs, quiet=args.json)
            if args.json:
                _print_json(outcome)
            return _exit_for([outcome["status"]])
    finally:
        if started_here:
            service_control.stop(paths)
            if not args.json:
                print("stopped the service the demo started (the next command starts it again)")


def cmd_web(args: argparse.Namespace) -> int:
    """The web view's address (the service starts it on the first ask); opens nothing."""
    with _client() as session:
        info = session.run_verb("web", listen=args.listen)
        if args.json:
            _print_json(info)
        else:
            print(info["url"])
            if not info["loopback"]:
                print(f"ganga-like: the web view listens on {info['host']}:{info['port']} in plain "
                      "HTTP: anyone who sees the address (and its token) can kill and remove "
                      "jobs; prefer loopback and an SSH tunnel (ssh -L)", file=sys.stderr)
        return EXIT_OK


def cmd_pack(args: argparse.Namespace) -> int:
    """Pack the repository's database through its service; one line of what it did."""
    with _client() as session:
        done = session.run_verb("pack")
        if args.json:
            _print_json(done)
        else:
            print(done["line"])
        return EXIT_OK


def cmd_service(args: argparse.Namespace) -> int:
    from ..client import service_control

    return service_control.run(args)


def cmd_shell(args: argparse.Namespace) -> int:
    from ..gpi.ipython import start_shell

    with _client() as session:
        start_shell(session)
    return EXIT_OK
