"""The arguments of ``ganga-like``. Bad usage is one line on stderr (what was wrong,
with the valid choices) and exit code 2, never the whole usage text."""

from __future__ import annotations

import argparse
import datetime
import os
import re
import time
from typing import Any, NamedTuple

from .. import __version__
from .usage import EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (`{self.prog} --help` for usage)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 or more")
    return value


def _script(text: str) -> str:
    # Checked before a client starts: a misspelt name must not start a service.
    if not os.path.isfile(text):
        what = "is a directory" if os.path.isdir(text) else "does not exist"
        raise argparse.ArgumentTypeError(f"{text!r} {what}; give the path of a Python script")
    if not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text!r} cannot be read; give a script you can read")
    return text


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more seconds")
    return value


class Since(NamedTuple):
    """``jobs --since``: the earliest creation time wanted, and the option in words."""

    when: float
    words: str


SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SINCE_FORMS = ("give a duration (90s, 30m, 2h, 1h30m, 3d, 1w) or a local date or time "
               "(2026-12-06, 2026-12-06T14:30)")


def _since(text: str) -> Since:
    """``2h``, ``1h30m``, ``3d``: that long ago; ``2026-12-06[T14:30]``: then (local time)."""
    spoken = text.strip()
    if re.fullmatch(r"(?:\d+(?:\.\d+)?[smhdw])+", spoken):
        ago = sum(float(n) * SINCE_UNITS[unit]
                  for n, unit in re.findall(r"(\d+(?:\.\d+)?)([smhdw])", spoken))
        return Since(time.time() - ago, f"created in the last {spoken}")
    try:
        then = datetime.datetime.fromisoformat(spoken)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time; {SINCE_FORMS}") from None
    return Since(then.timestamp(), f"created since {spoken}")


def status_names() -> list[str]:
    from ..status import Status

    return [s.value for s in Status]


def _statuses(text: str) -> list[str]:
    valid = status_names()
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in wanted if part not in valid]
    if unknown or not wanted:
        shown = repr(unknown[0]) if unknown else "nothing"
        raise argparse.ArgumentTypeError(f"unknown status {shown}; give one or more of "
                                         f"{', '.join(valid)} (comma separated)")
    return wanted


def _json(p: argparse.ArgumentParser, what: str = "the same, as JSON") -> None:
    p.add_argument("--json", action="store_true", help=what)


