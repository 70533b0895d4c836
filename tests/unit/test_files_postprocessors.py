"""LocalFile and the postprocessors without a database or Ray: validation, and each
one's behaviour on jobs whose output directories are written by the test."""

from __future__ import annotations

import gzip
import os
import sys
from collections import Counter

import pytest

from ganga_like.engine.core import _split
from ganga_like.engine.postprocessing import run_for_master, run_for_subjob
from ganga_like.errors import InvalidValue
from ganga_like.model.application import Executable
from ganga_like.model.counts import StatusCounts
from ganga_like.model.files import LocalFile, collect_outputs, stage_inputs
from ganga_like.model.job import Job
from ganga_like.model.postprocessors import CustomChecker, CustomMerger, FileChecker, Notifier, TextMerger
from ganga_like.model.splitters import ArgSplitter


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# --- validation: refused when set, one line naming the valid form --------------------------


@pytest.mark.parametrize("build, words", [
    (lambda: LocalFile(3), "LocalFile.namePattern = 3 is not valid: expected a file name or glob"),
    (lambda: LocalFile(""), "'*.root'"),
    (lambda: LocalFile("x", localDir=["a"]), "a directory path"),
    (lambda: TextMerger(files="stdout"), "a non-empty list of file names"),
    (lambda: TextMerger(files=[]), "the list is empty"),
    (lambda: TextMerger(files=["../etc/passwd"]), "not a name inside the output directory"),
    (lambda: TextMerger(ignorefailed="yes"),
     "TextMerger.ignorefailed = 'yes' is not valid: expected True or False"),
    (lambda: TextMerger(compress=1), "True or False"),
    (lambda: TextMerger(nosuch=1), "one of the attributes files, ignorefailed, overwrite, compress"),
    (lambda: FileChecker(searchStrings=[""]), "an empty string matches every line"),
    (lambda: FileChecker(searchStrings="ERROR"), "e.g. ['ERROR', 'Traceback']"),
    (lambda: FileChecker(failIfFound=None), "True or False"),
    (lambda: CustomChecker(module="/no/such/check.py"), "no such file: /no/such/check.py"),
    (lambda: CustomChecker(module="check.txt"), "an existing .py file defining check(job)"),
    (lambda: CustomMerger(module=7), "defining mergefiles(file_list, output_file)"),
    (lambda: Notifier(command="notify-send hi"), "a list of strings, the program and its arguments"),
    (lambda: Notifier(function="not a path"), "'package.module:function' or '/path/to/file.py:function'"),
    (lambda: Notifier(timeout=0), "a positive number of seconds"),
])
def test_bad_values_are_refused_when_set_with_one_line(build, words):
    with pytest.raises(InvalidValue) as info:
        build()
    assert words in _one_line(info)


def test_localfile_positional_pattern_and_absolute_local_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = LocalFile("data.txt", localDir="sub")
    assert f.namePattern == "data.txt" and f.localDir == str(tmp_path / "sub")
    assert LocalFile().namePattern == "*.txt" and LocalFile(localDir="").localDir == ""
    assert LocalFile("a.txt") == LocalFile(namePattern="a.txt")


def test_components_go_in_their_job_slots_only():
    job = Job(outputfiles=[LocalFile("*.root")], postprocessors=[TextMerger(), FileChecker()])
    assert [type(p).__name__ for p in job.postprocessors] == ["TextMerger", "FileChecker"]
    with pytest.raises(InvalidValue) as info:
        job.postprocessors = [LocalFile("x")]
    assert "one of the postprocessors" in _one_line(info)
    with pytest.raises(InvalidValue):
        job.outputfiles = [TextMerger()]


def test_module_paths_are_stored_absolute(tmp_path, monkeypatch):
    (tmp_path / "check.py").write_text("def check(job):\n    return True\n")
    monkeypatch.chdir(tmp_path)
    assert CustomChecker(module="check.py").module == str(tmp_path / "check.py")
    assert Notifier(function="check.py:check").function == str(tmp_path / "check.py") + ":check"
    assert Notifier(function="os.path:exists").function == "os.path:exists"


# --- behaviour on hand-written outputs --------------------------------------------------


def _build(n: int, workspace: str, **config) -> Job:
    """A master with id 7 split into ``n`` subjobs, as ``submit()`` splits one."""
    master = Job(application=Executable(exe="/bin/echo"),
                 splitter=ArgSplitter(args=[[str(i)] for i in range(n)]), **config)
    master.id = 7
    master.workspace = workspace
    _split(master)
    return master


