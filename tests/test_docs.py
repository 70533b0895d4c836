"""The documentation stays true: the status table is generated, the examples run, and
every output a page shows is compared with what the code really prints.

Pages: ``README.md`` and ``docs/*.md``.

* ``docs/concepts.md`` holds the transition table between ``<!-- status-table:begin -->``
  and ``<!-- status-table:end -->``; it must equal ``ganga_like.status.table_markdown()``.
  Regenerate it with ``.venv/bin/python tests/test_docs.py --write-status-table``.

* **Runnable blocks.** A fenced ```python or ```console block directly preceded by a
  ``<!-- test -->`` line is run. All runnable blocks run in ONE ``ganga-like run``
  subprocess (one service, one local Ray) with a temporary GANGA_LIKE_DIR; the python
  blocks of a page share a namespace, in page order, as a reader typing them in one
  session would; each page starts with a fresh one. Pages share the repository, so a
  block names jobs by relative id (``-1``: the newest) or shows ids as ``<id>``.

  - python: run statement by statement. A statement whose last line ends with
    ``# -> TEXT`` must print TEXT (one line; the statement's whole stdout).
  - console: ``$ COMMAND`` lines run in bash (``ganga-like`` on PATH, the repository's
    GANGA_LIKE_DIR); the lines below a command, up to the next ``$``, are its output
    (stdout and stderr together); a last line ``[N]`` is its exit status (none: 0).

* **Output blocks.** A ```text block that follows a runnable block, with only blank
  lines between, is that block's whole output and must match it.

* **What is compared, and how.** Each line of the expected text must match the
  actual line in full, after these normalisations, and only these (what truly varies
  between runs):

  - actual output: the repository's path is written ``~/gangalike`` (its default);
    trailing spaces and trailing empty lines are dropped;
  - expected text may say ``<id>`` (a job or subjob id: ``3``, ``3.14``), ``<n>``
    (any whole number: counts, pids, exit codes that vary), ``<seconds>`` (a duration
    such as ``4.17``), ``<timestamp>`` (``2026-01-31 14:02:07``, ISO forms too),
    ``<host>`` (one word), ``...`` inside a line (anything on that line), and a line
    that is just ``...`` (any number of lines, none included). Anything else is literal.

* **Nothing shown goes unchecked.** ``# ->`` appears only in runnable blocks; a
  ```text block right after a python or console block belongs to a runnable block; a
  runnable python block's every ``print`` has a ``# ->`` or the block an output block.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import early

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
CONCEPTS = DOCS / "concepts.md"
BEGIN, END = "<!-- status-table:begin -->", "<!-- status-table:end -->"
TEST_MARK = "<!-- test -->"
FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
ARROW = re.compile(r"#\s*->\s?(.*?)\s*$")


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def page_name(page: Path) -> str:
    return page.name if page.parent == DOCS else page.relative_to(REPO).as_posix()


def fenced_blocks(text: str) -> list[dict]:
    """Every fenced block of a page: language, code, line, runnable, and the output
    block that follows it (if any)."""
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        blocks.append({"lang": match.group(1), "code": match.group(2),
                       "line": text.count("\n", 0, match.start(2)) + 1,
                       "start": match.start(), "end": match.end(),
                       "runnable": before.strip() == TEST_MARK, "output": None})
    for block, following in zip(blocks, blocks[1:], strict=False):  # each with the next: the last has none
        between = text[block["end"]: following["start"]]
        if following["lang"] == "text" and between.strip() == "" and \
                block["lang"] in ("python", "console"):
            block["output"] = following
            following["is_output"] = True
    return blocks


def runnable_blocks() -> list[tuple[str, int, str, str]]:
    """(page, line, language, code) for every runnable block."""
    found = []
    for page in pages():
        for block in fenced_blocks(page.read_text()):
            if block["runnable"] and block["lang"] in ("python", "console"):
                found.append((page_name(page), block["line"], block["lang"], block["code"]))
    return found


def _block(page: str, line: int) -> dict:
    path = REPO / page if "/" in page or page == "README.md" else DOCS / page
    return next(b for b in fenced_blocks(path.read_text()) if b["line"] == line)


# --- comparing -------------------------------------------------------------------------

PLACEHOLDERS = {
    "<id>": r"\d+(?:\.\d+)?",
    "<n>": r"-?\d+",
    "<seconds>": r"\d+(?:\.\d+)?",
    "<timestamp>": r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:[+-]\d\d:?\d\d)?",
    "<host>": r"\S+",
    "...": r".*?",
}
TOKEN = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))


def _line_pattern(expected: str) -> str:
    out, pos = [], 0
    for match in TOKEN.finditer(expected):
        out.append(re.escape(expected[pos:match.start()]))
        out.append(PLACEHOLDERS[match.group(0)])
        pos = match.end()
    out.append(re.escape(expected[pos:]))
    return "".join(out)


def normalise(actual: str, root: str) -> str:
    text = actual.replace(root, "~/gangalike") if root else actual
    lines = [line.rstrip() for line in text.replace("\r", "\n").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` (normalised) is what ``expected`` shows (see the docstring)."""
    lines = [line.rstrip() for line in expected.strip("\n").splitlines()]
    pattern = "".join("(?:.*\n)*?" if line.strip() == "..." else _line_pattern(line) + "\n"
                        for line in lines)
    return re.fullmatch(pattern, actual + "\n" if actual else "") is not None


