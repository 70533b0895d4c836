"""export()/load(): readable, editable text that becomes new jobs again."""

from __future__ import annotations

import json

import pytest

from ganga_like.backends.local.config import Local
from ganga_like.client.export import ExportFileError, export, load
from ganga_like.engine.core import _split
from ganga_like.model.application import Executable
from ganga_like.model.files import LocalFile
from ganga_like.model.job import Job
from ganga_like.model.postprocessors import FileChecker, TextMerger
from ganga_like.model.splitters import ArgSplitter, GenericSplitter
from ganga_like.status import Status


def _job() -> Job:
    return Job(
        name="scan", comment="a test",
        application=Executable(exe="/bin/echo", args=["a b", "$HOME"], env={"SEED": "7"}),
        backend=Local(concurrency=2),
        splitter=ArgSplitter(args=[["1"], ["2", "3"]]),
        postprocessors=[TextMerger(files=["stdout"], ignorefailed=True), FileChecker()],
        outputfiles=[LocalFile("*.root")],
        do_auto_resubmit=True,
        priority=5,
    )


def test_round_trip_gives_equal_new_jobs(tmp_path):
    path = str(tmp_path / "jobs.json")
    original = _job()
    assert export([original, Job()], path) == 2
    loaded = load(path)
    assert len(loaded) == 2
    job = loaded[0]
    assert job.status is Status.NEW and job.id is None
    assert job._config() == original._config() and job.priority == 5
    assert loaded[1].application == Executable() and loaded[1].splitter is None


def test_the_text_is_readable_and_an_edit_is_loaded(tmp_path):
    path = tmp_path / "jobs.json"
    export(_job(), str(path))
    text = path.read_text()
    assert '"args": ["a b", "$HOME"]' in text  # short lists on one line
    assert '"type": "TextMerger"' in text and '"ignorefailed": true' in text
    edited = (text.replace('"name": "scan"', '"name": "scan-2"')
              .replace('"concurrency": 2', '"concurrency": 4')
              .replace('["2", "3"]', '["2", "3"],\n        ["4"]'))
    path.write_text(edited)
    (job,) = load(str(path))
    assert job.name == "scan-2" and job.backend.concurrency == 4
    assert job.splitter.args == (("1",), ("2", "3"), ("4",))


def test_a_subjob_is_exported_as_its_standalone_copy(tmp_path):
    master = _job()
    master.id = 3
    _split(master)
    path = str(tmp_path / "sub.json")
    export(master.subjobs[1], path)
    (job,) = load(path)
    assert job.splitter is None and job.application.args == ("2", "3")
    assert json.loads(open(path).read())[0]["splitter"] is None


def test_generic_splitter_values_survive(tmp_path):
    path = str(tmp_path / "g.json")
    job = Job(splitter=GenericSplitter(multi_attrs={"application.args": [["1"], ["2"]],
                                                    "application.env": [{"X": "1"}, {"X": "2"}]}))
    export(job, path)
    splitter = load(path)[0].splitter
    assert type(splitter) is GenericSplitter
    assert splitter.multi_attrs == job.splitter.multi_attrs and splitter.attribute == ""


def test_a_single_object_written_by_hand_loads(tmp_path):
    path = tmp_path / "one.json"
    path.write_text('{"name": "hand", "application": {"type": "Executable", "exe": "/bin/date"}}')
    (job,) = load(str(path))
    assert (job.name == "hand" and job.application.exe == "/bin/date"
            and job.application.args == ("Hello World",))
    assert type(job.backend).__name__ == "Local"


@pytest.mark.parametrize("text, words", [
    ('[\n  {"name": "x",\n   "comment": }\n]', "line 3 column 15: not valid JSON"),
    ('"jobs"', "top level: expected a list of job objects"),
    ('[{"name": "x", "colour": "red"}]', "job 1 ('x') field 'colour': unknown; the fields of a job are name"),
    ('[{}, {"application": {"type": "Bash"}}]',
     "job 2 field 'application': unknown type 'Bash'; the known applications are Executable"),
    ('[{"application": {"exe": "x"}}]', 'job 1 field \'application\': expected an object with a "type"'),
    ('[{"application": {"type": "Executable", "args": "-n 5"}}]',
     "job 1 field 'application': Executable.args = '-n 5' is not valid: expected a list of strings"),
    ('[{"postprocessors": [{"type": "TextMerger"}, {"type": "FileChecker", "failIfFound": "no"}]}]',
     "job 1 field 'postprocessors' item 2: FileChecker.failIfFound = 'no' is not valid"),
    ('[{"postprocessors": {"type": "TextMerger"}}]', "field 'postprocessors': expected a list"),
    ('[{"outputfiles": [{"type": "TextMerger"}]}]',
     "unknown type 'TextMerger'; the known files are File, LocalFile"),
    ('[{"mode": "lenient"}]', "job 1 field 'mode': Job.mode = 'lenient' is not valid"),
    ('[{"name": 5}]', "job 1 field 'name': Job.name = 5 is not valid: expected a string"),
    ('[{"postprocessors": [{"type": "Merger"}]}]', "unknown type 'Merger'"),
])
def test_a_bad_file_is_one_line_naming_where(tmp_path, text, words):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ExportFileError) as info:
        load(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path) + ": ")
    assert words in message


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(ExportFileError) as info:
        load(str(tmp_path / "nope.json"))
    assert "cannot read: No such file or directory" in str(info.value)
