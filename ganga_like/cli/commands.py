"""The ``ganga-like`` command.

Exit codes a shell script can rely on:
  0  success
  1  an error (one line on stderr: what was wrong and what to do)
  2  bad usage (argparse's message)
  3  ``wait``/``demo``: every job ended, but some failed or were killed
  4  ``wait``: timed out with jobs still active
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import GangaLikeError, WaitTimeout

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_TIMEOUT = 0, 1, 2, 3, 4


def _session(read_only_ok: bool = False) -> Any:
    """A client of the root's service (started in the background if none runs)."""
    from .client.session import ClientSession
    from .model import binding

    session = ClientSession()
    binding.set_default(session)
    return session


def _job_dict(job: Any) -> dict[str, Any]:
    return {"fqid": job.fqid, "status": job.status.value, "name": job.name,
            "subjobs": job.subjob_counts, "application": type(job.application).__name__,
            "backend": type(job.backend).__name__, "comment": job.comment,
            "reason": job.reason, "exit_code": job.exit_code}


def cmd_jobs(args: argparse.Namespace) -> int:
    session = _session(read_only_ok=True)
    try:
        from .model.table import job_row, render

        if args.status:
            selected = session.jobs.select(status=args.status.split(","))
        else:
            selected = session.jobs.last(args.limit) if not args.all else list(session.jobs)
        if args.json:
            print(json.dumps([_job_dict(j) for j in selected]))
        else:
            print(render([job_row(j) for j in selected], f"{len(session.jobs)} jobs"))
        return EXIT_OK
    finally:
        session.close()


def cmd_show(args: argparse.Namespace) -> int:
    session = _session(read_only_ok=True)
    try:
        job = session.jobs.get(args.id)
        if args.json:
            data = _job_dict(job)
            data["history"] = [list(h) for h in job.history]
            data["workdir"] = job.workdir
            print(json.dumps(data))
        else:
            print(repr(job))
            if job.is_master:
                print(repr(job.subjobs))
            print(f"workdir: {job.workdir}")
            for when, src, dst, note, source in job.history[-10:]:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
                print(f"  {stamp} {src} -> {dst} ({source}) {note}")
        return EXIT_OK
    finally:
        session.close()


def cmd_peek(args: argparse.Namespace) -> int:
    session = _session(read_only_ok=True)
    try:
        sys.stdout.write(session.peek(session.jobs.get(args.id), file=args.file, lines=args.lines))
        return EXIT_OK
    finally:
        session.close()


def _exit_for(statuses: Sequence[Any]) -> int:
    return EXIT_SOME_FAILED if any(s.value in ("failed", "killed") for s in statuses) else EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    session = _session()
    try:
        jobs = [session.jobs.get(i) for i in args.ids]
        from .progress import wait_with_progress

        try:
            statuses = wait_with_progress(session, jobs, timeout=args.timeout)
        except WaitTimeout as exc:
            print(f"ganga-like: {exc}", file=sys.stderr)
            return EXIT_TIMEOUT
        return _exit_for(statuses)
    finally:
        session.close()


def _verb(args: argparse.Namespace, verb: str, **kwargs: Any) -> int:
    session = _session()
    try:
        for wanted in args.ids:
            job = session.jobs.get(wanted)
            getattr(session, verb)(job, **kwargs)
            if verb != "remove":
                session.refresh()
                print(f"{job.fqid}: {job.status.value}")
            else:
                print(f"{wanted}: removed")
        return EXIT_OK
    finally:
        session.close()


def cmd_kill(args: argparse.Namespace) -> int:
    _exact_ids(args, "kill")
    return _verb(args, "kill")


def cmd_resubmit(args: argparse.Namespace) -> int:
    return _verb(args, "resubmit", force=args.force, include_killed=args.include_killed)


def cmd_remove(args: argparse.Namespace) -> int:
    _exact_ids(args, "remove")
    return _verb(args, "remove", force=args.force)


def cmd_leaks(args: argparse.Namespace) -> int:
    session = _session()
    try:
        found = session.leaks(reap=args.reap)
        if args.json:
            print(json.dumps(found))
        elif not found:
            print("no leaks: nothing finished or removed still holds a resource")
        else:
            for item in found:
                reaped = " (reaped)" if item.get("reaped") else ""
                print(f"{item['fqid']}: {item['source']}: {item['reason']}{reaped}")
        return EXIT_OK if not found or args.reap else EXIT_SOME_FAILED
    finally:
        session.close()


