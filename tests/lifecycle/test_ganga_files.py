"""Ganga's File in an Executable (issue 19), on a real session (FileStorage, the test
Ray, real processes), driven through the GPI as Ganga's tutorial does: a File ``exe``
or argument travels with the job (an exact copy in its working directory), and an
application that cannot run is refused at submit in one line, the job staying new."""

from __future__ import annotations

import os
import stat

import pytest

from ganga_like.gpi import (
    ApplicationConfigurationError,
    ArgSplitter,
    Executable,
    File,
    GenericSplitter,
    Job,
    LocalFile,
    ReadOnlyObjectError,
    export,
    load,
)

SCRIPT = "#!/bin/sh\necho \"Hello from $(basename \"$0\") in $(basename \"$PWD\") with ${1:-nothing}\"\n"


@pytest.fixture
def session(shared_session):
    """One engine for the module (``shared_session``, tests/conftest.py)."""
    return shared_session


def _script(tmp_path, name="my_script.sh", text=SCRIPT):
    path = tmp_path / name
    path.write_text(text)  # not executable: the job's copy is made so
    return path


def _detached(value):
    return value.copy() if isinstance(value, File) else value  # readable once closed


def _stored_application(session, job_id):
    """The job's application as another connection reads it: what was committed."""
    conn = session.repository.connect()
    try:
        app = conn.jobs.get(job_id).application
        return _detached(app.exe), [_detached(a) for a in app.args]
    finally:
        conn.close()


