"""The exit codes of ``ganga-like`` and the usage errors found after parsing: shared by
the parser and the commands (which the parser binds to their subcommands)."""

from __future__ import annotations

import argparse
import re

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_TIMEOUT = 0, 1, 2, 3, 4


class UsageError(Exception):
    """Bad usage found after parsing (a relative id where an exact one is needed, ...)."""


EXACT_ID = re.compile(r"^\d+(\.\d+)?$")


def exact_ids(args: argparse.Namespace, verb: str) -> None:
    """Commands that destroy name exactly what they destroy: no relative ids (-1)."""
    for wanted in args.ids:
        if not EXACT_ID.match(wanted):
            raise UsageError(f"{wanted!r}: give a job id such as 3 or a subjob id such "
                             f"as 3.14 (relative ids like -1 are refused by {verb})")
