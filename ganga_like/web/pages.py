"""The pages: the jobs list, a job (a master with its subjob table, or a leaf with the end
of its output), why it waits, the confirmation of an action, the hosts.

Each takes what ``reads`` read (``--json``'s shapes) and returns HTML; the rows and
pieces the live stream updates are rendered by the same functions (``job_row``,
``subjob_row``, ``history_rows``), so a page and its updates cannot disagree.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from ..model.table import counts_summary
from ..model.why import id_ranges
from ..status import ACTIVE
from .html import badge, cells, counts_bar, e, link, runtime, status_select, table
from .query import Listing
from .reads import Page, Row

ACTIONS = {
    "kill": ("Kill", "Its running and waiting work is stopped; in strict mode the kill is "
                     "recorded only once the backend confirms every process ended."),
    "resubmit": ("Resubmit", "Its failed subjobs (or, for a single job, the job) run again "
                             "as new attempts; the earlier attempts' output is replaced."),
    "remove": ("Remove", "It is killed first, then removed from the repository with its "
                         "workspace (output included). This cannot be undone."),
}


def _query(base: str, **params: object) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "", ())}
    return base + ("?" + urlencode(kept) if kept else "")


# --- the jobs list ---------------------------------------------------------------------------


def job_row(row: Row) -> str:
    fqid = str(row["fqid"])
    counts = row["subjobs"]
    assert isinstance(counts, dict)
    return cells(link(f"/jobs/{fqid}", fqid), e(row["name"]),
                 badge(str(row["status"]), f"status-{fqid}"),
                 counts_bar(counts, f"bar-{fqid}"), e(row["backend"]),
                 e(str(row["created"] or "")[:19].replace("T", " ")), runtime(row["runtime_s"]),
                 element_id=f"job-{fqid}")


def jobs_list(page: Page, q: Listing) -> str:
    status = ",".join(q.statuses)
    form = ('<form class="filters" method="get" action="/">'
            f'{status_select(q.statuses)}'
            f'<input type="search" name="name" placeholder="name, e.g. sim*" value="{e(q.name or "")}"'
            ' aria-label="name">'
            '<button type="submit">Filter</button></form>')
    rows = [job_row(r) for r in page.rows]
    which = _which(q)
    if page.total is not None:
        count = f"{len(rows)} of {page.total} jobs, newest first"
    else:
        count = f"{len(rows)} jobs {which}, newest first (read {page.read})"
    more = ""
    if page.next_cursor is not None:
        older = _query("/", status=status, name=q.name, before=page.next_cursor, limit=q.limit)
        what = "Older jobs" if not page.stopped_early else \
            f"Search on (stopped after reading {page.read} jobs)"
        more = f'<a class="more" rel="next" href="{e(older)}">{e(what)} →</a>'
    newest = "" if q.before is None else link(_query("/", status=status, name=q.name), "← Newest")
    return (f"<h1>Jobs</h1>{form}<p class=\"count\" id=\"count\">{e(count)}</p>"
            + table(["id", "name", "status", "subjobs", "backend", "created", "runtime"], rows,
                    element_id="jobs", empty=f"no jobs {which}".strip())
            + f'<p class="pager">{newest} {more}</p>')


def _which(q: Listing) -> str:
    words = []
    if q.statuses:
        words.append(f"with status {','.join(q.statuses)}")
    if q.name is not None:
        words.append(f"named {q.name!r}")
    return " ".join(words)


# --- a job -----------------------------------------------------------------------------------


def job_page(data: Row, subjobs: Page | None, q: Listing, log_lines: Sequence[str],
             peeks: Mapping[str, str]) -> str:
    fqid = str(data["fqid"])
    kind = "Subjob" if data["master"] else "Job"
    name = f" {data['name']!r}" if data["name"] else ""
    counts = data["subjobs"]
    assert isinstance(counts, dict)
    parts = [f"<h1>{e(kind)} {e(fqid)}{e(name)} {badge(str(data['status']), f'status-{fqid}')}</h1>",
             _actions(fqid, bool(data["master"]), str(data["status"])), _facts(data)]
    if data["master"]:
        parts.append(f'<p>Part of {link("/jobs/" + str(data["master"]), "job " + str(data["master"]))}</p>')
    if counts:
        parts.append(f"<h2>Subjobs</h2>{counts_bar(counts, f'bar-{fqid}')}")
        if counts.get("submitting") or counts.get("submitted"):
            parts.append(f'<p>{link(f"/jobs/{fqid}/why", "Why are subjobs waiting?")}</p>')
    elif data["status"] in ("submitting", "submitted"):
        parts.append(f'<p>{link(f"/jobs/{fqid}/why", "Why is it waiting?")}</p>')
    if subjobs is not None:
        parts.append(subjob_section(fqid, subjobs, q))
    for file, text in peeks.items():
        parts.append(f"<h2>{e(file)}</h2>" + peek_block(fqid, file, text))
    parts.append("<h2>History</h2>" + table(["time", "change", "source", "cause", "note"],
                                            history_rows(data["history"]), element_id="history",
                                            empty="no status change yet"))
    parts.append("<h2>Queue log</h2>" + (
        f'<pre class="log">{e(chr(10).join(log_lines))}</pre>' if log_lines else
        "<p>no line about this job among the log's last lines</p>"))
    parts.append(f'<p>{link(f"/jobs/{fqid}/configuration", "The whole configuration")} '
                 f'(as <code>print(j)</code> shows it)</p>')
    return "".join(parts)


def _facts(data: Row) -> str:
    facts = [("backend", data["backend"]), ("application", data["application"]),
             ("exit code", data["exit_code"]), ("detail", data["backend_detail"]),
             ("note", data["backend_note"]), ("reason", data["reason"]),
             ("created", str(data["created"] or "")[:19].replace("T", " ")),
             ("runtime", runtime(data["runtime_s"]) or None), ("workdir", data["workdir"])]
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts if v not in (None, ""))
    return f'<dl class="facts" id="facts-{e(data["fqid"])}">{items}</dl>'


def _actions(fqid: str, is_subjob: bool, status: str) -> str:
    """The actions that apply now (another one's address still asks, and the verb says no)."""
    active = status in {s.value for s in ACTIVE}
    verbs = (["kill"] if active else ["resubmit"]) + ([] if is_subjob else ["remove"])
    links = "".join(f'<a class="button {v}" href="/jobs/{e(fqid)}/{v}">{e(ACTIONS[v][0])}…</a>'
                    for v in verbs)
    return f'<p class="actions">{links}</p>'


def subjob_row(row: Row) -> str:
    fqid = str(row["fqid"])
    exit_code = "" if row["exit_code"] is None else str(row["exit_code"])
    args = row.get("args") or []
    assert isinstance(args, list)
    return cells(link(f"/jobs/{fqid}", fqid), badge(str(row["status"])), e(exit_code),
                 e(row["backend_detail"]), f'<span class="args">{e(shlex.join(map(str, args)))}</span>',
                 e(row["reason"]), element_id=f"sub-{fqid}")


def subjob_section(fqid: str, page: Page, q: Listing) -> str:
    status = ",".join(q.statuses)
    form = (f'<form class="filters" method="get" action="/jobs/{e(fqid)}">'
            f'{status_select(q.statuses)}<button type="submit">Filter</button></form>')
    shown = len(page.rows)
    if q.statuses:
        count = f"{shown} of the {page.total} subjobs {_which(q)}"
    elif page.rows:
        first, last = page.rows[0]["id"], page.rows[-1]["id"]
        count = f"subjobs {fqid}.{first} to {fqid}.{last} of {page.total}"
    else:
        count = "no subjobs"
    pager = []
    if not q.statuses and q.after is None:
        number = q.page or 1
        pages = max(1, -(-int(page.total or 0) // q.limit))
        if number > 1:
            pager.append(link(_query(f"/jobs/{fqid}", page=number - 1, limit=q.limit), "← Previous"))
        pager.append(f"<span>page {number} of {pages}</span>")
        if number < pages:
            pager.append(link(_query(f"/jobs/{fqid}", page=number + 1, limit=q.limit), "Next →"))
    elif page.next_cursor is not None:
        if q.after is not None:
            pager.append(link(_query(f"/jobs/{fqid}", status=status, limit=q.limit), "← First"))
        what = "Next →" if not page.stopped_early else f"Search on (read {page.read}) →"
        pager.append(link(_query(f"/jobs/{fqid}", status=status, after=page.next_cursor,
                                 limit=q.limit), what))
    return (form + f'<p class="count">{e(count)}</p>'
            + table(["id", "status", "exit", "detail", "args", "reason"],
                    [subjob_row(r) for r in page.rows], element_id="subjobs",
                    empty=f"no subjobs {_which(q)}".strip())
            + f'<p class="pager">{" ".join(pager)}</p>')


def history_rows(history: object) -> list[str]:
    assert isinstance(history, list)
    rows = []
    for entry in reversed(history):
        rows.append(cells(e(str(entry["time"] or "")[:19].replace("T", " ")),
                          f'{e(entry["from"])} → {badge(str(entry["to"]))}', e(entry["source"]),
                          e(entry["cause"] or ""), e(entry["note"])))
    return rows


def peek_block(fqid: str, file: str, text: str) -> str:
    return f'<pre class="peek" id="peek-{e(fqid)}-{e(file)}">{e(text) or "(empty)"}</pre>'


def configuration_page(fqid: str, tree: str) -> str:
    return f"<h1>Configuration of {link('/jobs/' + fqid, 'job ' + fqid)}</h1><pre>{e(tree)}</pre>"


# --- why, actions, hosts -------------------------------------------------------------------


def why_page(report: Mapping[str, object]) -> str:
    fqid = str(report["id"])
    reasons = report["reasons"]
    assert isinstance(reasons, list)
    rows = [cells(e(r["code"]), e(r["note"]), e(r["count"]), e(id_ranges(r["subjobs"])))
            for r in reasons]
    title = f"<h1>Why: {link('/jobs/' + fqid, 'job ' + fqid)}</h1>"
    return (title + f'<p class="summary">{e(report["summary"])}</p>'
            + (table(["reason", "in words", "subjobs", "which"], rows) if rows else ""))


def confirm_page(fqid: str, verb: str, data: Row, csrf: str) -> str:
    title, consequence = ACTIONS[verb]
    counts = data["subjobs"]
    assert isinstance(counts, dict)
    now = f"It is {data['status']}" + (f" ({counts_summary(counts)})." if counts else ".")
    return (f"<h1>{e(title)} job {e(fqid)}?</h1><p>{e(now)}</p><p>{e(consequence)}</p>"
            f'<form method="post" action="/jobs/{e(fqid)}/{e(verb)}" class="confirm">'
            f'<input type="hidden" name="_csrf" value="{e(csrf)}">'
            f'<button type="submit" class="danger">{e(title)} job {e(fqid)}</button> '
            f'{link("/jobs/" + fqid, "Cancel")}</form>')


def hosts_page(hosts: list[dict[str, object]] | None, refusal: str = "") -> str:
    """The Hosts backend's hosts (the ``hosts`` verb's records, ``hosts --json``'s rows),
    one column per field in the order the records give them."""
    if refusal:
        return f'<h1>Hosts</h1><p class="notice error">{e(refusal)}</p>'
    if hosts is None:
        return ("<h1>Hosts</h1><p>The Hosts backend's host listing shows here once the service "
                "can list hosts (its <code>hosts</code> verb).</p>")
    keys: list[str] = []
    for host in hosts:
        keys += [k for k in host if k not in keys]
    rows = [cells(*[e(_plain(h.get(k, ""))) for k in keys]) for h in hosts]
    return "<h1>Hosts</h1>" + table(keys, rows, empty="no hosts")


def _plain(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def error_page(status: int, message: str) -> str:
    return f'<h1>{e(status)}</h1><p class="notice error" role="alert">{e(message)}</p>' \
           f'<p>{link("/", "All jobs")}</p>'


__all__ = ["ACTIONS", "configuration_page", "confirm_page", "error_page", "history_rows",
           "hosts_page", "job_page", "job_row", "jobs_list", "peek_block", "subjob_row", "why_page"]
