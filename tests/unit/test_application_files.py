"""Ganga's File in an Executable, the model alone (no Ray): ``exe`` and ``args`` keep
File objects, owned by the application (read-only with its job), copied with it,
staged into the job's directory and given to the payload by their names there; and
the submit-time checks of Ganga's ``Executable.configure`` (preflight)."""

from __future__ import annotations

import os
import stat

import pytest
from persistent import Persistent

from ganga_like.engine.operations.preflight import check_application, form_problem
from ganga_like.engine.operations.submit import split
from ganga_like.errors import ApplicationConfigurationError, InvalidValue, ReadOnlyError
from ganga_like.model.application import Executable, payload_command
from ganga_like.model.component import FrozenList
from ganga_like.model.files import File, LocalFile, stage_inputs
from ganga_like.model.job import Job
from ganga_like.model.splitters import ArgSplitter, GenericSplitter
from ganga_like.status import Status


def _submitted(job: Job) -> Job:
    Persistent.__setattr__(job, "_status", Status.SUBMITTED.value)
    return job


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "run.sh"
    path.write_text("#!/bin/sh\necho hi\n")
    return path


# --- the fields ---------------------------------------------------------------------------

def test_exe_keeps_a_file_and_a_string_stays_a_string(script):
    app = Executable(exe=File(str(script)))
    assert isinstance(app.exe, File) and app.exe == File(str(script))
    assert app.exe != str(script) and app.exe != File("/elsewhere/run.sh")
    assert "exe=File(name=" in repr(app)
    assert Executable(exe="/bin/date").exe == "/bin/date"
    assert Executable(exe="echo").exe == "echo"


def test_a_relative_file_name_is_stored_absolute(tmp_path, monkeypatch, script):
    monkeypatch.chdir(tmp_path)
    assert Executable(exe=File("run.sh")).exe.name == str(script)


def test_args_take_strings_numbers_and_files(script):
    app = Executable(exe="/bin/sh", args=["-v", File(str(script)), 1, 2.5])
    assert app.args == ["-v", File(str(script)), "1", "2.5"]
    assert isinstance(app.args[1], File)
    app.args.append(File(str(script), subdir="b"))  # an in-place edit: an assignment
    assert app.args[-1].subdir == "b" and app.args[-1]._owner_job is app


@pytest.mark.parametrize("bad", [[None], [True], [["nested"]], [{"a": 1}], "-v", [LocalFile("x")]])
def test_other_args_are_refused_in_one_line_naming_the_forms(bad):
    with pytest.raises(InvalidValue) as info:
        Executable(args=bad)
    message = str(info.value)
    assert "\n" not in message and "Executable.args" in message
    assert "a list of strings, e.g. ['-n', '5'] or ['-v', File('in.dat')]" in message


def test_exe_is_not_checked_when_set_a_file_may_come_later(tmp_path):
    app = Executable(exe=File(str(tmp_path / "later.sh")), args=[File(str(tmp_path / "x"))])
    app.exe = "sleep 6"
    app.exe = "bin/hostname"
    assert app.exe == "bin/hostname"


# --- ownership: the read-only rule, one owner per File, copies --------------------------------

def test_the_files_belong_to_the_application_and_follow_its_jobs_read_only_rule(script):
    held = File(str(script))
    j = Job(application=Executable(exe=held, args=[File(str(script))]))
    j.application.exe.subdir = "bin"  # a new job: edited as its fields are
    assert held is j.application.exe and held._owner_job is j.application
    _submitted(j)
    for edit, where in ((lambda: setattr(j.application.exe, "name", "/x"), "application.exe.name"),
                        (lambda: setattr(held, "subdir", "y"), "application.exe.subdir"),
                        (lambda: setattr(j.application.args[0], "name", "/x"), "application.args.name"),
                        (lambda: j.application.args.append(File("/x")), "application.args")):
        with pytest.raises(ReadOnlyError) as info:
            edit()
        assert where in str(info.value) and "\n" not in str(info.value)
    assert j.application.exe == File(str(script), subdir="bin") and len(j.application.args) == 1


def test_a_subjobs_files_are_read_only(script, tmp_path):
    j = Job(application=Executable(exe=File(str(script))),
            splitter=GenericSplitter(attribute="application.args",
                                     values=[[File(str(script))], ["b"]]))
    split(j)
    view = j.subjobs[0].application
    assert view.exe == File(str(script)) and view.args == [File(str(script))]
    assert view.args[0]._owner_job is view and view.exe is not j.application.exe
    with pytest.raises(ReadOnlyError):
        view.exe.name = "/x"
    with pytest.raises(ReadOnlyError):
        view.args[0].name = "/x"