def test_matching_rules():
    assert matches("job <id>: completed in <seconds> s", "job 12: completed in 4.17 s")
    assert not matches("job <id>: completed", "job 12: failed")
    assert matches("a\n...\nz", "a\nb\nc\nz") and matches("a\n...\nz", "a\nz")
    assert not matches("a\nz", "a\nb\nz")
    assert matches("x <id> ... end", "x 3.14 anything at all end")
    assert not matches("[1]", "1") and matches("<Status.COMPLETED: 'x'>", "<Status.COMPLETED: 'x'>")
    assert normalise("/r/gl/workspace/3  \n\n", "/r/gl") == "~/gangalike/workspace/3"


# --- the page rules ----------------------------------------------------------------------


def _prints_without_arrow(code: str) -> list[int]:
    """Lines of top-level statements that print but say nothing of what."""
    tree = ast.parse(code)
    lines = code.splitlines()
    missing = []
    for node in tree.body:
        prints = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                     and n.func.id == "print" for n in ast.walk(node))
        if prints and not ARROW.search(lines[node.end_lineno - 1]):
            missing.append(node.lineno)
    return missing


def test_every_shown_output_is_compared():
    problems = []
    for page in pages():
        name = page_name(page)
        blocks = fenced_blocks(page.read_text())
        for block in blocks:
            where = f"{name}:{block['line']}"
            if block.get("is_output"):
                continue
            if not block["runnable"]:
                if block["lang"] == "python" and any(ARROW.search(line)
                                                     for line in block["code"].splitlines()):
                    problems.append(f"{where}: '# ->' in a block that is not run "
                                    f"(mark it {TEST_MARK})")
                if block["output"] is not None:
                    problems.append(f"{where}: shows output but is not run (mark it {TEST_MARK})")
                continue
            if block["lang"] == "python" and block["output"] is None:
                for line in _prints_without_arrow(block["code"]):
                    problems.append(f"{where}: the print at line {block['line'] + line - 1} "
                                    f"shows nothing to compare ('# -> ...' or a ```text block)")
    assert not problems, "\n".join(problems)


def test_the_docs_exist_and_have_runnable_code():
    for name in ("quickstart.md", "concepts.md", "backends.md", "strict-relaxed.md",
                 "administration.md", "from-ganga.md"):
        assert (DOCS / name).is_file(), name
    assert len(runnable_blocks()) >= 5
    assert any(lang == "console" for _, _, lang, _ in runnable_blocks())


def test_relative_links_resolve():
    for page in pages():
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page_name(page)}: broken link {target}"


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


# --- running the blocks --------------------------------------------------------------------

DRIVER = r'''
import ast, contextlib, io, json, os, subprocess, sys, traceback
import ganga_like.gpi as gpi

blocks = json.load(open(sys.argv[1]))
results = {}
namespaces = {}
env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])


class Tee(io.StringIO):
    def __init__(self, *streams):
        super().__init__()
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
        return len(text)


def run_python(page, line, code):
    namespace = namespaces.setdefault(page, {"__name__": "__main__"})
    whole, statements = io.StringIO(), []
    tree = ast.parse(code)
    for node in tree.body:
        mine = io.StringIO()
        with contextlib.redirect_stdout(Tee(mine, whole)):
            exec(compile(ast.Module([node], []), f"{page}:{line}", "exec"), namespace)
        statements.append([node.end_lineno, mine.getvalue()])
    return whole.getvalue(), statements


def run_console(code):
    commands, whole = [], []
    for text in code.splitlines():
        if not text.startswith("$ "):
            continue
        done = subprocess.run(text[2:], shell=True, executable="/bin/bash", env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=120)
        commands.append([text[2:], done.stdout, done.returncode])
    return commands


for page, line, lang, code in blocks:
    key = f"{page}:{line}"
    result = {"outcome": "OK", "output": "", "statements": [], "commands": []}
    try:
        if lang == "python":
            result["output"], result["statements"] = run_python(page, line, code)
        else:
            result["commands"] = run_console(code)
    except BaseException as error:
        result["outcome"] = f"FAIL {error!r}\n{traceback.format_exc()}"
    results[key] = result
json.dump({"root": os.path.realpath(os.environ["GANGA_LIKE_DIR"]),
           "given_root": os.environ["GANGA_LIKE_DIR"], "results": results},
          open(sys.argv[2], "w"))
'''


