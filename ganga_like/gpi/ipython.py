"""The IPython face: banner, one-line errors for ours, tracebacks for the rest."""

from __future__ import annotations

import sys
from typing import Any

from ..channel.origin import name_this_process
from ..errors import GangaLikeError

INTERRUPTED = ("interrupted here only: the service carries on with what it was asked, "
               "and the jobs go on")


def _one_line(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    red, reset = ("\033[1;31m", "\033[0m") if sys.stdout.isatty() else ("", "")
    text = INTERRUPTED if isinstance(value, KeyboardInterrupt) else str(value)
    print(f"{red}{etype.__name__}:{reset} {text}")


def load_ipython_extension(shell: Any) -> None:
    # Ours, and Ctrl-C (in j.wait(), say): one line each, not a traceback through the
    # socket code; the session and its connection stay good (each request has its own).
    shell.set_custom_exc((GangaLikeError, KeyboardInterrupt), _one_line)
    name_this_process("an IPython session")  # what the causes of its verbs say


def banner(session: Any) -> str:
    from .. import __version__

    location = session.repository.location
    mode = session.config.mode
    ro = " (read-only)" if session.read_only else ""
    return (f"ganga_like {__version__}: repository {location}{ro}, {len(session.jobs)} jobs\n"
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
