"""The one table from a subjob's status and backend detail to its BEX code, and the docs'
copies of it (docs/backends.md, generated: ``python tests/bex/test_bex_codes.py
--write-docs`` rewrites them)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ganga_like.backends.runtime import runs as rs
from ganga_like.bex import codes
from ganga_like.status import Status

DOCS = Path(__file__).resolve().parents[2] / "docs"
COPIES = [("<!-- bex-codes:begin -->", "<!-- bex-codes:end -->", codes.codes_markdown),
          ("<!-- bex-mapping:begin -->", "<!-- bex-mapping:end -->", codes.mapping_markdown)]
# The statuses a leaf can have (a master's derived removed/incomplete/template are not leaves').
LEAF_STATUSES = [s.value for s in Status if s not in (Status.REMOVED, Status.INCOMPLETE,
                                                       Status.TEMPLATE)]


@pytest.mark.parametrize("status", LEAF_STATUSES)
@pytest.mark.parametrize("detail", ["", *rs.DETAILS, rs.node_lost_detail(["n1"])])
def test_every_status_and_detail_has_exactly_one_code_among_the_seeds(status, detail):
    assert codes.code_for(status, detail) in codes.CODES


def test_the_codes_are_the_seeds_and_prep():
    seed = {"NEW", "NOPING", "NOXFER", "OK", "FAILED", "INTERR", "RUN", "SEND", "PING", "LOCKED",
            "INIT", "DONE"}
    assert set(codes.CODES) == seed | {"PREP"}
    # Host codes are never a job's: they appear as the host's lines of the log only.
    host_codes = {name for name, code in codes.CODES.items() if code.where == codes.HOST}
    assert host_codes == {"PING", "LOCKED", "INIT", "DONE"}
    assert not host_codes & set(codes.CODE_OF.values())
    assert set(codes.HOST_LINE_OF.values()) <= host_codes


@pytest.mark.parametrize(("status", "detail", "code"), [
    ("new", "", "NEW"), ("submitted", "Queued", "NEW"), ("submitted", "Verifying", "NEW"),
    ("submitted", "Starting", "SEND"), ("running", "Running", "RUN"),
    ("running", "Gathering", "RUN"), ("running", "Node lost: n1, payload state unknown", "NOPING"),
    ("running", codes.RUNNING_WITH_PREP, "PREP"), ("completing", "Running", "RUN"),
    ("completed", "Done", "OK"), ("failed", "Done", "FAILED"), ("failed", "Lost", "NOPING"),
    ("failed", "Starting", "NOXFER"), ("failed", "Queued", "NOXFER"), ("killed", "Killed", "FAILED"),
    ("unknown", "Running", "INTERR"),
])
def test_what_a_user_of_bex_reads_for_each_situation(status, detail, code):
    assert codes.code_for(status, detail) == code


def test_host_lines_say_what_the_host_does():
    assert codes.host_line_for("submitted", "Verifying") == "PING"
    assert codes.host_line_for("submitted", "Pending") == "LOCKED"
    assert codes.host_line_for("submitted", "Starting") == "INIT"
    assert codes.host_line_for("running", "Running") == ""


def test_a_status_the_table_does_not_cover_is_named_with_the_covered_ones():
    with pytest.raises(KeyError, match="no BEX code for status 'template'; the table covers: "):
        codes.code_for("template", "")


def _shown(text: str, begin: str, end: str) -> str:
    return text[text.index(begin) + len(begin):text.index(end)].strip()


@pytest.mark.parametrize(("begin", "end", "table"), COPIES, ids=["codes", "mapping"])
def test_the_docs_show_the_tables_from_the_code(begin, end, table):
    assert _shown((DOCS / "backends.md").read_text(), begin, end) == table(), (
        f"docs/backends.md's table between {begin} and {end} is out of date: run "
        ".venv/bin/python tests/bex/test_bex_codes.py --write-docs")


def write_docs() -> None:
    page = DOCS / "backends.md"
    for begin, end, table in COPIES:
        text = page.read_text()
        start, stop = text.index(begin) + len(begin), text.index(end)
        page.write_text(text[:start] + "\n" + table() + "\n" + text[stop:])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-docs"]:
        sys.exit("usage: python tests/bex/test_bex_codes.py --write-docs")
    write_docs()