@early.launcher("block_results")
def launch_blocks(factory: pytest.TempPathFactory) -> early.Launched:
    """Every runnable block, in one ``ganga-like run`` of :data:`DRIVER` (a new user's
    environment, its own root); read by :func:`block_results`."""
    from tests.test_cli import GANGA_LIKE, finish_root, gl_env

    base = factory.mktemp("docs")
    (base / "blocks.json").write_text(json.dumps(runnable_blocks()))
    (base / "driver.py").write_text(DRIVER)
    proc = subprocess.Popen([*GANGA_LIKE, "run", str(base / "driver.py"), str(base / "blocks.json"),
                             str(base / "results.json")], env=gl_env(base / "gl"), cwd=str(REPO),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def read(output: str) -> dict:
        try:
            assert proc.returncode == 0, output[-3000:]
            return json.loads((base / "results.json").read_text())
        finally:
            finish_root(base / "gl", what="the docs' blocks")

    return early.Launched(proc, 400, read)


@pytest.fixture(scope="module")
def block_results(tmp_path_factory):
    return early.launched("block_results", tmp_path_factory).finish()


def _norm(text: str, found: dict) -> str:
    return normalise(normalise(text, found["root"]), found["given_root"])


def _console_expectations(code: str) -> list[tuple[str, str, int]]:
    """(command, expected output, expected exit status) of a console block."""
    found: list[list] = []
    for text in code.splitlines():
        if text.startswith("$ "):
            found.append([text[2:], [], 0])
        elif found:
            status = re.fullmatch(r"\[(\d+)\]", text.strip())
            if status:
                found[-1][2] = int(status.group(1))
            else:
                found[-1][1].append(text)
    return [(cmd, "\n".join(lines), status) for cmd, lines, status in found]


@pytest.mark.parametrize("page,line,lang", [(p, n, lang) for p, n, lang, _ in runnable_blocks()],
                         ids=[f"{p}:{n}" for p, n, _, _ in runnable_blocks()])
def test_runnable_block(block_results, page, line, lang):
    result = block_results["results"][f"{page}:{line}"]
    where = f"{page} line {line}"
    assert result["outcome"] == "OK", f"{where}: {result['outcome']}\n{result['output']}"
    block = _block(page, line)
    problems = []
    if lang == "python":
        code_lines = block["code"].splitlines()
        for end_line, printed in result["statements"]:
            arrow = ARROW.search(code_lines[end_line - 1])
            if arrow and not matches(arrow.group(1), _norm(printed, block_results)):
                problems.append(f"line {line + end_line - 1}: shows {arrow.group(1)!r}, "
                                f"printed {_norm(printed, block_results)!r}")
        actual = result["output"]
    else:
        expected = _console_expectations(block["code"])
        assert [c for c, _, _ in expected] == [c for c, _, _ in result["commands"]]
        for (cmd, want, status), (_, got, code) in zip(expected, result["commands"], strict=True):
            got = _norm(got, block_results)
            if not matches(want, got):
                problems.append(f"$ {cmd}: shows\n{want}\n--- but printed\n{got}")
            if code != status:
                problems.append(f"$ {cmd}: exit status {code}, the page says {status}:\n{got}")
        actual = "".join(out for _, out, _ in result["commands"])
    if block["output"] is not None:
        want, got = block["output"]["code"], _norm(actual, block_results)
        if not matches(want, got):
            problems.append(f"its output block shows\n{want}\n--- but it printed\n{got}")
    assert not problems, f"{where}:\n" + "\n".join(problems)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-status-table"]:
        write_status_table()
        print(f"rewrote the status table in {CONCEPTS}")
    else:
        print("usage: python tests/test_docs.py --write-status-table", file=sys.stderr)
        sys.exit(2)
