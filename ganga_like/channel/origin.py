"""Who asks for a verb: the line a cause keeps as its ``origin`` ("kill #41 from ...").

A client names itself in every request (``from``); the face that runs the process says
what it is (``name_this_process``: ``ganga-like kill``, an IPython session), and a
process no face named is a Python script. The service keeps what a client said only
as one short line of printable characters (``cleaned``): it ends up in the history and
in the queue log, whose lines must stay one line each.
"""

from __future__ import annotations

import os
import socket
import sys

MAX_LENGTH = 120
_face: list[str] = []  # what the face running this process called it, if one did


def name_this_process(face: str) -> None:
    """Called by a face once it runs: ``"ganga-like kill"``, ``"an IPython session"``. No
    parentheses: a queue-log line ends with its cause in parentheses."""
    _face[:] = [face]


def this_process(remote: bool = False) -> str:
    """This process as a cause names it: its face (or script) and pid, and its host when
    it talks to a service on another machine (``remote``)."""
    face = _face[0] if _face else _script()
    where = f" on {socket.gethostname()}" if remote else ""
    return f"{face}, pid {os.getpid()}{where}"


def _script() -> str:
    path = sys.argv[0] if sys.argv else ""
    name = os.path.basename(path)
    if name == "__main__.py":  # `python -m tool`: the tool's name
        name = os.path.basename(os.path.dirname(path))
    return f"the Python script {name}" if name and name != "-c" else "a Python process"


def cleaned(origin: object, default: str = "a client") -> str:
    """What a request said of its origin, as one printable line of at most MAX_LENGTH
    characters (anything else is replaced); ``default`` when it said nothing."""
    text = origin if isinstance(origin, str) else ""
    text = "".join(c if c.isprintable() else "?" for c in text).strip()
    if len(text) > MAX_LENGTH:
        text = text[:MAX_LENGTH - 3] + "..."
    return text or default
