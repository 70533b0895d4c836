"""The IPython face: banner, one-line errors for ours, tracebacks for the rest, a list
of jobs as one table, and a word on leaving while jobs are active."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..channel.origin import name_this_process
from ..client.link import NoService
from ..errors import INTERRUPTED, GangaLikeError
from ..model.job import Job
from ..model.table import PrettyPrinter, jobs_listing, plural, use_colour

SeqPrinter = Callable[[Sequence[object], PrettyPrinter, bool], None]


def _one_line(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    red, reset = ("\033[1;31m", "\033[0m") if sys.stdout.isatty() else ("", "")
    text = INTERRUPTED if isinstance(value, KeyboardInterrupt) else str(value)
    print(f"{red}{etype.__name__}:{reset} {text}")


def load_ipython_extension(shell: Any) -> None:
    # Ours, and Ctrl-C (in j.wait(), say): one line each, not a traceback through the
    # socket code; the session and its connection stay good (each request has its own).
    shell.set_custom_exc((GangaLikeError, KeyboardInterrupt), _one_line)
    name_this_process("an IPython session")  # what the causes of its verbs say
    plain = shell.display_formatter.formatters["text/plain"]
    for kind in (list, tuple):  # [j1, j2] at the prompt: one table, not a tree each
        plain.for_type(kind, job_list_printer(plain.for_type(kind)))


def job_list_printer(previous: SeqPrinter | None) -> SeqPrinter:
    """IPython's printer of a list (or tuple) that shows one whose items are all jobs as
    one table (of subjobs, if they all are), and any other as ``previous`` did."""

    def show(items: Sequence[object], printer: PrettyPrinter, cycle: bool) -> None:
        jobs = [item for item in items if isinstance(item, Job)]
        if jobs and len(jobs) == len(items) and not cycle:
            what = "subjobs" if all(job.master is not None for job in jobs) else "jobs"
            printer.text(jobs_listing(jobs, what, colour=use_colour()))
        elif previous is not None:
            previous(items, printer, cycle)
        else:
            printer.text(repr(items))

    return show


def still_active(session: Any) -> str:
    """On leaving the shell: one line if jobs of the repository are still active (they go
    on: the service runs them), else ''."""
    try:
        info, _ = session.link.call("status")
        active = int(info.get("active_jobs") or 0)
    except (GangaLikeError, NoService, OSError):
        return ""  # no service to ask: nothing is said rather than a guess
    if not active:
        return ""
    one = active == 1
    return (f"{plural(active, 'job')} of this repository {'is' if one else 'are'} still "
            f"active: the service goes on running {'it' if one else 'them'} "
            f"(`ganga-like jobs` shows {'it' if one else 'them'})")


def banner(session: Any) -> str:
    from .. import __version__

    location = session.repository.location
    mode = session.config.mode
    ro = " (read-only)" if session.read_only else ""
    return (f"ganga_like {__version__}: repository {location}{ro}, {plural(len(session.jobs), 'job')}\n"
            f"backends: Local; mode: {mode}. Try: j = Job(); j.submit(); jobs; help(Job)\n")


def start_shell(session: Any) -> None:
    import IPython
    from traitlets.config import Config

    from .. import gpi
    from . import __all__ as names

    namespace = {name: getattr(gpi, name) for name in names}
    config = Config()
    config.TerminalInteractiveShell.banner1 = banner(session)
    config.TerminalInteractiveShell.enable_tip = False  # IPython's random tip line: noise here
    config.InteractiveShellApp.extensions = ["ganga_like.gpi.ipython"]
    IPython.start_ipython(argv=[], user_ns=namespace, config=config)
    farewell = still_active(session)
    if farewell:
        print(farewell)
