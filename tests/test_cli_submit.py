"""``ganga-like submit -- CMD`` and ``peek --follow`` (issue 20, point 13), as people of
HTCondor and Slurm expect them from the shell; one service for the module's cases."""

from __future__ import annotations

import json
import time

import pytest

from tests.test_cli import finish_root, one_line, run_gl


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("submit") / "gl"
    yield root
    finish_root(root, what="the submit command's service")


def gl(root, *args, **kwargs):
    return run_gl(root, *args, check_clean=False, **kwargs)


def test_submit_runs_a_command_and_waits_if_asked(root):
    plain = gl(root, "submit", "--name", "hello", "--", "/bin/echo", "hello", "world")
    assert plain.returncode == 0, plain.stderr
    fqid = plain.stdout.split(":")[0]
    assert gl(root, "wait", fqid).stdout.strip() == f"{fqid}: completed"
    assert gl(root, "peek", fqid).stdout == "hello world\n"
    shown = json.loads(gl(root, "jobs", "--json").stdout)
    assert [row["name"] for row in shown if row["fqid"] == fqid] == ["hello"]
    failed = gl(root, "submit", "--wait", "--", "/bin/sh", "-c", "exit 3")
    assert failed.returncode == 3 and failed.stdout.strip().endswith(": failed (exit 3)")


def test_split_makes_one_subjob_per_line_of_the_file(root, tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("a 1\n# a comment\n\nb 'two words'\n")
    made = gl(root, "submit", "--split", str(rows), "--wait", "--json", "--", "/bin/echo", "x")
    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)
    assert data["status"] == "completed" and data["subjobs"] == {"completed": 2}
    assert gl(root, "peek", f"{data['fqid']}.0").stdout == "x a 1\n"
    assert gl(root, "peek", f"{data['fqid']}.1").stdout == "x b two words\n"
    # A master's output is its subjobs': the command names commands, not Python.
    master = gl(root, "peek", data["fqid"])
    assert master.returncode == 2 and f"ganga-like peek {data['fqid']}.0" in one_line(master.stderr)


@pytest.mark.parametrize(("args", "words", "code"), [
    (["--"], "no command given", 2),
    ([], "no command given", 2),
    (["--split", "/no/such/file", "--", "echo"], "--split '/no/such/file'", 2),
    (["--", "sleep 6"], "contains white space", 1),
])
def test_bad_input_is_one_line(root, args, words, code):
    result = gl(root, "submit", *args)
    assert result.returncode == code, result.stderr
    assert words in one_line(result.stderr)


def test_peek_follow_prints_lines_as_they_come_until_the_job_ends(root):
    made = gl(root, "submit", "--", "/bin/sh", "-c", "for i in 1 2 3; do echo line $i; sleep 1; done")
    fqid = made.stdout.split(":")[0]
    started = time.monotonic()
    followed = gl(root, "peek", fqid, "--follow", timeout=60)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "line 1\nline 2\nline 3\n"
    assert time.monotonic() - started >= 1.5  # it followed the run, not a finished file
