"""The native wrapper's build (static where possible, dynamic or bash otherwise) and its contract."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time

import pytest

from ganga_like.backends.runtime import native
from ganga_like.backends.runtime import status_file as sf

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler on this machine")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GANGA_LIKE_SHELL_WRAPPER", raising=False)
    return tmp_path / "cache" / "ganga_like"


def _compiler_script(tmp_path, body: str) -> str:
    path = tmp_path / "fake-cc"
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _run(wrapper: str, workdir, *command: str, pass_fds=()) -> tuple[int, list[sf.StatusInfo]]:
    (workdir / "output").mkdir(parents=True)
    proc = subprocess.run([wrapper, str(workdir), *command], pass_fds=pass_fds,
                          env=dict(os.environ, GANGA_LIKE_MARKER="test:1.0"), timeout=30)
    return proc.returncode, sf.StatusFile(str(workdir / "status")).history()


def test_built_once_into_the_cache_and_records_the_exit_status(cache, tmp_path):
    wrapper = native.native_wrapper()
    assert wrapper is not None and wrapper.startswith(str(cache))
    assert native.native_wrapper() == wrapper  # cached: not rebuilt
    code, history = _run(wrapper, tmp_path / "w", "/bin/sh", "-c", "echo out; exit 3")
    assert code == 3
    assert [i.state for i in history] == [sf.RUNNING, sf.RUN_FAILED]
    assert "marker=test:1.0" in history[0].note and history[1].exit_code == 3
    assert (tmp_path / "w" / "output" / "stdout").read_text() == "out\n"


def test_static_where_the_c_library_allows_it(cache):
    wrapper = native.native_wrapper()
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/libc.a") and not os.path.exists("/usr/lib64/libc.a"):
        pytest.skip("no static C library here")
    with open(wrapper, "rb") as handle:
        assert b"ld-linux" not in handle.read(4096 * 4)  # no program interpreter


def test_falls_back_to_a_dynamic_build_when_static_linking_fails(cache, tmp_path, monkeypatch):
    real = shutil.which("cc") or shutil.which("gcc")
    monkeypatch.setenv("CC", _compiler_script(
        tmp_path, f'for a in "$@"; do [[ $a == -static ]] && exit 1; done; exec {real} "$@"'))
    wrapper = native.native_wrapper()
    assert wrapper is not None
    code, history = _run(wrapper, tmp_path / "w", "/bin/true")
    assert code == 0 and history[-1].state == sf.RUN_DONE


def test_no_compiler_means_the_bash_wrapper(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("CC", _compiler_script(tmp_path, "exit 1"))
    assert native.native_wrapper() is None
    assert native.wrapper_command("/bin/bash") == ["/bin/bash", native.SHELL_WRAPPER]


def test_a_program_the_kernel_cannot_execute_is_exec_failed(cache, tmp_path):
    bad = tmp_path / "not-an-elf"
    bad.write_bytes(b"\x7fELF but not really")
    bad.chmod(0o755)
    code, history = _run(native.native_wrapper(), tmp_path / "w", str(bad))
    assert code == 126
    assert history[-1].state == sf.EXEC_FAILED and "cannot execute" in history[-1].note
    assert "cannot execute" in (tmp_path / "w" / "output" / "stderr").read_text()


def test_inherited_descriptors_are_closed_before_the_payload_starts(cache, tmp_path):
    read_end, write_end = os.pipe()
    try:
        code, _ = _run(native.native_wrapper(), tmp_path / "w", "/bin/ls", "/proc/self/fd",
                       pass_fds=(read_end, write_end))
    finally:
        os.close(read_end)
        os.close(write_end)
    assert code == 0
    fds = sorted(int(word) for word in (tmp_path / "w" / "output" / "stdout").read_text().split())
    assert fds[:3] == [0, 1, 2] and len(fds) <= 4  # 0, 1, 2 and the directory ls reads


@pytest.mark.parametrize(("make", "code", "words"), [
    (lambda path: None, 127, "not found"),
    (lambda path: path.mkdir(), 126, "not executable"),
    (lambda path: path.write_text("echo hi\n"), 126, "not executable"),
])
def test_a_path_that_cannot_run_is_named_after_the_failed_start(cache, tmp_path, make, code, words):
    # A program given as a path is checked only once it could not be started: the
    # common case spares a stat and an access; the one that fails says why, as before.
    program = tmp_path / "program"
    make(program)
    status_code, history = _run(native.native_wrapper(), tmp_path / "w", str(program))
    assert status_code == code
    assert [i.state for i in history] == [sf.EXEC_FAILED]
    assert history[0].note == f"exit={code} {words}: {program}"
    assert f"{program}: {words}" in (tmp_path / "w" / "output" / "stderr").read_text()


def test_a_payload_whose_children_ended_first_is_done_without_leftovers(cache, tmp_path):
    # The wrapper learns that nothing of the tree is left from waitpid (no child at all);
    # children that end before the payload leave no "leftovers" note.
    code, history = _run(native.native_wrapper(), tmp_path / "w", "/bin/sh", "-c",
                         "/bin/true & /bin/true & wait; exit 0")
    assert code == 0
    assert [(i.state, i.note) for i in history[1:]] == [(sf.RUN_DONE, "exit=0")]


@pytest.mark.skipif(shutil.which("musl-gcc") is None, reason="no musl-gcc on this machine")
def test_linked_against_musl_where_musl_gcc_exists(cache, tmp_path, monkeypatch):
    # glibc's start-up asks the CPU for its cache sizes (CPUID traps on a virtual
    # machine): musl's does not, so it is the first choice when $CC does not say otherwise.
    monkeypatch.delenv("CC", raising=False)
    wrapper = native.native_wrapper()
    with open(wrapper, "rb") as handle:
        image = handle.read()
    assert b"GLIBC_TUNABLES" not in image and b"ld-linux" not in image  # neither glibc nor dynamic
    code, history = _run(wrapper, tmp_path / "w", "/bin/sh", "-c", "echo out; exit 3")
    assert code == 3 and [i.state for i in history] == [sf.RUNNING, sf.RUN_FAILED]


def test_outputs_that_cannot_be_opened_are_a_wrapper_error(cache, tmp_path):
    # The wrapper opens /dev/null, stdout and stderr straight onto 0, 1 and 2; one that
    # cannot be opened (here stdout is a directory) stops it before the payload runs.
    (tmp_path / "w" / "output" / "stdout").mkdir(parents=True)
    proc = subprocess.run([native.native_wrapper(), str(tmp_path / "w"), "/bin/true"], timeout=30)
    history = sf.StatusFile(str(tmp_path / "w" / "status")).history()
    assert proc.returncode == 126
    assert [(i.state, i.note.split(" in ")[0]) for i in history] == [
        (sf.WRAPPER_ERROR, "exit=126 cannot open stdout/stderr")]


def test_the_payload_reads_dev_null_and_writes_its_own_files(cache, tmp_path):
    code, _ = _run(native.native_wrapper(), tmp_path / "w", "/bin/sh", "-c",
                   "cat; readlink /proc/self/fd/0 /proc/self/fd/1; echo err >&2")
    output = tmp_path / "w" / "output"
    assert code == 0
    assert (output / "stdout").read_text().split() == ["/dev/null", str(output / "stdout")]
    assert (output / "stderr").read_text() == "err\n"


def _primed(wrapper: str, workdir, leader: subprocess.Popen, *command: str,
            called_off: bool = False):
    """A wrapper started ``--after`` ``leader`` (fd 3: its pidfd), and the actor's end of
    its call-off pipe (fd 4): returned open, or closed first (``called_off``)."""
    (workdir / "output").mkdir(parents=True)
    pidfd = os.pidfd_open(leader.pid)
    call_off_r, call_off_w = os.pipe()
    if called_off:
        os.close(call_off_w)
        call_off_w = -1
    try:
        follower = subprocess.Popen(
            [wrapper, "--after", str(workdir), *command],
            env=dict(os.environ, GANGA_LIKE_MARKER="test:1.1"),
            pass_fds=(3, 4), preexec_fn=lambda: (os.dup2(pidfd, 3), os.dup2(call_off_r, 4)))
    finally:
        os.close(pidfd)
        os.close(call_off_r)
    return follower, call_off_w


def _leader(tmp_path):
    go = tmp_path / "go"
    return go, subprocess.Popen(["/bin/sh", "-c", f"while [ ! -e {go} ]; do sleep 0.02; done"])


def _ended_unreaped(proc: subprocess.Popen) -> None:
    """Until ``proc`` has ended but is not reaped yet (a zombie: its pidfd reads)."""
    for _ in range(1000):
        with open(f"/proc/{proc.pid}/stat") as stat_file:
            if stat_file.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.01)
    raise AssertionError(f"{proc.pid} never ended")


def test_a_primed_wrapper_starts_its_payload_when_its_leader_ends(cache, tmp_path):
    wrapper = native.native_wrapper()
    go, leader = _leader(tmp_path)
    follower, call_off = _primed(wrapper, tmp_path / "w", leader, "/bin/sh", "-c", "echo ran")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            follower.wait(timeout=0.5)  # waits for its slot: nothing written yet
        assert not (tmp_path / "w" / "status").exists()
        go.touch()
        leader.wait(timeout=10)
        assert follower.wait(timeout=10) == 0
    finally:
        os.close(call_off)
    history = sf.StatusFile(str(tmp_path / "w" / "status")).history()
    assert [i.state for i in history] == [sf.RUNNING, sf.RUN_DONE]
    assert (tmp_path / "w" / "output" / "stdout").read_text() == "ran\n"


@pytest.mark.parametrize("call_off_by", ["a byte", "the end of the pipe"])
def test_a_primed_wrapper_called_off_ends_without_running_or_writing(cache, tmp_path, call_off_by):
    wrapper = native.native_wrapper()
    go, leader = _leader(tmp_path)
    follower, call_off = _primed(wrapper, tmp_path / "w", leader, "/bin/sh", "-c", "echo ran")
    try:
        if call_off_by == "a byte":
            os.write(call_off, b"x")
        else:
            os.close(call_off)  # the actor is gone
            call_off = -1
        assert follower.wait(timeout=10) == 125
        assert leader.poll() is None  # its leader runs on, untouched
    finally:
        if call_off >= 0:
            os.close(call_off)
        go.touch()
        leader.wait(timeout=10)
    assert not (tmp_path / "w" / "status").exists()
    assert os.listdir(tmp_path / "w" / "output") == []


def test_a_leader_ended_and_a_call_off_at_once_is_a_call_off(cache, tmp_path):
    """Both at once (the actor died as the leader ended): the follower does not run, so
    the work sent again never runs twice."""
    wrapper = native.native_wrapper()
    leader = subprocess.Popen(["/bin/true"])
    _ended_unreaped(leader)
    follower, _ = _primed(wrapper, tmp_path / "w", leader, "/bin/sh", "-c", "echo ran",
                          called_off=True)
    assert follower.wait(timeout=10) == 125
    leader.wait(timeout=10)
    assert not (tmp_path / "w" / "status").exists()
