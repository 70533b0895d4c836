"""Tables for the terminal (coloured by status) and for notebooks (HTML)."""

from __future__ import annotations

import html
import sys
from collections.abc import Sequence

from ..model.table import COLUMNS, WIDTHS, _clip

COLOURS = {
    "new": "", "submitting": "\033[36m", "submitted": "\033[36m", "running": "\033[32m",
    "completing": "\033[32m", "completed": "\033[1;34m", "failed": "\033[1;31m",
    "killed": "\033[35m", "unknown": "\033[33m", "completed_frozen": "\033[34m",
    "failed_frozen": "\033[31m",
}
RESET = "\033[0m"


def _use_colour() -> bool:
    return sys.stdout.isatty()


def pretty_table(rows: Sequence[Sequence[str]], footer: str = "") -> str:
    colour = _use_colour()
    header = " ".join(c.ljust(w) for c, w in zip(COLUMNS, WIDTHS)).rstrip()
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = [_clip(v, w).ljust(w) for v, w in zip(row, WIDTHS)]
        code = COLOURS.get(row[1], "") if colour else ""
        if code:
            cells[1] = code + cells[1] + RESET
        # A running master with failures says so: its counts column is marked.
        if colour and "failed:" in row[3] and row[1] not in ("failed", "completed"):
            cells[3] = "\033[31m" + cells[3] + RESET
        lines.append(" ".join(cells).rstrip())
    if footer:
        lines.append(footer)
    return "\n".join(lines)


def html_table(rows: Sequence[Sequence[str]], footer: str = "") -> str:
    colours = {"completed": "#1f4e9c", "failed": "#c0392b", "running": "#1e8449",
               "killed": "#8e44ad", "submitted": "#117a8b", "submitting": "#117a8b"}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            style = f' style="color:{colours[value]}"' if index == 1 and value in colours else ""
            cells.append(f"<td{style}>{html.escape(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    foot = f"<caption>{html.escape(footer)}</caption>" if footer else ""
    return f"<table>{foot}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
