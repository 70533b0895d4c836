"""The pieces every page is made of: the layout, a status badge, the counts bar, tables.

Plain HTML, every value escaped here; no inline script or style (the pages' Content
Security Policy allows neither), so the counts bar is SVG whose sizes are attributes.
Each piece that changes while a page is open has an ``id``: the live stream sends that
piece again, rendered here, and the page's script swaps it in (one renderer, no copy
of it in JavaScript).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape

from ..model.table import counts_summary, duration
from ..status import MASTER_PRIORITY, Status

ORDER = [s.value for s in MASTER_PRIORITY] + [s.value for s in Status if s not in MASTER_PRIORITY]


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def layout(title: str, body: str, root: str, live: str = "", notice: str = "") -> str:
    """A whole page: the header with the navigation, an optional notice, the body. ``live``:
    the page's event stream, which the script follows."""
    live_attr = f' data-live="{e(live)}"' if live else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{e(title)} · ganga_like</title>"
        '<link rel="stylesheet" href="/static/style.css">'
        '<script src="/static/app.js" defer></script></head>'
        f"<body{live_attr}><header><a class=\"brand\" href=\"/\">ganga_like</a>"
        '<nav><a href="/">Jobs</a><a href="/hosts">Hosts</a></nav>'
        f'<span class="root" title="the repository">{e(root)}</span>'
        f'<span id="conn" class="conn">{"live" if live else ""}</span></header>'
        f"<main>{notice}{body}</main></body></html>")


def notice(text: str, error: bool = False) -> str:
    kind = "error" if error else "done"
    return f'<p class="notice {kind}" role="status">{e(text)}</p>' if text else ""


def badge(status: str, element_id: str = "") -> str:
    ident = f' id="{e(element_id)}"' if element_id else ""
    return f'<span{ident} class="badge st-{e(status)}">{e(status)}</span>'


def counts_bar(counts: Mapping[str, int], element_id: str = "") -> str:
    """The per-status counts as one bar (SVG, widths in per mille) and, under it, in words."""
    total = sum(counts.values())
    ident = f' id="{e(element_id)}"' if element_id else ""
    if not total:
        return f'<span{ident} class="counts"></span>'
    x = 0.0
    rects = []
    for status in ORDER:
        n = counts.get(status, 0)
        if n:
            width = 1000 * n / total
            rects.append(f'<rect class="st-{e(status)}" x="{x:.1f}" y="0" width="{width:.1f}" '
                         f'height="10"><title>{e(status)}: {n}</title></rect>')
            x += width
    words = counts_summary(dict(counts))
    return (f'<span{ident} class="counts"><svg class="bar" viewBox="0 0 1000 10" '
            f'preserveAspectRatio="none" role="img" aria-label="{e(words)}">{"".join(rects)}</svg>'
            f'<span class="words">{e(words)}</span></span>')


def table(headers: Sequence[str], rows: Iterable[str], element_id: str = "",
          empty: str = "nothing to show") -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"{tbody(rows, len(headers), element_id, empty)}</table></div>")


def tbody(rows: Iterable[str], columns: int, element_id: str = "", empty: str = "") -> str:
    """A table's body (what a live update swaps when rows come and go)."""
    body = "".join(rows)
    ident = f' id="{e(element_id)}"' if element_id else ""
    if not body:
        body = f'<tr class="empty"><td colspan="{columns}">{e(empty)}</td></tr>'
    return f"<tbody{ident}>{body}</tbody>"


def cells(*values: str, element_id: str = "") -> str:
    """A table row of cells already rendered (escape plain values with ``e``)."""
    ident = f' id="{e(element_id)}"' if element_id else ""
    return f"<tr{ident}>" + "".join(f"<td>{v}</td>" for v in values) + "</tr>"


def link(href: str, text: str) -> str:
    return f'<a href="{e(href)}">{e(text)}</a>'


def runtime(seconds: object) -> str:
    return e(duration(float(seconds))) if isinstance(seconds, (int, float)) else ""


def status_select(chosen: Sequence[str], name: str = "status") -> str:
    options = ['<option value="">any status</option>'] + [
        f'<option value="{e(s)}"{" selected" if list(chosen) == [s] else ""}>{e(s)}</option>'
        for s in ORDER if s != Status.TEMPLATE.value]
    return f'<select name="{e(name)}" aria-label="status">{"".join(options)}</select>'


__all__ = ["badge", "cells", "counts_bar", "e", "layout", "link", "notice", "runtime",
           "status_select", "table", "tbody"]
