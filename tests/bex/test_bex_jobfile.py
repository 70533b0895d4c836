"""BEX job files: a Hypothesis round trip, and every malformed case refused in one line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganga_like.bex.jobfile import BexJob, format_job, parse_job, read_job_file
from ganga_like.errors import BexJobFileError

ids = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,30}", fullmatch=True)
# A header value: one line of printable text, no spaces at either end.
values = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40) \
    .map(str.strip).filter(lambda v: not any(c.isspace() and c not in " " for c in v))
bodies = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200) \
    .filter(lambda b: b.strip() != "")
jobs = st.builds(BexJob, id=ids, body=bodies, subject=values, prep=values)


@given(jobs)
def test_a_job_survives_its_file(job):
    assert parse_job(format_job(job)) == job
    assert parse_job(format_job(job).encode()) == job


@given(jobs)
def test_a_file_survives_its_job(job):
    text = format_job(job)
    assert format_job(parse_job(text)) == text


def test_the_format_byte_for_byte():
    job = BexJob("2026-12-06-build", "cd /tmp\nmake\n", "build it", "mkdir -p /tmp/b")
    assert job.text() == ("ID: 2026-12-06-build\nSubject: build it\nPrep: mkdir -p /tmp/b\n\n"
                          "cd /tmp\nmake\n")
    assert BexJob("a", "true\n").text() == "ID: a\n\ntrue\n"
    assert parse_job("Subject:\tx\nID:   a\n\nbody") == BexJob("a", "body", "x")


@pytest.mark.parametrize(("text", "message"), [
    ("ID: a\necho hi\n", "BEX job file f.job: no blank line: headers, then an empty line, then "
                         "the body (the commands to run)"),
    ("Subject: s\n\necho\n", "BEX job file f.job: no ID header (ID: <job-id>, unique in the queue)"),
    ("\necho\n", "BEX job file f.job: no ID header (ID: <job-id>, unique in the queue)"),
    ("ID: a\nID: b\n\necho\n", "BEX job file f.job, line 2: header 'ID' is given twice"),
    ("ID: a\nid: b\n\necho\n", "BEX job file f.job, line 2: unknown header 'id'; the headers are "
                               "ID, Subject, Prep (case matters)"),
    ("ID: a\nSubject: one\n  two\n\necho\n", "BEX job file f.job, line 3: a line that continues "
                                             "a header: headers are one line each"),
    ("ID: a\njust words\n\necho\n", "BEX job file f.job, line 2: 'just words' is not a header "
                                    "(<keyword>: <value>)"),
    ("ID:a\n\necho\n", "BEX job file f.job, line 1: 'ID:a' is not a header (<keyword>: <value>)"),
    ("ID: \n\necho\n", "BEX job file f.job, line 1: header 'ID' has no value"),
    ("ID: a b\n\necho\n", "BEX job file f.job, line 1: ID 'a b' is not valid: use letters, "
                          "digits, '.', '_' or '-', not starting with '.', at most 100 characters"),
    ("ID: ../x\n\necho\n", "ID '../x' is not valid"),
    ("ID: .hidden\n\necho\n", "ID '.hidden' is not valid"),
    (f"ID: {'x' * 101}\n\necho\n", "is not valid"),
    ("ID: a\nSubject: x\x07y\n\necho\n", "BEX job file f.job, line 2: header 'Subject' holds a "
                                         "control character"),
    ("ID: a\n\n", "BEX job file f.job, line 3: the body is empty: nothing to run"),
    ("ID: a\n\n  \n\n", "the body is empty"),
    (b"ID: a\n\n\xff\xfe", "BEX job file f.job: not UTF-8 text (byte 7)"),
])
def test_a_malformed_file_is_one_line_naming_what_is_wrong(text, message):
    with pytest.raises(BexJobFileError) as caught:
        parse_job(text, "f.job")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_is_read_whole_or_refused_in_one_line(tmp_path):
    with pytest.raises(BexJobFileError, match=r"^BEX job file \S+/missing\.job: cannot be read: "
                                              r"No such file or directory$"):
        read_job_file(str(tmp_path / "missing.job"))
    path = tmp_path / "ok.job"
    path.write_bytes(b"ID: a\nPrep: true\n\necho\n")
    assert read_job_file(str(path)) == "ID: a\nPrep: true\n\necho\n"
    path.write_bytes(b"ID: a\n")
    with pytest.raises(BexJobFileError, match="no blank line"):
        read_job_file(str(path))
