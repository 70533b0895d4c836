"""The documentation stays true: the status table is generated, the examples run.

* ``docs/concepts.md`` holds the transition table between ``<!-- status-table:begin -->``
  and ``<!-- status-table:end -->``; it must equal ``ganga_like.status.table_markdown()``.
  Regenerate it with ``.venv/bin/python tests/test_docs.py --write-status-table``.
* A fenced ```python block directly preceded by a ``<!-- test -->`` line is runnable.
  All runnable blocks run in ONE ``ganga-like run`` subprocess (one local Ray) with a
  temporary GANGA_LIKE_DIR; the blocks of a page share a namespace, in page order, as a
  reader typing them in one session would; each page starts with a fresh one. Blocks
  must not rely on job ids (pages share the repository).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
CONCEPTS = DOCS / "concepts.md"
BEGIN, END = "<!-- status-table:begin -->", "<!-- status-table:end -->"
TEST_MARK = "<!-- test -->"
BLOCK = re.compile(r"^" + re.escape(TEST_MARK) + r"[ \t]*\n```python[ \t]*\n(.*?)^```[ \t]*$",
                   re.M | re.S)


def runnable_blocks() -> list[tuple[str, int, str]]:
    """(page, line, code) for every runnable block under docs/."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start(1)) + 1
            found.append((page.name, line, match.group(1)))
    return found


def _table_in(text: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip()


def write_status_table() -> None:
    from ganga_like.status import table_markdown

    text = CONCEPTS.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    CONCEPTS.write_text(text[:start] + "\n" + table_markdown() + "\n" + text[end:])


def test_status_table_is_generated_from_the_code():
    from ganga_like.status import table_markdown

    assert _table_in(CONCEPTS.read_text()) == table_markdown().strip(), (
        "docs/concepts.md's status table is out of date: run "
        ".venv/bin/python tests/test_docs.py --write-status-table")


def test_the_docs_exist_and_have_runnable_code():
    for name in ("quickstart.md", "concepts.md", "backends.md", "strict-relaxed.md",
                 "administration.md", "from-ganga.md"):
        assert (DOCS / name).is_file(), name
    assert len(runnable_blocks()) >= 5


def test_relative_links_resolve():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name}: broken link {target}"


DRIVER = r'''
import json, sys, time, traceback
import ganga_like.gpi as gpi

blocks = json.load(open(sys.argv[1]))
namespaces = {}
for page, line, code in blocks:
    namespace = namespaces.setdefault(page, {"__name__": "__main__"})
    print(f"=== BEGIN {page}:{line}", flush=True)
    try:
        exec(compile(code, f"{page}:{line}", "exec"), namespace)
        outcome = "OK"
    except BaseException as error:
        traceback.print_exc(file=sys.stdout)
        outcome = f"FAIL {error!r}"
    print(f"=== END {page}:{line} {outcome}", flush=True)
'''


@pytest.fixture(scope="module")
def block_results(tmp_path_factory):
    import json

    from tests.test_cli import run_gl

    base = tmp_path_factory.mktemp("docs")
    (base / "blocks.json").write_text(json.dumps(runnable_blocks()))
    (base / "driver.py").write_text(DRIVER)
    result = run_gl(base / "gl", "run", str(base / "driver.py"), str(base / "blocks.json"),
                    timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    found = {}
    for match in re.finditer(r"=== BEGIN (\S+)\n(.*?)=== END \1 (OK|FAIL[^\n]*)", result.stdout,
                             re.S):
        found[match.group(1)] = (match.group(3), match.group(2))
    return found


@pytest.mark.parametrize("page,line", [(p, n) for p, n, _ in runnable_blocks()],
                         ids=[f"{p}:{n}" for p, n, _ in runnable_blocks()])
def test_runnable_block(block_results, page, line):
    outcome, output = block_results[f"{page}:{line}"]
    assert outcome == "OK", f"docs/{page} line {line}: {outcome}\n{output}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-status-table"]:
        write_status_table()
        print(f"rewrote the status table in {CONCEPTS}")
    else:
        print("usage: python tests/test_docs.py --write-status-table", file=sys.stderr)
        sys.exit(2)
