"""Every script in examples/ runs for real, as a user would run it.

One ``ganga-like run`` driver runs them all in turn (one local Ray instead of one
per script): each script gets a fresh namespace holding only the GPI names, and its
``from ganga_like.gpi import *`` line is removed first, so this also checks that a
script needs no import under ``ganga-like run`` (as with ``ganga script.py``). One
script also runs under plain ``python``, where that import line provides the names.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import REPO, finish_root, gl_env, run_gl, stray_processes

EXAMPLES = REPO / "examples"
IMPORT_LINE = re.compile(r"^from ganga_like\.gpi import \*.*$", re.M)

DRIVER = r'''
import sys, time, traceback
import ganga_like.gpi as gpi

for path in sys.argv[1:]:
    source = open(path).read()
    stripped = __import__("re").sub(r"(?m)^from ganga_like\.gpi import \*.*$", "", source)
    namespace = {name: getattr(gpi, name) for name in gpi.__all__}
    namespace.update(__name__="__main__", __file__=path)
    print(f"=== BEGIN {path}", flush=True)
    started = time.monotonic()
    try:
        exec(compile(stripped, path, "exec"), namespace)
        outcome = "OK"
    except BaseException as error:  # SystemExit too: a script's own guard
        traceback.print_exc(file=sys.stdout)
        outcome = f"FAIL {error!r}"
    print(f"=== END {path} {outcome} {time.monotonic() - started:.1f}s", flush=True)
'''

# Lines each example must print (its story, checked loosely).
EXPECTED = {
    "hello.py": ["status: completed", "output: Hello World"],
    "split_args.py": ["subjobs: 4", "failed: ['0.2']", "exit code 3, stderr: first try",
                      "after resubmit: completed {'completed': 4}", "done flaky"],
    "generic_splitter.py": ["(generic-one): completed", "args=['green'] env={} -> green",
                            "(generic-multi): completed", "env={'COLOUR': 'magenta'} -> magenta two"],
    "templates_and_queries.py": ["templates: 1", "first: seed 0 completed",
                                 "(new): cannot submit: application.exe: /no/such/program does "
                                 "not exist; the job stays new", "still new",
                                 "newest: sim-failing", "new: ['sim-broken']",
                                 "failed: [('sim-failing', 'RUN_FAILED exit=3 | stderr: no luck')]"],
    "kill_and_remove.py": ["before kill: running", "after kill: killed",
                           "jobs named sleeper left: 0", "looking it up again: no job"],
}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.fixture(scope="module")
def examples_root(tmp_path_factory):
    """ONE root for the module: the examples make jobs of their own and read only those;
    its service is stopped, and nothing of it may be left, after the last test."""
    root = tmp_path_factory.mktemp("examples") / "gl"
    yield root
    finish_root(root, what="the examples' service")


@pytest.fixture(scope="module")
def driver_output(examples_root):
    driver = examples_root.parent / "driver.py"
    driver.write_text(DRIVER)
    # hello.py last: its polling loop is the slowest to give up if something is wrong.
    order = sorted(EXPECTED, key=lambda name: name == "hello.py")
    result = run_gl(examples_root, "run", str(driver), *[str(EXAMPLES / n) for n in order],
                    timeout=240, check_clean=False)
    assert result.returncode == 0, result.stderr[-3000:]
    sections = {}
    for match in re.finditer(r"=== BEGIN (\S+)\n(.*?)=== END \1 (OK|FAIL[^\n]*)", result.stdout,
                             re.S):
        sections[Path(match.group(1)).name] = (match.group(3), match.group(2))
    return sections


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example(driver_output, name):
    outcome, text = driver_output[name]
    assert outcome.startswith("OK"), f"{name}: {outcome}\n{text}"
    for line in EXPECTED[name]:
        assert line in text, f"{name}: missing {line!r} in:\n{text}"


def test_an_example_runs_under_plain_python(examples_root):
    """``python examples/generic_splitter.py``: the script's import gives the GPI; the
    process must exit cleanly (exit 0, no traceback) and leave nothing running. (It finds
    the module's service running; a first script that starts the service and exits is
    tests/service/test_ray_start.py's.)"""
    result = subprocess.run([sys.executable, str(EXAMPLES / "generic_splitter.py")],
                            env=gl_env(examples_root), text=True, capture_output=True, timeout=120)
    assert "(generic-multi): completed" in result.stdout, result.stderr[-3000:]
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    # The script's own processes are gone; only the service remains.
    strays = [s for s in stray_processes(examples_root, "") if "ganga_like.service.main" not in s]
    assert not strays, strays
