"""``ganga-like submit FILE.job --hosts``: what the command refuses before it asks the
service anything (one line, no service started, nothing stored)."""

from __future__ import annotations

import pytest

from tests.test_cli import one_line, run_gl


@pytest.mark.parametrize(("args", "words", "code"), [
    (["{file}", "--hosts", "n1", "--split", "{file}"], "takes no --split", 2),
    (["{file}", "other.job", "--hosts", "n1"], "takes no other.job", 2),
    (["--name", "x", "{file}", "--hosts", "n1"], "takes no --name", 2),
    (["--hosts", "n1", "--", "/bin/echo", "x"], "--hosts takes a BEX job file", 2),
    (["{missing}", "--hosts", "n1"], "BEX job file {missing}: cannot be read: No such file or "
                                     "directory", 1),
    (["{bad}", "--hosts", "n1"], "BEX job file {bad}, line 2: unknown header 'Sbject'; the "
                                 "headers are ID, Subject, Prep (case matters)", 1),
], ids=["split", "two-files", "name", "hosts-with-a-command", "missing", "malformed"])
def test_a_bad_submission_is_one_line_and_starts_nothing(tmp_path, args, words, code):
    root = tmp_path / "gl"
    places = {"file": tmp_path / "ok.job", "missing": tmp_path / "missing.job",
              "bad": tmp_path / "bad.job"}
    places["file"].write_text("ID: ok\n\ntrue\n")
    places["bad"].write_text("ID: bad\nSbject: typo\n\ntrue\n")
    result = run_gl(root, "submit", *[a.format(**places) for a in args], check_clean=False)
    assert result.returncode == code, result.stdout + result.stderr
    assert words.format(**places) in one_line(result.stderr)
    assert not (root / "service.lock").exists()  # refused here: the service was not asked