def _master(tmp_path, outputs: list[dict[str, str]], statuses: list[str], **config) -> Job:
    master = _build(len(outputs), str(tmp_path / "ws"), **config)
    for sub, files, status in zip(master.subjobs, outputs, statuses, strict=True):
        out = os.path.join(sub.workdir, "output")
        os.makedirs(out, exist_ok=True)
        for name, text in files.items():
            with open(os.path.join(out, name), "w") as handle:
                handle.write(text)
        sub._status = status
    master._counts = StatusCounts(dict(Counter(statuses)))  # as set_status would leave them
    return master


def test_filechecker_found_missing_and_not_found(tmp_path):
    master = _master(tmp_path, [{"stdout": "ok\n"}, {"stdout": "x ERROR y\n"}, {}],
                     ["completing"] * 3)
    subs = list(master.subjobs)
    checker = FileChecker(files=["stdout"], searchStrings=["ERROR"])
    assert checker.check(subs[0]) == (True, "")
    assert checker.check(subs[1]) == (False, "FileChecker: 'ERROR' found in stdout")
    ok, note = checker.check(subs[2])
    assert not ok and note.startswith("FileChecker: no file 'stdout'")
    assert FileChecker(searchStrings=["ERROR"], filesMustExist=False).check(subs[2]) == (True, "")
    must = FileChecker(searchStrings=["ok", "done"], failIfFound=False)
    assert must.check(subs[0]) == (False, "FileChecker: 'done' not found in stdout")


def test_customchecker_true_false_wrong_type_and_exception(tmp_path):
    master = _master(tmp_path, [{"stdout": "1\n"}], ["completing"])
    sub = master.subjobs[0]
    script = tmp_path / "check.py"
    for body, expected in [
        ("return 'good' in open(job.workdir + '/output/stdout').read()",
         (False, "CustomChecker check.py: check(job) returned False")),
        ("return job.id == 0", (True, "")),
        ("return 1", (False, "CustomChecker check.py: check(job) returned int, expected True or False")),
        ("raise ValueError('bad data')", (False, "CustomChecker check.py: ValueError: bad data")),
    ]:
        script.write_text(f"def check(job):\n    {body}\n")
        assert CustomChecker(module=str(script)).check(sub) == expected


def test_textmerger_concatenates_with_a_header_per_subjob(tmp_path):
    master = _master(tmp_path, [{"stdout": "a\n"}, {"stdout": "b"}], ["completed"] * 2)
    assert TextMerger().merge(master) == (True, "")
    merged = open(os.path.join(master.workspace, "output", "stdout")).read().splitlines()
    assert merged[0].startswith("# TextMerger: 'stdout' of 2 subjobs of job 7")
    assert merged[1:] == [f"# ---- subjob 7.0: {master.subjobs[0].workdir}/output/stdout", "a",
                          f"# ---- subjob 7.1: {master.subjobs[1].workdir}/output/stdout", "b"]


def test_textmerger_refuses_failed_subjobs_unless_ignorefailed(tmp_path):
    master = _master(tmp_path, [{"stdout": "a\n"}, {"stdout": "b\n"}],
                     ["completed", "failed"])
    ok, note = TextMerger().merge(master)
    assert not ok and "subjobs 7.1 failed" in note and "ignorefailed=True" in note
    assert not os.path.exists(os.path.join(master.workspace, "output", "stdout"))
    assert TextMerger(ignorefailed=True, compress=True).merge(master) == (True, "")
    with gzip.open(os.path.join(master.workspace, "output", "stdout.gz"), "rt") as handle:
        text = handle.read()
    assert "a\n" in text and "b\n" not in text


def test_textmerger_missing_file_and_overwrite(tmp_path):
    master = _master(tmp_path, [{"out.txt": "a\n"}, {}], ["completed"] * 2)
    ok, note = TextMerger(files=["out.txt"]).merge(master)
    assert not ok and note == "TextMerger did not merge 'out.txt': missing in subjobs 7.1"
    assert TextMerger(files=["out.txt"], ignorefailed=True).merge(master) == (True, "")
    ok, note = TextMerger(files=["out.txt"], ignorefailed=True, overwrite=False).merge(master)
    assert not ok and "exists (overwrite=True replaces it)" in note


