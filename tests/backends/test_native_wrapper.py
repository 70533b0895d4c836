"""The native wrapper's build (static where possible, dynamic or bash otherwise) and its contract."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

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
