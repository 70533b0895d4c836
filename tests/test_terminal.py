"""The command and the shell on a real terminal (issue 20, points 3 and 4): a pty, as a
user's terminal is. One service (a root of this module's own) runs a long job and a
finished one for every case; each case reads what the terminal shows."""

from __future__ import annotations

import json
import re

import pexpect
import pytest

from tests.test_cli import GANGA_LIKE, REPO, finish_root, gl_env, run_gl

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours and cursor moves of IPython's prompt


def prompt(number: int | str = r"\d+") -> re.Pattern[str]:
    """IPython's prompt ``In [n]: ``, coloured as it is on a terminal."""
    return re.compile(rf"In \[(?:\x1b\[[0-9;]*m)*{number}(?:\x1b\[[0-9;]*m)*\]: ")


@pytest.fixture(scope="module")
def terminal_root(tmp_path_factory):
    """A root with job 0 finished (echo) and job 1 running (sleep 600), killed at the end."""
    root = tmp_path_factory.mktemp("terminal") / "gl"
    made = run_gl(root, "jobs", check_clean=False)
    assert made.returncode == 0, made.stderr
    script = root.parent / "make.py"
    script.write_text("a = Job(application=Executable(exe='/bin/echo', args=['hi']))\n"
                      "a.submit(); a.wait(timeout=60)\n"
                      "Job(application=Executable(exe='/bin/sleep', args=['600'])).submit()\n")
    ran = run_gl(root, "run", str(script), check_clean=False)
    assert ran.returncode == 0, ran.stderr
    yield root
    run_gl(root, "kill", "1", check_clean=False)
    finish_root(root, what="the terminal tests' service")


def on_terminal(root, *args: str, timeout: float = 60) -> tuple[str, int]:
    """Run ``ganga-like ARGS`` on a pty; what the terminal shows, as lines (each as it
    reads once the carriage returns have drawn over it), and the exit status."""
    child = pexpect.spawn(GANGA_LIKE[0], list(GANGA_LIKE[1:]) + list(args), env=gl_env(root),
                          cwd=str(REPO), encoding="utf-8", timeout=timeout, dimensions=(40, 200))
    child.expect(pexpect.EOF)
    child.close()
    text = child.before.replace("\r\n", "\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n")), child.exitstatus


def test_a_timed_out_wait_names_its_timeout_and_ends_the_bar_line(terminal_root):
    shown, status = on_terminal(terminal_root, "wait", "1", "--timeout", "2")
    lines = shown.splitlines()
    assert status == 4, shown
    assert "1: running" in lines, shown  # on a line of its own, not after the bar
    assert any(line.startswith("ganga-like: timed out after 2 s; 1 still active") for line in lines), shown


def test_json_on_a_terminal_is_on_lines_of_its_own(terminal_root):
    shown, status = on_terminal(terminal_root, "wait", "1", "--timeout", "1", "--json")
    assert status == 4, shown
    data = json.loads(next(line for line in shown.splitlines() if line.startswith("{")))
    assert data["timed_out"] is True and data["jobs"][0]["status"] == "running"


def test_a_finished_jobs_bar_guesses_no_rate(terminal_root):
    shown, status = on_terminal(terminal_root, "wait", "0")
    assert status == 0, shown
    assert "0: completed" in shown.splitlines()
    assert "all done" in shown and "/s" not in shown and "left" not in shown, shown


def test_ctrl_c_in_a_shell_wait_is_one_line_and_the_session_goes_on(terminal_root):
    shell = pexpect.spawn(GANGA_LIKE[0], list(GANGA_LIKE[1:]), env=gl_env(terminal_root),
                          cwd=str(REPO), encoding="utf-8", timeout=60, dimensions=(40, 200))
    try:
        shell.expect(prompt(1))
        assert "Tip:" not in shell.before  # no random IPython tip in the banner
        shell.sendline("j = jobs(1); j.wait()")
        shell.expect_exact("j.wait()")
        shell.expect(pexpect.TIMEOUT, timeout=1.5)  # waiting on the running job
        shell.sendintr()
        shell.expect(prompt(2))  # the next prompt: what came between is the interrupt's
        shown = [line for line in ANSI.sub("", shell.before).replace("\r", "").split("\n")
                 if line.strip() and not line.startswith("In [")]  # (the input, redrawn)
        assert len(shown) == 1 and shown[0].endswith(
            "KeyboardInterrupt: interrupted here only: the service carries on with what it "
            "was asked, and the jobs go on"), shown
        shell.sendline("print('status is', j.status)")
        shell.expect(r"status is (\w+)")
        assert shell.match.group(1) == "running"
        shell.expect(prompt(3))
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)


def test_ctrl_c_in_a_commands_wait_says_what_goes_on_and_exits_130(terminal_root):
    command = pexpect.spawn(GANGA_LIKE[0], list(GANGA_LIKE[1:]) + ["wait", "1"], env=gl_env(terminal_root),
                            cwd=str(REPO), encoding="utf-8", timeout=60, dimensions=(40, 200))
    try:
        command.expect(pexpect.TIMEOUT, timeout=1.5)  # waiting on the running job
        command.sendintr()
        command.expect(pexpect.EOF)
    finally:
        command.close(force=True)
    shown = [line.rsplit("\r", 1)[-1] for line in command.before.replace("\r\n", "\n").split("\n")]
    assert command.exitstatus == 130, (command.exitstatus, command.signalstatus, shown)
    assert [line for line in shown if line.startswith("ganga-like:")] == [
        "ganga-like: interrupted here only: the service carries on with what it was asked, "
        "and the jobs go on"], shown
    listed = json.loads(run_gl(terminal_root, "jobs", "--json", check_clean=False).stdout)
    assert listed[1]["status"] == "running"  # the job goes on