def test_custommerger_calls_mergefiles(tmp_path):
    master = _master(tmp_path, [{"n": "1"}, {"n": "2"}], ["completed"] * 2)
    script = tmp_path / "merge.py"
    script.write_text("def mergefiles(file_list, output_file):\n"
                      "    total = sum(int(open(f).read()) for f in file_list)\n"
                      "    open(output_file, 'w').write(str(total))\n")
    assert CustomMerger(module=str(script), files=["n"]).merge(master) == (True, "")
    assert open(os.path.join(master.workspace, "output", "n")).read() == "3"
    script.write_text("def mergefiles(file_list, output_file):\n    return False\n")
    assert CustomMerger(module=str(script), files=["n"]).merge(master) == (
        False, "CustomMerger merge.py: mergefiles returned False")
    script.write_text("x = 1\n")
    ok, note = CustomMerger(module=str(script), files=["n"]).merge(master)
    assert not ok and "defines no function mergefiles()" in note


def test_run_for_master_orders_mergers_then_notifiers_and_records_the_reason(tmp_path):
    log = tmp_path / "notified"
    merged = tmp_path / "ws" / "output" / "stdout"
    notifier = Notifier(command=[sys.executable, "-c",
                                 f"import os; open({str(log)!r}, 'a').write("
                                 f"'{{id}} {{status}} ' + str(os.path.exists({str(merged)!r})))"])
    outputs, statuses = [{"stdout": "a\n"}, {"stdout": "b\n"}], ["completed", "failed"]
    master = _master(tmp_path, outputs, statuses,
                     postprocessors=[notifier, TextMerger(ignorefailed=True)])
    run_for_master(master)
    assert log.read_text() == "7 failed True"  # the merger ran first
    assert master.reason == ""
    master = _master(tmp_path, outputs, statuses, postprocessors=[TextMerger(), Notifier()])
    run_for_master(master)
    assert master.reason.startswith("postprocessing: TextMerger did not merge")
    assert "Notifier has nothing to do" in master.reason
    assert "TextMerger did not merge" in (tmp_path / "ws" / "postprocessing.log").read_text()


def test_notifier_function_and_failing_command(tmp_path):
    master = _master(tmp_path, [{}], ["completed"])
    script = tmp_path / "alerts.py"
    script.write_text("seen = []\ndef done(job):\n    open(job.workspace + '/seen', 'w').write(job.fqid)\n")
    assert Notifier(function=f"{script}:done").notify(master) == (True, "")
    assert open(os.path.join(master.workspace, "seen")).read() == "7"
    ok, note = Notifier(command=["/bin/sh", "-c", "echo nope >&2; exit 4"]).notify(master)
    assert not ok and note == "Notifier /bin/sh: exit code 4 nope"
    ok, note = Notifier(command=["/no/such/notifier"]).notify(master)
    assert not ok and "FileNotFoundError" in note


def test_localfile_collect_copies_to_localdir_per_subjob(tmp_path):
    keep = tmp_path / "keep"
    master = _master(tmp_path, [{"a.txt": "1", "b.log": "x"}, {"a.txt": "2"}], ["completing"] * 2,
                     outputfiles=[LocalFile("*.txt", localDir=str(keep)), LocalFile("*.root")])
    sub0, sub1 = master.subjobs
    assert collect_outputs(sub0) == {"*.txt": [os.path.join(sub0.workdir, "output", "a.txt")],
                                     "*.root": []}
    assert run_for_subjob(sub1) == (True, "no output file matched '*.root'")
    assert (keep / "0" / "a.txt").read_text() == "1" and (keep / "1" / "a.txt").read_text() == "2"
    with pytest.raises(InvalidValue):
        LocalFile("/etc/*.conf").collect(sub0)


def test_stage_inputs_copies_into_input_and_the_payload_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.csv").write_text("1,2\n")
    monkeypatch.chdir(tmp_path)
    workdir = str(tmp_path / "ws" / "0")
    master = _build(1, str(tmp_path / "ws"), inputfiles=[LocalFile("data/*.csv")])
    assert stage_inputs(master.subjobs[0], workdir) == [os.path.join(workdir, "input", "in.csv")]
    assert open(os.path.join(workdir, "output", "in.csv")).read() == "1,2\n"
    master = _build(1, str(tmp_path / "ws"), inputfiles=[
        LocalFile("in.csv", localDir=str(tmp_path / "data")), LocalFile("missing.csv")])
    with pytest.raises(InvalidValue) as info:
        stage_inputs(master.subjobs[0], workdir)
    assert "missing.csv" in _one_line(info) and "an existing file" in str(info.value)