def cmd_run(args: argparse.Namespace) -> int:
    import runpy

    session = _session()
    try:
        sys.argv = [args.script, *args.script_args]
        from . import gpi

        namespace = {name: getattr(gpi, name) for name in gpi.__all__}
        runpy.run_path(args.script, init_globals=namespace, run_name="__main__")
        return EXIT_OK
    finally:
        session.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    session = _session()
    try:
        return _exit_for([run_demo(session, args.subjobs)])
    finally:
        session.close()


def cmd_service(args: argparse.Namespace) -> int:
    from .client import service_control

    return service_control.run(args)


def cmd_shell(args: argparse.Namespace) -> int:
    session = _session(read_only_ok=True)
    from .gpi.ipython import start_shell

    try:
        start_shell(session)
    finally:
        session.close()
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line (what was wrong, with the valid choices argparse names) and
    exit code 2, not the whole usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (`{self.prog} --help` for usage)\n")


EXACT_ID = re.compile(r"^\d+(\.\d+)?$")


def _exact_ids(args: argparse.Namespace, verb: str) -> None:
    """Commands that destroy name exactly what they destroy: no relative ids (-1)."""
    for wanted in args.ids:
        if not EXACT_ID.match(wanted):
            raise _UsageError(f"{verb} {wanted!r}: give a job id such as 3 or a subjob id such "
                              f"as 3.14 (relative ids like -1 are refused here)")


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ganga-like", description=(
        "A job manager for many jobs. With no command: an IPython session with the GPI loaded."))
    parser.add_argument("--version", action="version", version=f"ganga_like {__version__}")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("jobs", help="list jobs (works while another session holds the repository)")
    p.add_argument("--status", help="only these statuses, comma separated")
    p.add_argument("--limit", type=int, default=50, help="newest N jobs (default 50)")
    p.add_argument("--all", action="store_true", help="every job")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("show", help="one job or subjob: status, subjobs, history")
    p.add_argument("id", help="3 or 3.14")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("peek", help="the end of a job's output file")
    p.add_argument("id")
    p.add_argument("--file", default="stdout")
    p.add_argument("--lines", type=int, default=20)
    p.set_defaults(func=cmd_peek)

    p = sub.add_parser("wait", help="wait until jobs are final (exit 3 if some failed, 4 on timeout)")
    p.add_argument("ids", nargs="+")
    p.add_argument("--timeout", type=float)
    p.set_defaults(func=cmd_wait)

    for name, func, help_text in (("kill", cmd_kill, "kill jobs (confirmed in strict mode)"),
                                  ("resubmit", cmd_resubmit, "resubmit failed subjobs or jobs"),
                                  ("remove", cmd_remove, "kill, then remove jobs")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("ids", nargs="+")
        if name == "resubmit":
            p.add_argument("--force", action="store_true", help="kill running ones first")
            p.add_argument("--include-killed", action="store_true")
        if name == "remove":
            p.add_argument("--force", action="store_true",
                           help="remove even if the kill cannot be confirmed (recorded as a leak)")
        p.set_defaults(func=func)

    p = sub.add_parser("leaks", help="audit work still holding resources; --reap ends it")
    p.add_argument("--reap", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_leaks)

    p = sub.add_parser("run", help="run a Ganga-style script with the GPI preloaded")
    p.add_argument("script")
    p.add_argument("script_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run a real job of 200 subjobs on this machine")
    p.add_argument("--subjobs", type=int, default=200)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("service", help="the repository's service: start | stop | status | log")
    p.add_argument("action", choices=("start", "stop", "status", "log"))
    p.add_argument("--listen", metavar="HOST:PORT", default="",
                   help="start: also serve clients of other machines over TLS (they present "
                        "the root's service-secret.pem)")
    p.add_argument("--ray-open", action="store_true",
                   help="start: bind Ray to this machine's network interface (not loopback), "
                        "so that other machines can join with `ray start --address=...`")
    p.add_argument("--lines", type=int, default=40, help="log: how many lines (default 40)")
    p.add_argument("--json", action="store_true", help="status: as JSON")
    p.set_defaults(func=cmd_service)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.func = cmd_shell
    try:
        return args.func(args)
    except _UsageError as exc:
        print(f"ganga-like: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GangaLikeError as exc:
        print(f"ganga-like: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