def test_a_file_of_another_application_is_copied_on_assignment(script):
    first = Job(application=Executable(exe=File(str(script))))
    second = Job()
    second.application.exe = first.application.exe
    second.application.args = [first.application.exe]
    assert second.application.exe == first.application.exe
    assert second.application.exe is not first.application.exe
    assert second.application.args[0]._owner_job is second.application
    assert first.application.exe._owner_job is first.application


def test_copies_have_their_own_files(script):
    j = Job(application=Executable(exe=File(str(script)), args=["a", File(str(script))]))
    for copy in (j.copy(), Job(j), j.application.copy()):
        app = copy if isinstance(copy, Executable) else copy.application
        assert app == j.application
        assert app.exe is not j.application.exe and app.exe._owner_job is app
        assert app.args[1] is not j.application.args[1] and app.args[1]._owner_job is app
        app.exe.subdir = "other"
        assert j.application.exe.subdir == "."


def test_old_records_with_string_values_load_and_run():
    app = Executable.__new__(Executable)
    app.__dict__.update({"exe": "/bin/echo", "args": ("a", "b")})  # as stored before Files
    assert app.exe == "/bin/echo" and app.files() == []
    assert app.command() == ["/bin/echo", "a", "b"]
    assert app.copy() == app


# --- the payload's command and the staged copies -------------------------------------------

def test_the_payload_gets_the_files_names_in_its_working_directory(script):
    assert payload_command(File(str(script)), ["-v", File("/data/in.dat"), "3"]) == (
        "./run.sh", ("-v", "in.dat", "3"))
    assert payload_command(File(str(script), subdir="bin"), [File("/d/x", subdir="s")]) == (
        "./bin/run.sh", ("s/x",))
    assert payload_command("/bin/echo", FrozenList(("hi",))) == ("/bin/echo", ("hi",))
    assert Executable(exe=File(str(script)), args=[File("/d/in.dat")]).command() == [
        "./run.sh", "in.dat"]


def test_staging_copies_the_files_and_makes_the_program_executable(script, tmp_path):
    data = tmp_path / "in.dat"
    data.write_text("1 2 3\n")
    work = tmp_path / "work"
    j = Job(application=Executable(exe=File(str(script)), args=[File(str(data))]))
    assert stage_inputs(j, str(work)) == [str(work / "input" / "in.dat"),
                                         str(work / "input" / "run.sh")]
    for sub in ("input", "output"):
        assert (work / sub / "run.sh").read_text() == script.read_text()
        assert (work / sub / "run.sh").stat().st_mode & stat.S_IXUSR
        assert (work / sub / "in.dat").read_text() == "1 2 3\n"
    assert not (work / "output" / "in.dat").stat().st_mode & stat.S_IXUSR
    assert not script.stat().st_mode & stat.S_IXUSR


def test_each_subjob_stages_the_masters_files_and_its_own(script, tmp_path):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    j = Job(application=Executable(exe=File(str(script))),
            splitter=ArgSplitter(args=[["1"], ["2"]]))
    split(j)
    for sub in j.subjobs:
        work = tmp_path / "ws" / str(sub.id)
        assert [os.path.basename(p) for p in stage_inputs(sub, str(work))] == ["run.sh"]
    k = Job(application=Executable(exe="/bin/cat"),
            splitter=GenericSplitter(attribute="application.args",
                                     values=[[File(str(tmp_path / "a.txt"))],
                                             [File(str(tmp_path / "b.txt"))]]))
    split(k)
    staged = [stage_inputs(sub, str(tmp_path / "k" / str(sub.id))) for sub in k.subjobs]
    assert [[os.path.basename(p) for p in paths] for paths in staged] == [["a.txt"], ["b.txt"]]


def test_staging_a_missing_file_is_one_line(tmp_path):
    j = Job(application=Executable(exe=File(str(tmp_path / "gone.sh"))))
    with pytest.raises(InvalidValue, match="an existing file"):
        stage_inputs(j, str(tmp_path / "w"))


# --- submit-time checks (Ganga's Executable.configure) --------------------------------------

