"""Tab completion in the shell (issue 20, point 9): what IPython's own completer offers on
the GPI's names is what a user works with, and every name it offers can be read."""

from __future__ import annotations

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

NAMES = ["Job", "JobTemplate", "j", "j.time", "j.info", "j.application", "Local", "Local()",
         "Executable", "ArgSplitter()", "GenericSplitter()", "LocalFile()", "config"]


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    # A job not stored anywhere: completion must not need a repository.
    assert shell.run_cell("from ganga_like.gpi import *\nfrom ganga_like.model.job import Job as _Job\n"
                          "j = _Job()").success
    yield shell
    InteractiveShell.clear_instance()


def offered(shell: InteractiveShell, text: str) -> list[str]:
    with provisionalcompleter():
        return [c.text for c in shell.Completer.completions(text, len(text))]


def test_job_completes_as_a_job_does_and_not_with_the_wrappers_machinery(shell):
    names = offered(shell, "Job.")
    assert names == offered(shell, "j.") and {"submit", "why", "backend", "subjobs"} <= set(names)
    assert not [n for n in names if n.startswith("_") or "instance" in n], names
    assert offered(shell, "Job.su") == ["subjob_counts", "subjobs", "submit", "submit_counter"]


@pytest.mark.parametrize("name", NAMES)
def test_every_name_offered_can_be_read(shell, name):
    names = offered(shell, name + ".")
    assert names, f"nothing offered after {name}."
    broken = [n for n in names if not shell.run_cell(f"_ = {name}.{n}", silent=True).success]
    assert broken == [], f"{name}.<TAB> offers names that raise: {broken}"
