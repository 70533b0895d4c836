"""The ``ganga-like`` command.

Exit codes a shell script can rely on:
  0  success
  1  an error (one line on stderr: what was wrong and what to do)
  2  bad usage (one line on stderr: what was wrong, with the valid choices)
  3  ``wait``/``demo``: every job ended, but some failed or were killed;
     ``leaks``: some were found; ``service status``: no service runs
  4  ``wait``: timed out with jobs still active

Every subcommand but ``run`` (whose output is the script's) takes ``--json``: the
same facts as one JSON document on stdout; errors stay one line on stderr.

The package: ``parser`` (the arguments, one-line usage errors), ``commands`` (what
each subcommand does), ``render`` (text and JSON forms of jobs).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from ..channel.origin import name_this_process
from ..errors import INTERRUPTED, GangaLikeError
from .parser import build_parser, subcommand_parsers
from .usage import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED, EXIT_TIMEOUT, EXIT_USAGE, UsageError

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE",
           "EXIT_SOME_FAILED", "EXIT_TIMEOUT"]

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # as a shell reports a command ended by SIGPIPE


def _unrecognized(parser: Any, args: Any, extra: Sequence[str]) -> None:
    """Arguments no (sub)command takes: one line naming the command and its options."""
    words = " ".join(w for w in (args.command, getattr(args, "action", None)) if w)
    target = subcommand_parsers(parser).get(words, parser)
    options = sorted({o for a in target._actions for o in a.option_strings if o.startswith("--")})
    target.error(f"unrecognized arguments: {' '.join(extra)}; its options are "
                 + ", ".join(options))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _unrecognized(parser, args, extra)
    if args.command is None:
        from .commands import cmd_shell

        args.func = cmd_shell
    name_this_process(f"ganga-like {args.command or 'shell'}")
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"ganga-like {args.command}: {exc} (`ganga-like {args.command} --help` for usage)",
              file=sys.stderr)
        return EXIT_USAGE
    except GangaLikeError as exc:
        print(f"ganga-like: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # `ganga-like jobs --all | head`: the reader has what it wanted; no traceback,
        # and nothing more is written to the closed pipe at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"\nganga-like: {INTERRUPTED}", file=sys.stderr)
        return 130