def _refusal(app: Executable, environment=None, **job) -> str:
    j = Job(application=app, **job)
    with pytest.raises(ApplicationConfigurationError) as info:
        check_application(j, [j], environment)
    message = str(info.value)
    assert "\n" not in message and "the job stays new" in message
    return message


def _accepted(app: Executable, environment=None, **job) -> None:
    j = Job(application=app, **job)
    check_application(j, [j], environment)


@pytest.mark.parametrize("exe, words", [
    ("sleep 6", ["'sleep 6' contains white space", "exe='sleep', args=['6']"]),
    ("/bin/sleep 6", ["contains white space", "exe='/bin/sleep', args=['6']"]),
    ("sleep\t6", ["contains white space"]),
    ("bin/hostname", ["'bin/hostname' is a relative path", "File('bin/hostname')"]),
    ("./run.sh", ["'./run.sh' is a relative path"]),
    ("/usr/bin/", ["/usr/bin/ is a directory path"]),
    ("tools/", ["tools/ is a directory path"]),
])
def test_an_exe_that_is_no_program_is_refused_for_every_backend(exe, words):
    message = _refusal(Executable(exe=exe))  # environment None: a backend elsewhere
    assert message.startswith("job ? (new): cannot submit: application.exe: ")
    assert all(w in message for w in words) and "fix j.application.exe (" in message


def test_missing_files_are_refused_with_gangas_words(tmp_path):
    message = _refusal(Executable(exe=File(str(tmp_path / "a.sh"))))
    assert f"application.exe: File('{tmp_path}/a.sh'): file not found" in message
    assert "fix j.application.exe (create the file, or name an existing one)" in message
    message = _refusal(Executable(exe="/bin/cat", args=["x", File(str(tmp_path / "in"))]))
    assert "application.args[1]: File(" in message and "fix j.application.args" in message
    assert "not a file" in _refusal(Executable(exe=File(str(tmp_path))))


def test_what_can_run_is_accepted(tmp_path, script):
    spaced = tmp_path / "my tools" / "run it.sh"
    spaced.parent.mkdir()
    spaced.write_text("#!/bin/sh\n")
    spaced.chmod(0o755)
    env = {"PATH": os.environ["PATH"]}
    for exe in ("echo", "/bin/echo", str(spaced)):  # a path with a space that exists runs
        _accepted(Executable(exe=exe), env)
    _accepted(Executable(exe=File(str(script)), args=[File(str(script))]))  # same file twice
    _accepted(Executable(exe="bin/run.sh"), inputfiles=[File(str(script), subdir="bin")])
    _accepted(Executable(exe="./run.sh"), inputfiles=[LocalFile("run.sh", localDir=str(tmp_path))])
    _accepted(Executable(exe="/bin/sh", args=[File(str(script)), "./run.sh"]))
    _accepted(Executable(exe="no-such-program-here"))  # elsewhere: PATH is not looked at
    assert "is not found in PATH" in _refusal(Executable(exe="no-such-program-here"), env)


def test_two_files_for_one_name_are_refused(tmp_path, script):
    (tmp_path / "b").mkdir()
    other = tmp_path / "b" / "run.sh"
    other.write_text("x")
    message = _refusal(Executable(exe=File(str(script)), args=[File(str(other))]))
    assert "would both be copied to run.sh" in message
    _accepted(Executable(exe=File(str(script)), args=[File(str(other), subdir="b")]))


def test_a_subjobs_own_values_are_checked_and_name_the_splitter(tmp_path):
    j = Job(application=Executable(exe="/bin/echo"),
            splitter=GenericSplitter(attribute="application.exe", values=["/bin/echo", "cat 5"]))
    split(j)
    with pytest.raises(ApplicationConfigurationError) as info:
        check_application(j, list(j.subjobs), None)
    assert "subjob 1: application.exe: 'cat 5' contains white space" in str(info.value)
    assert "fix j.splitter (" in str(info.value)
    # the master's own value runs nowhere when every subjob has its own
    k = Job(application=Executable(exe="placeholder 1"),
            splitter=GenericSplitter(attribute="application.exe", values=["/bin/echo"]))
    split(k)
    check_application(k, list(k.subjobs), None)


def test_form_problem_is_empty_for_programs():
    assert form_problem("echo", set()) == ("", "")
    assert form_problem("/bin/echo", set()) == ("", "")
    assert form_problem("bin/x", {"bin/x"}) == ("", "")
    assert form_problem("./x", {"x"}) == ("", "")