def test_gangas_first_tutorial_example_runs_a_copy_of_the_script(session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = _script(tmp_path)
    j = Job()
    j.application.exe = File("my_script.sh")
    j.application.args = []
    assert j.application.exe == File(str(script))
    j.submit()
    assert j.wait(timeout=60) == "completed"
    assert j.peek("stdout") == "Hello from my_script.sh in output with nothing\n"
    for directory in (j.inputdir, j.outputdir):  # an exact copy, made executable
        copy = os.path.join(directory, "my_script.sh")
        assert open(copy).read() == SCRIPT and os.stat(copy).st_mode & stat.S_IXUSR
    assert not os.stat(script).st_mode & stat.S_IXUSR  # the user's file is left alone
    exe, _ = _stored_application(session, j.id)
    assert exe == File(str(script)) and isinstance(exe, File)


def test_the_job_runs_the_copy_made_at_submit(session, tmp_path):
    script = _script(tmp_path, text="#!/bin/sh\nsleep 1\necho first version\n")
    j = Job(application=Executable(exe=File(str(script)), args=[]))
    j.submit()
    script.write_text("#!/bin/sh\necho edited afterwards\n")
    assert j.wait(timeout=60) == "completed"
    assert j.peek("stdout") == "first version\n"


def test_a_file_among_the_arguments_is_passed_by_its_name_in_the_working_directory(
        session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.sh").write_text('echo "$0: $(seq -s " " "$1" "$2")"\n')
    j = Job(application=Executable(exe="/bin/sh", args=[File("run.sh"), "1", 10]))
    assert j.application.args == [File(str(tmp_path / "run.sh")), "1", "10"]
    assert isinstance(j.application.args[0], File)
    j.submit()
    assert j.wait(timeout=60) == "completed"
    assert j.peek("stdout") == "run.sh: 1 2 3 4 5 6 7 8 9 10\n"
    assert os.path.isfile(os.path.join(j.inputdir, "run.sh"))
    _, args = _stored_application(session, j.id)
    assert args == [File(str(tmp_path / "run.sh")), "1", "10"]


def test_every_subjob_of_a_split_job_gets_the_masters_files(session, tmp_path):
    script = _script(tmp_path)
    j = Job(application=Executable(exe=File(str(script))),
            splitter=ArgSplitter(args=[["a"], ["b"], ["c"]]))
    j.submit()
    assert j.wait(timeout=60) == "completed"
    assert [sj.peek("stdout") for sj in j.subjobs] == [
        f"Hello from my_script.sh in output with {x}\n" for x in "abc"]
    for sj in j.subjobs:
        assert open(os.path.join(sj.inputdir, "my_script.sh")).read() == SCRIPT
        assert sj.application.exe == File(str(script))


def test_subjobs_can_each_get_their_own_file(session, tmp_path):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"data of {name}\n")
    j = Job(application=Executable(exe="/bin/cat"),
            splitter=GenericSplitter(attribute="application.args",
                                     values=[[File(str(tmp_path / "a.txt"))],
                                             [File(str(tmp_path / "b.txt"))]]))
    j.submit()
    assert j.wait(timeout=60) == "completed"
    assert [sj.peek("stdout") for sj in j.subjobs] == ["data of a.txt\n", "data of b.txt\n"]
    assert not os.path.exists(os.path.join(j.subjobs[0].inputdir, "b.txt"))


def test_a_file_is_compared_shown_exported_and_edited_as_part_of_the_application(
        session, tmp_path):
    script = _script(tmp_path)
    other = _script(tmp_path, "other.sh", "#!/bin/sh\necho other\n")
    j = Job(application=Executable(exe=File(str(script)), args=["-v", File(str(other))],
                                   env={"type": "File"}))  # a variable named 'type' stays one
    assert j.application.exe == File(str(script)) and j.application.exe != File(str(other))
    assert j.application.exe != str(script)
    text = str(j)
    assert "exe = File (" in text and f"name = {str(script)!r}" in text
    assert f"name = {str(other)!r}" in text
    export(j, str(tmp_path / "jobs.json"))
    [back] = load(str(tmp_path / "jobs.json"))
    assert back.application == j.application and isinstance(back.application.exe, File)
    assert back.application.args[1] == File(str(other)) and back.application.env == {"type": "File"}
    j.application.exe.name = str(other)  # a new job: its files are edited as its fields
    assert _stored_application(session, j.id)[0] == File(str(other))
    j.application.args[1].subdir = "inputs"
    assert _stored_application(session, j.id)[1][1].subdir == "inputs"


def test_a_submitted_job_refuses_edits_of_its_files(session, tmp_path):
    script = _script(tmp_path)
    data = _script(tmp_path, "data.txt", "x\n")
    j = Job(application=Executable(exe=File(str(script)), args=[File(str(data))]))
    f = j.application.exe
    j.submit()
    j.wait(timeout=60)
    for edit, where in ((lambda: setattr(j.application.exe, "name", "/bin/ls"), "application.exe.name"),
                        (lambda: setattr(f, "subdir", "x"), "application.exe.subdir"),
                        (lambda: setattr(j.application.args[0], "name", "/etc/hosts"),
                         "application.args.name"),
                        (lambda: setattr(j.application, "exe", File("/bin/ls")), "application.exe")):
        with pytest.raises(ReadOnlyObjectError) as info:
            edit()
        assert where in str(info.value) and "\n" not in str(info.value)
    assert j.application.exe == File(str(script))
    assert _stored_application(session, j.id) == (File(str(script)), [File(str(data))])


def test_a_subjobs_files_are_read_only(session, tmp_path):
    script = _script(tmp_path)
    j = Job(application=Executable(exe=File(str(script))), splitter=ArgSplitter(args=[["a"]]))
    j.submit()
    j.wait(timeout=60)
    with pytest.raises(ReadOnlyObjectError):
        j.subjobs[0].application.exe.name = "/bin/ls"
    assert j.application.exe == File(str(script))


def test_copy_keeps_the_file_and_the_copy_is_editable_and_runs(session, tmp_path):
    script = _script(tmp_path)
    j = Job(application=Executable(exe=File(str(script)), args=["one"]))
    j.submit()
    j.wait(timeout=60)
    k = j.copy()
    assert k.application.exe == File(str(script)) and k.application.exe is not j.application.exe
    assert k.application == j.application
    k.application.exe.subdir = "bin"  # the copy's own File: the job's stays as it was
    assert j.application.exe.subdir == "."
    k.application.args = ["two"]
    k.submit()
    assert k.wait(timeout=60) == "completed"
    assert k.peek("stdout") == "Hello from my_script.sh in output with two\n"  # (./bin/)
    assert os.path.isfile(os.path.join(k.outputdir, "bin", "my_script.sh"))


def test_a_relative_path_to_an_input_staged_there_is_accepted(session, tmp_path):
    tool = _script(tmp_path, "tool.sh", "#!/bin/sh\necho tool ran\n")
    tool.chmod(0o755)
    j = Job(application=Executable(exe="bin/tool.sh", args=[]),
            inputfiles=[File(str(tool), subdir="bin")])
    j.submit()
    assert j.wait(timeout=60) == "completed" and j.peek("stdout") == "tool ran\n"
    k = Job(application=Executable(exe="./tool.sh", args=[]),
            inputfiles=[LocalFile("tool.sh", localDir=str(tmp_path))])
    k.submit()
    assert k.wait(timeout=60) == "completed" and k.peek("stdout") == "tool ran\n"


# --- what submit() refuses (Ganga's Executable.configure) --------------------------------

def _missing(tmp_path):
    return File(str(tmp_path / "not-yet.sh"))


def _set(**values):
    def fix(j, tmp_path):
        for name, value in values.items():
            setattr(j.application, name, value)
    return fix


def _create(text):
    def fix(j, tmp_path):
        (tmp_path / "not-yet.sh").write_text(text)  # the File named before it existed
    return fix


# case: (the application, what the refusal says, its way out, the fix)
REFUSED = {
    "command line": (lambda tmp: Executable(exe="sleep 6"),
                     "application.exe: 'sleep 6' contains white space", "exe='sleep', args=['6']",
                     _set(exe="sleep", args=["0"])),
    "relative path": (lambda tmp: Executable(exe="bin/hostname"),
                      "application.exe: 'bin/hostname' is a relative path", "File('bin/hostname')",
                      _set(exe="true")),
    "directory": (lambda tmp: Executable(exe=str(tmp) + "/"),
                  "is a directory path", "an absolute path, or a program in your PATH",
                  _set(exe="/bin/true")),
    "missing File exe": (lambda tmp: Executable(exe=_missing(tmp), args=[]),
                         "application.exe: File(", "fix j.application.exe (create the file",
                         _create("#!/bin/sh\necho made\n")),
    "missing File arg": (lambda tmp: Executable(exe="/bin/cat", args=["-", _missing(tmp)]),
                         "application.args[1]: File(", "fix j.application.args (create the file",
                         _create("made\n")),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_application_that_cannot_run_is_refused_at_submit_and_the_job_stays_new(
        session, tmp_path, case):
    make, what, way_out, fix = REFUSED[case]
    j = Job(application=make(tmp_path))  # accepted when set: the file may come later
    with pytest.raises(ApplicationConfigurationError) as info:
        j.submit()
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"job {j.id} (new): cannot submit: ")
    assert what in message and way_out in message and "the job stays new" in message
    if case.startswith("missing"):
        assert "not-yet.sh')" in message and "file not found" in message
    assert j.status == "new" and j.info.submit_counter == 0 and not os.path.exists(j.inputdir)
    fix(j, tmp_path)
    j.submit()
    assert j.wait(timeout=60) == "completed"


def test_a_split_job_is_refused_whole_and_stays_new_without_subjobs(session, tmp_path):
    j = Job(application=Executable(exe="/bin/cat"),
            splitter=GenericSplitter(attribute="application.args",
                                     values=[["-"], [_missing(tmp_path)]]))
    with pytest.raises(ApplicationConfigurationError) as info:
        j.submit()
    assert "subjob 1: application.args[0]: File(" in str(info.value)
    assert "fix j.splitter" in str(info.value)
    assert j.status == "new" and j.subjob_counts == {} and len(j.subjobs) == 0


def test_a_command_line_is_refused_for_a_backend_that_runs_elsewhere_too(session):
    from ganga_like.gpi import RayCluster

    j = Job(application=Executable(exe="sleep 6"), backend=RayCluster(num_cpus=0.5))
    with pytest.raises(ApplicationConfigurationError, match="contains white space"):
        j.submit()
    assert j.status == "new"