def build_parser() -> argparse.ArgumentParser:
    from . import commands as c

    parser = _Parser(prog="ganga-like", description=(
        "A job manager for many jobs. With no command: an IPython session with the GPI "
        "loaded. Ids: 3 (a job), 3.14 (a subjob), -1 (the newest job)."))
    parser.add_argument("--version", action="version", version=f"ganga_like {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = command("jobs", c.cmd_jobs, "list jobs, newest last")
    p.add_argument("--status", type=_statuses, metavar="S[,S...]",
                   help="only jobs with these statuses, comma separated")
    p.add_argument("--name", metavar="PATTERN",
                   help="only jobs whose name matches PATTERN ('sim*', 'run-?')")
    p.add_argument("--since", type=_since, metavar="WHEN",
                   help="only jobs created since then: 2h, 30m, 3d ago, or a date or time "
                        "(2026-12-06, 2026-12-06T14:30)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--limit", type=_positive_int, default=50, metavar="N",
                       help="the newest N jobs (default 50)")
    which.add_argument("--all", action="store_true", help="every job")
    _json(p, "a JSON list, one object per job")

    p = command("show", c.cmd_show, "one job or subjob: its settings, subjobs and history")
    p.add_argument("id", help="3, 3.14 or -1")
    p.add_argument("--status", type=_statuses, metavar="S[,S...]",
                   help="a master: list only subjobs with these statuses")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--limit", type=_positive_int, default=20, metavar="N",
                       help="a master: list the first N subjobs (default 20)")
    which.add_argument("--all", action="store_true", help="a master: list every subjob")
    p.add_argument("--history", type=_positive_int, default=10, metavar="N",
                   help="the last N history entries (default 10)")
    _json(p, "as JSON: every field, the whole history and (a master) every subjob")

    p = command("why", c.cmd_why, "why a job or its subjobs wait, or what they are doing")
    p.add_argument("id", help="3, 3.14 or -1")
    _json(p, "as JSON: the summary and each reason with its code, note, count and subjobs")

    p = command("peek", c.cmd_peek, "the end of a (sub)job's output file")
    p.add_argument("id", help="3 or 3.14 (a subjob's output is its own)")
    p.add_argument("--file", default="stdout",
                   help="a file in the job's output directory (default stdout)")
    p.add_argument("--lines", type=_positive_int, default=20, metavar="N",
                   help="how many lines (default 20)")
    p.add_argument("--follow", "-f", action="store_true",
                   help="then print what is added until the job is final (as tail -f)")
    _json(p)

    p = command("submit", c.cmd_submit,
                "submit a command as a job: ganga-like submit [options] -- PROGRAM [ARGS...]; "
                "or a BEX job file, one subjob per host: ganga-like submit FILE.job --hosts h1,h2")
    p.add_argument("--hosts", metavar="H1,H2",
                   help="with a BEX job file: the hosts to queue it on (one subjob each)")
    p.add_argument("--name", default="", help="the job's name")
    p.add_argument("--split", metavar="FILE",
                   help="one subjob per line of FILE, its words added after ARGS")
    p.add_argument("--wait", action="store_true",
                   help="then wait until it is final (exit 3 if it failed or was killed)")
    _json(p, "the job's outcome as JSON")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- PROGRAM [ARGS...]")

    p = command("wait", c.cmd_wait,
                "wait until jobs are final (exit 3 if some failed or were killed, 4 on timeout)")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="give up after this long")
    _json(p)

    p = command("kill", c.cmd_kill, "kill jobs (confirmed in strict mode)")
    p.add_argument("ids", nargs="+", metavar="ID")
    _json(p)

    p = command("resubmit", c.cmd_resubmit, "resubmit jobs, or a master's failed subjobs")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--force", action="store_true", help="kill running ones first")
    p.add_argument("--include-killed", action="store_true",
                   help="a master: resubmit its killed subjobs too")
    _json(p)

    p = command("remove", c.cmd_remove, "kill, then remove jobs")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--force", action="store_true",
                   help="remove even if the kill cannot be confirmed (recorded as a leak)")
    _json(p)

    p = command("leaks", c.cmd_leaks,
                "audit work still holding resources (exit 3: some found); --reap ends it")
    p.add_argument("--reap", action="store_true", help="kill what is found")
    _json(p)

    p = command("hosts", c.cmd_hosts, "the Hosts backend's hosts: status, protection, last check")
    p.add_argument("name", nargs="?", default="", help="only this host")
    _json(p)

    p = command("run", c.cmd_run, "run a Ganga-style script with the GPI preloaded")
    p.add_argument("script", type=_script)
    p.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARG")

    p = command("demo", c.cmd_demo, "run a real job of 200 subjobs on this machine")
    p.add_argument("--subjobs", type=_positive_int, default=200, metavar="N")
    _json(p, "only a JSON summary at the end")

    p = command("web", c.cmd_web, "print the address of the repository's web view (the "
                "service serves it on loopback, behind a token made at its start)")
    p.add_argument("--listen", metavar="HOST:PORT", default="",
                   help="serve it there instead (e.g. 0.0.0.0:8080: other machines, still "
                        "behind the token; plain HTTP), at its first start")
    _json(p, "the address, host, port and whether it is loopback only, as JSON")

    p = command("pack", c.cmd_pack, "pack the database now (jobs.fs keeps only what the "
                "pack policy keeps: docs/administration.md, \"Packing\")")
    _json(p, "what the pack did (path, sizes before and after, seconds) as JSON")

    p = command("service", c.cmd_service, "the repository's service: start | stop | status | log")
    actions = p.add_subparsers(dest="action", metavar="{start,stop,status,log}", required=True)
    a = actions.add_parser("start", help="start it (it also starts by itself on first use)")
    a.add_argument("--listen", metavar="HOST:PORT", default="",
                   help="also serve clients of other machines over TLS (they present "
                        "the root's service-secret.pem)")
    a.add_argument("--ray-open", action="store_true",
                   help="bind Ray to this machine's network interface (not loopback), "
                        "so that other machines can join with `ray start --address=...`")
    _json(a)
    a = actions.add_parser("stop", help="stop it (running payloads go on; the next one adopts them)")
    _json(a)
    a = actions.add_parser("status", help="pid, clients, active jobs, Ray (exit 3: none runs)")
    _json(a)
    a = actions.add_parser("log", help="the end of the service's log")
    a.add_argument("--lines", type=_positive_int, default=40, metavar="N",
                   help="how many lines (default 40)")
    _json(a)
    return parser


def subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{'jobs': ..., 'service start': ..., ...}: every (sub)command's parser, by its words."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(p: argparse.ArgumentParser, words: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    key = f"{words} {name}".strip()
                    found[key] = child
                    walk(child, key)

    walk(parser, "")
    return found
