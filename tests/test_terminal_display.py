"""What the shell's prompt shows (issue 20, points 5 and 6, and 13's word on leaving), on a
real IPython on a pty: a verb's value is one line, a list of jobs one table, a job alone
its whole tree, ``j.subjobs`` a table that says how to see the rest; leaving with jobs
still active says they go on. One service (a root of this module's own) for every case."""

from __future__ import annotations

import re

import pexpect
import pytest

from tests.test_cli import GANGA_LIKE, REPO, finish_root, gl_env, run_gl
from tests.test_terminal import ANSI, prompt

MAKE = """\
mixed = Job(name='mixed', application=Executable(exe='/bin/sh'),
            splitter=ArgSplitter(args=[['-c', 'exit $0', str(3 if i % 7 == 0 else 0)]
                                       for i in range(50)]))
mixed.submit(); mixed.wait(timeout=120)
Job(name='sleeper', application=Executable(exe='/bin/sleep', args=['600'])).submit()
"""


@pytest.fixture(scope="module")
def display_root(tmp_path_factory):
    """Job 0: 'mixed', 50 subjobs, 8 of them failed (exit 3); job 1: 'sleeper', running
    (sleep 600), killed at the end."""
    root = tmp_path_factory.mktemp("display") / "gl"
    script = root.parent / "make.py"
    script.write_text(MAKE)
    made = run_gl(root, "run", str(script), check_clean=False, timeout=180)
    try:
        assert made.returncode == 0, made.stderr
        yield root
    finally:
        run_gl(root, "kill", "1", check_clean=False)
        run_gl(root, "wait", "2", "--timeout", "60", check_clean=False)  # the shell's own job
        finish_root(root, what="the display tests' service")


@pytest.fixture(scope="module")
def shell(display_root):
    """One IPython session (``ganga-like`` with no command) for the module's cases, in order."""
    child = pexpect.spawn(GANGA_LIKE[0], list(GANGA_LIKE[1:]), env=gl_env(display_root),
                          cwd=str(REPO), encoding="utf-8", timeout=90, dimensions=(60, 200))
    child.expect(prompt(1))
    child.count = 1
    try:
        yield child
    finally:
        child.close(force=True)


def at_prompt(child, line: str) -> list[str]:
    """Type ``line`` at the prompt; the lines shown before the next prompt (colours, the
    echoed input and blank lines taken out, ``Out[n]:`` dropped)."""
    child.sendline(line)
    child.count += 1
    child.expect(prompt(child.count))
    text = ANSI.sub("", child.before).replace("\r\n", "\n")
    lines = [part.rsplit("\r", 1)[-1].rstrip() for part in text.split("\n")]
    return [re.sub(r"^Out\[\d+\]: ?", "", shown) for shown in lines
            if shown.strip() and shown.strip() != line and not shown.startswith("In [")
            and not re.fullmatch(r"Out\[\d+\]:", shown)]


def test_submit_shows_one_line(shell):
    assert at_prompt(shell, "j = Job(application=Executable(exe='/bin/true'), "
                            "splitter=ArgSplitter(args=[[str(i)] for i in range(50)]))") == []
    shown = at_prompt(shell, "j.submit()")
    assert shown == ["job 2 submitted: 50 subjobs"], shown
    value = f"Out[{shell.count - 1}]"  # what submit() returned: Ganga's 1, and the job
    assert at_prompt(shell, f"{value} == 1 and {value}.job is j") == ["True"]


def test_a_list_of_jobs_is_one_table_and_printed_a_list_of_lines(shell):
    shown = at_prompt(shell, "[jobs(0), jobs(1)]")
    assert shown[0].split() == ["fqid", "status", "name", "subjobs", "runtime", "application",
                                "backend", "comment"], shown
    assert set(shown[1]) == {"-"} and len(shown) == 5 and shown[-1] == "2 jobs", shown
    assert shown[2].split()[:4] == ["0", "failed", "mixed", "failed:8"], shown
    assert "completed:42" in shown[2]  # no count cut
    assert shown[3].split()[:3] == ["1", "running", "sleeper"], shown
    printed = at_prompt(shell, "print([jobs(0), jobs(1)])")
    assert printed == ["[<Job 0 'mixed': failed, 50 subjobs (failed:8 completed:42)>, "
                       "<Job 1 'sleeper': running>]"], printed


def test_a_job_alone_is_its_whole_tree(shell):
    shown = at_prompt(shell, "jobs(0)")
    assert shown[0] == "Job (" and shown[-1] == ")", shown
    assert "  subjobs = '50 subjobs: failed:8 completed:42 (j.subjobs lists them)'" in shown
    assert any(line.strip().startswith("application = Executable (") for line in shown)


def test_the_subjobs_table_has_their_columns_and_says_how_to_see_the_rest(shell):
    shown = at_prompt(shell, "jobs(0).subjobs")
    assert shown[0].split() == ["fqid", "status", "exit", "detail", "args", "reason"], shown
    rows = shown[2:-2]
    assert len(rows) == 20 and rows[0].split()[:4] == ["0.0", "failed", "3", "Done"], rows
    assert rows[1].split()[:3] == ["0.1", "completed", "0"] and "-c 'exit $0' 0" in rows[1]
    assert shown[-2] == "the first 20 of 50 subjobs: failed:8 completed:42", shown
    assert shown[-1] == ("the rest: jobs(0).subjobs[20:]; by status: "
                         "jobs(0).subjobs.select(status='failed')"), shown
    rest = at_prompt(shell, "jobs(0).subjobs[20:]")
    assert len(rest) == 2 + 30 + 1 and rest[-1] == "30 subjobs", rest


def test_jobs_counts_in_the_singular_and_plural(shell):
    assert at_prompt(shell, "jobs")[-1] == "3 jobs"
    assert at_prompt(shell, "jobs.select(name='sleep*')")[-1] == "1 job"


def test_leaving_with_active_jobs_says_they_go_on(shell):
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    text = ANSI.sub("", shell.before).replace("\r", "")
    said = [line for line in text.split("\n") if "still active" in line]
    assert len(said) == 1 and re.fullmatch(
        r"1 job of this repository is still active: the service goes on running it "
        r"\(`ganga-like jobs` shows it\)|"
        r"\d+ jobs of this repository are still active: the service goes on running them "
        r"\(`ganga-like jobs` shows them\)", said[0]), text
